"""PRDC over shards on P gloo processes (loopback): time, bytes sent and peak memory per rank.

    python benchmarks/distributed_prdc.py --n 20000 --dim 2048 --procs 1 2 4 --out benchmarks/results/distributed_cpu.json
    python benchmarks/distributed_prdc.py --fake collapsed --n 20000 --dim 2048 --procs 1 3 \
        --out benchmarks/results/distributed_collapsed_cpu.json

Threads per process are capped so that all processes together use the machine's cores (at least one each).
The seeded sets are written once as .npy files; every run is a fresh process per rank that memory-maps only
its own rows, runs ``gm.prdc(..., group="default")`` (P = 1: the single-process ``gm.prdc`` on everything) and
reports its wall time, the bytes it sent around the ring, and its peak resident memory before and after the
metric. The values of every rank are checked equal to one process's. The JSON also holds the scaling model
of README "Many processes" (GEMM flops per rank; bytes per rank) next to the measurements. ``--fake collapsed``:
a generator collapsed onto one sample (every fake row the same), which every rank takes through its distinct
rows with multiplicities, as one process does.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import tempfile
import time


def _worker(rank, size, folder, n, d):
    import numpy as np
    import torch
    import torch.distributed as dist

    import ganmetrics as gm
    from ganmetrics.engines.ring import peak_rss_bytes

    threads = max(1, (os.cpu_count() or 1) // size)
    gm.set_num_threads(threads)
    torch.set_num_threads(threads)
    cuts = np.linspace(0, n, size + 1).astype(int)
    real = np.load(os.path.join(folder, "real.npy"), mmap_mode="r")[cuts[rank]:cuts[rank + 1]]
    fake = np.load(os.path.join(folder, "fake.npy"), mmap_mode="r")[cuts[rank]:cuts[rank + 1]]
    group = None
    if size > 1:
        dist.init_process_group("gloo", init_method=f"file://{folder}/store", rank=rank, world_size=size,
                                timeout=datetime.timedelta(seconds=1800))
        dist.barrier()
        group = "default"
    before = peak_rss_bytes() / 2**20
    t0 = time.perf_counter()
    res = gm.prdc(real, fake, k=5, group=group, progress=False)
    seconds = time.perf_counter() - t0
    with open(os.path.join(folder, f"rank{rank}.json"), "w") as fh:
        json.dump({"seconds": seconds, "bytes_sent": res.info.get("bytes_sent", 0), "values": dict(res),
                   "rss_before_mb": before, "peak_rss_mb": peak_rss_bytes() / 2**20},
                  fh)
    if size > 1:
        dist.destroy_process_group()


def model(n: int, d: int, procs: int, k: int = 5) -> dict:
    """README "Many processes": the largest GEMM flop count and bytes sent of any rank, for PRDC with n rows per
    set split evenly, following the schedule of ganmetrics.engines.ring (radius passes half-way round the ring,
    cross pass all the way)."""
    from ganmetrics.engines.ring import halves, owns_pair

    if procs == 1:  # two symmetric radius passes (each pair once) and one cross pass
        return {"gemm_flops_per_rank": 4.0 * n * n * d, "bytes_per_rank": 0}

    def computes(t, r, s):
        return 2 * t == procs or owns_pair(t, r, s, procs)

    cuts = [n * r // procs for r in range(procs + 1)]
    rows = [cuts[r + 1] - cuts[r] for r in range(procs)]
    worst_flops = worst_bytes = 0.0
    for me in range(procs):
        flops = 2 * rows[me] * n * d  # cross pass: this rank's fake rows against every real row
        sent = (procs - 1) * rows[me] * (4 * d + 8)  # cross pass: real rows with their radii, all the way round
        for _ in range(2):  # the real and the fake radius pass
            flops += rows[me] ** 2 * d  # own block, symmetric
            for t in range(1, procs // 2 + 1):
                src = (me - t) % procs
                if computes(t, me, src):
                    a0, a1, b0, b1 = halves(procs, me, src, rows[me], rows[src])
                    flops += 2 * (a1 - a0) * (b1 - b0) * d
                    sent += (b1 - b0) * min(k, a1 - a0) * 16  # the block's rows get their neighbours back
            for step in range(procs // 2):  # blocks: the last hop only to a rank that computes with it
                if step + 1 < procs // 2 or computes(step + 1, (me + 1) % procs, (me - step) % procs):
                    sent += rows[(me - step) % procs] * d * 4
        worst_flops, worst_bytes = max(worst_flops, flops), max(worst_bytes, sent)
    return {"gemm_flops_per_rank": worst_flops, "bytes_per_rank": worst_bytes}


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--n", type=int, default=20000)
    p.add_argument("--dim", type=int, default=2048)
    p.add_argument("--procs", type=int, nargs="+", default=[1, 2, 4])
    p.add_argument("--fake", choices=("shifted", "collapsed"), default="shifted")
    p.add_argument("--out", default=None)
    args = p.parse_args()
    import numpy as np
    import torch
    import torch.multiprocessing as mp

    import ganmetrics as gm
    from ganmetrics.datasets import inception_like_features

    rows = []
    single = None
    with tempfile.TemporaryDirectory() as folder:
        np.save(os.path.join(folder, "real.npy"), inception_like_features(args.n, args.dim, seed=0))
        fake = inception_like_features(args.n, args.dim, seed=1, shift=0.1)
        if args.fake == "collapsed":
            fake = np.repeat(fake[:1], args.n, axis=0)
        np.save(os.path.join(folder, "fake.npy"), fake)
        for size in sorted(args.procs):  # P = 1 first: the others are checked against it
            mp.spawn(_worker, args=(size, folder, args.n, args.dim), nprocs=size, join=True)
            ranks = [json.load(open(os.path.join(folder, f"rank{r}.json"))) for r in range(size)]
            single = single or ranks[0]["values"]
            assert all(r["values"] == single for r in ranks), "ranks disagree with one process"
            row = {"procs": size, "seconds": max(r["seconds"] for r in ranks),
                   "bytes_sent_per_rank": max(r["bytes_sent"] for r in ranks),
                   "peak_rss_mb_per_rank": max(r["peak_rss_mb"] for r in ranks),
                   "rss_before_mb_per_rank": max(r["rss_before_mb"] for r in ranks),
                   "model": model(args.n, args.dim, size) if args.fake == "shifted" else None}
            rows.append(row)
            print(json.dumps(row), flush=True)
            for r in range(size):
                os.remove(os.path.join(folder, f"rank{r}.json"))
            if os.path.exists(os.path.join(folder, "store")):
                os.remove(os.path.join(folder, "store"))
    if args.out:
        with open(args.out, "w") as fh:
            json.dump({"machine": {"cpu_count": os.cpu_count(), "platform": platform.platform()},
                       "versions": {"ganmetrics": gm.__version__, "torch": torch.__version__,
                                    "numpy": np.__version__},
                       "threads_per_rank": "cores // ranks, at least 1", "n": args.n, "dim": args.dim,
                       "fake": args.fake, "rows": rows}, fh,
                      indent=1)


if __name__ == "__main__":
    main()
