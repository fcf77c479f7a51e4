"""How far precision="float32" KID and CMMD are from the float64 values, next to the peers' own float32 numbers.

    python benchmarks/kid_precision.py [--out benchmarks/results/kid_precision_cpu.json]

Cases: the benchmark inputs (10k x 2048 Inception-like, a worse generator), feature means of 1e2, identical
distributions (KID near 0: the estimate cancels almost completely), and d = 4096. For each: KID over 100
subsets of 1000 and over the full sets, CMMD, in float64 and float32; torch-fidelity's KID (float32 numpy,
the same subsets: seed 2020) and torchmetrics' poly_mmd on the full sets (float32 torch). Deviations are
given relative to |float64 value| and relative to the KID's subset standard deviation (its statistical error).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))


def _cases():
    from ganmetrics.datasets import inception_like_features as F

    yield "benchmark inputs (10k x 2048, shifted generator)", F(10000, 2048, seed=0), F(10000, 2048, seed=1, shift=0.1,
                                                                                        mode_drop=0.2)
    yield "feature means of 1e2", F(10000, 2048, seed=0) + 100, F(10000, 2048, seed=1, shift=0.1, mode_drop=0.2) + 100
    yield "identical distributions (near-cancelling)", F(10000, 2048, seed=0), F(10000, 2048, seed=1)
    yield "d = 4096", F(5000, 4096, seed=0), F(5000, 4096, seed=1, shift=0.05)


def _peers(real, fake):
    import torch

    sys.path.insert(0, os.path.join(os.path.dirname(HERE), "tests"))
    from _torchvision_stub import import_with_stub

    out = {}
    try:
        mk = import_with_stub("torch_fidelity.metric_kid")
        res = mk.kid_features_to_metric(torch.from_numpy(fake), torch.from_numpy(real), kid_subsets=100,
                                        kid_subset_size=1000, rng_seed=2020, verbose=False, kid_degree=3,
                                        kid_gamma=None, kid_coef0=1)
        out["torch-fidelity kid"] = float(res["kernel_inception_distance_mean"])
    except ImportError as exc:
        out["torch-fidelity kid"] = f"not installed ({exc})"
    try:
        poly_mmd = import_with_stub("torchmetrics.image.kid").poly_mmd
        out["torchmetrics poly_mmd full"] = float(poly_mmd(torch.from_numpy(real), torch.from_numpy(fake)))
    except ImportError as exc:
        out["torchmetrics poly_mmd full"] = f"not installed ({exc})"
    return out


def main() -> int:
    import ganmetrics as gm

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out")
    args = p.parse_args()
    rows = []
    for name, real, fake in _cases():
        k64 = gm.kid(real, fake, progress=False)
        k32 = gm.kid(real, fake, precision="float32", progress=False)
        f64 = gm.kid(real, fake, subsets=None, progress=False).mean
        f32 = gm.kid(real, fake, subsets=None, precision="float32", progress=False).mean
        c64 = gm.cmmd(real, fake, progress=False)
        c32 = gm.cmmd(real, fake, precision="float32", progress=False)
        row = {"case": name, "kid_float64": k64.mean, "kid_std": k64.std, "kid_float32": k32.mean,
               "kidfull_float64": f64, "kidfull_float32": f32, "cmmd_float64": c64, "cmmd_float32": c32}
        row.update(_peers(real, fake))

        def rel(a, b):
            return abs(a - b) / abs(b) if b else float("inf")

        row["kid_float32_rel"] = rel(k32.mean, k64.mean)
        row["kid_float32_in_std"] = abs(k32.mean - k64.mean) / k64.std
        row["kidfull_float32_rel"] = rel(f32, f64)
        row["cmmd_float32_rel"] = rel(c32, c64)
        if isinstance(row["torch-fidelity kid"], float):
            row["torch-fidelity_rel"] = rel(row["torch-fidelity kid"], k64.mean)
            row["torch-fidelity_in_std"] = abs(row["torch-fidelity kid"] - k64.mean) / k64.std
        if isinstance(row["torchmetrics poly_mmd full"], float):
            row["torchmetrics_rel"] = rel(row["torchmetrics poly_mmd full"], f64)
        rows.append(row)
        print(json.dumps({k: v for k, v in row.items() if k.endswith(("_rel", "_in_std")) or k == "case"}), flush=True)
    report = {"machine": {"platform": platform.platform(), "processor": platform.processor(), "cpus": os.cpu_count(),
                          "ganmetrics": gm.__version__, "numpy": np.__version__},
              "date": time.strftime("%Y-%m-%d %H:%M:%S"), "rows": rows}
    if args.out:
        with open(args.out + ".tmp", "w") as fh:
            json.dump(report, fh, indent=1)
        os.replace(args.out + ".tmp", args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
