"""Every GPU path side by side, in one run: the torch engine, the custom CUDA kernels and what users would pick
instead, with medians, peak device memory and recheck fractions.

    python benchmarks/gpu_bench.py --out "$OUT/gpu_bench.json"               # on a GPU (scripts/gpu_check.sh)
    python benchmarks/gpu_bench.py --device cpu --tiny --out /tmp/bench.json  # the same code at tiny sizes on CPU

Rows (medians of --repeat runs after a warm-up; each row's failure is recorded in the row, not fatal):
  - statistics of N x 2048 float32 features on the device: torch engine, custom kernels, plain torch float64 sums;
  - one Fréchet distance at d = 2048 from statistics: torch engine, custom kernels, torchmetrics' _compute_fid,
    scipy's sqrtm route on the CPU; 100 distances against one reference (fid_many);
  - PRDC k = 5, d = 2048 at --prdc-n x --prdc-n: torch engine, custom kernels, torch.cdist + kthvalue in float32
    and in float16 (the StyleGAN scripts' precision), with peak memory beyond the inputs and the fraction of
    pairs rechecked in float64; --big adds the torch engine at --big-n x --big-n;
  - KID, 100 subsets of 1000 at --kid-n per side: torch engine, a plain torch float32 implementation;
  - Inception extraction img/s (random weights in the FID Inception's layout) on the device and on the CPU.
Records the device name, driver, CUDA and torch versions.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
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


def torch_kid(real, fake, subsets=100, size=1000, seed=2020):
    """KID as most GPU code computes it: float32 products of torch-fidelity's subsets."""
    import torch

    rng = np.random.RandomState(seed)
    d = real.shape[1]
    vals = []
    for _ in range(subsets):
        x = fake[torch.from_numpy(rng.choice(len(fake), size, replace=False)).to(fake.device)]
        y = real[torch.from_numpy(rng.choice(len(real), size, replace=False)).to(real.device)]
        kxx, kyy, kxy = (x @ x.T / d + 1) ** 3, (y @ y.T / d + 1) ** 3, (x @ y.T / d + 1) ** 3
        m = size
        vals.append(float((kxx.sum() - kxx.diag().sum()) / (m * (m - 1)) + (kyy.sum() - kyy.diag().sum()) / (m * (m - 1))
                          - 2 * kxy.mean()))
    return float(np.mean(vals))


class PeakMemory:
    """Polls the device's used memory (every allocator) every 5 ms; 0 on the CPU."""

    def __init__(self, device):
        self.cuda = str(device).startswith("cuda")

    def __enter__(self):
        import threading

        import torch

        self.peak = self.base = 0
        self.stop = False
        if not self.cuda:
            return self
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
        if self.cuda:
            self.thread.join()

    @property
    def beyond_gb(self) -> float:
        return max(0, self.peak - self.base) / 2**30


class Bench:
    def __init__(self, args):
        import torch

        self.args, self.rows = args, []
        self.device = args.device
        self.sync = torch.cuda.synchronize if self.device.startswith("cuda") else (lambda: None)
        self.custom = self.device.startswith("cuda")  # the custom kernels only exist on CUDA

    def run(self, name, fn, repeat=None, extra=None):
        """Time fn, record the row (or its error), print one line."""
        try:
            with PeakMemory(self.device) as mem:
                med, ts, v = timed(fn, repeat or self.args.repeat, self.sync)
            row = {"name": name, "median_s": med, "times_s": ts, "value": v,
                   "peak_device_gb_beyond_inputs": mem.beyond_gb}
            if extra:
                row.update(extra(v))
            print(f"{name:64s} {med * 1000:10.2f} ms", flush=True)
        except Exception as exc:  # a contender that fails is a result too
            row = {"name": name, "error": f"{type(exc).__name__}: {exc}"}
            print(f"{name:64s} FAILED {row['error'][:120]}", flush=True)
        self.rows.append(row)
        return row


def suite_statistics(b: Bench) -> None:
    import torch

    import ganmetrics as gm

    n, d = b.args.stats_n, b.args.dim
    x = torch.randn(n, d, device=b.device, dtype=torch.float32) + 0.5
    b.run(f"statistics {n}x{d} float32 / torch engine", lambda: gm.FeatureStats.from_features(x, engine="torch").n)
    if b.custom:
        b.run(f"statistics {n}x{d} float32 / custom kernels", lambda: gm.FeatureStats.from_features(x, engine="cuda").n)

    def torch64():
        acc = torch.zeros(d, d, dtype=torch.float64, device=b.device)
        s = torch.zeros(d, dtype=torch.float64, device=b.device)
        for blk in x.split(65536):
            b64 = blk.double()
            acc += b64.T @ b64
            s += b64.sum(0)
        mean = s / n
        return float(((acc - n * torch.outer(mean, mean)) / (n - 1)).trace())

    b.run(f"statistics {n}x{d} float32 / torch float64 sums (uncentred)", torch64)


def suite_frechet(b: Bench) -> None:
    import torch

    import ganmetrics as gm

    d = b.args.dim
    rng = np.random.default_rng(0)
    a1, a2 = rng.standard_normal((d, d + 500)) / np.sqrt(d), rng.standard_normal((d, d + 900)) / np.sqrt(d)
    s1, s2 = a1 @ a1.T, a2 @ a2.T
    mu1, mu2 = rng.standard_normal(d), rng.standard_normal(d)
    dev = "cuda" if b.custom else "cpu"
    b.run(f"fd d={d} / torch engine", lambda: gm.frechet_distance(mu1, s1, mu2, s2, device=dev, engine="torch"))
    if b.custom:
        b.run(f"fd d={d} / custom kernels", lambda: gm.frechet_distance(mu1, s1, mu2, s2, device="cuda", engine="cuda"))
    b.run(f"fd d={d} / host engine (LAPACK)", lambda: gm.frechet_distance(mu1, s1, mu2, s2, engine="host"))
    try:
        from torchmetrics.image.fid import _compute_fid

        t1, t2 = torch.from_numpy(s1).to(b.device), torch.from_numpy(s2).to(b.device)
        m1, m2 = torch.from_numpy(mu1).to(b.device), torch.from_numpy(mu2).to(b.device)
        b.run(f"fd d={d} / torchmetrics _compute_fid", lambda: float(_compute_fid(m1, t1, m2, t2)))
    except ImportError as exc:
        b.rows.append({"name": f"fd d={d} / torchmetrics _compute_fid", "error": str(exc)})
    from scipy import linalg

    def sqrtm_route():
        covmean = linalg.sqrtm(s1 @ s2).real
        return float(((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean))

    b.run(f"fd d={d} / scipy sqrtm (cpu)", sqrtm_route, repeat=1)
    ref = gm.FeatureStats.from_mean_cov(mu1, s1, n=50_000)
    cands = [gm.FeatureStats.from_mean_cov(mu2, s2 * (1 + 0.001 * i), n=50_000) for i in range(b.args.fd_many)]
    names = ["torch"] + (["cuda"] if b.custom else [])
    for eng in names:
        b.run(f"{b.args.fd_many} fds d={d} / fid_many {eng}",
              lambda e=eng: gm.fid_many(ref, cands, device=dev, engine=e)[:3], repeat=max(1, b.args.repeat // 2))


def suite_prdc(b: Bench) -> None:
    import torch

    import ganmetrics as gm

    d = b.args.dim

    def fraction(v):
        return {"recheck_fraction": v.pop("_rechecked", 0) / float(b.args.prdc_n) ** 2} if isinstance(v, dict) else {}

    sizes = [(b.args.prdc_n, ["torch"] + (["cuda"] if b.custom else []) + ["cdist32", "cdist16"])]
    if b.args.big:
        sizes.append((b.args.big_n, ["torch"]))
    for n, contenders in sizes:
        g = torch.Generator(device=b.device).manual_seed(0)
        real = torch.randn(n, d, device=b.device, generator=g).abs_()
        fake = torch.randn(n, d, device=b.device, generator=g).abs_() * 1.05
        inputs_gb = 2 * real.numel() * 4 / 2**30
        for name in contenders:
            def ours(e=name):
                res = gm.prdc(real, fake, k=5, engine=e)
                return {**dict(res), "_rechecked": res.info["rechecked_pairs"]}

            fn = {"torch": ours, "cuda": ours,
                  "cdist32": lambda: torch_prdc(real, fake),
                  "cdist16": lambda: torch_prdc(real, fake, half=True)}[name]
            label = {"torch": "torch engine", "cuda": "custom kernels", "cdist32": "torch.cdist + kthvalue float32",
                     "cdist16": "torch.cdist + kthvalue float16"}[name]
            row = b.run(f"prdc {n}x{n} d={d} k=5 / {label}", fn, repeat=1 if n > b.args.prdc_n else None,
                        extra=fraction if name in ("torch", "cuda") else None)
            row["inputs_gb"] = inputs_gb
        real = fake = None
        if b.device.startswith("cuda"):
            torch.cuda.empty_cache()


def suite_kid(b: Bench) -> None:
    import torch

    import ganmetrics as gm

    n, d, size = b.args.kid_n, b.args.dim, min(1000, b.args.kid_n // 2)
    g = torch.Generator(device=b.device).manual_seed(1)
    real = torch.randn(n, d, device=b.device, generator=g).abs_()
    fake = torch.randn(n, d, device=b.device, generator=g).abs_() * 1.02
    b.run(f"kid 100x{size} at {n} d={d} / torch engine",
          lambda: gm.kid(real, fake, subsets=100, subset_size=size, engine="torch").mean, repeat=1)
    b.run(f"kid 100x{size} at {n} d={d} / torch float32 products", lambda: torch_kid(real, fake, 100, size), repeat=1)


def suite_extraction(b: Bench) -> None:
    import torch

    import ganmetrics as gm
    from ganmetrics.extractors.inception import FIDInceptionV3

    with tempfile.TemporaryDirectory() as folder:
        weights = os.path.join(folder, "pt_inception-2015-12-05-6726825d.pth")
        torch.manual_seed(0)
        torch.save(FIDInceptionV3().state_dict(), weights)
        imgs = np.random.default_rng(2).integers(0, 256, (b.args.images, 3, 64, 64), dtype=np.uint8)
        feats = {}
        for dev in dict.fromkeys([b.device, "cpu"]):
            row = b.run(f"inception extraction {b.args.images} images 64px / {dev}",
                        lambda dv=dev: np.asarray(gm.extract(imgs, weights=weights, device=dv, cache=False,
                                                             workers=0, progress=False)), repeat=1,
                        extra=lambda v: {})
            if "median_s" in row:
                row["images_per_s"] = b.args.images / row["median_s"]
                feats[dev] = np.asarray(row.pop("value"))
        if len(feats) == 2:  # the device's features against the CPU's
            a, c = feats.values()
            b.rows.append({"name": "inception extraction: device vs cpu features, max relative difference",
                           "value": float(np.abs(a - c).max() / max(np.abs(c).max(), 1e-30))})


SUITES = {"statistics": suite_statistics, "frechet": suite_frechet, "prdc": suite_prdc, "kid": suite_kid,
          "extraction": suite_extraction}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--device", default="cuda", help="cuda (default) or cpu")
    p.add_argument("--suite", nargs="+", choices=sorted(SUITES), default=list(SUITES))
    p.add_argument("--tiny", action="store_true", help="tiny sizes: checks the code, not the speed")
    p.add_argument("--big", action="store_true", help="add PRDC at --big-n x --big-n (torch engine)")
    p.add_argument("--repeat", type=int, default=5)
    p.add_argument("--dim", type=int, default=2048)
    p.add_argument("--stats-n", type=int, default=1_000_000)
    p.add_argument("--prdc-n", type=int, default=100_000)
    p.add_argument("--big-n", type=int, default=1_000_000)
    p.add_argument("--kid-n", type=int, default=50_000)
    p.add_argument("--fd-many", type=int, default=100)
    p.add_argument("--images", type=int, default=2000)
    p.add_argument("--out", default=None)
    args = p.parse_args()
    if args.tiny:
        args.repeat, args.dim, args.stats_n, args.prdc_n, args.big_n = 2, 16, 500, 300, 400
        args.kid_n, args.fd_many, args.images = 120, 3, 4
    import torch

    if args.device.startswith("cuda"):
        if not torch.cuda.is_available():
            raise SystemExit("--device cuda needs a CUDA build of torch and a GPU (use --device cpu --tiny here)")
        os.environ.setdefault("GANMETRICS_ENABLE_UNVERIFIED_CUDA", "1")  # so the custom kernels' rows can run
    b = Bench(args)
    for name in args.suite:
        SUITES[name](b)
    write(args, b.rows)


def write(args, rows) -> None:
    import torch

    import ganmetrics as gm

    info = gm.build_info()
    cuda = args.device.startswith("cuda")
    report = {
        "device": torch.cuda.get_device_name(0) if cuda else platform.processor() or "cpu",
        "driver_version": info["cuda"].get("driver_version"), "cuda_runtime": info["cuda"].get("runtime_version"),
        "torch": torch.__version__, "torch_cuda": torch.version.cuda, "ganmetrics": gm.__version__,
        "python": platform.python_version(), "date": time.strftime("%Y-%m-%d %H:%M:%S"),
        "settings": {k: v for k, v in vars(args).items() if k != "out"}, "rows": rows,
    }
    text = json.dumps(report, indent=1, default=str)
    if args.out:
        os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
        with open(args.out + ".tmp", "w") as fh:
            fh.write(text)
        os.replace(args.out + ".tmp", args.out)


if __name__ == "__main__":
    main()
