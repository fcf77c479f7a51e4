"""Generators broken on purpose, with a known effect on the metrics.

Each wraps a sampler (anything with ``sample(n, seed) -> np.ndarray``) and is itself a sampler:
``ModeDropped`` (k modes / digit classes never produced), ``Collapsed`` (the latent code squeezed
towards one point), ``Noised`` (Gaussian noise added to every sample), ``Blurred`` (images
smoothed with a Gaussian kernel).
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import torch


class ModeDropped:
    """Rejects samples whose mode (``assign(x) -> mode index``) is in ``dropped``."""

    def __init__(self, base, assign: Callable[[np.ndarray], np.ndarray], dropped, label: str = ""):
        self.base, self.assign, self.dropped = base, assign, np.asarray(list(dropped), dtype=np.int64)
        self.label = label or f"drop {len(self.dropped)} modes"

    def sample(self, n: int, seed: int = 0) -> np.ndarray:
        parts, have, round_ = [], 0, 0
        while have < n:
            x = self.base.sample(2 * n, seed=seed * 1000 + round_)
            keep = ~np.isin(self.assign(x), self.dropped)
            parts.append(x[keep])
            have += int(keep.sum())
            round_ += 1
            if round_ > 50:
                raise RuntimeError(f"{self.label}: the base generator rarely produces the kept modes")
        return np.concatenate(parts)[:n]


class Collapsed:
    """Scales the latent code by ``factor``: samples crowd around G(0) (mode collapse)."""

    def __init__(self, base, factor: float = 0.05, label: str = "collapsed"):
        self.base, self.factor, self.label = base, factor, label

    def sample(self, n: int, seed: int = 0) -> np.ndarray:
        g = torch.Generator().manual_seed(seed)
        z = torch.randn(n, self.base.net.z_dim, generator=g) * self.factor
        return self.base.sample_z(z)


class Noised:
    """Adds N(0, sigma^2) noise to every coordinate (images are clipped back to [-1, 1])."""

    def __init__(self, base, sigma: float, clip: bool = False, label: str = ""):
        self.base, self.sigma, self.clip = base, sigma, clip
        self.label = label or f"noise {sigma:g}"

    def sample(self, n: int, seed: int = 0) -> np.ndarray:
        x = self.base.sample(n, seed)
        x = x + self.sigma * np.random.default_rng(seed + 7).standard_normal(x.shape).astype(x.dtype)
        return np.clip(x, -1, 1) if self.clip else x


class Blurred:
    """Gaussian blur (3x3 kernel with std ``sigma`` pixels) of (n, 1, H, W) images."""

    def __init__(self, base, sigma: float = 1.0, label: str = ""):
        self.base, self.sigma = base, sigma
        self.label = label or f"blur {sigma:g}"
        t = np.arange(-1, 2)
        k = np.exp(-(t[:, None] ** 2 + t[None, :] ** 2) / (2 * sigma**2))
        self.kernel = torch.from_numpy((k / k.sum()).astype(np.float32))[None, None]

    def sample(self, n: int, seed: int = 0) -> np.ndarray:
        x = torch.from_numpy(self.base.sample(n, seed))
        padded = torch.nn.functional.pad(x, (1, 1, 1, 1), mode="replicate")
        return torch.nn.functional.conv2d(padded, self.kernel).numpy()


class TrueSampler:
    """The ideal generator: samples the real distribution (a toy mixture) with its own seed."""

    def __init__(self, mixture, label: str = "true distribution"):
        self.mixture, self.label = mixture, label

    def sample(self, n: int, seed: int = 0) -> np.ndarray:
        return self.mixture.sample(n, seed=10_000 + seed)
