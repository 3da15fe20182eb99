#!/bin/sh
# fuzz/stats.sh SECONDS HARNESS... -- the figures of a campaign
# (fuzz/campaign.sh) as a Markdown table, one row per harness, from the
# logs in $FUZZ_BUILD/logs and the artifacts in $FUZZ_BUILD/crashes:
# executions (stat::number_of_executed_units), the last cov: (edges) and
# ft: (features) and corp: (inputs/bytes) libFuzzer printed, and the
# crash, leak, timeout and out-of-memory artifacts written.
set -u
secs=$1; shift
b=${FUZZ_BUILD:-build-fuzz}
echo "| harness | seconds | executions | exec/s | cov | ft | corpus (inputs/bytes) | crashes |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|"
for h in "$@"; do
  log="$b/logs/$h.log"
  runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" 2>/dev/null | grep -o '[0-9]*$')
  rate=$(grep -o 'stat::average_exec_per_sec: *[0-9]*' "$log" 2>/dev/null | grep -o '[0-9]*$')
  last=$(grep -E '^#[0-9]+.*cov: ' "$log" 2>/dev/null | tail -n 1)
  cov=$(echo "$last" | sed -n 's/.*cov: \([0-9]*\).*/\1/p')
  ft=$(echo "$last" | sed -n 's/.*ft: \([0-9]*\).*/\1/p')
  corp=$(echo "$last" | sed -n 's/.*corp: \([0-9]*\/[0-9]*[a-zA-Z]*\).*/\1/p')
  crashes=$(find "$b/crashes" -name "$h-*" 2>/dev/null | wc -l)
  echo "| $h | $secs | ${runs:-?} | ${rate:-?} | ${cov:-?} | ${ft:-?} | ${corp:-?} | $crashes |"
done
