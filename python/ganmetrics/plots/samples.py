"""Sample grids: nearest training images, realism ranking, coverage holes, most detectable fakes."""

from __future__ import annotations

import os
from typing import Any, Sequence

import numpy as np

from ganmetrics._io import atomic_write
from ganmetrics.extraction import extract
from ganmetrics.images import as_source, is_image_input
from ganmetrics.metrics.detectability import C2STResult
from ganmetrics.metrics.knn import coverage_holes, realism_score
from ganmetrics.metrics.novelty import COPY_RATIO, memorization, train_neighbours


def _figure(rows: int, cols: int, cell: float = 1.25):
    import matplotlib

    if matplotlib.get_backend().lower() not in ("agg", "pdf", "svg", "ps", "cairo", "template"):
        matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(rows, cols, figsize=(cell * cols, (cell + 0.3) * rows + 0.4), squeeze=False)
    for ax in axes.ravel():
        ax.set_xticks([])
        ax.set_yticks([])
        for side in ax.spines.values():
            side.set_visible(False)
    return fig, axes


def finish(fig: Any, path: str | os.PathLike | None) -> Any:
    """Save ``fig`` at ``path`` atomically and close it (returning the path), or return it when no path."""
    if path is None:
        return fig
    import matplotlib.pyplot as plt

    fmt = os.fspath(path).rsplit(".", 1)[-1].lower() if "." in os.path.basename(os.fspath(path)) else "png"
    try:
        with atomic_write(path) as fh:
            fig.savefig(fh, format=fmt, dpi=110, bbox_inches="tight")
    finally:
        plt.close(fig)
    return path


class _Images:
    """An image input read one image at a time (uint8 HWC), for drawing."""

    def __init__(self, images: Any, name: str):
        self.source = as_source(images, name, channels=3)
        self.name = name

    def __len__(self) -> int:
        return len(self.source)

    def get(self, i: int) -> np.ndarray:
        img = self.source.load(int(i))
        if img.shape[2] == 3 and np.array_equal(img[:, :, 0], img[:, :, 1]) and np.array_equal(img[:, :, 0], img[:, :, 2]):
            return img[:, :, 0]
        return img


def _show(ax: Any, img: np.ndarray, title: str | None = None, color: str = "black") -> None:
    ax.imshow(img, cmap="gray" if img.ndim == 2 else None, vmin=0, vmax=255, interpolation="nearest")
    if title:
        ax.set_title(title, fontsize=7, color=color)


def _features(images: Any, features: Any, name: str, n: int, extract_kw: dict) -> Any:
    if features is None:
        return extract(images, **extract_kw)
    rows = len(features)
    if rows != n:
        raise ValueError(f"{name}_features has {rows} rows, {name}_images has {n} images; they must match")
    return features


def _given(x: Any, extract_kw: dict) -> Any:
    """Features as given, or the features of an image input."""
    return extract(x, **extract_kw) if is_image_input(x) else x


def _check_count(name: str, value: Any, low: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
        raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
    return int(value)


def plot_nearest_neighbours(train_images: Any, fake_images: Any, *, train_features: Any = None,
                            fake_features: Any = None, k: int = 5, rows: int = 8, threshold: float = COPY_RATIO,
                            path: str | os.PathLike | None = None, **extract_kw: Any) -> Any:
    """Each generated sample (left) beside its ``k`` nearest training images, nearest first, with distances. The
    rows are the ``rows`` generated samples most like a copy: those :func:`ganmetrics.memorization` flags (red
    titles) first, then by the distance ratio d1 / d2. ``extract_kw`` (``extractor=``, ``resize=``, ...) reach the
    extraction when features are not given."""
    k, rows = _check_count("k", k), _check_count("rows", rows)
    train, fake = _Images(train_images, "train_images"), _Images(fake_images, "fake_images")
    ft = _features(train_images, train_features, "train", len(train), extract_kw)
    ff = _features(fake_images, fake_features, "fake", len(fake), extract_kw)
    mem = memorization(ft, ff, threshold=threshold)
    nb = train_neighbours(ft, ff, k=min(k, len(train) - 1) if len(train) > 1 else 1)
    order = np.lexsort((np.arange(len(fake)), mem.ratio, ~mem.flagged))[:rows]
    kk = nb.indices.shape[1]
    fig, axes = _figure(len(order), kk + 1)
    for r, g in enumerate(order):
        flagged = bool(mem.flagged[g])
        _show(axes[r, 0], fake.get(g), f"fake {g}" + (" COPY" if flagged else "") + f"\nratio {mem.ratio[g]:.2f}",
              "#c00000" if flagged else "black")
        for c in range(kk):
            _show(axes[r, c + 1], train.get(nb.indices[g, c]), f"train {nb.indices[g, c]}\nd={nb.distances[g, c]:.3g}")
    fig.suptitle(f"nearest training images of generated samples ({mem.fraction:.1%} flagged as copies, "
                 f"ratio d1/d2 < {threshold:.2g})", fontsize=9)
    fig.tight_layout()
    return finish(fig, path)


def plot_realism(real: Any, fake_images: Any, *, fake_features: Any = None, n: int = 8, k: int = 3,
                 path: str | os.PathLike | None = None, **extract_kw: Any) -> Any:
    """Generated samples ranked by realism score (Kynkäänniemi et al. 2019): the ``n`` most realistic (top row) and
    the ``n`` least (bottom row). ``real``: the real features (or real images, whose features are extracted)."""
    n = _check_count("n", n)
    fake = _Images(fake_images, "fake_images")
    ff = _features(fake_images, fake_features, "fake", len(fake), extract_kw)
    score = realism_score(_given(real, extract_kw), ff, k=k)
    order = np.argsort(-score, kind="stable")
    n = min(n, len(order))
    fig, axes = _figure(2, n)
    for c in range(n):
        best, worst = order[c], order[len(order) - 1 - c]
        _show(axes[0, c], fake.get(best), f"{best}: {score[best]:.2f}")
        _show(axes[1, c], fake.get(worst), f"{worst}: {score[worst]:.2f}", "#c00000")
    axes[0, 0].set_ylabel("most\nrealistic", fontsize=8)
    axes[1, 0].set_ylabel("least\nrealistic", fontsize=8)
    fig.suptitle(f"generated samples by realism score (k = {k}; >= 1: inside the real manifold)", fontsize=9)
    fig.tight_layout()
    return finish(fig, path)


def plot_coverage_holes(real_images: Any, fake: Any, *, real_features: Any = None, k: int = 5, n: int = 16,
                        cols: int = 8, path: str | os.PathLike | None = None, **extract_kw: Any) -> Any:
    """The real samples no generated sample comes near (outside coverage, Naeem et al. 2020), farthest first, each
    titled with its margin (distance to the nearest generated sample over its k-NN radius). ``fake``: the
    generated features (or images, whose features are extracted)."""
    n, cols = _check_count("n", n), _check_count("cols", cols)
    real = _Images(real_images, "real_images")
    fr = _features(real_images, real_features, "real", len(real), extract_kw)
    res = coverage_holes(fr, _given(fake, extract_kw), k=k)
    shown = res.holes[:n]
    if len(shown) == 0:
        fig, axes = _figure(1, 1, cell=3.0)
        axes[0, 0].text(0.5, 0.5, f"every real sample is covered\n(coverage {res.coverage:.3f}, k = {k})",
                        ha="center", va="center", fontsize=9)
        return finish(fig, path)
    return _grid(real, shown, [f"real {i}\nx{res.margin[i]:.2f}" for i in shown], cols,
                 f"real samples not covered ({len(res.holes)} of {len(real)}; coverage {res.coverage:.3f}, k = {k})",
                 path)


def _grid(images: _Images, shown: Sequence[int], titles: list[str], cols: int, title: str,
          path: str | os.PathLike | None) -> Any:
    """The images ``shown``, ``cols`` to a row, each with its title."""
    rows = (len(shown) + cols - 1) // cols
    fig, axes = _figure(rows, min(cols, len(shown)))
    for ax, i, t in zip(axes.ravel(), shown, titles):
        _show(ax, images.get(i), t)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return finish(fig, path)


def plot_detectable(fake_images: Any, result: C2STResult, *, n: int = 16, cols: int = 8,
                    path: str | os.PathLike | None = None) -> Any:
    """The ``n`` generated samples a classifier two-sample test (:func:`ganmetrics.c2st`) finds most detectable,
    each titled with its out-of-fold probability of being generated."""
    n, cols = _check_count("n", n), _check_count("cols", cols)
    if not isinstance(result, C2STResult):
        raise TypeError(f"result must be what ganmetrics.c2st returns, got {type(result).__name__}")
    fake = _Images(fake_images, "fake_images")
    if len(fake) != len(result.fake_scores):
        raise ValueError(f"fake_images has {len(fake)} images, the c2st result scored {len(result.fake_scores)}")
    shown = result.most_detectable[:n]
    return _grid(fake, shown, [f"fake {i}\np={result.fake_scores[i]:.2f}" for i in shown], cols,
                 f"most detectable generated samples (c2st accuracy {result.accuracy:.3f}, AUC {result.auc:.3f})",
                 path)
