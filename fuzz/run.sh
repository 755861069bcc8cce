#!/usr/bin/env bash
# A long fuzz run of every target with libFuzzer (cargo-fuzz, nightly toolchain), starting from the
# seeds in fuzz/seeds/<target>/: `fuzz/run.sh [SECONDS per target, default 60]`. Prints one line per
# target (executions, coverage, corpus, crashes); a crash's input lands in fuzz/artifacts/<target>/.
set -euo pipefail
cd "$(dirname "$0")"
secs=${1:-60}
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
cargo +nightly fuzz build -O
printf '| target | seconds | executions | exec/s | coverage (edges) | corpus | crashes |\n|---|---:|---:|---:|---:|---:|---:|\n'
for t in $(cargo +nightly fuzz list); do
  mkdir -p "corpus/$t"
  cp -n seeds/"$t"/* "corpus/$t/" 2>/dev/null || true
  log=$(mktemp)
  status=0
  cargo +nightly fuzz run -O "$t" "corpus/$t" -- -max_total_time="$secs" -print_final_stats=1 >"$log" 2>&1 || status=$?
  runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo '?')
  rate=$(grep -o 'stat::average_exec_per_sec: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo '?')
  cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 | grep -o '[0-9]*' || echo '?')
  corpus=$(ls "corpus/$t" | wc -l)
  crashes=$(ls "artifacts/$t" 2>/dev/null | wc -l)
  printf '| %s | %s | %s | %s | %s | %s | %s |\n' "$t" "$secs" "$runs" "$rate" "$cov" "$corpus" "$crashes"
  if [ "$status" != 0 ] && [ "$crashes" = 0 ]; then tail -20 "$log" >&2; fi
  rm -f "$log"
done
