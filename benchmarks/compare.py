"""Side-by-side benchmarks against the libraries users would pick instead, in one run.

    python benchmarks/compare.py fd            # Fréchet distance at d=2048, covariance of N x 2048
    python benchmarks/compare.py prdc --n 10000 20000
    python benchmarks/compare.py kid            # KID 100 x 1000 subsets and full-set KID, 10k x 2048 (float64, float32)
    python benchmarks/compare.py cmmd           # CMMD, 10k x 2048 (float64, float32) against the paper's estimator
    python benchmarks/compare.py collapse       # PRDC 20k x 2048: a fully collapsed fake set against a normal one
    python benchmarks/compare.py fdinf          # FD-infinity against 15 independent FIDs
    python benchmarks/compare.py prdc --n 50000 --only ganmetrics --repeat 1
    python benchmarks/compare.py all --out benchmarks/results/cpu.json
    python benchmarks/compare.py engines --out benchmarks/results/torch_engine_cpu.json   # the torch engine on CPU
                                                                                           # beside the host engine

Every contender runs in a fresh subprocess on the same seeded inputs (Inception-like: 2048-d,
non-negative, decaying spectrum), so peak memory beyond the inputs is measured cleanly (the
kernel's peak-RSS counter is reset after the inputs are built). Times are medians of --repeat runs.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))


# ------------------------------------------------------------------ contenders (run in the child)
def _rss_kb(field: str) -> int:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(field):
                return int(line.split()[1])
    return 0


def _reset_peak() -> None:
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
    except OSError:
        pass


def _inputs(kind: str, n: int, d: int):
    import numpy as np

    from ganmetrics.datasets import inception_like_features

    real = inception_like_features(n, d, seed=0)
    fake = inception_like_features(n, d, seed=1, shift=0.1, mode_drop=0.2)
    if kind == "stats":
        return (real.mean(0, dtype=np.float64), np.cov(real, rowvar=False), fake.mean(0, dtype=np.float64),
                np.cov(fake, rowvar=False))
    return real, fake


def _fd_ganmetrics(mu1, s1, mu2, s2):
    import ganmetrics as gm

    return gm.frechet_distance(mu1, s1, mu2, s2)


def _fd_sqrtm(mu1, s1, mu2, s2):
    """pytorch-fid 0.3.0 / clean-fid: scipy.linalg.sqrtm of the product, real part."""
    import numpy as np
    from scipy import linalg

    covmean, _ = linalg.sqrtm(s1.dot(s2), disp=False)
    if not np.isfinite(covmean).all():
        offset = np.eye(s1.shape[0]) * 1e-6
        covmean = linalg.sqrtm((s1 + offset).dot(s2 + offset))
    covmean = covmean.real
    diff = mu1 - mu2
    return float(diff.dot(diff) + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean))


def _fd_eigvals(mu1, s1, mu2, s2):
    """torchmetrics / torch-fidelity: eigenvalues of the (non-symmetric) product, in torch float64."""
    import torch

    m1, c1, m2, c2 = (torch.from_numpy(a) for a in (mu1, s1, mu2, s2))
    a = (m1 - m2).square().sum()
    b = c1.trace() + c2.trace()
    c = torch.linalg.eigvals(c1 @ c2).sqrt().real.sum()
    return float(a + b - 2 * c)


def _cov_ganmetrics(x):
    import ganmetrics as gm

    return gm.FeatureStats.from_features(x).cov


def _cov_torch_engine(x):
    import torch

    import ganmetrics as gm

    return gm.FeatureStats.from_features(torch.from_numpy(x), engine="torch").cov


def _cov_numpy(x):
    import numpy as np

    return np.cov(x, rowvar=False)


def _cov_torch64(x):
    import torch

    t = torch.from_numpy(x).double()
    mu = t.mean(0)
    tc = t - mu
    return (tc.T @ tc / (t.shape[0] - 1)).numpy()


def _prdc_ganmetrics(real, fake, k=5):
    import ganmetrics as gm

    return {key: float(v) for key, v in gm.prdc(real, fake, k=k).items()}


def _prdc_torch_engine(real, fake, k=5):
    import torch

    import ganmetrics as gm

    res = gm.prdc(torch.from_numpy(real), torch.from_numpy(fake), k=k, engine="torch")
    return {key: float(v) for key, v in res.items()}


def _prdc_package(real, fake, k=5):
    from prdc import compute_prdc

    return {key: float(v) for key, v in compute_prdc(real, fake, k).items()}


def _prdc_torch_cdist(real, fake, k=5, batch=2048):
    """StyleGAN-metrics style: torch.cdist in float32 batches, kthvalue radii (self at distance 0 counted)."""
    import torch

    r, f = torch.from_numpy(real), torch.from_numpy(fake)

    def radii(x):
        out = []
        for a in range(0, len(x), batch):
            out.append(torch.cdist(x[a:a + batch], x).kthvalue(k + 1, dim=1).values)
        return torch.cat(out)

    rr, fr = radii(r), radii(f)
    inside_count = torch.zeros(len(f))
    covered = torch.zeros(len(r), dtype=torch.bool)
    real_in = torch.zeros(len(r), dtype=torch.bool)
    for a in range(0, len(f), batch):
        d = torch.cdist(f[a:a + batch], r)  # fake x real
        inside_count[a:a + batch] = (d <= rr[None]).sum(1).float()
        covered |= d.min(0).values <= rr
        real_in |= (d <= fr[a:a + batch, None]).any(0)
    return {
        "precision": float((inside_count > 0).float().mean()),
        "recall": float(real_in.float().mean()),
        "density": float(inside_count.sum() / (k * len(f))),
        "coverage": float(covered.float().mean()),
    }


def _radius_faiss(real, fake, k=5):
    """faiss-cpu IndexFlatL2 doing the real k-NN radius pass only (k+1 neighbours incl. self)."""
    import faiss
    import numpy as np

    index = faiss.IndexFlatL2(real.shape[1])
    index.add(np.ascontiguousarray(real))
    dist, _ = index.search(np.ascontiguousarray(real), k + 1)
    return {"mean_radius": float(np.sqrt(dist[:, k]).mean())}


def _import_with_torchvision_stub(module):
    """torch-fidelity (and torchmetrics' image metrics, through it) import torchvision only for image I/O."""
    import importlib

    sys.path.insert(0, os.path.join(os.path.dirname(HERE), "tests"))
    from _torchvision_stub import import_with_stub

    import_with_stub("torch_fidelity")  # once with the stand-in; later imports find it in sys.modules
    return importlib.import_module(module)


def _prdc_ganmetrics_collapsed(real, fake):
    """PRDC with a fully collapsed fake set: every fake sample is the same vector (mode collapse)."""
    import numpy as np

    import ganmetrics as gm

    collapsed = np.repeat(fake[:1], len(fake), axis=0)
    res = gm.prdc(real, collapsed, k=5, progress=False)
    return {m: res[m] for m in ("precision", "recall", "density", "coverage")}


def _kid_ganmetrics(real, fake):
    import ganmetrics as gm

    res = gm.kid(real, fake, subsets=100, subset_size=1000, seed=2020)
    return {"mean": res.mean, "std": res.std}


def _kid_torch_engine(real, fake):
    import torch

    import ganmetrics as gm

    res = gm.kid(torch.from_numpy(real), torch.from_numpy(fake), subsets=100, subset_size=1000, seed=2020,
                 engine="torch")
    return {"mean": res.mean, "std": res.std}


def _kid_ganmetrics_float32(real, fake):
    import ganmetrics as gm

    res = gm.kid(real, fake, subsets=100, subset_size=1000, seed=2020, precision="float32")
    return {"mean": res.mean, "std": res.std}


def _kid_torch_fidelity(real, fake):
    """torch-fidelity's own KID loop (imported with a torchvision stand-in: it needs torchvision only for I/O)."""
    import torch

    mk = _import_with_torchvision_stub("torch_fidelity.metric_kid")
    out = mk.kid_features_to_metric(torch.from_numpy(fake), torch.from_numpy(real), kid_subsets=100,
                                    kid_subset_size=1000, rng_seed=2020, verbose=False, kid_degree=3,
                                    kid_gamma=None, kid_coef0=1)
    return {"mean": out["kernel_inception_distance_mean"], "std": out["kernel_inception_distance_std"]}


def _kid_torchmetrics(real, fake):
    """torchmetrics KernelInceptionDistance.compute's loop over subsets with its poly_mmd."""
    import torch

    poly_mmd = _import_with_torchvision_stub("torchmetrics.image.kid").poly_mmd
    r, f = torch.from_numpy(real), torch.from_numpy(fake)
    torch.manual_seed(0)
    vals = []
    for _ in range(100):
        pr = torch.randperm(len(r))[:1000]
        pf = torch.randperm(len(f))[:1000]
        vals.append(poly_mmd(r[pr], f[pf], degree=3, gamma=None, coef=1.0))
    vals = torch.stack(vals)
    return {"mean": float(vals.mean()), "std": float(vals.std(unbiased=False))}


def _kidfull_ganmetrics(real, fake):
    import ganmetrics as gm

    return {"mean": gm.kid(real, fake, subsets=None).mean}


def _kidfull_ganmetrics_float32(real, fake):
    import ganmetrics as gm

    return {"mean": gm.kid(real, fake, subsets=None, precision="float32").mean}


def _cmmd_ganmetrics(real, fake):
    import ganmetrics as gm

    return {"value": gm.cmmd(real, fake)}


def _cmmd_ganmetrics_float32(real, fake):
    import ganmetrics as gm

    return {"value": gm.cmmd(real, fake, precision="float32")}


def _cmmd_torch_float32(real, fake):
    """The CMMD paper's estimator (its reference code, in torch float32): RBF sigma 10 on L2-normalised
    embeddings, the mean of every kernel value (i = j included), times 1000."""
    import torch

    x = torch.nn.functional.normalize(torch.from_numpy(real), dim=1)
    y = torch.nn.functional.normalize(torch.from_numpy(fake), dim=1)
    gamma = 1.0 / (2 * 10.0**2)

    def mean_kernel(a, b):
        d2 = (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2 * a @ b.T
        return torch.exp(-gamma * d2).mean()

    return {"value": float(1000 * (mean_kernel(x, x) + mean_kernel(y, y) - 2 * mean_kernel(x, y)))}


def _kidfull_torchmetrics(real, fake):
    """torchmetrics' poly_mmd on the full sets (it builds the three N x N kernel matrices)."""
    import torch

    poly_mmd = _import_with_torchvision_stub("torchmetrics.image.kid").poly_mmd
    return {"mean": float(poly_mmd(torch.from_numpy(real), torch.from_numpy(fake)))}


def _fdinf_ganmetrics(real, fake):
    import ganmetrics as gm

    res = gm.fid_infinity(real, fake, num_points=15, seed=0)
    return {"value": res.value, "r2": res.r2}


def _fdinf_independent(real, fake):
    """The same 15 FIDs, each computed from scratch (statistics of the prefix, then the distance)."""
    import numpy as np

    import ganmetrics as gm

    n = len(fake)
    sizes = np.unique(np.linspace(max(2, n // 10), n, 15).round().astype(int))
    order = np.random.default_rng(0).permutation(n)
    fids = [gm.fid(real, fake[order[:m]]) for m in sizes]
    inv = 1.0 / sizes
    a = np.stack([np.ones_like(inv), inv], 1)
    return {"value": float(np.linalg.lstsq(a, np.array(fids), rcond=None)[0][0])}


CONTENDERS = {
    "fd/ganmetrics": ("stats", _fd_ganmetrics),
    "fd/scipy-sqrtm (pytorch-fid, clean-fid)": ("stats", _fd_sqrtm),
    "fd/torch-eigvals (torchmetrics, torch-fidelity)": ("stats", _fd_eigvals),
    "cov/ganmetrics": ("real", _cov_ganmetrics),
    "cov/ganmetrics-torch-engine-cpu": ("real", _cov_torch_engine),
    "cov/np.cov": ("real", _cov_numpy),
    "cov/torch-float64": ("real", _cov_torch64),
    "prdc/ganmetrics": ("pair", _prdc_ganmetrics),
    "prdc/ganmetrics-torch-engine-cpu": ("pair", _prdc_torch_engine),
    "prdc/prdc-package": ("pair", _prdc_package),
    "prdc/torch-cdist-float32": ("pair", _prdc_torch_cdist),
    "radius/faiss-IndexFlatL2": ("pair", _radius_faiss),
    "collapse/ganmetrics-normal": ("pair", _prdc_ganmetrics),
    "collapse/ganmetrics-collapsed": ("pair", _prdc_ganmetrics_collapsed),
    "kid/ganmetrics": ("pair", _kid_ganmetrics),
    "kid/ganmetrics-float32": ("pair", _kid_ganmetrics_float32),
    "kid/ganmetrics-torch-engine-cpu": ("pair", _kid_torch_engine),
    "kid/torch-fidelity": ("pair", _kid_torch_fidelity),
    "kid/torchmetrics": ("pair", _kid_torchmetrics),
    "kidfull/ganmetrics": ("pair", _kidfull_ganmetrics),
    "kidfull/ganmetrics-float32": ("pair", _kidfull_ganmetrics_float32),
    "kidfull/torchmetrics-poly_mmd": ("pair", _kidfull_torchmetrics),
    "cmmd/ganmetrics": ("pair", _cmmd_ganmetrics),
    "cmmd/ganmetrics-float32": ("pair", _cmmd_ganmetrics_float32),
    "cmmd/torch-float32 (paper's estimator)": ("pair", _cmmd_torch_float32),
    "fdinf/ganmetrics": ("pair", _fdinf_ganmetrics),
    "fdinf/15-independent-fids": ("pair", _fdinf_independent),
}


def child(name: str, n: int, d: int, repeat: int) -> dict:
    kind, fn = CONTENDERS[name]
    data = _inputs("stats" if kind == "stats" else "features", n, d)
    args = data if kind in ("stats", "pair") else (data[0],)
    base = _rss_kb("VmRSS:")
    _reset_peak()
    times, result = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        result = fn(*args)
        times.append(time.perf_counter() - t0)
    peak = _rss_kb("VmHWM:")
    if not isinstance(result, dict):
        import numpy as np

        result = {"value": float(result)} if np.ndim(result) == 0 else {"checksum": float(np.asarray(result).sum())}
    return {"name": name, "n": n, "d": d, "median_s": statistics.median(times), "times_s": times,
            "peak_mb_beyond_inputs": max(0, peak - base) / 1024, "result": result}


# ------------------------------------------------------------------ parent
def run_one(name: str, n: int, d: int, repeat: int, timeout: int) -> dict:
    cmd = [sys.executable, __file__, "--child", name, "--n", str(n), "--d", str(d), "--repeat", str(repeat)]
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"name": name, "n": n, "d": d, "error": f"timed out after {timeout} s"}
    if out.returncode != 0:
        tail = (out.stderr.strip().splitlines() or ["?"])[-1]
        return {"name": name, "n": n, "d": d, "error": tail}
    return json.loads(out.stdout.strip().splitlines()[-1])


def machine() -> dict:
    import numpy
    import scipy
    import torch

    import ganmetrics

    info = {"platform": platform.platform(), "python": platform.python_version(), "cpus": os.cpu_count(),
            "numpy": numpy.__version__, "scipy": scipy.__version__, "torch": torch.__version__,
            "ganmetrics": ganmetrics.__version__, "blas": ganmetrics.build_info()["blas_config"]}
    try:
        with open("/proc/cpuinfo") as fh:
            info["cpu"] = next(line.split(":", 1)[1].strip() for line in fh if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    for pkg in ("prdc", "faiss"):
        try:
            mod = __import__(pkg)
            info[pkg] = getattr(mod, "__version__", "installed")
        except ImportError:
            info[pkg] = None
    return info


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("suite", nargs="?", choices=["fd", "cov", "prdc", "collapse", "kid", "cmmd", "fdinf", "engines", "all"],
                   default="all")
    p.add_argument("--child")
    p.add_argument("--n", type=int, nargs="+", default=None)
    p.add_argument("--d", type=int, default=2048)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--timeout", type=int, default=900)
    p.add_argument("--only", default="", help="run only contenders whose name contains this text")
    p.add_argument("--out")
    args = p.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.n[0], args.d, args.repeat)))
        return
    plan = []
    if args.suite in ("fd", "all"):
        plan += [(name, 10000, 3) for name in CONTENDERS if name.startswith("fd/")]
    if args.suite in ("cov", "all"):
        plan += [(name, n, 3) for n in (args.n or [10000, 50000]) for name in CONTENDERS if name.startswith("cov/")]
    if args.suite in ("kid", "all"):
        plan += [(name, n, 1) for n in (args.n or [10000]) for name in CONTENDERS if name.startswith(("kid/", "kidfull/"))]
    if args.suite in ("collapse", "all"):
        plan += [(name, n, 1) for n in (args.n or [20000]) for name in CONTENDERS if name.startswith("collapse/")]
    if args.suite in ("cmmd", "all"):
        plan += [(name, n, 1) for n in (args.n or [10000]) for name in CONTENDERS if name.startswith("cmmd/")]
    if args.suite in ("fdinf", "all"):
        plan += [(name, n, 1) for n in (args.n or [10000]) for name in CONTENDERS if name.startswith("fdinf/")]
    if args.suite in ("prdc", "all"):
        for n in args.n or [10000, 20000]:
            plan += [(name, n, 1 if name != "prdc/ganmetrics" else args.repeat) for name in CONTENDERS
                     if name.startswith(("prdc/", "radius/"))]
    if args.suite == "engines":  # the host and the torch engine on the same CPU, same run
        n = (args.n or [10000])[0]
        plan += [("cov/ganmetrics", 50000, 3), ("cov/ganmetrics-torch-engine-cpu", 50000, 3),
                 ("prdc/ganmetrics", n, 1), ("prdc/ganmetrics-torch-engine-cpu", n, 1),
                 ("kid/ganmetrics", n, 1), ("kid/ganmetrics-torch-engine-cpu", n, 1)]
    plan = [item for item in plan if args.only in item[0]]
    rows = []
    for name, n, rep in plan:
        row = run_one(name, n, args.d, rep, args.timeout)
        rows.append(row)
        status = row.get("error") or f"{row['median_s']:.3f} s, +{row['peak_mb_beyond_inputs']:.0f} MB"
        print(f"{name:50s} n={n:<7d} {status}", flush=True)
    report = {"machine": machine(), "date": time.strftime("%Y-%m-%d %H:%M:%S"), "rows": rows}
    if args.out:
        tmp = args.out + ".tmp"
        with open(tmp, "w") as fh:
            json.dump(report, fh, indent=1)
        os.replace(tmp, args.out)


if __name__ == "__main__":
    main()
