"""Feature extractors: images in, feature vectors out.

- ``"inception-v3"``: the FID Inception (:mod:`ganmetrics.extractors.inception`), pool3 features and the
  Inception Score's logits from one pass, with a ``resize`` convention (:mod:`.preprocess`);
- ``"digits"``: the embedded 8x8 digits classifier's 64-d features;
- ``"clip-vit-l-14-336"`` (CMMD), ``"clip-vit-b-32"`` (clean-fid's CLIP FID), ``"dinov2-vit-l-14"`` (FD_DINOv2):
  optional extras, see :mod:`ganmetrics.extractors.foundation`;
- any ``torch.nn.Module`` or callable mapping a batch of images to features, wrapped by
  :class:`ModuleExtractor` with the name the statistics file records;
- on the command line also ``FILE.py:NAME``, a module or callable defined in a Python file.

An extractor exposes ``name`` (recorded in statistics), ``identity`` (name plus weights hash and
preprocessing: the feature cache's key), ``channels``, ``prepare(img)`` (one uint8 (H, W, C) image ->
input tensor, run in the data-loading workers) and ``__call__(batch)`` -> (features, logits or None).
"""

from __future__ import annotations

import copy
import functools
import hashlib
import importlib.util
import os
from typing import Any, Callable

import numpy as np
import torch
import torch.nn.functional as F

from ganmetrics.extractors import preprocess as _pre

__all__ = ["InceptionExtractor", "ModuleExtractor", "get_extractor", "EXTRACTOR_NAMES"]

EXTRACTOR_NAMES = ("inception-v3", "digits", "clip-vit-l-14-336", "clip-vit-b-32", "dinov2-vit-l-14")


class InceptionExtractor:
    """The FID Inception with weights found as :func:`ganmetrics.extractors.inception.locate_weights` says."""

    channels = 3

    def __init__(self, weights: str | os.PathLike | None = None, resize: str | None = None, device: str = "cpu",
                 *, download: bool = True, state_dict: dict | None = None):
        from ganmetrics.extractors import inception as inc

        self.resize = _pre.check_convention(resize)
        if state_dict is not None:
            source, digest = "state_dict", _state_digest(state_dict)
            net = inc.build_network(state_dict, "state_dict")
        else:
            path, digest = inc.locate_weights(weights, download=download)
            net = inc.build_network(inc.load_state(path), path)
            source = path
        self.weights, self.weights_sha256 = source, digest
        self.has_logits = net.fc is not None
        self.net = inc.fold_batch_norm(net).to(device).eval()
        if not str(device).startswith("cuda"):  # oneDNN's convolutions run faster on channels-last tensors
            self.net = self.net.to(memory_format=torch.channels_last)
        self.device = device
        self.dim = inc.POOL3_DIM
        self.name = f"{inc.NAME}:pool3:{self.resize}"
        self.identity = f"{self.name}:weights-sha256={digest}"
        self.prepare = functools.partial(_pre.preprocess, resize=self.resize)

    def __call__(self, batch: torch.Tensor):
        with torch.inference_mode():
            return self.net(batch.to(self.device, non_blocking=True))


def _state_digest(state: dict) -> str:
    h = hashlib.sha256()
    for key in sorted(state):
        value = state[key]
        h.update(key.encode())
        if torch.is_tensor(value):
            h.update(value.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def _prepare_plain(img: np.ndarray, size: tuple[int, int] | None) -> torch.Tensor:
    x = torch.from_numpy(np.ascontiguousarray(img)).permute(2, 0, 1).float().div(255)
    if size is not None and tuple(x.shape[1:]) != tuple(size):
        x = F.interpolate(x[None], size=size, mode="bilinear", align_corners=False, antialias=True)[0]
    return x


class ModuleExtractor:
    """Any ``torch.nn.Module`` or callable as an extractor.

    ``model`` receives a float32 batch (n, channels, H, W) with values in [0, 1] (after ``transform``, if
    given) on ``device`` and returns features (n, d) (further dimensions are flattened). Images are resized
    to ``size`` (bilinear, antialiased) when given; without it all images must share one size. ``name`` is
    recorded in statistics files and keys the feature cache: change it when the model changes."""

    def __init__(self, model: Callable, name: str, *, channels: int = 3, size: tuple[int, int] | None = None,
                 transform: Callable | None = None, device: str = "cpu"):
        if not callable(model):
            raise TypeError(f"extractor must be a torch.nn.Module or a callable, got {type(model).__name__}")
        if not isinstance(name, str) or not name:
            raise ValueError("a custom extractor needs a name (extractor_name=...) for the statistics file")
        if channels not in (1, 3):
            raise ValueError(f"channels must be 1 or 3, got {channels!r}")
        self.model = model.to(device).eval() if isinstance(model, torch.nn.Module) else model
        self.name = self.identity = name
        self.channels = channels
        self.transform = transform
        self.device = device
        self.has_logits = False
        self.prepare = functools.partial(_prepare_plain, size=tuple(size) if size is not None else None)

    def __call__(self, batch: torch.Tensor):
        batch = batch.to(self.device, non_blocking=True)
        if self.transform is not None:
            batch = self.transform(batch)
        with torch.inference_mode():
            out = self.model(batch)
        if not torch.is_tensor(out):
            out = torch.as_tensor(np.asarray(out))
        if out.ndim < 2 or out.shape[0] != batch.shape[0]:
            raise ValueError(f"extractor {self.name!r} returned shape {tuple(out.shape)} for a batch of "
                             f"{batch.shape[0]} images; expected (batch, features)")
        return out.reshape(out.shape[0], -1), None


def _digits(device: str) -> ModuleExtractor:
    from ganmetrics.extractors.digits import NAME, default_extractor


    net = copy.deepcopy(default_extractor().model).to(device)
    return ModuleExtractor(net.features, NAME, channels=1, size=(8, 8), transform=lambda x: 2 * x - 1,
                           device=device)


def _where(exc: BaseException, path: str) -> str:
    """"line N: " of the deepest frame of ``exc`` in the user's file ``path`` (a SyntaxError's own line)."""
    if isinstance(exc, SyntaxError) and exc.lineno:
        return f"line {exc.lineno}: "
    line = None
    tb = exc.__traceback__
    while tb is not None:
        if os.path.abspath(tb.tb_frame.f_code.co_filename) == os.path.abspath(path):
            line = tb.tb_lineno
        tb = tb.tb_next
    return f"line {line}: " if line else ""


def _from_file(spec: str, device: str) -> ModuleExtractor:
    path, _, attr = spec.rpartition(":")
    if not os.path.isfile(path):
        raise FileNotFoundError(f"extractor: no such file: {path}")
    module_spec = importlib.util.spec_from_file_location(f"_ganmetrics_extractor_{abs(hash(path))}", path)
    if module_spec is None or module_spec.loader is None:
        raise ValueError(f"extractor: {path} is not a Python file that can be imported")
    module = importlib.util.module_from_spec(module_spec)
    try:
        module_spec.loader.exec_module(module)
    except Exception as exc:  # the user's file: any error in it is named, with where it happened
        raise ValueError(f"extractor: importing {path} failed ({_where(exc, path)}{type(exc).__name__}: {exc})") from None
    if not hasattr(module, attr):
        raise ValueError(f"extractor: {path} defines no {attr!r}")
    obj = getattr(module, attr)
    if isinstance(obj, type) and issubclass(obj, torch.nn.Module):
        try:
            obj = obj()
        except Exception as exc:
            raise ValueError(f"extractor: {path}:{attr}() failed ({_where(exc, path)}{type(exc).__name__}: {exc})") from None
    size = getattr(obj, "input_size", None)
    channels = getattr(obj, "input_channels", 3)
    return ModuleExtractor(obj, f"{os.path.basename(path)}:{attr}", channels=channels, size=size, device=device)


def _check_device(device: Any) -> str:
    """A device torch can run the network on, or a ValueError saying why not."""
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ValueError(f"device must be 'cpu', 'cuda' or 'cuda:N', got {device!r} ({exc})") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device={device!r} but torch {torch.__version__} sees no CUDA device; use device='cpu'")
    if dev.type not in ("cpu", "cuda"):
        raise ValueError(f"device must be 'cpu', 'cuda' or 'cuda:N', got {device!r}")
    return str(dev)


def get_extractor(extractor: Any = None, *, resize: str | None = None, weights: Any = None, device: str | None = None,
                  extractor_name: str | None = None):
    """An extractor from a name (``"inception-v3"``, ``"digits"``), ``FILE.py:NAME``, an extractor object, or a
    module/callable (with ``extractor_name``). ``resize`` and ``weights`` apply to the Inception only."""
    device = _check_device(device or "cpu")
    if extractor is None:
        extractor = "inception-v3"
    if hasattr(extractor, "prepare") and hasattr(extractor, "identity"):  # built before: resize, weights and
        return extractor                                                  # device were applied then
    if isinstance(extractor, str):
        if extractor != "inception-v3" and resize is not None:
            raise ValueError(f"resize applies to the inception-v3 extractor, not {extractor!r}")
        if extractor in ("digits",) or extractor.endswith(".py") or ".py:" in extractor:
            if weights is not None:
                raise ValueError(f"weights apply to the inception-v3, CLIP and DINOv2 extractors, not {extractor!r}")
        if extractor == "inception-v3":
            return InceptionExtractor(weights, resize, device)
        if extractor == "digits":
            return _digits(device)
        if extractor.startswith(("clip-", "dinov2-")) and extractor in EXTRACTOR_NAMES:
            from ganmetrics.extractors import foundation

            return foundation.build(extractor, weights, device)
        if extractor.endswith(".py") or ".py:" in extractor:
            if ":" not in extractor:
                raise ValueError(f"extractor {extractor!r}: name the object too, as FILE.py:NAME")
            return _from_file(extractor, device)
        raise ValueError(f"extractor must be one of {', '.join(EXTRACTOR_NAMES)}, FILE.py:NAME, a torch.nn.Module "
                         f"or a callable; got {extractor!r}")
    if callable(extractor):
        if resize is not None or weights is not None:
            raise ValueError("resize and weights apply to the inception-v3 extractor, not to a custom one")
        return ModuleExtractor(extractor, extractor_name, device=device)
    raise TypeError(f"extractor must be a name, a torch.nn.Module or a callable, got {type(extractor).__name__}")
