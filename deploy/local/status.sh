#!/usr/bin/env bash
# Prints what of the local stack runs. Exit 0 when Kafka and SeaweedFS are both
# up (our process alive and its port accepting connections), 1 otherwise.
#   --deep   also make real requests: a Kafka topic listing and a signed S3
#            HeadBucket on PV_S3_BUCKET (slower: starts a JVM and node).
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

deep=0
[[ "${1:-}" == "--deep" ]] && deep=1

rc=0
report() { # NAME HOST PORT LOGFILE
  local name="$1" host="$2" port="$3" logfile="$4" pid
  if pid="$(service_pid "$name")"; then
    if port_open "$host" "$port"; then
      printf '%-10s up        pid %-8s %s:%s  log %s\n' "$name" "$pid" "$host" "$port" "${logfile#"$REPO_ROOT"/}"
    else
      printf '%-10s starting  pid %-8s %s:%s not accepting connections yet  log %s\n' \
        "$name" "$pid" "$host" "$port" "${logfile#"$REPO_ROOT"/}"
      rc=1
    fi
  else
    if port_open "$host" "$port"; then
      printf '%-10s down      (but %s:%s is in use by a process this stack did not start)\n' "$name" "$host" "$port"
    else
      printf '%-10s down\n' "$name"
    fi
    rc=1
  fi
}

report kafka "$KAFKA_HOST" "$KAFKA_PORT" "$LOG_DIR/kafka.log"
report seaweedfs "$S3_HOST" "$S3_PORT" "$LOG_DIR/seaweedfs.log"

if ((deep && rc == 0)); then
  if topics="$(kafka_tool org.apache.kafka.tools.TopicCommand \
    --bootstrap-server "$KAFKA_HOST:$KAFKA_PORT" --command-config "$CONF_DIR/kafka-client.properties" --list)"; then
    printf 'kafka topics: %s\n' "$(tr '\n' ' ' <<<"$topics")"
  else
    printf 'kafka: metadata request failed\n'
    rc=1
  fi
  node --no-warnings "$LOCAL_DIR/s3-init.mjs" check || rc=1
fi
exit "$rc"
