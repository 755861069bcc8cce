#!/usr/bin/env bash
# The scenarios of docs/benchmarks.md (baseline, ingest, recommend, the processor's drain) against
# `tailor run`, embedded or on a Tansu broker and a redis-server of its own, once per configuration
# given, so a change and its baseline are measured side by side in one run.
#
# Usage: load-tests/bench.sh embedded|kafka SECONDS CONCURRENCY [NAME=CONFIG.toml ...]
#   NAME=FILE adds FILE to the load configuration for that run; no pair runs the defaults once;
#   NAME=FILE@BINARY runs that configuration with another build of tailor (e.g. a baseline built
#   with other features and copied aside).
#   LOAD_ARGS adds tailor-load options (e.g. LOAD_ARGS="--batch 20 --scenarios baseline,ingest";
#   LOAD_ARGS="--ranker target/ranker.json" adds the learned re-ranking's scenario).
# With kafka, tailor-load is also given the broker and Redis, for the processor's ceiling, the bare
# recommendation and memory per member; the Tailor's RSS is read from its pid.
# Each configuration gets fresh backends and a fresh Tailor (the same traffic from the same seed).
source "$(dirname "$0")/lib.sh"
mode=${1:?embedded or kafka} seconds=${2:-8} concurrency=${3:-8}
shift 3 || true
[ $# -gt 0 ] || set -- "defaults="
build
for run in "$@"; do
  name=${run%%=*} extra=${run#*=} bin=target/release/tailor
  if [[ $extra == *@* ]]; then bin=${extra#*@} extra=${extra%%@*}; fi
  redis_port='' kafka_port=''
  if [ "$mode" = kafka ]; then start_backends; fi
  start_tailor "$extra" "$bin"
  echo "## $name ($mode)"
  backends=()
  if [ "$mode" = kafka ]; then
    backends=(--kafka "127.0.0.1:$kafka_port" --redis "redis://127.0.0.1:$redis_port")
  fi
  # shellcheck disable=SC2086
  target/release/tailor-load --target "http://127.0.0.1:$http_port" --seconds "$seconds" \
    --concurrency "$concurrency" --key "$key" --admin-key "$admin_key" --pid "$tailor_pid" "${backends[@]}" ${LOAD_ARGS:-}
  stop_all
  echo
done
