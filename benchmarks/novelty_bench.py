"""The cost of the novelty and detectability metrics on N x D features, in one run, against the anchor measured
in the same run (``gm.prdc`` on the same sets: one radius pass per set and one cross pass), and against
dgm-eval's own functions where they run here (its AuthPct: a float32 torch ``cdist``, N x N memory).

    python benchmarks/novelty_bench.py --out benchmarks/results/novelty_cpu.json

Medians of ``--repeats`` runs; a shared machine is noisy, so read the ratios to the anchor.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time


def _timed(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def _dgm_authpct():
    """dgm-eval's compute_authpct from a snapshot of its repository (tests/conftest.py's lookup), or None."""
    import importlib.util
    import subprocess
    import tempfile

    root = os.path.join(os.environ.get("GANMETRICS_PEER_REPOS", "/work/.mirror"), "layer6ai-labs+dgm-eval", "repo")
    got = subprocess.run(["git", "--git-dir", root, "show", "HEAD:dgm_eval/metrics/authpct.py"], capture_output=True)
    if got.returncode:
        return None
    path = os.path.join(tempfile.mkdtemp(), "authpct.py")
    with open(path, "wb") as fh:
        fh.write(got.stdout)
    spec = importlib.util.spec_from_file_location("dgm_authpct", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.compute_authpct


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=10000)
    ap.add_argument("--dim", type=int, default=2048)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    import numpy as np

    import ganmetrics as gm
    from ganmetrics.datasets import inception_like_features

    train = inception_like_features(args.n, args.dim, seed=0).astype(np.float32)
    fresh = inception_like_features(args.n, args.dim, seed=1).astype(np.float32)
    test = inception_like_features(args.n // 2, args.dim, seed=2).astype(np.float32)
    rng = np.random.default_rng(3)
    copies = train[rng.choice(args.n, args.n // 10, replace=False)] * np.float32(1.001)
    fake = np.concatenate([fresh[: args.n - len(copies)], copies])
    r = args.repeats
    times = {
        "prdc (anchor)": _timed(lambda: gm.prdc(train, fake, progress=False), r),
        "memorization": _timed(lambda: gm.memorization(train, fake, progress=False), r),
        "authpct": _timed(lambda: gm.authpct(train, fake, progress=False), r),
        "alpha_precision": _timed(lambda: gm.alpha_precision(train, fake, progress=False), r),
        "ct_score": _timed(lambda: gm.ct_score(train, test, fake), r),
        "c2st (logistic, 5 folds, no permutations)": _timed(lambda: gm.c2st(train, fake, permutations=0), 1),
    }
    found = {"memorization": gm.memorization(train, fake).fraction, "copies_planted": len(copies) / len(fake),
             "memorization_fresh_only": gm.memorization(train, fresh).fraction,
             "authpct": gm.authpct(train, fake).authpct, "ct": gm.ct_score(train, test, fake).ct}
    theirs = _dgm_authpct()
    if theirs is not None:
        times["dgm-eval compute_authpct (float32 cdist)"] = _timed(lambda: theirs(train, fake), r)
        found["dgm-eval authpct"] = theirs(train, fake)
    anchor = times["prdc (anchor)"]
    result = {"machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
              "python": sys.version.split()[0], "ganmetrics": gm.__version__, "n": args.n, "dim": args.dim,
              "repeats": r, "median_seconds": {k: round(v, 3) for k, v in times.items()},
              "ratio_to_prdc": {k: round(v / anchor, 2) for k, v in times.items()}, "values": found}
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        from ganmetrics._io import atomic_write

        with atomic_write(args.out, "w") as fh:
            fh.write(text + "\n")


if __name__ == "__main__":
    main()
