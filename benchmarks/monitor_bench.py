"""What watching a training run costs the training loop: the README's MLP GAN on the 8-Gaussian ring, trained
for ``--steps`` steps without a monitor (the anchor), with ``log_step`` every step, and with an evaluation
(FID, recall, coverage against a 2,000-sample reference, with intervals) every ``--every`` steps in the
background thread, in a spawned process, and blocking.

    python benchmarks/monitor_bench.py --out benchmarks/results/monitor_cpu.json

Medians of ``--repeats`` runs of each setting; the machine is shared and noisy, so read the ratios to the
anchor measured in the same run.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
import warnings

import torch

import ganmetrics as gm
from ganmetrics.models.data import MIXTURES


def train(steps: int, monitor=None, every: int = 0) -> float:
    torch.manual_seed(0)
    ring = MIXTURES["ring8"]()
    G = torch.nn.Sequential(torch.nn.Linear(8, 128), torch.nn.ReLU(), torch.nn.Linear(128, 2))
    D = torch.nn.Sequential(torch.nn.Linear(2, 128), torch.nn.ReLU(), torch.nn.Linear(128, 1))
    opt_g = torch.optim.Adam(G.parameters(), 5e-4, betas=(0.5, 0.9))
    opt_d = torch.optim.Adam(D.parameters(), 5e-4, betas=(0.5, 0.9))
    sp = torch.nn.functional.softplus
    t0 = time.perf_counter()
    for step in range(1, steps + 1):
        real = torch.from_numpy(ring.sample(256, seed=step))
        fake = G(torch.randn(256, 8))
        d_real, d_fake = D(real), D(fake.detach())
        d_loss = sp(-d_real).mean() + sp(d_fake).mean()
        opt_d.zero_grad()
        d_loss.backward()
        d_norm = gm.training.grad_norm(D)
        opt_d.step()
        g_loss = sp(-D(fake)).mean()
        opt_g.zero_grad()
        g_loss.backward()
        if monitor is not None:
            monitor.log_step(step, g_loss=g_loss, d_loss=d_loss, d_grad_norm=d_norm,
                             g_grad_norm=gm.training.grad_norm(G), d_real=d_real.detach(), d_fake=d_fake.detach())
            if every and step % every == 0:
                monitor.evaluate(step, G)
        opt_g.step()
    loop = time.perf_counter() - t0
    if monitor is not None:
        monitor.close(dashboard=False)
    return loop, time.perf_counter() - t0


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--steps", type=int, default=2000)
    p.add_argument("--every", type=int, default=200)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--out")
    args = p.parse_args()
    warnings.simplefilter("ignore", gm.BiasWarning)
    ring = MIXTURES["ring8"]()
    folder = tempfile.mkdtemp()
    ref_path = gm.Reference.build(ring.sample(2000, seed=1), metrics=["fid", "recall", "coverage"]).save(
        os.path.join(folder, "ref.gmref"))
    ref = gm.Reference.load(ref_path)
    runs = iter(range(10**6))

    def mon(background):
        return gm.TrainingMonitor(ref, out=os.path.join(folder, f"run{next(runs)}"), latent_dim=8,
                                  background=background)

    settings = {
        "no monitor (anchor)": lambda: train(args.steps),
        "log_step every step": lambda: train(args.steps, mon("none")),
        f"+ evaluate every {args.every} steps, background thread": lambda: train(args.steps, mon("thread"),
                                                                                  args.every),
        f"+ evaluate every {args.every} steps, background process": lambda: train(args.steps, mon("process"),
                                                                                   args.every),
        f"+ evaluate every {args.every} steps, blocking": lambda: train(args.steps, mon("none"), args.every),
    }
    results, totals = {}, {}
    for name, fn in settings.items():
        times = [fn() for _ in range(args.repeats)]
        results[name] = statistics.median(t[0] for t in times)
        totals[name] = statistics.median(t[1] for t in times)
    anchor = results["no monitor (anchor)"]
    out = {"machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "python": sys.version.split()[0],
                       "torch": torch.__version__, "ganmetrics": gm.__version__},
           "steps": args.steps, "every": args.every, "repeats": args.repeats,
           "seconds_of_the_training_loop": results,
           "seconds_until_closed": totals, "ratio_to_anchor": {k: v / anchor for k, v in results.items()}}
    for name, v in results.items():
        print(f"{name:>58}: loop {v:7.2f} s ({v / anchor:.2f}x), until closed {totals[name]:7.2f} s")
    if args.out:
        with open(args.out, "w") as fh:
            json.dump(out, fh, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
