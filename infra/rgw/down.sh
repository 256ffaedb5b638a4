#!/usr/bin/env bash
# Stops the cluster that infra/rgw/up.sh started in dir and removes dir.
#
#   infra/rgw/down.sh [dir]      dir defaults to /tmp/kvfold-rgw
#
# Each daemon is stopped by the pid in its pid file: TERM first, KILL if it is still there after a
# few seconds. Only those processes are touched.
set -euo pipefail

dir=${1:-/tmp/kvfold-rgw}
[[ -d "$dir" ]] || exit 0

pids=()
# The gateway first, the monitor last, so that none waits on a daemon already gone.
for name in client.rgw.a mgr.a osd.0 mon.a; do
  file="$dir/run/$name.pid"
  [[ -f "$file" ]] || continue
  pid=$(<"$file")
  if [[ $pid =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null || true
    pids+=("$pid")
  fi
done

# Up to 5 s for them to exit, then KILL whatever is left.
for _ in 1 2 3 4 5 6 7 8 9 10; do
  alive=()
  for pid in "${pids[@]}"; do
    if kill -0 "$pid" 2>/dev/null; then alive+=("$pid"); fi
  done
  ((${#alive[@]} > 0)) || break
  sleep 0.5
done
for pid in "${pids[@]}"; do
  if kill -0 "$pid" 2>/dev/null; then
    printf 'rgw: pid %s did not stop; killing it\n' "$pid" >&2
    kill -KILL "$pid" 2>/dev/null || true
  fi
done

rm -rf "$dir"
