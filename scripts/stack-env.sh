# shellcheck shell=bash
# Environment for talking to the local pagevault stack (Kafka + SeaweedFS S3).
#
#   source scripts/stack-env.sh
#
# Every variable is only set when it is unset or empty, so callers can
# override any of them before sourcing (e.g. PV_KAFKA_PARTITIONS=8).
# The same names are used by deploy/local/*.sh, docker-compose.yml and the
# agent / compactor / restorer services.
#
# Dev-only credentials: the S3 key pair below is what deploy/local/start.sh
# configures SeaweedFS with (and what deploy/seaweedfs/s3.json contains for
# docker-compose). Never reuse them for anything reachable from a network.

# Kafka (frame log)
: "${PV_KAFKA_BROKERS:=127.0.0.1:9092}"
: "${PV_KAFKA_TOPIC:=pagevault.frames}"
: "${PV_KAFKA_DLQ_TOPIC:=pagevault.frames.dlq}"
: "${PV_KAFKA_PARTITIONS:=4}"
: "${PV_KAFKA_RETENTION_HOURS:=72}"

# S3 (object store, SeaweedFS locally)
: "${PV_S3_ENDPOINT:=http://127.0.0.1:8333}"
: "${PV_S3_BUCKET:=pagevault}"
: "${PV_S3_REGION:=us-east-1}"
: "${PV_S3_ACCESS_KEY:=pagevault-dev}"
: "${PV_S3_SECRET_KEY:=pagevault-dev-secret-7c1f0e9a52b84d36}"

export PV_KAFKA_BROKERS PV_KAFKA_TOPIC PV_KAFKA_DLQ_TOPIC PV_KAFKA_PARTITIONS PV_KAFKA_RETENTION_HOURS
export PV_S3_ENDPOINT PV_S3_BUCKET PV_S3_REGION PV_S3_ACCESS_KEY PV_S3_SECRET_KEY
