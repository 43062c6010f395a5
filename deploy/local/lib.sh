# shellcheck shell=bash
# Shared helpers for deploy/local/{install,start,stop,status}.sh. Sourced, not run.

set -euo pipefail

LOCAL_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$LOCAL_DIR/../.." && pwd)"

# shellcheck source=../../scripts/stack-env.sh
source "$REPO_ROOT/scripts/stack-env.sh"

# --- pinned versions ---------------------------------------------------------
# Kafka's version lives in deploy/local/kafka/pom.xml (<kafka.version>).
SEAWEED_MODULE="github.com/seaweedfs/seaweedfs"
SEAWEED_VERSION="v0.0.0-20261109003541-7506e5f91cd6"
SEAWEED_COMMIT="${SEAWEED_VERSION##*-}" # 7506e5f91cd6, stamped into `weed version`

# --- layout (all under the gitignored .stack/) -------------------------------
STACK_DIR="$REPO_ROOT/.stack"
BIN_DIR="$STACK_DIR/bin"
KAFKA_LIBS="$STACK_DIR/kafka/libs"
CONF_DIR="$STACK_DIR/config"
DATA_DIR="$STACK_DIR/data"
LOG_DIR="$STACK_DIR/logs"
RUN_DIR="$STACK_DIR/run"
WEED="$BIN_DIR/weed"

KAFKA_POM="$LOCAL_DIR/kafka/pom.xml"
KAFKA_STAMP="$STACK_DIR/kafka/.pom.sha256"

# --- ports (loopback only) ---------------------------------------------------
KAFKA_HOST=127.0.0.1
KAFKA_PORT=9092
KAFKA_CONTROLLER_PORT=9093
S3_HOST=127.0.0.1
S3_PORT=8333
WEED_MASTER_PORT=9333
WEED_VOLUME_PORT=8080
WEED_FILER_PORT=8888

START_TIMEOUT="${PV_STACK_START_TIMEOUT:-120}"

# --- output ------------------------------------------------------------------
log() { printf '[stack] %s\n' "$*"; }
warn() { printf '[stack] WARN: %s\n' "$*" >&2; }
die() {
  printf '[stack] ERROR: %s\n' "$*" >&2
  exit 1
}

# --- mutual exclusion ----------------------------------------------------------
# install/start/stop take one lock so that concurrent runs (two terminals, two
# test runners) neither build into the same file nor start a service twice.
stack_lock() {
  mkdir -p "$STACK_DIR"
  exec 9>>"$STACK_DIR/.lock"
  if ! flock -n 9; then
    log "waiting for another deploy/local script to finish (lock: $STACK_DIR/.lock)"
    flock 9
  fi
}

# --- processes -----------------------------------------------------------------
# Services: kafka, seaweedfs. A service counts as running only when its pid
# file names a live process whose command line mentions this .stack dir, so a
# stale pid file (reboot, pid reuse) is never mistaken for our process.
pid_file() { printf '%s/%s.pid\n' "$RUN_DIR" "$1"; }

service_pid() {
  local f pid
  f="$(pid_file "$1")"
  [[ -s "$f" ]] || return 1
  pid="$(<"$f")"
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  alive "$pid" || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qF -- "$STACK_DIR" || return 1
  printf '%s\n' "$pid"
}

# alive PID -> 0 while PID exists and is not a zombie.
alive() {
  local state
  state="$(sed -n 's/^[0-9]* (.*) \([A-Za-z]\) .*/\1/p' "/proc/$1/stat" 2>/dev/null)" || return 1
  [[ -n "$state" && "$state" != Z ]]
}

# port_open HOST PORT -> 0 when something accepts TCP connections there.
port_open() {
  timeout 2 bash -c 'exec 3<>"/dev/tcp/$1/$2"' _ "$1" "$2" 2>/dev/null
}

# spawn NAME LOGFILE CMD... : start CMD detached (own session, stdin from
# /dev/null, output appended to LOGFILE, no other inherited fds) and record its pid. The pid is written
# by the wrapper shell itself right before it execs CMD, so it is CMD's pid.
spawn() {
  local name="$1" logfile="$2"
  shift 2
  mkdir -p "$RUN_DIR" "$LOG_DIR"
  printf '\n===== %s starting %s =====\n' "$(date -Is)" "$name" >>"$logfile"
  # The wrapper closes every inherited fd above 2 before exec: the service must
  # hold neither the stack lock (fd 9) nor a pipe of whoever ran start.sh (a
  # test runner waiting for EOF would hang until the stack stops).
  # shellcheck disable=SC2016
  setsid bash -c '
    echo $$ >"$0"
    for fd in /proc/$$/fd/*; do
      fd=${fd##*/}
      [[ $fd =~ ^[0-9]+$ ]] && ((fd > 2)) && eval "exec $fd>&-" 2>/dev/null
    done
    exec "$@"' "$(pid_file "$name")" "$@" </dev/null >>"$logfile" 2>&1 &
  local i
  for i in $(seq 1 50); do
    [[ -s "$(pid_file "$name")" ]] && return 0
    sleep 0.1
  done
  die "$name: could not record its pid in $(pid_file "$name")"
}

# --- kafka helpers -------------------------------------------------------------
kafka_cp() { printf '%s/*' "$KAFKA_LIBS"; }

# Run a Kafka CLI class (TopicCommand, StorageTool, ...) with quiet logging,
# killed after 60 s so a wedged broker cannot hang the scripts.
kafka_tool() {
  timeout 60 java -Xmx256m -XX:TieredStopAtLevel=1 -XX:+UseSerialGC \
    -Dlog4j2.configurationFile="$LOCAL_DIR/kafka/log4j2-tools.xml" \
    -cp "$(kafka_cp)" "$@"
}

require_installed() {
  [[ -x "$WEED" && -d "$KAFKA_LIBS" && -s "$KAFKA_STAMP" ]] ||
    die "stack not installed; run: bash deploy/local/install.sh"
}
