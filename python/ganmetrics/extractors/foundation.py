"""CLIP and DINOv2 image encoders (optional: ``pip install "ganmetrics[clip]"`` / ``"ganmetrics[dinov2]"``).

- ``clip-vit-l-14-336``: CMMD's encoder (Jayasumana et al. 2024), OpenAI's CLIP ViT-L/14 at 336 px, built
  by open_clip (``ViT-L-14-336``); 768-d image embeddings. Preprocessing is open_clip's for that model (bicubic
  resize of the short side to 336, centre crop, OpenAI's normalisation), not the CMMD code's own TF resize.
- ``clip-vit-b-32``: clean-fid's CLIP FID encoder (``ViT-B-32``, OpenAI weights); 512-d embeddings.
- ``dinov2-vit-l-14``: FD_DINOv2 (Stein et al. 2023), DINOv2 ViT-L/14 through timm
  (``vit_large_patch14_dinov2.lvd142m`` at 224 px); 1024-d class-token features. Preprocessing as dgm-eval's:
  bicubic resize to 224 x 224 (PIL), ImageNet normalisation.

Weights are found in the same order as the Inception's: ``weights=`` / ``--weights`` (a file: used as is),
``$GANMETRICS_WEIGHTS_DIR/<the file name below>``, torch hub's checkpoint folder (DINOv2's
``dinov2_vitl14_pretrain.pth``, where ``torch.hub.load('facebookresearch/dinov2', ...)`` saves it), then the
package's own download (open_clip / timm through the Hugging Face hub). Files are read without unpickling
(``torch.load(weights_only=True)`` or safetensors); DINOv2 files in Facebook's layout are converted by timm's
own filter. A missing file is one error naming the file, the URL and the variable.
"""

from __future__ import annotations

import importlib
import os
from dataclasses import dataclass

import numpy as np
import torch
from ganmetrics._io import sha256_file
from ganmetrics._torch_files import load_data


@dataclass(frozen=True)
class FoundationModel:
    name: str
    package: str  # open_clip or timm
    arch: str
    pretrained: str
    filename: str
    url: str
    dim: int
    extra: str


MODELS = {
    "clip-vit-l-14-336": FoundationModel("clip-vit-l-14-336", "open_clip", "ViT-L-14-336", "openai",
                                         "clip-vit-l-14-336.bin",
                                         "https://huggingface.co/timm/vit_large_patch14_clip_336.openai", 768, "clip"),
    "clip-vit-b-32": FoundationModel("clip-vit-b-32", "open_clip", "ViT-B-32", "openai", "clip-vit-b-32.bin",
                                     "https://huggingface.co/timm/vit_base_patch32_clip_224.openai", 512, "clip"),
    "dinov2-vit-l-14": FoundationModel("dinov2-vit-l-14", "timm", "vit_large_patch14_dinov2.lvd142m", "lvd142m",
                                       "dinov2_vitl14_pretrain.pth",
                                       "https://dl.fbaipublicfiles.com/dinov2/dinov2_vitl14/dinov2_vitl14_pretrain.pth",
                                       1024, "dinov2"),
}
IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


def _import(spec: FoundationModel):
    try:
        return importlib.import_module(spec.package)
    except ImportError as exc:
        raise ImportError(f"the {spec.name} extractor needs {spec.package}: pip install \"ganmetrics[{spec.extra}]\" "
                          f"({exc})") from None


def read_state(path: str) -> dict:
    """Tensors of a weights file (.safetensors, or a torch file read with weights_only=True)."""
    if path.endswith(".safetensors"):
        from safetensors.torch import load_file

        try:
            return load_file(path)
        except Exception as exc:  # damaged, not a safetensors file
            raise ValueError(f"{path}: cannot be read as a weights file ({type(exc).__name__}: {exc})") from None
    state = load_data(path, "a weights file")
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise ValueError(f"{path}: not a state dict")
    return state


def _local_file(spec: FoundationModel, weights) -> str | None:
    from ganmetrics.extractors.inception import candidate_dirs

    if weights is not None:
        path = os.fspath(weights)
        if not os.path.isfile(path):
            raise FileNotFoundError(f"weights: no such file: {path}")
        return path
    for folder, _ in candidate_dirs():  # the Inception's lookup order
        path = os.path.join(folder, spec.filename)
        if os.path.isfile(path):
            return path
    return None


def _missing(spec: FoundationModel, exc: Exception) -> FileNotFoundError:
    from ganmetrics.extractors.inception import WEIGHTS_ENV

    return FileNotFoundError(
        f"{spec.name} weights not found: no {spec.filename} in ${WEIGHTS_ENV} or torch hub's checkpoint folder, and "
        f"{spec.package}'s download failed ({type(exc).__name__}: {exc}). Get them from {spec.url}, save them as "
        f"{spec.filename} in a folder named by {WEIGHTS_ENV}, or pass the file with weights= / --weights")


def _digest(path: str | None, spec: FoundationModel) -> str:
    return sha256_file(path) if path else f"{spec.package}:{spec.arch}:{spec.pretrained}"


class CLIPExtractor:
    channels = 3
    has_logits = False

    def __init__(self, name: str, weights=None, device: str = "cpu"):
        spec = MODELS[name]
        open_clip = _import(spec)
        path = _local_file(spec, weights)
        try:
            model, _, preprocess = open_clip.create_model_and_transforms(spec.arch, pretrained=None if path else
                                                                         spec.pretrained)
        except Exception as exc:  # the hub download: network, permissions, missing files
            raise _missing(spec, exc) from None
        if path:
            missing, unexpected = model.load_state_dict(read_state(path), strict=False)
            if missing or unexpected:
                raise ValueError(f"{path}: not {spec.name} weights ({len(missing)} missing keys, {len(unexpected)} "
                                 "unknown)")
        self.model = model.to(device).eval()
        self.device = device
        self.dim = spec.dim
        self.name = f"{spec.name}:{spec.pretrained}"
        self.identity = f"{self.name}:weights-sha256={_digest(path, spec)}"
        self.prepare = _PILTransform(preprocess)

    def __call__(self, batch: torch.Tensor):
        with torch.inference_mode():
            return self.model.encode_image(batch.to(self.device)).float(), None


class _PILTransform:
    """A torchvision-style transform of PIL images applied to a uint8 (H, W, 3) array (picklable for workers)."""

    def __init__(self, transform):
        self.transform = transform

    def __call__(self, img: np.ndarray) -> torch.Tensor:
        from PIL import Image

        return self.transform(Image.fromarray(np.asarray(img)))


def dinov2_prepare(img: np.ndarray) -> torch.Tensor:
    """dgm-eval's DINOv2 transform: bicubic resize to 224 x 224 (PIL), [0, 1], ImageNet mean and std."""
    from PIL import Image

    x = np.asarray(Image.fromarray(np.asarray(img)).resize((224, 224), resample=Image.BICUBIC), dtype=np.float32)
    x = torch.from_numpy(x / 255.0).permute(2, 0, 1)
    mean = torch.tensor(IMAGENET_MEAN, dtype=torch.float32).view(3, 1, 1)
    std = torch.tensor(IMAGENET_STD, dtype=torch.float32).view(3, 1, 1)
    return (x - mean) / std


class DINOv2Extractor:
    channels = 3
    has_logits = False

    def __init__(self, weights=None, device: str = "cpu"):
        spec = MODELS["dinov2-vit-l-14"]
        timm = _import(spec)
        path = _local_file(spec, weights)
        try:
            model = timm.create_model(spec.arch, pretrained=path is None, img_size=224, num_classes=0)
        except Exception as exc:
            raise _missing(spec, exc) from None
        if path:
            from timm.models.vision_transformer import checkpoint_filter_fn

            state = checkpoint_filter_fn(read_state(path), model)
            missing, unexpected = model.load_state_dict(state, strict=False)
            if missing or unexpected:
                raise ValueError(f"{path}: not DINOv2 ViT-L/14 weights ({len(missing)} missing keys, "
                                 f"{len(unexpected)} unknown)")
        self.model = model.to(device).eval()
        self.device = device
        self.dim = spec.dim
        self.name = f"{spec.name}:{spec.pretrained}"
        self.identity = f"{self.name}:weights-sha256={_digest(path, spec)}"
        self.prepare = dinov2_prepare

    def __call__(self, batch: torch.Tensor):
        with torch.inference_mode():
            return self.model(batch.to(self.device)).float(), None


def build(name: str, weights=None, device: str = "cpu"):
    if name.startswith("clip-"):
        return CLIPExtractor(name, weights, device)
    return DINOv2Extractor(weights, device)
