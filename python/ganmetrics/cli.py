"""The ``ganmetrics`` command.

    ganmetrics fid REAL FAKE [--json]
    ganmetrics stats FEATURES -o stats.npz [--feature-extractor NAME]
    ganmetrics prdc REAL FAKE [--k 5] [--json]
    ganmetrics compare REAL FAKE [--metrics fid,kid,precision,...] [--json]
    ganmetrics demo [--out DIR] [--train]
    ganmetrics example [--n 10000] [--dim 2048]
    ganmetrics info

Inputs are .npy/.npz feature files; ``fid`` also takes statistics .npz files (``mu``, ``sigma``).
Bad input prints one line ``ganmetrics: error: ...`` and exits with status 2.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import warnings



def _cmd_fid(args) -> dict:
    import ganmetrics as gm
    from ganmetrics.metrics.frechet import _as_stats

    t0 = time.perf_counter()
    real = _as_stats(args.real, "REAL", progress=not args.quiet)
    fake = _as_stats(args.fake, "FAKE", progress=not args.quiet)
    value = gm.fid(real, fake, force=args.force)
    return {"fid": value, "n_real": real.n, "n_fake": fake.n, "dim": real.dim, "seconds": time.perf_counter() - t0}


def _cmd_stats(args) -> dict:
    from ganmetrics.stats import FeatureStats

    t0 = time.perf_counter()
    stats = FeatureStats.from_features(args.features, feature_extractor=args.feature_extractor, progress=not args.quiet)
    stats.save(args.output)
    return {"output": args.output, "n": stats.n, "dim": stats.dim, "seconds": time.perf_counter() - t0}


def _cmd_prdc(args) -> dict:
    import ganmetrics as gm

    t0 = time.perf_counter()
    res = gm.prdc(args.real, args.fake, k=args.k)
    out = {key: float(res[key]) for key in ("precision", "recall", "density", "coverage")}
    out.update({"k": args.k, "seconds": time.perf_counter() - t0})
    return out


def _cmd_compare(args) -> dict:
    import ganmetrics as gm

    metrics = [m.strip() for m in args.metrics.split(",") if m.strip()]
    report = gm.evaluate(args.real, args.fake, metrics=metrics, k=args.k, seed=args.seed)
    out = dict(report)
    out["seconds"] = sum(report.info["seconds"].values())
    return out


def _cmd_example(args) -> dict:
    """FID and PRDC between two built-in, seeded feature sets (no files needed)."""
    import ganmetrics as gm
    from ganmetrics.datasets import inception_like_features

    real = inception_like_features(args.n, args.dim, seed=0)
    fake = inception_like_features(args.n, args.dim, seed=1, shift=0.1, mode_drop=0.2)
    t0 = time.perf_counter()
    value = gm.fid(real, fake)
    t_fid = time.perf_counter() - t0
    t0 = time.perf_counter()
    res = gm.prdc(real, fake, k=5)
    t_prdc = time.perf_counter() - t0
    out = {"n": args.n, "dim": args.dim, "fid": value, "fid_seconds": t_fid}
    out.update({key: float(res[key]) for key in ("precision", "recall", "density", "coverage")})
    out["prdc_seconds"] = t_prdc
    return out


def _cmd_demo(args) -> dict:
    from ganmetrics.demo import run_demo

    t0 = time.perf_counter()
    rows = run_demo(args.out, train=args.train, n=args.n, progress=not args.quiet)
    return {"report": os.path.join(args.out, "index.html"), "generators": len(rows),
            "seconds": time.perf_counter() - t0}


def _cmd_info(args) -> dict:
    import ganmetrics as gm

    return gm.build_info()


def _print(result: dict, as_json: bool) -> None:
    if as_json:
        print(json.dumps(result, indent=2, default=str))
        return
    for key, value in result.items():
        if isinstance(value, float):
            print(f"{key:>12}: {value:.6g}")
        elif isinstance(value, dict):
            print(f"{key:>12}: {json.dumps(value, default=str)}")
        else:
            print(f"{key:>12}: {value}")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="ganmetrics", description="Fast, exact metrics for generative models")
    sub = p.add_subparsers(dest="command", required=True)

    def common(sp):
        sp.add_argument("--json", action="store_true", help="print the result as JSON")
        sp.add_argument("--quiet", action="store_true", help="no progress bars")

    sp = sub.add_parser("fid", help="Fréchet distance between two feature or statistics files")
    sp.add_argument("real")
    sp.add_argument("fake")
    sp.add_argument("--force", action="store_true", help="compare statistics of different feature extractors")
    common(sp)
    sp.set_defaults(func=_cmd_fid)

    sp = sub.add_parser("stats", help="mean/covariance statistics of a feature file, saved as .npz")
    sp.add_argument("features")
    sp.add_argument("-o", "--output", required=True)
    sp.add_argument("--feature-extractor", default=None, help="name of the network that produced the features")
    common(sp)
    sp.set_defaults(func=_cmd_stats)

    sp = sub.add_parser("prdc", help="precision, recall, density, coverage (exact k-NN)")
    sp.add_argument("real")
    sp.add_argument("fake")
    sp.add_argument("--k", type=int, default=5)
    common(sp)
    sp.set_defaults(func=_cmd_prdc)

    sp = sub.add_parser("compare", help="several metrics at once (shared statistics and radii)")
    sp.add_argument("real")
    sp.add_argument("fake")
    sp.add_argument("--metrics", default="fid,kid,precision,recall,density,coverage",
                    help="comma-separated: fid,kid,precision,recall,density,coverage,nn1_accuracy,vendi,prd")
    sp.add_argument("--k", type=int, default=5)
    sp.add_argument("--seed", type=int, default=0)
    common(sp)
    sp.set_defaults(func=_cmd_compare)

    sp = sub.add_parser("example", help="FID and PRDC on built-in synthetic Inception-like features")
    sp.add_argument("--n", type=int, default=10000)
    sp.add_argument("--dim", type=int, default=2048)
    common(sp)
    sp.set_defaults(func=_cmd_example)

    sp = sub.add_parser("demo", help="reference GANs and degraded generators through the metric suite, HTML report")
    sp.add_argument("--out", default="ganmetrics-demo", help="folder for the report (index.html and PNGs)")
    sp.add_argument("--train", action="store_true", help="train the reference GANs instead of loading the shipped ones")
    sp.add_argument("--n", type=int, default=2000, help="samples per toy-mixture evaluation")
    common(sp)
    sp.set_defaults(func=_cmd_demo)

    sp = sub.add_parser("info", help="build and device information")
    common(sp)
    sp.set_defaults(func=_cmd_info)
    return p


def _check_files(args) -> None:
    """Every named input must exist before any work starts."""
    for attr in ("real", "fake", "features"):
        path = getattr(args, attr, None)
        if path is not None and not os.path.isfile(path):
            raise FileNotFoundError(f"{attr.upper()}: no such file: {path}")


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        _check_files(args)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            result = args.func(args)
        for w in caught:
            print(f"ganmetrics: warning: {w.message}", file=sys.stderr)
    except (ValueError, TypeError, FileNotFoundError) as exc:
        print(f"ganmetrics: error: {exc}", file=sys.stderr)
        return 2
    except MemoryError as exc:
        print(f"ganmetrics: error: out of memory: {exc}", file=sys.stderr)
        return 2
    _print(result, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
