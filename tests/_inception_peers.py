"""Random Inception weights and the peers' own Inception code, for tests that cannot download the real weights.

pytorch-fid and clean-fid build their network from torchvision's Python modules. The registry's
torchvision 0.28.0 (the release paired with torch 2.13.0) is a CUDA build whose compiled ops do not load
against the CPU torch, but its pure-Python ``models`` and ``transforms`` import when the package's
``__init__`` is bypassed: :func:`real_torchvision` downloads the wheel once (``pip download --no-deps``),
unpacks it and installs, for the duration of a ``with`` block, a module object named ``torchvision`` whose
``__path__`` is the unpacked folder. Tests skip, saying why, where the wheel cannot be had.
"""

from __future__ import annotations

import contextlib
import glob
import math
import os
import subprocess
import sys
import types
import zipfile

import pytest
import torch

TORCHVISION_VERSION = "0.28.0"


def random_inception_state(seed: int = 0) -> dict:
    """A state dict in pytorch-fid's / torch-fidelity's layout with He-scaled random weights and batch-norm
    statistics near 1, so that activations keep their scale through the 94 layers."""
    from ganmetrics.extractors.inception import FIDInceptionV3

    g = torch.Generator().manual_seed(seed)
    out = {}
    for key, value in FIDInceptionV3().state_dict().items():
        if key.endswith("num_batches_tracked"):
            out[key] = value.clone()
        elif key.endswith("conv.weight"):
            out[key] = torch.randn(value.shape, generator=g) * math.sqrt(2.0 / value[0].numel())
        elif key.endswith("bn.weight") or key.endswith("running_var"):
            out[key] = 0.5 + torch.rand(value.shape, generator=g)
        elif key.endswith("bn.bias") or key.endswith("running_mean") or key == "fc.bias":
            out[key] = 0.1 * torch.randn(value.shape, generator=g)
        elif key == "fc.weight":
            out[key] = torch.randn(value.shape, generator=g) / math.sqrt(value.shape[1])
        else:
            raise KeyError(key)
    return out


def _wheel_dir() -> str:
    base = os.environ.get("GANMETRICS_TEST_CACHE") or os.path.join(os.path.expanduser("~"), ".cache",
                                                                    "ganmetrics-tests")
    return os.path.join(base, f"torchvision-{TORCHVISION_VERSION}")


def torchvision_folder() -> str:
    """The unpacked torchvision wheel's package folder, downloading it on first use; skips when impossible."""
    root = _wheel_dir()
    pkg = os.path.join(root, "unpacked", "torchvision")
    if os.path.isfile(os.path.join(pkg, "models", "inception.py")):
        return pkg
    os.makedirs(root, exist_ok=True)
    wheels = glob.glob(os.path.join(root, "torchvision-*.whl"))
    if not wheels:
        proc = subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--quiet",
                               f"torchvision=={TORCHVISION_VERSION}", "-d", root],
                              capture_output=True, text=True, timeout=300)
        wheels = glob.glob(os.path.join(root, "torchvision-*.whl"))
        if proc.returncode != 0 or not wheels:
            pytest.skip(f"torchvision {TORCHVISION_VERSION}'s wheel could not be downloaded (pytorch-fid and clean-fid "
                        f"need its Python modules): {proc.stderr.strip()[-300:]}")
    tmp = os.path.join(root, f"unpacked.{os.getpid()}")
    with zipfile.ZipFile(wheels[0]) as zf:
        members = [m for m in zf.namelist() if m.startswith("torchvision/") and m.endswith(".py")]
        zf.extractall(tmp, members)
    with contextlib.suppress(OSError):
        os.rename(tmp, os.path.join(root, "unpacked"))
    return pkg


@contextlib.contextmanager
def real_torchvision():
    """torchvision's Python modules (no compiled ops) as ``torchvision`` inside the block; the previous
    ``torchvision`` entries of sys.modules come back afterwards."""
    folder = torchvision_folder()
    saved = {k: v for k, v in sys.modules.items() if k == "torchvision" or k.startswith("torchvision.")}
    for k in saved:
        del sys.modules[k]
    module = types.ModuleType("torchvision")
    module.__path__ = [folder]
    module.__version__ = TORCHVISION_VERSION
    sys.modules["torchvision"] = module
    try:
        yield module
    finally:
        for k in [k for k in sys.modules if k == "torchvision" or k.startswith("torchvision.")]:
            del sys.modules[k]
        sys.modules.update(saved)


def fresh_import(name: str):
    """Import ``name`` anew, with its whole package (so that every module of it binds the torchvision in
    sys.modules now, not one imported earlier with the stand-in)."""
    import importlib

    top = name.split(".")[0]
    for k in [k for k in sys.modules if k == top or k.startswith(top + ".")]:
        del sys.modules[k]
    return importlib.import_module(name)
