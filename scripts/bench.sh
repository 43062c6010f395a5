#!/usr/bin/env bash
# The benchmark suite (npm run bench): installs the peers when missing (gdb, restic, zstd, redis, gcc),
# builds the workspace, starts the local Kafka + S3 stack when it is not running (and stops it only if it
# started it), then runs bench/run.cjs. PV_BENCH_SMOKE=1 is the quick CI mode (~2-3 min); see
# bench/README.md for the other PV_BENCH_* knobs. Exits non-zero only on a real error, never on a missed goal.
set -uo pipefail
cd "$(dirname "$0")/.."
source scripts/stack-env.sh

say() { printf '[bench] %s\n' "$*"; }
die() { printf '[bench] ERROR: %s\n' "$*" >&2; exit 1; }

# --- peers -------------------------------------------------------------------------------------------
# restic: Debian's package when apt has it; otherwise built from the Go module proxy at a pinned version
# into bench/.tools/bin (ignored by bench/.gitignore). The version used is recorded in the results.
RESTIC_GO_VERSION="v0.17.3"
apt_updated=0
apt_install() {
  if [ "$apt_updated" = 0 ]; then
    DEBIAN_FRONTEND=noninteractive apt-get update -qq || return 1
    apt_updated=1
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}
need_pkgs=()
command -v gcore >/dev/null || need_pkgs+=(gdb)
command -v zstd >/dev/null || need_pkgs+=(zstd)
command -v redis-server >/dev/null || need_pkgs+=(redis-server)
command -v redis-benchmark >/dev/null || need_pkgs+=(redis-tools)
command -v python3 >/dev/null || need_pkgs+=(python3)
command -v gcc >/dev/null || need_pkgs+=(gcc)
command -v openssl >/dev/null || need_pkgs+=(openssl)
[ -x /usr/bin/time ] || need_pkgs+=(time)
if [ "${#need_pkgs[@]}" -gt 0 ]; then
  say "installing ${need_pkgs[*]} (apt)"
  apt_install "${need_pkgs[@]}" || die "apt-get install ${need_pkgs[*]} failed (root and a package mirror are needed)"
fi

RESTIC_BIN="${PV_BENCH_RESTIC:-}"
if [ -z "$RESTIC_BIN" ]; then
  if command -v restic >/dev/null; then
    RESTIC_BIN="$(command -v restic)"
  elif [ -x "$PWD/bench/.tools/bin/restic" ]; then
    RESTIC_BIN="$PWD/bench/.tools/bin/restic"
  else
    if [ "$apt_updated" = 0 ]; then DEBIAN_FRONTEND=noninteractive apt-get update -qq && apt_updated=1; fi
    if apt-cache policy restic 2>/dev/null | grep -q 'Candidate: [0-9]'; then
      say "installing restic (apt)"
      apt_install restic || die "apt-get install restic failed"
      RESTIC_BIN="$(command -v restic)"
    else
      command -v go >/dev/null || die "restic is not in apt and go is missing to build it"
      say "building restic $RESTIC_GO_VERSION from the Go module proxy"
      GOBIN="$PWD/bench/.tools/bin" go install "github.com/restic/restic/cmd/restic@$RESTIC_GO_VERSION" || die "go install restic failed"
      RESTIC_BIN="$PWD/bench/.tools/bin/restic"
    fi
  fi
fi
export PV_BENCH_RESTIC="$RESTIC_BIN"

# --- build -------------------------------------------------------------------------------------------
if [ "${PV_BENCH_NO_BUILD:-0}" != 1 ]; then
  say "building the workspace (nx run-many -t build)"
  npx nx run-many -t build --outputStyle=static >/tmp/pv-bench-build.$$.log 2>&1 || { tail -40 /tmp/pv-bench-build.$$.log; rm -f /tmp/pv-bench-build.$$.log; die "build failed"; }
  rm -f /tmp/pv-bench-build.$$.log
fi

# --- stack -------------------------------------------------------------------------------------------
started=0
stop_stack() { if [ "$started" = 1 ]; then say "stopping the stack this run started"; bash deploy/local/stop.sh || true; fi; }
trap stop_stack EXIT
trap 'exit 130' INT TERM
if ! bash deploy/local/status.sh >/dev/null 2>&1; then
  say "starting the local stack (Kafka + SeaweedFS S3)"
  bash deploy/local/install.sh || die "stack install failed"
  started=1
  bash deploy/local/start.sh || die "stack start failed: see .stack/logs/"
fi

node --no-warnings bench/run.cjs
