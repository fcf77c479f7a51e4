"""GPU benchmarks for the CUDA moments and Fréchet kernels, in one run (needs a CUDA device and CUDA torch).

    python benchmarks/gpu_bench.py --out "$OUT/gpu_moments_fd.json"
    python benchmarks/gpu_bench.py --suite prdc --out "$OUT/gpu_prdc.json"

Measures, medians of --repeat runs after a warm-up:
  - one Fréchet distance at d = 2048 from statistics: ganmetrics on the GPU, torchmetrics' _compute_fid
    on CUDA tensors, scipy's sqrtm route on the CPU;
  - 100 Fréchet distances against one reference (fid_many on the GPU, trace terms batched);
  - covariance of 1,000,000 x 2048 float32 already on the GPU: ganmetrics vs torch float64 sums.
--suite prdc: exact PRDC (k = 5, d = 2048) for 100k vs 100k against a torch.cdist + kthvalue
implementation in float32 and the StyleGAN-style float16 one, then 1M vs 1M for ganmetrics alone,
with the peak GPU memory in use (polled) beside the inputs' size.
Records the device name, driver, CUDA and torch versions.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time

import numpy as np


def timed(fn, repeat, sync):
    fn()
    sync()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        sync()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), times, out


def torch_prdc(real, fake, k=5, half=False, batch=8192):
    """torch.cdist + kthvalue PRDC (float32, or float16 as the StyleGAN metric scripts do)."""
    import torch

    r, f = (real.half(), fake.half()) if half else (real, fake)

    def radii(x):
        return torch.cat([torch.cdist(x[a:a + batch], x).float().kthvalue(k + 1, dim=1).values
                          for a in range(0, len(x), batch)])

    rr, fr = radii(r), radii(f)
    count = torch.zeros(len(f), device=f.device)
    covered = torch.zeros(len(r), dtype=torch.bool, device=f.device)
    real_in = torch.zeros(len(r), dtype=torch.bool, device=f.device)
    for a in range(0, len(f), batch):
        d = torch.cdist(f[a:a + batch], r).float()
        count[a:a + batch] = (d <= rr[None]).sum(1).float()
        covered |= d.min(0).values <= rr
        real_in |= (d <= fr[a:a + batch, None]).any(0)
    return {"precision": float((count > 0).float().mean()), "recall": float(real_in.float().mean()),
            "density": float(count.sum() / (k * len(f))), "coverage": float(covered.float().mean())}


class PeakMemory:
    """Polls the device's used memory (all allocators: torch's and cudaMallocAsync's) every 5 ms."""

    def __enter__(self):
        import threading

        import torch

        self.peak, self.stop = 0, False
        free, total = torch.cuda.mem_get_info()
        self.base = total - free

        def poll():
            while not self.stop:
                f, t = torch.cuda.mem_get_info()
                self.peak = max(self.peak, t - f)
                time.sleep(0.005)

        self.thread = threading.Thread(target=poll, daemon=True)
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop = True
        self.thread.join()


def prdc_suite(args, rows, add) -> None:
    import torch

    import ganmetrics as gm

    sync = torch.cuda.synchronize
    d = 2048
    for n, contenders in ((100_000, ("ganmetrics", "torch-cdist-float32", "torch-cdist-float16")),
                          (args.n, ("ganmetrics",))):
        g = torch.Generator(device="cuda").manual_seed(0)
        real = torch.randn(n, d, device="cuda", generator=g).abs_()
        fake = torch.randn(n, d, device="cuda", generator=g).abs_() * 1.05
        inputs_gb = 2 * real.numel() * 4 / 2**30
        for name in contenders:
            fn = {"ganmetrics": lambda r=real, f=fake: dict(gm.prdc(r, f, k=5)),
                  "torch-cdist-float32": lambda r=real, f=fake: torch_prdc(r, f),
                  "torch-cdist-float16": lambda r=real, f=fake: torch_prdc(r, f, half=True)}[name]
            with PeakMemory() as mem:
                med, ts, v = timed(fn, 1 if n > 100_000 else args.repeat, sync)
            add(f"prdc {n}x{n} d=2048 / {name}", med, ts, v)
            rows[-1].update({"peak_gpu_gb_beyond_inputs": (mem.peak - mem.base) / 2**30, "inputs_gb": inputs_gb})
        real = fake = None  # free the inputs before the next size
        torch.cuda.empty_cache()


def main() -> None:
    import torch

    import ganmetrics as gm

    p = argparse.ArgumentParser()
    p.add_argument("--suite", choices=["moments_fd", "prdc"], default="moments_fd")
    p.add_argument("--repeat", type=int, default=5)
    p.add_argument("--n", type=int, default=1_000_000)
    p.add_argument("--out", default=None)
    args = p.parse_args()
    if not (gm.cuda_available() and torch.cuda.is_available()):
        raise SystemExit("needs a CUDA device, ganmetrics._cuda and a CUDA build of torch")
    os.environ.setdefault("GANMETRICS_ENABLE_UNVERIFIED_CUDA", "1")
    sync = torch.cuda.synchronize
    d = 2048
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((d, d + 500)) / np.sqrt(d), rng.standard_normal((d, d + 900)) / np.sqrt(d)
    s1, s2 = a @ a.T, b @ b.T
    mu1, mu2 = rng.standard_normal(d), rng.standard_normal(d)
    rows = []

    def add(name, med, times, value=None):
        rows.append({"name": name, "median_s": med, "times_s": times, "value": value})
        print(f"{name:60s} {med * 1000:9.2f} ms", flush=True)

    if args.suite == "prdc":
        prdc_suite(args, rows, add)
        write(args, rows)
        return

    med, ts, v = timed(lambda: gm.frechet_distance(mu1, s1, mu2, s2, device="cuda"), args.repeat, sync)
    add("fd d=2048 / ganmetrics cuda", med, ts, v)
    try:
        from torchmetrics.image.fid import _compute_fid

        t1, t2 = torch.from_numpy(s1).cuda(), torch.from_numpy(s2).cuda()
        m1, m2 = torch.from_numpy(mu1).cuda(), torch.from_numpy(mu2).cuda()
        med, ts, v = timed(lambda: float(_compute_fid(m1, t1, m2, t2)), args.repeat, sync)
        add("fd d=2048 / torchmetrics _compute_fid cuda", med, ts, v)
    except ImportError as exc:
        rows.append({"name": "fd d=2048 / torchmetrics _compute_fid cuda", "error": str(exc)})
    from scipy import linalg

    def sqrtm_route():
        covmean = linalg.sqrtm(s1 @ s2).real
        return float(((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean))

    med, ts, v = timed(sqrtm_route, 1, lambda: None)
    add("fd d=2048 / scipy sqrtm (cpu)", med, ts, v)

    ref = gm.FeatureStats.from_mean_cov(mu1, s1, n=50_000)
    cands = [gm.FeatureStats.from_mean_cov(mu2, s2 * (1 + 0.001 * i), n=50_000) for i in range(100)]
    med, ts, v = timed(lambda: gm.fid_many(ref, cands, device="cuda"), max(1, args.repeat // 2), sync)
    add("100 fds d=2048 / ganmetrics fid_many cuda", med, ts, v[:3])

    x = torch.randn(args.n, d, device="cuda", dtype=torch.float32) + 0.5
    med, ts, _ = timed(lambda: gm.FeatureStats.from_features(x), args.repeat, sync)
    add(f"cov {args.n}x2048 float32 on gpu / ganmetrics", med, ts)

    def torch64():
        acc = torch.zeros(d, d, dtype=torch.float64, device="cuda")
        s = torch.zeros(d, dtype=torch.float64, device="cuda")
        for blk in x.split(65536):
            b64 = blk.double()
            acc += b64.T @ b64
            s += b64.sum(0)
        mean = s / args.n
        return (acc - args.n * torch.outer(mean, mean)) / (args.n - 1)

    med, ts, _ = timed(torch64, args.repeat, sync)
    add(f"cov {args.n}x2048 float32 on gpu / torch float64 sums", med, ts)
    write(args, rows)


def write(args, rows) -> None:
    import torch

    import ganmetrics as gm

    props = torch.cuda.get_device_properties(0)
    info = gm.build_info()["cuda"]
    report = {
        "device": props.name, "driver_version": info["driver_version"], "cuda_runtime": info["runtime_version"],
        "torch": torch.__version__, "torch_cuda": torch.version.cuda, "ganmetrics": gm.__version__,
        "python": platform.python_version(), "date": time.strftime("%Y-%m-%d %H:%M:%S"), "rows": rows,
    }
    if args.out:
        os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
        with open(args.out + ".tmp", "w") as fh:
            json.dump(report, fh, indent=1)
        os.replace(args.out + ".tmp", args.out)


if __name__ == "__main__":
    main()
