"""Files: bounded-memory block reads of .npy files, and atomic writes."""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import struct
import tempfile
import zipfile
import zlib
from typing import Any, Iterator

import numpy as np

# Largest array an .npz member may declare before anything is decompressed (a few MB of zip can declare
# gigabytes). GANMETRICS_NPZ_MAX_BYTES raises it for genuinely large files.
NPZ_MAX_BYTES_DEFAULT = 4 << 30


NPY_MAGIC = b"\x93NUMPY"
ZIP_MAGICS = (b"PK\x03\x04", b"PK\x05\x06")


def read_npy_header(fh, where: str) -> tuple[tuple[int, ...], bool, np.dtype]:
    """(shape, fortran_order, dtype) of the .npy stream at ``fh``; a damaged, truncated or non-numeric header is
    one ValueError naming ``where``."""
    try:
        version = np.lib.format.read_magic(fh)
        read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
        shape, fortran, dtype = read(fh)
    except (ValueError, EOFError, OSError, SyntaxError, TypeError, struct.error) as exc:
        raise ValueError(f"{where} has a damaged or truncated .npy header ({exc})") from None
    if dtype.hasobject or dtype.kind not in "biufcUS":
        raise ValueError(f"{where} holds dtype {dtype}, not numbers or text (object arrays are never read)")
    if any((not isinstance(s, int)) or s < 0 for s in shape):
        raise ValueError(f"{where} declares an invalid shape {shape}")
    return tuple(shape), bool(fortran), dtype


def declared_bytes(shape: tuple[int, ...], dtype: np.dtype) -> int:
    return int(np.prod(shape, dtype=object)) * dtype.itemsize


def member_header(zf: zipfile.ZipFile, info: zipfile.ZipInfo, where: str,
                  budget: int | None = None) -> tuple[tuple[int, ...], bool, np.dtype, int]:
    """(shape, fortran, dtype, header length) of an .npy member of a zip: its declared size within ``budget``
    (when given), then its declared data checked against the bytes the member holds (so no read or map runs
    past it)."""
    with zf.open(info) as fh:
        shape, fortran, dtype = read_npy_header(fh, where)
        header_len = fh.tell()
    declared = declared_bytes(shape, dtype)
    if budget is not None and declared > budget:
        raise ValueError(f"{where} (shape {shape}, {dtype}) declares {declared / 2**30:.1f} GiB; the limit is "
                         f"{budget / 2**30:.1f} GiB (set GANMETRICS_NPZ_MAX_BYTES to allow more)")
    if header_len + declared != info.file_size:
        raise ValueError(f"{where} is damaged: it declares shape {shape} ({dtype}, {declared} bytes) but holds "
                         f"{info.file_size - header_len} bytes of data")
    return shape, fortran, dtype, header_len


def npz_max_bytes() -> int:
    return int(os.environ.get("GANMETRICS_NPZ_MAX_BYTES", NPZ_MAX_BYTES_DEFAULT))


def _budget_error(where: str, what: str, nbytes: int, budget: int) -> ValueError:
    return ValueError(f"{where}: {what} declares {nbytes / 2**30:.1f} GiB; the limit is {budget / 2**30:.1f} GiB "
                      "(set GANMETRICS_NPZ_MAX_BYTES to allow more)")


def check_npz(path: str, name: str) -> dict[str, tuple[int, ...]]:
    """Read only the headers of an .npz's members and refuse a damaged file, a member that is not an .npy
    array, or one that declares more data than the budget or other bytes than it holds, before anything is
    decompressed. Errors name the file and the key. Returns each array's name and shape."""
    budget = npz_max_bytes()
    keys: dict[str, tuple[int, ...]] = {}
    where = name if path in name else f"{name}: {path}"
    try:
        with zipfile.ZipFile(path) as zf:
            for info in zf.infolist():
                if info.is_dir():
                    continue
                if info.file_size > budget:
                    raise _budget_error(where, f"member '{info.filename}'", info.file_size, budget)
                if not info.filename.endswith(".npy"):
                    raise ValueError(f"{where}: member '{info.filename}' is not an .npy array; an .npz holds only "
                                     ".npy arrays")
                key = info.filename[:-4]
                shape = member_header(zf, info, f"{where}: array '{key}'", budget)[0]
                keys[key] = shape
    except zipfile.BadZipFile as exc:
        raise ValueError(f"{where} is not a readable .npz (zip) file: {exc}") from None
    except (OSError, EOFError) as exc:
        raise ValueError(f"{where} cannot be read as an .npz (zip) file: {exc}") from None
    return keys


def load_npz(path: str, name: str) -> dict[str, np.ndarray]:
    """Every array of an .npz, after :func:`check_npz` (so the reads are bounded by checked declared sizes)."""
    check_npz(path, name)
    where = name if path in name else f"{name}: {path}"
    try:
        with np.load(path, allow_pickle=False) as z:
            return {key: z[key] for key in z.files}
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as exc:
        raise ValueError(f"{where} cannot be read as an .npz file ({exc})") from None


def sha256_file(path: str) -> str:
    """Hex SHA-256 of a file's bytes, read in 4 MiB blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 22), b""):
            h.update(block)
    return h.hexdigest()


def _member_data(path: str, info: zipfile.ZipInfo, where: str) -> tuple[tuple[int, ...], bool, np.dtype, int]:
    """(shape, fortran, dtype, file offset of the data) of a stored .npy member, its extent checked."""
    with zipfile.ZipFile(path) as zf:
        shape, fortran, dtype, header_len = member_header(zf, info, where)
    with open(path, "rb") as fh:
        fh.seek(info.header_offset)
        local = fh.read(30)
    if len(local) != 30 or local[:4] != b"PK\x03\x04":
        raise ValueError(f"{where}: damaged zip entry")
    name_len, extra_len = struct.unpack("<HH", local[26:30])
    return shape, fortran, dtype, info.header_offset + 30 + name_len + extra_len + header_len


def map_zip_member(path: str, member: str, where: str | None = None) -> Any:
    """An .npy member of a zip (an .npz, a reference file): memory-mapped read-only when it is stored
    uncompressed (its declared extent checked against the bytes it holds, so it never maps a neighbour's
    bytes); a compressed member is read row by row from the stream (:class:`ZipRows`), never whole."""
    where = where or f"{path}:{member}"
    with zipfile.ZipFile(path) as zf:
        info = zf.getinfo(member)
    if info.file_size > npz_max_bytes():
        raise _budget_error(where, "the array", info.file_size, npz_max_bytes())
    if info.compress_type != zipfile.ZIP_STORED:
        return ZipRows(path, member, where)
    shape, fortran, dtype, offset = _member_data(path, info, where)
    if declared_bytes(shape, dtype) == 0:
        return np.empty(shape, dtype=dtype)
    return np.memmap(path, dtype=dtype, mode="r", offset=offset, shape=shape, order="F" if fortran else "C")


class ZipRows:
    """Rows of a compressed C-order .npy member, decompressed as they are read: ``x[i]`` seeks the member's
    stream (forward seeks decompress and drop, so reading in order costs one pass) and memory stays at one
    row. Each process opens its own handle (DataLoader workers)."""

    def __init__(self, path: str, member: str, where: str):
        self.path, self.member, self.where = path, member, where
        with zipfile.ZipFile(path) as zf:
            self.shape, fortran, self.dtype, self._data = member_header(zf, zf.getinfo(member), where)
        if fortran or not self.shape:
            raise ValueError(f"{where}: a compressed image array must be a C-order array of images")
        self.ndim = len(self.shape)
        self._row_bytes = declared_bytes(self.shape[1:], self.dtype)
        self._zf = self._fh = self._pid = None

    def __getstate__(self):
        return {**self.__dict__, "_zf": None, "_fh": None, "_pid": None}

    def __len__(self) -> int:
        return int(self.shape[0])

    def __getitem__(self, i: int) -> np.ndarray:
        i = int(i)
        if not 0 <= i < self.shape[0]:
            raise IndexError(f"{self.where}: row {i} of {self.shape[0]}")
        if self._fh is None or self._pid != os.getpid():
            self._zf = zipfile.ZipFile(self.path)
            self._fh, self._pid = self._zf.open(self.member), os.getpid()
        try:
            self._fh.seek(self._data + i * self._row_bytes)
            raw = self._fh.read(self._row_bytes)
        except (zipfile.BadZipFile, OSError, EOFError, zlib.error) as exc:
            raise ValueError(f"{self.where}: cannot be decompressed ({exc})") from None
        if len(raw) != self._row_bytes:
            raise ValueError(f"{self.where} is truncated at row {i}")
        return np.frombuffer(raw, dtype=self.dtype).reshape(self.shape[1:])


def npy_header(path: str, name: str | None = None) -> tuple[tuple[int, ...], bool, np.dtype, int]:
    """(shape, fortran_order, dtype, data offset) of an .npy file, without reading its data. A file that is
    empty, not an .npy (a zip saved under an .npy name), damaged, or shorter than its header declares is one
    ValueError naming the file."""
    where = f"{name}: {path}" if name and path not in name else (name or path)
    with open(path, "rb") as fh:
        magic = fh.read(6)
        if not magic:
            raise ValueError(f"{where} is empty (0 bytes), not an .npy array")
        if magic[:4] in ZIP_MAGICS:
            raise ValueError(f"{where} is a zip archive (an .npz?) saved under an .npy name; rename it to .npz")
        if magic != NPY_MAGIC:
            raise ValueError(f"{where} is not an .npy file (it does not start with the .npy magic)")
        fh.seek(0)
        shape, fortran, dtype = read_npy_header(fh, where)
        offset = fh.tell()
        size = os.fstat(fh.fileno()).st_size
    need = declared_bytes(shape, dtype)
    if size - offset < need:
        raise ValueError(f"{where} is truncated: its header declares shape {shape} ({dtype}, {need} bytes) but it "
                         f"holds {size - offset} bytes of data")
    return shape, fortran, dtype, offset


def open_npy(path: str, name: str | None = None) -> np.ndarray:
    """An .npy file memory-mapped read-only, after :func:`npy_header`'s checks (never a pickle, never a zip)."""
    shape, fortran, dtype, offset = npy_header(path, name)
    if declared_bytes(shape, dtype) == 0:
        return np.empty(shape, dtype=dtype)
    return np.memmap(path, dtype=dtype, mode="r", offset=offset, shape=shape, order="F" if fortran else "C")


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


def temp_prefix(base: str) -> str:
    """The prefix of a temporary file beside ``base``: ``.BASE.PID.`` with BASE cut to 100 characters, so that
    the temporary name stays within the file system's name limit whenever the output's own name does."""
    return f".{base[:100]}.{os.getpid()}."


def _sweep_stale_temps(directory: str, base: str) -> None:
    """Remove temporary files an earlier, killed write of the same target left behind (their writer's
    process id, recorded in the name, is gone)."""
    prefix = "." + base[:100] + "."
    try:
        entries = os.listdir(directory)
    except OSError:
        return
    for entry in entries:
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


def _named(exc: OSError, path: str) -> OSError:
    """The same error, naming the output instead of a hidden temporary file."""
    out = type(exc)(exc.errno, exc.strerror or str(exc), path)
    return out


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike, mode: str = "wb"):
    """Write to a temporary file beside ``path`` and rename it into place only on success.

    A symbolic link is written through (its target is replaced, the link stays); an existing file keeps
    its permissions; temporary files ``.NAME.PID.*.tmp`` left by a killed writer are removed on the next
    write of the same target. A failure to create, write or rename (a read-only folder, a full disk, a name
    too long) is an OSError naming ``path``, never the temporary file."""
    shown = os.fspath(path)
    path = os.path.realpath(shown)
    directory, base = os.path.split(path)
    if os.path.isdir(path):
        raise IsADirectoryError(errno.EISDIR, "is a directory", shown)
    if len(os.fsencode(base)) > 255:
        raise OSError(errno.ENAMETOOLONG, "file name too long", shown)
    _sweep_stale_temps(directory, base)
    try:
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=temp_prefix(base), suffix=".tmp")
    except OSError as exc:
        raise _named(exc, shown) from None
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
    except OSError as exc:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        if exc.filename in (tmp, None) or exc.filename == path:
            raise _named(exc, shown) from None
        raise
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def same_file(a: str | os.PathLike, b: str | os.PathLike) -> bool:
    """Whether two paths name one existing file (through any path, symbolic or hard link)."""
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def check_outputs(inputs: dict[str, Any], outputs: dict[str, Any]) -> None:
    """Refuse, before any work, an output that is one of the inputs (the same file through any path, symbolic
    link or hard link), or that lies inside an input folder at a name the output would replace; and an
    output that is another output. ``inputs``/``outputs``: label -> path (None: absent)."""
    ins = {label: os.fspath(p) for label, p in inputs.items() if p is not None}
    outs = {label: os.fspath(p) for label, p in outputs.items() if p is not None}
    for out_label, out in outs.items():
        for in_label, src in ins.items():
            if same_file(out, src) or (not os.path.exists(out)
                                       and os.path.realpath(out) == os.path.realpath(src)):
                raise ValueError(f"{out_label} {out} is the input {in_label}; writing there would replace it")
        for other_label, other in outs.items():
            if other_label < out_label and (same_file(out, other) or os.path.realpath(out) == os.path.realpath(other)):
                raise ValueError(f"{out_label} {out} and {other_label} {other} are the same file")
