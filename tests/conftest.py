"""Plain float64 numpy references shared by the tests."""

from __future__ import annotations

import importlib.util

import os

import numpy as np
import pytest
from _torchvision_stub import import_with_stub
from hypothesis import settings

# Property tests draw the same examples on every run (derandomize), so a CI failure reproduces locally, and a
# failure prints the blob that replays it. HYPOTHESIS_PROFILE=explore draws fresh random examples instead.
settings.register_profile("ci", derandomize=True, print_blob=True, deadline=None)
settings.register_profile("explore", deadline=None, print_blob=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

# torch-fidelity installed without torchvision (as the compat tests install it, with --no-deps) makes
# `import torchmetrics` fail, because torchmetrics imports torch-fidelity when it is present. Importing
# torch-fidelity once with the torchvision stand-in first keeps both importable.
if importlib.util.find_spec("torch_fidelity") is not None and importlib.util.find_spec("torchvision") is None:
    import_with_stub("torch_fidelity")


def import_peer(module: str):
    """Import a peer package's module to compare with, or skip the test saying which peer is missing."""
    top = module.split(".")[0]
    if importlib.util.find_spec(top) is None:
        pytest.skip(f"{top} is not installed (the `test` extra installs it)")
    return import_with_stub(module)


def sqdist(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Brute-force float64 squared distances, computed from differences (no norm expansion)."""
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    return ((x[:, None, :] - y[None, :, :]) ** 2).sum(-1)


def kth_radius2(x: np.ndarray, k: int) -> np.ndarray:
    d = sqdist(x, x)
    np.fill_diagonal(d, np.inf)
    return np.sort(d, axis=1)[:, k - 1]


def prdc_reference(real, fake, k):
    rr = kth_radius2(real, k)
    fr = kth_radius2(fake, k)
    d = sqdist(fake, real)  # fake x real
    inside = d <= rr[None, :]
    return {
        "precision": inside.any(axis=1).mean(),
        "recall": (d <= fr[:, None]).any(axis=0).mean(),
        "density": inside.sum() / (k * len(fake)),
        "coverage": (d.min(axis=0) <= rr).mean(),
    }


def frechet_reference(mu1, s1, mu2, s2) -> float:
    w, v = np.linalg.eigh(s1)
    root = (v * np.sqrt(np.clip(w, 0, None))) @ v.T
    m = root @ s2 @ root
    tr = np.sqrt(np.clip(np.linalg.eigvalsh(0.5 * (m + m.T)), 0, None)).sum()
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * tr)


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


def frechet_truth(x, y) -> tuple[float, float]:
    """The float64 Fréchet distance of two feature sets and its tolerance scale, exact also for n <= d.

    The scale is tr S1 + tr S2, plus 1e-4 * (|mu1|^2 + |mu2|^2) so that 1e-9 * scale also admits the float64
    rounding of the mean term (1e-13 of the squared means: means accumulated in another order differ there).

    The trace term is the nuclear norm: tr sqrt(S1^1/2 S2 S1^1/2) = ||Xc Yc^T||_* / sqrt((n1-1)(n2-1)),
    from a float64 SVD of the n1 x n2 matrix (no square roots of clipped eigenvalue noise)."""
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    xc, yc = x - x.mean(0), y - y.mean(0)
    n1, n2 = len(x), len(y)
    nuclear = np.linalg.svd(xc @ yc.T, compute_uv=False).sum() / np.sqrt((n1 - 1) * (n2 - 1))
    tr1 = float((xc * xc).sum()) / (n1 - 1)
    tr2 = float((yc * yc).sum()) / (n2 - 1)
    mx, my = x.mean(0), y.mean(0)
    dm = mx - my
    return float(dm @ dm + tr1 + tr2 - 2.0 * nuclear), tr1 + tr2 + 1e-4 * float(mx @ mx + my @ my)


@pytest.fixture(params=["host", "torch"])
def each_engine(request):
    """Runs a test once on the host engine and once on the torch engine: ``engine="auto"`` means that engine for
    every input during the test. The torch engine runs on CPU tensors, or on the device GANMETRICS_TEST_DEVICE
    names (``cuda``: scripts/gpu_check.sh runs the suites so on a GPU)."""
    if request.param == "torch":
        pytest.importorskip("torch")
    from ganmetrics.engines import forced_engine

    device = os.environ.get("GANMETRICS_TEST_DEVICE") if request.param == "torch" else None
    with forced_engine(request.param, device):
        yield request.param


def memorization_reference(train, fake, threshold=1 / 3):
    """The distance-ratio copy test by brute force: d1 the nearest training distance, d2 the nearest one farther
    than d1 (inf when none), flagged when d1 == 0 or d1 < threshold * d2 (on squared distances)."""
    d = sqdist(fake, train)
    d1 = d.min(1)
    nearest = d.argmin(1)  # numpy: the first (lowest) index of the minimum
    d2 = np.where(d > d1[:, None], d, np.inf).min(1)
    flagged = (d1 == 0) | (np.isfinite(d2) & (d1 < threshold * threshold * d2))
    return flagged, nearest, d1, d2


PEER_REPOS = os.environ.get("GANMETRICS_PEER_REPOS", "/work/.mirror")


def peer_file(repo: str, path: str, tmp_path_factory) -> str:
    """One file of a peer's repository that is not on PyPI (dgm-eval, Alaa et al.'s code), from a snapshot under
    $GANMETRICS_PEER_REPOS (``owner+name/repo``: a bare git directory, or a checkout); skips when it is absent."""
    import subprocess

    root = os.path.join(PEER_REPOS, repo.replace("/", "+"), "repo")
    if os.path.isfile(os.path.join(root, path)):
        return os.path.join(root, path)
    if not os.path.isdir(root):
        pytest.skip(f"{repo} is not here: put a snapshot of https://github.com/{repo} at {root} "
                    "(or set GANMETRICS_PEER_REPOS)")
    got = subprocess.run(["git", "--git-dir", root, "show", f"HEAD:{path}"], capture_output=True)
    if got.returncode:
        pytest.skip(f"{repo}: {path} not in the snapshot at {root}")
    out = tmp_path_factory.mktemp(repo.replace("/", "_")) / os.path.basename(path)
    out.write_bytes(got.stdout)
    return str(out)


def load_peer_module(repo: str, path: str, name: str, tmp_path_factory):
    """A peer repository's file imported as a module (its own code, run here; its global warning filters kept
    to itself)."""
    import warnings

    spec = importlib.util.spec_from_file_location(name, peer_file(repo, path, tmp_path_factory))
    module = importlib.util.module_from_spec(spec)
    with warnings.catch_warnings():
        spec.loader.exec_module(module)
    return module
