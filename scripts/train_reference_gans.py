"""Reproduce the shipped reference runs in python/ganmetrics/models/weights/ (a few minutes on 2 cores).

    python scripts/train_reference_gans.py [--jobs 2]

Every (model, loss) pair is trained with ganmetrics.models.trainer.default_config and saved with
its per-step logs and generator checkpoints. Runs are seeded: the same command gives the same files.
"""

import argparse
import os
import sys
from concurrent.futures import ProcessPoolExecutor

from ganmetrics.models import zoo


def _one(args):
    import torch

    torch.set_num_threads(1)
    from ganmetrics.models.trainer import default_config, save_run, train

    model, loss = args
    result = train(default_config(model, loss))
    save_run(result, zoo.run_path(model, loss))
    return model, loss, result.seconds


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--jobs", type=int, default=2)
    args = p.parse_args()
    os.makedirs(zoo.WEIGHTS_DIR, exist_ok=True)
    with ProcessPoolExecutor(args.jobs) as pool:
        for model, loss, seconds in pool.map(_one, zoo.RUNS):
            print(f"{model:>7} {loss:>8}: {seconds:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
