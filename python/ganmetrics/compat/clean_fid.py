"""clean-fid's feature-level functions (``cleanfid.fid``) with its semantics, computed exactly."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from ganmetrics.engines import HostEngine
from ganmetrics.images import Generator
from ganmetrics.metrics.frechet import fid as _fid
from ganmetrics.metrics.frechet import frechet_distance as _frechet_distance
from ganmetrics.metrics.kernel import POLYNOMIAL

__all__ = ["frechet_distance", "kernel_distance", "compute_fid"]


def frechet_distance(mu1: Any, sigma1: Any, mu2: Any, sigma2: Any, eps: float = 1e-6) -> np.float64:
    """clean-fid's ``frechet_distance`` (a numpy float64, as clean-fid returns). ``eps`` is accepted and
    unused: the exact computation needs no diagonal offset (clean-fid adds ``eps * I`` when ``sqrtm`` fails)."""
    mu1, mu2 = np.atleast_1d(mu1), np.atleast_1d(mu2)
    return np.float64(_frechet_distance(mu1, np.atleast_2d(sigma1), mu2, np.atleast_2d(sigma2)))


def kernel_distance(feats1: Any, feats2: Any, num_subsets: int = 100, max_subset_size: int = 1000) -> float:
    """clean-fid's ``kernel_distance`` (KID): the mean over ``num_subsets`` of the unbiased MMD^2 with
    the cubic polynomial kernel, on subsets of m = min(len(feats1), len(feats2), max_subset_size)
    samples drawn without replacement from numpy's global random state (feats2 first, as clean-fid
    draws them: seed it with ``np.random.seed`` for the same subsets). Kernel sums in float64."""
    eng = HostEngine(progress=False)
    s1, s2 = eng.sets({"feats1": feats1, "feats2": feats2})
    f1, f2 = s1.local, s2.local
    if num_subsets < 1:
        raise ValueError(f"num_subsets must be >= 1, got {num_subsets}")
    m = min(f1.n, f2.n, int(max_subset_size))
    if m < 2:
        raise ValueError(f"subsets need at least 2 samples, got max_subset_size={max_subset_size}")
    xi, yi = [], []
    for _ in range(num_subsets):
        xi.append(np.random.choice(f2.n, m, replace=False))
        yi.append(np.random.choice(f1.n, m, replace=False))
    values = eng.subset_mmd2(s2, s1, (POLYNOMIAL, 1.0 / f1.dim, 1.0, 3), np.stack(xi), np.stack(yi), False)
    return float(values.mean())


def compute_fid(fdir1=None, fdir2=None, gen=None, mode="clean", model_name="inception_v3", num_workers=12, batch_size=32,
                device=torch.device("cuda"), dataset_name="FFHQ", dataset_res=1024, dataset_split="train",
                num_gen=50_000, z_dim=512, custom_feat_extractor=None, verbose=True, custom_image_tranform=None,
                custom_fn_resize=None, use_dataparallel=True) -> np.float64:
    """clean-fid's ``compute_fid`` between two folders or zips (subfolders included, as clean-fid reads them), or
    a generator ``gen(z)`` (images in [0, 255], ``num_gen`` samples, z ~ N(0, 1) of ``z_dim``, seed 0) and
    ``fdir2``, with clean-fid's ``mode`` (``"clean"``, ``"legacy_pytorch"``, ``"legacy_tensorflow"``) as the
    resize convention, through the FID Inception (weights looked up as ganmetrics does). ``device`` is used
    when available, else the CPU. Not reproduced, and refused: clean-fid's downloadable dataset statistics
    (``fdir2`` must be given), ``model_name="clip_vit_b_32"`` and the custom extractor/transform hooks."""
    from ganmetrics.extraction import run_input

    if model_name != "inception_v3":
        raise ValueError(f"model_name={model_name!r} is not available here; only inception_v3")
    for key, value in (("custom_feat_extractor", custom_feat_extractor), ("custom_image_tranform", custom_image_tranform),
                       ("custom_fn_resize", custom_fn_resize)):
        if value is not None:
            raise ValueError(f"{key} is not supported; pass a module as ganmetrics.fid(..., extractor=...) instead")
    if fdir2 is None:
        raise ValueError(f"fdir2 is required: clean-fid's precomputed statistics ({dataset_name}, {dataset_res}, "
                         f"{dataset_split}) are not downloaded here; pass the reference images, or their statistics "
                         "to ganmetrics.fid")
    if (fdir1 is None) == (gen is None):
        raise ValueError("give exactly one of fdir1 and gen")
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        dev = torch.device("cpu")
    first = fdir1 if gen is None else Generator(gen, num_samples=int(num_gen), z_dim=int(z_dim),
                                                batch_size=int(batch_size), output_range=(0.0, 255.0), name="gen")
    stats, ext = [], "inception-v3"
    for label, x in (("fdir1", first), ("fdir2", fdir2)):
        res, ext = run_input(x, label, ext, resize=mode, device=str(dev),
                             recursive=True, batch_size=int(batch_size), workers=int(num_workers), keep_features=False,
                             progress=None if verbose else False)
        stats.append(res.stats)
    return np.float64(_fid(stats[0], stats[1]))
