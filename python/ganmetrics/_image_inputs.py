"""Image inputs for the metric functions: ``gm.fid("real/", "fake/", resize="clean")``.

:func:`accepts_images` wraps a metric whose set arguments may be images: those arguments are replaced
by their features (or statistics, for FID) before the metric runs, with one extractor built for both
sets. Feature and statistics inputs pass through unchanged, so a saved ``real_stats.npz`` can meet a
folder of generated images.
"""

from __future__ import annotations

import functools
import inspect
from typing import Any, Callable
from ganmetrics.images import as_source, is_image_input

# keyword -> default; these reach the extraction, never the metric
IMAGE_KEYWORDS: dict[str, Any] = {
    "extractor": None, "resize": None, "weights": None, "batch_size": 64, "workers": None, "cache": True,
    "cache_dir": None, "skip_bad": False, "recursive": False, "extractor_name": None, "device": None,
}


def accepts_images(*names: str, want: str = "features", default_extractor: str | None = None) -> Callable:
    """``want``: ``"features"`` (k-NN, KID), ``"stats"`` (FID) or ``"logits"`` (Inception Score);
    ``default_extractor``: the extractor when none is named (the Inception otherwise; CMMD: CLIP)."""

    def deco(fn: Callable) -> Callable:
        sig = inspect.signature(fn)
        params = list(sig.parameters.values())
        tail = [p for p in params if p.kind == p.VAR_KEYWORD]
        head = [p for p in params if p.kind != p.VAR_KEYWORD]
        extra = [inspect.Parameter(k, inspect.Parameter.KEYWORD_ONLY, default=v)
                 for k, v in IMAGE_KEYWORDS.items() if k not in sig.parameters]

        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            image_kw = {k: kwargs.pop(k) for k in list(kwargs) if k in IMAGE_KEYWORDS and k not in sig.parameters}
            bound = sig.bind(*args, **kwargs)

            targets = [n for n in names if n in bound.arguments and is_image_input(bound.arguments[n])]
            if not targets:
                given = sorted(k for k, v in image_kw.items() if v != IMAGE_KEYWORDS[k])
                if given:
                    raise ValueError(f"{', '.join(given)} apply to image inputs, and no input of {fn.__name__} is "
                                     "images (features and statistics are used as given)")
                return fn(*args, **kwargs)
            from ganmetrics.extraction import run_input

            opts = {**IMAGE_KEYWORDS, **image_kw}
            if opts["extractor"] is None and default_extractor is not None:
                opts["extractor"] = default_extractor
            # every input checked before any weights load; one extractor for all of them
            sources = {name: as_source(bound.arguments[name], name, recursive=opts["recursive"]) for name in targets}
            ext = opts["extractor"]
            for name, src in sources.items():
                res, ext = run_input(src, name, ext, resize=opts["resize"], weights=opts["weights"],
                                     device=bound.arguments.get("device", opts["device"]),
                                     extractor_name=opts["extractor_name"], batch_size=opts["batch_size"],
                                     workers=opts["workers"], keep_features=want == "features",
                                     want_logits=want == "logits", cache=opts["cache"], cache_dir=opts["cache_dir"],
                                     skip_bad=opts["skip_bad"], progress=bound.arguments.get("progress"))
                bound.arguments[name] = {"features": res.features, "stats": res.stats, "logits": res.logits}[want]
            return fn(*bound.args, **bound.kwargs)

        wrapper.__signature__ = sig.replace(parameters=head + extra + tail)
        return wrapper

    return deco
