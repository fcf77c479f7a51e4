"""torch-fidelity's ``calculate_metrics`` on features, with its result keys and conventions.

``input1`` is the generated set and ``input2`` the real one, as in torch-fidelity. Each input is a
feature array/tensor/path, or a dict with ``"features"`` (for FID, KID, PRC) and ``"logits"`` (for
the Inception Score, which torch-fidelity computes from the Inception logits of input1); with
``isc=True`` alone, a plain ``input1`` array is taken as the logits.
Defaults follow torch-fidelity: KID 100 subsets of 1000 with its RandomState(2020) draws, PRC
neighbourhood 3 with ``<=``, ISC 10 splits shuffled with RandomState(rng_seed). Image inputs,
Image inputs (a folder, a .zip, an image array, a Dataset, a :class:`ganmetrics.Generator`) go through the
FID Inception with torch-fidelity's preprocessing (``resize="legacy_tensorflow"``): pool3 for FID, KID and
PRC, the unbiased logits for ISC; ``feature_extractor_weights_path``, ``batch_size``, ``cuda`` and ``cache``
are honoured there, the other extractor and cache arguments are accepted and ignored.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ganmetrics._arrays import as_features
from ganmetrics.images import is_image_input
from ganmetrics.metrics.frechet import fid as _fid
from ganmetrics.metrics.inception import _log_probs, split_scores
from ganmetrics.metrics.kernel import kid as _kid
from ganmetrics.metrics.knn import precision_recall

__all__ = ["calculate_metrics"]

_IGNORED = {
    "feature_extractor", "feature_layer_isc", "feature_layer_fid", "feature_layer_kid",
    "feature_layer_prc", "feature_extractor_internal_dtype",
    "feature_extractor_compile", "kid_kernel_rbf_sigma", "prc_batch_size", "samples_find_deep", "samples_find_ext",
    "samples_ext_lossy", "samples_resize_and_crop", "datasets_root", "datasets_download", "cache_root",
    "input1_cache_name", "input2_cache_name", "save_cpu_ram", "verbose", "ppl", "input1_model_z_type",
    "input1_model_z_size", "input1_model_num_classes", "input1_model_num_samples", "input2_model_z_type",
    "input2_model_z_size", "input2_model_num_classes", "input2_model_num_samples",
}


_IMAGE_OPTIONS = ("feature_extractor_weights_path", "batch_size", "cuda", "cache")


def _from_images(x: Any, name: str, logits: bool, kwargs: dict, ext: Any = None) -> tuple[Any, Any]:
    """An image input becomes {"features", "logits"} through the Inception with torch-fidelity's resize.
    Returns it and the extractor (built on first use, reused for the other input)."""
    if x is None or isinstance(x, dict) or not is_image_input(x):
        return x, ext
    from ganmetrics.extraction import run_input

    res, ext = run_input(x, name, ext or "inception-v3", resize="legacy_tensorflow",
                         weights=kwargs.get("feature_extractor_weights_path"),
                         device="cuda" if kwargs.get("cuda", False) else "cpu",
                         batch_size=int(kwargs.get("batch_size", 64)), want_logits=logits,
                         cache=bool(kwargs.get("cache", True)), progress=None if kwargs.get("verbose", True) else False)
    return {"features": res.features, "logits": res.logits}, ext


def _part(x: Any, key: str, name: str, isc_only: bool = False):
    if isinstance(x, dict):
        if key not in x:
            raise ValueError(f"{name} has no '{key}' entry (has {sorted(x)})")
        return x[key]
    if key == "logits" and not isc_only:
        raise ValueError(
            f"isc=True together with fid/kid/prc needs {name} as a dict with 'features' and 'logits' "
            "(the Inception logits of the samples)"
        )
    return x


def calculate_metrics(
    input1: Any = None,
    input2: Any = None,
    isc: bool = False,
    fid: bool = False,
    kid: bool = False,
    prc: bool = False,
    isc_splits: int = 10,
    kid_subsets: int = 100,
    kid_subset_size: int = 1000,
    kid_kernel: str = "poly",
    kid_kernel_poly_degree: int = 3,
    kid_kernel_poly_gamma: float | None = None,
    kid_kernel_poly_coef0: float = 1,
    prc_neighborhood: int = 3,
    samples_shuffle: bool = True,
    rng_seed: int = 2020,
    **kwargs: Any,
) -> dict:
    """Metrics between ``input1`` (generated) and ``input2`` (real) with torch-fidelity's keys:
    ``inception_score_mean/std``, ``frechet_inception_distance``, ``kernel_inception_distance_mean/std``,
    ``precision``, ``recall``, ``f_score``."""
    unknown = set(kwargs) - _IGNORED - set(_IMAGE_OPTIONS)
    if unknown:
        raise TypeError(f"calculate_metrics got unexpected keyword argument(s) {sorted(unknown)}")
    if kid_kernel != "poly":
        raise ValueError(f"only kid_kernel='poly' is supported, got {kid_kernel!r}")
    if not (isc or fid or kid or prc):
        raise ValueError("at least one of isc, fid, kid, prc must be True")
    if input1 is None:
        raise ValueError("input1 (the generated samples' features) is required")
    if (fid or kid or prc) and input2 is None:
        raise ValueError("fid, kid and prc need input2 (the real samples' features)")
    input1, ext = _from_images(input1, "input1", isc, kwargs)
    input2, _ = _from_images(input2, "input2", False, kwargs, ext)
    out: dict[str, float] = {}
    if isc:
        f = as_features(_part(input1, "logits", "input1", isc_only=not (fid or kid or prc)), "input1 logits")
        logp = _log_probs(f.rows(0, f.n).astype(np.float64), "logits", f.code)  # torch-fidelity reads logits
        if samples_shuffle:
            logp = logp[np.random.RandomState(rng_seed).permutation(f.n)]
        if f.n < isc_splits:
            raise ValueError(f"input1 has {f.n} samples, fewer than isc_splits = {isc_splits}")
        bounds = np.array([i * f.n // isc_splits for i in range(isc_splits + 1)])  # torch-fidelity's split points
        res = split_scores(logp, bounds)
        out["inception_score_mean"], out["inception_score_std"] = res.mean, res.std
    if fid or kid or prc:
        gen = _part(input1, "features", "input1")
        real = _part(input2, "features", "input2")
        if fid:
            out["frechet_inception_distance"] = _fid(real, gen)
        if kid:
            res = _kid(real, gen, subsets=kid_subsets, subset_size=kid_subset_size, seed=rng_seed,
                       degree=kid_kernel_poly_degree, gamma=kid_kernel_poly_gamma, coef0=kid_kernel_poly_coef0)
            out["kernel_inception_distance_mean"], out["kernel_inception_distance_std"] = res.mean, res.std
        if prc:
            res = precision_recall(real, gen, k=prc_neighborhood)
            p, r = res["precision"], res["recall"]
            out["precision"], out["recall"] = p, r
            out["f_score"] = 2 * p * r / max(1e-5, p + r)
    return out
