"""A benchmark suite's cost: 8 generators against one 10k x 2048 reference, the saved reference against 8
independent ``gm.evaluate`` calls, in one process and one run (medians of --repeat).

    python benchmarks/leaderboard_bench.py --out benchmarks/results/leaderboard_cpu.json

Rows: FID + PRDC and FID alone; for the reference, the time to build it once and the time of the 8
evaluations from the saved (loaded, memory-mapped) file. Each reference result is checked equal to the
independent call's before its time counts.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
import time


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--n", type=int, default=10000)
    p.add_argument("--dim", type=int, default=2048)
    p.add_argument("--generators", type=int, default=8)
    p.add_argument("--repeat", type=int, default=1)
    p.add_argument("--out", default=None)
    args = p.parse_args()

    import numpy as np

    import ganmetrics as gm
    from ganmetrics.datasets import inception_like_features

    real = inception_like_features(args.n, args.dim, seed=0)
    fakes = [inception_like_features(args.n, args.dim, seed=10 + i, shift=0.02 * i, mode_drop=0.05 * (i % 4))
             for i in range(args.generators)]
    rows = []
    for label, metrics in (("fid+prdc", ["fid", "precision", "recall", "density", "coverage"]), ("fid", ["fid"])):
        t_indep, t_build, t_eval = [], [], []
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            expect = [gm.evaluate(real, f, metrics=metrics, k=5, progress=False) for f in fakes]
            t_indep.append(time.perf_counter() - t0)
            with tempfile.TemporaryDirectory() as tmp:
                t0 = time.perf_counter()
                gm.Reference.build(real, metrics=metrics, k=5).save(os.path.join(tmp, "r.gmref"))
                t_build.append(time.perf_counter() - t0)
                t0 = time.perf_counter()
                ref = gm.Reference.load(os.path.join(tmp, "r.gmref"))
                got = [ref.evaluate(f, progress=False) for f in fakes]
                t_eval.append(time.perf_counter() - t0)
            for a, b in zip(expect, got):
                assert dict(a) == dict(b), (dict(a), dict(b))
        indep, build, ev = (statistics.median(t) for t in (t_indep, t_build, t_eval))
        row = {"metrics": label, "generators": args.generators, "n": args.n, "dim": args.dim,
               "independent_evaluate_s": indep, "reference_build_s": build, "reference_evaluate_s": ev,
               "speedup_saved_reference": indep / ev, "speedup_including_build": indep / (build + ev)}
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
