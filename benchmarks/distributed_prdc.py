"""PRDC over shards on P gloo processes (loopback): time, bytes sent and peak memory per rank.

    python benchmarks/distributed_prdc.py --n 20000 --dim 2048 --procs 1 2 4 --out benchmarks/results/distributed_cpu.json

Threads per process are capped so that all processes together use the machine's cores (at least one each).
Each rank builds only its own shards (the same seeded rows as one process would hold), runs
``gm.prdc(..., group="default")`` and reports its wall time, the bytes it sent around the ring and its peak
resident memory; P = 1 runs the single-process ``gm.prdc`` on everything. The results are checked equal.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import resource
import tempfile
import time


def _rows(n: int, d: int, seed: int, shift: float, a: int, b: int):
    from ganmetrics.datasets import inception_like_features

    return inception_like_features(n, d, seed=seed, shift=shift)[a:b]


def _worker(rank, size, folder, n, d):
    import numpy as np
    import torch
    import torch.distributed as dist

    import ganmetrics as gm

    threads = max(1, (os.cpu_count() or 1) // size)
    gm.set_num_threads(threads)
    torch.set_num_threads(threads)
    dist.init_process_group("gloo", init_method=f"file://{folder}/store", rank=rank, world_size=size,
                            timeout=datetime.timedelta(seconds=1800))
    cuts = np.linspace(0, n, size + 1).astype(int)
    real = _rows(n, d, 0, 0.0, cuts[rank], cuts[rank + 1])
    fake = _rows(n, d, 1, 0.1, cuts[rank], cuts[rank + 1])
    dist.barrier()
    t0 = time.perf_counter()
    res = gm.prdc(real, fake, k=5, group="default")
    seconds = time.perf_counter() - t0
    with open(os.path.join(folder, f"rank{rank}.json"), "w") as fh:
        json.dump({"seconds": seconds, "bytes_sent": res.info["bytes_sent"], "values": dict(res),
                   "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}, fh)
    dist.destroy_process_group()


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--n", type=int, default=20000)
    p.add_argument("--dim", type=int, default=2048)
    p.add_argument("--procs", type=int, nargs="+", default=[1, 2, 4])
    p.add_argument("--out", default=None)
    args = p.parse_args()
    import torch.multiprocessing as mp

    import ganmetrics as gm

    rows = []
    single = None
    for size in args.procs:
        if size == 1:
            real, fake = _rows(args.n, args.dim, 0, 0.0, 0, args.n), _rows(args.n, args.dim, 1, 0.1, 0, args.n)
            t0 = time.perf_counter()
            res = gm.prdc(real, fake, k=5)
            row = {"procs": 1, "seconds": time.perf_counter() - t0, "bytes_sent_per_rank": 0,
                   "peak_rss_mb_per_rank": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
            single = dict(res)
            del real, fake
        else:
            with tempfile.TemporaryDirectory() as folder:
                mp.spawn(_worker, args=(size, folder, args.n, args.dim), nprocs=size, join=True)
                ranks = [json.load(open(os.path.join(folder, f"rank{r}.json"))) for r in range(size)]
            if single is not None:
                assert all(r["values"] == single for r in ranks), "ranks disagree with one process"
            row = {"procs": size, "seconds": max(r["seconds"] for r in ranks),
                   "bytes_sent_per_rank": max(r["bytes_sent"] for r in ranks),
                   "peak_rss_mb_per_rank": max(r["peak_rss_mb"] for r in ranks)}
        rows.append(row)
        print(json.dumps(row), flush=True)
    if args.out:
        with open(args.out, "w") as fh:
            json.dump({"machine": {"cpu_count": os.cpu_count(), "platform": platform.platform()},
                       "versions": {"ganmetrics": gm.__version__}, "n": args.n, "dim": args.dim, "rows": rows}, fh,
                      indent=1)


if __name__ == "__main__":
    main()
