#!/bin/sh
# fuzz/campaign.sh SECONDS QUEUES [HARNESS...] -- a long fuzzing campaign:
# every harness (default: all of fuzz/*.c) for SECONDS through fuzz/run.sh,
# spread over QUEUES queues that run side by side under `nice -n 19`.
# Corpora grow in $FUZZ_BUILD/corpus/NAME, per-harness logs in
# $FUZZ_BUILD/logs/NAME.log, the queues' summaries in
# $FUZZ_BUILD/campaign/queue-K.log.  Build first: make fuzz-build.
set -u
secs=$1; queues=$2; shift 2
here=$(cd "$(dirname "$0")" && pwd)
b=${FUZZ_BUILD:-build-fuzz}
if [ $# = 0 ]; then
  for c in "$here"/*.c; do h=${c##*/}; set -- "$@" "${h%.c}"; done
fi
mkdir -p "$b/campaign"
k=0
while [ $k -lt "$queues" ]; do
  list=""; i=0
  for h in "$@"; do
    [ $((i % queues)) = $k ] && list="$list $h"
    i=$((i + 1))
  done
  # shellcheck disable=SC2086
  FUZZ_BUILD=$b nice -n 19 "$here/run.sh" fuzz "$secs" $list >"$b/campaign/queue-$k.log" 2>&1 &
  k=$((k + 1))
done
wait
cat "$b/campaign"/queue-*.log
