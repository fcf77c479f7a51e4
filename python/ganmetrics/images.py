"""Image inputs: folders, archives, image arrays, datasets and generators, read as the peers read them.

Every source yields RGB uint8 images (H, W, 3), one at a time, so that decoding and resizing run in
``DataLoader`` workers and no more than a batch of images is ever in memory:

- a folder of ``png, jpg/jpeg, bmp, webp, tif/tiff, pgm, ppm`` files (extension case ignored), sorted by
  relative path; only the top level unless ``recursive=True`` (clean-fid recurses, pytorch-fid does not);
- a ``.zip`` of such files (sorted member names);
- an image ``.npz`` (its first 4-D array, ``arr_0`` in the ADM/guided-diffusion reference batches) or a
  4-D ``.npy`` (memory-mapped);
- a numpy array or torch tensor of images: uint8 0-255, or float 0-1 (rounded to the nearest of the 256
  levels), NCHW when dimension 1 has 1 or 3 channels, otherwise NHWC with 1 or 3 channels last;
- a torch ``Dataset`` (map-style) or ``DataLoader`` whose items are images or (image, label) pairs, each
  image a PIL image, an array or a tensor as above (one image: HWC, or CHW when the first dimension is 1 or 3);
- a :class:`Generator`: ``G(z)`` or ``G(z, c)`` sampled in batches from a seeded normal.

Files are converted with PIL's ``convert("RGB")``, as pytorch-fid, clean-fid and torch-fidelity do:
grayscale is repeated over the channels, alpha is dropped, palettes are expanded, and 16-bit grayscale is
clipped to 0-255 by PIL (the peers' behaviour; convert such files yourself if that is not what you want).
A file that cannot be decoded is an error naming it, or is skipped and counted with ``skip_bad=True``; so is
an image over the pixel limit (:func:`max_pixels`, checked from its header before decoding), a file or
archive member over :func:`image_max_bytes` (checked from its declared size before reading), and a folder
entry that is not a regular file (a dangling link or a FIFO is never opened). A compressed image ``.npz`` is
decompressed image by image (:class:`ganmetrics._io.ZipRows`), never whole.
"""

from __future__ import annotations

import abc
import hashlib
import io
import os
import stat
import warnings
import zipfile
import zlib
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from ganmetrics._io import ZipRows, check_npz, map_zip_member, npy_header, open_npy, sha256_file

IMAGE_EXTENSIONS = ("bmp", "jpg", "jpeg", "pgm", "png", "ppm", "tif", "tiff", "webp")


class BadImageError(ValueError):
    """An image file that cannot be decoded."""


def _has_image_ext(name: str) -> bool:
    return os.path.splitext(name)[1].lower().lstrip(".") in IMAGE_EXTENSIONS


IMAGE_MAX_BYTES_DEFAULT = 256 << 20  # one image file (or archive member): a larger one is refused unread


def image_max_bytes() -> int:
    """The largest image file or archive member read (GANMETRICS_IMAGE_MAX_BYTES, default 256 MiB)."""
    return int(os.environ.get("GANMETRICS_IMAGE_MAX_BYTES", IMAGE_MAX_BYTES_DEFAULT))


def max_pixels() -> int | None:
    """The pixel limit of one image: PIL's ``Image.MAX_IMAGE_PIXELS`` (about 89 million; None: none), or
    GANMETRICS_MAX_IMAGE_PIXELS when set."""
    from PIL import Image

    env = os.environ.get("GANMETRICS_MAX_IMAGE_PIXELS")
    return int(env) if env else Image.MAX_IMAGE_PIXELS


def decode(data: Any, where: str, channels: int = 3) -> np.ndarray:
    """An image file (path or file object) -> uint8 (H, W, 3) RGB, or (H, W, 1) luminance when channels == 1.

    A path that is not a regular file (a dangling link, a FIFO, a device) is never opened; an image whose
    header declares more pixels than :func:`max_pixels` is refused before it is decoded. Both, and any file
    PIL cannot decode, are a :class:`BadImageError` naming the file (``skip_bad`` skips it)."""
    from PIL import Image, UnidentifiedImageError

    if isinstance(data, (str, os.PathLike)):
        try:
            st = os.stat(data)
        except FileNotFoundError:
            raise BadImageError(f"{where}: cannot be read as an image (a dangling link or a vanished file)") from None
        except OSError as exc:
            raise BadImageError(f"{where}: cannot be read as an image ({exc.strerror or exc})") from None
        if not stat.S_ISREG(st.st_mode):
            raise BadImageError(f"{where}: is not a regular file (a FIFO, socket or device); it is not read")
        if st.st_size > image_max_bytes():
            raise BadImageError(f"{where}: {st.st_size / 2**20:.0f} MiB is more than the {image_max_bytes() / 2**20:.0f} "
                                "MiB an image file may hold (GANMETRICS_IMAGE_MAX_BYTES)")
    limit = max_pixels()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(data) as img:
                w, h = img.size
                if limit is not None and w * h > limit:
                    raise BadImageError(f"{where}: {w} x {h} = {w * h} pixels is over the limit of {limit} "
                                        "(PIL's Image.MAX_IMAGE_PIXELS, or GANMETRICS_MAX_IMAGE_PIXELS): refused "
                                        "as a decompression bomb")
                img.load()
                img = img.convert("RGB" if channels == 3 else "L")
    except BadImageError:
        raise
    except Image.DecompressionBombError as exc:  # PIL's own check, at twice its limit, in Image.open
        raise BadImageError(f"{where}: over the limit of {limit} pixels (PIL's Image.MAX_IMAGE_PIXELS, or "
                            f"GANMETRICS_MAX_IMAGE_PIXELS): refused as a decompression bomb ({exc})") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError, MemoryError) as exc:
        raise BadImageError(f"{where}: cannot be read as an image ({type(exc).__name__}: {exc})") from None
    arr = np.array(img, dtype=np.uint8)
    return arr if arr.ndim == 3 else arr[:, :, None]


def to_uint8_image(x: Any, where: str, channels: int = 3) -> np.ndarray:
    """One in-memory image (PIL, numpy or torch; HWC, or CHW with 1 or 3 channels first; uint8 or float 0-1)
    -> uint8 (H, W, channels)."""
    try:
        from PIL import Image

        if isinstance(x, Image.Image):
            arr = np.asarray(x.convert("RGB" if channels == 3 else "L"), dtype=np.uint8)
            return arr if arr.ndim == 3 else arr[:, :, None]
    except ImportError:
        pass
    arr = _numpy(x)
    if arr.ndim == 2:
        arr = arr[:, :, None]
    if arr.ndim != 3:
        raise ValueError(f"{where}: an image must have 2 or 3 dimensions, got shape {arr.shape}")
    if arr.shape[0] in (1, 3):  # the documented rule: CHW when the first dimension is 1 or 3, else HWC
        arr = arr.transpose(1, 2, 0)
    return _channels(_quantize(arr, where), channels, where)


def _numpy(x: Any) -> np.ndarray:
    if hasattr(x, "detach") and hasattr(x, "cpu"):
        if str(getattr(x, "layout", "torch.strided")) != "torch.strided":
            raise ValueError(f"a {x.layout} tensor is not an image batch; pass a dense one (.to_dense())")
        x = x.detach().cpu()
        if str(x.dtype) == "torch.bfloat16":
            x = x.float()
        return x.numpy()
    return np.asarray(x)


def _quantize(arr: np.ndarray, where: str) -> np.ndarray:
    if arr.dtype == np.uint8:
        return arr
    if arr.dtype.kind == "f":
        if not np.isfinite(arr).all():
            raise ValueError(f"{where}: images contain NaN or Inf")
        lo, hi = float(arr.min(initial=0.0)), float(arr.max(initial=0.0))
        if lo < -1e-6 or hi > 1 + 1e-6:
            raise ValueError(f"{where}: float images must lie in [0, 1] (found values in [{lo:.4g}, {hi:.4g}]); "
                             "pass uint8 0-255 images, or scale them")
        return np.rint(np.clip(arr, 0.0, 1.0) * 255.0).astype(np.uint8)
    raise ValueError(f"{where}: images must be uint8 (0-255) or float (0-1), got {arr.dtype}")


def _channels(arr: np.ndarray, channels: int, where: str) -> np.ndarray:
    c = arr.shape[2]
    if c == channels:
        return arr
    if c == 1 and channels == 3:
        return np.repeat(arr, 3, axis=2)
    if c == 3 and channels == 1:  # PIL's "L": ITU-R 601-2 luma, rounded
        wide = arr.astype(np.uint32)  # 255 * 1000 does not fit uint8
        luma = (wide[:, :, 0] * 299 + wide[:, :, 1] * 587 + wide[:, :, 2] * 114 + 500) // 1000
        return luma.astype(np.uint8)[:, :, None]
    raise ValueError(f"{where}: images must have 1 or 3 channels, got {c}")


# ------------------------------------------------------------------------------------------------ sources


class ImageSource(abc.ABC):
    """A finite, ordered collection of images; ``load(i)`` gives image i as uint8 (H, W, C)."""

    name: str = "images"
    channels: int = 3

    @abc.abstractmethod
    def __len__(self) -> int:
        """The number of images."""

    @abc.abstractmethod
    def load(self, i: int) -> np.ndarray:
        """Image i as uint8 (H, W, channels)."""

    def fingerprint(self) -> str | None:
        """A string that changes whenever the images may have changed; None: not cacheable."""
        return None

    def describe(self) -> str:
        return self.name


class FolderSource(ImageSource):
    def __init__(self, path: str, name: str, recursive: bool = False):
        self.root = os.fspath(path)
        self.name = name
        self.recursive = recursive
        if recursive:
            files = []
            for dirpath, dirnames, filenames in os.walk(self.root):
                dirnames.sort()
                files += [os.path.relpath(os.path.join(dirpath, f), self.root) for f in filenames if _has_image_ext(f)]
        else:
            files = [f for f in os.listdir(self.root)  # not only regular files: a dangling link or FIFO is
                     if _has_image_ext(f) and not os.path.isdir(os.path.join(self.root, f))]  # a bad image
        self.files = sorted(files)
        if not self.files:
            raise ValueError(f"{name}: the folder {self.root} holds no images ({', '.join(IMAGE_EXTENSIONS)})"
                             + ("" if recursive else "; subfolders are read with recursive=True / --recursive"))

    def __len__(self) -> int:
        return len(self.files)

    def load(self, i: int) -> np.ndarray:
        return decode(os.path.join(self.root, self.files[i]), os.path.join(self.root, self.files[i]), self.channels)

    def fingerprint(self) -> str:
        h = hashlib.sha256(f"folder\0{self.recursive}\0".encode())
        for f in self.files:
            try:
                st = os.stat(os.path.join(self.root, f))
                h.update(f"{f}\0{st.st_mode}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
            except OSError:
                h.update(f"{f}\0unreadable\n".encode())
        return h.hexdigest()

    def describe(self) -> str:
        return f"{self.root} ({len(self)} images)"


class ZipSource(ImageSource):
    def __init__(self, path: str, name: str):
        self.path = os.fspath(path)
        self.name = name
        try:
            with zipfile.ZipFile(self.path) as zf:
                self.members = sorted(m.filename for m in zf.infolist() if not m.is_dir() and _has_image_ext(m.filename))
        except zipfile.BadZipFile as exc:
            raise ValueError(f"{name}: {self.path} is not a readable zip archive ({exc})") from None
        if not self.members:
            raise ValueError(f"{name}: the archive {self.path} holds no images ({', '.join(IMAGE_EXTENSIONS)})")
        self._zf = None
        self._pid = None

    def __getstate__(self):
        return {**self.__dict__, "_zf": None, "_pid": None}

    def __len__(self) -> int:
        return len(self.members)

    def load(self, i: int) -> np.ndarray:
        if self._zf is None or self._pid != os.getpid():  # one handle per worker process
            self._zf, self._pid = zipfile.ZipFile(self.path), os.getpid()
        where = f"{self.path}:{self.members[i]}"
        try:
            info = self._zf.getinfo(self.members[i])
            if info.file_size > image_max_bytes():
                raise BadImageError(f"{where}: declares {info.file_size / 2**20:.0f} MiB uncompressed, more than the "
                                    f"{image_max_bytes() / 2**20:.0f} MiB an image may hold (GANMETRICS_IMAGE_MAX_BYTES); "
                                    "not decompressed")
            with self._zf.open(info) as fh:  # zipfile stops at the declared size and checks the CRC
                data = fh.read(info.file_size + 1)
            if len(data) > info.file_size:
                raise BadImageError(f"{where}: holds more bytes than it declares")
        except (zipfile.BadZipFile, OSError, EOFError, zlib.error) as exc:
            raise BadImageError(f"{where}: cannot be read from the archive ({exc})") from None
        return decode(io.BytesIO(data), where, self.channels)

    def fingerprint(self) -> str:
        return "zip\0" + sha256_file(self.path)

    def describe(self) -> str:
        return f"{self.path} ({len(self)} images)"


class ArraySource(ImageSource):
    """A 4-D image array (numpy, torch, memory-mapped .npy or an .npz member); layout and range as documented."""

    def __init__(self, array: Any, name: str, file_fingerprint: str | None = None):
        self.name = name
        arr = array if isinstance(array, (np.ndarray, ZipRows)) else _numpy(array)
        if arr.ndim != 4:
            raise ValueError(f"{name}: image arrays must be 4-D (NCHW or NHWC), got shape {tuple(arr.shape)}")
        if arr.shape[1] in (1, 3):  # the documented rule: NCHW when dimension 1 has 1 or 3 channels
            self.layout = "NCHW"
        elif arr.shape[3] in (1, 3):
            self.layout = "NHWC"
        else:
            raise ValueError(f"{name}: images must have 1 or 3 channels in dimension 1 (NCHW) or 3 (NHWC), "
                             f"got shape {arr.shape}")
        if arr.dtype != np.uint8 and arr.dtype.kind != "f":
            raise ValueError(f"{name}: images must be uint8 (0-255) or float (0-1), got {arr.dtype}")
        if len(arr) == 0:
            raise ValueError(f"{name}: no images (the array is empty)")
        self.array = arr
        self._fingerprint = file_fingerprint

    def __len__(self) -> int:
        return int(self.array.shape[0])

    def load(self, i: int) -> np.ndarray:
        img = np.asarray(self.array[i])
        if self.layout == "NCHW":
            img = img.transpose(1, 2, 0)
        return _channels(_quantize(img, f"{self.name}[{i}]"), self.channels, self.name)

    def fingerprint(self) -> str | None:
        return self._fingerprint

    def describe(self) -> str:
        return f"{self.name} ({len(self)} images, {self.layout}, {self.array.dtype})"


class ShardSource(ImageSource):
    """Images ``start`` to ``stop`` of another source: one rank's share when ranks split an input
    (:meth:`of_rank`: contiguous, every image in exactly one shard)."""

    def __init__(self, source: ImageSource, start: int, stop: int):
        self.source, self.start, self.stop = source, int(start), int(stop)
        self.name = source.name

    @classmethod
    def of_rank(cls, source: ImageSource, rank: int, world: int) -> "ShardSource":
        n = len(source)
        return cls(source, n * rank // world, n * (rank + 1) // world)

    @property
    def channels(self) -> int:  # type: ignore[override]
        return self.source.channels

    @channels.setter
    def channels(self, value: int) -> None:
        self.source.channels = value

    def __len__(self) -> int:
        return self.stop - self.start

    def load(self, i: int) -> np.ndarray:
        return self.source.load(self.start + i)

    def fingerprint(self) -> str | None:
        base = self.source.fingerprint()
        return None if base is None else f"{base}\0shard {self.start}:{self.stop}"

    def describe(self) -> str:
        return f"{self.source.describe()}, images {self.start} to {self.stop - 1}"


class DatasetSource(ImageSource):
    def __init__(self, dataset: Any, name: str):
        self.dataset = dataset
        self.name = name
        try:
            self.n = len(dataset)
        except TypeError:
            raise TypeError(f"{name}: the dataset has no len(); give a map-style torch Dataset") from None
        if self.n == 0:
            raise ValueError(f"{name}: the dataset is empty")

    def __len__(self) -> int:
        return self.n

    def load(self, i: int) -> np.ndarray:
        item = self.dataset[i]
        if isinstance(item, (tuple, list)):
            item = item[0]
        return to_uint8_image(item, f"{self.name}[{i}]", self.channels)


@dataclass
class Generator:
    """A generative model as an image source, as torch-fidelity's generative-model input.

    ``model(z)`` (or ``model(z, c)`` when ``num_classes`` is set, with ``c`` uniform class labels) returns a
    batch of images (uint8 0-255, or float in ``output_range``, NCHW or NHWC; floats are rounded to uint8 as
    saving them as images would); ``z`` rows come from a standard normal drawn by a torch generator seeded by
    ``seed`` (labels from ``seed + 1``), so the same seed gives the same samples whatever the batch size."""

    model: Callable
    num_samples: int
    z_dim: int
    batch_size: int = 64
    seed: int = 0
    num_classes: int | None = None
    output_range: tuple[float, float] = (0.0, 1.0)
    name: str = "generator"

    def __post_init__(self):
        for key in ("num_samples", "z_dim", "batch_size"):
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                raise ValueError(f"{key} must be a positive integer, got {value!r}")
        if self.num_classes is not None and (not isinstance(self.num_classes, (int, np.integer)) or self.num_classes < 1):
            raise ValueError(f"num_classes must be a positive integer or None, got {self.num_classes!r}")
        lo, hi = self.output_range
        if not hi > lo:
            raise ValueError(f"output_range must be (low, high) with high > low, got {self.output_range!r}")

    def batches(self, device: str, channels: int = 3):
        """Yield uint8 NHWC numpy batches with ``channels`` channels."""
        import torch

        latents = _Draws(lambda k, g: torch.randn(k, self.z_dim, generator=g), int(self.seed))
        labels = _Draws(lambda k, g: torch.randint(0, int(self.num_classes or 1), (k,), generator=g), int(self.seed) + 1)
        done = 0
        while done < self.num_samples:
            b = min(self.batch_size, self.num_samples - done)
            z = latents.take(b).to(device)
            with torch.inference_mode():
                if self.num_classes is not None:
                    out = self.model(z, labels.take(b).to(device))
                else:
                    out = self.model(z)
            arr = _numpy(out)
            if arr.ndim != 4 or len(arr) != b:
                raise ValueError(f"{self.name}: the model returned shape {arr.shape} for {b} latents; expected a "
                                 "4-D image batch (NCHW or NHWC)")
            if arr.dtype != np.uint8:
                lo, hi = self.output_range
                arr = (arr.astype(np.float32) - lo) / (hi - lo)
            src = ArraySource(arr, self.name)
            src.channels = channels
            yield np.stack([src.load(i) for i in range(b)])
            done += b


class _Draws:
    """Random rows drawn in fixed blocks of 1024, so that sample i gets the same latent whatever the batch size
    (torch draws a 16-row normal block differently from a 12-row one)."""

    BLOCK = 1024

    def __init__(self, draw: Callable, seed: int):
        import torch

        self.draw, self.gen, self.buf = draw, torch.Generator().manual_seed(seed), None

    def take(self, k: int):
        import torch

        out = []
        while k > 0:
            if self.buf is None or len(self.buf) == 0:
                self.buf = self.draw(self.BLOCK, self.gen)
            part, self.buf = self.buf[:k], self.buf[k:]
            out.append(part)
            k -= len(part)
        return torch.cat(out)


def is_image_input(x: Any) -> bool:
    """Whether ``x`` is an image input (and not features or statistics)."""
    if isinstance(x, Generator):
        return True
    if isinstance(x, (str, os.PathLike)):
        path = os.fspath(x)
        if os.path.isdir(path) or path.lower().endswith(".zip"):
            return True
        if path.endswith(".npy") and os.path.isfile(path):
            try:
                return len(npy_header(path)[0]) == 4
            except ValueError:
                return False
        if path.endswith(".npz") and os.path.isfile(path):
            return _npz_image_key(path) is not None
        return False
    try:
        import torch.utils.data as tud

        if isinstance(x, (tud.Dataset, tud.DataLoader)):
            return True
    except ImportError:
        pass
    shape = getattr(x, "shape", None)
    return shape is not None and len(shape) == 4


def _npz_image_key(path: str) -> str | None:
    """The .npz's image array (``arr_0`` first, then the first 4-D array by name); None for statistics."""
    shapes = check_npz(path, path)
    if shapes.keys() & {"mu", "sigma"}:
        return None
    return next((key for key in sorted(shapes, key=lambda k: (k != "arr_0", k)) if len(shapes[key]) == 4), None)


def as_source(x: Any, name: str, *, recursive: bool = False, channels: int = 3) -> ImageSource | Generator:
    """The image source behind an input (see the module doc); errors name the argument."""
    if isinstance(x, Generator):
        return x
    if isinstance(x, ImageSource):
        src = x
    elif isinstance(x, (str, os.PathLike)):
        path = os.fspath(x)
        if os.path.isdir(path):
            src = FolderSource(path, name, recursive=recursive)
        elif not os.path.exists(path):
            raise FileNotFoundError(f"{name}: no such file or folder: {path}")
        elif path.lower().endswith(".zip"):
            src = ZipSource(path, name)
        elif path.endswith(".npy"):
            src = ArraySource(open_npy(path, name), f"{name} ({path})", "npy\0" + sha256_file(path))
        elif path.endswith(".npz"):
            key = _npz_image_key(path)
            if key is None:
                raise ValueError(f"{name}: {path} holds no 4-D image array")
            src = ArraySource(map_zip_member(path, key + ".npy", f"{name}: {path}:{key}"), f"{name} ({path}:{key})",
                              "npz\0" + sha256_file(path))
        else:
            raise ValueError(f"{name}: {path} is not an image folder, .zip, image .npz or 4-D .npy")
    else:
        try:
            import torch.utils.data as tud

            if isinstance(x, tud.DataLoader):
                x = x.dataset
            if isinstance(x, tud.Dataset):
                src = DatasetSource(x, name)
            else:
                src = ArraySource(x, name)
        except ImportError:
            src = ArraySource(x, name)
    src.channels = channels
    return src
