#!/usr/bin/env bash
# The soak of docs/reliability.md: `tailor run` on a Tansu broker and a redis-server of its own
# (ephemeral loopback ports), steady open-loop traffic for MINUTES at RATE page views a second plus
# RECOMMEND recommendation requests a second, sampled every 10 s: latency, the processor's backlog,
# the service's resident memory and Redis's used_memory. Writes OUT.csv and OUT.svg.
#
# Usage: load-tests/soak.sh [MINUTES=30] [RATE=1100] [RECOMMEND=50] [OUT=target/soak]
# Needs tansu and redis-server on PATH (scripts/test.sh installs both). Half the processor's measured
# capacity on Kafka and Redis (docs/benchmarks.md) is the rate the issue asks for.
set -euo pipefail
cd "$(dirname "$0")/.."
minutes=${1:-30} rate=${2:-1100} recommend=${3:-50} out=${4:-target/soak}
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
work=$(mktemp -d -t tailor-soak.XXXXXX)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
trap "exit 130" INT TERM

cargo build --release -p tailor -p tailor-load
redis_port=$(free_port) kafka_port=$(free_port) http_port=$(free_port)
redis-server --bind 127.0.0.1 --port "$redis_port" --dir "$work" --save "" --appendonly no --logfile "$work/redis.log" &
pids+=($!)
(cd "$work" && exec tansu broker --listener-url "tcp://127.0.0.1:$kafka_port" \
  --advertised-listener-url "tcp://127.0.0.1:$kafka_port" --storage-engine "${SOAK_BROKER_STORAGE:-memory://tansu/}" >"$work/tansu.log" 2>&1) &
pids+=($!)
sleep 2
# The load generator is one client IP: lift the per-IP rate limit for the run.
printf '[collector]\nrate_limit_per_sec = 1000000\nrate_limit_burst = 1000000\nspool_dir = "%s"\n' "$work/spool" >"$work/load.toml"
# A site in a configuration file takes server-side events with a collect key only.
key=$(target/release/tailor keys create --config "$work/load.toml" --site demo --scope collect --name soak | head -1)
target/release/tailor run --config "$work/load.toml" --kafka "127.0.0.1:$kafka_port" \
  --redis "redis://127.0.0.1:$redis_port" --listen "127.0.0.1:$http_port" >"$work/tailor.log" 2>&1 &
tailor_pid=$!
pids+=($tailor_pid)
ready=0
for _ in $(seq 1 200); do
  if curl -fsS "http://127.0.0.1:$http_port/readyz" >/dev/null 2>&1; then ready=1; break; fi
  sleep 0.3
done
[ "$ready" = 1 ] || { echo "tailor did not become ready; its log:" >&2; tail -n 30 "$work/tailor.log" >&2; exit 1; }
mkdir -p "$(dirname "$out")"
target/release/tailor-load --target "http://127.0.0.1:$http_port" --soak "$minutes" --rate "$rate" \
  --recommend-rate "$recommend" --concurrency 8 --key "$key" --pid "$tailor_pid" --redis "redis://127.0.0.1:$redis_port" \
  --out "$out.csv" --plot "$out.svg"
echo "tailor's log: $(grep -c ' ERROR ' "$work/tailor.log" || true) error lines" >&2
