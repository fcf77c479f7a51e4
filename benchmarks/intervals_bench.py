"""The cost of intervals: one generator of N x D against a saved reference, ``evaluate_many`` with n_boot = 0 (the
values alone, the anchor) and n_boot = 50, for FID + PRDC, PRDC alone and FID alone, in one run.

    python benchmarks/intervals_bench.py --out benchmarks/results/intervals_cpu.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--n", type=int, default=10000)
    p.add_argument("--dim", type=int, default=2048)
    p.add_argument("--n-boot", type=int, default=50)
    p.add_argument("--out", default=None)
    args = p.parse_args()

    import numpy as np

    import ganmetrics as gm
    from ganmetrics.datasets import inception_like_features

    real = inception_like_features(args.n, args.dim, seed=0)
    fake = inception_like_features(args.n, args.dim, seed=10, shift=0.02, mode_drop=0.05)
    knn = ["precision", "recall", "density", "coverage"]
    ref = gm.Reference.build(real, metrics=["fid", *knn], k=5)
    rows = []
    for label, metrics in (("fid+prdc", ["fid", *knn]), ("prdc", knn), ("fid", ["fid"])):
        t0 = time.perf_counter()
        gm.evaluate_many(ref, [fake], metrics, n_boot=0, progress=False)
        values = time.perf_counter() - t0
        t0 = time.perf_counter()
        board = gm.evaluate_many(ref, [fake], metrics, n_boot=args.n_boot, progress=False)
        both = time.perf_counter() - t0
        row = {"metrics": label, "n": args.n, "dim": args.dim, "n_boot": args.n_boot, "values_s": values,
               "with_intervals_s": both, "ratio": both / values,
               "intervals": {m: [iv.low, iv.high] for m, iv in board.entries[0].intervals.items()}}
        rows.append(row)
        print(json.dumps(row), flush=True)
    if args.out:
        out = {"machine": {"cpu_count": os.cpu_count(), "platform": platform.platform(),
                           "python": platform.python_version()},
               "versions": {"ganmetrics": gm.__version__, "numpy": np.__version__}, "rows": rows}
        with open(args.out, "w") as fh:
            json.dump(out, fh, indent=1)


if __name__ == "__main__":
    main()
