#!/usr/bin/env bash
# The soak's traffic against a system-allocator build of `tailor run` under heaptrack: the live heap
# over time and what holds it at the end, by allocation site (docs/reliability.md, "Heap profile").
# The production build allocates with mimalloc, which heaptrack does not see; the live heap does not
# depend on the allocator.
#
# Usage: load-tests/heap.sh [MINUTES=12] [RATE=600] [EXTRA.toml]
# Needs heaptrack (apt-get install heaptrack), tansu and redis-server. Writes target/heap/: the
# heaptrack file, the soak's CSV, the live heap per minute beside RSS, and the top holders.
source "$(dirname "$0")/lib.sh"
minutes=${1:-12} rate=${2:-600} extra=${3:-}
command -v heaptrack >/dev/null || { echo "heaptrack is not installed (apt-get install heaptrack)" >&2; exit 1; }
out=target/heap
mkdir -p "$out"
cargo build --release -p tailor --no-default-features
cp target/release/tailor "$work/tailor-sysalloc"
build
start_backends
# A wrapper whose process is the profiled one: heaptrack runs Tailor as its child.
printf '#!/bin/sh\nexec heaptrack -o %s/heap "%s/tailor-sysalloc" "$@"\n' "$work" "$work" >"$work/profiled"
chmod +x "$work/profiled"
start_tailor "$extra" "$work/profiled"
app=$(pgrep -f "^$work/tailor-sysalloc run" | head -1)
target/release/tailor-load --target "http://127.0.0.1:$http_port" --soak "$minutes" --rate "$rate" \
  --recommend-rate 50 --concurrency 8 --key "$key" --pid "$app" --redis "redis://127.0.0.1:$redis_port" \
  --kafka "127.0.0.1:$kafka_port" --out "$out/soak.csv" | tail -n 20
# A graceful stop, so heaptrack writes its file.
kill -TERM "$app"
for _ in $(seq 1 120); do kill -0 "$app" 2>/dev/null || break; sleep 1; done
for _ in $(seq 1 60); do [ -s "$work/heap.zst" ] && ! pgrep -f "heaptrack_interpret" >/dev/null && break; sleep 1; done
cp "$work/heap.zst" "$out/heap.zst"
heaptrack_print -f "$out/heap.zst" -p 0 -a 0 -l 0 -T 0 -s 0 -M "$out/massif.out" \
  --flamegraph-cost-type peak -F "$out/peak-stacks.txt" | grep -E "peak heap|peak RSS"
python3 - "$out" <<'PY'
import collections, csv, re, sys
out = sys.argv[1]
heap, t = collections.defaultdict(list), None
for line in open(f"{out}/massif.out"):
    if line.startswith("time="):
        t = float(line.split("=")[1])
    elif line.startswith("mem_heap_B="):
        heap[int(t // 60)].append(int(line.split("=")[1]))
rss = collections.defaultdict(list)
for r in csv.DictReader(open(f"{out}/soak.csv")):
    rss[int(float(r["minute"]))].append(float(r["rss_mb"]))
print("\n| minute | live heap MB (median) | RSS MB (median) |\n|---:|---:|---:|")
for m in sorted(heap):
    h = sorted(heap[m])
    r = sorted(rss.get(m, [0.0]))
    print(f"| {m} | {h[len(h) // 2] / 1e6:.1f} | {r[len(r) // 2]:.1f} |")
# What holds the heap at its peak, by the innermost Tailor (or start-up) frame of each stack.
held = collections.Counter()
for line in open(f"{out}/peak-stacks.txt"):
    stack, _, cost = line.rstrip().rpartition(" ")
    if not cost.isdigit():
        continue
    ours = [re.sub(r"::h[0-9a-f]{16}$", "", f) for f in stack.split(";") if re.search(r"tailor_|hdrhistogram|rd_kafka_", f)]
    held[ours[-1][:110] if ours else "(outside Tailor's code)"] += int(cost)
print("\n| MB at the peak | innermost Tailor frame |\n|---:|---|")
for site, b in held.most_common(15):
    print(f"| {b / 1e6:.2f} | `{site}` |")
PY
