#!/usr/bin/env bash
# Stops the processes deploy/local/start.sh started, found by their pid files
# in .stack/run/: SIGTERM to each, up to PV_STACK_STOP_TIMEOUT s (default 45)
# for a clean shutdown, then SIGKILL. Never touches processes it did not start.
# Data in .stack/data/ is kept; delete that directory for a fresh stack.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

STOP_TIMEOUT="${PV_STACK_STOP_TIMEOUT:-45}"
SERVICES=(seaweedfs kafka)
stack_lock

declare -A PIDS=()
for name in "${SERVICES[@]}"; do
  if pid="$(service_pid "$name")"; then
    PIDS[$name]="$pid"
    log "$name: stopping pid $pid"
    kill -TERM "$pid" 2>/dev/null || true
  else
    if [[ -e "$(pid_file "$name")" ]]; then
      log "$name: not running (removing stale pid file)"
    else
      log "$name: not running"
    fi
    rm -f "$(pid_file "$name")"
  fi
done

# Both shut down in parallel (SeaweedFS alone takes ~15 s to stop cleanly).
deadline=$((SECONDS + STOP_TIMEOUT))
rc=0
for name in "${SERVICES[@]}"; do
  pid="${PIDS[$name]:-}"
  [[ -n "$pid" ]] || continue
  while alive "$pid" && ((SECONDS < deadline)); do
    sleep 0.2
  done
  if alive "$pid"; then
    warn "$name: still running after ${STOP_TIMEOUT}s, sending SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
    for _ in $(seq 1 50); do
      alive "$pid" || break
      sleep 0.1
    done
  fi
  if alive "$pid"; then
    warn "$name: pid $pid did not exit"
    rc=1
    continue
  fi
  rm -f "$(pid_file "$name")"
  log "$name: stopped"
done
exit "$rc"
