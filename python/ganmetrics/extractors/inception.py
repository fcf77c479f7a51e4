"""The FID Inception network: the TensorFlow graph of 2015-12-05 as pytorch-fid and torch-fidelity port it.

One forward pass gives ``pool3`` (2048-d, the features of FID, KID and PRDC) and ``logits_unbiased``
(1008-d, pool3 times the final layer's weights without its bias, which is what the original Inception
Score code reads from the TF graph). The blocks carry the TF graph's two quirks that torchvision's
Inception lacks: average pooling that does not count padding, and max pooling in the last block.

Weights: the ``2015-12-05-6726825d`` file pytorch-fid and torch-fidelity download. Either file loads,
and so does the state dict of pytorch-fid's ``InceptionV3`` wrapper (``blocks.N.M.`` keys, no final
layer: pool3 only). Loading never unpickles (``torch.load(weights_only=True)``).

For inference the batch-norm layers are folded into their convolutions (``fold_batch_norm``): the
same function, fewer passes over memory; the features agree with the unfolded network to float32
rounding (about 1e-6 relative).
"""

from __future__ import annotations

import os
import re
import tempfile
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from ganmetrics._io import sha256_file as sha256_of
from ganmetrics._torch_files import load_data

NAME = "inception-v3-tf-2015-12-05"
POOL3_DIM = 2048
LOGITS_DIM = 1008


# --------------------------------------------------------------------------------------------- network


class BasicConv2d(nn.Module):
    def __init__(self, cin: int, cout: int, **kw):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, bias=False, **kw)
        self.bn = nn.BatchNorm2d(cout, eps=0.001)

    def forward(self, x):
        return F.relu(self.bn(self.conv(x)))


class FoldedConv2d(nn.Module):
    """A BasicConv2d with its batch norm folded into the convolution's weight and bias."""

    def __init__(self, block: BasicConv2d):
        super().__init__()
        conv, bn = block.conv, block.bn
        scale = (bn.weight.double() / torch.sqrt(bn.running_var.double() + bn.eps))
        weight = conv.weight.double() * scale.view(-1, 1, 1, 1)
        bias = bn.bias.double() - bn.running_mean.double() * scale
        self.conv = nn.Conv2d(conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride, conv.padding,
                              bias=True)
        with torch.no_grad():
            self.conv.weight.copy_(weight.float())
            self.conv.bias.copy_(bias.float())

    def forward(self, x):
        return F.relu(self.conv(x))


def _avg_pool_tf(x):
    return F.avg_pool2d(x, kernel_size=3, stride=1, padding=1, count_include_pad=False)


class InceptionA(nn.Module):
    def __init__(self, cin: int, pool_features: int):
        super().__init__()
        self.branch1x1 = BasicConv2d(cin, 64, kernel_size=1)
        self.branch5x5_1 = BasicConv2d(cin, 48, kernel_size=1)
        self.branch5x5_2 = BasicConv2d(48, 64, kernel_size=5, padding=2)
        self.branch3x3dbl_1 = BasicConv2d(cin, 64, kernel_size=1)
        self.branch3x3dbl_2 = BasicConv2d(64, 96, kernel_size=3, padding=1)
        self.branch3x3dbl_3 = BasicConv2d(96, 96, kernel_size=3, padding=1)
        self.branch_pool = BasicConv2d(cin, pool_features, kernel_size=1)

    def forward(self, x):
        b1 = self.branch1x1(x)
        b5 = self.branch5x5_2(self.branch5x5_1(x))
        b3 = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        bp = self.branch_pool(_avg_pool_tf(x))
        return torch.cat([b1, b5, b3, bp], 1)


class InceptionB(nn.Module):
    def __init__(self, cin: int):
        super().__init__()
        self.branch3x3 = BasicConv2d(cin, 384, kernel_size=3, stride=2)
        self.branch3x3dbl_1 = BasicConv2d(cin, 64, kernel_size=1)
        self.branch3x3dbl_2 = BasicConv2d(64, 96, kernel_size=3, padding=1)
        self.branch3x3dbl_3 = BasicConv2d(96, 96, kernel_size=3, stride=2)

    def forward(self, x):
        b3 = self.branch3x3(x)
        bd = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        return torch.cat([b3, bd, F.max_pool2d(x, kernel_size=3, stride=2)], 1)


class InceptionC(nn.Module):
    def __init__(self, cin: int, c7: int):
        super().__init__()
        self.branch1x1 = BasicConv2d(cin, 192, kernel_size=1)
        self.branch7x7_1 = BasicConv2d(cin, c7, kernel_size=1)
        self.branch7x7_2 = BasicConv2d(c7, c7, kernel_size=(1, 7), padding=(0, 3))
        self.branch7x7_3 = BasicConv2d(c7, 192, kernel_size=(7, 1), padding=(3, 0))
        self.branch7x7dbl_1 = BasicConv2d(cin, c7, kernel_size=1)
        self.branch7x7dbl_2 = BasicConv2d(c7, c7, kernel_size=(7, 1), padding=(3, 0))
        self.branch7x7dbl_3 = BasicConv2d(c7, c7, kernel_size=(1, 7), padding=(0, 3))
        self.branch7x7dbl_4 = BasicConv2d(c7, c7, kernel_size=(7, 1), padding=(3, 0))
        self.branch7x7dbl_5 = BasicConv2d(c7, 192, kernel_size=(1, 7), padding=(0, 3))
        self.branch_pool = BasicConv2d(cin, 192, kernel_size=1)

    def forward(self, x):
        b1 = self.branch1x1(x)
        b7 = self.branch7x7_3(self.branch7x7_2(self.branch7x7_1(x)))
        bd = self.branch7x7dbl_1(x)
        for layer in (self.branch7x7dbl_2, self.branch7x7dbl_3, self.branch7x7dbl_4, self.branch7x7dbl_5):
            bd = layer(bd)
        bp = self.branch_pool(_avg_pool_tf(x))
        return torch.cat([b1, b7, bd, bp], 1)


class InceptionD(nn.Module):
    def __init__(self, cin: int):
        super().__init__()
        self.branch3x3_1 = BasicConv2d(cin, 192, kernel_size=1)
        self.branch3x3_2 = BasicConv2d(192, 320, kernel_size=3, stride=2)
        self.branch7x7x3_1 = BasicConv2d(cin, 192, kernel_size=1)
        self.branch7x7x3_2 = BasicConv2d(192, 192, kernel_size=(1, 7), padding=(0, 3))
        self.branch7x7x3_3 = BasicConv2d(192, 192, kernel_size=(7, 1), padding=(3, 0))
        self.branch7x7x3_4 = BasicConv2d(192, 192, kernel_size=3, stride=2)

    def forward(self, x):
        b3 = self.branch3x3_2(self.branch3x3_1(x))
        b7 = self.branch7x7x3_4(self.branch7x7x3_3(self.branch7x7x3_2(self.branch7x7x3_1(x))))
        return torch.cat([b3, b7, F.max_pool2d(x, kernel_size=3, stride=2)], 1)


class InceptionE(nn.Module):
    """``max_pool``: the graph's last block pools with max instead of average (pytorch-fid's FIDInceptionE_2)."""

    def __init__(self, cin: int, max_pool: bool):
        super().__init__()
        self.max_pool = max_pool
        self.branch1x1 = BasicConv2d(cin, 320, kernel_size=1)
        self.branch3x3_1 = BasicConv2d(cin, 384, kernel_size=1)
        self.branch3x3_2a = BasicConv2d(384, 384, kernel_size=(1, 3), padding=(0, 1))
        self.branch3x3_2b = BasicConv2d(384, 384, kernel_size=(3, 1), padding=(1, 0))
        self.branch3x3dbl_1 = BasicConv2d(cin, 448, kernel_size=1)
        self.branch3x3dbl_2 = BasicConv2d(448, 384, kernel_size=3, padding=1)
        self.branch3x3dbl_3a = BasicConv2d(384, 384, kernel_size=(1, 3), padding=(0, 1))
        self.branch3x3dbl_3b = BasicConv2d(384, 384, kernel_size=(3, 1), padding=(1, 0))
        self.branch_pool = BasicConv2d(cin, 192, kernel_size=1)

    def forward(self, x):
        b1 = self.branch1x1(x)
        b3 = self.branch3x3_1(x)
        b3 = torch.cat([self.branch3x3_2a(b3), self.branch3x3_2b(b3)], 1)
        bd = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
        bd = torch.cat([self.branch3x3dbl_3a(bd), self.branch3x3dbl_3b(bd)], 1)
        pooled = F.max_pool2d(x, kernel_size=3, stride=1, padding=1) if self.max_pool else _avg_pool_tf(x)
        return torch.cat([b1, b3, bd, self.branch_pool(pooled)], 1)


class FIDInceptionV3(nn.Module):
    """Input: (n, 3, 299, 299) float32 in [-1, 1] (see ``ganmetrics.extractors.preprocess``).
    Output: (pool3 (n, 2048), logits_unbiased (n, 1008) or None when the weights have no final layer)."""

    def __init__(self, with_fc: bool = True):
        super().__init__()
        self.Conv2d_1a_3x3 = BasicConv2d(3, 32, kernel_size=3, stride=2)
        self.Conv2d_2a_3x3 = BasicConv2d(32, 32, kernel_size=3)
        self.Conv2d_2b_3x3 = BasicConv2d(32, 64, kernel_size=3, padding=1)
        self.Conv2d_3b_1x1 = BasicConv2d(64, 80, kernel_size=1)
        self.Conv2d_4a_3x3 = BasicConv2d(80, 192, kernel_size=3)
        self.Mixed_5b = InceptionA(192, 32)
        self.Mixed_5c = InceptionA(256, 64)
        self.Mixed_5d = InceptionA(288, 64)
        self.Mixed_6a = InceptionB(288)
        self.Mixed_6b = InceptionC(768, 128)
        self.Mixed_6c = InceptionC(768, 160)
        self.Mixed_6d = InceptionC(768, 160)
        self.Mixed_6e = InceptionC(768, 192)
        self.Mixed_7a = InceptionD(768)
        self.Mixed_7b = InceptionE(1280, max_pool=False)
        self.Mixed_7c = InceptionE(2048, max_pool=True)
        self.fc = nn.Linear(POOL3_DIM, LOGITS_DIM) if with_fc else None

    def forward(self, x):
        x = self.Conv2d_2b_3x3(self.Conv2d_2a_3x3(self.Conv2d_1a_3x3(x)))
        x = F.max_pool2d(x, kernel_size=3, stride=2)
        x = self.Conv2d_4a_3x3(self.Conv2d_3b_1x1(x))
        x = F.max_pool2d(x, kernel_size=3, stride=2)
        for block in (self.Mixed_5b, self.Mixed_5c, self.Mixed_5d, self.Mixed_6a, self.Mixed_6b, self.Mixed_6c,
                      self.Mixed_6d, self.Mixed_6e, self.Mixed_7a, self.Mixed_7b, self.Mixed_7c):
            x = block(x)
        pool3 = torch.flatten(F.adaptive_avg_pool2d(x, (1, 1)), 1)
        logits = pool3 @ self.fc.weight.T if self.fc is not None else None
        return pool3, logits


def fold_batch_norm(model: nn.Module) -> nn.Module:
    """Replace every BasicConv2d by its folded equivalent, in place (inference only)."""
    for name, child in list(model.named_children()):
        if isinstance(child, BasicConv2d):
            setattr(model, name, FoldedConv2d(child))
        else:
            fold_batch_norm(child)
    return model


# ------------------------------------------------------------------------------------- state dict layouts

# pytorch-fid's InceptionV3 wrapper stores the same layers under ``blocks.<block>.<position>``
_WRAPPER_BLOCKS = {
    0: ["Conv2d_1a_3x3", "Conv2d_2a_3x3", "Conv2d_2b_3x3", None],
    1: ["Conv2d_3b_1x1", "Conv2d_4a_3x3", None],
    2: ["Mixed_5b", "Mixed_5c", "Mixed_5d", "Mixed_6a", "Mixed_6b", "Mixed_6c", "Mixed_6d", "Mixed_6e"],
    3: ["Mixed_7a", "Mixed_7b", "Mixed_7c", None],
}
_WRAPPER_KEY = re.compile(r"^blocks\.(\d+)\.(\d+)\.(.*)$")


def canonical_state_dict(state: dict, source: str) -> dict:
    """Map a state dict in pytorch-fid's, torch-fidelity's or pytorch-fid's wrapper layout (optionally under
    DataParallel's ``module.``) onto this network's names. ``num_batches_tracked`` and torchvision's
    auxiliary classifier (``AuxLogits.*``) are dropped; anything else unknown is an error naming the key."""
    if not isinstance(state, dict) or not state:
        raise ValueError(f"{source}: not a state dict (a mapping of parameter names to tensors)")
    if "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    out = {}
    for key, value in state.items():
        if not isinstance(key, str) or not torch.is_tensor(value):
            raise ValueError(f"{source}: entry {key!r} is not a named tensor")
        if key.startswith("module."):
            key = key[len("module."):]
        match = _WRAPPER_KEY.match(key)
        if match:
            block, pos, rest = int(match.group(1)), int(match.group(2)), match.group(3)
            names = _WRAPPER_BLOCKS.get(block, [])
            if pos >= len(names) or names[pos] is None:
                raise ValueError(f"{source}: unexpected key {key!r} for pytorch-fid's InceptionV3 layout")
            key = f"{names[pos]}.{rest}"
        if key.endswith("num_batches_tracked") or key.startswith("AuxLogits."):
            continue
        out[key] = value
    return out


def build_network(state: dict, source: str) -> FIDInceptionV3:
    """A FIDInceptionV3 holding ``state`` (any supported layout), checked key by key and shape by shape."""
    state = canonical_state_dict(state, source)
    with_fc = "fc.weight" in state
    model = FIDInceptionV3(with_fc=with_fc)
    expected = {k: v for k, v in model.state_dict().items() if not k.endswith("num_batches_tracked")}
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"missing {len(missing)} keys (first: {missing[0]!r})")
        if unexpected:
            parts.append(f"{len(unexpected)} unknown keys (first: {unexpected[0]!r})")
        raise ValueError(f"{source}: not the FID Inception weights: " + ", ".join(parts))
    for key, value in state.items():
        if tuple(value.shape) != tuple(expected[key].shape):
            raise ValueError(f"{source}: {key!r} has shape {tuple(value.shape)}, expected {tuple(expected[key].shape)}")
    model.load_state_dict({k: v.float() for k, v in state.items()}, strict=False)
    return model.eval()


# ---------------------------------------------------------------------------------------------- weights


@dataclass(frozen=True)
class WeightsFile:
    """A published weights file: its name, the URL its peer downloads it from, and the SHA-256 prefix
    that names it (torch.hub's ``name-<first hex digits of the SHA-256>.ext`` convention)."""

    filename: str
    url: str
    peer: str

    @property
    def sha256_prefix(self) -> str:
        return re.search(r"-([0-9a-f]{8,})\.", self.filename).group(1)


WEIGHTS_FILES = (
    WeightsFile("pt_inception-2015-12-05-6726825d.pth",
                "https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/"
                "pt_inception-2015-12-05-6726825d.pth", "pytorch-fid"),
    WeightsFile("weights-inception-2015-12-05-6726825d.pth",
                "https://github.com/toshas/torch-fidelity/releases/download/v0.2.0/"
                "weights-inception-2015-12-05-6726825d.pth", "torch-fidelity"),
)
WEIGHTS_ENV = "GANMETRICS_WEIGHTS_DIR"


def verify(path: str, wf: WeightsFile) -> str:
    """The file's SHA-256, after checking it starts with the prefix its name promises."""
    digest = sha256_of(path)
    if not digest.startswith(wf.sha256_prefix):
        raise ValueError(f"{path}: SHA-256 {digest} does not start with {wf.sha256_prefix}, the hash that names "
                         f"{wf.filename} ({wf.peer}'s file from {wf.url}); the file is damaged or another file. "
                         "Delete it to download it again, or pass a file you trust explicitly with weights= / --weights")
    return digest


def candidate_dirs() -> list[tuple[str, str]]:
    """(folder, how it was chosen) in lookup order after an explicit file: GANMETRICS_WEIGHTS_DIR, then torch
    hub's checkpoint folder (where pytorch-fid and torch-fidelity save these files)."""
    out = []
    if os.environ.get(WEIGHTS_ENV):
        out.append((os.environ[WEIGHTS_ENV], WEIGHTS_ENV))
    out.append((os.path.join(torch.hub.get_dir(), "checkpoints"), "torch hub's checkpoint folder"))
    return out


def locate_weights(weights: str | os.PathLike | None = None, *, download: bool = True) -> tuple[str, str]:
    """(path, SHA-256) of the Inception weights: ``weights`` if given (used as is), else the first of the
    known files in ``GANMETRICS_WEIGHTS_DIR`` or torch hub's checkpoint folder (hash checked), else a download
    of pytorch-fid's file into the first of those folders (hash checked before it is moved into place)."""
    if weights is not None:
        path = os.fspath(weights)
        if not os.path.isfile(path):
            raise FileNotFoundError(f"weights: no such file: {path}")
        return path, sha256_of(path)
    searched = []
    for folder, _ in candidate_dirs():
        for wf in WEIGHTS_FILES:
            path = os.path.join(folder, wf.filename)
            searched.append(path)
            if os.path.isfile(path):
                return path, verify(path, wf)
    wf = WEIGHTS_FILES[0]
    folder = candidate_dirs()[0][0]
    if download:
        try:
            return _download(wf, folder)
        except OSError as exc:
            reason = f"the download failed ({exc})"
    else:
        reason = "downloads are off"
    raise FileNotFoundError(
        f"Inception weights not found: looked for {' and '.join(w.filename for w in WEIGHTS_FILES)} in "
        f"{', '.join(searched)}, and {reason}. Download {wf.url} and put it in one of those folders, set "
        f"{WEIGHTS_ENV} to the folder holding it, or pass the file with weights= / --weights")


def _download(wf: WeightsFile, folder: str) -> tuple[str, str]:
    os.makedirs(folder, exist_ok=True)
    target = os.path.join(folder, wf.filename)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{wf.filename}.", suffix=".part")
    os.close(fd)
    try:
        torch.hub.download_url_to_file(wf.url, tmp, progress=True)
        digest = verify(tmp, wf)
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return target, digest


def load_state(path: str) -> dict:
    """The file's tensors, without unpickling code."""
    return load_data(path)
