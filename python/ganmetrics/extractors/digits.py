"""The embedded feature extractor for 8x8 digits: a small CNN classifier trained on scikit-learn's digits.

Its 64-d penultimate layer is the feature space for FID / KID / PRDC on digits, and its softmax the
class probabilities for the Inception Score. The weights ship with the package
(``models/weights/digits_classifier.pt``, reproduced by ``scripts/train_digits_classifier.py``)
together with the held-out accuracy measured when they were trained.
"""

from __future__ import annotations

import functools
import os

import numpy as np
import torch

from ganmetrics.models.nets import DigitClassifier
from ganmetrics._torch_files import load_data

WEIGHTS = os.path.join(os.path.dirname(os.path.dirname(__file__)), "models", "weights", "digits_classifier.pt")
NAME = "ganmetrics-digits-cnn-v1"


class DigitsExtractor:
    """``features(images)`` -> (n, 64) float32, ``probs(images)`` -> (n, 10); images (n, 1, 8, 8) in [-1, 1]."""

    name = NAME

    def __init__(self, path: str = WEIGHTS):
        if not os.path.exists(path):
            raise FileNotFoundError(f"digits classifier weights not found at {path}")
        payload = load_data(path, "the digits classifier's weights")
        self.model = DigitClassifier()
        self.model.load_state_dict(payload["state_dict"])
        self.model.eval()
        self.heldout_accuracy = float(payload["heldout_accuracy"])

    def _run(self, images, fn) -> np.ndarray:
        x = torch.as_tensor(np.asarray(images, dtype=np.float32))
        if x.dim() != 4 or tuple(x.shape[1:]) != (1, 8, 8):
            raise ValueError(f"images must have shape (n, 1, 8, 8), got {tuple(x.shape)}")
        out = []
        with torch.no_grad():
            for a in range(0, len(x), 1024):
                out.append(fn(x[a:a + 1024]))
        return torch.cat(out).numpy()

    def features(self, images) -> np.ndarray:
        return self._run(images, self.model.features)

    def probs(self, images) -> np.ndarray:
        return self._run(images, lambda b: torch.softmax(self.model(b).double(), 1)).astype(np.float64)

    def predict(self, images) -> np.ndarray:
        return self._run(images, lambda b: self.model(b).argmax(1))


@functools.lru_cache(maxsize=1)
def default_extractor() -> DigitsExtractor:
    return DigitsExtractor()
