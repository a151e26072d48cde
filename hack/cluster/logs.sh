#!/usr/bin/env bash
# Prints the last lines of each cluster component's log, for a failure's report.
source "$(dirname "$0")/env.sh"
lines=${1:-20}
for f in "$STATE"/logs/*.log; do
  [ -f "$f" ] || continue
  echo "=== $(basename "$f" .log) (last $lines lines of $f)"
  tail -n "$lines" "$f"
done
