"""Half-sampling rounds answered from one augmented pass, with the values recomputing each round would give.

A bootstrap round (:mod:`ganmetrics.metrics.bootstrap`, :func:`ganmetrics.paired.compare`, the leaderboard's
intervals) evaluates a metric on subsets of rows that were already compared once. Recomputing it costs a radius
pass and a cross pass per round; here every round is read from lists built once:

- **radii within a draw.** Each distinct row keeps its ``depth`` nearest distinct rows (exact float64 squared
  distances, ties by index); its k-NN radius inside a draw is the distance at which the drawn copies along that
  list (its own other copies first, at distance 0) reach k. A row whose list runs out before that gets a longer
  list, up to all rows: the radius is always the one a pass over the drawn rows computes.
- **candidate pairs.** One fake x real pass lists every pair within the largest radius either end has in any
  round, with its exact float64 distance (:meth:`ganmetrics.engines.base.Engine.pairs_pass`). Every inclusion
  any round can decide is in that list, so precision (a drawn fake inside a drawn real ball), density (how
  many), coverage (a drawn real ball holding a drawn fake) and recall (a drawn real inside a drawn fake ball)
  are exact integer counts over the list, divided as :func:`ganmetrics.metrics.knn.prdc_values` divides.

Decisions are on the same float64 values the engines decide on (``sum_i (x_i - y_i)^2`` in a fixed order, which
depends on neither the tile, the centre nor the subset), so each round's values equal the recomputed ones bit for
bit; tests/test_rounds.py checks that against the recomputing path. Memory: the lists, O((N + M) depth), and the
candidate pairs (``info["candidate_pairs"]``), about (N + M) times the depth a round's radius reaches.

FID with a fixed real side (:class:`FixedRealFrechet`): each generated row is projected once on a factor L of the
real covariance (S_r = L L^T); a round's trace term tr sqrt(S_r^1/2 S_b S_r^1/2) is then the sum of the square
roots of the eigenvalues of the round's covariance of the projected rows, L^T S_b L -- one float64 Gram and one
symmetric eigenvalue problem per round instead of a factorization, a product and an SVD. Rounding bound, per
round: with delta = (m + d + 2 r + 16) u tr(L^T S_b L) (u = 2^-53; the Gram's, the projection's and the
eigensolver's backward errors, each at most a few u times tr of the matrix), every computed eigenvalue is within
delta of an exact one (Weyl), so the trace term is within beta = sum_i min(sqrt(delta), delta / sqrt(lambda_i))
and the round's FID within 2 beta of the FID of the same statistics against the factored reference
(``Interval.round_error``); an interval end moves by at most 2 scale round_error.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from ganmetrics._arrays import Features
from ganmetrics._progress import steps
from ganmetrics.engines import Engine, Set
from ganmetrics.metrics.frechet import _NEGATIVE_TOL, _Side
from ganmetrics.stats import F64_UNIT_ROUNDOFF, FeatureStats

# Depth of the neighbour lists, in multiples of k: a half draw reaches about depth 2k; the rare row that needs
# more gets a longer list.
DEPTH_FACTOR = 4
# Entries of a longer-list pass per block of rows (bounded memory whatever the number of such rows).
_LONG_BLOCK = 1 << 22


def draw_counts(s: Set, eng: Engine, draws: Sequence[np.ndarray]) -> list[np.ndarray]:
    """Per round, how many copies of each distinct row of ``s`` the draw holds (global row indices)."""
    ms = eng.distinct(s).ms
    return [np.bincount(ms.inverse[np.asarray(idx, np.int64)], minlength=ms.rows.n).astype(np.int64)
            for idx in draws]


class SideRounds:
    """Squared k-NN radii of one set's distinct rows within each round's draw (-1 where a row is not drawn), from
    deep neighbour lists; or, for a set that is not resampled (``draws=None``), its full radii in every round."""

    def __init__(self, eng: Engine, s: Set, k: int, center: np.ndarray, draws: Sequence[np.ndarray] | None,
                 n_rounds: int, full_radii2: np.ndarray | None = None):
        self.set, self.k = s, k
        ms = eng.distinct(s).ms
        self.n_distinct = ms.rows.n
        if draws is None:
            r2 = eng.radii2(s, k, center) if full_radii2 is None else np.asarray(full_radii2, np.float64)
            self.fixed = np.ascontiguousarray(r2[ms.first])
            self.fixed_counts = ms.counts
            self.counts = None
            self.sizes = [s.n] * n_rounds
            self.longest = self.fixed
            self.depth = 0
            return
        self.fixed = None
        self.counts = draw_counts(s, eng, draws)
        self.sizes = [int(c.sum()) for c in self.counts]
        self.radii = self._radii(eng, ms, center)
        self.longest = np.max(np.stack(self.radii), axis=0)

    def round(self, b: int) -> tuple[np.ndarray, np.ndarray]:
        """(copies drawn of each distinct row, squared radius within the draw) in round ``b``."""
        if self.fixed is not None:
            return self.fixed_counts, self.fixed
        return self.counts[b], self.radii[b]

    def _radii(self, eng: Engine, ms, center: np.ndarray) -> list[np.ndarray]:
        k, n = self.k, self.n_distinct
        out = [np.full(n, -1.0) for _ in self.counts]
        self.depth = min(n - 1, DEPTH_FACTOR * k + 8)
        if self.depth == 0:  # one distinct row: every drawn copy has its k neighbours at distance 0
            for b, c in enumerate(self.counts):
                out[b][c > 0] = 0.0
            return out
        values, index = eng.neighbours(self.set, self.depth, center, f"{k}-NN lists of {self.set.name}")
        short: dict[int, list[int]] = {}  # distinct row -> rounds its list did not reach
        for b, c in enumerate(self.counts):
            drawn = np.flatnonzero(c)
            need = k - (c[drawn] - 1)
            r = np.zeros(len(drawn))
            todo = np.flatnonzero(need > 0)
            if len(todo):
                rows = drawn[todo]
                cum = np.cumsum(c[index[rows]], axis=1)
                reached = cum[:, -1] >= need[todo]
                pos = np.argmax(cum >= need[todo][:, None], axis=1)
                r[todo] = np.where(reached, values[rows, pos], np.nan)
                for u in rows[~reached]:
                    short.setdefault(int(u), []).append(b)
            out[b][drawn] = r
        if short:
            self._long_lists(eng, ms, center, short, out)
        return out

    def _long_lists(self, eng: Engine, ms, center: np.ndarray, short: dict[int, list[int]],
                    out: list[np.ndarray]) -> None:
        """Radii of the rows whose list ran out, from their distances to every distinct row."""
        k, n = self.k, self.n_distinct
        rows = np.array(sorted(short), np.int64)
        f = ms.rows
        step = max(1, _LONG_BLOCK // n)
        for a in range(0, len(rows), step):
            block = rows[a:a + step]
            x = Features(np.ascontiguousarray(f.array[block]), f.code, f.name)
            values, index, evaluated = eng.knn_pass(x, f, n, center, desc=f"longer k-NN lists of {self.set.name}")
            eng.evaluations += int(evaluated)
            for j, u in enumerate(block):
                keep = index[j] != u  # itself excluded by index
                v, i = values[j][keep], index[j][keep]
                for b in short[int(u)]:
                    c = self.counts[b]
                    need = k - (c[u] - 1)
                    cum = np.cumsum(c[i])
                    out[b][u] = v[int(np.argmax(cum >= need))]


class KnnRounds:
    """Precision, recall, density and coverage of every round (a draw of the real and of the fake rows), from the
    sides' radii and one candidate-pair pass (see the module doc)."""

    def __init__(self, eng: Engine, fr: Set, ff: Set, real: SideRounds, fake: SideRounds, center: np.ndarray,
                 names: Sequence[str]):
        self.eng, self.real, self.fake, self.names = eng, real, fake, tuple(names)
        dr, df = eng.distinct(fr).ms, eng.distinct(ff).ms
        need_recall = "recall" in self.names
        q, c, f = eng.pairs_pass(df.rows, dr.rows, center,
                                 np.ascontiguousarray(fake.longest) if need_recall else None,
                                 np.ascontiguousarray(real.longest), desc="fake x real candidate pairs")
        self.q, self.c, self.f = q, c, f
        self.info = {"candidate_pairs": int(len(q)), "candidate_bytes": int(q.nbytes + c.nbytes + f.nbytes),
                     "list_depth": {"real": real.depth, "fake": fake.depth}}

    def values(self, b: int) -> dict[str, float]:
        cr, rr = self.real.round(b)
        cf, rf = self.fake.round(b)
        m_r, m_f, k = self.real.sizes[b], self.fake.sizes[b], self.real.k
        q, c, f = self.q, self.c, self.f
        out: dict[str, float] = {}
        if {"precision", "density", "coverage"} & set(self.names):
            inside = (f <= rr[c]) & (cf[q] > 0)  # a drawn fake inside a drawn real ball (rr = -1: not drawn)
            if "precision" in self.names:
                hit = np.zeros(len(cf), bool)
                hit[q[inside]] = True
                out["precision"] = int(cf[hit].sum()) / m_f
            if "density" in self.names:
                out["density"] = float(int((cf[q[inside]] * cr[c[inside]]).sum()) / (k * m_f))
            if "coverage" in self.names:
                held = np.zeros(len(cr), bool)
                held[c[inside]] = True
                out["coverage"] = int(cr[held].sum()) / m_r
        if "recall" in self.names:
            inside = (f <= rf[q]) & (cr[c] > 0)  # a drawn real inside a drawn fake ball
            hit = np.zeros(len(cr), bool)
            hit[c[inside]] = True
            out["recall"] = int(cr[hit].sum()) / m_r
        return {m: out[m] for m in self.names}


def knn_rounds(eng: Engine, fr: Set, ff: Set, k: int, real_draws: Sequence[np.ndarray] | None,
               fake_draws: Sequence[np.ndarray], names: Sequence[str], real_radii2: np.ndarray | None = None,
               real_side: SideRounds | None = None) -> tuple[list[dict[str, float]], dict]:
    """Every round's k-NN metrics (``real_draws=None``: the real set is not resampled; ``real_radii2``: its saved
    radii; ``real_side``: the real side's rounds shared with another generator) and the pass's diagnostics."""
    n_rounds = len(fake_draws)
    center = eng.center(fr, ff)
    real = real_side or SideRounds(eng, fr, k, center, real_draws, n_rounds, real_radii2)
    fake = SideRounds(eng, ff, k, center, fake_draws, n_rounds)
    rounds = KnnRounds(eng, fr, ff, real, fake, center, names)
    return [rounds.values(b) for b in steps(range(n_rounds), n_rounds, "bootstrap rounds (PRDC)", unit="rounds",
                                            progress=eng.progress)], rounds.info


def check_round_k(k: int, sizes: Sequence[int], what: str) -> None:
    """A round's subsample must hold more than k rows (the recomputing path refuses it in its first round)."""
    small = min(sizes)
    if k >= small:
        raise ValueError(f"k = {k} must be smaller than the number of {what} samples in a bootstrap round ({small}); "
                         "raise fraction or lower k")


# ---------------------------------------------------------------------------------------------- FID
class FixedRealFrechet:
    """FID of subsets of one generated set against a fixed real side, through the generated rows projected once on
    a factor of the real covariance (see the module doc for the method and its rounding bound)."""

    def __init__(self, real: FeatureStats, fake: Features):
        side = _Side.of(real, "real covariance")
        tol = side.tolerances()
        self.factor = side.eig_factor()  # S_r = L L^T on its numerical rank
        self.real_mean = np.asarray(side.mean, np.float64)
        self.real_trace = float(np.trace(np.asarray(side.cov, np.float64)))
        self.rel_tol = max(_NEGATIVE_TOL, tol["psd_tol"])
        x = fake.rows(0, fake.n).astype(np.float64)
        self.shift = x.mean(axis=0)
        x -= self.shift
        self.x = x
        self.sq = np.einsum("ij,ij->i", x, x)
        self.z = x @ self.factor
        self.dim, self.rank = fake.dim, self.factor.shape[1]

    def distance(self, idx: np.ndarray) -> tuple[float, float]:
        """(FID of the rows ``idx`` against the real side, a bound on its rounding error)."""
        m = len(idx)
        xb = self.x[idx]
        mu = xb.mean(axis=0)  # the subset's mean minus the shift
        zb = self.z[idx]
        zb = zb - zb.mean(axis=0)
        gram = zb.T @ zb / (m - 1)
        lam = np.linalg.eigvalsh(gram)
        pos = np.maximum(lam, 0.0)
        trace_sqrt = float(np.sqrt(pos).sum())
        fake_trace = float((self.sq[idx].sum() - m * (mu @ mu)) / (m - 1))
        diff = mu + self.shift - self.real_mean
        mean_term = float(diff @ diff)
        fd = mean_term + self.real_trace + fake_trace - 2.0 * trace_sqrt
        if fd < 0.0:
            scale = mean_term + abs(self.real_trace) + abs(fake_trace)
            if fd < -self.rel_tol * max(scale, np.finfo(np.float64).tiny):
                raise ValueError(f"the Fréchet distance of a bootstrap round came out negative ({fd:.6g})")
            fd = 0.0
        delta = (m + self.dim + 2 * self.rank + 16) * F64_UNIT_ROUNDOFF * max(float(np.trace(gram)), 0.0)
        with np.errstate(divide="ignore", invalid="ignore"):  # the pos == 0 branch is not taken
            per = np.where(pos > 0, np.minimum(np.sqrt(delta), delta / np.sqrt(pos)), np.sqrt(delta))
        return fd, 2.0 * float(per.sum())
