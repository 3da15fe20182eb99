#!/bin/sh
# fuzz/run.sh MODE SECONDS HARNESS... -- run libFuzzer harnesses built in
# $FUZZ_BUILD/bin (make fuzz-build).
#   MODE fuzz:    each harness for SECONDS, starting from its seed corpus
#                 (fuzz/corpus/NAME) and regressions (fuzz/regress/NAME);
#                 new inputs go to $FUZZ_BUILD/corpus/NAME, a crash to
#                 $FUZZ_BUILD/crashes/NAME-*.
#   MODE regress: replay the seeds and regressions once (no fuzzing).
# $FUZZ_TIMEOUT: seconds one input may take before it counts as a hang
# (default 10; raise it on a loaded machine, where a niced fuzzer can be
# starved for longer than that).
# Prints one line per harness and a last line `fuzz: N passed, N failed`;
# exits non-zero when a harness failed.
set -u
mode=$1; secs=$2; shift 2
b=$(cd "${FUZZ_BUILD:-build-fuzz}" && pwd)
here=$(cd "$(dirname "$0")" && pwd)
# Harnesses run in an empty directory: files named by fuzzed input
# (mailrules lists) resolve there and do not exist.
empty=$(mktemp -d) || exit 1
trap 'rm -rf "$empty"' EXIT
cd "$empty" || exit 1
pass=0; fail=0
mkdir -p "$b/crashes" "$b/logs"
for h in "$@"; do
  exe="$b/bin/$h"
  dict=""; [ -f "$here/dict/$h.dict" ] && dict="-dict=$here/dict/$h.dict"
  [ -f "$here/dict/$h.dict" ] || { base=${h%%_*}; [ -f "$here/dict/$base.dict" ] && dict="-dict=$here/dict/$base.dict"; }
  seeds=""
  for d in "$here/corpus/$h" "$here/regress/$h"; do [ -d "$d" ] && seeds="$seeds $d"; done
  log="$b/logs/$h.log"; [ "$mode" = regress ] && log="$b/logs/$h.regress.log"
  # Whole-session harnesses log every session to stderr: closed for them.
  quiet=""; case $h in session*) quiet="-close_fd_mask=2";; esac
  if [ "$mode" = regress ]; then
    files=$(for d in $seeds; do find "$d" -type f; done)
    if [ -z "$files" ]; then
      echo "fuzz $h: no seeds"; fail=$((fail + 1)); continue
    fi
    # shellcheck disable=SC2086
    "$exe" -runs=0 $quiet $files >"$log" 2>&1
  else
    mkdir -p "$b/corpus/$h"
    # shellcheck disable=SC2086
    "$exe" -max_total_time="$secs" -timeout="${FUZZ_TIMEOUT:-10}" -rss_limit_mb=2048 -max_len=65536 \
      -artifact_prefix="$b/crashes/$h-" -print_final_stats=1 $quiet $dict "$b/corpus/$h" $seeds >"$log" 2>&1
  fi
  rc=$?
  runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$')
  cov=$(grep -o 'cov: [0-9]*' "$log" | tail -n 1 | grep -o '[0-9]*')
  if [ $rc = 0 ]; then
    pass=$((pass + 1))
    if [ "$mode" = regress ]; then echo "fuzz $h: ok (replayed $(echo "$files" | wc -l) inputs)"
    else echo "fuzz $h: ok (runs ${runs:-?}, cov ${cov:-?})"; fi
  else
    fail=$((fail + 1)); echo "fuzz $h: FAILED (exit $rc), see $log"; tail -n 40 "$log"
  fi
done
echo "fuzz: $pass passed, $fail failed"
[ $fail = 0 ]
