#!/usr/bin/env bash
# Where Tailor's CPU goes under load: `perf record` on the `tailor run` process while tailor-load
# runs a scenario (ingest: the collector's requests and the processor's drain; recommend: the
# recommendations after an unprofiled ingest has seeded the models), then the flat profile (self
# time by function), the time by thread (HTTP workers, the processor's loop, rdkafka's), the CPU
# seconds each process (Tailor, redis-server, the broker) used meanwhile and, on Kafka and Redis,
# Redis' time by command.
#
# With CALLERS=1 it profiles a build with frame pointers (target/profiling, built on the first
# use: minutes) and also prints each of Tailor's own functions with the time spent in it and what
# it calls: where a flat profile's allocation, hashing and sorting come from.
#
# LOAD_ARGS adds options to tailor-load's runs; with TAILOR_COMMAND=collector (lib.sh) and
# LOAD_ARGS=--collector-only it profiles the collector alone.
#
# PERF_DATA=FILE keeps the recording (e.g. `perf report -i FILE --no-children -S memmove -G` for
# who calls one function).
#
# Usage: [CALLERS=1] [PERF_DATA=FILE] load-tests/profile.sh embedded|kafka SECONDS [TOP] [ingest|recommend]
# Needs perf (linux-perf) and, for kafka, tansu and redis-server (lib.sh).
source "$(dirname "$0")/lib.sh"
mode=${1:?embedded or kafka} seconds=${2:-10} top=${3:-40} scenario=${4:-ingest}
command -v perf >/dev/null || { echo "perf is not installed (apt-get install linux-perf)" >&2; exit 1; }
build
bin=target/release/tailor record=()
if [ "${CALLERS:-0}" = 1 ]; then
  CARGO_TARGET_DIR=target/profiling RUSTFLAGS="-C force-frame-pointers=yes" \
    CARGO_PROFILE_RELEASE_DEBUG=line-tables-only cargo build --release -p tailor
  bin=target/profiling/release/tailor record=(-g)
fi
redis_port='' kafka_port=''
if [ "$mode" = kafka ]; then start_backends; fi
start_tailor "" "$bin"
backends=()
if [ "$mode" = kafka ]; then
  backends=(--kafka "127.0.0.1:$kafka_port" --redis "redis://127.0.0.1:$redis_port")
fi
load() {
  target/release/tailor-load --target "http://127.0.0.1:$http_port" --seconds "$seconds" \
    --concurrency 8 --key "$key" --pid "$tailor_pid" "${backends[@]}" ${LOAD_ARGS:-} --scenarios "$1" | grep -v INFO
}
if [ "$scenario" = recommend ]; then
  echo "## seeding (not profiled)"; load ingest
  if [ "$mode" = kafka ]; then redis-cli -p "$redis_port" CONFIG RESETSTAT >/dev/null; fi
fi
# CPU seconds (user + system) a process has used so far, from /proc.
cpu_secs() { awk -v hz="$(getconf CLK_TCK)" '{print ($14 + $15) / hz}' "/proc/$1/stat" 2>/dev/null || echo 0; }
procs=("tailor:$tailor_pid")
if [ "$mode" = kafka ]; then procs+=("redis-server:${pids[0]}" "tansu:${pids[1]}"); fi
declare -A before
for p in "${procs[@]}"; do before[$p]=$(cpu_secs "${p#*:}"); done
started=$(date +%s.%N)
perf record -q "${record[@]}" -F 499 -p "$tailor_pid" -o "$work/perf.data" 2>"$work/perf.log" &
perf_pid=$!
sleep 1
echo "## $scenario (profiled)"; load "$scenario"
elapsed=$(awk -v a="$(date +%s.%N)" -v b="$started" 'BEGIN { printf "%.1f", a - b }')
kill -INT "$perf_pid"; wait "$perf_pid" 2>/dev/null || true
if [ -n "${PERF_DATA:-}" ]; then cp "$work/perf.data" "$PERF_DATA"; fi
echo; echo "## CPU used during the run ($elapsed s of wall time on $(nproc) cores)"
for p in "${procs[@]}"; do
  awk -v n="${p%%:*}" -v a="$(cpu_secs "${p#*:}")" -v b="${before[$p]}" -v t="$elapsed" \
    'BEGIN { printf "%s: %.1f CPU s (%.0f%% of one core)\n", n, a - b, 100 * (a - b) / t }'
done
if [ "$mode" = kafka ]; then
  echo; echo "## Redis time by command (INFO commandstats: calls, usec, usec per call)"
  redis-cli -p "$redis_port" INFO commandstats | tr -d '\r' | grep '^cmdstat_' |
    sed -E 's/^cmdstat_([^:]*):calls=([0-9]+),usec=([0-9]+),usec_per_call=([0-9.]+).*/\3 \1 \2 \4/' |
    sort -rn | head -n 12 | awk '{ printf "%s: %s calls, %.2f s, %s us per call\n", $2, $3, $1 / 1e6, $4 }'
fi
echo; echo "## self time by function (top $top)"
perf report -i "$work/perf.data" --no-children --sort symbol --stdio -g none 2>/dev/null | grep -v '^#' | grep -v '^$' | sed 's/  */ /g' | head -n "$top" || true
echo; echo "## by thread"
perf report -i "$work/perf.data" --no-children --sort comm --stdio -g none 2>/dev/null | grep -v '^#' | grep -v '^$' | sed 's/  */ /g' | head -n 15 || true
if [ "${CALLERS:-0}" = 1 ]; then
  echo; echo "## Tailor's own functions, with what they call (top $top)"
  perf report -i "$work/perf.data" --children --sort symbol --stdio -g none 2>/dev/null | grep -v '^#' |
    grep 'tailor_' | sed 's/  */ /g' | cut -c1-200 | head -n "$top" || true
fi
