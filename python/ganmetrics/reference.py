"""A saved reference: the real side of every comparison, computed once.

:meth:`Reference.build` computes what each metric needs from the real set -- its float64 statistics and
the factored Fréchet reference (FID), its exact squared k-NN radii for each k (precision, recall, density,
coverage: the real radius pass is PRDC's most expensive), and the real features where a metric reads them
(the k-NN cross pass, KID's subsets, 1-NN accuracy, PRD). :meth:`Reference.evaluate` then returns exactly
what :func:`ganmetrics.evaluate` returns for (real, fake), at the cost of the fake side alone.

File format (``.gmref``; pickle-free, versioned): an uncompressed zip holding ``header.json`` -- format name
and version, ganmetrics version, feature extractor (which names the network and resize convention),
metrics, k, n, dim, the covariance's unit roundoff and each array's shape and dtype -- and ``.npy`` arrays:
``mean``, ``m2`` (float64 statistics, bit-exact), ``radii2_k<K>`` and, when needed, ``features``
(memory-mapped when loaded). Written atomically; loading checks every member's CRC first, so a damaged file
never loads partially. A file of a newer format version is refused, as is one whose extractor differs from
the one asked for.
"""

from __future__ import annotations

import io
import json
import os
import time
import zipfile
from typing import Any, Sequence

import numpy as np

from ganmetrics import __version__
from ganmetrics._arrays import Features, as_features, is_path
from ganmetrics._image_inputs import IMAGE_KEYWORDS
from ganmetrics._io import atomic_write, map_zip_member
from ganmetrics.engines import check_k
from ganmetrics.images import is_image_input
from ganmetrics.metrics.bootstrap import KNN_METRICS
from ganmetrics.metrics.frechet import _Reference, _Side, warn_small
from ganmetrics.metrics.knn import exact_radii2
from ganmetrics.paired import compare
from ganmetrics.report import DEFAULT_METRICS, Report, _evaluate, check_metrics
from ganmetrics.stats import FeatureStats, looks_like_statistics

FORMAT = "ganmetrics-reference"
FORMAT_VERSION = 1
NEEDS_FEATURES = {"kid", "nn1_accuracy", "prd", *KNN_METRICS}


def _features_of(x: Any, name: str, image_kw: dict, progress: bool | None) -> tuple[Features, Any]:
    """Features of an input, extracting images first with ``image_kw`` (then also the extractor, which the
    caller can put back as ``image_kw["extractor"]`` for the next input)."""
    if is_image_input(x):
        from ganmetrics.extraction import run_input  # torch: an optional heavy dependency

        kw = {key: value for key, value in image_kw.items() if value is not None}
        res, ext = run_input(x, name, kw.pop("extractor", None), progress=progress, **kw)
        return as_features(res.features, name, min_rows=2), ext
    given = sorted(k for k, v in image_kw.items() if v is not None)
    if given:
        raise ValueError(f"{', '.join(given)} apply to image inputs; {name} is features")
    return as_features(x, name, min_rows=2), None


class Reference:
    """The real side of many comparisons (see the module doc). Build with :meth:`build`, or :meth:`load` a
    saved one; ``evaluate``, ``compare`` and :func:`evaluate_many` use it."""

    def __init__(self, stats: FeatureStats, features: Features | None, radii2: dict[int, np.ndarray],
                 metrics: Sequence[str], k: int, feature_extractor: str | None, path: str | None = None):
        self.stats = stats
        self.features = features
        self.radii2 = radii2
        self.metrics = tuple(metrics)
        self.k = int(k)
        self.feature_extractor = feature_extractor
        self.path = path
        self._fd: _Reference | None = None

    # ---------------------------------------------------------------------------------------- building
    @classmethod
    def build(cls, real: Any, metrics: Sequence[str] = DEFAULT_METRICS, k: int | Sequence[int] = 5, *,
              feature_extractor: str | None = None, keep_features: bool | None = None,
              progress: bool | None = None, **image_kw: Any) -> "Reference":
        """The reference for ``metrics`` (those of :func:`ganmetrics.evaluate`) with k-NN radii for each ``k``
        (an int or several; the first is the default of ``evaluate``). ``real``: features, or images with the
        keywords of :func:`ganmetrics.extract`. ``keep_features``: store the real features even when no metric
        needs them (``compare`` resamples them); default: when a metric needs them."""
        unknown = sorted(set(image_kw) - set(IMAGE_KEYWORDS))
        if unknown:
            raise TypeError(f"Reference.build got unexpected keyword argument(s) {unknown}")
        metrics = check_metrics(metrics)
        ks = [k] if isinstance(k, (int, np.integer)) and not isinstance(k, bool) else list(k)
        if not ks:
            raise ValueError("k must be an integer or a non-empty list of integers")
        f, ext = _features_of(real, "real", image_kw, progress)
        extracted_by = ext.name if ext is not None else None
        if feature_extractor is not None and extracted_by is not None and feature_extractor != extracted_by:
            raise ValueError(f"feature_extractor={feature_extractor!r} but the images were read by {extracted_by!r}")
        name = feature_extractor or extracted_by
        ks = [check_k(x, "k", f.n, "real") for x in ks]
        stats = FeatureStats.from_features(f, feature_extractor=name, progress=progress)
        radii = {x: exact_radii2(f, x, progress=progress) for x in dict.fromkeys(ks)} if set(metrics) & set(KNN_METRICS) else {}
        keep = bool(set(metrics) & NEEDS_FEATURES) if keep_features is None else bool(keep_features)
        feats = Features(np.ascontiguousarray(f.array), f.code, "real") if keep else None
        return cls(stats, feats, radii, metrics, ks[0], name)

    @property
    def n(self) -> int:
        return self.stats.n

    @property
    def dim(self) -> int:
        return self.stats.dim

    def fd_reference(self) -> _Reference:
        """The factored Fréchet reference (computed on first use, then kept)."""
        if self._fd is None:
            self._fd = _Reference(_Side.of(self.stats, "real covariance"))
        return self._fd

    def __repr__(self) -> str:
        where = f", path={self.path!r}" if self.path else ""
        return (f"Reference(n={self.n}, dim={self.dim}, metrics={list(self.metrics)}, k={sorted(self.radii2) or None}, "
                f"feature_extractor={self.feature_extractor!r}, features={'yes' if self.features else 'no'}{where})")

    # ---------------------------------------------------------------------------------------- evaluating
    def _require(self, metrics: Sequence[str], k: int) -> None:
        needs_f = [m for m in metrics if m in NEEDS_FEATURES]
        if needs_f and self.features is None:
            raise ValueError(f"{', '.join(needs_f)} need the real features, which this reference does not hold; "
                             "build it with those metrics (or keep_features=True)")
        if set(metrics) & set(KNN_METRICS) and k not in self.radii2:
            raise ValueError(f"this reference holds k-NN radii for k = {sorted(self.radii2) or 'none'}, not k = {k}; "
                             "build it with that k")

    def _fake(self, fake: Any, force: bool, image_kw: dict, progress: bool | None) -> Features:
        """The fake features (images extracted; the extractor built is left in ``image_kw`` for reuse)."""
        ff, ext = _features_of(fake, "fake", image_kw, progress)
        if ext is not None:
            image_kw["extractor"] = ext
            if not force and self.feature_extractor and ext.name != self.feature_extractor:
                raise ValueError(f"the reference was made with {self.feature_extractor!r} but the fake images were "
                                 f"read by {ext.name!r} (pass force=True to compare anyway)")
        if ff.dim != self.dim:
            raise ValueError(f"fake has {ff.dim} features, the reference has {self.dim}")
        return ff

    def _fake_stats(self, fake: Any, force: bool) -> FeatureStats | None:
        """The fake set when it is given as statistics (a FeatureStats or a statistics .npz): FID only."""
        st = None
        if isinstance(fake, FeatureStats):
            st = fake
        elif is_path(fake) and os.fspath(fake).endswith(".npz") and os.path.isfile(fake) \
                and looks_like_statistics(fake, "fake"):
            st = FeatureStats.load(fake, name="fake")
        if st is not None and not force and st.feature_extractor and self.feature_extractor \
                and st.feature_extractor != self.feature_extractor:
            raise ValueError(f"the reference was made with {self.feature_extractor!r} but the fake statistics with "
                             f"{st.feature_extractor!r} (pass force=True to compare anyway)")
        return st

    def evaluate(self, fake: Any, metrics: Sequence[str] | None = None, *, k: int | None = None, seed: int = 0,
                 kid_subsets: int | None = 100, kid_subset_size: int | None = None, kid_seed: int = 2020,
                 force: bool = False, progress: bool | None = None, **image_kw: Any) -> Report:
        """What ``ganmetrics.evaluate(real, fake, ...)`` returns, reusing the real side (default: the
        reference's metrics and first k). ``fake``: features or images (read with ``image_kw`` and checked
        against the reference's extractor unless ``force``)."""
        unknown = sorted(set(image_kw) - set(IMAGE_KEYWORDS))
        if unknown:
            raise TypeError(f"Reference.evaluate got unexpected keyword argument(s) {unknown}")
        metrics = check_metrics(self.metrics if metrics is None else metrics)
        k = self.k if k is None else int(k)
        stats = self._fake_stats(fake, force)
        if stats is not None:
            return self._evaluate_stats(stats, metrics, k, seed)
        self._require(metrics, k)
        return self._evaluate_features(self._fake(fake, force, image_kw, progress), metrics, k, seed=seed,
                                       kid_subsets=kid_subsets, kid_subset_size=kid_subset_size, kid_seed=kid_seed,
                                       progress=progress)

    def _evaluate_features(self, ff: Features, metrics: list[str], k: int, *, seed: int = 0,
                           kid_subsets: int | None = 100, kid_subset_size: int | None = None, kid_seed: int = 2020,
                           progress: bool | None = None) -> Report:
        """``evaluate`` on validated fake features (``_require`` already checked)."""
        return _evaluate(self.features, ff, metrics, k=k, seed=seed, kid_subsets=kid_subsets,
                         kid_subset_size=kid_subset_size, kid_seed=kid_seed, progress=progress, real_stats=self.stats,
                         fd_reference=self.fd_reference() if "fid" in metrics else None,
                         real_radii2=self.radii2.get(k))

    def _evaluate_stats(self, stats: FeatureStats, metrics: list[str], k: int, seed: int) -> Report:
        if metrics != ["fid"]:
            raise ValueError(f"fake is statistics (mean and covariance): they serve FID only, not "
                             f"{', '.join(m for m in metrics if m != 'fid')}; give the fake features for those")
        if stats.dim != self.dim:
            raise ValueError(f"fake has {stats.dim} features, the reference has {self.dim}")
        t0 = time.perf_counter()
        warn_small(self.stats, "real")
        warn_small(stats, "fake")
        value = self.fd_reference().distance(_Side.of(stats, "fake covariance"))
        info = {"n_real": self.n, "n_fake": stats.n, "dim": self.dim, "k": k, "seed": seed,
                "seconds": {"fid": round(time.perf_counter() - t0, 4)}}
        return Report({"fid": value}, info)

    # ---------------------------------------------------------------------------------------- saving
    def save(self, path: str | os.PathLike) -> str:
        """Write the reference (format in the module doc), atomically. Returns the path."""
        path = os.fspath(path)
        arrays = {"mean": self.stats._mean, "m2": self.stats._m2}
        arrays.update({f"radii2_k{x}": r for x, r in self.radii2.items()})
        if self.features is not None:
            arrays["features"] = self.features.array
        header = {
            "format": FORMAT, "format_version": FORMAT_VERSION, "ganmetrics_version": __version__,
            "created": time.strftime("%Y-%m-%dT%H:%M:%S"), "feature_extractor": self.feature_extractor,
            "metrics": list(self.metrics), "k": self.k, "ks": sorted(self.radii2), "n": self.n, "dim": self.dim,
            "cov_unit_roundoff": self.stats.cov_unit_roundoff,
            "features_dtype": self.features.dtype_name if self.features is not None else None,
            "arrays": {key: {"shape": list(np.shape(a)), "dtype": str(np.asarray(a).dtype)} for key, a in arrays.items()},
        }
        with atomic_write(path) as fh, zipfile.ZipFile(fh, "w", zipfile.ZIP_STORED, allowZip64=True) as zf:
            zf.writestr("header.json", json.dumps(header, indent=1))
            for key, a in arrays.items():
                with zf.open(f"{key}.npy", "w", force_zip64=True) as member:
                    np.lib.format.write_array(member, np.ascontiguousarray(a), allow_pickle=False)
        self.path = path
        return path

    @classmethod
    def load(cls, path: str | os.PathLike, *, feature_extractor: str | None = None, mmap: bool = True) -> "Reference":
        """A saved reference; the real features are memory-mapped (``mmap=False`` reads them into memory).
        ``feature_extractor``: refuse a reference made with another extractor or resize convention."""
        path = os.fspath(path)
        if not os.path.isfile(path):
            raise FileNotFoundError(f"reference: no such file: {path}")
        try:
            with zipfile.ZipFile(path) as zf:
                names = set(zf.namelist())
                if "header.json" not in names:
                    raise ValueError(f"{path} is not a ganmetrics reference (no header.json)")
                header = json.loads(zf.read("header.json"))
                _check_header(header, path)
                bad = zf.testzip()
                if bad is not None:
                    raise ValueError(f"{path} is damaged: member {bad} fails its CRC check")
                missing = [f"{key}.npy" for key in header["arrays"] if f"{key}.npy" not in names]
                if missing:
                    raise ValueError(f"{path} is damaged: {', '.join(missing)} missing")
                small = {key: _read_member(zf, f"{key}.npy") for key in header["arrays"] if key != "features"}
        except zipfile.BadZipFile as exc:
            raise ValueError(f"{path} is not a readable reference file ({exc})") from None
        if feature_extractor is not None and header["feature_extractor"] != feature_extractor:
            raise ValueError(f"{path} was made with feature extractor {header['feature_extractor']!r}, not "
                             f"{feature_extractor!r}; statistics of different extractors or resize conventions are "
                             "not comparable")
        for key, meta in header["arrays"].items():
            if key in small and list(small[key].shape) != meta["shape"]:
                raise ValueError(f"{path} is damaged: {key} has shape {small[key].shape}, the header says {meta['shape']}")
        stats = FeatureStats(header["dim"], header["feature_extractor"])
        stats._n, stats._mean, stats._m2 = int(header["n"]), small["mean"], small["m2"]
        stats._unit_roundoff = float(header["cov_unit_roundoff"])
        feats = None
        if "features" in header["arrays"]:
            arr = map_zip_member(path, "features.npy") if mmap else _read_whole(path, "features.npy")
            code = {"float16": 0, "bfloat16": 1, "float32": 2, "float64": 3}[header["features_dtype"]]
            feats = Features(arr, code, "real")
        radii = {int(x): small[f"radii2_k{x}"] for x in header["ks"]}
        return cls(stats, feats, radii, header["metrics"], header["k"], header["feature_extractor"], path)

    # ---------------------------------------------------------------------------------------- comparisons
    def compare(self, fake_a: Any, fake_b: Any, metric: str = "fid", **kw: Any):
        """Is A better than B on ``metric``? See :func:`ganmetrics.paired.compare`."""
        return compare(self, fake_a, fake_b, metric, **kw)


def _check_header(header: dict, path: str) -> None:
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise ValueError(f"{path} is not a ganmetrics reference (format {header.get('format')!r})")
    version = header.get("format_version")
    if not isinstance(version, int) or version < 1:
        raise ValueError(f"{path}: format_version {version!r} is not valid")
    if version > FORMAT_VERSION:
        raise ValueError(f"{path} was written by a newer ganmetrics ({header.get('ganmetrics_version')}, format "
                         f"version {version}); this one ({__version__}) reads format version {FORMAT_VERSION}: upgrade")
    for key in ("n", "dim", "k", "ks", "metrics", "arrays", "cov_unit_roundoff"):
        if key not in header:
            raise ValueError(f"{path}: the header lacks {key!r}")


def _read_member(zf: zipfile.ZipFile, name: str) -> np.ndarray:
    return np.lib.format.read_array(io.BytesIO(zf.read(name)), allow_pickle=False)


def _read_whole(path: str, name: str) -> np.ndarray:
    with zipfile.ZipFile(path) as zf:
        return _read_member(zf, name)
