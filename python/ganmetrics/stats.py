"""Streaming feature statistics: mean and covariance, mergeable, saved as .npz.

:class:`FeatureStats` keeps ``(n, mean, M2)`` in float64, ``M2 = sum (x - mean)(x - mean)^T``.
Batches are folded in by the C++ moments kernel (chunks centred on their own mean, BLAS syrk,
Chan's merge), so precision does not depend on the batch size or on a large mean offset.
"""

from __future__ import annotations

import os
import threading
from typing import Any, Iterable, Iterator, Mapping, Sequence

import numpy as np

from ganmetrics import __version__
from ganmetrics import engines
from ganmetrics._arrays import F64, Features, as_features, is_path, max_abs, refuse_tiny
from ganmetrics._cuda_arrays import UNVERIFIED_FLAG, as_device_features, is_device_array, require_cuda
from ganmetrics._cuda_arrays import moments_update as device_update
from ganmetrics._io import ZIP_MAGICS, atomic_write, check_npz, iter_npy_row_blocks, load_npz, npy_header
from ganmetrics._native import _core, _cuda
from ganmetrics._progress import counted, progress_bar
from ganmetrics.engines import Engine, Set

_BLOCK_BYTES = 64 << 20  # rows read from an .npy file (or folded per subset pass) at a time: bounds memory
F64_UNIT_ROUNDOFF = 2.0**-53
MAX_SAMPLES = 2**53  # a sample count beyond it is not a count (float64 means could not hold it)


def unit_roundoff_of(x: Any) -> float:
    """Unit roundoff of the precision an array is stored in (float32: 2^-24); exact types count as float64."""
    if type(x).__module__.startswith("torch") and hasattr(x, "dtype"):
        import torch

        return float(torch.finfo(x.dtype).eps) / 2 if x.dtype.is_floating_point else F64_UNIT_ROUNDOFF
    dt = getattr(x, "dtype", None)
    if dt is not None and np.dtype(dt).kind == "f":
        return max(float(np.finfo(dt).eps) / 2, F64_UNIT_ROUNDOFF)
    return F64_UNIT_ROUNDOFF


def _rows_per_block(dim: int, itemsize: int) -> int:
    return max(1, _BLOCK_BYTES // max(1, dim * itemsize))


def prefix_segments(n: int, sizes: Iterable[int], seed: int | None) -> list[np.ndarray]:
    """The rows added by each of the growing prefixes ``sizes`` (sorted) of one seeded shuffle of ``n`` rows
    (``seed=None``: the given order): FD-infinity's nested samples, on one process or over shards."""
    order = np.arange(n) if seed is None else np.random.default_rng(seed).permutation(n)
    edges = [0] + sorted(int(s) for s in sizes)
    return [order[edges[i]:edges[i + 1]] for i in range(len(edges) - 1)]


class FeatureStats:
    """Mean and unbiased covariance of a stream of feature vectors.

    >>> stats = FeatureStats(2048)
    >>> for batch in loader: stats.update(batch)         # doctest: +SKIP
    >>> stats.mean, stats.cov, stats.n                    # doctest: +SKIP

    ``feature_extractor`` names the network that produced the features; statistics of different
    extractors are not comparable and :func:`ganmetrics.fid` refuses to compare them unless forced.
    """

    def __init__(self, dim: int, feature_extractor: str | None = None):
        if isinstance(dim, bool) or not isinstance(dim, (int, np.integer)):
            raise TypeError(f"dim must be an integer, got {dim!r}")
        dim = int(dim)
        if dim < 1:
            raise ValueError(f"dim must be >= 1, got {dim}")
        if feature_extractor is not None and not isinstance(feature_extractor, str):
            raise TypeError(f"feature_extractor must be a string, got {type(feature_extractor).__name__}")
        self._lock = threading.RLock()  # update / merge from several threads fold in one at a time
        self.dim = dim
        self.feature_extractor = feature_extractor
        self._n: int | None = 0
        self._mean = np.zeros(dim, dtype=np.float64)
        self._m2 = np.zeros((dim, dim), dtype=np.float64)  # lower triangle maintained by the kernel
        self._sigma: np.ndarray | None = None  # set only for statistics loaded without a sample count
        self._unit_roundoff = F64_UNIT_ROUNDOFF  # the rounding the covariance carries (float64 accumulation)

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        del state["_lock"]
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._lock = threading.RLock()

    # ------------------------------------------------------------------ properties
    @property
    def n(self) -> int | None:
        """Number of samples (None for statistics loaded from a file that does not record it)."""
        return self._n

    @property
    def mean(self) -> np.ndarray:
        return self._mean.copy()

    @property
    def cov_unit_roundoff(self) -> float:
        """Unit roundoff of the precision the covariance carries: 2^-53 for statistics accumulated here
        (float64 products, whatever the feature dtype); that of the stored dtype for a loaded or given
        covariance (2^-24 for float32). The Fréchet distance treats eigenvalues within this rounding as 0."""
        return self._unit_roundoff

    @property
    def cov(self) -> np.ndarray:
        """Unbiased covariance (divides by n - 1), symmetric, float64."""
        if self._sigma is not None:
            return self._sigma.copy()
        if self._n is None or self._n < 2:
            raise ValueError(f"the covariance needs at least 2 samples, these statistics have {self._n}")
        lower = np.tril(self._m2)
        cov = lower + np.tril(lower, -1).T
        cov /= self._n - 1
        return cov

    def __repr__(self) -> str:
        fx = f", feature_extractor={self.feature_extractor!r}" if self.feature_extractor else ""
        return f"FeatureStats(dim={self.dim}, n={self._n}{fx})"

    # ------------------------------------------------------------------ updates
    def _require_mergeable(self) -> None:
        if self._sigma is not None:
            raise ValueError("these statistics were loaded without a sample count ('n'); they cannot be updated")

    def _fold(self, f: Features, rows: np.ndarray | None = None, *, offset: int = 0, progress: Any = None,
              desc: str = "statistics") -> None:
        """Fold rows of ``f`` (all, or ``rows``) in; the kernel scans for NaN/Inf as it reads and leaves the
        state unchanged when it finds any. ``offset`` is added to the row reported in that error."""
        total = f.n if rows is None else len(rows)
        if f.code == F64:
            refuse_tiny(max_abs(f), f.name, "squared deviations")
        with self._lock:
            n, bad, first, overflow = counted(lambda c: _core.moments_update(self._mean, self._m2, self._n, f.array,
                                                                             f.code, rows, progress=c),
                                              total, desc, progress=progress)
            if not bad and not overflow:
                self._n = int(n)
        if overflow:
            raise ValueError(f"{f.name}: squared deviations overflow float64 (feature magnitudes near 1e154 or "
                             "more); divide the features by a power of two c = 2^k (the Fréchet distance scales "
                             "by c^2)")
        if bad:
            row = offset + (first if rows is None else int(rows[first]))
            raise ValueError(f"{f.name} contains {bad} NaN or Inf value(s); the first is in row {row}")

    def update(self, batch: Any, *, progress: bool | None = None, device: str | None = None,
               engine: str = "auto") -> "FeatureStats":
        """Add a batch of features (n x dim): array, tensor or .npy/.npz path. Returns self.

        Batches on a device (torch tensors on CUDA, ROCm or MPS; ``__cuda_array_interface__`` arrays) are reduced
        there by the torch engine: float64 products of centred chunks, merged with Chan's formula (the custom
        CUDA kernels with GANMETRICS_ENABLE_UNVERIFIED_CUDA=1 or ``engine="cuda"``); ``device="cuda"`` also
        sends host batches to the GPU. ``engine="torch"`` runs the torch engine on CPU tensors too. The update
        is atomic: a batch with NaN/Inf or the wrong width leaves the statistics unchanged.
        """
        self._require_mergeable()
        if device not in (None, "cpu", "cuda"):
            raise ValueError(f"device must be 'cpu', 'cuda' or None (follow the input), got {device!r}")
        where = engines.engine_name(engine, batch)
        if device == "cuda" and where == "host" and engine == "auto":
            where = "cuda" if os.environ.get(UNVERIFIED_FLAG, "") == "1" else "torch"
        if where == "torch":
            return self._update_torch(batch, device)
        if is_device_array(batch):
            if device == "cpu":
                raise ValueError("batch lives on a CUDA device; device='cpu' needs a host array")
            f = as_device_features(batch, "batch")
            if f.dim != self.dim:
                raise ValueError(f"batch has {f.dim} features, the statistics have {self.dim}")
            with self._lock:
                self._n = device_update(self._mean, self._m2, self._n, f)
                self._note_gpu_products(f.code)
            return self
        if device == "cuda":
            return self._update_host_on_gpu(batch)
        if is_path(batch) and os.fspath(batch).endswith(".npy"):
            if not os.path.exists(os.fspath(batch)):
                raise FileNotFoundError(f"no such file: {os.fspath(batch)}")
            shape, fortran, dtype, _ = npy_header(os.fspath(batch))
            if not fortran and len(shape) == 2:
                return self._update_from_npy(os.fspath(batch), shape, dtype, progress)
        f = as_features(batch, "batch", check=False)
        self._check_dim(f)
        self._fold(f, progress=progress)  # one kernel call; it checks for NaN/Inf and is atomic
        return self

    def _update_torch(self, batch: Any, device: str | None) -> "FeatureStats":
        """The torch engine's moments: chunks of the batch centred on their own mean, float64 ``torch.mm``, merged
        in float64 with Chan's formula where the batch lives (the host for MPS, which has no float64); then one
        merge into these statistics."""
        import torch  # an optional heavy dependency

        from ganmetrics.engines.torch_engine import TorchEngine

        t = TorchEngine().features(batch, "batch", min_rows=0).t  # validated there: shape, dtype, NaN/Inf
        if device == "cuda":
            t = t.to("cuda")
        if t.shape[1] != self.dim:
            raise ValueError(f"batch has {t.shape[1]} features, the statistics have {self.dim}")
        dev = torch.device("cpu") if t.device.type == "mps" else t.device
        n = int(t.shape[0])
        if t.dtype == torch.float64 and n:
            refuse_tiny(float(t.abs().max()), "batch", "squared deviations")
        mean = torch.zeros(self.dim, dtype=torch.float64, device=dev)
        m2 = torch.zeros(self.dim, self.dim, dtype=torch.float64, device=dev)
        done = 0
        step = max(1, (_BLOCK_BYTES // 8) // max(1, self.dim))
        for a in range(0, n, step):
            x = t[a:a + step].to(dev).double()
            nc = int(x.shape[0])
            mc = x.mean(0)
            xc = x - mc
            delta = mc - mean
            total = done + nc
            mean += delta * (nc / total)
            m2 += xc.T @ xc + torch.outer(delta, delta) * (done * nc / total)
            done = total
        if not bool(torch.isfinite(m2).all()):
            raise ValueError("batch: squared deviations overflow float64 (feature magnitudes near 1e154 or more); "
                             "divide the features by a power of two c = 2^k (the Fréchet distance scales by c^2)")
        if n:
            with self._lock:
                self._n = int(_core.moments_merge(self._mean, self._m2, self._n, n, mean.cpu().numpy(),
                                                  np.ascontiguousarray(m2.cpu().numpy())))
        return self

    def _update_host_on_gpu(self, batch: Any) -> "FeatureStats":
        require_cuda("device='cuda'")
        f = as_features(batch, "batch", check=False)
        self._check_dim(f)
        with self._lock:
            new_n, bad, first = _cuda.moments_update_host(self._mean, self._m2, self._n, f.array, f.code, 0)
            if bad:
                raise ValueError(f"{f.name} contains {bad} NaN or Inf value(s); the first is in row {first}")
            self._n = int(new_n)
            self._note_gpu_products(f.code)
        return self

    def _note_gpu_products(self, code: int) -> None:
        """The CUDA moments kernel forms products in the input's precision (float32 syrk for float32 and
        narrower inputs): the covariance then carries float32 rounding."""
        if code != F64:
            self._unit_roundoff = max(self._unit_roundoff, 2.0**-24)

    def _update_from_npy(self, path: str, shape: tuple, dtype: np.dtype, progress: bool) -> "FeatureStats":
        n, d = shape
        if d != self.dim:
            raise ValueError(f"{path} has {d} features, the statistics have {self.dim}")
        with self._lock:  # the blocks of one file fold in together, or not at all
            saved = (self._n, self._mean.copy(), self._m2.copy())
            try:
                with progress_bar(n, f"statistics of {os.path.basename(path)}", enabled=progress) as bar:
                    for start, block in iter_npy_row_blocks(path, _rows_per_block(d, dtype.itemsize)):
                        self._fold(as_features(block, path, check=False), offset=start, progress=False)
                        bar.update(len(block))
            except BaseException:
                self._n, self._mean[...], self._m2[...] = saved
                raise
        return self

    def _check_dim(self, f: Features) -> None:
        if f.dim != self.dim:
            raise ValueError(f"{f.name} has {f.dim} features, the statistics have {self.dim}")

    def merge(self, other: "FeatureStats") -> "FeatureStats":
        """Fold another FeatureStats into this one (Chan et al.'s parallel formula). Returns self."""
        if not isinstance(other, FeatureStats):
            raise TypeError(f"other must be a FeatureStats, got {type(other).__name__}")
        self._require_mergeable()
        other._require_mergeable()
        if other.dim != self.dim:
            raise ValueError(f"cannot merge statistics of dimension {other.dim} into dimension {self.dim}")
        if self.feature_extractor and other.feature_extractor and self.feature_extractor != other.feature_extractor:
            raise ValueError(
                f"cannot merge statistics of feature extractor {other.feature_extractor!r} "
                f"into {self.feature_extractor!r}"
            )
        if other is self:
            other = other.copy()
        with self._lock, other._lock:
            self._n = int(_core.moments_merge(self._mean, self._m2, self._n, other._n, other._mean, other._m2))
            self._unit_roundoff = max(self._unit_roundoff, other._unit_roundoff)
        self.feature_extractor = self.feature_extractor or other.feature_extractor
        return self

    def all_reduce(self, group: Any = "default") -> "FeatureStats":
        """Merge the statistics of every rank of a torch.distributed process group into this one, in place and
        exactly (see :mod:`ganmetrics.engines.ring`): afterwards every rank holds the statistics of all the
        shards. ``group``: ``"default"`` or a ProcessGroup. Returns self."""
        if group is None:
            return self
        merged = self.reduced(engines.select(group=group, call={"call": "FeatureStats.all_reduce"}))
        with self._lock:
            self._n, self._mean, self._m2 = merged._n, merged._mean, merged._m2
            self._unit_roundoff = merged._unit_roundoff
            self.feature_extractor = merged.feature_extractor
        return self

    def reduced(self, eng: Engine) -> "FeatureStats":
        """The statistics of every process of ``eng`` together (merged in process order, Chan's formula; these
        statistics themselves for an engine of one process)."""
        if not eng.distributed:
            return self

        def local() -> None:
            self._require_mergeable()

        eng.local(local, "FeatureStats.all_reduce")
        with self._lock:
            n, mean, m2, u, name = eng.reduce_moments(int(self._n or 0), self._mean, self._m2, self._unit_roundoff,
                                                      self.dim, self.feature_extractor)
        out = FeatureStats(self.dim, name)
        out._n, out._mean, out._m2, out._unit_roundoff = n, mean, m2, u
        return out

    def copy(self) -> "FeatureStats":
        out = FeatureStats(self.dim, self.feature_extractor)
        with self._lock:
            out._n, out._mean, out._m2 = self._n, self._mean.copy(), self._m2.copy()
            out._sigma = None if self._sigma is None else self._sigma.copy()
            out._unit_roundoff = self._unit_roundoff
        return out

    # ------------------------------------------------------------------ constructors
    @classmethod
    def from_features(
        cls, x: Any, *, feature_extractor: str | None = None, progress: bool | None = None, device: str | None = None,
        engine: str = "auto",
    ) -> "FeatureStats":
        """Statistics of a whole feature set (array, tensor, or .npy/.npz path); ``device`` and ``engine`` as in
        :meth:`update`."""
        if engines.engine_name(engine, x) == "torch" or (device == "cuda" and engine != "cuda"
                                                          and os.environ.get(UNVERIFIED_FLAG, "") != "1"):
            shape = getattr(x, "shape", None)
            if shape is None or len(shape) != 2:
                x = as_features(x, "features", check=False).rows(0, None)
            return cls(int(x.shape[1]), feature_extractor).update(x, device=device, engine="torch")
        if is_device_array(x):
            f = as_device_features(x, "features")
            return cls(f.dim, feature_extractor).update(x, device=device)
        if device == "cuda":
            f = as_features(x, "features", check=False)
            return cls(f.dim, feature_extractor).update(f, device="cuda")
        if is_path(x) and os.fspath(x).endswith(".npy"):
            if not os.path.exists(os.fspath(x)):
                raise FileNotFoundError(f"no such file: {os.fspath(x)}")
            shape = npy_header(os.fspath(x))[0]
            if len(shape) != 2:
                raise ValueError(f"{os.fspath(x)} must hold a 2-D array (samples x features), got shape {shape}")
            return cls(shape[1], feature_extractor).update(x, progress=progress)
        f = as_features(x, "features", check=False)
        return cls(f.dim, feature_extractor).update(f, progress=progress)

    @classmethod
    def from_mean_cov(
        cls, mean: Any, cov: Any, n: int | None = None, *, feature_extractor: str | None = None,
        unit_roundoff: float | None = None,
    ) -> "FeatureStats":
        """Statistics from a known mean and covariance (e.g. pytorch-fid's ``mu``/``sigma``).

        The covariance's dtype says how much rounding it carries (a float32 ``torch.cov`` result
        rounds at 2^-24); ``unit_roundoff`` overrides that."""
        mu = _vector(mean, "mu")
        sigma = _square(cov, "sigma", mu.shape[0])
        out = cls(mu.shape[0], feature_extractor)
        out._unit_roundoff = unit_roundoff_of(cov) if unit_roundoff is None else float(unit_roundoff)
        if not F64_UNIT_ROUNDOFF <= out._unit_roundoff < 1:
            raise ValueError(f"unit_roundoff must be in [2^-53, 1), got {unit_roundoff}")
        out._mean = mu.copy()
        if n is None:
            out._n = None
            out._sigma = sigma.copy() if np.shares_memory(sigma, np.asarray(cov)) else sigma
        else:
            n = int(n)
            if n < 2:
                raise ValueError(f"n must be >= 2 for a covariance, got {n}")
            out._n = n
            out._m2 = sigma * (n - 1)
        return out

    # ------------------------------------------------------------------ batched subsets
    @classmethod
    def of_subsets(
        cls, x: Any, subsets: Sequence[Sequence[int]] | Sequence[np.ndarray], *, progress: bool | None = None
    ) -> list["FeatureStats"]:
        """Statistics of many (possibly overlapping) row subsets of one feature set, in one pass.

        ``subsets`` is a list of index arrays into the rows of ``x`` (repeats allowed: a bootstrap
        resample is an index array with repeats).
        """
        f = as_features(x, "features")
        idx = []
        for i, s in enumerate(subsets):
            a = np.asarray(s)
            if a.ndim != 1 or (a.size and a.dtype.kind not in "iu"):
                raise ValueError(f"subsets[{i}] must be a 1-D array of row indices")
            a = a.astype(np.int64)
            if a.size and (a.min() < 0 or a.max() >= f.n):
                raise ValueError(f"subsets[{i}] has indices outside [0, {f.n})")
            idx.append(np.sort(a))
        out = [cls(f.dim) for _ in idx]
        block = _rows_per_block(f.dim, f.array.itemsize)
        with progress_bar(f.n, "subset statistics", enabled=progress) as bar:
            for a, b in f.chunks(block):
                for st, rows in zip(out, idx):
                    lo, hi = np.searchsorted(rows, [a, b])
                    if hi > lo:
                        st._fold(f, rows[lo:hi], progress=False)
                bar.update(b - a)
        return out

    @classmethod
    def by_label(cls, x: Any, labels: Any, *, progress: bool | None = None) -> dict[Any, "FeatureStats"]:
        """Per-class statistics ``{label: FeatureStats}`` of one feature set, in one pass."""
        f = as_features(x, "features")
        lab = np.asarray(labels)
        if lab.ndim != 1 or lab.shape[0] != f.n:
            raise ValueError(f"labels must be 1-D with one label per row ({f.n}), got shape {lab.shape}")
        classes, inverse = np.unique(lab, return_inverse=True)
        order = np.argsort(inverse, kind="stable")
        bounds = np.searchsorted(inverse[order], np.arange(len(classes) + 1))
        subsets = [order[bounds[i] : bounds[i + 1]] for i in range(len(classes))]
        stats = cls.of_subsets(f, subsets, progress=progress)
        return {c.item() if hasattr(c, "item") else c: s for c, s in zip(classes, stats)}

    @classmethod
    def nested_prefixes(
        cls, x: Any, sizes: Iterable[int], *, seed: int | None = 0, progress: bool | None = None
    ) -> list["FeatureStats"]:
        """Statistics of the first ``sizes[i]`` rows of one seeded shuffle of ``x`` (FD-infinity, learning curves).

        Each row is read once: disjoint segments are accumulated, then merged cumulatively.
        ``seed=None`` keeps the given row order.
        """
        return [acc.copy() for acc in cls.iter_nested_prefixes(x, sizes, seed=seed, progress=progress)]

    @classmethod
    def iter_nested_prefixes(
        cls, x: Any, sizes: Iterable[int], *, seed: int | None = 0, progress: bool | None = None
    ) -> Iterator["FeatureStats"]:
        """Like :meth:`nested_prefixes`, but yields one running FeatureStats (the same object, grown
        prefix by prefix) and frees each segment's d x d state once merged: memory for one prefix."""
        f = as_features(x, "features")
        sizes = sorted({int(s) for s in sizes})
        if not sizes or sizes[0] < 1 or sizes[-1] > f.n:
            raise ValueError(f"sizes must lie in [1, {f.n}], got {sizes}")
        yield from nested_prefix_stats(engines.HostEngine(), Set("features", f, f.n), sizes, seed, progress)

    # ------------------------------------------------------------------ files
    def save(self, path: str | os.PathLike) -> None:
        """Write an .npz with pytorch-fid / clean-fid / TTUR keys ``mu``, ``sigma`` plus ``n``,
        ``feature_extractor`` and ``ganmetrics_version``. Atomic: no partial file on failure."""
        arrays = {
            "mu": self._mean,
            "sigma": self.cov,
            "n": np.int64(-1 if self._n is None else self._n),
            "feature_extractor": np.str_(self.feature_extractor or ""),
            "cov_unit_roundoff": np.float64(self._unit_roundoff),
            "ganmetrics_version": np.str_(__version__),
        }
        if not os.fspath(path).endswith(".npz"):
            raise ValueError(f"statistics are saved as an .npz file (what pytorch-fid and clean-fid read): give a name "
                             f"ending in .npz, not {os.fspath(path)!r}")
        with atomic_write(path) as fh:
            np.savez(fh, **arrays)

    @classmethod
    def load(cls, path: str | os.PathLike, *, name: str | None = None) -> "FeatureStats":
        """Read statistics written by ganmetrics, pytorch-fid, clean-fid or TTUR (``mu``, ``sigma``)."""
        p = os.fspath(path)
        label = f"{name} ({p})" if name else p
        if not os.path.exists(p):
            raise FileNotFoundError(f"{label}: no such file: {p}")
        with open(p, "rb") as fh:
            magic = fh.read(4)
        if magic not in ZIP_MAGICS:
            raise ValueError(f"{label}: {p} is not an .npz statistics file" + (" (it is empty)" if not magic else ""))
        return cls.from_mapping(load_npz(p, label), label)

    @classmethod
    def from_mapping(cls, z: Mapping[str, Any], label: str) -> "FeatureStats":
        missing = [k for k in ("mu", "sigma") if k not in z]
        if missing:
            raise ValueError(f"{label}: statistics file lacks key(s) {missing} (has {sorted(z.keys())})")
        try:
            mu = _vector(z["mu"], f"{label}: mu")
            sigma = _square(z["sigma"], f"{label}: sigma", mu.shape[0])
        except ValueError as exc:
            raise ValueError(str(exc)) from None
        n_val = _scalar_key(z, "n", "iu", label, "one integer (the sample count)")
        if n_val is not None and not -1 <= int(n_val) <= MAX_SAMPLES:
            raise ValueError(f"{label}: key 'n' must be the sample count (at most {MAX_SAMPLES}, or -1: unknown), "
                             f"got {int(n_val)}")
        n = int(n_val) if n_val is not None and int(n_val) >= 2 else None
        fx = _scalar_key(z, "feature_extractor", "US", label, "one string")
        u = unit_roundoff_of(z["sigma"])
        u_file = _scalar_key(z, "cov_unit_roundoff", "f", label, "one float in (0, 1)")
        if u_file is not None:
            if not 0 < float(u_file) < 1:
                raise ValueError(f"{label}: key 'cov_unit_roundoff' must be one float in (0, 1), got {u_file}")
            u = max(u, float(u_file))
        return cls.from_mean_cov(mu, sigma, n, feature_extractor=str(fx) if fx else None, unit_roundoff=u)


def looks_like_statistics(path: Any, name: str) -> bool:
    """Whether an .npz file holds statistics (``mu`` or ``sigma``) rather than features."""
    return bool(check_npz(os.fspath(path), name).keys() & {"mu", "sigma"})


def as_stats(x: Any, name: str, progress: bool | None = None, engine: str = "auto") -> FeatureStats:
    """A FeatureStats, a statistics file or features (array, tensor, .npy/.npz) as FeatureStats (features reduced
    by ``engine``); errors name ``name``."""
    try:
        if isinstance(x, FeatureStats):
            return x
        if is_path(x) and str(x).endswith(".npz"):
            if not os.path.exists(x):
                raise FileNotFoundError(f"{name}: no such file: {os.fspath(x)}")
            if looks_like_statistics(x, name):  # mu or sigma present: statistics, and both must be there
                return FeatureStats.load(x, name=name)
        return FeatureStats.from_features(x, progress=progress, engine=engine)
    except ValueError as exc:
        msg = str(exc)
        raise ValueError(msg if msg.startswith(name) else f"{name}: {msg}") from None


def stats_of(eng: Engine, x: Any, name: str, progress: bool | None = None, engine: str = "auto") -> FeatureStats:
    """The statistics of one input over every process of ``eng``: each holds a FeatureStats, a statistics file or
    features, reduced by ``engine`` (on a ring a process may hold no rows: 0 rows of the right width, or empty
    statistics)."""
    if not eng.distributed:
        return as_stats(x, name, progress, engine)

    def local() -> FeatureStats:
        if isinstance(x, FeatureStats):
            return x.copy()
        if engines.on_a_device(x) and getattr(x, "ndim", 0) == 2:  # a shard on a GPU: reduced there
            st = FeatureStats(int(x.shape[1]))
            return st.update(x, progress=progress, engine="torch") if x.shape[0] else st
        f = as_features(x, name, min_rows=0)
        st = FeatureStats(f.dim)
        return st.update(f, progress=progress, engine="torch" if engine == "torch" else "auto") if f.n else st

    return eng.local(local, f"statistics of {name}").reduced(eng)


def subset_stats(eng: Engine, s: Set, subsets: Sequence[np.ndarray], progress: bool | None = None
                 ) -> list[FeatureStats]:
    """The statistics of each subset (global row indices) of a set, over every process of ``eng``."""
    f = s.local
    local = [eng.local_indices(s, idx) for idx in subsets]
    if not isinstance(f, Features):  # rows of a device engine: each subset's statistics where the rows live
        return [FeatureStats(f.dim).update(eng.as_input(f, idx), engine=eng.moments_engine) for idx in local]
    parts = FeatureStats.of_subsets(f, local, progress=progress) if f.n else [FeatureStats(f.dim) for _ in local]
    return [p.reduced(eng) for p in parts]


def nested_prefix_stats(eng: Engine, s: Set, sizes: Iterable[int], seed: int | None,
                        progress: bool | None = None) -> Iterator[FeatureStats]:
    """One running FeatureStats of the first ``sizes[i]`` rows of one seeded shuffle of a whole set (the same
    shuffle on any number of processes), grown prefix by prefix."""
    acc = FeatureStats(s.dim)
    parts = subset_stats(eng, s, prefix_segments(s.n, sizes, seed), progress)
    for i in range(len(parts)):
        acc.merge(parts[i])
        parts[i] = None  # each segment's d x d state freed once merged
        yield acc


def _scalar_key(z: Mapping[str, Any], key: str, kinds: str, label: str, what: str) -> Any:
    """The scalar stored under ``key`` (None when absent), checked for shape and dtype kind."""
    if key not in z:
        return None
    arr = np.asarray(z[key])
    if arr.shape != () or arr.dtype.kind not in kinds:
        raise ValueError(f"{label}: key '{key}' must be {what}, got dtype {arr.dtype} shape {arr.shape}")
    return arr[()]


def _numpy(x: Any) -> np.ndarray:
    """A statistics array as numpy; torch tensors of any float dtype (bfloat16, requires_grad) widen to float64."""
    if type(x).__module__.startswith("torch") and hasattr(x, "detach"):
        t = x.detach().cpu()
        return t.double().numpy() if t.dtype.is_floating_point else t.numpy()
    return np.asarray(x)


def _vector(x: Any, name: str) -> np.ndarray:
    a = _numpy(x)
    if a.dtype.kind not in "fiu":
        raise ValueError(f"{name} must be numeric, got dtype {a.dtype}")
    a = a.astype(np.float64)
    if a.ndim != 1 or a.shape[0] < 1:
        raise ValueError(f"{name} must be a non-empty 1-D vector, got shape {a.shape}")
    bad = ~np.isfinite(a)
    if bad.any():
        raise ValueError(f"{name} contains {int(bad.sum())} NaN or Inf value(s); the first at index {int(np.argmax(bad))}")
    return a


def _square(x: Any, name: str, dim: int) -> np.ndarray:
    """A validated symmetric float64 matrix (C order); no copy when the input already is one.

    Asymmetry up to the rounding of the matrix's own precision is averaged away."""
    u = unit_roundoff_of(x)
    a = _numpy(x)
    if a.dtype.kind not in "fiu":
        raise ValueError(f"{name} must be numeric, got dtype {a.dtype}")
    if a.shape != (dim, dim):
        raise ValueError(f"{name} must have shape ({dim}, {dim}) to match the mean, got {a.shape}")
    a = np.ascontiguousarray(a, dtype=np.float64)
    asym, scale, nonfinite, first = _core.symmetry_report(a)
    if nonfinite:
        raise ValueError(f"{name} contains {nonfinite} NaN or Inf value(s); the first in row {first}")
    if asym > max(1e-6, 64 * u) * max(scale, np.finfo(np.float64).tiny):
        raise ValueError(f"{name} is not symmetric (largest |S - S^T| is {asym:.3g}, largest |S| is {scale:.3g})")
    if asym > 0:
        a = 0.5 * (a + a.T)
    return a
