"""Reproduce python/ganmetrics/models/weights/digits_classifier.pt (about 20 s on 2 cores).

    python scripts/train_digits_classifier.py
"""

import os
import sys

import torch

from ganmetrics._io import atomic_write
from ganmetrics.extractors.digits import WEIGHTS
from ganmetrics.models.trainer import classifier_train


def main() -> int:
    torch.set_num_threads(2)
    model, acc = classifier_train(seed=0)
    with atomic_write(WEIGHTS) as fh:
        torch.save({"state_dict": model.state_dict(), "heldout_accuracy": acc}, fh)
    print(f"held-out accuracy {acc:.4f} -> {os.path.relpath(WEIGHTS)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
