#!/usr/bin/env bash
# tools/browser-test.sh [--mock] — the browser test of `nesim serve`'s page.
#
# Debian's chromium (/usr/bin/chromium) driven by playwright-core from npm (no browser is
# downloaded). Installs what is missing (as root: apt-get install chromium nodejs npm; then
# `npm ci` in tests/browser from its package-lock.json), builds build/rel/nesim with make,
# records the digits example into a fresh trace database, starts `nesim serve DB --port 0`,
# parses the URL it prints, runs tests/browser/test.mjs against it and stops the server.
#
#   --mock   test against tests/browser/mock-server.mjs instead (no build, no database)
#
# Leaves build/browser/screenshot.png and the logs (serve.log, test.log) in build/browser/.
# The last line is "browser tests: N passed, M failed"; the exit status is non-zero on failure.
set -u
cd "$(dirname "$0")/.." || exit 1
ROOT=$PWD
OUT=$ROOT/build/browser
MOCK=0
for a in "$@"; do
  case $a in
    --mock) MOCK=1 ;;
    -h|--help) sed -n '2,14p' "$0"; exit 0 ;;
    *) echo "browser-test: unknown option: $a" >&2; exit 2 ;;
  esac
done
mkdir -p "$OUT"
TMP=$(mktemp -d "${TMPDIR:-/tmp}/nesim-browser.XXXXXX")
SERVER_PID=
cleanup() {
  if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill "$SERVER_PID" 2>/dev/null
    for _ in 1 2 3 4 5 6 7 8 9 10; do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.2; done
    kill -9 "$SERVER_PID" 2>/dev/null
    wait "$SERVER_PID" 2>/dev/null
  fi
  SERVER_PID=
  rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
fail() { # setup failed: one line why, then the closing line
  echo "browser-test: $*" >&2
  echo "browser tests: 0 passed, 1 failed"
  exit 1
}

# ---------------------------------------------------------------- packages
CHROMIUM=${CHROMIUM:-/usr/bin/chromium}
need=()
command -v node >/dev/null 2>&1 || need+=(nodejs)
command -v npm >/dev/null 2>&1 || need+=(npm)   # a NodeSource nodejs brings its own npm
[ -x "$CHROMIUM" ] || need+=(chromium)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    fail "missing ${need[*]}: run as root, or apt-get install ${need[*]}"
  fi
  echo "# apt-get install ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  { apt-get update -q && apt-get install -y -q --no-install-recommends "${need[@]}"; } > "$OUT/apt.log" 2>&1 ||
    { tail -n 15 "$OUT/apt.log" >&2; fail "apt-get install ${need[*]} failed (build/browser/apt.log)"; }
  [ -x "$CHROMIUM" ] || CHROMIUM=$(command -v chromium || true)
fi
"$CHROMIUM" --version > /dev/null 2>&1 || fail "$CHROMIUM does not run"

# playwright-core, exactly the version of the committed package-lock.json
locked=$(node -e 'console.log(require(require("path").resolve(process.argv[1])).packages["node_modules/playwright-core"].version)' tests/browser/package-lock.json 2>/dev/null)
have=$(node -e 'console.log(require(require("path").resolve(process.argv[1])).version)' tests/browser/node_modules/playwright-core/package.json 2>/dev/null)
if [ -z "$have" ] || [ "$have" != "$locked" ]; then
  echo "# npm ci (playwright-core $locked)"
  (cd tests/browser && npm ci --no-audit --no-fund --loglevel=error) > "$OUT/npm.log" 2>&1 ||
    { tail -n 15 "$OUT/npm.log" >&2; fail "npm ci failed in tests/browser (build/browser/npm.log)"; }
fi
echo "# node $(node --version), $("$CHROMIUM" --version 2>/dev/null | head -n 1), playwright-core $locked"

# ---------------------------------------------------------------- the server
: > "$TMP/serve.out"
if [ "$MOCK" = 1 ]; then
  node tests/browser/mock-server.mjs --port 0 > "$TMP/serve.out" 2> "$OUT/serve.log" &
  SERVER_PID=$!
else
  make -s build/rel/nesim > "$OUT/build.log" 2>&1 ||
    { tail -n 20 "$OUT/build.log" >&2; fail "make build/rel/nesim failed (build/browser/build.log)"; }
  NESIM=$ROOT/build/rel/nesim
  DB=$TMP/runs.db
  "$NESIM" run examples/digits/model.json --input examples/digits/test_inputs.npy --trace "$DB" --quiet > "$TMP/run.log" 2>&1 ||
    { tail -n 10 "$TMP/run.log" >&2; fail "nesim run --trace failed"; }
  # a second run, a replay of the first (parent_run 1), so the list has more than one run
  "$NESIM" replay "$DB" --run 1 --from-layer fc2 --chip truenorth --trace "$DB" > "$TMP/replay.log" 2>&1 ||
    echo "# note: nesim replay failed; the database holds one run"
  # a third, a network timed on the chip (chip time per tick): the activity's chip-time axis
  "$NESIM" run examples/ring/model.json --seconds 0.3 --timing simple --trace "$DB" --quiet > "$TMP/ring.log" 2>&1 ||
    echo "# note: the timed network run failed; the database has no timed run"
  "$NESIM" serve "$DB" --port 0 > "$TMP/serve.out" 2> "$OUT/serve.log" &
  SERVER_PID=$!
fi
URL=
for _ in $(seq 1 150); do     # up to 15 s
  URL=$(sed -n 's|^nesim serve: \(http://[^ ]*\).*|\1|p' "$TMP/serve.out" 2>/dev/null | head -n 1)
  [ -n "$URL" ] && break
  kill -0 "$SERVER_PID" 2>/dev/null || break
  sleep 0.1
done
if [ -z "$URL" ]; then
  cat "$TMP/serve.out" >> "$OUT/serve.log"
  tail -n 10 "$OUT/serve.log" >&2
  fail "the server printed no 'nesim serve: http://…' line (build/browser/serve.log)"
fi
echo "# server $URL (pid $SERVER_PID)"

# ---------------------------------------------------------------- the test
timeout 600 node tests/browser/test.mjs --url "$URL" --run 1 --chromium "$CHROMIUM" \
    --screenshot "$OUT/screenshot.png" 2>&1 | tee "$OUT/test.log" | grep -v '^browser tests: '
rc=${PIPESTATUS[0]}
summary=$(grep '^browser tests: ' "$OUT/test.log" | tail -n 1)
passed=$(printf '%s\n' "$summary" | sed -n 's/^browser tests: \([0-9]*\) passed, \([0-9]*\) failed.*/\1/p')
failed=$(printf '%s\n' "$summary" | sed -n 's/^browser tests: \([0-9]*\) passed, \([0-9]*\) failed.*/\2/p')
passed=${passed:-0}; failed=${failed:-0}
if [ -z "$summary" ]; then
  echo "not ok - the test script ended without a summary (exit $rc)"
  failed=$((failed + 1))
elif [ "$rc" != 0 ] && [ "$failed" = 0 ]; then
  echo "not ok - the test script exited $rc"
  failed=1
fi
if kill -0 "$SERVER_PID" 2>/dev/null; then
  passed=$((passed + 1)); echo "ok - the server is still up after the test"
else
  failed=$((failed + 1)); echo "not ok - the server died during the test (build/browser/serve.log)"
fi
cleanup
echo "# screenshot: build/browser/screenshot.png"
echo "browser tests: $passed passed, $failed failed"
[ "$failed" = 0 ]
