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
  n_bad=$(grep -c '^\[  FAILED  \] [a-z_0-9]' "$out")
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
echo
[ -n "$failed" ] && echo "failing:$failed"
echo "tests: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
