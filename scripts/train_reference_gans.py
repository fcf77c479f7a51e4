"""Reproduce the shipped reference runs in python/ganmetrics/models/weights/ (a few minutes on 2 cores).

    python scripts/train_reference_gans.py [--jobs 2] [--runs runs/reference-gans]

Every (model, loss) pair is trained with ganmetrics.models.trainer.default_config and saved with
its per-step logs and generator checkpoints. Runs are seeded: the same command gives the same files.
Each run is watched by a ganmetrics.TrainingMonitor against the demo's reference of its model (evaluations at
the checkpoints, in a background thread): RUNS/MODEL-LOSS/ holds its log.jsonl and dashboard.html, and the
script ends with ganmetrics.compare_runs' table of the three losses of each model.
"""

import argparse
import os
import sys
import warnings
from concurrent.futures import ProcessPoolExecutor

import torch

import ganmetrics as gm
from ganmetrics.demo import Evaluator
from ganmetrics.models import zoo
from ganmetrics.models.trainer import default_config, save_run, train


def _one(args):
    torch.set_num_threads(1)
    warnings.simplefilter("ignore", gm.BiasWarning)  # small evaluation sets; the intervals say so
    model, loss, runs = args
    run_dir = os.path.join(runs, f"{model}-{loss}")
    log = os.path.join(run_dir, "log.jsonl")
    if os.path.exists(log):
        os.remove(log)  # a new run, not a resumed one
    monitor = Evaluator(model, 2000).monitor(run_dir, f"{model}/{loss}", background="thread")
    with monitor:
        result = train(default_config(model, loss), monitor=monitor)
    save_run(result, zoo.run_path(model, loss))
    return model, loss, result.seconds, run_dir


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--jobs", type=int, default=2)
    p.add_argument("--runs", default=os.path.join("runs", "reference-gans"), help="folder of the monitors' runs")
    args = p.parse_args()
    os.makedirs(zoo.WEIGHTS_DIR, exist_ok=True)
    dirs = {}
    with ProcessPoolExecutor(args.jobs) as pool:
        for model, loss, seconds, run_dir in pool.map(_one, [(m, lo, args.runs) for m, lo in zoo.RUNS]):
            print(f"{model:>7} {loss:>8}: {seconds:.1f} s")
            dirs.setdefault(model, {})[loss] = [run_dir]
    for model, by_loss in dirs.items():
        print(f"\n{model}\n" + gm.compare_runs(by_loss, ["fid", "recall", "coverage"]).to_markdown())
    return 0


if __name__ == "__main__":
    sys.exit(main())
