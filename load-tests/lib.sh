# Shared by the load-test scripts (sourced): a release build, a redis-server and a Tansu broker of
# their own on ephemeral loopback ports, and `tailor run` on them (or embedded), all stopped on exit.
# Needs tansu and redis-server on PATH (scripts/test.sh installs both).
set -euo pipefail
cd "$(dirname "$0")/.."
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
work=$(mktemp -d -t tailor-load.XXXXXX)
pids=()
# Stops every process started here (a run of bench.sh stops them between configurations).
stop_all() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; pids=(); }
cleanup() { stop_all; rm -rf "$work"; }
trap cleanup EXIT
trap "exit 130" INT TERM

build() { cargo build --release -p tailor -p tailor-load; }

# Starts redis-server and Tansu (log in memory unless SOAK_BROKER_STORAGE says otherwise): sets
# redis_port and kafka_port.
start_backends() {
  redis_port=$(free_port) kafka_port=$(free_port)
  redis-server --bind 127.0.0.1 --port "$redis_port" --dir "$work" --save "" --appendonly no --logfile "$work/redis.log" &
  pids+=($!)
  (cd "$work" && exec tansu broker --listener-url "tcp://127.0.0.1:$kafka_port" \
    --advertised-listener-url "tcp://127.0.0.1:$kafka_port" --storage-engine "${SOAK_BROKER_STORAGE:-memory://tansu/}" >"$work/tansu.log" 2>&1) &
  pids+=($!)
  sleep 2
}

# Starts `tailor run` (BIN, by default the release build) with the load configuration plus EXTRA (a
# TOML file, may be empty), on the backends if they were started, embedded otherwise: sets
# http_port, tailor_pid, key (a collect key) and admin_key. TAILOR_COMMAND=collector starts the
# collector alone instead (on the backends; pair it with `tailor-load --collector-only`).
start_tailor() {
  local extra=${1:-} bin=${2:-target/release/tailor}
  # The load generator is one client IP: lift the per-IP rate limit for the run.
  printf '[collector]\nrate_limit_per_sec = 1000000\nrate_limit_burst = 1000000\nspool_dir = "%s"\n' "$work/spool" >"$work/load.toml"
  if [ -n "$extra" ]; then cat "$extra" >>"$work/load.toml"; fi
  # A site in a configuration file takes server-side events with a collect key only.
  key=$(target/release/tailor keys create --config "$work/load.toml" --site demo --scope collect --name load | head -1)
  admin_key=$(target/release/tailor keys create --config "$work/load.toml" --site demo --scope admin --name load-admin | head -1)
  http_port=$(free_port)
  local backends=()
  if [ -n "${redis_port:-}" ]; then
    backends=(--kafka "127.0.0.1:$kafka_port" --redis "redis://127.0.0.1:$redis_port")
  fi
  "$bin" "${TAILOR_COMMAND:-run}" --config "$work/load.toml" "${backends[@]}" --listen "127.0.0.1:$http_port" >"$work/tailor.log" 2>&1 &
  tailor_pid=$!
  pids+=($tailor_pid)
  local ready=0
  for _ in $(seq 1 200); do
    if curl -fsS "http://127.0.0.1:$http_port/readyz" >/dev/null 2>&1; then ready=1; break; fi
    sleep 0.3
  done
  [ "$ready" = 1 ] || { echo "tailor did not become ready; its log:" >&2; tail -n 30 "$work/tailor.log" >&2; exit 1; }
}
