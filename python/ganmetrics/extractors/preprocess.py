"""How an image becomes the Inception's 299 x 299 input: four conventions, each named after the tool it reproduces.

Every function takes one RGB image as a uint8 numpy array (H, W, 3) and returns a float32 tensor
(3, 299, 299) in the network's input range [-1, 1]:

- ``legacy_tensorflow`` (the default): TensorFlow 1's bilinear resize (``align_corners=False``, no
  antialiasing) on the 0-255 values, then ``(x - 128) / 128`` as in the TF graph. This is what TTUR's
  original FID code, the StyleGAN papers, torch-fidelity and torchmetrics compute, so it is the convention
  behind most published FIDs; torch-fidelity's ``interpolate_bilinear_2d_like_tensorflow1x``.
- ``legacy_pytorch``: pytorch-fid's path: ``x / 255``, ``F.interpolate(bilinear, align_corners=False)``,
  ``2x - 1``; also clean-fid's ``mode="legacy_pytorch"``.
- ``torchmetrics``: torchmetrics' ``FrechetInceptionDistance`` default (``antialias=True``): torch's bilinear
  resize with antialiasing on the 0-255 values, then ``(x - 128) / 128`` (equal to ``legacy_tensorflow``'s
  network input only when the image is already 299 x 299).
- ``clean``: clean-fid's ``mode="clean"``: each channel resized as a float image with PIL's bicubic filter
  (antialiased when shrinking), clipped to 0-255, then ``(x - 128) / 128``. Use it for new numbers that need
  not match older papers: with ``torchmetrics``, the only ones that do not alias when downsampling.

Statistics record the convention that made them, and FID refuses to compare two that differ unless forced.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

SIZE = 299
CONVENTIONS = ("legacy_tensorflow", "legacy_pytorch", "torchmetrics", "clean")
DEFAULT = "legacy_tensorflow"
PEER_OF = {
    "legacy_tensorflow": "torch-fidelity / torchmetrics / TTUR (TensorFlow 1 bilinear)",
    "legacy_pytorch": "pytorch-fid (torch bilinear)",
    "torchmetrics": "torchmetrics FrechetInceptionDistance, antialias=True (torch bilinear, antialiased)",
    "clean": "clean-fid mode='clean' (PIL bicubic, antialiased)",
}


def check_convention(resize: object) -> str:
    if resize is None:
        return DEFAULT
    if resize not in CONVENTIONS:
        raise ValueError(f"resize must be one of {', '.join(CONVENTIONS)}, got {resize!r}")
    return str(resize)


def tf1_bilinear(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """TensorFlow 1.x ``resize_bilinear(align_corners=False)`` of a float (n, c, h, w) tensor: source
    coordinate ``dst * in / out``, truncated, neighbour clamped at the border, float32 weights."""
    out_h, out_w = size
    in_h, in_w = x.shape[2], x.shape[3]

    def grid(n_out: int, n_in: int):
        g = torch.arange(0, n_out, 1, dtype=x.dtype) * torch.tensor(n_in / n_out, dtype=torch.float32)
        lo = g.long()
        hi = (lo + 1).clamp_max(n_in - 1)
        return lo, hi, g - lo.float()

    xl, xh, dx = grid(out_w, in_w)
    yl, yh, dy = grid(out_h, in_h)
    top, bottom = x[:, :, yl, :], x[:, :, yh, :]
    in_00, in_01 = top[:, :, :, xl], top[:, :, :, xh]
    in_10, in_11 = bottom[:, :, :, xl], bottom[:, :, :, xh]
    in_0 = in_00 + (in_01 - in_00) * dx.view(1, 1, 1, out_w)
    in_1 = in_10 + (in_11 - in_10) * dx.view(1, 1, 1, out_w)
    return in_0 + (in_1 - in_0) * dy.view(1, 1, out_h, 1)


def _legacy_tensorflow(img: np.ndarray) -> torch.Tensor:
    x = torch.from_numpy(np.array(img, dtype=np.uint8)).permute(2, 0, 1)[None].to(torch.float32)
    x = tf1_bilinear(x, (SIZE, SIZE))
    return ((x - 128) / 128)[0]


def _legacy_pytorch(img: np.ndarray) -> torch.Tensor:
    x = torch.from_numpy(np.array(img, dtype=np.uint8)).permute(2, 0, 1).contiguous()[None].float().div(255)
    # torch's bilinear upsampling rounds differently with more than one thread: run it on one, so that the
    # features do not depend on how many decoding workers there are (workers already run on one thread)
    threads = torch.get_num_threads()
    if threads != 1:
        torch.set_num_threads(1)
    try:
        x = F.interpolate(x, size=(SIZE, SIZE), mode="bilinear", align_corners=False)
    finally:
        if threads != 1:
            torch.set_num_threads(threads)
    return (2 * x - 1)[0]


def _torchmetrics(img: np.ndarray) -> torch.Tensor:
    x = torch.from_numpy(np.array(img, dtype=np.uint8)).permute(2, 0, 1)[None].to(torch.float32)
    x = F.interpolate(x, size=(SIZE, SIZE), mode="bilinear", align_corners=False, antialias=True)
    return ((x - 128) / 128)[0]


def _clean(img: np.ndarray) -> torch.Tensor:
    from PIL import Image

    channels = []
    for c in range(3):
        plane = Image.fromarray(img[:, :, c].astype(np.float32), mode="F")
        plane = plane.resize((SIZE, SIZE), resample=Image.BICUBIC)
        channels.append(np.asarray(plane).clip(0, 255))
    x = torch.from_numpy(np.stack(channels).astype(np.float32))
    return (x - 128) / 128


_FUNCTIONS = {"legacy_tensorflow": _legacy_tensorflow, "legacy_pytorch": _legacy_pytorch,
              "torchmetrics": _torchmetrics, "clean": _clean}


def preprocess(img: np.ndarray, resize: str) -> torch.Tensor:
    """One uint8 (H, W, 3) image -> float32 (3, 299, 299) network input, by the named convention."""
    return _FUNCTIONS[resize](img)
