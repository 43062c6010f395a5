#!/usr/bin/env bash
# Installs the local stack's binaries into .stack/ (idempotent, cached):
#   .stack/kafka/libs/*.jar  Apache Kafka broker + tools, from Maven Central
#                            (versions pinned in deploy/local/kafka/pom.xml)
#   .stack/bin/weed          SeaweedFS, built from the pinned Go module
# A second run downloads and builds nothing. Re-runs after the pom or the
# SeaweedFS pin changes refresh only what changed.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

need() { command -v "$1" >/dev/null 2>&1 || die "$1 not found on PATH ($2)"; }

java_major() {
  java -XshowSettings:properties -version 2>&1 |
    sed -n 's/^ *java\.specification\.version = \([0-9]*\).*/\1/p'
}

install_kafka() {
  local want have="" pid
  want="$(sha256sum "$KAFKA_POM" | cut -d' ' -f1)"
  [[ -s "$KAFKA_STAMP" ]] && have="$(<"$KAFKA_STAMP")"
  if [[ "$want" == "$have" ]] && compgen -G "$KAFKA_LIBS/kafka_2.13-*.jar" >/dev/null; then
    log "kafka: up to date ($(cd "$KAFKA_LIBS" && echo kafka_2.13-*.jar))"
    return 0
  fi
  if pid="$(service_pid kafka)"; then
    die "kafka: the jars need refreshing but the broker (pid $pid) runs from them; run deploy/local/stop.sh first"
  fi
  need mvn "Maven 3.8+ resolves the Kafka jars from Maven Central"
  local t0=$SECONDS tmp="$STACK_DIR/kafka/libs.tmp"
  log "kafka: resolving jars from Maven Central (deploy/local/kafka/pom.xml) ..."
  rm -rf "$tmp"
  mkdir -p "$tmp"
  local mvn_log="$LOG_DIR/install-kafka-mvn.log"
  if ! mvn -B -ntp -f "$KAFKA_POM" dependency:copy-dependencies \
    -DoutputDirectory="$tmp" -DincludeScope=runtime >"$mvn_log" 2>&1; then
    tail -n 30 "$mvn_log" >&2
    die "kafka: mvn dependency:copy-dependencies failed (full output: $mvn_log)"
  fi
  compgen -G "$tmp/kafka_2.13-*.jar" >/dev/null || die "kafka: kafka_2.13 jar missing after mvn"
  rm -rf "$KAFKA_LIBS"
  mv "$tmp" "$KAFKA_LIBS"
  printf '%s\n' "$want" >"$KAFKA_STAMP"
  log "kafka: $(ls "$KAFKA_LIBS" | wc -l) jars in .stack/kafka/libs ($((SECONDS - t0)) s)"
}

# First line of `weed version`, e.g. "version 30GB 4.53 7506e5f91cd6 linux amd64".
weed_version() { "$WEED" version 2>/dev/null | sed -n 1p || true; }

weed_is_pinned() {
  [[ -x "$WEED" ]] || return 1
  [[ "$(weed_version)" == *" $SEAWEED_COMMIT "* ]]
}

install_weed() {
  if weed_is_pinned; then
    log "seaweedfs: up to date ($(weed_version))"
    return 0
  fi
  need go "Go builds SeaweedFS from source"
  local t0=$SECONDS dir
  log "seaweedfs: fetching $SEAWEED_MODULE@$SEAWEED_VERSION ..."
  # `go install mod@ver` refuses modules whose go.mod has replace directives,
  # so download the module and build inside its directory instead.
  dir="$(go mod download -json "$SEAWEED_MODULE@$SEAWEED_VERSION" |
    sed -n 's/^[[:space:]]*"Dir": "\(.*\)",\{0,1\}$/\1/p')"
  [[ -n "$dir" && -d "$dir/weed" ]] || die "seaweedfs: go mod download gave no module dir"
  log "seaweedfs: building weed (first build takes several minutes) ..."
  mkdir -p "$BIN_DIR"
  (
    cd "$dir"
    go build -trimpath -buildvcs=false \
      -ldflags "-s -w -X $SEAWEED_MODULE/weed/util/version.COMMIT=$SEAWEED_COMMIT" \
      -o "$WEED.tmp" ./weed
  ) || die "seaweedfs: go build failed"
  mv -f "$WEED.tmp" "$WEED"
  weed_is_pinned || die "seaweedfs: built binary does not report commit $SEAWEED_COMMIT"
  log "seaweedfs: built .stack/bin/weed ($((SECONDS - t0)) s): $(weed_version)"
}

main() {
  stack_lock
  need java "a JDK/JRE 17+ runs Kafka"
  local jv
  jv="$(java_major)"
  [[ -n "$jv" && "$jv" -ge 17 ]] || die "Kafka 4 needs Java 17+, found: $(java -version 2>&1 | head -1)"
  mkdir -p "$STACK_DIR/kafka" "$BIN_DIR" "$CONF_DIR" "$DATA_DIR" "$LOG_DIR" "$RUN_DIR"
  install_kafka
  install_weed
  log "installed into $STACK_DIR"
}

main "$@"
