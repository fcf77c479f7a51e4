"""Seeded, reproducible GAN training on the CPU with per-step logs and checkpoints."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Callable

import numpy as np
import torch

from ganmetrics._progress import steps
from ganmetrics.models import data as data_mod
from ganmetrics.models.losses import LOSSES, discriminator_loss, generator_loss
from ganmetrics.models.nets import DCDiscriminator, DCGenerator, DigitClassifier, MLPDiscriminator, MLPGenerator
from ganmetrics._io import atomic_write
from ganmetrics._torch_files import load_data
from ganmetrics.training.monitor import TrainingMonitor
from ganmetrics.training.signals import grad_norm, gradient_penalty, sign_rate

LOG_KEYS = ("g_loss", "d_loss", "gp", "g_grad_norm", "d_grad_norm", "d_real", "d_fake", "r_t")


@dataclass(frozen=True)
class TrainConfig:
    """One training run. ``model`` is 'ring8', 'grid25' (MLP GAN) or 'digits' (DCGAN)."""

    model: str
    loss: str
    steps: int = 3000
    batch_size: int = 256
    lr_g: float = 2e-4
    lr_d: float = 2e-4
    beta1: float = 0.5
    beta2: float = 0.9
    gp_weight: float = 10.0  # used by wgan-gp
    n_critic: int = 1
    checkpoint_steps: tuple = (0, 250, 500, 1000, 2000, 3000)
    seed: int = 0

    def __post_init__(self):
        if self.model not in ("ring8", "grid25", "digits"):
            raise ValueError(f"model must be 'ring8', 'grid25' or 'digits', got {self.model!r}")
        if self.loss not in LOSSES:
            raise ValueError(f"loss must be one of {LOSSES}, got {self.loss!r}")
        if self.steps < 1 or self.batch_size < 2:
            raise ValueError("steps must be >= 1 and batch_size >= 2")


def default_config(model: str, loss: str) -> TrainConfig:
    """The settings the shipped reference runs were trained with (scripts/train_reference_gans.py).

    WGAN-GP needs several critic steps per generator step (n_critic = 5, as in its paper); on the
    toy mixtures, whose scale is ~1, a penalty weight of 1 trains faster than the paper's 10.
    """
    if model == "digits":
        if loss == "wgan-gp":
            return TrainConfig(model, loss, steps=1500, batch_size=64, lr_g=1e-4, lr_d=1e-4, n_critic=5,
                               checkpoint_steps=(0, 100, 250, 500, 1000, 1500))
        return TrainConfig(model, loss, steps=3000, batch_size=64, lr_g=2e-4, lr_d=2e-4, beta2=0.999,
                           checkpoint_steps=(0, 250, 500, 1000, 2000, 3000))
    if loss == "wgan-gp":
        return TrainConfig(model, loss, steps=1000, batch_size=256, lr_g=1e-3, lr_d=1e-3, n_critic=5, gp_weight=1.0,
                           checkpoint_steps=(0, 100, 200, 400, 700, 1000))
    return TrainConfig(model, loss, steps=3000, batch_size=256, lr_g=5e-4, lr_d=5e-4)


def build_generator(model: str) -> torch.nn.Module:
    return DCGenerator(z_dim=32, width=32) if model == "digits" else MLPGenerator(z_dim=8, hidden=128)


def build_discriminator(model: str) -> torch.nn.Module:
    return DCDiscriminator(width=32) if model == "digits" else MLPDiscriminator(hidden=128)


@dataclass
class TrainResult:
    config: TrainConfig
    log: dict = field(repr=False)  # LOG_KEYS -> np.ndarray over steps
    checkpoints: dict = field(repr=False)  # step -> generator state_dict
    seconds: float = 0.0


def _real_sampler(cfg: TrainConfig, rng: np.random.Generator) -> Callable[[int], torch.Tensor]:
    if cfg.model == "digits":
        images, _ = data_mod.digits()
        images = torch.from_numpy(images)
        return lambda n: images[torch.from_numpy(rng.integers(0, len(images), n))]
    mixture = data_mod.MIXTURES[cfg.model]()
    return lambda n: torch.from_numpy(mixture.sample(n, seed=int(rng.integers(2**31))))


def train(cfg: TrainConfig, progress: bool | None = False, monitor: TrainingMonitor | None = None) -> TrainResult:
    """Train one GAN. Same config (and seed) -> the same weights and logs, run after run. ``monitor``: a
    :class:`~ganmetrics.TrainingMonitor` fed every step (losses, penalty, gradient norms, D's scores of the last
    critic step's batches) and asked to evaluate the generator at each checkpoint step; its latents come from
    its own generator, so the training draws stay those of the run without a monitor."""
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    gen, disc = build_generator(cfg.model), build_discriminator(cfg.model)
    opt_g = torch.optim.Adam(gen.parameters(), lr=cfg.lr_g, betas=(cfg.beta1, cfg.beta2))
    opt_d = torch.optim.Adam(disc.parameters(), lr=cfg.lr_d, betas=(cfg.beta1, cfg.beta2))
    real_batch = _real_sampler(cfg, rng)
    log = {k: np.zeros(cfg.steps, dtype=np.float32) for k in LOG_KEYS}
    checkpoints = {}

    def snapshot(step):
        checkpoints[step] = {k: v.detach().clone() for k, v in gen.state_dict().items()}

    if 0 in cfg.checkpoint_steps:
        snapshot(0)
        if monitor is not None:
            monitor.evaluate(0, gen)
    t0 = time.perf_counter()
    iterator = steps(range(1, cfg.steps + 1), cfg.steps, f"training {cfg.model}/{cfg.loss}", unit="steps",
                     progress=progress)
    for step in iterator:
        gen.train()
        for _ in range(cfg.n_critic):
            real = real_batch(cfg.batch_size)
            z = torch.randn(cfg.batch_size, gen.z_dim)
            with torch.no_grad():
                fake = gen(z)
            d_real, d_fake = disc(real), disc(fake)
            d_loss = discriminator_loss(cfg.loss, d_real, d_fake)
            gp = gradient_penalty(disc, real, fake) if cfg.loss == "wgan-gp" else torch.zeros(())
            opt_d.zero_grad(set_to_none=True)
            (d_loss + cfg.gp_weight * gp).backward()
            d_norm = grad_norm(disc)
            opt_d.step()
        z = torch.randn(cfg.batch_size, gen.z_dim)
        g_loss = generator_loss(cfg.loss, disc(gen(z)))
        opt_g.zero_grad(set_to_none=True)
        g_loss.backward()
        g_norm = grad_norm(gen)
        opt_g.step()
        i = step - 1
        log["g_loss"][i], log["d_loss"][i], log["gp"][i] = g_loss.item(), d_loss.item(), gp.item()
        log["g_grad_norm"][i], log["d_grad_norm"][i] = g_norm, d_norm
        log["d_real"][i], log["d_fake"][i] = d_real.mean().item(), d_fake.mean().item()
        log["r_t"][i] = sign_rate(d_real)
        if monitor is not None:
            monitor.log_step(step, **{k: float(log[k][i]) for k in LOG_KEYS if k not in ("d_real", "d_fake")},
                             d_real=d_real.detach(), d_fake=d_fake.detach())
        if step in cfg.checkpoint_steps:
            snapshot(step)
            if monitor is not None:
                monitor.evaluate(step, gen)
    return TrainResult(cfg, log, checkpoints, time.perf_counter() - t0)


def save_run(result: TrainResult, path: str) -> None:
    """One small file per run: config, per-step logs, generator checkpoints (float16). Atomic write."""
    payload = {
        "config": {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(result.config).items()},
        "log": {k: torch.from_numpy(v) for k, v in result.log.items()},
        "checkpoints": {str(s): {k: v.half() if v.is_floating_point() else v for k, v in sd.items()}
                        for s, sd in result.checkpoints.items()},
        "seconds": float(result.seconds),
    }
    with atomic_write(path) as fh:
        torch.save(payload, fh)


def load_run(path: str) -> TrainResult:
    """Read a run saved by :func:`save_run` (``weights_only=True``: data, never code)."""
    payload = load_data(path, "a saved training run")
    cfg = payload["config"]
    cfg["checkpoint_steps"] = tuple(cfg["checkpoint_steps"])
    config = TrainConfig(**cfg)
    checkpoints = {int(s): {k: v.float() if v.is_floating_point() else v for k, v in sd.items()}
                   for s, sd in payload["checkpoints"].items()}
    log = {k: v.numpy() for k, v in payload["log"].items()}
    return TrainResult(config, log, checkpoints, payload.get("seconds", 0.0))


def classifier_train(seed: int = 0, epochs: int = 40, progress: bool = False):
    """Train the digits classifier on the fixed split; returns (model, held-out accuracy)."""
    torch.manual_seed(seed)
    (xtr, ytr), (xte, yte) = data_mod.digits_split(seed=0)
    xtr, ytr, xte, yte = map(torch.from_numpy, (xtr, ytr, xte, yte))
    model = DigitClassifier()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    rng = np.random.default_rng(seed)
    for _ in range(epochs):
        model.train()
        order = torch.from_numpy(rng.permutation(len(xtr)))
        for a in range(0, len(xtr), 64):
            idx = order[a:a + 64]
            loss = torch.nn.functional.cross_entropy(model(xtr[idx]), ytr[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    model.eval()
    with torch.no_grad():
        acc = float((model(xte).argmax(1) == yte).float().mean())
    return model, acc
