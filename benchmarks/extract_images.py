"""Images per second from a folder of PNGs to Inception pool3 features: ganmetrics against pytorch-fid and
torch-fidelity, each in a fresh process, random weights in all three (the real ones are the same network).

    python benchmarks/extract_images.py --n 1000 --sizes 64 256 --out benchmarks/results/extract_cpu.json

pytorch-fid runs its own ``compute_statistics_of_path`` (its loader, batch 50, its default workers =
the cores, the model built from torchvision's Python modules as tests/_inception_peers.py does);
torch-fidelity runs ``extract_featuresdict_from_input_id`` on the folder (its dataset and loader, batch 64);
ganmetrics runs ``gm.extract`` without the cache (batch 64, default workers), once with pytorch-fid's
preprocessing and once with torch-fidelity's. Each child also reports its first 16 feature rows, and the
parent checks that each peer pair agrees (equal numerics) before it reports a ratio.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests"))


def make_folder(root: str, n: int, size: int) -> str:
    import numpy as np
    from PIL import Image

    folder = os.path.join(root, f"png{size}_{n}")
    if os.path.isdir(folder) and len(os.listdir(folder)) == n:
        return folder
    os.makedirs(folder, exist_ok=True)
    rng = np.random.default_rng(size)
    yy, xx = np.mgrid[0:size, 0:size]
    for i in range(n):
        f = rng.uniform(2, 12, 3)
        img = 127 + 100 * np.sin(xx[..., None] / f + yy[..., None] / f[::-1]) + rng.normal(0, 20, (size, size, 3))
        Image.fromarray(np.clip(img, 0, 255).astype(np.uint8)).save(os.path.join(folder, f"{i:05d}.png"))
    return folder


def child(contender: str, folder: str, weights: str) -> dict:
    import numpy as np
    import torch

    state = torch.load(weights, weights_only=True)
    t0 = time.perf_counter()
    if contender.startswith("ganmetrics"):
        import ganmetrics as gm

        resize = contender.split(":")[1]
        feats = np.asarray(gm.extract(folder, weights=weights, resize=resize, cache=False, progress=False))
    elif contender == "pytorch-fid":
        from _inception_peers import fresh_import, real_torchvision

        with real_torchvision():
            score = fresh_import("pytorch_fid.fid_score")
            pfid = sys.modules["pytorch_fid.inception"]
            pfid.load_state_dict_from_url = lambda *a, **k: state
            t0 = time.perf_counter()
            model = pfid.InceptionV3([3]).eval()
            files = sorted(os.path.join(folder, f) for f in os.listdir(folder))
            workers = min(len(os.sched_getaffinity(0)), 8)  # pytorch-fid's command-line default
            feats = score.get_activations(files, model, batch_size=50, dims=2048, device="cpu", num_workers=workers)
    elif contender == "torch-fidelity":
        from _inception_peers import fresh_import, real_torchvision

        with real_torchvision():
            fidelity_utils = fresh_import("torch_fidelity.utils")
            fx = sys.modules["torch_fidelity.feature_extractor_inceptionv3"]
            t0 = time.perf_counter()
            ext = fx.FeatureExtractorInceptionV3("inception-v3-compat", ["2048"], feature_extractor_weights_path=weights)
            out = fidelity_utils.extract_featuresdict_from_input_id(1, ext, input1=folder, batch_size=64, cuda=False,
                                                                    save_cpu_ram=False, verbose=False)
            feats = out["2048"].numpy()
    else:
        raise ValueError(contender)
    seconds = time.perf_counter() - t0
    return {"seconds": seconds, "images": len(feats), "head": np.asarray(feats[:16], dtype=np.float64).tolist()}


def run_child(contender: str, folder: str, weights: str) -> dict:
    proc = subprocess.run([sys.executable, __file__, "--child", contender, folder, weights], capture_output=True,
                          text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"{contender} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--n", type=int, default=1000)
    p.add_argument("--sizes", type=int, nargs="+", default=[64, 256])
    p.add_argument("--repeat", type=int, default=1)
    p.add_argument("--root", default="/tmp/ganmetrics-bench-images")
    p.add_argument("--out", default=None)
    p.add_argument("--child", nargs=3, default=None)
    args = p.parse_args()
    if args.child:
        print(json.dumps(child(*args.child)))
        return
    import numpy as np
    import torch
    from _inception_peers import random_inception_state

    import ganmetrics as gm

    os.makedirs(args.root, exist_ok=True)
    weights = os.path.join(args.root, "random-inception.pth")
    torch.save(random_inception_state(0), weights)
    contenders = ["pytorch-fid", "ganmetrics:legacy_pytorch", "torch-fidelity", "ganmetrics:legacy_tensorflow"]
    results = {"machine": {"cpu_count": os.cpu_count(), "platform": platform.platform(),
                           "python": platform.python_version()},
               "versions": {"ganmetrics": gm.__version__, "torch": torch.__version__}, "n": args.n, "rows": []}
    for pkg in ("pytorch_fid", "torch_fidelity"):
        from importlib.metadata import version

        results["versions"][pkg] = version(pkg.replace("_", "-"))
    for size in args.sizes:
        folder = make_folder(args.root, args.n, size)
        runs = {c: [run_child(c, folder, weights) for _ in range(args.repeat)] for c in contenders}
        row = {"size": size}
        for c, rs in runs.items():
            row[c] = {"seconds": statistics.median(r["seconds"] for r in rs),
                      "images_per_s": args.n / statistics.median(r["seconds"] for r in rs)}
        for peer, ours in (("pytorch-fid", "ganmetrics:legacy_pytorch"),
                           ("torch-fidelity", "ganmetrics:legacy_tensorflow")):
            a, b = np.array(runs[ours][0]["head"]), np.array(runs[peer][0]["head"])
            row[f"{ours} vs {peer}"] = {"max_rel_diff": float(np.abs(a - b).max() / np.abs(b).max()),
                                        "speedup": row[peer]["seconds"] / row[ours]["seconds"]}
        results["rows"].append(row)
        print(json.dumps(row, indent=1), flush=True)
    if args.out:
        with open(args.out, "w") as fh:
            json.dump(results, fh, indent=1)


if __name__ == "__main__":
    main()
