#!/bin/sh
# fuzz/stats.sh SECONDS HARNESS... -- the figures of a campaign
# (fuzz/campaign.sh) as a Markdown table, one row per harness, from the
# logs in $FUZZ_BUILD/logs and the artifacts in $FUZZ_BUILD/crashes:
# executions (stat::number_of_executed_units), the last cov: (edges) and
# ft: (features) and corp: (inputs/bytes) libFuzzer printed, the crash,
# leak, timeout and out-of-memory artifacts written, and the slow units
# (inputs that took more than 10 s of wall time: on a loaded machine
# usually a starved process, so replay them before believing them).
set -u
secs=$1; shift
b=${FUZZ_BUILD:-build-fuzz}
echo "| harness | seconds | executions | exec/s | cov | ft | corpus (inputs/bytes) | crashes | slow units |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|"
for h in "$@"; do
  log="$b/logs/$h.log"
  runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" 2>/dev/null | grep -o '[0-9]*$')
  rate=$(grep -o 'stat::average_exec_per_sec: *[0-9]*' "$log" 2>/dev/null | grep -o '[0-9]*$')
  last=$(grep -E '^#[0-9]+.*cov: ' "$log" 2>/dev/null | tail -n 1)
  cov=$(echo "$last" | sed -n 's/.*cov: \([0-9]*\).*/\1/p')
  ft=$(echo "$last" | sed -n 's/.*ft: \([0-9]*\).*/\1/p')
  corp=$(echo "$last" | sed -n 's/.*corp: \([0-9]*\/[0-9]*[a-zA-Z]*\).*/\1/p')
  crashes=$(find "$b/crashes" -name "$h-*" ! -name "$h-slow-unit-*" 2>/dev/null | wc -l)
  slow=$(find "$b/crashes" -name "$h-slow-unit-*" 2>/dev/null | wc -l)
  echo "| $h | $secs | ${runs:-?} | ${rate:-?} | ${cov:-?} | ${ft:-?} | ${corp:-?} | $crashes | $slow |"
done
