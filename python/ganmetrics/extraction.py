"""From images to features: a streaming pipeline with a feature cache.

Images are decoded and resized in ``DataLoader`` workers, forwarded in batches (float32, no autocast,
``torch.inference_mode``, channels-last on the CPU), and every batch goes straight into a
:class:`~ganmetrics.stats.FeatureStats` and, when the features themselves are needed, into a float32
``.npy`` file in the cache (memory-mapped when read back). No more than a batch of images is in memory.

The cache (``~/.cache/ganmetrics/features``, or ``$GANMETRICS_CACHE_DIR``, or ``cache_dir=``) keys each
entry by the input (a folder's file list with sizes and modification times; an archive's or array file's
SHA-256), the extractor's identity (name, weights' SHA-256, preprocessing) and the cache format; an entry
holds the features, the Inception logits where there are any, and the float64 statistics streamed when it was
made (a hit recomputes nothing). Entries
are written under temporary names and renamed into place, the JSON header last, so a concurrent run never
reads a partial entry and an interrupted one leaves only temporary files, removed by the next write. The
header records each file's SHA-256, verified on every read: a damaged or implausible entry is a miss with a
warning naming it. The cache is used only in a folder of the user's own that others cannot write in
(:func:`cache_folder`): cache keys are computable, so an entry in such a folder could have been planted.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import tempfile
import time
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from ganmetrics import images as _img
from ganmetrics._io import _sweep_stale_temps, atomic_write, load_npz, npy_header, open_npy, sha256_file, temp_prefix
from ganmetrics._progress import progress_bar
from ganmetrics.stats import FeatureStats

CACHE_FORMAT = 2  # 2: the float64 statistics are stored with the features
CACHE_ENV = "GANMETRICS_CACHE_DIR"


def default_cache_dir() -> str:
    if os.environ.get(CACHE_ENV):
        return os.environ[CACHE_ENV]
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "ganmetrics", "features")


def default_workers() -> int:
    """Decoding workers: one per core beyond the one running the network, at most 8 (0 on one core)."""
    return max(0, min(8, (os.cpu_count() or 1) - 1))


@dataclass
class Extracted:
    """What one extraction produced: ``stats`` always; ``features`` (n, d) float32 and ``logits`` when kept."""

    stats: FeatureStats | None  # None only for an empty shard (run_input with shard=)
    features: np.ndarray | None
    logits: np.ndarray | None
    n: int
    skipped: list[str] = field(default_factory=list)
    from_cache: bool = False
    cache_path: str | None = None
    seconds: float = 0.0


class _Prepared(torch.utils.data.Dataset):
    """Image i of the source, prepared for the network; a bad image comes back as its message."""

    def __init__(self, source, prepare):
        self.source, self.prepare = source, prepare

    def __len__(self):
        return len(self.source)

    def __getitem__(self, i):
        try:
            return i, self.prepare(self.source.load(i)), None
        except _img.BadImageError as exc:
            return i, None, ("bad", str(exc))
        except (ValueError, TypeError) as exc:  # an unusable in-memory image: always an error
            return i, None, ("error", str(exc))


def _collate(items):
    ok = [t for _, t, _ in items if t is not None]
    problems = [p for _, _, p in items if p is not None]
    shapes = {tuple(t.shape) for t in ok}
    if len(shapes) > 1:
        return None, problems + [("error", f"images of different sizes {sorted(shapes)} in one batch; give the "
                                           "extractor a size to resize them to")]
    return (torch.stack(ok) if ok else None), problems


class _Writer:
    """Rows appended to a float32 .npy under a temporary name beside ``target``; ``commit`` renames it."""

    def __init__(self, target: str | None, n_max: int):
        self.target, self.n_max, self.n = target, n_max, 0
        self.array: np.ndarray | None = None
        self.tmp: str | None = None

    def append(self, rows: np.ndarray) -> None:
        if self.array is None:
            shape = (self.n_max, rows.shape[1])
            if self.target is None:
                self.array = np.empty(shape, dtype=np.float32)
            else:
                directory, base = os.path.split(self.target)
                fd, self.tmp = tempfile.mkstemp(dir=directory, prefix=temp_prefix(base), suffix=".tmp")
                os.close(fd)
                self.array = np.lib.format.open_memmap(self.tmp, mode="w+", dtype=np.float32, shape=shape)
        self.array[self.n:self.n + len(rows)] = rows
        self.n += len(rows)

    def result(self) -> np.ndarray:
        return self.array[:self.n]

    def commit(self) -> None:
        if self.tmp is None:
            return
        self.array.flush()
        shape = (self.n, self.array.shape[1])
        self.array = None  # unmapped before the file changes
        if self.n != self.n_max:  # rows were skipped: rewrite the header with the real count
            _shrink_npy(self.tmp, shape)
        os.replace(self.tmp, self.target)
        self.tmp = None

    def discard(self) -> None:
        self.array = None
        if self.tmp is not None:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.tmp)
            self.tmp = None


def _shrink_npy(path: str, shape: tuple[int, int]) -> None:
    """Give an .npy file a smaller row count, in place (the header keeps its padded length) and truncate it."""
    _, _, dtype, offset = npy_header(path)
    header = {"descr": np.lib.format.dtype_to_descr(dtype), "fortran_order": False, "shape": shape}
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, header)
    raw = buf.getvalue()
    if len(raw) != offset:
        raise RuntimeError("npy header length changed")  # cannot happen: a shorter shape never needs more padding
    with open(path, "r+b") as fh:
        fh.write(raw)
        fh.truncate(offset + shape[0] * shape[1] * dtype.itemsize)


def _cache_key(fingerprint: str, identity: str) -> str:
    text = json.dumps({"format": CACHE_FORMAT, "input": fingerprint, "extractor": identity}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


def cache_folder(cache_dir: str | os.PathLike | None) -> str | None:
    """The feature cache folder to use, or None (no cache, with a warning saying why): one that cannot be
    created or written, or one that is not this user's own (another user owns it, or others may write in it:
    cache keys are computable, so such a folder's entries could be planted). The default folder is created
    readable and writable by its owner only. A ``cache_dir`` that is a file is an error."""
    folder = os.fspath(cache_dir) if cache_dir is not None else default_cache_dir()
    if os.path.exists(folder) and not os.path.isdir(folder):
        raise ValueError(f"cache_dir {folder} is a file, not a folder")
    try:
        os.makedirs(folder, mode=0o700, exist_ok=True)
        st = os.stat(folder)
    except OSError as exc:
        warnings.warn(f"the feature cache folder {folder} cannot be created ({exc.strerror or exc}); "
                      "continuing without the cache", RuntimeWarning, stacklevel=3)
        return None
    if hasattr(os, "getuid") and (st.st_uid != os.getuid() or st.st_mode & 0o022):
        whose = "belongs to another user" if st.st_uid != os.getuid() else "is writable by other users"
        warnings.warn(f"the feature cache folder {folder} {whose}: entries there could be planted by others, so it "
                      "is not used; give a cache folder of your own (cache_dir= / --cache-dir)",
                      RuntimeWarning, stacklevel=3)
        return None
    if not os.access(folder, os.W_OK | os.X_OK):
        warnings.warn(f"the feature cache folder {folder} is not writable; continuing without the cache",
                      RuntimeWarning, stacklevel=3)
        return None
    return folder


_ENTRY_FILES = {"features": ".npy", "logits": ".logits.npy", "stats": ".stats.npz"}


def _load_cached(base: str, identity: str, want_logits: bool) -> tuple[Extracted | None, str | None]:
    """(the entry, None) on a hit; (None, None) when there is no entry; (None, why) when an entry is there but
    damaged or implausible: every file's SHA-256 must match the one recorded in its header when it was
    written, and the arrays must agree with the header and each other."""
    if not os.path.exists(base + ".json"):
        return None, None
    try:
        with open(base + ".json") as fh:
            meta = json.load(fh)
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        return None, f"its header cannot be read ({exc})"
    if not isinstance(meta, dict) or meta.get("format") != CACHE_FORMAT:
        return None, "its header is of another cache format"
    if meta.get("extractor") != identity:
        return None, "its header names another extractor"
    digests = meta.get("sha256")
    wanted = ["features", "stats"] + (["logits"] if meta.get("logits") else [])
    if not isinstance(digests, dict) or any(not isinstance(digests.get(key), str) for key in wanted):
        return None, "its header records no checksums"
    n, dim = meta.get("n"), meta.get("dim")
    if not all(isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in (n, dim)):
        return None, f"its header's n/dim ({n!r}, {dim!r}) are not positive integers"
    if want_logits and not meta.get("logits"):
        return None, None  # a valid entry without logits: made for another use, recomputed with them
    try:
        for key in wanted:
            if sha256_file(base + _ENTRY_FILES[key]) != digests[key]:
                return None, f"{os.path.basename(base + _ENTRY_FILES[key])} does not match its checksum"
        feats = open_npy(base + ".npy")
        logits = open_npy(base + ".logits.npy") if meta.get("logits") else None
        z = load_npz(base + ".stats.npz", base + ".stats.npz")
        stats = FeatureStats(dim, meta.get("name"))
        stats._n, stats._mean, stats._m2 = int(z["n"]), z["mean"], z["m2"]
        stats._unit_roundoff = float(z["unit_roundoff"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        return None, f"it cannot be read ({exc})"
    if feats.shape != (n, dim) or feats.dtype != np.float32 or (logits is not None and logits.shape[0] != n) \
            or stats._mean.shape != (dim,) or stats._m2.shape != (dim, dim) or stats.n != n:
        return None, "its arrays do not agree with its header"
    return Extracted(stats, feats, logits, n, list(meta.get("skipped", [])), True, base + ".npy"), None


def run(source: Any, extractor, *, batch_size: int = 64, workers: int | None = None, keep_features: bool = True,
        want_logits: bool = False, cache: bool = True, cache_dir: str | None = None, skip_bad: bool = False,
        progress: bool | None = None, name: str = "images") -> Extracted:
    """Extract features of every image of ``source`` (an :mod:`ganmetrics.images` source)."""
    t0 = time.perf_counter()
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
    workers = default_workers() if workers is None else workers
    if isinstance(workers, bool) or not isinstance(workers, (int, np.integer)) or workers < 0:
        raise ValueError(f"workers must be a non-negative integer, got {workers!r}")
    if want_logits and not extractor.has_logits:
        raise ValueError(f"the extractor {extractor.name!r} gives no logits (the Inception Score needs the Inception's "
                         "final layer: load weights that include fc)")
    fingerprint = source.fingerprint() if cache and isinstance(source, _img.ImageSource) else None
    base = None
    folder = cache_folder(cache_dir) if fingerprint is not None else None
    if folder is not None:
        base = os.path.join(folder, _cache_key(fingerprint + f"\0channels={source.channels}", extractor.identity))
        hit, problem = _load_cached(base, extractor.identity, want_logits)
        if hit is not None:
            hit.seconds = time.perf_counter() - t0
            return hit
        if problem is not None:
            warnings.warn(f"feature cache entry {base}.* is damaged or implausible ({problem}); recomputing it",
                          RuntimeWarning, stacklevel=2)
        for suffix in (".npy", ".logits.npy"):
            _sweep_stale_temps(folder, os.path.basename(base + suffix))
    keep = keep_features or base is not None
    n_max = source.num_samples if isinstance(source, _img.Generator) else len(source)
    feats = _Writer(base + ".npy" if base else None, n_max) if keep else None
    logit_rows = _Writer(base + ".logits.npy" if base else None, n_max) if (want_logits or (base and extractor.has_logits)) \
        else None
    stats: FeatureStats | None = None
    skipped: list[str] = []
    try:
        with progress_bar(n_max, f"{name}: {getattr(extractor, 'name', 'features')}", unit="img",
                          enabled=progress) as bar:
            for batch, problems in _batches(source, extractor, batch_size, workers):
                for kind, message in problems:
                    if kind == "bad" and skip_bad:
                        skipped.append(message)
                    else:
                        raise (_img.BadImageError if kind == "bad" else ValueError)(
                            message + (" (skip_bad=True / --skip-bad skips unreadable files)" if kind == "bad" else ""))
                if batch is None:
                    bar.update(len(problems))
                    continue
                try:
                    out, logits = extractor(batch)
                except Exception as exc:  # the network (possibly the user's own module) failed on this batch
                    raise ValueError(f"{name}: the extractor {getattr(extractor, 'name', '')!r} failed "
                                     f"({type(exc).__name__}: {exc})") from None
                rows = out.detach().to("cpu", torch.float32).numpy()
                if not np.isfinite(rows).all():
                    raise ValueError(f"{name}: the extractor produced NaN or Inf features")
                if stats is None:
                    stats = FeatureStats(rows.shape[1], extractor.name)
                stats.update(rows)
                if feats is not None:
                    feats.append(rows)
                if logit_rows is not None and logits is not None:
                    logit_rows.append(logits.detach().to("cpu", torch.float32).numpy())
                bar.update(len(rows) + len(problems))
        if stats is None:
            raise ValueError(f"{name}: no image could be read ({len(skipped)} skipped)")
        features = feats.result() if feats is not None else None
        logit_arr = logit_rows.result() if logit_rows is not None else None
        if base is not None:
            for w in (feats, logit_rows):
                if w is not None:
                    w.commit()
            with atomic_write(base + ".stats.npz") as fh:
                np.savez(fh, n=stats.n, mean=stats._mean, m2=stats._m2, unit_roundoff=stats.cov_unit_roundoff)
            meta = {"format": CACHE_FORMAT, "extractor": extractor.identity, "name": extractor.name, "n": stats.n,
                    "dim": stats.dim, "logits": logit_rows is not None, "skipped": skipped,
                    "sha256": {key: sha256_file(base + suffix) for key, suffix in _ENTRY_FILES.items()
                               if key != "logits" or logit_rows is not None},
                    "input": source.describe(), "created": time.strftime("%Y-%m-%dT%H:%M:%S")}
            with atomic_write(base + ".json", "w") as fh:
                json.dump(meta, fh, indent=1)
            features = open_npy(base + ".npy") if keep_features else None
            logit_arr = open_npy(base + ".logits.npy") if logit_rows is not None else None
    finally:
        for w in (feats, logit_rows):
            if w is not None:
                w.discard()
    return Extracted(stats, features, logit_arr, stats.n, skipped, False, base + ".npy" if base else None,
                     time.perf_counter() - t0)


def _batches(source, extractor, batch_size: int, workers: int):
    """(batch tensor or None, problems) in source order."""
    if isinstance(source, _img.Generator):
        for imgs in source.batches(getattr(extractor, "device", "cpu"), extractor.channels):
            yield torch.stack([extractor.prepare(im) for im in imgs]), []
        return
    loader = torch.utils.data.DataLoader(
        _Prepared(source, extractor.prepare), batch_size=batch_size, shuffle=False, num_workers=workers,
        collate_fn=_collate, pin_memory=str(getattr(extractor, "device", "cpu")).startswith("cuda"),
        persistent_workers=False, prefetch_factor=4 if workers else None)
    cpu = not str(getattr(extractor, "device", "cpu")).startswith("cuda")
    for batch, problems in loader:
        if batch is not None and cpu and batch.ndim == 4:
            batch = batch.contiguous(memory_format=torch.channels_last)
        yield batch, problems


def extract(images: Any, *, extractor: Any = None, resize: str | None = None, weights: Any = None,
            device: str | None = None, batch_size: int = 64, workers: int | None = None, cache: bool = True,
            cache_dir: str | None = None, skip_bad: bool = False, recursive: bool = False,
            extractor_name: str | None = None, return_logits: bool = False, progress: bool | None = None):
    """Features of images: (n, d) float32 (memory-mapped from the cache for file inputs), and with
    ``return_logits=True`` also the Inception's (n, 1008) logits (pool3 times the final weights, no bias).

    ``images``: a folder, ``.zip``, image ``.npz``/``.npy``, image array or tensor, torch Dataset/DataLoader,
    or :class:`ganmetrics.images.Generator` (:mod:`ganmetrics.images` says how each is read).
    ``extractor``: ``"inception-v3"`` (default), ``"digits"``, ``FILE.py:NAME``, or a module/callable with
    ``extractor_name``; ``resize``: the Inception's convention (:mod:`ganmetrics.extractors.preprocess`;
    default ``legacy_tensorflow``); ``weights``: the Inception weights file (else looked up, see
    :func:`ganmetrics.extractors.inception.locate_weights`). ``device``: where the network runs.
    ``cache=False`` or ``cache_dir`` control the feature cache (file inputs only)."""
    res, _ = run_input(images, "images", extractor, resize=resize, weights=weights, device=device,
                       extractor_name=extractor_name, recursive=recursive, batch_size=batch_size, workers=workers,
                       want_logits=return_logits, cache=cache, cache_dir=cache_dir, skip_bad=skip_bad,
                       progress=progress)
    return (res.features, res.logits) if return_logits else res.features


def run_input(x: Any, name: str, extractor: Any = None, *, resize: str | None = None, weights: Any = None,
              device: str | None = None, extractor_name: str | None = None, recursive: bool = False,
              shard: tuple[int, int] | None = None, **run_kw: Any) -> tuple[Extracted, Any]:
    """:func:`run` on any image input (see :func:`ganmetrics.images.as_source`) with the extractor that
    ``extractor`` and the keywords name (an extractor built before is used as is). The input is checked
    first, so that a folder without images fails before any weights load. ``shard=(rank, world)`` reads only
    that rank's contiguous share of the images (an empty share gives ``stats=None``, n = 0). Returns the result
    and the extractor, for the next input to reuse."""
    from ganmetrics.extractors import get_extractor

    src = _img.as_source(x, name, recursive=recursive)
    if shard is not None:
        if not isinstance(src, _img.ImageSource):
            raise ValueError(f"{name}: only files, folders and arrays of images can be split between ranks")
        src = _img.ShardSource.of_rank(src, *shard)
    ext = get_extractor(extractor, resize=resize, weights=weights, device=device, extractor_name=extractor_name)
    src.channels = ext.channels
    if shard is not None and len(src) == 0:  # more ranks than images: this rank has none
        return Extracted(None, None, None, 0), ext
    return run(src, ext, name=name, **run_kw), ext
