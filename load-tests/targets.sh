#!/usr/bin/env bash
# Issue 11's performance targets in one command: the scenarios embedded, then on a Tansu broker and
# a redis-server of their own (bench.sh, batches of 20 as the collector's target says), each run
# writing its report, then the targets judged on both reports (`tailor-load --judge`): the table of
# docs/benchmarks.md, "Where the performance targets stand", with the figure each was judged on.
#
# Usage: load-tests/targets.sh [SECONDS] [CONCURRENCY]   (defaults 8 and 8)
#   The reports go to TARGETS_DIR (default target/targets); LOAD_ARGS adds tailor-load options.
# Needs tansu and redis-server on PATH (scripts/test.sh installs both).
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-8} concurrency=${2:-8}
out=${TARGETS_DIR:-target/targets}
mkdir -p "$out"
rm -f "$out/embedded.json" "$out/kafka.json"
for mode in embedded kafka; do
  LOAD_ARGS="--batch 20 --report $out/$mode.json ${LOAD_ARGS:-}" load-tests/bench.sh "$mode" "$seconds" "$concurrency"
done
echo "## Issue 11's targets, judged on the two runs above"
echo
target/release/tailor-load --judge "$out/embedded.json,$out/kafka.json"
