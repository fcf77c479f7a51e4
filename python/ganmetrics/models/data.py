"""Data that ships or is generated: 2-D Gaussian mixtures with known modes, and the digits bundled
with scikit-learn. Nothing is downloaded."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Mixture:
    """An equal-weight mixture of isotropic 2-D Gaussians: the truth the toy validation measures against."""

    name: str
    modes: np.ndarray  # (k, 2)
    std: float

    def sample(self, n: int, seed: int = 0, modes: np.ndarray | None = None) -> np.ndarray:
        """``n`` points; ``modes`` restricts sampling to those mode indices."""
        rng = np.random.default_rng(seed)
        which = np.arange(len(self.modes)) if modes is None else np.asarray(modes)
        idx = which[rng.integers(0, len(which), size=n)]
        return (self.modes[idx] + self.std * rng.standard_normal((n, 2))).astype(np.float32)

    def assign(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Nearest mode of each point and whether the point is high quality (within 3 std of it)."""
        x = np.asarray(x, dtype=np.float64)
        d2 = ((x[:, None, :] - self.modes[None, :, :]) ** 2).sum(-1)
        nearest = d2.argmin(1)
        return nearest, np.sqrt(d2[np.arange(len(x)), nearest]) <= 3.0 * self.std

    def truth(self, x: np.ndarray, min_count: int | None = None) -> dict:
        """Known-answer quality of a sample: ``modes_covered`` (modes with at least ``min_count`` high
        quality points; default: 5 % of a fair share) and ``high_quality`` (fraction within 3 std)."""
        nearest, good = self.assign(x)
        counts = np.bincount(nearest[good], minlength=len(self.modes))
        need = max(1, int(0.05 * len(x) / len(self.modes))) if min_count is None else min_count
        return {"modes_covered": int((counts >= need).sum()), "high_quality": float(good.mean())}


def ring(k: int = 8, radius: float = 2.0, std: float = 0.05) -> Mixture:
    """``k`` Gaussians evenly spaced on a circle (the classic 8-Gaussians benchmark)."""
    angles = 2 * np.pi * np.arange(k) / k
    return Mixture(f"ring{k}", np.stack([radius * np.cos(angles), radius * np.sin(angles)], 1), std)


def grid(side: int = 5, spacing: float = 1.0, std: float = 0.05) -> Mixture:
    """``side`` x ``side`` Gaussians on a square grid centred at the origin (the 25-Gaussians benchmark)."""
    coords = (np.arange(side) - (side - 1) / 2) * spacing
    xx, yy = np.meshgrid(coords, coords)
    return Mixture(f"grid{side * side}", np.stack([xx.ravel(), yy.ravel()], 1), std)


MIXTURES = {"ring8": ring, "grid25": grid}


def digits() -> tuple[np.ndarray, np.ndarray]:
    """The 1797 8x8 handwritten digits bundled with scikit-learn, scaled to [-1, 1], shape (n, 1, 8, 8)."""
    from sklearn.datasets import load_digits

    d = load_digits()
    images = (d.images.astype(np.float32) / 16.0) * 2.0 - 1.0
    return images[:, None, :, :], d.target.astype(np.int64)


def digits_split(seed: int = 0, test_fraction: float = 0.2):
    """A fixed train / held-out split of the digits (stratified by class)."""
    images, labels = digits()
    rng = np.random.default_rng(seed)
    test = np.zeros(len(labels), dtype=bool)
    for c in range(10):
        idx = np.flatnonzero(labels == c)
        test[rng.choice(idx, int(round(test_fraction * len(idx))), replace=False)] = True
    return (images[~test], labels[~test]), (images[test], labels[test])
