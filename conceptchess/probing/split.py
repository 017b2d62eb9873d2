"""Splits by game, standardisation, and game-level bootstrap confidence intervals.

Positions of one game are strongly correlated (same pawn structure, same material for many plies), so
a probe trained on some plies of a game and tested on others would be scored on near-copies of its
training data. Every split here is by game: a game's positions all go to one side. The bootstrap
resamples test *games* (a cluster bootstrap) for the same reason.

>>> s = split_by_game(np.repeat(np.arange(20), 5), seed=0)
>>> len(s.train) + len(s.val) + len(s.test), len(set(s.games[s.train]) & set(s.games[s.test]))
(100, 0)
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import torch

from conceptchess.bootstrap import cluster_counts, draw_clusters
from conceptchess.errors import ConceptChessError

DEFAULT_FRACTIONS = (0.7, 0.15, 0.15)


@dataclass
class Split:
    """Row indices of the train, validation and test sides, and the game (group) of every row."""

    train: np.ndarray
    val: np.ndarray
    test: np.ndarray
    games: np.ndarray

    def sizes(self) -> tuple[int, int, int]:
        return len(self.train), len(self.val), len(self.test)


def game_codes(games: list) -> np.ndarray:
    """Integer codes of game ids (any hashable JSON values), in order of first appearance."""
    codes: dict = {}
    return np.fromiter((codes.setdefault(g if not isinstance(g, list) else tuple(g), len(codes)) for g in games),
                       dtype=np.int64, count=len(games))


def split_by_game(games: np.ndarray, fractions: tuple[float, float, float] = DEFAULT_FRACTIONS, seed: int = 0) -> Split:
    """Assign whole games to train / validation / test in the given proportions of *games* (seeded).

    Needs at least three games; each side gets at least one.
    """
    games = np.asarray(games)
    if len(fractions) != 3 or any(f <= 0 for f in fractions):
        raise ConceptChessError(f"split fractions must be three positive numbers, not {fractions}")
    total = float(sum(fractions))
    unique = np.unique(games)
    if len(unique) < 3:
        raise ConceptChessError(f"the positions come from {len(unique)} game(s); a split by game needs at least 3")
    order = np.random.default_rng(np.random.SeedSequence([seed, 0x5B11])).permutation(unique)
    n = len(order)
    n_val = max(1, int(round(n * fractions[1] / total)))
    n_test = max(1, int(round(n * fractions[2] / total)))
    n_train = n - n_val - n_test
    if n_train < 1:
        raise ConceptChessError(f"too few games ({n}) for a train / validation / test split")
    side = np.empty(n, dtype=np.int8)
    side[:n_train], side[n_train : n_train + n_val], side[n_train + n_val :] = 0, 1, 2
    lookup = dict(zip(order.tolist(), side.tolist()))
    row_side = np.fromiter((lookup[g] for g in games.tolist()), dtype=np.int8, count=len(games))
    return Split(np.flatnonzero(row_side == 0), np.flatnonzero(row_side == 1), np.flatnonzero(row_side == 2), games)


@dataclass
class Standardizer:
    """Per-feature mean and scale from the training rows; constant and repeated features are dropped.

    ``keep`` marks the features used: not constant (scale > ``eps``) and not an exact copy of an
    earlier feature on every row of the matrix fitted; :meth:`transform` returns only those. ``copy_of``
    gives, per feature, the kept feature it repeats (its own index if kept, -1 if constant). The input
    planes have many copies (a castling, side-to-move or repetition plane is 64 equal squares: 21 % of
    the non-constant input features on real games). For an L1 probe a copied feature changes nothing
    but the cost: the penalty of weights spread over equal columns equals that of their sum, so the
    probe is fitted on one column and :meth:`to_raw` shares the weight equally among the copies.
    """

    mean: np.ndarray
    scale: np.ndarray
    keep: np.ndarray
    copy_of: np.ndarray | None = None

    @classmethod
    def fit(cls, X: np.ndarray, rows: np.ndarray | None = None, eps: float = 1e-6, block: int = 2048,
            dedupe: bool = True) -> "Standardizer":
        """Statistics of ``X[rows]`` (all rows if None), accumulated in float64 a block of rows at a time;
        copies are looked for over every row of ``X``."""
        rows = np.arange(len(X)) if rows is None else np.asarray(rows)
        s1 = np.zeros(X.shape[1], dtype=np.float64)
        s2 = np.zeros(X.shape[1], dtype=np.float64)
        for i in range(0, len(rows), block):
            part = np.asarray(X[rows[i : i + block]], dtype=np.float64)
            s1 += part.sum(0)
            s2 += np.square(part).sum(0)
        n = max(len(rows), 1)
        mean = s1 / n
        scale = np.sqrt(np.maximum(s2 / n - mean * mean, 0.0))
        varies = scale > eps * np.maximum(1.0, np.abs(mean))
        copy_of = _copies(X, varies, block) if dedupe and varies.any() else np.where(varies, np.arange(X.shape[1]), -1)
        keep = copy_of == np.arange(X.shape[1])
        return cls(mean.astype(np.float32), np.where(varies, scale, 1.0).astype(np.float32), keep, copy_of)

    def transform(self, X: np.ndarray) -> np.ndarray:
        """Standardised kept features of every row of ``X``, float32."""
        return self.tensor(X).numpy()

    def tensor(self, X: np.ndarray, rows: np.ndarray | None = None):
        """Standardised kept features of ``X[rows]`` (all rows if None) as a float32 torch tensor.

        Rows are gathered first and columns dropped with ``compress`` (a boolean column index on the
        whole matrix is ~10× slower); centring and scaling run in place in torch, on every core.
        """
        part = np.asarray(X if rows is None else X[np.asarray(rows)], dtype=np.float32)
        if not self.keep.all():
            part = part.compress(self.keep, axis=1)
        elif np.may_share_memory(part, X):  # never standardise the caller's array in place
            part = part.copy()
        t = torch.from_numpy(np.ascontiguousarray(part))
        t.sub_(torch.from_numpy(self.mean[self.keep])).mul_(torch.from_numpy(1.0 / self.scale[self.keep]))
        return t

    def to_raw(self, coef: np.ndarray, intercept: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Weights on the standardised kept features → weights on every raw feature (``(D_raw, T)``) and
        intercepts; a kept feature's weight is shared equally by its copies."""
        coef = np.atleast_2d(coef.T).T
        raw = np.zeros((len(self.keep), coef.shape[1]), dtype=np.float64)
        raw[self.keep] = coef / self.scale[self.keep, None]
        if self.copy_of is not None and (self.copy_of >= 0).sum() > self.keep.sum():
            used = self.copy_of >= 0
            counts = np.bincount(self.copy_of[used], minlength=len(self.keep))
            raw[used] = raw[self.copy_of[used]] / counts[self.copy_of[used], None]
        b = np.asarray(intercept, dtype=np.float64) - self.mean @ raw
        return raw.astype(np.float32), b


def _copies(X: np.ndarray, candidates: np.ndarray, block: int) -> np.ndarray:
    """Per column of ``X``: the first candidate column equal to it on every row (itself if none; -1 for
    non-candidates). Equal columns have equal random projections; groups of equal projections are then
    compared exactly."""
    D = X.shape[1]
    cols = np.flatnonzero(candidates)
    r = np.random.default_rng(0x5EED).standard_normal(len(X)).astype(np.float32)
    sig = np.zeros(D)
    for i in range(0, len(X), block):  # elementwise, not BLAS: every column goes through the same operations,
        sig += (X[i : i + block] * r[i : i + block, None]).sum(0, dtype=np.float64)  # so equal columns get equal sums
    sig = sig[cols]
    _, first, inverse = np.unique(sig, return_index=True, return_inverse=True)
    rep = cols[first[inverse.ravel()]]  # the first column with the same projection
    out = np.full(D, -1, dtype=np.int64)
    out[cols] = cols
    dup = rep != cols
    if dup.any():
        a, b = cols[dup], rep[dup]
        same = np.ones(len(a), dtype=bool)
        for i in range(0, len(X), block):
            part = X[i : i + block]
            same &= (part[:, a] == part[:, b]).all(0)
        out[a[same]] = b[same]
    return out


# -- bootstrap -----------------------------------------------------------------------------------------
def bootstrap_counts(groups: np.ndarray, n_boot: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Resample groups with replacement: ``(codes per row, counts (n_boot, n_groups))``, seeded (the cluster
    bootstrap of :mod:`conceptchess.bootstrap`, with the groups as clusters)."""
    codes = np.unique(groups, return_inverse=True)[1].ravel()
    k = int(codes.max()) + 1 if len(codes) else 0
    rng = np.random.default_rng(np.random.SeedSequence([seed, 0xB007]))
    return codes, cluster_counts(draw_clusters(rng, k, n_boot), k)


def _per_group(codes: np.ndarray, k: int, values: np.ndarray) -> np.ndarray:
    """Sum of ``values (n, T)`` per group: ``(k, T)``."""
    out = np.zeros((k, values.shape[1]), dtype=np.float64)
    np.add.at(out, codes, values)
    return out


def bootstrap_ci(metric: str, y: np.ndarray, pred: np.ndarray, mask: np.ndarray, codes: np.ndarray, counts: np.ndarray,
                 level: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    """Percentile confidence intervals of R² or balanced accuracy per column, resampling test games.

    ``y``, ``pred``, ``mask`` are ``(n, T)`` (pred: predictions for R², 0/1 decisions for balanced
    accuracy); ``codes``/``counts`` come from :func:`bootstrap_counts` over the same rows.
    """
    k = counts.shape[1]
    m = mask.astype(np.float64)
    y = np.where(mask, y, 0.0)
    pred = np.where(mask, pred, 0.0)
    if metric == "r2":
        stats = [_per_group(codes, k, a) for a in (m, y * m, y * y * m, (y - pred) ** 2 * m)]
        n, s1, s2, sse = (counts @ s for s in stats)
        sst = s2 - s1 * s1 / np.maximum(n, 1.0)
        with np.errstate(divide="ignore", invalid="ignore"):
            boot = np.where(sst > 1e-12, 1.0 - sse / sst, np.nan)
    else:
        pos, neg = y * m, (1.0 - y) * m
        stats = [_per_group(codes, k, a) for a in (pred * pos, pos, (1.0 - pred) * neg, neg)]
        tp, p, tn, nn = (counts @ s for s in stats)
        with np.errstate(divide="ignore", invalid="ignore"):
            boot = np.where((p > 0) & (nn > 0), (tp / p + tn / nn) / 2.0, np.nan)
    alpha = (1.0 - level) / 2.0
    with np.errstate(all="ignore"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            low = np.nanquantile(boot, alpha, axis=0)
            high = np.nanquantile(boot, 1.0 - alpha, axis=0)
    return low, high
