#!/usr/bin/env bash
# The whole test suite, from a fresh clone on a fresh machine.
#
# Installs what is missing (redis-server, also run as a three-node Redis Cluster; Chromium and promtool from Debian packages; the Kafka-protocol broker
# Tansu with cargo, about 9 minutes on 2 cores, reused when already installed; the JS tag's build tools
# and the official Snowplow/Segment clients from npm and PyPI, pinned by lockfiles), starts one
# redis-server and one
# broker on ephemeral loopback ports for the whole suite, runs formatting and lint checks and every
# test, and stops the servers on the way out. Tests isolate themselves with unique topics, consumer
# groups and key namespaces, so they share the two servers and run in parallel.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
# One build from scratch (CI, a fresh clone): incremental artifacts would only double the disk used.
export CARGO_INCREMENTAL=${CARGO_INCREMENTAL:-0}

log() { printf '\n==> %s\n' "$*" >&2; }
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

if ! command -v redis-server >/dev/null; then
  log "installing redis-server (Debian package)"
  as_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq redis-server >/dev/null
fi
if ! command -v curl >/dev/null; then
  log "installing curl (Debian package) for the README's examples (tailor/tests/docs.rs)"
  as_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq curl >/dev/null
fi
if ! command -v promtool >/dev/null; then
  log "installing promtool (Debian package prometheus) to check deploy/prometheus (tailor/tests/ops.rs)"
  as_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq prometheus >/dev/null
fi
if [ ! -x /usr/bin/chromium ]; then
  log "installing Chromium (Debian package) for the browser tests"
  as_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq chromium chromium-driver >/dev/null
fi
# Reinstalls only when the lockfile changed since the last install.
stamp_ok() { [ -f "$1" ] && [ "$(cat "$1")" = "$(sha256sum "$2" | cut -d' ' -f1)" ]; }
stamp() { sha256sum "$2" | cut -d' ' -f1 >"$1"; }
for dir in collector/tag tests/clients; do
  if ! stamp_ok "$dir/node_modules/.tailor-stamp" "$dir/package-lock.json"; then
    log "installing npm packages in $dir"
    npm ci --prefix "$dir" --no-audit --no-fund --loglevel=error
    stamp "$dir/node_modules/.tailor-stamp" "$dir/package-lock.json"
  fi
done
venv=tests/clients/.venv
if ! stamp_ok "$venv/.tailor-stamp" tests/clients/requirements.txt; then
  log "installing the Python client libraries in $venv"
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r tests/clients/requirements.txt
  stamp "$venv/.tailor-stamp" tests/clients/requirements.txt
fi
log "bundling the official browser trackers; checking the committed tag build matches its source"
npm run --prefix tests/clients --silent bundle >/dev/null
npm run --prefix collector/tag --silent check
if ! command -v tansu >/dev/null; then
  log "installing the Tansu broker (cargo install, about 9 minutes)"
  cargo install tansu --locked --features dynostore,libsql
fi

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
work=$(mktemp -d -t tailor-test.XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

redis_port=$(free_port)
mkdir -p "$work/redis"
redis-server --bind 127.0.0.1 --port "$redis_port" --dir "$work/redis" --save "" --appendonly yes \
  --logfile "$work/redis.log" &
pids+=($!)

# A three-node Redis Cluster (Debian's redis-server), for the cluster store's tests. Each node's
# cluster bus gets its own free port (the default, port + 10000, can fall outside the port range).
cluster_nodes=()
for i in 1 2 3; do
  port=$(free_port)
  bus=$(free_port)
  mkdir -p "$work/cluster-$i"
  redis-server --bind 127.0.0.1 --port "$port" --cluster-port "$bus" --dir "$work/cluster-$i" \
    --cluster-enabled yes --cluster-config-file nodes.conf --save "" --appendonly no \
    --logfile "$work/cluster-$i.log" &
  pids+=($!)
  cluster_nodes+=("127.0.0.1:$port")
done

kafka_port=$(free_port)
(cd "$work" && exec tansu broker --listener-url "tcp://127.0.0.1:$kafka_port" \
  --advertised-listener-url "tcp://127.0.0.1:$kafka_port" --storage-engine "sqlite://tansu.db" \
  >"$work/tansu.log" 2>&1) &
pids+=($!)

wait_port() {
  for _ in $(seq 1 100); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
    sleep 0.1
  done
  echo "$2 did not start on port $1; its log:" >&2
  cat "$3" >&2 || true
  exit 1
}
wait_port "$redis_port" redis-server "$work/redis.log"
wait_port "$kafka_port" tansu "$work/tansu.log"
for node in "${cluster_nodes[@]}"; do
  wait_port "${node#*:}" "redis-server (cluster)" "$work/cluster-1.log"
done
redis-cli --cluster create "${cluster_nodes[@]}" --cluster-replicas 0 --cluster-yes >"$work/cluster.log" 2>&1 \
  || { cat "$work/cluster.log" >&2; exit 1; }
for _ in $(seq 1 100); do
  ok=1
  for node in "${cluster_nodes[@]}"; do
    redis-cli -h 127.0.0.1 -p "${node#*:}" cluster info | grep -q '^cluster_state:ok' || ok=0
  done
  [ "$ok" = 1 ] && break
  sleep 0.1
done
[ "$ok" = 1 ] || { echo "the Redis Cluster did not come up; see $work/cluster.log" >&2; exit 1; }
export TAILOR_TEST_REDIS_CLUSTER=$(printf 'redis://%s,' "${cluster_nodes[@]}" | sed 's/,$//')
export TAILOR_TEST_REDIS="redis://127.0.0.1:$redis_port"
export TAILOR_TEST_KAFKA="127.0.0.1:$kafka_port"
log "redis-server at $TAILOR_TEST_REDIS, Redis Cluster at $TAILOR_TEST_REDIS_CLUSTER, broker at $TAILOR_TEST_KAFKA"

log "cargo fmt --check"
cargo fmt --all -- --check
log "cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings
log "cargo test"
cargo test --workspace --all-targets --locked
log "all tests passed"
