"""Files: bounded-memory block reads of .npy files, and atomic writes."""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import struct
import tempfile
import zipfile
from typing import Iterator

import numpy as np

# Largest array an .npz member may declare before anything is decompressed (a few MB of zip can declare
# gigabytes). GANMETRICS_NPZ_MAX_BYTES raises it for genuinely large files.
NPZ_MAX_BYTES_DEFAULT = 4 << 30


def npz_max_bytes() -> int:
    return int(os.environ.get("GANMETRICS_NPZ_MAX_BYTES", NPZ_MAX_BYTES_DEFAULT))


def check_npz(path: str, name: str) -> dict[str, tuple[int, ...]]:
    """Read only the headers of an .npz's arrays and refuse a damaged file or one that declares more data
    than the budget, before numpy decompresses anything. Errors name the file and the key. Returns each
    array's name and shape."""
    budget = npz_max_bytes()
    keys: dict[str, tuple[int, ...]] = {}
    where = name if path in name else f"{name}: {path}"
    try:
        with zipfile.ZipFile(path) as zf:
            for info in zf.infolist():
                if not info.filename.endswith(".npy"):
                    continue
                key = info.filename[:-4]
                with zf.open(info) as fh:
                    try:
                        version = np.lib.format.read_magic(fh)
                        header = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                                  else np.lib.format.read_array_header_2_0)
                        shape, _, dtype = header(fh)
                    except ValueError as exc:
                        raise ValueError(f"{where}: array '{key}' has a damaged header ({exc})") from None
                keys[key] = tuple(shape)
                declared = int(np.prod(shape, dtype=np.float64)) * dtype.itemsize
                if declared > budget:
                    raise ValueError(
                        f"{where}: array '{key}' declares {declared / 2**30:.1f} GiB (shape {tuple(shape)}, "
                        f"{dtype}); the limit is {budget / 2**30:.1f} GiB (set GANMETRICS_NPZ_MAX_BYTES to allow more)")
    except zipfile.BadZipFile as exc:
        raise ValueError(f"{where} is not a readable .npz (zip) file: {exc}") from None
    return keys


def sha256_file(path: str) -> str:
    """Hex SHA-256 of a file's bytes, read in 4 MiB blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 22), b""):
            h.update(block)
    return h.hexdigest()


def map_zip_member(path: str, member: str) -> np.ndarray:
    """An .npy member of a zip (an .npz, a reference file) memory-mapped read-only when it is stored
    uncompressed; a compressed member is read into memory."""
    with zipfile.ZipFile(path) as zf:
        info = zf.getinfo(member)
        if info.compress_type != zipfile.ZIP_STORED:
            return np.lib.format.read_array(io.BytesIO(zf.read(member)), allow_pickle=False)
    with open(path, "rb") as fh:
        fh.seek(info.header_offset)
        name_len, extra_len = struct.unpack("<HH", fh.read(30)[26:30])
        fh.seek(info.header_offset + 30 + name_len + extra_len)
        version = np.lib.format.read_magic(fh)
        read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
        shape, fortran, dtype = read(fh)
        offset = fh.tell()
    return np.memmap(path, dtype=dtype, mode="r", offset=offset, shape=shape, order="F" if fortran else "C")


def npy_header(path: str) -> tuple[tuple[int, ...], bool, np.dtype, int]:
    """(shape, fortran_order, dtype, data offset) of an .npy file, without reading its data."""
    with open(path, "rb") as fh:
        version = np.lib.format.read_magic(fh)
        if version == (1, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(fh)
        else:
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(fh)
        return shape, fortran, dtype, fh.tell()


def iter_npy_row_blocks(path: str, rows_per_block: int) -> Iterator[tuple[int, np.ndarray]]:
    """Yield (first row, block) of a C-order 2-D .npy file, reusing one buffer.

    Plain reads instead of a memory map: resident memory stays at one block however large the file.
    """
    shape, fortran, dtype, offset = npy_header(path)
    if fortran or len(shape) != 2:
        raise ValueError(f"{path}: block reads need a C-order 2-D array")
    n, d = shape
    buf = np.empty((rows_per_block, d), dtype=dtype)
    with open(path, "rb", buffering=0) as fh:
        fh.seek(offset)
        for start in range(0, n, rows_per_block):
            rows = min(rows_per_block, n - start)
            view = buf[:rows]
            mv = memoryview(view.reshape(-1).view(np.uint8))
            got = 0
            while got < mv.nbytes:
                k = fh.readinto(mv[got:])
                if not k:
                    raise ValueError(f"{path}: file is truncated (expected {n} rows)")
                got += k
            yield start, view


def _sweep_stale_temps(directory: str, base: str) -> None:
    """Remove temporary files an earlier, killed write of the same target left behind (their writer's
    process id, recorded in the name, is gone)."""
    prefix = "." + base + "."
    for entry in os.listdir(directory):
        if not (entry.startswith(prefix) and entry.endswith(".tmp")):
            continue
        pid = entry[len(prefix):].split(".", 1)[0]
        if not pid.isdigit() or int(pid) == os.getpid():
            continue
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            with contextlib.suppress(OSError):
                os.unlink(os.path.join(directory, entry))
        except PermissionError:
            pass  # alive, another user's


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike, mode: str = "wb"):
    """Write to a temporary file beside ``path`` and rename it into place only on success.

    A symbolic link is written through (its target is replaced, the link stays); an existing file keeps
    its permissions; temporary files ``.NAME.PID.*.tmp`` left by a killed writer are removed on the next
    write of the same target."""
    path = os.path.realpath(os.fspath(path))
    directory, base = os.path.split(path)
    if os.path.isdir(path):
        raise IsADirectoryError(f"{path} is a directory")
    _sweep_stale_temps(directory, base)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{base}.{os.getpid()}.", suffix=".tmp")
    try:
        mode_bits = os.stat(path).st_mode & 0o7777
    except FileNotFoundError:
        umask = os.umask(0)
        os.umask(umask)
        mode_bits = 0o666 & ~umask  # mkstemp creates 0600; a new file gets the usual permissions
    os.chmod(tmp, mode_bits)
    try:
        with os.fdopen(fd, mode) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
