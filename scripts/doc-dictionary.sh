#!/usr/bin/env bash
# Trains the zstd dictionary state documents are compressed with (core/src/stored.dict), on the
# documents the real processor builds from another shop's traffic than the benchmark's: the first
# 150,000 events of the YOOCHOOSE training file (../shared/data/clickstream, read-only), imported
# into a Tailor on a broker and Redis of its own that writes its documents as plain JSON
# (processor.compact_storage = false), 2,000 of them sampled, `zstd --train` to 2 KB.
#
# Usage: scripts/doc-dictionary.sh OUT.dict [DICT_ID]
# A dictionary is part of the stored format: a document compressed with one names its id and needs
# exactly it to be read, so a new dictionary takes a new id (core/src/stored.rs keeps every one it
# reads). Needs tansu, redis-server, zstd (Debian package) and a release build.
set -euo pipefail
out=${1:?output file}
dict_id=${2:-1952541036}
source "$(dirname "$0")/../load-tests/lib.sh"
build
start_backends
printf '[processor]\ncompact_storage = false\n' >"$work/plain.toml"
start_tailor "$work/plain.toml"
data=../shared/data/clickstream/train.jsonl.gz
# (zcat stops when head has its lines: SIGPIPE, not a failure.)
(zcat "$data" || true) | head -n 150000 | sed 's/"site_id":"eval"/"site_id":"demo"/' >"$work/events.jsonl"
target/release/tailor import --url "http://127.0.0.1:$http_port" --key "$key" --site demo "$work/events.jsonl"
# Wait for the processor to apply them all: the documents stop changing.
last=-1
for _ in $(seq 1 120); do
  n=$(redis-cli -p "$redis_port" DBSIZE)
  [ "$n" = "$last" ] && break
  last=$n
  sleep 2
done
mkdir -p "$work/docs"
i=0
redis-cli -p "$redis_port" --scan --pattern '*:state' | sort | (shuf -n 2000 --random-source=<(yes) || true) |
  while read -r k; do
    i=$((i + 1))
    redis-cli -p "$redis_port" HGET "$k" doc | head -c -1 >"$work/docs/$i.json"
  done
zstd -q --train "$work"/docs/*.json -o "$out" --maxdict=2048 --dictID="$dict_id"
echo "dictionary $out (id $dict_id) trained on $(ls "$work/docs" | wc -l) documents"
