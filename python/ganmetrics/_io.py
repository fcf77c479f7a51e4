"""Files: bounded-memory block reads of .npy files, and atomic writes."""

from __future__ import annotations

import contextlib
import os
import tempfile
from typing import Iterator

import numpy as np


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


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike, mode: str = "wb"):
    """Write to a temporary file beside ``path`` and rename it into place only on success."""
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=directory, prefix="." + os.path.basename(path) + ".", suffix=".tmp")
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # mkstemp creates 0600; the result should get the usual permissions
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
