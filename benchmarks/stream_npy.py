"""Stream a large float32 .npy through FeatureStats and report time and peak memory.

    python benchmarks/stream_npy.py --n 1000000 --d 2048 --path /tmp/big.npy

Writes the file first (in blocks) if it does not exist. Peak memory is the process's peak RSS
minus its RSS before the statistics start; the d x d float64 state is reported beside it.
"""

import argparse
import json
import os
import time

import numpy as np


def rss_kb(field):
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(field):
                return int(line.split()[1])
    return 0


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--n", type=int, default=1_000_000)
    p.add_argument("--d", type=int, default=2048)
    p.add_argument("--path", default="/tmp/ganmetrics_big.npy")
    args = p.parse_args()
    if not os.path.exists(args.path):
        out = np.lib.format.open_memmap(args.path, mode="w+", dtype=np.float32, shape=(args.n, args.d))
        rng = np.random.default_rng(0)
        for a in range(0, args.n, 16384):
            b = min(args.n, a + 16384)
            out[a:b] = rng.standard_normal((b - a, args.d), dtype=np.float32) + 3.0
        out.flush()
        del out
    import ganmetrics as gm

    base = rss_kb("VmRSS:")
    with open("/proc/self/clear_refs", "w") as fh:
        fh.write("5")
    t0 = time.perf_counter()
    stats = gm.FeatureStats.from_features(args.path, progress=True)
    dt = time.perf_counter() - t0
    peak = rss_kb("VmHWM:")
    state_mb = 2 * args.d * args.d * 8 / 2**20
    print(json.dumps({"n": stats.n, "d": args.d, "seconds": dt, "peak_mb_beyond_start": (peak - base) / 1024,
                      "dxd_state_mb (mean/M2 + cov copy)": state_mb, "rows_per_s": stats.n / dt}))


if __name__ == "__main__":
    main()
