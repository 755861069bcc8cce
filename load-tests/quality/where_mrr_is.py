#!/usr/bin/env python3
"""Where a ranker's MRR@20 comes from, read from `tailor evaluate --dump FILE` (docs/quality.md).

Usage: load-tests/quality/where_mrr_is.py DUMP [RANKER=blend]

Splits the predictions by what the next click was (the session's last item again, an earlier item
of the session, or an item new to the session), prints each kind's share, HR@20 and MRR@20 and its
share of the total MRR, where the last item was ranked, and the MRR an oracle would reach by
placing the last item first exactly when it is the next click and after the top 20 otherwise (the
room a model of repeat clicks has). Standard library only.
"""
import collections
import json
import sys

CUTOFF = 20


def rr(ids, target):
    ids = ids[:CUTOFF]
    return 1.0 / (ids.index(target) + 1) if target in ids else 0.0


def main():
    path = sys.argv[1]
    ranker = sys.argv[2] if len(sys.argv) > 2 else "blend"
    rows = [json.loads(l) for l in open(path)]
    rows = [r for r in rows if r["ranker"] == ranker]
    if not rows:
        sys.exit(f"no predictions of ranker {ranker!r} in {path}")
    n = len(rows)
    kinds = collections.defaultdict(lambda: [0, 0.0, 0])
    last_rank = collections.Counter()
    oracle = 0.0
    for r in rows:
        ids = [i[0] for i in r["items"]]
        last = r["prefix"][-1]
        kind = "last item again" if r["next"] == last else (
            "earlier item of the session" if r["next"] in r["prefix"] else "new to the session")
        v = rr(ids, r["next"])
        k = kinds[kind]
        k[0] += 1
        k[1] += v
        k[2] += v > 0
        last_rank[ids.index(last) + 1 if last in ids else None] += 1
        others = [i for i in ids if i != last]
        placed = [last] + others if r["next"] == last else others[: CUTOFF - 1] + [last]
        oracle += rr(placed, r["next"])
    total = sum(k[1] for k in kinds.values()) / n
    print(f"{ranker}: {n} predictions, MRR@{CUTOFF} {total:.4f}")
    print(f"| next click | share | HR@{CUTOFF} | MRR@{CUTOFF} | share of the MRR |")
    print("|---|---:|---:|---:|---:|")
    for kind, (c, s, h) in sorted(kinds.items(), key=lambda x: -x[1][0]):
        print(f"| {kind} | {c / n:.3f} | {h / c:.3f} | {s / c:.3f} | {s / n:.4f} |")
    shown = ", ".join(
        f"{k}: {v / n:.3f}" for k, v in sorted(last_rank.items(), key=lambda x: (x[0] is None, x[0] or 0))[:5])
    print(f"rank of the last item in the answer (share of predictions): {shown}")
    print(f"oracle placement of the last item: MRR@{CUTOFF} {oracle / n:.4f}")


if __name__ == "__main__":
    main()
