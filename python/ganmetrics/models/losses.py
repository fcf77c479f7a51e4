"""GAN losses: non-saturating BCE (Goodfellow et al. 2014), WGAN-GP (Gulrajani et al. 2017), hinge (Lim & Ye 2017)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

LOSSES = ("bce", "wgan-gp", "hinge")


def discriminator_loss(kind: str, d_real: torch.Tensor, d_fake: torch.Tensor) -> torch.Tensor:
    if kind == "bce":
        return F.softplus(-d_real).mean() + F.softplus(d_fake).mean()
    if kind == "wgan-gp":
        return d_fake.mean() - d_real.mean()
    if kind == "hinge":
        return F.relu(1 - d_real).mean() + F.relu(1 + d_fake).mean()
    raise ValueError(f"unknown loss {kind!r}; choose from {LOSSES}")


def generator_loss(kind: str, d_fake: torch.Tensor) -> torch.Tensor:
    if kind == "bce":
        return F.softplus(-d_fake).mean()  # non-saturating: -log sigmoid(D(G(z)))
    if kind in ("wgan-gp", "hinge"):
        return -d_fake.mean()
    raise ValueError(f"unknown loss {kind!r}; choose from {LOSSES}")
