#!/usr/bin/env bash
# The soak of docs/reliability.md: `tailor run` on a Tansu broker and a redis-server of its own
# (ephemeral loopback ports), steady open-loop traffic for MINUTES at RATE page views a second plus
# RECOMMEND recommendation requests a second, sampled every 10 s: latency, the processor's backlog,
# the service's resident memory and Redis's used_memory, and beside the ingest latency a bare
# producer's on the same broker (the baseline). Writes OUT.csv and OUT.svg.
#
# Usage: load-tests/soak.sh [MINUTES=30] [RATE=1300] [RECOMMEND=50] [OUT=target/soak]
# Needs tansu and redis-server on PATH (scripts/test.sh installs both). Half the processor's measured
# capacity on Kafka and Redis at the soak's log size (docs/benchmarks.md) is the rate the issue asks for.
source "$(dirname "$0")/lib.sh"
minutes=${1:-30} rate=${2:-1300} recommend=${3:-50} out=${4:-target/soak}
build
start_backends
start_tailor "${SOAK_CONFIG:-}"
mkdir -p "$(dirname "$out")"
target/release/tailor-load --target "http://127.0.0.1:$http_port" --soak "$minutes" --rate "$rate" \
  --recommend-rate "$recommend" --concurrency 8 --key "$key" --pid "$tailor_pid" --redis "redis://127.0.0.1:$redis_port" \
  --kafka "127.0.0.1:$kafka_port" \
  --out "$out.csv" --plot "$out.svg"
echo "tailor's log: $(grep -c ' ERROR ' "$work/tailor.log" || true) error lines" >&2
