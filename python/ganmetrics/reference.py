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

import hashlib
import io
import json
import os
import time
import zipfile
from typing import Any, Sequence

import numpy as np

from ganmetrics import __version__
from ganmetrics._arrays import Features, as_features, check_finite, is_path
from ganmetrics._image_inputs import IMAGE_KEYWORDS
from ganmetrics._io import atomic_write, map_zip_member, member_header, npz_max_bytes
from ganmetrics.engines import check_k
from ganmetrics.images import is_image_input
from ganmetrics.metrics.bootstrap import KNN_METRICS, check_interval_args, interval_note
from ganmetrics.metrics.delta import GeneratorTerms
from ganmetrics.metrics.frechet import _Reference, _Side, warn_small
from ganmetrics.metrics.knn import exact_radii2
from ganmetrics.paired import compare, fixed_real_intervals, round_holds
from ganmetrics.report import DEFAULT_METRICS, Report, _evaluate, check_metrics
from ganmetrics.stats import MAX_SAMPLES, FeatureStats, looks_like_statistics

FORMAT = "ganmetrics-reference"
FORMAT_VERSION = 1
NEEDS_FEATURES = {"kid", "nn1_accuracy", "prd", "memorization", "authpct", "alpha_precision", "beta_recall",
                  "authenticity", "c2st", *KNN_METRICS}


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

    def fingerprint(self) -> str:
        """A SHA-256 of what the comparisons read (n, dim, extractor, mean, covariance, k-NN radii): two references
        with the same fingerprint give the same numbers for the same samples."""
        h = hashlib.sha256(json.dumps({"n": self.n, "dim": self.dim, "extractor": self.feature_extractor,
                                       "k": sorted(self.radii2)}).encode())
        for a in (self.stats.mean, self.stats.cov, *(self.radii2[k] for k in sorted(self.radii2))):
            h.update(np.ascontiguousarray(a, dtype=np.float64).tobytes())
        return h.hexdigest()

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
                 force: bool = False, progress: bool | None = None, n_boot: int = 50, fraction: float = 0.5,
                 confidence: float = 0.95, fid_method: str = "auto", **image_kw: Any) -> Report:
        """What ``ganmetrics.evaluate(real, fake, ...)`` returns, reusing the real side (default: the
        reference's metrics and first k). ``fake``: features or images (read with ``image_kw`` and checked
        against the reference's extractor unless ``force``). Intervals (``Report.intervals``; ``n_boot=0``: none)
        hold the real set fixed, as a benchmark table does: only the generated samples are resampled, as in
        ``ganmetrics.bootstrap(..., resample="fake")``. A fake given as statistics gets FID without an interval."""
        unknown = sorted(set(image_kw) - set(IMAGE_KEYWORDS))
        if unknown:
            raise TypeError(f"Reference.evaluate got unexpected keyword argument(s) {unknown}")
        metrics = check_metrics(self.metrics if metrics is None else metrics)
        check_interval_args(n_boot, fraction, confidence, fid_method, allow_zero=True)
        k = self.k if k is None else int(k)
        stats = self._fake_stats(fake, force)
        if stats is not None:
            return self._evaluate_stats(stats, metrics, k, seed)
        self._require(metrics, k)
        return self._evaluate_features(self._fake(fake, force, image_kw, progress), metrics, k, seed=seed,
                                       kid_subsets=kid_subsets, kid_subset_size=kid_subset_size, kid_seed=kid_seed,
                                       progress=progress, n_boot=n_boot, fraction=fraction, confidence=confidence,
                                       fid_method=fid_method)

    def _evaluate_features(self, ff: Features, metrics: list[str], k: int, *, seed: int = 0,
                           kid_subsets: int | None = 100, kid_subset_size: int | None = None, kid_seed: int = 2020,
                           progress: bool | None = None, n_boot: int = 0, fraction: float = 0.5,
                           confidence: float = 0.95, fid_method: str = "auto", name: str = "fake",
                           terms: dict[str, GeneratorTerms] | None = None) -> Report:
        """``evaluate`` on validated fake features (``_require`` already checked). ``terms``: receives FID's delta
        terms of the generator under ``name``, for comparisons that reuse them."""
        skipped: list[str] = []

        def source(fid_value, stats, knn):
            if knn and not round_holds(ff.n, k, fraction):
                skipped.extend(knn)  # a round could not hold k + 2 samples: the values without intervals
                knn = []
            if not knn and not stats:
                return {}, {}
            own = GeneratorTerms(self.stats, self.features, stats[1], ff, f"generator {name!r}") if stats else None
            if own is not None and terms is not None:
                terms[name] = own
            return fixed_real_intervals(self, ff, (["fid"] if stats else []) + knn, fid_value, k, n_boot, fraction,
                                        confidence, seed, fid_method, own)
        rep = _evaluate(self.features, ff, metrics, k=k, seed=seed, kid_subsets=kid_subsets,
                        kid_subset_size=kid_subset_size, kid_seed=kid_seed, progress=progress, real_stats=self.stats,
                        fd_reference=self.fd_reference() if "fid" in metrics else None,
                        real_radii2=self.radii2.get(k), intervals=source if n_boot else None)
        if n_boot:
            rep.info["intervals"] = interval_note(rep.intervals, n_boot, fraction, "real set fixed", skipped, k)
        return rep

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
        ``feature_extractor``: refuse a reference made with another extractor or resize convention.

        Nothing in the file is trusted: every member's CRC, every header field's type and range against the
        members (n = rows of the features = length of each radius array, dim, dtype, k list, the roundoff at
        most what the statistics can carry), every member's shape, dtype, byte extent and finiteness (radii
        non-negative), and the features against the stored mean, are checked before anything is used. Errors
        name the file and the field."""
        path = os.fspath(path)
        if not os.path.isfile(path):
            raise FileNotFoundError(f"reference: no such file: {path}")
        try:
            with zipfile.ZipFile(path) as zf:
                names = set(zf.namelist())
                if "header.json" not in names:
                    raise ValueError(f"{path} is not a ganmetrics reference (no header.json)")
                info = zf.getinfo("header.json")
                if info.file_size > 1 << 20:
                    raise ValueError(f"{path}: header.json declares {info.file_size} bytes; a header is a few KB")
                try:
                    header = json.loads(zf.read("header.json"))
                except (ValueError, UnicodeDecodeError) as exc:
                    raise ValueError(f"{path}: header.json is not valid JSON ({exc})") from None
                _check_header(header, path)
                for member in zf.infolist():  # declared sizes first: the CRC pass below reads every byte
                    if member.file_size > npz_max_bytes():
                        raise ValueError(f"{path}: member {member.filename} declares {member.file_size} bytes, more "
                                         f"than the {npz_max_bytes()} allowed (GANMETRICS_NPZ_MAX_BYTES)")
                bad = zf.testzip()
                if bad is not None:
                    raise ValueError(f"{path} is damaged: member {bad} fails its CRC check")
                wanted = {f"{key}.npy" for key in header["arrays"]}
                missing = sorted(wanted - names)
                if missing:
                    raise ValueError(f"{path} is damaged: {', '.join(missing)} missing")
                extra = sorted(names - wanted - {"header.json"})
                if extra:
                    raise ValueError(f"{path}: members {extra} are not named in its header")
                small = {key: _read_member(zf, key, path) for key in header["arrays"] if key != "features"}
        except zipfile.BadZipFile as exc:
            raise ValueError(f"{path} is not a readable reference file ({exc})") from None
        if feature_extractor is not None and header["feature_extractor"] != feature_extractor:
            raise ValueError(f"{path} was made with feature extractor {header['feature_extractor']!r}, not "
                             f"{feature_extractor!r}; statistics of different extractors or resize conventions are "
                             "not comparable")
        _check_members(header, small, path)
        n, dim = header["n"], header["dim"]
        stats = FeatureStats(dim, header["feature_extractor"])
        stats._n, stats._mean, stats._m2 = n, small["mean"], small["m2"]
        stats._unit_roundoff = float(header["cov_unit_roundoff"])
        feats = None
        if "features" in header["arrays"]:
            where = f"{path}: member features"
            arr = map_zip_member(path, "features.npy", where) if mmap else None
            if not isinstance(arr, np.ndarray):  # read into memory (asked, or a compressed member)
                arr = _read_whole(path, "features.npy", where)
            feats = _check_features(arr, header, stats, path)
        radii = {int(x): small[f"radii2_k{x}"] for x in header["ks"]}
        return cls(stats, feats, radii, header["metrics"], header["k"], header["feature_extractor"], path)

    # ---------------------------------------------------------------------------------------- comparisons
    def compare(self, fake_a: Any, fake_b: Any, metric: str = "fid", **kw: Any):
        """Is A better than B on ``metric``? See :func:`ganmetrics.paired.compare`."""
        return compare(self, fake_a, fake_b, metric, **kw)


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


_DTYPE_CODES = {"float16": 0, "bfloat16": 1, "float32": 2, "float64": 3}
_STORED_DTYPES = {"float16": "float16", "bfloat16": "uint16", "float32": "float32", "float64": "float64"}
_ROUNDOFF = {"float16": 2.0**-11, "bfloat16": 2.0**-8, "float32": 2.0**-24, "float64": 2.0**-53}


def _check_header(header: Any, path: str) -> None:
    """Every header field's presence, type and range (the members are checked against it afterwards)."""
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise ValueError(f"{path} is not a ganmetrics reference (format "
                         f"{header.get('format') if isinstance(header, dict) else None!r})")
    version = header.get("format_version")
    if not _is_int(version) or version < 1:
        raise ValueError(f"{path}: format_version {version!r} is not valid")
    if version > FORMAT_VERSION:
        raise ValueError(f"{path} was written by a newer ganmetrics ({header.get('ganmetrics_version')}, format "
                         f"version {version}); this one ({__version__}) reads format version {FORMAT_VERSION}: upgrade")
    for key in ("n", "dim", "k", "ks", "metrics", "arrays", "cov_unit_roundoff", "feature_extractor"):
        if key not in header:
            raise ValueError(f"{path}: the header lacks {key!r}")

    def bad(field: str, want: str) -> ValueError:
        return ValueError(f"{path}: header field {field!r} must be {want}, got {header.get(field)!r}")

    n, dim = header["n"], header["dim"]
    if not _is_int(n) or not 2 <= n <= MAX_SAMPLES:
        raise bad("n", f"the sample count, an integer in [2, {MAX_SAMPLES}]")
    if not _is_int(dim) or not 1 <= dim <= 1 << 24:
        raise bad("dim", "the feature dimension, a positive integer")
    ks = header["ks"]
    if not isinstance(ks, list) or not all(_is_int(x) and 1 <= x < n for x in ks) or len(set(ks)) != len(ks):
        raise bad("ks", f"a list of distinct integers in [1, n - 1 = {n - 1}]")
    if not _is_int(header["k"]) or (ks and header["k"] not in ks) or not 1 <= header["k"] < n:
        raise bad("k", f"one of ks {ks}" if ks else f"an integer in [1, {n - 1}]")
    metrics = header["metrics"]
    if not isinstance(metrics, list) or not metrics or not all(isinstance(m, str) for m in metrics):
        raise bad("metrics", "a non-empty list of metric names")
    try:
        check_metrics(metrics)
    except ValueError as exc:
        raise ValueError(f"{path}: header field 'metrics': {exc}") from None
    if set(metrics) & set(KNN_METRICS) and not ks:
        raise bad("ks", f"non-empty: the metrics {metrics} need k-NN radii")
    fx = header["feature_extractor"]
    if fx is not None and not isinstance(fx, str):
        raise bad("feature_extractor", "a string or null")
    arrays = header["arrays"]
    expected = {"mean", "m2", *(f"radii2_k{x}" for x in ks)}
    if not isinstance(arrays, dict) or not expected <= set(arrays) or not set(arrays) <= expected | {"features"}:
        raise bad("arrays", f"the members {sorted(expected)} (and optionally features)")
    if set(metrics) & NEEDS_FEATURES and "features" not in arrays:
        raise bad("arrays", f"to include features: the metrics {metrics} need them")
    dt = header.get("features_dtype")
    if ("features" in arrays) != (dt is not None) or (dt is not None and dt not in _DTYPE_CODES):
        raise bad("features_dtype", f"one of {list(_DTYPE_CODES)} when features are stored, else null")
    u = header["cov_unit_roundoff"]
    u_max = max(2.0**-24, _ROUNDOFF.get(dt, 0.0))  # float64 accumulation, or float32 device products
    if not isinstance(u, (int, float)) or isinstance(u, bool) or not 2.0**-53 <= float(u) <= u_max:
        raise bad("cov_unit_roundoff", f"a number in [2^-53, {u_max:.3g}] (the rounding the statistics carry)")
    shapes = {"mean": [dim], "m2": [dim, dim], "features": [n, dim], **{f"radii2_k{x}": [n] for x in ks}}
    for key, meta in arrays.items():
        want_dtype = _STORED_DTYPES[dt] if key == "features" else "float64"
        if not isinstance(meta, dict) or meta.get("shape") != shapes[key] or meta.get("dtype") != want_dtype:
            raise ValueError(f"{path}: header fields 'n' = {n}, 'dim' = {dim} and 'features_dtype' = {dt!r} disagree "
                             f"with 'arrays.{key}' = {meta!r} (expected shape {shapes[key]}, dtype {want_dtype})")


def _check_members(header: dict, small: dict[str, np.ndarray], path: str) -> None:
    """The small members against the header: shape, dtype, finiteness; radii non-negative; m2's diagonal
    non-negative."""
    for key, arr in small.items():
        meta = header["arrays"][key]
        if list(arr.shape) != meta["shape"] or str(arr.dtype) != meta["dtype"]:
            raise ValueError(f"{path}: member {key} has shape {list(arr.shape)} and dtype {arr.dtype}; the header "
                             f"says {meta['shape']} {meta['dtype']}")
        if not np.isfinite(arr).all():
            raise ValueError(f"{path}: member {key} holds {int((~np.isfinite(arr)).sum())} NaN or Inf value(s)")
        if key.startswith("radii2_k") and (arr < 0).any():
            raise ValueError(f"{path}: member {key} holds {int((arr < 0).sum())} negative squared radii")
    if (np.diag(small["m2"]) < 0).any():
        raise ValueError(f"{path}: member m2 (the sums of squared deviations, lower triangle) has a negative "
                         "diagonal entry")


def _check_features(arr: Any, header: dict, stats: FeatureStats, path: str) -> Features:
    """The stored features: finite, and the rows the statistics were made of (their float64 column means agree
    with the stored mean to the rounding of the summation), read once in blocks."""
    dt = header["features_dtype"]
    if arr.shape != (header["n"], header["dim"]) or str(arr.dtype) != _STORED_DTYPES[dt] or arr.ndim != 2:
        raise ValueError(f"{path}: member features has shape {list(arr.shape)} ({arr.dtype}); the header says "
                         f"[{header['n']}, {header['dim']}] {dt}")
    if not isinstance(arr, np.ndarray) or not arr.flags.c_contiguous:
        arr = np.ascontiguousarray(arr)
    f = Features(arr, _DTYPE_CODES[dt], "real")
    check_finite(f)
    total = np.zeros(f.dim)
    peak = np.zeros(f.dim)
    rows = max(1, (64 << 20) // max(1, f.dim * 8))
    for a, b in f.chunks(rows):
        block = f.rows(a, b).astype(np.float64)
        total += block.sum(axis=0)
        np.maximum(peak, np.abs(block).max(axis=0), out=peak)
    mean = total / f.n
    tol = 1e-9 * peak + 1e-300
    off = np.abs(mean - stats._mean) > tol
    if off.any():
        j = int(np.argmax(off))
        raise ValueError(f"{path}: member features is not the data its statistics were made of (column {j}: mean "
                         f"{mean[j]:.17g}, the stored mean {stats._mean[j]:.17g})")
    return f


def _read_member(zf: zipfile.ZipFile, key: str, path: str) -> np.ndarray:
    """A small member, read after its header's declared size is checked against the bytes it holds."""
    member_header(zf, zf.getinfo(f"{key}.npy"), f"{path}: member {key}")
    return np.lib.format.read_array(io.BytesIO(zf.read(f"{key}.npy")), allow_pickle=False)


def _read_whole(path: str, name: str, where: str) -> np.ndarray:
    arr = map_zip_member(path, name, where)
    return np.array(arr) if isinstance(arr, np.ndarray) else np.stack([arr[i] for i in range(len(arr))])
