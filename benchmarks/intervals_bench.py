"""The cost of intervals: one generator of N x D against a saved reference, in one run.

- ``evaluate_many`` with n_boot = 0 (the values alone, the anchor) and with n_boot = 50 (FID by the delta method, the
  k-NN metrics by 50 half-sampling rounds from one augmented pass), for FID + PRDC, PRDC alone and FID alone; medians
  of ``--repeats`` runs;
- the same intervals with every round recomputed from its drawn rows (the implementation before the one-pass rounds
  and the delta method, kept as the tests' reference), once: values + 50 recomputed rounds;
- ``gm.bootstrap`` of the four k-NN metrics (both sets resampled) against one ``gm.prdc``;
- the candidate lists' size (pairs, bytes, list depth) on the benchmark fake set, a fully collapsed one (every row
  the same vector) and a duplicated one (every row twice).

    python benchmarks/intervals_bench.py --out benchmarks/results/intervals_cpu.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time

KNN = ["precision", "recall", "density", "coverage"]


def _timed(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def _recomputed(ref, fake, metrics, n_boot, seed=0):
    """Values, then every round recomputed from its drawn fake rows against the fixed reference."""
    import numpy as np

    from ganmetrics._arrays import as_features
    from ganmetrics.metrics.frechet import _Side
    from ganmetrics.metrics.knn import prdc_features
    from ganmetrics.paired import _idx, _sub
    from ganmetrics.stats import FeatureStats

    ref.evaluate(fake, metrics, progress=False)
    f = as_features(fake, "fake")
    rng = np.random.default_rng(seed)
    idx = [_idx(rng, f.n, f.n // 2) for _ in range(n_boot)]
    if "fid" in metrics:
        ref.fd_reference().distances([_Side.of(s, "fake covariance") for s in FeatureStats.of_subsets(f, idx)])
    if any(m in KNN for m in metrics):
        for i in idx:
            prdc_features(ref.features, _sub(f, i, "fake"), ref.k, progress=False, real_radii2=ref.radii2[ref.k])


def _lists(ref, fake, n_boot, seed=0) -> dict:
    """knn_rounds on the evaluate_many draws: the candidate pairs and the neighbour lists' depth."""
    import numpy as np

    from ganmetrics.engines import HostEngine
    from ganmetrics.metrics.rounds import knn_rounds
    from ganmetrics.paired import _idx

    rng = np.random.default_rng(seed)
    idx = [_idx(rng, len(fake), len(fake) // 2) for _ in range(n_boot)]
    eng = HostEngine(progress=False)
    fr, ff = eng.sets({"real": ref.features, "fake": fake})
    t0 = time.perf_counter()
    _, info = knn_rounds(eng, fr, ff, ref.k, None, [np.arange(len(fake)), *idx], KNN, real_radii2=ref.radii2[ref.k])
    return {**info, "distinct_fake": int(eng.distinct(ff).total), "seconds": time.perf_counter() - t0,
            "pairs_per_fake_row": info["candidate_pairs"] / len(fake)}


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--n", type=int, default=10000)
    p.add_argument("--dim", type=int, default=2048)
    p.add_argument("--n-boot", type=int, default=50)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--no-recomputed", action="store_true", help="skip the (slow) recomputing baseline")
    p.add_argument("--out", default=None)
    args = p.parse_args()

    import warnings

    import numpy as np

    import ganmetrics as gm
    from ganmetrics.datasets import inception_like_features

    warnings.simplefilter("ignore", gm.BiasWarning)
    real = inception_like_features(args.n, args.dim, seed=0)
    fake = inception_like_features(args.n, args.dim, seed=10, shift=0.02, mode_drop=0.05)
    ref = gm.Reference.build(real, metrics=["fid", *KNN], k=5)
    rows, n, r = [], args.n, args.repeats
    for label, metrics in (("fid+prdc", ["fid", *KNN]), ("prdc", KNN), ("fid", ["fid"])):
        values = _timed(lambda: gm.evaluate_many(ref, [fake], metrics, n_boot=0, progress=False), r)
        both = _timed(lambda: gm.evaluate_many(ref, [fake], metrics, n_boot=args.n_boot, progress=False), r)
        board = gm.evaluate_many(ref, [fake], metrics, n_boot=args.n_boot, progress=False)
        ivs = board.entries[0].intervals
        rows += [{"name": f"intervals/{label}/values", "n": n, "median_s": values, "repeats": r},
                 {"name": f"intervals/{label}/one-pass", "n": n, "median_s": both, "repeats": r,
                  "ratio_to_values": both / values,
                  "intervals": {m: {"low": iv.low, "high": iv.high, "method": iv.method} for m, iv in ivs.items()}}]
        if not args.no_recomputed:
            rows.append({"name": f"intervals/{label}/recomputed", "n": n, "repeats": 1,
                         "median_s": _timed(lambda: _recomputed(ref, fake, metrics, args.n_boot), 1)})
        print(json.dumps(rows[-2:] if args.no_recomputed else rows[-3:]), flush=True)
    prdc = _timed(lambda: gm.prdc(real, fake, k=5, progress=False), r)
    boot = _timed(lambda: gm.bootstrap(real, fake, KNN, n_boot=args.n_boot, progress=False), r)
    rows += [{"name": "intervals/bootstrap-prdc/values", "n": n, "median_s": prdc, "repeats": r},
             {"name": "intervals/bootstrap-prdc/one-pass", "n": n, "median_s": boot, "repeats": r,
              "ratio_to_values": boot / prdc}]
    print(json.dumps(rows[-2:]), flush=True)
    lists = {"benchmark": _lists(ref, fake, args.n_boot),
             "collapsed": _lists(ref, np.repeat(fake[:1], len(fake), axis=0), args.n_boot),
             "duplicated": _lists(ref, np.repeat(fake[: len(fake) // 2], 2, axis=0), args.n_boot)}
    print(json.dumps(lists), flush=True)
    if args.out:
        out = {"machine": {"cpu_count": os.cpu_count(), "platform": platform.platform(),
                           "python": platform.python_version()},
               "versions": {"ganmetrics": gm.__version__, "numpy": np.__version__}, "n_boot": args.n_boot,
               "dim": args.dim, "rows": rows, "candidate_lists": lists}
        with open(args.out + ".tmp", "w") as fh:
            json.dump(out, fh, indent=1)
        os.replace(args.out + ".tmp", args.out)


if __name__ == "__main__":
    main()
