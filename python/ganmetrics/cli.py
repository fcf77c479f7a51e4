"""The ``ganmetrics`` command.

    ganmetrics fid REAL FAKE [--json]
    ganmetrics kid REAL FAKE [--subsets 100] [--subset-size 1000]
    ganmetrics stats INPUT -o stats.npz [--feature-extractor NAME]
    ganmetrics prdc REAL FAKE [--k 5] [--json]
    ganmetrics compare REAL FAKE [--metrics fid,kid,precision,...] [--json]
    ganmetrics reference REAL -o ref.gmref [--metrics fid,precision,...] [--k 5]
    ganmetrics leaderboard ref.gmref FAKE... [--sort fid] [--html DIR] [--csv FILE] [--json]
    ganmetrics demo [--out DIR] [--train]
    ganmetrics novelty TRAIN FAKE [--test TEST] [--html DIR] [--json]
    ganmetrics c2st REAL FAKE [--classifier logistic|mlp] [--permutations 100] [--html DIR]
    ganmetrics example [--n 10000] [--dim 2048]
    ganmetrics info
    ganmetrics --version

Inputs are .npy/.npz feature files, or images (a folder, a .zip, an image .npz or a 4-D .npy) which are
turned into features first (``--extractor``, ``--resize``, ``--weights``, ``--device``, ...); ``fid`` also
takes statistics .npz files (``mu``, ``sigma``).
Bad input prints one line ``ganmetrics: error: ...`` and exits with status 2.

Under ``torchrun --nproc_per_node=N -m ganmetrics fid|kid|prdc|stats|novelty ...`` the ranks split every input
(the images of a folder/zip/array, or the rows of a feature file) into contiguous shares, each rank extracts
and holds its share only (on ``cuda:LOCAL_RANK`` with ``--device cuda``), the metric runs over the shards
(:mod:`ganmetrics.engines.ring`, gloo), and rank 0 prints the result and writes any output file.
"""

from __future__ import annotations

import argparse
import contextlib
import html
import json
import os
import sys
import time
import warnings

import numpy as np
import torch.distributed as dist

from ganmetrics import __version__, engines
from ganmetrics._arrays import as_features
from ganmetrics._io import atomic_write, check_outputs
from ganmetrics.datasets import inception_like_features
from ganmetrics.demo import run_demo
from ganmetrics.engines.ring import ShardError, gather, guarded
from ganmetrics.extraction import run_input
from ganmetrics.extractors.preprocess import CONVENTIONS, DEFAULT, PEER_OF
from ganmetrics.images import is_image_input
from ganmetrics.leaderboard import evaluate_many
from ganmetrics.metrics.delta import FID_METHODS
from ganmetrics.metrics.frechet import fid
from ganmetrics.metrics.kernel import kid
from ganmetrics.metrics.detectability import CLASSIFIERS, c2st
from ganmetrics.metrics.knn import prdc
from ganmetrics.metrics.novelty import authpct, ct_score, memorization
from ganmetrics.plots import plot_detectable, plot_nearest_neighbours, plot_realism
from ganmetrics.reference import Reference
from ganmetrics.report import KNOWN, evaluate
from ganmetrics.runtime import build_info
from ganmetrics.stats import FeatureStats, as_stats, looks_like_statistics, stats_of



def _progress(args) -> bool | None:
    """--quiet: no bars; otherwise bars when stderr is a terminal (under torchrun, rank 0's only)."""
    return False if args.quiet or getattr(args, "_rank", 0) != 0 else None


_IMAGE_FLAGS = {"extractor": "--extractor", "resize": "--resize", "weights": "--weights", "device": "--device",
                "batch_size": "--batch-size", "workers": "--workers", "cache_dir": "--cache-dir"}


def _check_image_options(args, used: bool) -> None:
    if used or not hasattr(args, "extractor"):
        return
    given = [flag for key, flag in _IMAGE_FLAGS.items() if getattr(args, key, None) is not None]
    if given:
        raise ValueError(f"{', '.join(given)} {'applies' if len(given) == 1 else 'apply'} to image inputs; these inputs are "
                         "features or statistics")


def _side(args, path: str, label: str, want: str, out: dict):
    """An input as the metric takes it: image inputs become features ("features") or statistics ("stats").
    Under torchrun: this rank's share (rows of a feature file; images of an image input, whose features or
    statistics are None when the share is empty)."""
    group = getattr(args, "_group", None)
    if not is_image_input(path):
        return path if group is None else _feature_share(path, label, args)

    device = args.device
    if group is not None and device == "cuda":
        device = f"cuda:{os.environ.get('LOCAL_RANK', '0')}"
    # the extractor is built by the first image input and reused by the second
    res, ext = run_input(path, label, getattr(args, "_built_extractor", None) or args.extractor, resize=args.resize,
                         weights=args.weights, device=device, recursive=args.recursive,
                         batch_size=64 if args.batch_size is None else args.batch_size, workers=args.workers, keep_features=want == "features",
                         cache=not args.no_cache, cache_dir=args.cache_dir, skip_bad=args.skip_bad,
                         progress=_progress(args), shard=None if group is None else (args._rank, args._world))
    args._built_extractor = ext
    out["extractor"] = ext.name
    out[f"images_{label.lower()}"] = res.n
    if res.skipped:
        out[f"skipped_{label.lower()}"] = len(res.skipped)
    if res.stats is None:  # an empty share: its width is settled with the other ranks (_settle_empty)
        return None
    return res.stats if want == "stats" else res.features


def _feature_share(path: str, label: str, args):
    """This rank's contiguous share of the rows of a feature file (memory-mapped .npy: only those rows are read);
    a statistics .npz is whole on every rank (it is used as it is, not merged)."""
    if str(path).endswith(".npz") and looks_like_statistics(path, label):
        args._whole.add(label)
        return FeatureStats.load(path, name=label)
    f = as_features(path, label, min_rows=0)
    a, b = f.n * args._rank // args._world, f.n * (args._rank + 1) // args._world
    return f.array[a:b]


def _label(args, attr: str) -> str:
    """How the command line names an input: REAL (TRAIN for novelty), FAKE, TEST, INPUT, REFERENCE."""
    if attr == "real" and getattr(args, "command", "") == "novelty":
        return "TRAIN"
    return {"features": "INPUT", "reference": "REFERENCE"}.get(attr, attr.upper())


def _sides(args, want: str) -> tuple[object, object, dict]:
    group = getattr(args, "_group", None)

    def local():
        info: dict = {}
        real = _side(args, args.real, _label(args, "real"), want, info)
        fake = _side(args, args.fake, "FAKE", want, info)
        _check_image_options(args, bool(info))
        return real, fake, info

    if group is None:
        return local()

    real, fake, info = guarded(group, local, args.command)
    return _settle_empty(real, group), _settle_empty(fake, group), _sum_counts(info, group)


def _settle_empty(x, group):
    """An empty image share (None) as 0 rows (or empty statistics) of the width the other ranks found."""
    mine = None if x is None else (x.dim if isinstance(x, FeatureStats) else x.shape[1], isinstance(x, FeatureStats))
    found = [m for m in gather(mine, group) if m is not None]  # every rank gathers, empty or not
    if x is not None or not found:
        return x
    dim, is_stats = found[0]
    return FeatureStats(dim) if is_stats else np.zeros((0, dim), dtype=np.float32)


def _sum_counts(info: dict, group) -> dict:
    """Image counts (read, skipped) summed over the ranks."""
    counted = ("images_", "skipped_")
    out = {key: value for key, value in info.items() if not key.startswith(counted)}
    for other in gather(info, group):
        for key, value in other.items():
            if key.startswith(counted):
                out[key] = out.get(key, 0) + value
    return out


def _merged_stats(x, label: str, args):
    """Statistics of an input: under torchrun, this rank's share merged over every rank (a statistics file is
    already whole and is used as it is)."""
    group = getattr(args, "_group", None)
    if group is None:
        return as_stats(x, label, progress=_progress(args))
    if label in args._whole:  # every rank read the same statistics file
        return x

    return stats_of(engines.select(x, group=group, call={"call": f"statistics of {label}"}), x, label, _progress(args))  # an empty share included


def _cmd_fid(args) -> dict:
    t0 = time.perf_counter()
    real, fake, info = _sides(args, "stats")
    real = _merged_stats(real, "REAL", args)
    fake = _merged_stats(fake, "FAKE", args)
    value = fid(real, fake, force=args.force)
    return {"fid": value, "n_real": real.n, "n_fake": fake.n, "dim": real.dim, **info,
            "seconds": time.perf_counter() - t0}


def _cmd_kid(args) -> dict:
    t0 = time.perf_counter()
    real, fake, info = _sides(args, "features")
    res = kid(real, fake, subsets=args.subsets, subset_size=args.subset_size, progress=_progress(args),
                 group=getattr(args, "_group", None))
    return {"kid": res.mean, "kid_std": res.std, **info, "seconds": time.perf_counter() - t0}


def _cmd_stats(args) -> dict:
    if os.path.isdir(args.output):
        raise ValueError(f"--output {args.output} is a folder; give a file name such as stats.npz")
    if not args.output.endswith(".npz"):
        raise ValueError(f"--output {args.output}: statistics are written as an .npz file; give a name ending in .npz")
    t0 = time.perf_counter()
    group = getattr(args, "_group", None)

    def local():
        info: dict = {}
        stats = _side(args, args.features, "INPUT", "stats", info)
        _check_image_options(args, bool(info))
        if info:
            if args.feature_extractor is not None:
                raise ValueError("--feature-extractor names the network of a feature file; image inputs record the "
                                 "extractor that read them")
        elif group is not None and len(stats) == 0:  # more ranks than rows: settled with the others below
            stats = None
        else:
            stats = FeatureStats.from_features(stats, feature_extractor=args.feature_extractor,
                                               progress=_progress(args))
        return stats, info

    if group is None:
        stats, info = local()
    else:
        stats, info = guarded(group, local, "stats")
        stats = _settle_empty(stats, group).all_reduce(group)
        info = _sum_counts(info, group)
    if getattr(args, "_rank", 0) == 0:  # under torchrun rank 0 writes
        stats.save(args.output)
    return {"output": args.output, "n": stats.n, "dim": stats.dim, **info, "seconds": time.perf_counter() - t0}


def _cmd_prdc(args) -> dict:
    t0 = time.perf_counter()
    real, fake, info = _sides(args, "features")
    res = prdc(real, fake, k=args.k, progress=_progress(args), group=getattr(args, "_group", None))
    out = {key: float(res[key]) for key in ("precision", "recall", "density", "coverage")}
    out.update({"k": args.k, **info, "seconds": time.perf_counter() - t0})
    return out


def _metric_list(text: str) -> list[str]:
    """--metrics LIST: comma-separated names; an empty list is an error, not a run that computes nothing."""
    metrics = [m.strip() for m in text.split(",") if m.strip()]
    if not metrics:
        raise ValueError(f"--metrics {text!r} names no metric")
    return metrics


def _interval_rows(intervals: dict) -> dict:
    """A report's intervals as the CLI prints them: metric -> low, high and the method."""
    return {m: {"low": iv.low, "high": iv.high, "method": iv.method} for m, iv in intervals.items()}


def _cmd_compare(args) -> dict:
    metrics = _metric_list(args.metrics)
    real, fake, info = _sides(args, "features")
    report = evaluate(real, fake, metrics=metrics, k=args.k, seed=args.seed, progress=_progress(args),
                      n_boot=args.n_boot, fid_method=args.fid_method)
    out = dict(report)
    if "kid_estimate" in report.info:
        out["kid_estimate"] = report.info["kid_estimate"]
    if report.intervals:
        out["intervals"] = _interval_rows(report.intervals)
        out["intervals_note"] = report.info["intervals"]
    out.update(info)
    out["seconds"] = sum(report.info["seconds"].values())
    return out


def _image_kw(args) -> dict:
    return {"extractor": args.extractor, "resize": args.resize, "weights": args.weights, "device": args.device,
            "batch_size": 64 if args.batch_size is None else args.batch_size, "workers": args.workers, "cache": not args.no_cache,
            "cache_dir": args.cache_dir, "skip_bad": args.skip_bad, "recursive": args.recursive}


def _cmd_reference(args) -> dict:
    if os.path.isdir(args.output):
        raise ValueError(f"--output {args.output} is a folder; give a file name such as ref.gmref")
    t0 = time.perf_counter()
    metrics = _metric_list(args.metrics)
    kw = _image_kw(args) if is_image_input(args.real) else {}
    _check_image_options(args, bool(kw))
    ref = Reference.build(args.real, metrics=metrics, k=args.k, progress=_progress(args), **kw)
    ref.save(args.output)
    return {"output": args.output, "n": ref.n, "dim": ref.dim, "metrics": ",".join(ref.metrics), "k": ref.k,
            "feature_extractor": ref.feature_extractor or "(not recorded)", "seconds": time.perf_counter() - t0}


def _cmd_leaderboard(args) -> dict:
    t0 = time.perf_counter()
    ref = Reference.load(args.reference)
    names = {}
    for path in args.fakes:
        if not os.path.exists(path):
            raise FileNotFoundError(f"FAKE: no such file or folder: {path}")
        base = os.path.basename(os.path.normpath(path))
        name, i = base, 2
        while name in names:
            name, i = f"{base} ({i})", i + 1
        names[name] = path
    is_images = {path: is_image_input(path) for path in names.values()}
    images = any(is_images.values())
    _check_image_options(args, images)
    if images and not all(is_images.values()):
        first = next(path for path, yes in is_images.items() if not yes)
        raise ValueError(f"either every FAKE is images or none is; {first} is features")
    kw = _image_kw(args) if images else {}
    metrics = _metric_list(args.metrics) if args.metrics is not None else None
    board = evaluate_many(ref, names, metrics, sort=args.sort, n_boot=args.n_boot, seed=args.seed,
                          fid_method=args.fid_method, progress=_progress(args), **kw)
    if args.html:
        board.to_html(args.html, lines=args.checkpoints)
    if args.csv:
        with atomic_write(args.csv, "w") as fh:
            fh.write(board.to_csv())
    out = board.to_dict()
    out["seconds"] = time.perf_counter() - t0
    out["_markdown"] = board.to_markdown()
    return out


def _cmd_novelty(args) -> dict:
    """Copies (the distance-ratio test) and AuthPct against the training set, C_T with a held-out test set, and
    with --html the pictures behind the numbers. Under torchrun: memorization and AuthPct over the shards."""
    group = getattr(args, "_group", None)
    if group is not None and (args.test or args.html):
        raise ValueError("--test (C_T) and --html see every sample: run them as one process, not under torchrun")
    t0 = time.perf_counter()
    train, fake, info = _sides(args, "features")
    mem = memorization(train, fake, threshold=args.threshold, progress=_progress(args), group=group)
    auth = authpct(train, fake, progress=_progress(args), group=group)
    order = np.argsort(mem.ratio, kind="stable") if group is None else None
    out: dict = {"memorization": mem.fraction, "copies": len(mem.indices), "threshold": args.threshold,
                 "authpct": auth.authpct}
    if order is not None:
        out["most_copy_like"] = [int(i) for i in order[:10]]
    if args.test:
        test = _side(args, args.test, "TEST", "features", info)
        res = ct_score(train, test, fake, cells=args.cells, seed=args.seed)
        out.update({"ct": res.ct, "ct_cells_used": int(res.cell_used.sum()), "ct_cells": args.cells})
    if args.html:
        out["html"] = _novelty_html(args, train, fake, mem, auth, out)
    out.update({**info, "seconds": time.perf_counter() - t0})
    if args.json:
        out["flagged_indices"] = [int(i) for i in mem.indices]
    return out


def _write_page(folder: str, title: str, table: dict, pictures: list[tuple[str, str]], note: str) -> str:
    rows = "".join(f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(f'{v:.6g}' if isinstance(v, float) else str(v))}"
                   "</td></tr>" for k, v in table.items())
    figs = "".join(f"<figure><img src='{name}' alt='{html.escape(caption)}'><figcaption>{html.escape(caption)}"
                   "</figcaption></figure>" for name, caption in pictures)
    page = ("<!doctype html><html><head><meta charset='utf-8'><title>" + html.escape(title) + "</title><style>"
            "body{font-family:sans-serif;margin:2em;max-width:1200px}table{border-collapse:collapse}"
            "td,th{border:1px solid #ccc;padding:4px 8px;text-align:left}img{max-width:100%}"
            "figcaption{font-size:13px;color:#444}</style></head><body>"
            f"<h1>{html.escape(title)}</h1><table>{rows}</table><p>{html.escape(note)}</p>{figs}"
            f"<p>ganmetrics {html.escape(__version__)}</p></body></html>")
    path = os.path.join(folder, "index.html")
    with atomic_write(path, "w") as fh:
        fh.write(page)
    return path


NOVELTY_PICTURES = ("nearest.png", "realism.png")


def _novelty_html(args, train, fake, mem, auth, table: dict) -> str:
    """DIR/index.html: the numbers, and for image inputs the nearest-neighbour grid and the realism ranking."""
    os.makedirs(args.html, exist_ok=True)
    pictures = []
    if is_image_input(args.real) and is_image_input(args.fake):
        plot_nearest_neighbours(args.real, args.fake, train_features=train, fake_features=fake,
                                threshold=args.threshold, path=os.path.join(args.html, "nearest.png"))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # a copy of a training image has realism +inf: the grid shows it
            plot_realism(train, args.fake, fake_features=fake, path=os.path.join(args.html, "realism.png"))
        pictures = [("nearest.png", "each generated sample beside its nearest training images, the flagged copies "
                                    "first (red), then by the distance ratio d1 / d2"),
                    ("realism.png", "generated samples by realism score against the training set: most realistic "
                                    "(top), least (bottom)")]
    note = (f"memorization: the share of generated samples closer to one training sample than {args.threshold:.3g} "
            "times their distance to any other (Yoon et al. 2023; Gu et al. 2023). authpct: the percentage whose "
            "nearest training sample has a nearer training neighbour (Alaa et al. 2022, as dgm-eval). ct: C_T "
            "(Meehan et al. 2020), << 0 when generated samples are closer to the training set than held-out data.")
    return _write_page(args.html, "ganmetrics novelty", {k: v for k, v in table.items() if k != "most_copy_like"},
                       pictures, note + ("" if pictures else " (Pictures need image inputs.)"))


def _cmd_c2st(args) -> dict:
    t0 = time.perf_counter()
    real, fake, info = _sides(args, "features")
    res = c2st(real, fake, classifier=args.classifier, folds=args.folds, permutations=args.permutations,
               seed=args.seed, progress=_progress(args))
    out = {"accuracy": res.accuracy, "auc": res.auc, "p_value": res.p_value, "p_value_normal": res.p_value_normal,
           "classifier": args.classifier,
           "folds": args.folds, "permutations": args.permutations,
           "most_detectable": [int(i) for i in res.most_detectable[:10]], **info}
    if out["p_value"] is None:
        del out["p_value"]
    if args.html:
        os.makedirs(args.html, exist_ok=True)
        pictures = []
        if is_image_input(args.fake):
            plot_detectable(args.fake, res, path=os.path.join(args.html, "detectable.png"))
            pictures = [("detectable.png", "the generated samples the classifier finds most detectable")]
        out["html"] = _write_page(args.html, "ganmetrics c2st", {k: v for k, v in out.items()
                                                                   if k != "most_detectable"}, pictures,
                                  "Classifier two-sample test (Lopez-Paz & Oquab 2017): out-of-fold accuracy of a "
                                  "classifier telling real from generated; 0.5: indistinguishable, 1: always told "
                                  "apart.")
    out["seconds"] = time.perf_counter() - t0
    return out


EXAMPLE_SETS = (
    ("same distribution", {}, "a second sample of the real distribution: FID is small but not 0 (its n-dependent "
                              "bias), and precision, recall and coverage are near 1, density near 1"),
    ("30% of modes dropped", {"mode_drop": 0.3}, "what it does produce is realistic (precision stays high) but "
                                                 "whole clusters are missing: recall and coverage fall, FID jumps"),
    ("shifted off the data", {"shift": 0.05}, "every sample moved slightly off the real manifold: precision and "
                                              "density fall first, FID grows"),  # shift scaled by sqrt(2048 / d)
)


def _example_kwargs(kw: dict, dim: int) -> dict:
    """The shift's distance grows with sqrt(d): scale it so the lesson holds at any dimension."""
    return {**kw, "shift": kw["shift"] * (2048 / dim) ** 0.5} if "shift" in kw else kw


def _cmd_example(args) -> dict:
    """FID and PRDC between one built-in real set and three built-in fake sets that fail in known ways, each value
    with its 95 % interval (the real set fixed, as a benchmark table holds it; ``--n-boot 0``: values only)."""
    real = inception_like_features(args.n, args.dim, seed=0)
    out: dict = {"n": args.n, "dim": args.dim, "real": "Inception-like features (a 10-cluster mixture, 2048-d, "
                 "non-negative, decaying spectrum) drawn with seed 0", "sets": {}}
    t0 = time.perf_counter()
    ref = Reference.build(real, metrics=EXAMPLE_METRICS, k=5, progress=_progress(args))
    for name, kw, meaning in EXAMPLE_SETS:
        fake = inception_like_features(args.n, args.dim, seed=1, **_example_kwargs(kw, args.dim))
        rep = ref.evaluate(fake, progress=_progress(args), n_boot=args.n_boot, fid_method=args.fid_method)
        row = {m: float(rep[m]) for m in EXAMPLE_METRICS}
        row["intervals"] = _interval_rows(rep.intervals)
        row["meaning"] = meaning
        out["sets"][name] = row
        if "intervals" in rep.info:
            out["intervals"] = rep.info["intervals"]
    out["seconds"] = time.perf_counter() - t0
    return out


EXAMPLE_METRICS = ("fid", "precision", "recall", "density", "coverage")


def _print_example(result: dict) -> None:
    print(f"real set: {result['real']}; n = {result['n']} per set, d = {result['dim']}\n")
    width = max(len(name) for name in result["sets"])
    cells = {name: [f"{row[c]:.4g}" + (f" ±{(row['intervals'][c]['high'] - row['intervals'][c]['low']) / 2:.2g}"
                                       if c in row["intervals"] else "") for c in EXAMPLE_METRICS]
             for name, row in result["sets"].items()}
    widths = [max(len(c), *(len(v[i]) for v in cells.values())) for i, c in enumerate(EXAMPLE_METRICS)]
    print(f"{'fake set':<{width}}  " + "  ".join(f"{c:>{w}}" for c, w in zip(EXAMPLE_METRICS, widths)))
    for name, values in cells.items():
        print(f"{name:<{width}}  " + "  ".join(f"{v:>{w}}" for v, w in zip(values, widths)))
    if "intervals" in result:
        print(f"\n±: half the interval. {result['intervals']}.")
    print()
    for name, row in result["sets"].items():
        print(f"{name}: {row['meaning']}.")
    print(f"\n({result['seconds']:.1f} s; FID: lower is better; precision, recall, density, coverage: higher is "
          "better, k = 5)")


def _cmd_demo(args) -> dict:
    t0 = time.perf_counter()
    rows = run_demo(args.out, train=args.train, n=args.n, progress=_progress(args))
    return {"report": os.path.join(args.out, "index.html"), "generators": len(rows),
            "seconds": time.perf_counter() - t0}


def _cmd_info(args) -> dict:
    return build_info()


def _flatten(result: dict, prefix: str = "") -> list[tuple[str, object]]:
    rows: list[tuple[str, object]] = []
    for key, value in result.items():
        if isinstance(value, dict) and value:
            rows += _flatten(value, f"{prefix}{key}.")
        else:
            rows.append((prefix + str(key), value))
    return rows


def _print(result: dict, as_json: bool, command: str = "") -> None:
    if as_json:
        result = {k: v for k, v in result.items() if not k.startswith("_")}
        print(json.dumps(result, indent=2, default=str))
        return
    if command == "example":
        _print_example(result)
        return
    if command == "leaderboard":
        print(result["_markdown"])
        print(f"\n({result['seconds']:.1f} s)")
        return
    rows = _flatten(result)
    width = max(len(key) for key, _ in rows)
    for key, value in rows:
        shown = f"{value:.6g}" if isinstance(value, float) else ("(none)" if value == {} else value)
        print(f"{key:>{width}}: {shown}")


DEFAULT_METRICS = "fid,kid,precision,recall,density,coverage"  # of `compare` and `reference`
FEATURES_HELP = ("a feature file: .npy (n x d, memory-mapped) or .npz (its array), from an encoder such as "
                 "Inception's pool3; or images: a folder, a .zip, an image .npz or a 4-D .npy")
STATS_HELP = FEATURES_HELP + ", or a statistics .npz with mu and sigma (ganmetrics stats, pytorch-fid, clean-fid)"


class _Parser(argparse.ArgumentParser):
    """argparse with one line for bad arguments (``ganmetrics: error: ...``, status 2), not a usage block."""

    def error(self, message: str):  # argparse's hook
        command = self.prog.split()[1:]  # "ganmetrics fid": the subcommand, if any
        where = f"{command[0]}: " if command else ""
        self.exit(2, f"ganmetrics: error: {where}{message} (see ganmetrics {' '.join(command + ['--help'])})\n")


def _count(low: int):
    """An argparse type: an integer of at least ``low`` (0 for counts that may be none, 1 for sizes)."""
    def parse(text: str) -> int:
        try:
            value = int(text, 10)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"must be at least {low}, got {value}")
        return value

    parse.__name__ = "integer"
    return parse


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="ganmetrics",
        description="Fast, exact metrics for generative models, from feature files (README: 'Use').",
        epilog="Bad input prints one line 'ganmetrics: error: ...' and exits with status 2.",
    )
    p.add_argument("--version", action="version", version=f"ganmetrics {__version__}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def common(sp):
        sp.add_argument("--json", action="store_true", help="print the result as JSON")
        sp.add_argument("--quiet", action="store_true", help="no progress bars (they show on a terminal only)")

    def images(sp):
        g = sp.add_argument_group("image inputs", "a folder of images, a .zip of images, an image .npz (arr_0, NHWC "
                                  "uint8) or a 4-D .npy is turned into features first")
        g.add_argument("--extractor", default=None, metavar="NAME",
                       help="inception-v3 (default), digits, or FILE.py:NAME (a torch module or callable in a file)")
        g.add_argument("--resize", default=None, choices=CONVENTIONS,
                       help=f"the Inception's resize convention (default {DEFAULT}): "
                            + "; ".join(f"{c}: {PEER_OF[c]}" for c in CONVENTIONS))
        g.add_argument("--weights", default=None, metavar="FILE",
                       help="Inception weights file (default: looked up in $GANMETRICS_WEIGHTS_DIR, then torch hub's "
                            "checkpoints folder, then downloaded)")
        g.add_argument("--device", default=None, metavar="DEVICE", help="where the network runs: cpu (default), cuda")
        g.add_argument("--batch-size", type=_count(1), default=None, metavar="N", help="images per forward pass (default 64)")
        g.add_argument("--workers", type=_count(0), default=None, metavar="N",
                       help="image decoding processes (default: cores - 1, at most 8)")
        g.add_argument("--recursive", action="store_true", help="also read images in subfolders")
        g.add_argument("--skip-bad", action="store_true", help="skip (and count) unreadable image files")
        g.add_argument("--cache-dir", default=None, metavar="DIR",
                       help="feature cache (default ~/.cache/ganmetrics/features or $GANMETRICS_CACHE_DIR)")
        g.add_argument("--no-cache", action="store_true", help="neither read nor write the feature cache")

    def sets(sp, what: str):
        sp.add_argument("real", metavar="REAL", help="the reference set: " + what)
        sp.add_argument("fake", metavar="FAKE", help="the generated set: " + what)

    def k_option(sp, default):
        sp.add_argument("--k", type=_count(1), default=default, metavar="K",
                        help=f"neighbours for the k-NN radii (default {default}, as in the papers)")

    def interval_options(sp):
        sp.add_argument("--n-boot", type=_count(0), default=50, metavar="N",
                        help="bootstrap rounds for the 95 %% intervals (and a leaderboard's comparisons) of FID and "
                             "the k-NN metrics (default 50; 0: values only)")
        sp.add_argument("--fid-method", default="auto", choices=FID_METHODS,
                        help="FID's intervals and comparisons: the delta method (one pass over the rows), "
                             "half-sampling rounds, or auto (default: the delta method where it applies)")

    sp = sub.add_parser("fid", help="Fréchet distance between two feature or statistics files",
                        description="Fréchet distance (FID for Inception features) between two sets: lower is "
                                    "better, 0 for identical statistics.")
    sets(sp, STATS_HELP)
    sp.add_argument("--force", action="store_true",
                    help="compare statistics recorded with different feature extractors or resize conventions anyway")
    images(sp)
    common(sp)
    sp.set_defaults(func=_cmd_fid)

    sp = sub.add_parser("kid", help="kernel inception distance (unbiased MMD^2, cubic kernel, subsets)",
                        description="KID (Binkowski et al. 2018): mean and std over subsets of the unbiased MMD^2 with "
                                    "the kernel (x.y/d + 1)^3; lower is better, 0 for the same distribution.")
    sets(sp, FEATURES_HELP)
    sp.add_argument("--subsets", type=_count(1), default=100, metavar="N", help="number of subsets (default 100)")
    sp.add_argument("--subset-size", type=_count(1), default=None, metavar="M",
                    help="samples per subset (default min(1000, smaller set))")
    images(sp)
    common(sp)
    sp.set_defaults(func=_cmd_kid)

    sp = sub.add_parser("stats", help="mean/covariance statistics of a feature file, saved as .npz",
                        description="Streaming float64 mean and covariance of a feature file, written atomically "
                                    "as an .npz with mu and sigma (readable by pytorch-fid and clean-fid).")
    sp.add_argument("features", metavar="INPUT", help=FEATURES_HELP)
    sp.add_argument("-o", "--output", required=True, metavar="OUT.npz", help="where to write the statistics")
    sp.add_argument("--feature-extractor", default=None, metavar="NAME",
                    help="name of the network that produced the features, recorded in the file")
    images(sp)
    common(sp)
    sp.set_defaults(func=_cmd_stats)

    sp = sub.add_parser("prdc", help="precision, recall, density, coverage (exact k-NN)",
                        description="Precision and recall (Kynkäänniemi et al. 2019), density and coverage (Naeem et "
                                    "al. 2020), every k-NN decision equal to a float64 brute force.")
    sets(sp, FEATURES_HELP)
    k_option(sp, 5)
    images(sp)
    common(sp)
    sp.set_defaults(func=_cmd_prdc)

    sp = sub.add_parser("compare", help="several metrics at once (shared statistics and radii)",
                        description="Several metrics between two feature files, sharing the work they have in common.")
    sets(sp, FEATURES_HELP)
    sp.add_argument("--metrics", default=DEFAULT_METRICS, metavar="LIST",
                    help=f"comma-separated, from {','.join(KNOWN)} (memorization and authpct read REAL as the training set) "
                         f"(default: {DEFAULT_METRICS})")
    k_option(sp, 5)
    sp.add_argument("--seed", type=_count(0), default=0, metavar="SEED",
                    help="seed for the bootstrap rounds and PRD's k-means (KID uses torch-fidelity's subsets, seed "
                         "2020)")
    interval_options(sp)
    images(sp)
    common(sp)
    sp.set_defaults(func=_cmd_compare)

    sp = sub.add_parser("reference", help="the real side of many comparisons, computed once and saved",
                        description="Statistics and Fréchet factorization, exact k-NN radii and (where a metric needs "
                                    "them) the features of the real set, saved as a versioned, pickle-free file for "
                                    "`ganmetrics leaderboard`.")
    sp.add_argument("real", metavar="REAL", help="the reference set: " + FEATURES_HELP)
    sp.add_argument("-o", "--output", required=True, metavar="OUT.gmref", help="where to write the reference")
    sp.add_argument("--metrics", default=DEFAULT_METRICS, metavar="LIST",
                    help=f"the metrics it serves (default: {DEFAULT_METRICS})")
    k_option(sp, 5)
    images(sp)
    common(sp)
    sp.set_defaults(func=_cmd_reference)

    sp = sub.add_parser("leaderboard", help="many generators against a saved reference, with intervals",
                        description="Evaluate every FAKE against REFERENCE (the real side is not recomputed), with "
                                    "95 %% bootstrap intervals, ranked; neighbours in the ranking are compared with "
                                    "a paired bootstrap.")
    sp.add_argument("reference", metavar="REFERENCE", help="a reference file from `ganmetrics reference`")
    sp.add_argument("fakes", metavar="FAKE", nargs="+", help="generated sets: " + FEATURES_HELP)
    sp.add_argument("--metrics", default=None, metavar="LIST", help="default: the reference's metrics")
    sp.add_argument("--sort", default=None, metavar="METRIC", help="ranking metric (default: the first metric)")
    interval_options(sp)
    sp.add_argument("--seed", type=_count(0), default=0, metavar="SEED", help="bootstrap seed")
    sp.add_argument("--html", default=None, metavar="DIR", help="also write DIR/index.html with a plot")
    sp.add_argument("--checkpoints", action="store_true",
                    help="the generators are checkpoints of one run, in training order: the plot joins them by lines "
                         "(default: points)")
    sp.add_argument("--csv", default=None, metavar="FILE", help="also write the table as CSV")
    images(sp)
    common(sp)
    sp.set_defaults(func=_cmd_leaderboard)

    sp = sub.add_parser("example", help="FID and PRDC on built-in synthetic sets that fail in known ways",
                        description="One built-in real set against three built-in fake sets (the same distribution, "
                                    "30%% of modes dropped, shifted off the data), with what each number shows.")
    sp.add_argument("--n", type=_count(1), default=10000, metavar="N", help="samples per set (default 10000)")
    sp.add_argument("--dim", type=_count(1), default=2048, metavar="D", help="feature dimension (default 2048, Inception's)")
    interval_options(sp)
    common(sp)
    sp.set_defaults(func=_cmd_example)

    sp = sub.add_parser("demo", help="reference GANs and degraded generators through the metric suite, HTML report",
                        description="The shipped reference GANs and deliberately degraded generators through the "
                                    "metric suite; a comparison table and an HTML report.")
    sp.add_argument("--out", default="ganmetrics-demo", metavar="DIR", help="folder for the report (index.html, PNGs)")
    sp.add_argument("--train", action="store_true", help="train the reference GANs instead of loading the shipped ones")
    sp.add_argument("--n", type=_count(1), default=2000, metavar="N", help="samples per toy-mixture evaluation (default 2000)")
    common(sp)
    sp.set_defaults(func=_cmd_demo)

    sp = sub.add_parser("novelty", help="does the generator copy its training set? copies, AuthPct, C_T, pictures",
                        description="Near-copies of training samples by the distance-ratio test (Yoon et al. 2023; "
                                    "Gu et al. 2023), AuthPct (Alaa et al. 2022, as dgm-eval), and with --test the "
                                    "C_T data-copying test (Meehan et al. 2020).")
    sp.add_argument("real", metavar="TRAIN", help="the generator's training set: " + FEATURES_HELP)
    sp.add_argument("fake", metavar="FAKE", help="the generated set: " + FEATURES_HELP)
    sp.add_argument("--test", default=None, metavar="TEST", help="held-out real samples (C_T): " + FEATURES_HELP)
    sp.add_argument("--threshold", type=float, default=1 / 3, metavar="T",
                    help="a copy is closer to one training sample than T times its distance to any other (default 1/3)")
    sp.add_argument("--cells", type=_count(1), default=3, metavar="N", help="C_T's k-means cells (default 3)")
    sp.add_argument("--seed", type=_count(0), default=0, metavar="SEED", help="C_T's k-means seed (default 0)")
    sp.add_argument("--html", default=None, metavar="DIR",
                    help="also write DIR/index.html (with the nearest-neighbour grid and the realism ranking for "
                         "image inputs)")
    images(sp)
    common(sp)
    sp.set_defaults(func=_cmd_novelty)

    sp = sub.add_parser("c2st", help="can a classifier tell the generated samples from real ones?",
                        description="Classifier two-sample test (Lopez-Paz & Oquab 2017): stratified k-fold accuracy "
                                    "and AUC of a classifier telling real from generated features, with a "
                                    "permutation p-value.")
    sets(sp, FEATURES_HELP)
    sp.add_argument("--classifier", default="logistic", choices=CLASSIFIERS,
                    help="logistic (default: L2-regularized logistic regression on standardized features) or mlp")
    sp.add_argument("--folds", type=_count(2), default=5, metavar="K", help="stratified folds (default 5)")
    sp.add_argument("--permutations", type=_count(0), default=100, metavar="N",
                    help="label permutations for the p-value (default 100, each as costly as the test; 0: none, "
                         "p_value_normal only)")
    sp.add_argument("--seed", type=_count(0), default=0, metavar="SEED", help="folds, classifier and permutations")
    sp.add_argument("--html", default=None, metavar="DIR",
                    help="also write DIR/index.html (with the most detectable samples for image inputs)")
    images(sp)
    common(sp)
    sp.set_defaults(func=_cmd_c2st)

    sp = sub.add_parser("info", help="version, BLAS, threads and CUDA module", description="Build and device information.")
    common(sp)
    sp.set_defaults(func=_cmd_info)
    return p


def _check_files(args) -> None:
    """Every named input must exist before any work starts (a folder is an image input)."""
    for attr in ("real", "fake", "test", "features", "reference"):
        path = getattr(args, attr, None)
        if path is None:
            continue
        label = _label(args, attr)
        if not os.path.exists(path):
            raise FileNotFoundError(f"{label}: no such file or folder: {path}")


def _check_outputs(args) -> None:
    """No output may be an input (the same file through any path or link), checked before any work: ``-o``,
    ``--csv`` and the files ``--html DIR`` writes; an input folder is never an ``--html`` folder."""
    inputs = {_label(args, attr): getattr(args, attr, None) for attr in ("real", "fake", "test", "features", "reference")}
    inputs.update({f"FAKE {path}": path for path in getattr(args, "fakes", None) or []})
    outputs = {"--output": getattr(args, "output", None), "--csv": getattr(args, "csv", None)}
    html = getattr(args, "html", None)
    if html is not None:
        outputs.update({f"--html ({name})": os.path.join(html, name) for name in HTML_FILES.get(args.command, ())})
        for label, path in inputs.items():
            if path is not None and os.path.isdir(path) and os.path.isdir(html) and os.path.samefile(path, html):
                raise ValueError(f"--html {html} is the input folder {label}; the page and its plot would be "
                                 "written among the images")
    check_outputs(inputs, outputs)


# Python keywords named in library errors, and the flags that set them on the command line
_FLAG_WORDS = {"force=True": "--force", "skip_bad=True / --skip-bad": "--skip-bad", "weights= / --weights": "--weights"}


def _cli_words(message: str) -> str:
    for keyword, flag in _FLAG_WORDS.items():
        message = message.replace(keyword, flag)
    return message


SHARDED_COMMANDS = ("fid", "kid", "prdc", "stats", "novelty")
HTML_FILES = {"leaderboard": ("index.html", "metrics.png"), "novelty": ("index.html",) + NOVELTY_PICTURES,
              "c2st": ("index.html", "detectable.png")}


def _launched_ranks() -> tuple[int, int]:
    """(rank, world size) when started by torchrun (or any launcher that sets RANK and WORLD_SIZE), else (0, 1)."""
    try:
        world = int(os.environ.get("WORLD_SIZE", "1"))
        rank = int(os.environ.get("RANK", "0"))
    except ValueError:
        raise ValueError("RANK and WORLD_SIZE must be integers (they are set by torchrun)") from None
    return (rank, world) if world > 1 else (0, 1)


def _join_group(args) -> None:
    """Under torchrun: join the process group (gloo over TCP, from torchrun's MASTER_ADDR / MASTER_PORT); every
    input is then split between the ranks (see the module doc)."""
    args._group, args._rank, args._world, args._whole = None, 0, 1, set()
    rank, world = _launched_ranks()
    if world == 1:
        return
    if args.command not in SHARDED_COMMANDS:
        raise ValueError(f"under torchrun (WORLD_SIZE={world}) the commands that split their inputs between the ranks "
                         f"are {', '.join(SHARDED_COMMANDS)}; run {args.command!r} as one process")

    if not dist.is_initialized():
        dist.init_process_group("gloo", rank=rank, world_size=world)
    args._group, args._rank, args._world = dist.group.WORLD, rank, world


def main(argv: list[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:  # bad arguments: one line already printed (--help and --version exit as usual)
        if exc.code in (0, None):
            raise
        return 2
    args._rank = 0
    try:
        _check_files(args)
        _check_outputs(args)
        _join_group(args)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            result = args.func(args)
        if args._rank == 0:
            for message in dict.fromkeys(str(w.message) for w in caught):  # each distinct warning once
                print(f"ganmetrics: warning: {_cli_words(message)}", file=sys.stderr)
    except (ValueError, TypeError, FileNotFoundError) as exc:
        _error(args, _cli_words(str(exc)))
        return 2
    except MemoryError as exc:
        _error(args, f"out of memory: {exc}")
        return 2
    except OSError as exc:  # unwritable folder, full disk, a file that vanished: one line, not a traceback
        where = f": {exc.filename}" if getattr(exc, "filename", None) else ""
        _error(args, f"{exc.strerror or exc}{where}")
        return 2
    finally:
        if getattr(args, "_group", None) is not None:
            dist.destroy_process_group()
    if args._rank == 0:
        try:
            _print(result, args.json, args.command)
            sys.stdout.flush()
        except BrokenPipeError:  # the reader went away (| head): nothing more to say
            with contextlib.suppress(OSError):
                sys.stdout = open(os.devnull, "w")
            return 1
        except OSError as exc:  # a full disk or a closed stdout: one line, not a traceback
            with contextlib.suppress(OSError):
                sys.stdout = open(os.devnull, "w")
            _error(args, f"cannot write the result to standard output: {exc.strerror or exc}")
            return 2
    return 0


def _error(args, message: str) -> None:
    """One line on stderr. Under torchrun every rank raises the same error for bad arguments and files (checked on
    every rank before the group forms) and for a share that fails (every rank reports the first failing rank's
    error): rank 0 prints those; any other error of a rank is printed by that rank, naming it."""
    try:
        rank, world = _launched_ranks()
    except ValueError:
        rank, world = 0, 1
    if world > 1 and rank != 0:
        if getattr(args, "_group", None) is None or isinstance(sys.exc_info()[1], ShardError):
            return
        message = f"(rank {rank} of {world}) {message}"
    print(f"ganmetrics: error: {message}", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
