"""Erasure of human concepts with LEACE: the network's activations with every linear trace of the concept
library removed, so that what discovery finds there is not a human concept again.

LEACE (Belrose et al., "LEACE: Perfect linear concept erasure in closed form", NeurIPS 2023; the
``concept-erasure`` package) is the affine map ``x ↦ x − P(x − μ)`` of least change (in the activations'
own covariance metric) after which no linear predictor of the concepts beats a constant one: the
cross-covariance of erased activations and concepts is zero. The concepts are the library's, encoded by
:func:`concept_matrix`: binary as 0/1, categorical one-hot (one column per observed category,
``concept=value``), scalar standardised.

- :class:`HumanConceptEraser` — the estimator (``fit(Z, C)``, ``transform(Z)``, ``rank_``), saved as one
  ``.npz`` with its provenance (network, tap, pooling, dataset, concepts); :meth:`~HumanConceptEraser.check_matches`
  refuses activations of another network, tap or pooling.
- :func:`random_subspace_eraser` — the control: an orthogonal projection removing a random subspace of the
  same rank.
- :func:`erasure_report` — held-out checks (:class:`ErasureReport`): probe scores before and after erasure
  and after the control, and whether the erased activations still predict the network's own top move.
- :func:`fit_eraser` (arrays) and :func:`fit_eraser_from_files` (an activation folder and labels) do both.

Positions are split by game (:func:`~conceptchess.probing.split.split_by_game`) into three sides: the
eraser is fitted on the first; the report's probes are trained on the first (the usual protocol) and,
for the erased activations, also on the second, which the eraser never saw (what leaks on new
positions); all are scored on the third.

>>> rng = np.random.default_rng(0)
>>> C = rng.integers(0, 2, size=(4000, 1)).astype(np.float32)
>>> Z = rng.normal(size=(4000, 16)).astype(np.float32) + 2 * C       # the concept shifts every feature
>>> eraser = HumanConceptEraser().fit(Z, C)
>>> E = eraser.transform(Z)
>>> eraser.rank_, bool(abs(E[C[:, 0] == 1].mean() - E[C[:, 0] == 0].mean()) < 1e-4)
(1, True)
"""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import chess
import numpy as np
import torch
from concept_erasure import LeaceEraser, LeaceFitter
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression

from conceptchess.activations import ActivationFiles
from conceptchess.datasets import dataset_sha256, iter_dataset, positions_path
from conceptchess.directions import load_array
from conceptchess.engine import Engine
from conceptchess.errors import ArgumentError, ConceptChessError
from conceptchess.files import atomic_open
from conceptchess.positions import PositionSpec, boards_of, histories_of
from conceptchess.probing.estimators import SparseLinearProbe, SparseLogisticProbe
from conceptchess.probing.regularisation import balanced_accuracies, r2_scores
from conceptchess.probing.split import Split, Standardizer, bootstrap_counts, game_codes, split_by_game
from conceptchess.probing.targets import library_labels, read_labels_table, resolve_targets
from conceptchess.progress import ProgressFor
from conceptchess.provenance import software_versions

FORMAT = "conceptchess-eraser"
FORMAT_VERSION = 1
META_KEY = "meta"
ARRAYS = ("proj_left", "proj_right", "bias", "concept_scale")

#: The issue's checks: erased probes at chance, the random control close to the unerased probe.
MAX_ERASED_ACCURACY = 0.55  # balanced accuracy (chance 0.5)
MAX_ERASED_R2 = 0.05  # R² (chance 0)
CONTROL_TOLERANCE = 0.05  # |random-subspace control − unerased|
#: Eraser, probe-training and test shares of the games.
ERASURE_FRACTIONS = (0.6, 0.2, 0.2)
#: The top-move check reads the network's most frequent top moves: this many classes.
TOP_MOVES = 20
BATCH = 4096  # rows converted to float64 at a time (4096 × 4096 features: 134 MB)


# -- the concepts as a matrix ----------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class ConceptEncoding:
    """How concept values become the columns of a concept matrix, learned on the fitting rows.

    Binary concepts stay 0/1; a categorical concept becomes one 0/1 column per category observed on the
    fitting rows (``game_phase=endgame``); a scalar concept is standardised with the mean and standard
    deviation of its defined fitting values. A column that is constant on the fitting rows (a binary
    concept never true, a category never seen, a constant scalar) is left out and named in ``dropped``.
    A position where a concept is undefined (NaN) gets NaN in all of that concept's columns: nothing is
    imputed (:meth:`HumanConceptEraser.fit` leaves such rows out, the report scores each column on the
    rows where it is defined).
    """

    names: tuple[str, ...]  # K column names: "in_check", "game_phase=endgame", "material_diff"
    concepts: tuple[str, ...]  # K: the concept (labels column) each column comes from
    kinds: tuple[str, ...]  # K: "binary" | "category" | "scalar"
    categories: tuple[int | None, ...]  # K: a one-hot column's category code, else None
    mean: np.ndarray  # (K,) float64: subtracted (0 for 0/1 columns)
    scale: np.ndarray  # (K,) float64, positive: divided by (1 for 0/1 columns)
    dropped: tuple[str, ...] = ()  # columns constant on the fitting rows, left out

    @classmethod
    def from_rows(cls, columns: Mapping[str, np.ndarray], concepts=None, rows: np.ndarray | None = None) -> ConceptEncoding:
        """The encoding of ``concepts`` (names, a comma list, ``concept=category``; None: every column of
        ``columns``) learned on ``rows`` of ``columns`` (all rows if None). ``columns`` maps a concept name
        to its values per position (categorical: integer codes), as :func:`~conceptchess.probing.targets.read_labels_table`
        or :func:`~conceptchess.probing.targets.library_labels` give them."""
        cols = {k: np.asarray(v, dtype=np.float64) for k, v in columns.items()}
        targets = resolve_targets(concepts, table_columns=cols)
        sizes = {len(cols[t.concept]) for t in targets}
        if len(sizes) > 1:
            raise ConceptChessError(f"the concept columns have different lengths ({', '.join(map(str, sorted(sizes)))})")
        names, sources, kinds, cats, means, scales, dropped = [], [], [], [], [], [], []
        for t in targets:
            v = cols[t.concept]
            if t.category is not None:
                v = np.where(np.isnan(v), np.nan, (v == t.category).astype(np.float64))
            fit = v if rows is None else v[np.asarray(rows)]
            fit = fit[~np.isnan(fit)]
            kind = "scalar" if t.kind == "regression" else "category" if t.category is not None else "binary"
            if kind == "scalar":
                mean, std = (float(fit.mean()), float(fit.std())) if len(fit) else (0.0, 0.0)
                if std <= 1e-9 * max(1.0, abs(mean)):
                    dropped.append(t.name)
                    continue
            else:
                if len(np.unique(fit)) < 2:
                    dropped.append(t.name)
                    continue
                mean, std = 0.0, 1.0
            names.append(t.name)
            sources.append(t.concept)
            kinds.append(kind)
            cats.append(t.category)
            means.append(mean)
            scales.append(std)
        return cls(tuple(names), tuple(sources), tuple(kinds), tuple(cats), np.array(means, dtype=np.float64),
                   np.array(scales, dtype=np.float64), tuple(dropped))

    @property
    def metrics(self) -> tuple[str, ...]:
        """What a probe of each column is scored by: ``balanced_accuracy`` (0/1 columns) or ``r2``."""
        return tuple("r2" if k == "scalar" else "balanced_accuracy" for k in self.kinds)

    def matrix(self, columns: Mapping[str, np.ndarray]) -> np.ndarray:
        """The ``(N, K)`` float32 concept matrix of ``columns`` (NaN where a concept is undefined)."""
        if not self.names:
            raise ConceptChessError("no concept column varies on the fitting rows" +
                                    (f" (constant: {', '.join(self.dropped)})" if self.dropped else ""))
        missing = [c for c in dict.fromkeys(self.concepts) if c not in columns]
        if missing:
            raise ConceptChessError(f"no values for concept {missing[0]!r}")
        out = []
        for c, cat, m, s in zip(self.concepts, self.categories, self.mean, self.scale):
            v = np.asarray(columns[c], dtype=np.float64)
            if cat is not None:
                v = np.where(np.isnan(v), np.nan, (v == cat).astype(np.float64))
            out.append((v - m) / s)
        return np.stack(out, 1).astype(np.float32)


def concept_matrix(columns: Mapping[str, np.ndarray], concepts=None) -> tuple[np.ndarray, list[str]]:
    """The concepts as a matrix: ``(float32 (N, K), column names)``, encoded as :class:`ConceptEncoding`
    says (standardisation and observed categories from these rows; constant columns left out, listed by
    ``ConceptEncoding.from_rows(columns, concepts).dropped``; NaN rows where a concept is undefined).

    >>> C, names = concept_matrix({"in_check": np.array([0, 1, 0, 0]), "game_phase": np.array([0, 0, 1, 1]),
    ...                            "material_diff": np.array([1.0, -1.0, 1.0, -1.0])})
    >>> names, C[:, 3].tolist()
    (['in_check', 'game_phase=opening', 'game_phase=middlegame', 'material_diff'], [1.0, -1.0, 1.0, -1.0])
    """
    enc = ConceptEncoding.from_rows(columns, concepts)
    return enc.matrix(columns), list(enc.names)


# -- the estimator ------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class EraserProvenance:
    """Where an eraser comes from: the activations it was fitted on and what it erases."""

    network_sha256: str | None = None  # the network whose activations it reads
    tap: str | None = None  # "block5", …
    pooling: str | None = None  # the activation files' pooling: "full" or "mean"
    dataset_sha256: str | None = None  # the positions it was fitted on
    concepts: tuple[str, ...] = ()  # the concepts erased (labels columns)
    columns: tuple[str, ...] = ()  # the concept matrix's columns (set by fit when given)
    dropped: tuple[str, ...] = ()  # concept columns left out for being constant on the fitting rows
    positions: int = 0  # rows it was fitted on (set by fit)
    seed: int | None = None  # the split's seed
    versions: dict = field(default_factory=dict)  # software (set by fit)

    @classmethod
    def from_dict(cls, d: dict) -> EraserProvenance:
        d = dict(d)
        for k in ("concepts", "columns", "dropped"):
            d[k] = tuple(d.get(k, ()))
        return cls(**d)


def _batch64(Z, index) -> np.ndarray:
    """Rows ``index`` (a slice or indices) of ``Z`` (an array or :class:`~conceptchess.chunks.ChunkedArray`) as a float64 ``(n, D)`` array."""
    x = np.asarray(Z[index], dtype=np.float64)
    return x.reshape(len(x), -1)


def _erase_rows(Z, batch: int, apply) -> np.ndarray:
    """``apply`` (float64 ``(n, D)`` → float64) over ``Z`` a batch at a time; float32 ``(N, D)`` out."""
    n = len(Z)
    out = None
    for s in range(0, n, batch):
        y = apply(_batch64(Z, slice(s, s + batch)))
        if out is None:
            out = np.empty((n, y.shape[1]), dtype=np.float32)
        out[s : s + len(y)] = y
    return out if out is not None else np.zeros((0, 0), dtype=np.float32)


class HumanConceptEraser(TransformerMixin, BaseEstimator):
    """LEACE of a concept matrix from activations, through ``concept_erasure.LeaceFitter`` (float64, CPU).

    Hyper-parameters (the fitter's): ``shrinkage`` (the fitter's random-matrix shrinkage of the
    activations' covariance: with ~4k features it is estimated from tens of thousands of correlated
    positions), ``svd_tol`` (directions of the whitened cross-covariance with singular value below it
    are not erased; the concept columns are scaled to unit variance before fitting, so it is a
    canonical correlation), ``constrain_cov_trace`` (off by default: it blends the LEACE projection
    toward an orthogonal one when erasure would raise the activations' variance, which keeps a network
    stable when erased activations are fed back into it — we never do that — and gives up the zero
    cross-covariance that is the point here), ``batch_size`` (rows per float64 batch).

    Learned: ``proj_left_ (D, r)``, ``proj_right_ (r, D)``, ``bias_ (D,)`` (the activations' mean) with
    ``transform(x) = x − ((x − bias) proj_rightᵀ) proj_leftᵀ``; ``rank_`` (r, the rank of the erased
    subspace: at most the number of concept columns), ``concept_scale_ (K,)``, ``n_features_in_``,
    ``n_undefined_`` (rows left out of the fit because a concept was NaN there) and ``provenance_``
    (:class:`EraserProvenance`); ``eraser_`` gives the map back as the package's ``LeaceEraser``.
    ``torch.set_num_threads`` is the caller's.
    """

    def __init__(self, shrinkage: bool = True, svd_tol: float = 0.01, constrain_cov_trace: bool = False, batch_size: int = BATCH):
        self.shrinkage = shrinkage
        self.svd_tol = svd_tol
        self.constrain_cov_trace = constrain_cov_trace
        self.batch_size = batch_size

    def fit(self, Z, C, *, columns: Sequence[str] | None = None, provenance: EraserProvenance | None = None) -> HumanConceptEraser:
        """Fit on activations ``Z`` (N rows of any shape, flattened; an array or activation files' tap)
        and concept matrix ``C`` ``(N, K)``; rows where ``C`` has a NaN are left out. ``columns`` names
        ``C``'s columns, ``provenance`` says where ``Z`` comes from (both kept in ``provenance_``)."""
        if float(self.svd_tol) <= 0:
            raise ArgumentError("{svd_tol} must be positive", svd_tol="svd_tol")
        if int(self.batch_size) < 1:
            raise ArgumentError("{batch_size} must be at least 1", batch_size="batch_size")
        C = np.asarray(C, dtype=np.float64)
        C = C.reshape(len(C), -1)
        if len(Z) != len(C):
            raise ConceptChessError(f"the activations have {len(Z)} rows and the concept matrix {len(C)}")
        if C.shape[1] == 0:
            raise ConceptChessError("the concept matrix has no columns: nothing to erase")
        if columns is not None and len(columns) != C.shape[1]:
            raise ConceptChessError(f"{len(columns)} column names for a concept matrix of {C.shape[1]} columns")
        defined = ~np.isnan(C).any(1)
        rows = np.flatnonzero(defined)
        if len(rows) < 2:
            raise ConceptChessError(f"{len(rows)} position(s) with every concept defined: too few to fit an eraser")
        C = C[rows]
        scale = C.std(0)
        scale = np.where(scale > 0, scale, 1.0)
        D = int(np.prod(np.shape(Z)[1:])) if len(np.shape(Z)) > 1 else 1
        fitter = LeaceFitter(D, C.shape[1], affine=True, constrain_cov_trace=bool(self.constrain_cov_trace), device="cpu",
                             dtype=torch.float64, shrinkage=bool(self.shrinkage), svd_tol=float(self.svd_tol))
        b = int(self.batch_size)
        every = len(rows) == len(Z)
        for s in range(0, len(rows), b):
            x = _batch64(Z, slice(s, s + b) if every else rows[s : s + b])
            if not np.isfinite(x).all():
                raise ConceptChessError("the activations contain NaN or infinite values")
            fitter.update(torch.from_numpy(x), torch.from_numpy(C[s : s + b] / scale))
        eraser = fitter.eraser
        left, right = eraser.proj_left, eraser.proj_right
        strength = left.norm(dim=0) * right.norm(dim=1)  # zero for directions under svd_tol
        keep = strength > strength.max().clamp_min(1e-300) * D * torch.finfo(torch.float64).eps
        self.proj_left_ = left[:, keep].numpy().copy()
        self.proj_right_ = right[keep].numpy().copy()
        self.bias_ = eraser.bias.numpy().copy()
        self.rank_ = int(keep.sum())
        self.concept_scale_ = scale
        self.n_features_in_ = D
        self.n_undefined_ = int((~defined).sum())
        prov = provenance or EraserProvenance()
        self.provenance_ = replace(prov, columns=tuple(columns) if columns is not None else prov.columns, positions=len(rows),
                                   versions=software_versions("numpy", "torch", "concept_erasure"))
        return self

    def _fitted(self) -> None:
        if not hasattr(self, "proj_left_"):
            raise ConceptChessError("this eraser is not fitted yet (call fit or load)")

    @property
    def eraser_(self) -> LeaceEraser:
        """The fitted map as the library's ``LeaceEraser`` (float64 torch tensors)."""
        self._fitted()
        return LeaceEraser(torch.from_numpy(self.proj_left_), torch.from_numpy(self.proj_right_), torch.from_numpy(self.bias_))

    def transform(self, Z) -> np.ndarray:
        """Erased activations: float32 ``(N, D)`` (rows flattened), computed in float64 a batch at a time."""
        self._fitted()
        _check_features(Z, self.n_features_in_, "the eraser")
        eraser = self.eraser_
        return _erase_rows(Z, int(self.batch_size), lambda x: eraser(torch.from_numpy(x)).numpy())

    # -- identity ----------------------------------------------------------------------------------------
    def check_matches(self, network_sha256: str | None, tap: str, pool: str) -> None:
        """Refuse (one line, naming what differs) activations of another network, tap or pooling than the
        eraser's; an eraser that does not record one of them is refused too (it cannot be checked)."""
        self._fitted()
        p = self.provenance_
        problems = []
        for what, mine, theirs in (("network", p.network_sha256, network_sha256), ("tap", p.tap, tap), ("pooling", p.pooling, pool)):
            if mine is None:
                problems.append(f"it does not record its {what}")
            elif mine != theirs:
                if what == "network":
                    problems.append(f"it reads network {mine[:12]}…, not {str(theirs)[:12]}…")
                else:
                    problems.append(f"it reads {what} {mine}, not {theirs}")
        if problems:
            raise ConceptChessError(f"eraser of {', '.join(p.columns or p.concepts) or 'concepts'} does not apply: {'; '.join(problems)}")

    # -- files --------------------------------------------------------------------------------------------
    def save(self, path: str | os.PathLike) -> Path:
        """Write ``path`` (one ``.npz``: the float64 arrays and a JSON ``meta``; no pickles), atomically."""
        self._fitted()
        path = Path(path)
        meta = {"format": FORMAT, "format_version": FORMAT_VERSION, "params": self.get_params(), "rank": self.rank_,
                "features": self.n_features_in_, "undefined": self.n_undefined_, "provenance": asdict(self.provenance_)}
        arrays = {"proj_left": self.proj_left_, "proj_right": self.proj_right_, "bias": self.bias_, "concept_scale": self.concept_scale_}
        with atomic_open(path, "wb") as f:
            np.savez(f, **arrays, **{META_KEY: np.array(json.dumps(meta, sort_keys=True))})
        return path

    @classmethod
    def load(cls, path: str | os.PathLike) -> HumanConceptEraser:
        """An eraser :meth:`save` wrote."""
        a = load_array(path, "eraser")
        if not isinstance(a, np.lib.npyio.NpzFile):
            raise ConceptChessError(f"{path}: not an eraser (a single .npy array)")
        with a:
            if META_KEY not in a.files or not set(ARRAYS) <= set(a.files):
                raise ConceptChessError(f"{path}: not an eraser (needs arrays {', '.join(ARRAYS)} and {META_KEY})")
            try:
                meta = json.loads(str(a[META_KEY]))
            except ValueError as e:
                raise ConceptChessError(f"{path}: its eraser metadata is not JSON ({e})") from None
            if not isinstance(meta, dict) or meta.get("format") != FORMAT:
                raise ConceptChessError(f"{path}: not an eraser file (format {meta.get('format') if isinstance(meta, dict) else None!r})")
            if meta.get("format_version") != FORMAT_VERSION:
                raise ConceptChessError(f"{path}: eraser format version {meta.get('format_version')} is not supported "
                                        f"(this conceptchess reads version {FORMAT_VERSION})")
            eraser = cls(**meta["params"])
            eraser.proj_left_, eraser.proj_right_, eraser.bias_, eraser.concept_scale_ = (np.asarray(a[k], dtype=np.float64) for k in ARRAYS)
        D, r = int(meta["features"]), int(meta["rank"])
        if eraser.proj_left_.shape != (D, r) or eraser.proj_right_.shape != (r, D) or eraser.bias_.shape != (D,):
            raise ConceptChessError(f"{path}: eraser arrays do not match its metadata ({D} features, rank {r})")
        eraser.rank_, eraser.n_features_in_, eraser.n_undefined_ = r, D, int(meta["undefined"])
        eraser.provenance_ = EraserProvenance.from_dict(meta["provenance"])
        return eraser


def _check_features(Z, features: int, what: str) -> None:
    shape = np.shape(Z)
    d = int(np.prod(shape[1:])) if len(shape) > 1 else 1
    if d != features:
        raise ConceptChessError(f"{what} reads {features} features per position; these activations have {d}")


# -- the control -----------------------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class RandomSubspaceEraser:
    """The orthogonal projection removing the span of ``basis``: ``x ↦ x − (x basis) basisᵀ``."""

    rank: int
    features: int
    seed: int
    basis: np.ndarray  # (features, rank) float64, orthonormal columns
    batch_size: int = BATCH

    @property
    def rank_(self) -> int:
        return self.rank

    def transform(self, Z) -> np.ndarray:
        """Activations with the random subspace removed: float32 ``(N, D)``, computed in float64."""
        _check_features(Z, self.features, "the random-subspace control")
        Q = self.basis
        return _erase_rows(Z, self.batch_size, lambda x: x - (x @ Q) @ Q.T)


def random_subspace_eraser(rank: int, features: int, seed: int) -> RandomSubspaceEraser:
    """A control of matched rank: the orthogonal projection removing a uniformly random ``rank``-dimensional
    subspace of the ``features``-dimensional activations (the QR factor of a seeded Gaussian matrix).

    >>> ctl = random_subspace_eraser(2, 5, seed=0)
    >>> x = np.ones((3, 5), np.float32)
    >>> np.allclose(ctl.transform(ctl.transform(x)), ctl.transform(x), atol=1e-6)   # a projection
    True
    """
    rank, features = int(rank), int(features)
    if features < 1:
        raise ArgumentError("{features} must be at least 1", features="features")
    if not 0 <= rank <= features:
        raise ArgumentError(f"{{rank}} must be between 0 and the {features} features", rank="rank")
    g = np.random.default_rng(np.random.SeedSequence([int(seed), 0x5AB5]))
    A = g.standard_normal((features, rank))
    Q, R = np.linalg.qr(A)
    Q = Q * np.sign(np.diag(R))[None, :] if rank else Q  # the Haar-distributed factor (signs fixed by R)
    return RandomSubspaceEraser(rank, features, int(seed), np.ascontiguousarray(Q))


# -- the report --------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ColumnScores:
    """One concept column's L1 probe, scored on the test games.

    ``unerased``, ``erased`` and ``random_control``: probes trained on the eraser's own games (the LEACE
    guarantee, carried to held-out positions); ``erased_fresh``: a probe of the erased activations trained
    on games the eraser never saw (what leaks where the eraser is applied to new positions)."""

    name: str
    metric: str  # "balanced_accuracy" (L1 logistic probe) | "r2" (L1 linear probe)
    unerased: float  # NaN: not scored (``reason``)
    erased: float
    erased_fresh: float
    random_control: float
    test_positions: int  # test rows where the column is defined
    reason: str = ""  # why it was not scored

    @property
    def chance(self) -> float:
        return 0.5 if self.metric == "balanced_accuracy" else 0.0


@dataclass(frozen=True)
class TopMoveScores:
    """Accuracy on the test games of a multinomial logistic regression predicting the network's top move
    (among the ``moves`` most frequent), from unerased and erased activations, and from erased activations
    with the training labels shuffled; ``difference_low``: the lower end of a 95 % game-level bootstrap
    interval of (erased − shuffled) accuracy."""

    moves: int
    train_positions: int
    test_positions: int
    majority: float  # the test share of the most frequent training class
    unerased: float
    erased: float
    shuffled: float
    difference_low: float
    converged: bool  # every fit converged within its iterations


@dataclass(frozen=True)
class Check:
    """One check of the report: ``passed`` None when it could not be run (``detail`` says why)."""

    name: str
    passed: bool | None
    detail: str


@dataclass(frozen=True)
class ErasureReport:
    """The held-out checks of an eraser (see :func:`erasure_report`)."""

    columns: tuple[ColumnScores, ...]
    top_move: TopMoveScores | None
    checks: tuple[Check, ...]
    rank: int  # of the LEACE eraser and of the random control
    positions: tuple[int, int, int]  # eraser (and probe) training, fresh-probe training, test rows
    games: tuple[int, int, int]  # and their games
    split: str  # "by game" or "by position (…)"
    seed: int
    max_erased_accuracy: float = MAX_ERASED_ACCURACY
    max_erased_r2: float = MAX_ERASED_R2
    control_tolerance: float = CONTROL_TOLERANCE

    @property
    def failures(self) -> tuple[Check, ...]:
        return tuple(c for c in self.checks if c.passed is False)

    @property
    def unchecked(self) -> tuple[Check, ...]:
        return tuple(c for c in self.checks if c.passed is None)

    @property
    def passed(self) -> bool:
        """Every check that could run passed (and at least one ran)."""
        return not self.failures and any(c.passed for c in self.checks)

    def check(self, name: str) -> Check:
        """The check called ``name`` (``"in_check erased"``, ``"top move above shuffled"``, …)."""
        return next(c for c in self.checks if c.name == name)

    def column(self, name: str) -> ColumnScores:
        return next(c for c in self.columns if c.name == name)

    def to_dict(self) -> dict:
        """JSON-able (NaN scores become None), e.g. for the database's eraser row."""
        return _json_safe(asdict(self) | {"passed": self.passed})

    def __str__(self) -> str:
        p, g = self.positions, self.games
        lines = [f"LEACE eraser of rank {self.rank}; positions (games): eraser and probes {p[0]} ({g[0]}), fresh probes {p[1]} ({g[1]}), "
                 f"test {p[2]} ({g[2]}); split {self.split}, seed {self.seed}",
                 f"{'column':34} {'metric':8} {'unerased':>9} {'erased':>8} {'fresh':>8} {'random':>8}"]
        for c in self.columns:
            m = "bal.acc" if c.metric == "balanced_accuracy" else "R²"
            lines.append(f"{c.name:34} {m:8} {c.unerased:9.3f} {c.erased:8.3f} {c.erased_fresh:8.3f} {c.random_control:8.3f}"
                         + (f"  ({c.reason})" if c.reason else ""))
        t = self.top_move
        if t is not None:
            lines.append(f"top move ({t.moves} most frequent, {t.test_positions} test positions): unerased {t.unerased:.3f}, erased "
                         f"{t.erased:.3f}, shuffled labels {t.shuffled:.3f}, majority {t.majority:.3f}")
        lines.append(f"checks: {sum(c.passed is True for c in self.checks)} passed, {len(self.failures)} failed, "
                     f"{len(self.unchecked)} not run: {'PASS' if self.passed else 'FAIL'}")
        lines += [f"  FAIL {c.name}: {c.detail}" for c in self.failures]
        lines += [f"  not run {c.name}: {c.detail}" for c in self.unchecked]
        return "\n".join(lines)


def _json_safe(x):
    if isinstance(x, float):
        return None if np.isnan(x) else x
    if isinstance(x, dict):
        return {k: _json_safe(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_json_safe(v) for v in x]
    return x


#: The probes of the report: (score name, view, training side).
_PROBES = (("unerased", "unerased", "fit"), ("erased", "erased", "fit"), ("erased_fresh", "erased", "fresh"),
           ("random_control", "random", "fit"))


def _unscorable(y: np.ndarray, g: np.ndarray, metric: str, side: str) -> str:
    """Why a probe cannot be trained (``side`` "fit"/"fresh") or scored ("test") on labels ``y`` of games ``g``; "" if it can."""
    if metric == "balanced_accuracy" and len(np.unique(y)) < 2:
        return f"one class only on the {side} rows"
    if metric == "r2" and (len(y) < 3 or np.ptp(y) == 0):
        return f"constant on the {side} rows"
    if side != "test" and len(np.unique(g)) < 3:
        return f"fewer than 3 games on the {side} rows"
    return ""


def _column_scores(views: dict[str, np.ndarray], C: np.ndarray, names, metrics, games, sides: dict[str, np.ndarray],
                   seed: int) -> list[ColumnScores]:
    """The :data:`_PROBES` of every column; columns sharing a metric and the rows where they are defined are
    probed together (one Gram matrix per probe). A column that cannot be trained on the eraser's rows or
    scored on the test rows is not scored (``reason``); one that cannot be trained on the fresh rows lacks
    only ``erased_fresh``."""
    groups: dict[tuple, list[int]] = {}
    reasons: dict[int, str] = {}
    for j, metric in enumerate(metrics):
        defined = ~np.isnan(C[:, j])
        why = {side: _unscorable(C[rows[defined[rows]], j], games[rows[defined[rows]]], metric, side) for side, rows in sides.items()}
        if why["fit"] or why["test"]:
            reasons[j] = why["fit"] or why["test"]
            continue
        reasons[j] = why["fresh"]
        groups.setdefault((metric, not why["fresh"], defined.tobytes()), []).append(j)
    scores = {j: dict.fromkeys((s for s, _, _ in _PROBES), float("nan")) for j in range(len(names))}
    for (metric, fresh, _), js in groups.items():
        defined = ~np.isnan(C[:, js[0]])
        rows = {side: r[defined[r]] for side, r in sides.items()}
        t = rows["test"]
        Probe = SparseLogisticProbe if metric == "balanced_accuracy" else SparseLinearProbe
        score = balanced_accuracies if metric == "balanced_accuracy" else r2_scores
        for name, view, side in _PROBES:
            if side == "fresh" and not fresh:
                continue
            X, p = views[view], rows[side]
            probe = Probe(random_state=seed).fit(X[p], C[p][:, js], groups=games[p])
            pred = probe.predict(X[t]).reshape(len(t), -1).astype(np.float64)
            for j, v in zip(js, score(torch.from_numpy(C[t][:, js].astype(np.float64)), torch.from_numpy(pred)).tolist()):
                scores[j][name] = v
    return [ColumnScores(name, metric, **scores[j], test_positions=int((~np.isnan(C[sides["test"], j])).sum()), reason=reasons[j])
            for j, (name, metric) in enumerate(zip(names, metrics))]


def _top_move_scores(views: dict[str, np.ndarray], labels: np.ndarray, games, train: np.ndarray, test: np.ndarray, moves: int,
                     seed: int, n_boot: int) -> TopMoveScores | str:
    """The top-move readout (see :func:`erasure_report`), or why it could not run."""
    known = np.array([m is not None for m in labels[train]], dtype=bool)
    values, counts = np.unique(labels[train][known].astype(str), return_counts=True)
    classes = values[np.lexsort((values, -counts))[:moves]]
    if len(classes) < 2:
        return "fewer than 2 distinct top moves on the training games"
    code = {m: k for k, m in enumerate(classes.tolist())}
    y = np.array([code.get(m, -1) if m is not None else -1 for m in labels])
    p, t = train[y[train] >= 0], test[y[test] >= 0]
    if len(t) == 0:
        return "no test position's top move is among the most frequent ones"
    shuffled = np.random.default_rng(np.random.SeedSequence([seed, 0x5F1E])).permutation(y[p])
    converged = True
    correct = {}
    for name, X, target in (("unerased", views["unerased"], y[p]), ("erased", views["erased"], y[p]), ("shuffled", views["erased"], shuffled)):
        std = Standardizer.fit(X[p], dedupe=False)
        model = LogisticRegression(C=1.0, max_iter=300)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)  # recorded in `converged` instead
            model.fit(std.transform(X[p]), target)
        converged &= bool(np.all(model.n_iter_ < model.max_iter))
        correct[name] = model.predict(std.transform(X[t])) == y[t]
    codes, draws = bootstrap_counts(games[t], n_boot, seed)
    k = draws.shape[1]
    diff = np.bincount(codes, correct["erased"].astype(float) - correct["shuffled"].astype(float), minlength=k)
    n = np.bincount(codes, minlength=k).astype(float)
    boot = (draws @ diff) / np.maximum(draws @ n, 1.0)
    return TopMoveScores(len(classes), len(p), len(t), float(np.mean(y[t] == 0)), float(correct["unerased"].mean()),
                         float(correct["erased"].mean()), float(correct["shuffled"].mean()), float(np.quantile(boot, 0.025)), converged)


def erasure_report(eraser: HumanConceptEraser, Z, C: np.ndarray, games, split: Split, *, names: Sequence[str] | None = None,
                   metrics: Sequence[str] | None = None, top_moves: Sequence[str | None] | None = None,
                   control: RandomSubspaceEraser | None = None, moves: int = TOP_MOVES, seed: int = 0, n_boot: int = 1000,
                   split_kind: str = "by game") -> ErasureReport:
    """Check ``eraser`` (fitted on the ``split.train`` rows) on the held-out ``split.test`` games.

    For each column of the concept matrix ``C`` (``names``; ``metrics``: ``balanced_accuracy`` or ``r2``
    per column, default balanced accuracy for 0/1 columns, R² otherwise) an L1 probe
    (:class:`~conceptchess.probing.estimators.SparseLogisticProbe` / :class:`~conceptchess.probing.estimators.SparseLinearProbe`,
    λ chosen on a share of its training games) is scored on the test games (:class:`ColumnScores`):

    - trained on the eraser's own games (``split.train``) of unerased, LEACE-erased and random-subspace-erased
      activations (``control``; default :func:`random_subspace_eraser` of the eraser's rank, seeded by
      ``seed``). This is the usual protocol (an adversary with the eraser's data); LEACE zeroes the
      cross-covariance on exactly these rows, so the erased probe finds nothing to fit and lands at chance
      unless the eraser is broken.
    - trained on ``split.val`` games of the erased activations, which the eraser never saw: the eraser is
      estimated from finite data, and a probe with fresh positions can find the part of a concept the
      estimate missed. This leak shrinks as the eraser's positions grow relative to the features (measured
      on maia-1900 ``block5`` mean-pooled, 64 features, every ply of the shared Lichess games: ``in_check``
      balanced accuracy 0.76 with the eraser fitted on 3.3k positions of 50 games, 0.58 on 29k of 420), so
      it is the figure that says whether an eraser is good enough for new positions.

    Checks: each erased probe at chance (balanced accuracy ≤ 0.55, R² ≤ 0.05), on the eraser's games and
    on fresh games, and each random control within 0.05 of the unerased probe.

    With ``top_moves`` (the network's top move per row, UCI in the side-to-move frame as
    :func:`network_top_moves` gives them; None where there is none) the report also asks whether the erased
    activations still carry what the network chooses: a multinomial logistic regression (L2, C = 1, on
    standardised features, trained on the ``split.val`` games) predicts the top move among the ``moves``
    most frequent ones there. A softmax over a linear map is the form of the network's own policy readout;
    the L2 fit needs no λ search, as the question is whether the information is linearly there, not which
    sparse direction carries it. Its control is the same fit on the same erased activations with the
    training labels shuffled (seeded): class frequencies kept, the link to the position broken, so it
    scores what frequencies and chance alone give. The check passes when the lower end of a 95 %
    game-level bootstrap interval of (erased − shuffled) test accuracy is above zero (positions of a game
    are correlated, so whole games are resampled).
    """
    C = np.asarray(C, dtype=np.float64)
    C = C.reshape(len(C), -1)
    n = len(C)
    games = np.asarray(games)
    if len(Z) != n or len(games) != n:
        raise ConceptChessError(f"activations ({len(Z)} rows), concept matrix ({n}) and games ({len(games)}) differ in length")
    K = C.shape[1]
    names = list(names) if names is not None else [f"c{j}" for j in range(K)]
    if metrics is None:
        metrics = ["balanced_accuracy" if np.isin(C[~np.isnan(C[:, j]), j], (0.0, 1.0)).all() else "r2" for j in range(K)]
    if len(names) != K or len(metrics) != K:
        raise ConceptChessError(f"{len(names)} names and {len(metrics)} metrics for {K} concept columns")
    if top_moves is not None and len(top_moves) != n:
        raise ConceptChessError(f"{len(top_moves)} top moves for {n} positions")
    if int(moves) < 2:
        raise ArgumentError("{moves} must be at least 2 (the top-move readout needs two classes)", moves="moves")
    control = control if control is not None else random_subspace_eraser(eraser.rank_, eraser.n_features_in_, seed)
    raw = np.asarray(Z, dtype=np.float32).reshape(n, -1)
    views = {"unerased": raw, "erased": eraser.transform(raw), "random": control.transform(raw)}
    sides = {"fit": split.train, "fresh": split.val, "test": split.test}
    cols = _column_scores(views, C, names, metrics, games, sides, seed)
    checks = []
    for c in cols:
        if np.isnan(c.erased):
            checks += [Check(f"{c.name} {what}", None, c.reason) for what in ("erased", "erased on fresh games", "random control")]
            continue
        limit = MAX_ERASED_ACCURACY if c.metric == "balanced_accuracy" else MAX_ERASED_R2
        what = "balanced accuracy" if c.metric == "balanced_accuracy" else "R²"
        checks.append(Check(f"{c.name} erased", c.erased <= limit, f"{what} {c.erased:.3f} {'≤' if c.erased <= limit else '>'} {limit}"))
        if np.isnan(c.erased_fresh):
            checks.append(Check(f"{c.name} erased on fresh games", None, c.reason))
        else:
            ok = c.erased_fresh <= limit
            checks.append(Check(f"{c.name} erased on fresh games", ok, f"{what} {c.erased_fresh:.3f} {'≤' if ok else '>'} {limit}"))
        gap = abs(c.random_control - c.unerased)
        ok = gap <= CONTROL_TOLERANCE
        checks.append(Check(f"{c.name} random control", ok, f"random-subspace {what} {c.random_control:.3f} vs unerased "
                                                             f"{c.unerased:.3f}: gap {gap:.3f} {'≤' if ok else '>'} {CONTROL_TOLERANCE}"))
    top = None
    if top_moves is not None:
        got = _top_move_scores(views, np.array(list(top_moves), dtype=object), games, split.val, split.test, int(moves), seed, n_boot)
        if isinstance(got, str):
            checks.append(Check("top move above shuffled", None, got))
        else:
            top = got
            ok = got.difference_low > 0
            checks.append(Check("top move above shuffled", ok, f"erased accuracy {got.erased:.3f} vs shuffled labels {got.shuffled:.3f} "
                                                               f"(95 % lower bound of the difference {got.difference_low:+.3f})"))
    sides_ = (split.train, split.val, split.test)
    return ErasureReport(tuple(cols), top, tuple(checks), eraser.rank_, tuple(len(s) for s in sides_),
                         tuple(len(np.unique(games[s])) for s in sides_), split_kind, int(seed))


# -- fitting: arrays, files ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class FittedErasure:
    """What :func:`fit_eraser` gives: the eraser, its control, the held-out report, the concept encoding and the split."""

    eraser: HumanConceptEraser
    control: RandomSubspaceEraser
    report: ErasureReport
    encoding: ConceptEncoding
    split: Split


def fit_eraser(Z, columns: Mapping[str, np.ndarray], games, *, concepts=None, top_moves: Sequence[str | None] | None = None,
               eraser: HumanConceptEraser | None = None, fractions: tuple[float, float, float] = ERASURE_FRACTIONS, seed: int = 0,
               moves: int = TOP_MOVES, provenance: EraserProvenance | None = None, split_kind: str = "by game") -> FittedErasure:
    """Split the rows by ``games`` (``fractions``: eraser, probe-training, test; seeded), encode ``concepts``
    of ``columns`` on the eraser's rows (:class:`ConceptEncoding`), fit ``eraser`` (default
    :class:`HumanConceptEraser` ``()``) there and report on the other games (:func:`erasure_report`)."""
    split = split_by_game(games, fractions, seed)
    encoding = ConceptEncoding.from_rows(columns, concepts, split.train)
    C = encoding.matrix(columns)
    prov = replace(provenance or EraserProvenance(), concepts=tuple(dict.fromkeys(encoding.concepts)), dropped=encoding.dropped,
                   seed=int(seed))
    eraser = eraser if eraser is not None else HumanConceptEraser()
    eraser.fit(Z[split.train], C[split.train], columns=encoding.names, provenance=prov)
    control = random_subspace_eraser(eraser.rank_, eraser.n_features_in_, seed)
    report = erasure_report(eraser, Z, C, games, split, names=encoding.names, metrics=encoding.metrics, top_moves=top_moves,
                            control=control, moves=moves, seed=seed, split_kind=split_kind)
    return FittedErasure(eraser, control, report, encoding, split)


def side_to_move_uci(move: chess.Move, turn: chess.Color) -> str:
    """A move in the side-to-move frame of the activations (Black's moves mirrored top to bottom, as lc0 sees them).

    >>> side_to_move_uci(chess.Move.from_uci("e7e5"), chess.BLACK)
    'e2e4'
    """
    if turn == chess.WHITE:
        return move.uci()
    return chess.Move(chess.square_mirror(move.from_square), chess.square_mirror(move.to_square), move.promotion).uci()


def network_top_moves(engine: Engine, specs: list[PositionSpec], *, chunk: int = 1024, progress=None) -> list[str | None]:
    """The top move of ``engine``'s raw policy at each position, UCI in the side-to-move frame (None where
    there is no legal move)."""
    out: list[str | None] = []
    for s in range(0, len(specs), chunk):
        hist, boards = histories_of(specs[s : s + chunk])
        for ev, b in zip(engine.evaluate(hist, boards), boards):
            m = ev.best_move()
            out.append(None if m is None else side_to_move_uci(m, b.turn))
        if progress is not None:
            progress(len(out), len(specs))
    return out


def _align(ids: list, table_ids: list, cols: dict[str, np.ndarray], labels) -> dict[str, np.ndarray]:
    index = {json.dumps(i): k for k, i in enumerate(table_ids)}
    rows = []
    for i in ids:
        k = index.get(json.dumps(i), index.get(json.dumps(str(i))))
        if k is None:
            raise ConceptChessError(f"{labels}: the labels table has no row for position id {i!r}")
        rows.append(k)
    r = np.array(rows, dtype=np.int64)
    return {c: v[r] for c, v in cols.items()}


def fit_eraser_from_files(activations: str | os.PathLike | ActivationFiles, tap: str, *, labels: str | os.PathLike | None = None,
                          dataset: str | os.PathLike | None = None, concepts=None, network=None, top_move_check: bool = True,
                          eraser: HumanConceptEraser | None = None, fractions: tuple[float, float, float] = ERASURE_FRACTIONS,
                          seed: int = 0, moves: int = TOP_MOVES, device: str = "cpu", threads: int | None = None,
                          progress_for: ProgressFor | None = None) -> FittedErasure:
    """Fit an eraser of ``concepts`` at ``tap`` of an activation folder and report on held-out games.

    Concept values come from ``labels`` (a table :func:`~conceptchess.datasets.label_dataset` wrote, ids
    matching the folder's) or are computed from the positions (library concepts; ``concepts`` None: every
    python-chess concept, or every column of the table). ``dataset``: the positions the folder was extracted
    from (default: the path its manifest records; its sha256 must match) — games come from its records'
    ``game`` (a split by position when none has one). The top-move check runs the folder's network
    (``network``, default the path its manifest records; an :class:`~conceptchess.engine.Engine` or a
    network file with the recorded sha256) over the positions; ``top_move_check=False`` leaves it out.
    ``progress_for(stage)`` gives the progress callbacks of stages ``labels`` and ``top moves``.

    >>> fitted = fit_eraser_from_files("acts/", "block5", concepts="in_check,material_diff,game_phase")  # doctest: +SKIP
    >>> fitted.eraser.save("erasers/block5.npz"); print(fitted.report)                                # doctest: +SKIP
    """
    store = activations if isinstance(activations, ActivationFiles) else ActivationFiles(activations)
    if tap not in store:
        raise ConceptChessError(f"{store.path}: has no tap {tap!r} (taps: {', '.join(store.taps)})")
    m = store.manifest
    data = Path(dataset) if dataset is not None else Path(m.get("dataset_path", ""))
    if dataset is None and not (m.get("dataset_path") and data.exists()):
        raise ArgumentError("pass {dataset}", prefix=f"{store.path}: the positions it was extracted from ({m.get('dataset_path')}) are not there; ",
                            dataset="dataset")
    if dataset_sha256(data) != m.get("dataset_sha256"):
        raise ConceptChessError(f"{data}: not the positions {store.path} was extracted from (dataset sha256 differs)")
    specs = list(iter_dataset(data))
    if len(specs) != len(store):
        raise ConceptChessError(f"{data} has {len(specs)} positions, {store.path} {len(store)}")
    ids = [s.id for s in specs]
    raw_games = [s.meta.get("game", s.meta.get("game_id")) for s in specs]
    if all(g is None for g in raw_games):
        games, split_kind = game_codes([json.dumps(i) for i in ids]), "by position (the records have no game ids)"
    elif any(g is None for g in raw_games):
        raise ConceptChessError(f"{data}: some records have a \"game\" and some do not")
    else:
        games, split_kind = game_codes(raw_games), "by game"
    split_by_game(games, fractions, seed)  # refused here rather than after the labelling
    # what is checked cheaply comes first: concept names, the table, the network; then labels and top moves
    if labels is not None:
        t_ids, cols = read_labels_table(labels)
        resolve_targets(concepts, table_columns=cols)
    else:
        names = list(dict.fromkeys(t.concept for t in resolve_targets(concepts)))
    engine = None
    if top_move_check:
        engine = network if isinstance(network, Engine) else None
        if engine is None:
            net = network if network is not None else m.get("net_path")
            if net is None or (network is None and not Path(net).exists()):
                raise ArgumentError("pass {network} or {top_move_check}", prefix=f"{store.path}: the network it was extracted with ({net}) "
                                    "is not there; ", network="network", top_move_check="top_move_check=False")
            engine = Engine(net, device=device, threads=threads)
        if engine.network.sha256 != m.get("net_sha256"):
            raise ConceptChessError(f"network {engine.network.sha256[:12]}… is not the one {store.path} was extracted with "
                                    f"({str(m.get('net_sha256'))[:12]}…)")
    if labels is not None:
        columns = _align(ids, t_ids, cols, labels)
    else:
        columns = library_labels(names, lambda: boards_of(specs, f"{positions_path(data)}: "), None,
                                 progress_for("labels") if progress_for else None)
    top = network_top_moves(engine, specs, progress=progress_for("top moves") if progress_for else None) if engine else None
    Z = np.asarray(store[tap], dtype=np.float32).reshape(len(store), -1)
    prov = EraserProvenance(network_sha256=m.get("net_sha256"), tap=tap, pooling=store.pool, dataset_sha256=m.get("dataset_sha256"))
    return fit_eraser(Z, columns, games, concepts=concepts, top_moves=top, eraser=eraser,
                      fractions=fractions, seed=seed, moves=moves, provenance=prov, split_kind=split_kind)
