#!/bin/sh
# Runs every test binary given on the command line (cmocka suites built with
# ASan + UBSan), then prints one summary line: "N passed, N failed".
# Each binary's own cmocka report is shown; a crash or sanitizer report counts
# as a failure of that binary.
pass=0; fail=0; failed=""
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
for t in "$@"; do
  out=$(mktemp)
  if "$t" >"$out" 2>&1; then
    st=0
  else
    st=$?
  fi
  n_ok=$(grep -c '^\[       OK \]' "$out")
  # a failed test is listed twice (as it fails and in the summary): count names once
  n_bad=$(grep '^\[  FAILED  \] [a-z_][a-z_0-9]*$' "$out" | sort -u | wc -l)
  if [ "$st" -ne 0 ] && [ "$n_bad" -eq 0 ]; then n_bad=1; fi
  pass=$((pass + n_ok)); fail=$((fail + n_bad))
  if [ "$st" -ne 0 ]; then
    failed="$failed $(basename "$t")"
    cat "$out"
  else
    printf '%-28s %4d ok\n' "$(basename "$t")" "$n_ok"
  fi
  rm -f "$out"
done
# The browser test of `nesim serve` (Debian's chromium + playwright-core):
# skipped only when NESIM_SKIP_BROWSER is set.
if [ -z "$NESIM_SKIP_BROWSER" ] && [ -x tools/browser-test.sh ]; then
  out=$(mktemp)
  if tools/browser-test.sh >"$out" 2>&1; then st=0; else st=$?; fi
  line=$(grep -E '^browser tests: [0-9]+ passed, [0-9]+ failed' "$out" | tail -n 1)
  b_ok=$(echo "$line" | sed -n 's/^browser tests: \([0-9]*\) passed.*/\1/p')
  b_bad=$(echo "$line" | sed -n 's/.* \([0-9]*\) failed.*/\1/p')
  [ -z "$b_ok" ] && b_ok=0
  [ -z "$b_bad" ] && b_bad=0
  if [ "$st" -ne 0 ] && [ "$b_bad" -eq 0 ]; then b_bad=1; fi
  pass=$((pass + b_ok)); fail=$((fail + b_bad))
  if [ "$st" -ne 0 ]; then
    failed="$failed browser"
    cat "$out"
  else
    printf '%-28s %4d ok\n' "browser (chromium)" "$b_ok"
  fi
  rm -f "$out"
fi
echo
[ -n "$failed" ] && echo "failing:$failed"
echo "tests: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
