"""The torch engine: the host engine's algorithms in torch operations, on the tensors' own device (CUDA, ROCm,
MPS or the CPU -- which is how the tests run every line of it).

- k-NN: rows centred on the union's mean and scaled by an exact power of two, rounded once to float32, float32
  ``torch.mm`` tiles with TF32 switched off for the call (and restored); every distance known within the host
  engine's rigorous rounding bound, and every pair whose bound straddles a decision recomputed in float64 (the
  differences summed feature by feature, in the host kernels' order, so the float64 values are the host's).
  Candidate lists stay at k per row between tiles whatever the ties (ties by index); duplicate rows go
  through the distinct rows with multiplicities, as on the host. Tiles are sized from ``workspace_bytes``:
  the N x M matrix is never built.
- Kernel sums: float64 tiles (``precision="float32"``: float32 products, float64 kernel values and sums).
- Statistics and the Fréchet trace term: float64 (``torch.mm`` of centred chunks; ``torch.linalg``).
- MPS has no float64: there the float64 steps run on the host's copy of the rows involved.

Per-row outputs come back as host (numpy) arrays, as from every engine.
"""

from __future__ import annotations

import contextlib
import math
import warnings
from dataclasses import dataclass
from typing import Any, Iterator

import numpy as np
import torch

from ganmetrics._arrays import as_features
from ganmetrics.engines.base import Engine, Multiset, Set, tile_kwargs, unbiased_mmd2

U32, U64 = 2.0**-24, 2.0**-53
MAX_EXPONENT = 480  # as the host: larger centred values make squared distances overflow float64
MIN_EXPONENT = -500  # as the host: smaller ones make the float64 squared distances underflow
_KIND_POLYNOMIAL, _KIND_RBF = 0, 1


@dataclass(frozen=True)
class TorchFeatures:
    """A validated (samples x features) tensor on its device."""

    t: Any
    name: str

    @property
    def n(self) -> int:
        return int(self.t.shape[0])

    @property
    def dim(self) -> int:
        return int(self.t.shape[1])


def host_tensor(a: np.ndarray) -> Any:
    """A CPU tensor sharing a host array's memory (read-only memory maps included: it is only read)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
        return torch.from_numpy(np.ascontiguousarray(a))


def check_finite(t: Any, name: str, chunk_bytes: int = 64 << 20) -> None:
    """ValueError with the count of NaN/Inf values and the first bad row, checked in chunks (bounded memory)."""
    step = max(1, chunk_bytes // max(1, t.shape[1]))
    count, first = 0, None
    for a in range(0, t.shape[0], step):
        bad = ~torch.isfinite(t[a:a + step])
        c = int(bad.sum())
        if c:
            count += c
            if first is None:
                first = a + int(torch.nonzero(bad.any(dim=1))[0, 0])
    if count:
        raise ValueError(f"{name} contains {count} NaN or Inf value(s); the first is in row {first}")


@contextlib.contextmanager
def exact_float32_products() -> Iterator[None]:
    """float32 matrix products in full float32 (no TF32, no reduced-precision shortcut) for the call, restored
    afterwards: the rounding bound assumes float32 arithmetic."""
    saved = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32, torch.get_float32_matmul_precision())
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    torch.set_float32_matmul_precision("highest")
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved[0], saved[1]
        torch.set_float32_matmul_precision(saved[2])


def _float64_device(device: Any) -> Any:
    """Where float64 work on tensors of ``device`` runs: the device itself, or the CPU for MPS (no float64)."""
    return torch.device("cpu") if torch.device(device).type == "mps" else torch.device(device)


class _Rows:
    """One set's rows as the tiles see them: centred on ``center``, scaled by an exact power of two, rounded once
    to float32, with float64 squared norms; the last block made is kept (a row block serves a whole row of tiles)."""

    def __init__(self, f: TorchFeatures, center: Any, scale: float, unscale: float, device: Any):
        self.f, self.center, self.scale, self.unscale, self.device = f, center, scale, unscale, device
        self.cached: tuple = (None, None, None)

    def block(self, a: int, b: int) -> tuple[Any, Any]:
        if self.cached[0] != (a, b):
            xs = ((self.f.t[a:b].to(self.center.device).double() - self.center) * self.scale).float()
            norms = (xs.double() ** 2).sum(1) * self.unscale
            if not bool(torch.isfinite(norms).all()):
                raise ValueError("feature values are too large for float64 squared distances")
            self.cached = ((a, b), xs.to(self.device), norms)
        return self.cached[1], self.cached[2]


class TorchEngine(Engine):
    """The primitives in torch operations on one device (that of the inputs)."""

    name = "torch"
    moments_engine = "torch"

    def __init__(self, device: Any = None, workspace_bytes: int | None = None, progress: bool | None = None,
                 summation: str | None = None):
        super().__init__(workspace_bytes, progress)
        self.device = torch.device(device) if device is not None else None
        if summation not in (None, "sequential", "tree"):
            raise ValueError(f"summation must be 'sequential', 'tree' or None (by device), got {summation!r}")
        self.summation = summation  # the order of the float64 recheck sums (None: sequential on the CPU)

    # -- validation
    def features(self, x: Any, name: str, min_rows: int = 2) -> TorchFeatures:
        if isinstance(x, TorchFeatures):
            t = x.t
        elif isinstance(x, torch.Tensor):
            if x.layout != torch.strided:
                raise TypeError(f"{name} is a {x.layout} tensor; pass a dense (strided) tensor ({name}.to_dense())")
            t = x.detach()
            if t.dtype.is_complex:
                raise TypeError(f"{name} has complex dtype {t.dtype}; features must be real numbers")
            if not t.dtype.is_floating_point:
                if t.dtype not in (torch.int8, torch.int16, torch.int32, torch.int64, torch.uint8, torch.bool):
                    raise TypeError(f"{name} has dtype {t.dtype}; expected float16/bfloat16/float32/float64")
                t = t.double()
            if t.dim() != 2:
                raise ValueError(f"{name} must be 2-D (samples x features), got shape {tuple(t.shape)}")
            if t.shape[1] < 1:
                raise ValueError(f"{name} has no feature columns (shape {tuple(t.shape)})")
            if t.shape[0] < min_rows:
                raise ValueError(f"{name} has {t.shape[0]} sample(s); at least {min_rows} are needed")
            self._check_device(t, name)
            check_finite(t, name)
        elif hasattr(x, "__cuda_array_interface__") or (hasattr(x, "__dlpack_device__")
                                                         and x.__dlpack_device__()[0] != 1):
            if not torch.cuda.is_available():
                raise ValueError(f"{name} lives on a CUDA device, and torch here has no CUDA device to read it on")
            return self.features(torch.as_tensor(x, device="cuda") if hasattr(x, "__cuda_array_interface__")
                                 else torch.from_dlpack(x), name, min_rows)
        else:  # numpy arrays, files, host DLPack producers: checked as the host checks them, then a tensor
            f = as_features(x, name, min_rows=min_rows)
            t = host_tensor(f.rows(0, f.n))
            if self.device is not None:  # host rows go where the engine runs
                t = t.to(self.device)
        self._check_device(t, name)
        return TorchFeatures(t, name)

    def _check_device(self, t: Any, name: str) -> None:
        if self.device is None:
            self.device = t.device
        elif t.device != self.device:
            raise ValueError(f"{name} is on {t.device} but the other inputs are on {self.device}; move them to one "
                             "device")

    def wrap(self, f: Any) -> TorchFeatures:
        """Host rows (a ring's block of float32/float64 Features) as this engine's features."""
        if isinstance(f, TorchFeatures):
            return f
        return TorchFeatures(host_tensor(f.array).to(self.device or "cpu"), f.name)

    def l2_normalized(self, f: TorchFeatures) -> TorchFeatures:
        t = f.t.to(_float64_device(f.t.device)).double()
        big = t.abs().amax(1)
        zero = torch.nonzero(big == 0)[:, 0]
        if len(zero):
            raise ValueError(f"{f.name} has {len(zero)} all-zero row(s) (first: {int(zero[0])}); they cannot be "
                             "L2-normalized")
        scaled = t / big[:, None]  # by the largest |value| first: no norm formed at a subnormal or huge magnitude
        out = scaled / torch.linalg.vector_norm(scaled, dim=1)[:, None]
        return TorchFeatures(out if f.t.device.type == "mps" else out.to(f.t.device), f.name)

    def knn_both(self, x, y, k: int, k_y: int, center):
        """The k nearest rows of y of every row of x and the k_y nearest rows of x of every row of y (two passes:
        (values, index, y values, y index, float64 evaluations))."""
        v, i, ev = self.knn_pass(x, y, k, center)
        vy, iy, ev_y = self.knn_pass(y, x, k_y, center)
        self.evaluations += ev + ev_y
        return v, i, vy, iy, ev + ev_y

    def as_input(self, f: TorchFeatures, rows: np.ndarray | None = None) -> Any:
        if rows is None:
            return f.t
        return f.t.index_select(0, torch.from_numpy(np.asarray(rows, np.int64)).to(f.t.device))

    def center(self, *sets: Set) -> Any:
        dev = _float64_device(sets[0].local.t.device)
        total = sum(s.local.t.to(dev).double().sum(0) for s in sets)
        return total / sum(s.local.n for s in sets)

    def subset(self, s: Set, idx: np.ndarray, name: str) -> Set:
        rows = torch.from_numpy(self.local_indices(s, idx)).to(s.local.t.device)
        return self.sets({name: s.local.t.index_select(0, rows)})[0]

    # -- distinct rows
    def _find_duplicates(self, f: TorchFeatures) -> Multiset | None:
        """Rows with equal projections on a fixed random direction are compared exactly (torch.unique over rows);
        None when every row is distinct. Distinct rows are ordered by their first occurrence, as on the host."""
        n, d = f.n, f.dim
        if n < 2:
            return None
        dev = _float64_device(f.t.device)
        x = f.t.to(dev)
        direction = torch.from_numpy(np.random.default_rng(0x5EED).standard_normal(d)).to(dev)
        proj = x.double() @ direction
        sp, order = torch.sort(proj, stable=True)
        same = sp[1:] == sp[:-1]
        if not bool(same.any()):
            return None
        member = torch.zeros(n, dtype=torch.bool, device=dev)
        member[1:] |= same
        member[:-1] |= same
        cand = torch.sort(order[member]).values  # rows sharing a projection with another row, in index order
        _, inv, _ = torch.unique(x.index_select(0, cand).double(), dim=0, return_inverse=True, return_counts=True)
        group = np.arange(n)
        cand_np, inv_np = cand.cpu().numpy(), inv.cpu().numpy()
        first_of = np.full(int(inv_np.max()) + 1, n)
        np.minimum.at(first_of, inv_np, cand_np)
        group[cand_np] = first_of[inv_np]
        firsts, inverse, counts = np.unique(group, return_inverse=True, return_counts=True)
        if len(firsts) == n:
            return None
        rows = TorchFeatures(f.t.index_select(0, torch.from_numpy(firsts).to(f.t.device)).contiguous(), f.name)
        return Multiset(rows, counts.astype(np.int64), inverse.astype(np.int64), firsts.astype(np.int64))

    # -- the tiled passes
    def _chunk_rows(self, d: int) -> int:
        return max(1, tile_kwargs(self.workspace_bytes)["workspace_bytes"] // (32 * d))

    def _prepared(self, x: TorchFeatures, y: TorchFeatures | None, center: Any):
        """Each set's tile maker (float32 scaled centred rows and float64 squared norms of a row range, made when
        a tile needs them, as the host fills its blocks), the scaling and the rounding bound."""
        dev = x.t.device
        c = torch.as_tensor(center, dtype=torch.float64).to(_float64_device(dev))
        mx = 0.0
        step = self._chunk_rows(x.dim)
        for f in (x, y):
            for a in range(0, f.n if f is not None else 0, step):
                mx = max(mx, float((f.t[a:a + step].to(c.device).double() - c).abs().max()))
        e = 0
        if mx > 0 and math.isfinite(mx):
            e = math.frexp(mx)[1] - 1  # mx * 2^-e lies in [1, 2)
            if e > MAX_EXPONENT:
                raise ValueError(f"feature values reach {mx:.3g} after centring: their squared distances overflow "
                                 "float64; divide the features by a power of two (k-NN decisions do not change)")
            if e < MIN_EXPONENT:
                raise ValueError(f"feature values are at most {mx:.3g} after centring: their squared distances "
                                 "underflow float64; multiply the features by a power of two (k-NN decisions do not "
                                 "change)")
        scale, unscale = math.ldexp(1.0, -e), math.ldexp(1.0, 2 * e)
        d = x.dim
        du = d * U32
        if du >= 0.25:
            raise ValueError(f"too many features ({d}) for float32 distance bounds")
        coef = 1.05 * (du / (1.0 - du) + 4.01 * U32 + (4.0 * d + 32.0) * U64)
        tau = 4.0 * d * math.ldexp(1.0, -120) * unscale
        rows = [None if f is None else _Rows(f, c, scale, unscale, dev) for f in (x, y)]
        return rows[0], rows[1], unscale, coef, tau

    def _tiles(self, n: int, m: int, d: int) -> tuple[int, int]:
        """Rows and columns per tile: a tile's float32 product and the float64 and mask tiles a pass holds at once
        (about eight float64 tiles) within the workspace."""
        kw = tile_kwargs(self.workspace_bytes)
        t = 4096
        while t > 64 and 64 * t * t + 8 * t * d > kw["workspace_bytes"]:
            t -= t // 4
        tr, tc = max(1, min(t, n)), max(1, min(t, m))
        if kw["max_tile_rows"] > 0:
            tr = min(tr, kw["max_tile_rows"])
        if kw["max_tile_cols"] > 0:
            tc = min(tc, kw["max_tile_cols"])
        return tr, tc

    def _exact(self, x: Any, y: Any, rows: Any, cols: Any) -> Any:
        """float64 squared distances of the pairs (x[rows], y[cols]), in chunks of pairs that fit the workspace
        (ties can make every pair of a tile a candidate). The order of the sum is fixed whatever the chunk: on
        the CPU feature by feature, the host kernels' order (the same float64 values as the host); elsewhere a
        fixed halving tree (log2 d launches instead of d). Either way equal rows give equal sums, so ties are ties."""
        dev = _float64_device(x.device)
        x, y, rows, cols = x.to(dev), y.to(dev), rows.to(dev), cols.to(dev)
        sequential = (self.summation or ("sequential" if dev.type == "cpu" else "tree")) == "sequential"
        step = max(1024, tile_kwargs(self.workspace_bytes)["workspace_bytes"] // (32 * x.shape[1]))
        out = torch.empty(len(rows), dtype=torch.float64, device=dev)
        for p0 in range(0, len(rows), step):
            a = x.index_select(0, rows[p0:p0 + step]).double()
            b = y.index_select(0, cols[p0:p0 + step]).double()
            if sequential:
                s = torch.zeros(len(a), dtype=torch.float64, device=dev)
                for j in range(a.shape[1]):
                    t = a[:, j] - b[:, j]
                    s += t * t
            else:
                v = (a - b) ** 2
                width = 1 << max(0, (v.shape[1] - 1).bit_length())
                if width > v.shape[1]:
                    v = torch.nn.functional.pad(v, (0, width - v.shape[1]))
                while width > 1:
                    width //= 2
                    v = v[:, :width] + v[:, width:]
                s = v[:, 0]
            out[p0:p0 + step] = s
        return out

    def _bounds(self, xb, yb, unscale, coef, tau, i0, i1, j0, j1):
        """Float64 (lo, hi) of the squared distances of a tile (rows i0:i1 of x, j0:j1 of y)."""
        xs, xn = xb.block(i0, i1)
        ys, yn = yb.block(j0, j1)
        dev = xn.device
        s = torch.mm(xs, ys.T).to(dev).double()
        nq, nr = xn[:, None], yn[None, :]
        val = nq + nr - 2.0 * unscale * s
        err = coef * (nq + nr) + tau
        return val - err, val + err

    def _topk_update(self, best_v, best_i, cand_v, cand_i, rows, k):
        """Merge candidates (row, value, index) into the k best per row by (value, index)."""
        dev = best_v.device
        n = best_v.shape[0]
        keep = torch.isfinite(best_v)
        r_all = torch.cat([torch.arange(n, device=dev).repeat_interleave(k)[keep.reshape(-1)], rows])
        v_all = torch.cat([best_v[keep], cand_v])
        i_all = torch.cat([best_i[keep], cand_i])
        order = torch.argsort(i_all, stable=True)
        order = order[torch.argsort(v_all[order], stable=True)]
        order = order[torch.argsort(r_all[order], stable=True)]
        r_s, v_s, i_s = r_all[order], v_all[order], i_all[order]
        starts = torch.searchsorted(r_s, torch.arange(n, device=dev))
        rank = torch.arange(len(r_s), device=dev) - starts[r_s]
        sel = rank < k
        best_v = torch.full_like(best_v, math.inf)
        best_i = torch.full_like(best_i, -1)
        best_v[r_s[sel], rank[sel]] = v_s[sel]
        best_i[r_s[sel], rank[sel]] = i_s[sel]
        return best_v, best_i

    def knn_pass(self, x, y, k, center, weight=None, *, desc: str = ""):
        self_pass = y is None
        y = x if self_pass else y
        n, m = x.n, y.n
        with exact_float32_products():
            xb, yb, unscale, coef, tau = self._prepared(x, None if self_pass else y, center)
            if self_pass:  # the same rows, with a block cache of their own for the columns
                yb = _Rows(x, xb.center, xb.scale, xb.unscale, xb.device)
            dev = _float64_device(x.t.device)
            w = None if weight is None else torch.as_tensor(np.asarray(weight, dtype=np.float64), device=dev)
            tr, tc = self._tiles(n, m, x.dim)
            out_v = torch.full((n, k), math.inf, dtype=torch.float64, device=dev)
            out_i = torch.full((n, k), -1, dtype=torch.int64, device=dev)
            evaluated = 0
            for i0 in range(0, n, tr):
                i1 = min(n, i0 + tr)
                best_v, best_i = out_v[i0:i1], out_i[i0:i1]
                for j0 in range(0, m, tc):
                    j1 = min(m, j0 + tc)
                    lo, hi = self._bounds(xb, yb, unscale, coef, tau, i0, i1, j0, j1)
                    cols = torch.arange(j0, j1, device=dev)
                    valid = torch.ones_like(lo, dtype=torch.bool)
                    if self_pass:
                        valid &= torch.arange(i0, i1, device=dev)[:, None] != cols[None, :]
                    if w is not None:
                        wc = w[j0:j1]
                        valid &= (wc > 0)[None, :]
                        lo, hi = lo * wc[None, :], hi * wc[None, :]
                    hi = torch.where(valid, hi, math.inf)
                    kk = min(k, j1 - j0)
                    bound = torch.cat([best_v, torch.topk(hi, kk, dim=1, largest=False).values], 1)
                    bound = torch.topk(bound, k, dim=1, largest=False).values[:, -1]
                    r, c = torch.nonzero(valid & (lo <= bound[:, None]), as_tuple=True)
                    if len(r):
                        vals = self._exact(x.t, y.t, r + i0, c + j0)
                        if w is not None:
                            vals = vals * w[c + j0]
                        evaluated += len(r)
                        best_v, best_i = self._topk_update(best_v, best_i, vals, c + j0, r, k)
                out_v[i0:i1], out_i[i0:i1] = best_v, best_i
        return out_v.cpu().numpy(), out_i.cpu().numpy(), evaluated

    def cross_pass(self, x, y, center, *, desc: str = "", col_radius2=None, row_radius2=None, col_min=False,
                   row_min=False, strict=False, col_multiplicity=None) -> dict:
        n, m = x.n, y.n
        with exact_float32_products():
            xb, yb, unscale, coef, tau = self._prepared(x, y, center)
            dev = _float64_device(x.t.device)

            def dev64(a):
                return None if a is None else torch.as_tensor(np.asarray(a, dtype=np.float64), device=dev)

            col_r2, row_r2 = dev64(col_radius2), dev64(row_radius2)
            mult = None if col_multiplicity is None else torch.as_tensor(np.asarray(col_multiplicity, np.int64),
                                                                            device=dev)
            tr, tc = self._tiles(n, m, x.dim)
            row_count = torch.zeros(n, dtype=torch.int64, device=dev)
            col_any = torch.zeros(m, dtype=torch.bool, device=dev)
            rmin_v = torch.full((n, 1), math.inf, dtype=torch.float64, device=dev)
            rmin_i = torch.full((n, 1), -1, dtype=torch.int64, device=dev)
            cmin_v = torch.full((m, 1), math.inf, dtype=torch.float64, device=dev)
            cmin_i = torch.full((m, 1), -1, dtype=torch.int64, device=dev)
            rechecked = 0

            def inside(f, radius):
                return f < radius if strict else f <= radius

            for i0 in range(0, n, tr):
                i1 = min(n, i0 + tr)
                for j0 in range(0, m, tc):
                    j1 = min(m, j0 + tc)
                    lo, hi = self._bounds(xb, yb, unscale, coef, tau, i0, i1, j0, j1)
                    if col_r2 is not None:  # reference balls containing each query row
                        radius = col_r2[None, j0:j1]
                        sure = hi < radius
                        maybe = (lo <= radius) & ~sure
                        r, c = torch.nonzero(maybe, as_tuple=True)
                        if len(r):
                            rechecked += len(r)
                            ok = inside(self._exact(x.t, y.t, r + i0, c + j0), radius[0, c])
                            sure[r[ok], c[ok]] = True
                        if mult is not None:
                            row_count[i0:i1] += (sure.long() * mult[None, j0:j1]).sum(1)
                        else:
                            row_count[i0:i1] += sure.sum(1)
                    if row_r2 is not None:  # query balls containing each reference row
                        radius = row_r2[i0:i1, None]
                        sure = hi < radius
                        maybe = (lo <= radius) & ~sure & ~col_any[None, j0:j1]
                        r, c = torch.nonzero(maybe, as_tuple=True)
                        if len(r):
                            rechecked += len(r)
                            ok = inside(self._exact(x.t, y.t, r + i0, c + j0), radius[r, 0])
                            sure[r[ok], c[ok]] = True
                        col_any[j0:j1] |= sure.any(0)
                    if row_min:
                        rmin_v[i0:i1], rmin_i[i0:i1], ev = self._min_update(
                            x.t, y.t, lo, hi, rmin_v[i0:i1], rmin_i[i0:i1], i0, j0, False)
                        rechecked += ev
                    if col_min:
                        cmin_v[j0:j1], cmin_i[j0:j1], ev = self._min_update(
                            y.t, x.t, lo.T, hi.T, cmin_v[j0:j1], cmin_i[j0:j1], j0, i0, True)
                        rechecked += ev
        out: dict = {"rechecked": rechecked}
        if col_r2 is not None:
            out["row_count"] = row_count.cpu().numpy()
        if row_r2 is not None:
            out["col_any"] = col_any.cpu().numpy().astype(np.uint8)
        if row_min:
            out["row_min"], out["row_argmin"] = rmin_v[:, 0].cpu().numpy(), rmin_i[:, 0].cpu().numpy()
        if col_min:
            out["col_min"], out["col_argmin"] = cmin_v[:, 0].cpu().numpy(), cmin_i[:, 0].cpu().numpy()
        return out

    def _min_update(self, a, b, lo, hi, best_v, best_i, a0, b0, transposed):
        """The nearest row of b for rows a0.. of a, merged with the best so far (ties by index)."""
        bound = torch.minimum(best_v[:, 0], hi.min(1).values)
        r, c = torch.nonzero(lo <= bound[:, None], as_tuple=True)
        if not len(r):
            return best_v, best_i, 0
        if transposed:  # the distances are those of (b rows, a rows): the same float64 values in the host's order
            vals = self._exact(b, a, c + b0, r + a0)
        else:
            vals = self._exact(a, b, r + a0, c + b0)
        best_v, best_i = self._topk_update(best_v, best_i, vals, c + b0, r, 1)
        return best_v, best_i, len(r)

    # -- kernel sums
    def kernel_sum(self, a: TorchFeatures, b: TorchFeatures, self_pass: bool, include_diagonal: bool, kernel: tuple,
                   float32_products: bool, desc: str = "") -> float:
        if a.n == 0 or b.n == 0:
            return 0.0
        kind, gamma, coef0, degree = kernel
        dev = _float64_device(a.t.device)
        dt = torch.float32 if float32_products else torch.float64
        xa, xb = a.t.to(dev), b.t.to(dev)
        na = (xa.double() ** 2).sum(1) if kind == _KIND_RBF else None
        nb = (xb.double() ** 2).sum(1) if kind == _KIND_RBF else None
        tr, tc = self._tiles(a.n, b.n, a.dim)
        total = torch.zeros((), dtype=torch.float64, device=dev)
        with exact_float32_products():
            for i0 in range(0, a.n, tr):
                i1 = min(a.n, i0 + tr)
                for j0 in range(0, b.n, tc):
                    j1 = min(b.n, j0 + tc)
                    dots = torch.mm(xa[i0:i1].to(dt), xb[j0:j1].to(dt).T).double()
                    if kind == _KIND_POLYNOMIAL:
                        k = (dots * gamma + coef0) ** degree
                    else:
                        k = torch.exp(-gamma * torch.clamp(na[i0:i1, None] + nb[None, j0:j1] - 2.0 * dots, min=0))
                    if self_pass and not include_diagonal and i0 < j1 and j0 < i1:
                        rows = torch.arange(i0, i1, device=dev)[:, None]
                        k = torch.where(rows == torch.arange(j0, j1, device=dev)[None, :], 0.0, k)
                    total += k.sum()
        return float(total)

    def kernel_sums(self, x: Set, y: Set, kernel: tuple, include_diagonal: bool, float32_products: bool,
                    ) -> tuple[float, float, float]:
        fx, fy = x.local, y.local
        return (self.kernel_sum(fx, fx, True, include_diagonal, kernel, float32_products),
                self.kernel_sum(fy, fy, True, include_diagonal, kernel, float32_products),
                self.kernel_sum(fx, fy, False, False, kernel, float32_products))

    def subset_mmd2(self, x: Set, y: Set, kernel: tuple, x_index: np.ndarray, y_index: np.ndarray,
                    float32_products: bool, desc: str = "") -> np.ndarray:
        """Each pair of subsets' kernel matrices whole (a subset is at most a few thousand rows), as the host forms
        them: the values do not depend on any tile size."""
        kind, gamma, coef0, degree = kernel
        dt = torch.float32 if float32_products else torch.float64
        dev = _float64_device(x.local.t.device)
        out = np.empty(len(x_index))

        def matrix(a, b):
            dots = (a.to(dt) @ b.to(dt).T).double()
            if kind == _KIND_POLYNOMIAL:
                return (dots * gamma + coef0) ** degree
            na, nb = (a.double() ** 2).sum(1), (b.double() ** 2).sum(1)
            return torch.exp(-gamma * torch.clamp(na[:, None] + nb[None, :] - 2.0 * dots, min=0))

        with exact_float32_products():
            for s, (ix, iy) in enumerate(zip(x_index, y_index)):
                a = x.local.t.to(dev).index_select(0, torch.from_numpy(np.asarray(ix, np.int64)).to(dev))
                b = y.local.t.to(dev).index_select(0, torch.from_numpy(np.asarray(iy, np.int64)).to(dev))
                kxx, kyy = matrix(a, a), matrix(b, b)
                sums = (float(kxx.sum() - torch.diagonal(kxx).sum()), float(kyy.sum() - torch.diagonal(kyy).sum()),
                        float(matrix(a, b).sum()))
                out[s] = unbiased_mmd2(*sums, float(len(a)), float(len(b)))
        return out


# ---------------------------------------------------------------------------------------------- linalg
def psd_factor(cov: np.ndarray, name: str, device: Any, rank_tol: float, psd_tol: float, max_rank: int) -> Any:
    """A factor A (d x r, float64 on ``device``) with S = A A^T, with the host's tolerances and errors: a Cholesky
    factor when S is clearly positive definite at this precision; else from S's eigendecomposition, where an
    eigenvalue below -psd_tol * largest is an error naming ``name``, and those within the rounding noise (at most
    rank_tol * largest, or twice the most negative eigenvalue: noise is symmetric about 0) count as 0; a
    covariance of n samples keeps at most n - 1."""
    S = torch.from_numpy(np.ascontiguousarray(cov, dtype=np.float64)).to(_float64_device(device))
    d = S.shape[0]
    diag = torch.diagonal(S)
    max_diag = float(diag.max())
    if float(diag.min()) >= 0 and (max_diag == 0 or max_rank == 0):
        return S.new_zeros((d, 0))
    if float(diag.min()) >= 0 and (max_rank < 0 or max_rank >= d):
        L, info = torch.linalg.cholesky_ex(S)
        if int(info) == 0 and float((torch.diagonal(L) ** 2).min()) > (rank_tol or d * 2.0**-52) * max_diag:
            return L
    w, V = torch.linalg.eigh(S)
    lo, hi = float(w[0]), float(w[-1])
    wmax = max(hi, 0.0)
    if lo < -psd_tol * wmax:
        raise ValueError(f"{name} is not positive semi-definite: it has an eigenvalue of {lo:.6g} (largest eigenvalue "
                         f"{hi:.6g})")
    cut = max((rank_tol if rank_tol > 0 else d * 2.0**-52) * wmax, 2.0 * max(0.0, -lo))
    keep = int((w > cut).sum())
    if max_rank >= 0 and keep > max_rank:
        cut_off = float(w[d - 1 - max_rank])
        if cut_off > psd_tol * wmax:
            raise ValueError(f"{name} has rank above {max_rank} (eigenvalue {cut_off:.6g} of largest {wmax:.6g}), more "
                             f"than a covariance of {max_rank + 1} samples can have: the sample count does not match "
                             "the matrix")
        keep = max_rank
    if keep == 0:
        return S.new_zeros((d, 0))
    return V[:, d - keep:] * torch.sqrt(w[d - keep:])[None, :]


def trace_sqrt_product(a1: Any, a2: Any) -> float:
    """tr sqrt(S1^1/2 S2 S1^1/2) = ||A1^T A2||_* (the nuclear norm: sum of singular values), float64."""
    if a1.shape[1] == 0 or a2.shape[1] == 0:
        return 0.0
    return float(torch.linalg.svdvals(a1.T @ a2).sum())
