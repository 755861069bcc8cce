#!/usr/bin/env bash
# Where Tailor's CPU goes under load: `perf record` on the `tailor run` process while tailor-load
# runs the ingest scenario and the processor drains it, then the flat profile (self time by
# function) and the time by thread (collector's HTTP workers, the processor's loop, rdkafka's).
#
# Usage: load-tests/profile.sh embedded|kafka SECONDS [TOP]
# Needs perf (linux-perf) and, for kafka, tansu and redis-server (lib.sh).
source "$(dirname "$0")/lib.sh"
mode=${1:?embedded or kafka} seconds=${2:-10} top=${3:-40}
command -v perf >/dev/null || { echo "perf is not installed (apt-get install linux-perf)" >&2; exit 1; }
build
redis_port='' kafka_port=''
if [ "$mode" = kafka ]; then start_backends; fi
start_tailor ""
perf record -q -F 499 -p "$tailor_pid" -o "$work/perf.data" 2>"$work/perf.log" &
perf_pid=$!
sleep 1
backends=()
if [ "$mode" = kafka ]; then
  backends=(--kafka "127.0.0.1:$kafka_port" --redis "redis://127.0.0.1:$redis_port")
fi
target/release/tailor-load --target "http://127.0.0.1:$http_port" --seconds "$seconds" \
  --concurrency 8 --key "$key" --pid "$tailor_pid" "${backends[@]}" --scenarios ingest | grep -v INFO
kill -INT "$perf_pid"; wait "$perf_pid" 2>/dev/null || true
echo; echo "## self time by function (top $top)"
perf report -i "$work/perf.data" --no-children --sort symbol --stdio 2>/dev/null | grep -v '^#' | grep -v '^$' | sed 's/  */ /g' | head -n "$top"
echo; echo "## by thread"
perf report -i "$work/perf.data" --no-children --sort comm --stdio 2>/dev/null | grep -v '^#' | grep -v '^$' | sed 's/  */ /g' | head -n 15
