"""Probe one activation matrix for many targets at once: the unit of work of a sweep (a network × tap).

:func:`probe_matrix` standardises the tap once (training-row statistics), computes one Gram matrix,
fits every regression target and every classification target along warm-started L1 paths (plus the
shuffled-label control of each, in the same batch), scores them on the test games with a
game-level bootstrap interval, and maps each probe back to raw activation space.

A target is skipped (with a reason) when it cannot be probed on this split: fewer than
``MIN_LABELLED`` labelled positions on a side, a constant label on the training side, or — for a
binary target — a side without both classes. A probe whose chosen λ leaves every weight at zero is
reported with status :data:`NO_FIT` (and :data:`NO_FIT_REASON`) rather than ``ok``: it predicts a
constant, so its score (R² ≈ 0, balanced accuracy 0.5) says that this probe found nothing, not that
the tap holds nothing — an exactly linear concept can end there (``material_diff`` on the full 8×8
input planes of ~1,200 positions: every λ below λ_max scores worse on validation than the zero probe).

Every result, skipped or not, records in its ``details`` the labels it was trained and tested on
(:func:`label_counts`): positives and negatives of each split side for a classification target, the
label variance for a regression one — a balanced accuracy over 28 test positives is another number
than one over 2,800.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field

import numpy as np
import torch

from conceptchess.probing.regularisation import (
    DEFAULT_PATIENCE,
    DEFAULT_RATIOS,
    Design,
    balanced_accuracies,
    logistic_path,
    r2_scores,
    regression_path,
)
from conceptchess.probing.split import Split, Standardizer, bootstrap_ci, bootstrap_counts
from conceptchess.probing.targets import Target

#: Bumped whenever the solvers change their results: it is part of a run's key, so a rerun after an
#: upgrade makes a new run instead of mixing old and new rows. 2: rejected logistic steps are retried;
#: 3: retried on the rejected targets only, and exact copies of a feature fitted once.
SOLVER_REVISION = 3
MIN_LABELLED = 10  # labelled positions needed on each side
MIN_CLASS = 2  # examples of each class needed on each side (binary targets)
NO_FIT = "no-fit"  # the status of a probe that ended at all-zero weights
NO_FIT_REASON = "all weights zero at the chosen λ: the probe predicts a constant"


@dataclass
class ProbeSettings:
    """Everything that decides a probe's numbers (part of a run's identity)."""

    fractions: tuple[float, float, float] = (0.7, 0.15, 0.15)
    ratios: tuple[float, ...] = DEFAULT_RATIOS
    patience: int = DEFAULT_PATIENCE
    n_boot: int = 1000
    level: float = 0.95
    shuffled: bool = True

    def to_dict(self) -> dict:
        return {"fractions": list(self.fractions), "ratios": list(self.ratios), "patience": self.patience,
                "n_boot": self.n_boot, "level": self.level, "shuffled": self.shuffled,
                "solver": "admm-gram/l1 (lasso), mm-admm (l1 logistic)", "solver_revision": SOLVER_REVISION, "standardise": "train rows, per feature",
                "selection": "validation score over the λ grid", "threshold": "training prevalence (binary)",
                "bootstrap": "test games, percentile"}


@dataclass
class TargetResult:
    target: Target
    status: str  # ok | no-fit (all weights zero: the score is a constant's) | skipped
    reason: str | None = None
    score: float | None = None
    ci_low: float | None = None
    ci_high: float | None = None
    shuffled: float | None = None
    nonzero: int | None = None
    features: int | None = None
    alpha: float | None = None
    intercept: float | None = None
    vector: np.ndarray | None = None  # raw activation space, the tap's per-position shape
    sizes: tuple[int, int, int] | None = None
    details: dict = field(default_factory=dict)


def shuffled_labels(y: np.ndarray, name: str, seed: int) -> np.ndarray:
    """The control task: ``y``'s labelled values permuted over the labelled positions (seeded per target)."""
    rng = np.random.default_rng(np.random.SeedSequence([seed, 0x5EED, zlib.crc32(name.encode())]))
    out = y.copy()
    idx = np.flatnonzero(~np.isnan(y))
    out[idx] = y[idx][rng.permutation(len(idx))]
    return out


SIDES = ("train", "val", "test")  # the split sides, as the details keys name them


def label_counts(t: Target, y: np.ndarray, split: Split) -> dict:
    """The labelled positions of each split side: ``{side}_positives`` and ``{side}_negatives`` of a
    classification target, ``{side}_variance`` (population variance, the denominator of R²) of a
    regression one (left out where the side has no labelled position), for ``side`` in :data:`SIDES`.

    >>> s = Split(np.array([0, 1, 2, 3]), np.array([4]), np.array([5, 6]), np.arange(7))
    >>> label_counts(Target("x", "classification", "x"), np.array([1, 0, 0, 1, 1, 0, np.nan]), s)
    {'train_positives': 2, 'train_negatives': 2, 'val_positives': 1, 'val_negatives': 0, 'test_positives': 0, 'test_negatives': 1}
    >>> label_counts(Target("y", "regression", "y"), np.array([0, 2, 0, 2, 5, 1, 3.]), s)
    {'train_variance': 1.0, 'val_variance': 0.0, 'test_variance': 1.0}
    """
    out: dict = {}
    for side, rows in zip(SIDES, (split.train, split.val, split.test), strict=True):
        v = y[rows]
        v = v[~np.isnan(v)]
        if t.kind == "classification":
            pos = int((v == 1).sum())
            out[f"{side}_positives"], out[f"{side}_negatives"] = pos, len(v) - pos
        elif len(v):
            out[f"{side}_variance"] = float(v.var())
    return out


def _why_not(t: Target, y: np.ndarray, split: Split) -> str | None:
    for side, rows in (("training", split.train), ("validation", split.val), ("test", split.test)):
        v = y[rows]
        v = v[~np.isnan(v)]
        if len(v) < MIN_LABELLED:
            return f"only {len(v)} labelled positions in the {side} games"
        if t.kind == "classification":
            pos = int((v == 1).sum())
            if min(pos, len(v) - pos) < MIN_CLASS:
                return f"{pos} positive and {len(v) - pos} negative positions in the {side} games"
        elif side == "training" and float(v.std()) == 0.0:
            return f"the label is constant ({v[0]:g}) in the training games"
    return None


def _tensor(a: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32))


def probe_matrix(X: np.ndarray, tap_shape: tuple[int, ...], targets: list[Target], Y: np.ndarray, split: Split, *,
                 settings: ProbeSettings = ProbeSettings(), seed: int = 0, standardizer: Standardizer | None = None) -> list[TargetResult]:
    """Probe every target (column of ``Y (n, T)``, NaN = unlabelled) on ``X (n, D)``; one result per target."""
    results: dict[str, TargetResult] = {}
    live: list[int] = []
    labels = [label_counts(t, Y[:, j], split) for j, t in enumerate(targets)]
    for j, t in enumerate(targets):
        why = _why_not(t, Y[:, j], split)
        if why:
            results[t.name] = TargetResult(t, "skipped", why, details=labels[j])
        else:
            live.append(j)
    if live:
        std = standardizer or Standardizer.fit(X, split.train)
        Xtr, Xv, Xte = (std.tensor(X, rows) for rows in (split.train, split.val, split.test))
        design = Design(Xtr, Xv)
        codes, counts = bootstrap_counts(split.games[split.test], settings.n_boot, seed)
        for kind in ("regression", "classification"):
            cols = [j for j in live if targets[j].kind == kind]
            if not cols:
                continue
            Yk = Y[:, cols]
            if settings.shuffled:
                Yk = np.concatenate([Yk, np.stack([shuffled_labels(Y[:, j], targets[j].name, seed) for j in cols], 1)], 1)
            M = ~np.isnan(Yk)
            Yk = np.where(M, Yk, 0.0)
            ytr, mtr = _tensor(Yk[split.train]), torch.from_numpy(M[split.train])
            yv, mv = _tensor(Yk[split.val]), torch.from_numpy(M[split.val])
            path = regression_path if kind == "regression" else logistic_path
            fit = path(design, ytr, None if bool(mtr.all()) else mtr, yv, None if bool(mv.all()) else mv, ratios=settings.ratios,
                       patience=settings.patience)
            yte, mte = Yk[split.test], M[split.test]
            logits = (Xte @ fit.coef + fit.intercept).numpy().astype(np.float64)
            if kind == "regression":
                pred = logits
                score = r2_scores(torch.from_numpy(yte), torch.from_numpy(pred), torch.from_numpy(mte)).numpy()
                metric = "r2"
            else:
                from scipy.special import expit  # lazy: scipy costs ~0.2 s at import, and only a classification cell needs it

                prev = fit.prevalence.numpy().astype(np.float64)
                pred = (expit(logits) > prev).astype(np.float64)
                score = balanced_accuracies(torch.from_numpy(yte), torch.from_numpy(pred), torch.from_numpy(mte)).numpy()
                metric = "balanced_accuracy"
            k = len(cols)
            low, high = bootstrap_ci(metric, yte[:, :k], pred[:, :k], mte[:, :k], codes, counts, settings.level)
            coef = fit.coef.numpy()[:, :k]
            raw, b_raw = std.to_raw(coef, fit.intercept.numpy()[:k])
            for i, j in enumerate(cols):
                t = targets[j]
                n_tr, n_v, n_te = (int((~np.isnan(Y[rows, j])).sum()) for rows in (split.train, split.val, split.test))
                details = {"val_score": float(fit.val_score[i]), "path_steps": int(fit.steps[i]), **labels[j]}
                if kind == "classification":
                    details["threshold"] = float(prev[i])
                    details["positives"] = int(np.nansum(Y[:, j]))
                if settings.shuffled:
                    details["shuffled_nonzero"] = int((fit.coef[:, k + i] != 0).sum())
                nonzero = int((coef[:, i] != 0).sum())
                results[t.name] = TargetResult(
                    t, "ok" if nonzero else NO_FIT, None if nonzero else NO_FIT_REASON, float(score[i]), _num(low[i]), _num(high[i]),
                    float(score[k + i]) if settings.shuffled else None,
                    nonzero, int(coef.shape[0]), float(fit.alpha[i]), float(b_raw[i]),
                    raw[:, i].reshape(tap_shape), (n_tr, n_v, n_te), details)
    return [results[t.name] for t in targets]


def _num(x) -> float | None:
    x = float(x)
    return None if np.isnan(x) else x
