"""torchmetrics ``Metric`` classes on features: FID, KID and PRDC with ganmetrics' exact kernels.

Importable when torchmetrics is installed. Each class takes feature vectors in ``update(features,
real=True/False)``; in a torch.distributed run ``compute()`` gives every process the same answer as one
process on the concatenated data, without gathering the features (torchmetrics' own sync would copy every
process's features to every process): each process keeps its own states and ``compute()`` runs the
sharded paths of :mod:`ganmetrics.engines.ring` over the metric's ``process_group`` (default: the world):

- :class:`FrechetDistance` keeps float64 sufficient statistics per side (n, mean, M2), merged over the
  processes with Chan's formula (exact, unlike summing raw second moments);
- :class:`KernelDistance` keeps the features; KID subsets are drawn on indices into the concatenated
  sets and kernel sums are computed where the rows live;
- :class:`PrecisionRecallDensityCoverage` keeps the features; the k-NN passes run on a ring of the
  processes (blocks travel, decisions identical to one process).

``sync_on_compute=False`` computes on the process's own data only. After ``compute()``,
``compute_info["peak_memory"]`` lists every process's peak resident memory (and peak CUDA allocation).

``reset_real_features=False`` keeps the real side across ``reset()``, for evaluating many
checkpoints against one real set.

With ``extractor="inception-v3"`` (or any extractor :func:`ganmetrics.extract` takes) ``update`` takes
image batches instead, like torchmetrics' ``FrechetInceptionDistance(feature=2048)``: uint8 (N, 3, H, W),
or float in [0, 1] with ``normalize=True`` (turned into uint8 as torchmetrics does, ``(x * 255).byte()``);
``resize`` defaults to ``"torchmetrics"`` (its antialiased bilinear resize), ``weights`` names the file.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torchmetrics import Metric

from ganmetrics._native import _core
from ganmetrics.engines.ring import memory_of_this_process, peak_memory, resolve_group
from ganmetrics.extractors import get_extractor
from ganmetrics.images import _channels
from ganmetrics.metrics.frechet import stats_distance, warn_small
from ganmetrics.metrics.kernel import _float32_products, kid
from ganmetrics.metrics.knn import prdc
from ganmetrics.stats import FeatureStats

__all__ = ["FrechetDistance", "KernelDistance", "PrecisionRecallDensityCoverage"]


def _features_np(features: torch.Tensor, dim: int | None) -> np.ndarray:
    if not isinstance(features, torch.Tensor):
        features = torch.as_tensor(np.asarray(features))
    if features.ndim != 2:
        raise ValueError(f"features must be 2-D (batch x dim), got shape {tuple(features.shape)}")
    if dim is not None and features.shape[1] != dim:
        raise ValueError(f"features have {features.shape[1]} dimensions, the metric was built for {dim}")
    return features.detach().to("cpu", torch.float64).numpy()


def _side(real: Any) -> str:
    """update(..., real=): True or False only (a string such as "False" is not silently real)."""
    if isinstance(real, (bool, np.bool_)):
        return "real" if real else "fake"
    if isinstance(real, torch.Tensor) and real.dtype == torch.bool and real.numel() == 1:
        return "real" if bool(real) else "fake"
    raise TypeError(f"real must be True or False, got {real!r} ({type(real).__name__})")


def _positive_int(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


class _KeepReal(Metric):
    _real_states: tuple[str, ...] = ()

    def __init__(self, reset_real_features: bool = True, *, extractor: Any = None, resize: str | None = "torchmetrics",
                 weights: Any = None, normalize: bool = False, **kwargs: Any):
        super().__init__(**kwargs)
        if not isinstance(reset_real_features, bool):
            raise ValueError("reset_real_features must be a bool")
        if not isinstance(normalize, bool):
            raise ValueError("normalize must be a bool")
        self.reset_real_features = reset_real_features
        self.normalize = normalize
        self._extractor_args = (extractor, resize, weights)
        self._extractor = None
        self._compute_group = None
        self.compute_info: dict = {}
        if extractor is not None:  # build now: a missing weights file is an error here, not at the first update
            self._images_extractor()

    def _images_extractor(self):
        if self._extractor is None:
            extractor, resize, weights = self._extractor_args
            resize = resize if extractor == "inception-v3" or extractor is None else None
            self._extractor = get_extractor(extractor, resize=resize, weights=weights, device=str(self.device))
        return self._extractor

    def _features_of(self, x: Any) -> Any:
        """Features as given, or, with an extractor, the features of an image batch."""
        if self._extractor_args[0] is None:
            return x
        if not isinstance(x, torch.Tensor) or x.ndim != 4 or x.shape[1] not in (1, 3):
            raise ValueError(f"with an extractor, update() takes image batches (N, 3, H, W); got "
                             f"{tuple(getattr(x, 'shape', ()))}")
        if self.normalize and x.is_floating_point():
            x = (x * 255).byte()
        if x.dtype != torch.uint8:
            raise ValueError(f"image batches must be uint8 0-255 (or float in [0, 1] with normalize=True), got {x.dtype}")
        ext = self._images_extractor()
        imgs = x.permute(0, 2, 3, 1).cpu().numpy()
        if imgs.shape[3] != ext.channels:
            imgs = np.stack([_channels(im, ext.channels, "images") for im in imgs])
        batch = torch.stack([ext.prepare(im) for im in imgs])
        return ext(batch)[0]

    def sync(self, dist_sync_fn: Any = None, process_group: Any = None, should_sync: bool = True,
             distributed_available: Any = None) -> None:
        """No gathering of states: remember whether ``compute()`` runs over the process group (see module doc)."""
        available = distributed_available if distributed_available is not None else self.distributed_available_fn
        on = should_sync and callable(available) and bool(available())
        self._compute_group = (process_group or self.process_group or "default") if on else None

    def _record_memory(self) -> None:
        group = self._compute_group
        self.compute_info = {"peak_memory": [memory_of_this_process()] if group is None
                             else peak_memory(resolve_group(group))}

    def reset(self) -> None:
        if self.reset_real_features:
            super().reset()
            return
        # copies: Metric.reset() clears list states in place, so a reference to the same list would be emptied too
        kept = {name: (list(v) if isinstance(v, list) else v)
                for name, v in ((name, getattr(self, name)) for name in self._real_states)}
        super().reset()
        for name, value in kept.items():
            setattr(self, name, value)


class FrechetDistance(_KeepReal):
    """Fréchet distance between the real and fake features seen so far (lower is better)."""

    higher_is_better = False
    is_differentiable = False
    full_state_update = False
    _real_states = ("real_n", "real_mean", "real_m2")

    def __init__(self, num_features: int = 2048, reset_real_features: bool = True, **kwargs: Any):
        super().__init__(reset_real_features, **kwargs)
        if int(num_features) < 1:
            raise ValueError(f"num_features must be >= 1, got {num_features}")
        self.num_features = d = int(num_features)
        for side in ("real", "fake"):
            # dist_reduce_fx=None: the processes' states arrive stacked and are merged exactly in compute()
            self.add_state(f"{side}_n", torch.zeros((), dtype=torch.float64), dist_reduce_fx=None)
            self.add_state(f"{side}_mean", torch.zeros(d, dtype=torch.float64), dist_reduce_fx=None)
            self.add_state(f"{side}_m2", torch.zeros(d, d, dtype=torch.float64), dist_reduce_fx=None)

    def update(self, features: torch.Tensor, real: bool) -> None:
        side = _side(real)
        x = _features_np(self._features_of(features), self.num_features)
        n = getattr(self, f"{side}_n")
        mean = getattr(self, f"{side}_mean").cpu().numpy().copy()
        m2 = getattr(self, f"{side}_m2").cpu().numpy().copy()
        batch = FeatureStats.from_features(x)
        new_n = _core.moments_merge(mean, m2, int(n.item()), batch.n, batch._mean, batch._m2)
        device = n.device
        setattr(self, f"{side}_n", torch.tensor(float(new_n), dtype=torch.float64, device=device))
        setattr(self, f"{side}_mean", torch.from_numpy(mean).to(device))
        setattr(self, f"{side}_m2", torch.from_numpy(m2).to(device))

    def _merged(self, side: str) -> FeatureStats:
        out = FeatureStats(self.num_features)
        out._n = int(round(float(getattr(self, f"{side}_n").item())))
        out._mean = np.ascontiguousarray(getattr(self, f"{side}_mean").cpu().numpy(), dtype=np.float64).copy()
        out._m2 = np.ascontiguousarray(getattr(self, f"{side}_m2").cpu().numpy(), dtype=np.float64).copy()
        out.all_reduce(self._compute_group)
        if out.n < 2:
            raise ValueError(f"FrechetDistance needs at least 2 {side} samples, got {out.n}")
        return out

    def compute(self) -> torch.Tensor:
        real, fake = self._merged("real"), self._merged("fake")
        warn_small(real, "real")
        warn_small(fake, "fake")
        value = stats_distance(real, fake)
        self._record_memory()
        return torch.tensor(value, dtype=torch.float64)


class _FeatureLists(_KeepReal):
    _real_states = ("real_features",)

    def __init__(self, reset_real_features: bool = True, **kwargs: Any):
        super().__init__(reset_real_features, **kwargs)
        self.add_state("real_features", [], dist_reduce_fx="cat")
        self.add_state("fake_features", [], dist_reduce_fx="cat")
        self._dim: int | None = None

    def update(self, features: torch.Tensor, real: bool) -> None:
        side = _side(real)
        x = _features_np(self._features_of(features), self._dim)
        self._dim = x.shape[1]
        getattr(self, f"{side}_features").append(torch.from_numpy(x))

    def _local(self) -> tuple[np.ndarray, np.ndarray]:
        """This process's features of each side (an empty side: 0 rows, when other processes hold some)."""
        def cat(v):
            if isinstance(v, torch.Tensor):
                return v.cpu().numpy()
            if not v:
                if self._compute_group is not None:
                    return np.zeros((0, self._dim or 0))
                raise ValueError("no features were given for one of the sides")
            return torch.cat([t.cpu() for t in v]).numpy()

        return cat(self.real_features), cat(self.fake_features)


class KernelDistance(_FeatureLists):
    """KID: ``compute()`` returns (mean, std) over subsets, as torchmetrics' KernelInceptionDistance.

    ``precision="float32"`` forms the dot products with float32 GEMM (see :func:`ganmetrics.kid`)."""

    higher_is_better = False
    is_differentiable = False
    full_state_update = False

    def __init__(self, subsets: int = 100, subset_size: int = 1000, degree: int = 3, gamma: float | None = None,
                 coef: float = 1.0, seed: int = 2020, reset_real_features: bool = True, precision: str = "float64",
                 **kwargs: Any):
        super().__init__(reset_real_features, **kwargs)
        _positive_int(subsets, "subsets")
        _positive_int(subset_size, "subset_size")
        _positive_int(degree, "degree")
        if gamma is not None and not (isinstance(gamma, (int, float, np.floating)) and np.isfinite(gamma) and gamma > 0):
            raise ValueError(f"gamma must be None or a positive number, got {gamma!r}")
        if not (isinstance(coef, (int, float, np.floating)) and np.isfinite(coef)):
            raise ValueError(f"coef must be a finite number, got {coef!r}")
        self.subsets, self.subset_size, self.seed = subsets, subset_size, seed
        self.degree, self.gamma, self.coef = degree, gamma, coef
        _float32_products(precision)  # validate now, not at compute()
        self.precision = precision

    def compute(self) -> tuple[torch.Tensor, torch.Tensor]:
        real, fake = self._local()
        res = kid(real, fake, subsets=self.subsets, subset_size=self.subset_size, seed=self.seed,
                  degree=self.degree, gamma=self.gamma, coef0=self.coef, precision=self.precision,
                  group=self._compute_group)
        self._record_memory()
        std = res.std if res.std is not None else 0.0
        return torch.tensor(res.mean, dtype=torch.float64), torch.tensor(std, dtype=torch.float64)


class PrecisionRecallDensityCoverage(_FeatureLists):
    """Exact precision, recall, density and coverage (k-NN, ``<=``): ``compute()`` returns a dict of tensors."""

    higher_is_better = True
    is_differentiable = False
    full_state_update = False

    def __init__(self, k: int = 5, reset_real_features: bool = True, **kwargs: Any):
        super().__init__(reset_real_features, **kwargs)
        self.k = _positive_int(k, "k")

    def compute(self) -> dict[str, torch.Tensor]:
        real, fake = self._local()
        res = prdc(real, fake, k=self.k, group=self._compute_group)
        self._record_memory()
        return {key: torch.tensor(res[key], dtype=torch.float64) for key in ("precision", "recall", "density", "coverage")}
