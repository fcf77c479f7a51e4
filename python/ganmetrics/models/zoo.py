"""The shipped reference runs: one file per (model, loss) with logs and generator checkpoints."""

from __future__ import annotations

import functools
import os

import numpy as np
import torch

from ganmetrics.models.trainer import TrainResult, build_generator, load_run

WEIGHTS_DIR = os.path.join(os.path.dirname(__file__), "weights")
MODELS = ("ring8", "grid25", "digits")
LOSSES = ("bce", "wgan-gp", "hinge")
RUNS = tuple((m, l) for m in MODELS for l in LOSSES)


def run_path(model: str, loss: str) -> str:
    return os.path.join(WEIGHTS_DIR, f"{model}_{loss}.pt")


@functools.lru_cache(maxsize=None)
def run(model: str, loss: str) -> TrainResult:
    path = run_path(model, loss)
    if not os.path.exists(path):
        raise FileNotFoundError(f"no shipped run for {model}/{loss} at {path}; train it with scripts/train_reference_gans.py")
    return load_run(path)


class GeneratorSampler:
    """``sample(n, seed)`` -> numpy samples (n, 2) or (n, 1, 8, 8) from one generator checkpoint."""

    def __init__(self, model: str, state_dict: dict, label: str = ""):
        self.model = model
        self.label = label
        self.net = build_generator(model)
        self.net.load_state_dict(state_dict)
        self.net.eval()

    def sample(self, n: int, seed: int = 0) -> np.ndarray:
        g = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            return self.net(torch.randn(n, self.net.z_dim, generator=g)).numpy()

    def sample_z(self, z: torch.Tensor) -> np.ndarray:
        with torch.no_grad():
            return self.net(z).numpy()


def generator(model: str, loss: str, step: int | None = None, result: TrainResult | None = None) -> GeneratorSampler:
    """A sampler for the checkpoint at ``step`` (default: the last) of a shipped (or given) run."""
    res = result or run(model, loss)
    steps = sorted(res.checkpoints)
    step = steps[-1] if step is None else step
    if step not in res.checkpoints:
        raise ValueError(f"{model}/{loss} has checkpoints at steps {steps}, not {step}")
    return GeneratorSampler(model, res.checkpoints[step], f"{model}/{loss}@{step}")
