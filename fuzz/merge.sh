#!/bin/sh
# fuzz/merge.sh MAXBYTES HARNESS... -- keep what a campaign found: for each
# harness, libFuzzer's -merge=1 of the grown corpus ($FUZZ_BUILD/corpus/NAME
# and any directories in $FUZZ_MERGE_EXTRA/NAME) into a copy of the seed
# corpus fuzz/corpus/NAME; the inputs it adds (each adds coverage the seeds
# lack) are copied into fuzz/corpus/NAME, smallest first, while the
# harness's additions stay within MAXBYTES and $FUZZ_MERGE_MAXFILES
# (default 100) files.  Prints one line per harness.
set -u
maxb=$1; shift
b=$(cd "${FUZZ_BUILD:-build-fuzz}" && pwd)
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d) || exit 1
trap 'rm -rf "$work"' EXIT
for h in "$@"; do
  rm -rf "$work/merged" "$work/empty"; mkdir -p "$work/merged" "$work/empty" "$here/corpus/$h"
  cp "$here/corpus/$h"/* "$work/merged/" 2>/dev/null
  extra=""; [ -n "${FUZZ_MERGE_EXTRA:-}" ] && [ -d "$FUZZ_MERGE_EXTRA/$h" ] && extra="$FUZZ_MERGE_EXTRA/$h"
  quiet=""; case $h in session*) quiet="-close_fd_mask=2";; esac
  # shellcheck disable=SC2086
  (cd "$work/empty" && "$b/bin/$h" -merge=1 -timeout=60 -rss_limit_mb=2048 -max_len=65536 $quiet \
     "$work/merged" "$b/corpus/$h" $extra) >"$b/logs/$h.merge.log" 2>&1
  added=0; bytes=0
  for f in $(cd "$work/merged" && ls -S -r); do
    [ -e "$here/corpus/$h/$f" ] && continue
    n=$(wc -c <"$work/merged/$f")
    [ $((bytes + n)) -le "$maxb" ] || continue
    [ $added -lt "${FUZZ_MERGE_MAXFILES:-100}" ] || break
    cp "$work/merged/$f" "$here/corpus/$h/$f"
    added=$((added + 1)); bytes=$((bytes + n))
  done
  echo "merge $h: $(grep -o 'MERGE-OUTER: [0-9]* new files with [0-9]* new features' "$b/logs/$h.merge.log" | tail -n 1); kept $added inputs, $bytes bytes"
done
