"""What a GAN training loop should record besides its losses, computed the way the papers define them.

* :func:`gradient_penalty` -- WGAN-GP (Gulrajani et al. 2017): ``E[(||grad_x D(x_hat)||_2 - 1)^2]`` at random
  interpolates ``x_hat = a x_real + (1 - a) x_fake``, one ``a ~ U[0, 1]`` per sample.
* :func:`r1_penalty` -- R1 (Mescheder et al. 2018): ``E[||grad_x D(x)||_2^2]`` at real samples, *before* any
  ``gamma / 2`` weight (StyleGAN2's ``r1_gamma`` multiplies it by ``gamma / 2``).
* :func:`grad_norm` -- the global L2 norm of a module's parameter gradients (what ``clip_grad_norm_`` reports).
* :func:`sign_rate` -- ``r_t = E[sign(D(x_real))]`` on the discriminator's training images (Karras et al. 2020,
  StyleGAN2-ADA's overfitting heuristic: 0 when D cannot tell, 1 when it is sure of every real image).
* :func:`discriminator_accuracy` -- the balanced accuracy of D's decisions (score > threshold: real) on
  held-out real images against generated ones.

The penalties keep the autograd graph (``create_graph=True``) so they can be added to the loss.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np
import torch


def _check_batch(x: Any, name: str) -> torch.Tensor:
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if x.dim() < 1 or x.shape[0] < 1:
        raise ValueError(f"{name} must be a batch with at least one sample, got shape {tuple(x.shape)}")
    if not x.is_floating_point():
        raise TypeError(f"{name} must be floating point, got {x.dtype}")
    return x


def _input_grads(disc: Callable, x: torch.Tensor, name: str) -> torch.Tensor:
    scores = disc(x)
    if not isinstance(scores, torch.Tensor) or scores.numel() != x.shape[0]:
        got = tuple(scores.shape) if isinstance(scores, torch.Tensor) else type(scores).__name__
        raise ValueError(f"the discriminator must return one score per sample of {name} ({x.shape[0]}), got {got}")
    (grad,) = torch.autograd.grad(scores.sum(), x, create_graph=True)
    return grad.flatten(1)


def gradient_penalty(disc: Callable, real: torch.Tensor, fake: torch.Tensor, *, alpha: torch.Tensor | None = None,
                     target: float = 1.0) -> torch.Tensor:
    """WGAN-GP's penalty ``mean((||grad D(x_hat)|| - target)^2)`` (see the module doc); add
    ``weight * penalty`` (10 in the paper) to the critic's loss. ``alpha``: the interpolation weights, shape
    (batch,) (default: uniform, drawn from torch's global generator). ``fake`` may carry a graph: it is detached."""
    real, fake = _check_batch(real, "real"), _check_batch(fake, "fake")
    if real.shape != fake.shape:
        raise ValueError(f"real and fake must have the same shape, got {tuple(real.shape)} and {tuple(fake.shape)}")
    shape = (real.shape[0],) + (1,) * (real.dim() - 1)
    if alpha is None:
        alpha = torch.rand(shape, device=real.device, dtype=real.dtype)
    else:
        if alpha.numel() != real.shape[0]:
            raise ValueError(f"alpha must hold one weight per sample ({real.shape[0]}), got {alpha.numel()}")
        alpha = alpha.reshape(shape).to(real)
    x_hat = (alpha * real.detach() + (1 - alpha) * fake.detach()).requires_grad_(True)
    return ((_input_grads(disc, x_hat, "the interpolates").norm(dim=1) - target) ** 2).mean()


def r1_penalty(disc: Callable, real: torch.Tensor) -> torch.Tensor:
    """R1: ``mean(||grad D(x)||^2)`` over the real batch, without the ``gamma / 2`` factor (see the module doc)."""
    real = _check_batch(real, "real").detach().requires_grad_(True)
    return _input_grads(disc, real, "real").pow(2).sum(dim=1).mean()


def grad_norm(module: torch.nn.Module) -> float:
    """Global L2 norm of the gradients of ``module``'s parameters (those without a gradient are skipped);
    call after ``backward()`` and before ``optimizer.step()``. Summed in float64."""
    if not isinstance(module, torch.nn.Module):
        raise TypeError(f"module must be a torch.nn.Module, got {type(module).__name__}")
    grads = [p.grad.detach() for p in module.parameters() if p.grad is not None]
    if not grads:
        return 0.0
    return float(torch.stack([g.double().pow(2).sum() for g in grads]).sum().sqrt())


def _scores(x: Any, name: str) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().double().numpy()
    a = np.asarray(x, dtype=np.float64).reshape(-1)
    if a.size == 0:
        raise ValueError(f"{name} holds no scores")
    if not np.isfinite(a).all():
        raise ValueError(f"{name} holds NaN or Inf scores")
    return a


def sign_rate(d_real: Any, threshold: float = 0.0) -> float:
    """StyleGAN2-ADA's ``r_t``: the mean of ``sign(D(x) - threshold)`` over the discriminator's scores of real
    training images (logits; for a critic without a natural threshold, pick one). In [-1, 1]; ADA tunes its
    augmentation to hold it at 0.6 and reads values near 1 as overfitting."""
    return float(np.sign(_scores(d_real, "d_real") - threshold).mean())


def discriminator_accuracy(d_real: Any, d_fake: Any, threshold: float = 0.0) -> float:
    """Balanced accuracy of D's decisions: ``(P[D(real) > threshold] + P[D(fake) <= threshold]) / 2``, from
    its scores of held-out real images and of generated ones. 0.5: D cannot tell them apart; 1: it always can."""
    r, f = _scores(d_real, "d_real"), _scores(d_fake, "d_fake")
    return float(((r > threshold).mean() + (f <= threshold).mean()) / 2)


@torch.no_grad()
def discriminator_scores(disc: Callable, x: torch.Tensor, batch_size: int = 512) -> np.ndarray:
    """D's scores of ``x`` in evaluation mode (mode restored), without gradients, as float64 numpy."""
    x = _check_batch(x, "x")
    was_training = getattr(disc, "training", None)
    if was_training:
        disc.eval()
    try:
        out = [disc(x[a:a + batch_size]).reshape(-1).double().cpu() for a in range(0, x.shape[0], batch_size)]
    finally:
        if was_training:
            disc.train()
    return torch.cat(out).numpy()
