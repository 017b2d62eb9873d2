"""Concept discovery: sparse concept vectors by convex optimisation (Schut et al., "Bridging the Human–AI
Knowledge Gap", PNAS 2025).

A concept vector v reads one tap's standardised activations z = (x − mean) / scale. It is the sparsest
(least L1 norm) vector that scores every *positive* position above its *negative* partner by a margin m:

    min ‖v‖₁  subject to  v·z⁺ᵢ ≥ v·z⁻ᵢ + m  for every pair i

an LP (v = v⁺ − v⁻, both ≥ 0) modelled with cvxpy and solved by HiGHS by default. The scale of z makes
m = 1 meaningful (the standardisation is learned on the fitting rows and carried by the direction, as
:class:`~conceptchess.directions.ConceptDirection` expects: score = z·v). Where no vector meets the margin
on every pair (the LP is infeasible), the fit falls back to a soft margin, ``min ‖v‖₁ + C Σ ξᵢ`` with
``v·(z⁺ᵢ − z⁻ᵢ) ≥ m − ξᵢ``, ``ξ ≥ 0``, and says so (``soft_margin_``, ``message_`` and a
:class:`DiscoveryWarning`). An optimum of v = 0 (margin 0, or pairs that do not differ) is refused: it is
no concept.

- :class:`StaticConceptDiscoverer` — positive against negative positions (``fit(X, y)``: all pairs up to
  ``max_pairs``, sampled with a seed; or explicit ``pairs``).
- :class:`DynamicConceptDiscoverer` — one root's rollouts (:mod:`conceptchess.rollouts`): the optimal line's
  position at ply t against each sub-optimal line's position at the same ply, by default on the root side's
  own plies only (``root_to_move``: single-player concepts). :func:`rollout_pairs` makes those pairs from a
  rollouts dataset's pairing fields; :func:`rollout_activations` reads a tap of its activation folder.
- ``to_direction`` turns a fitted one into a ``discovered`` :class:`~conceptchess.directions.ConceptDirection`.
- Held-out checks: :func:`check_pairs` (:class:`PairCheck`), :func:`validate_static` and
  :func:`validate_dynamic` (fit on some pairs, check on others, next to the swapped-label control).

The LP has one constraint per pair and two columns per feature (4,096 at a 64-filter block). It is solved by
column generation: a restricted LP over the ``working_set`` features whose differences add up most, then the
features its duals price as improving (|Σᵢ λᵢ dᵢⱼ| > 1) join, until none does, which certifies the
optimum of the whole LP. L1 optima are sparse, so few rounds over small LPs replace one large one (a few
hundred pairs at 4,096 features: well under a second instead of several; ``benchmarks/discovery_solve.py``).

>>> X, meta, w = planted_rollouts(roots=1, depth=8, lines_per_ply=3, noise=0.2, seed=0)
>>> disc = DynamicConceptDiscoverer(plies="all").fit(X, meta)
>>> np.flatnonzero(disc.coef_).tolist(), np.sign(disc.coef_[[3, 10, 42]]).tolist(), disc.soft_margin_
([3, 10, 42], [1.0, -1.0, 1.0], False)
>>> disc.to_direction("planted", "block5").kind
'discovered'
"""

from __future__ import annotations

import os
import sys
import time
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache

import numpy as np
from sklearn.base import BaseEstimator, clone

from conceptchess.activations import ActivationFiles
from conceptchess.datasets import dataset_sha256, iter_dataset
from conceptchess.directions import ConceptDirection
from conceptchess.errors import ArgumentError, ConceptChessError
from conceptchess.positions import PositionSpec
from conceptchess.provenance import software_versions

#: The fields of a rollouts dataset's records that pair its positions (see :mod:`conceptchess.rollouts`).
PAIRING_FIELDS = ("root", "line", "line_index", "ply", "branch_ply", "root_to_move")
PLIES = ("root", "all")  # the plies a dynamic concept is fitted on: the root side's own, or every one
MARGIN_TOL = 1e-6  # a pair meets the margin when v·(z⁺ − z⁻) ≥ m − MARGIN_TOL·max(m, 1): the LP's active pairs sit exactly on it
PRICE_TOL = 1e-6  # column generation: a feature improves the LP when |Σᵢ λᵢ dᵢⱼ| > 1 + PRICE_TOL (HiGHS's dual tolerance is 1e-7)
ZERO_NORM = 1e-9  # ‖v‖₁ at or below this is the zero vector
SCALE_EPS = 1e-6  # a feature whose standard deviation is at most SCALE_EPS·max(1, |mean|) is constant: scale 1


class DiscoveryWarning(UserWarning):
    """A concept fitted with a soft margin: no vector met the margin on every pair."""


# -- pairs of a rollouts dataset -------------------------------------------------------------------------------
@dataclass(frozen=True)
class RolloutPairs:
    """The (optimal, sub-optimal) position pairs of one root: rows of the dataset, paired at the same ply."""

    root: object  # the root's id, as the dataset's ``root`` field
    pairs: np.ndarray  # (k, 2) int64: row of the optimal line's position at ply t, row of sub-optimal line j's at ply t
    lines: np.ndarray  # (k,) int64: j, the sub-optimal line's ``line_index``
    plies: np.ndarray  # (k,) int64: t

    def __len__(self) -> int:
        return len(self.pairs)

    def line_indices(self) -> tuple[int, ...]:
        """The sub-optimal lines with at least one pair, in order."""
        return tuple(int(j) for j in np.unique(self.lines))

    def select(self, lines) -> RolloutPairs:
        """The pairs of the sub-optimal lines ``lines`` only."""
        keep = np.isin(self.lines, np.asarray(list(lines), dtype=np.int64))
        return RolloutPairs(self.root, self.pairs[keep], self.lines[keep], self.plies[keep])


def _meta_of(record, k: int) -> Mapping:
    if isinstance(record, PositionSpec):
        return record.meta
    if isinstance(record, Mapping):
        return record
    raise ConceptChessError(f"position {k}: expected a record (dict) or a PositionSpec, not {type(record).__name__}")


def rollout_pairs(meta: Sequence[Mapping | PositionSpec], plies: str = "root") -> dict[object, RolloutPairs]:
    """The pairs of every root of a rollouts dataset, by root id in order of first appearance.

    ``meta``: the dataset's records in row order (dicts, or the :class:`~conceptchess.positions.PositionSpec`
    of :func:`~conceptchess.datasets.iter_dataset`). The optimal line holds plies 0 … T; a sub-optimal line j
    branched at b holds plies b+1 … T, so its position at ply t pairs with the optimal line's at t where
    both exist. ``plies``: ``"root"`` keeps the plies where the root's side is to move (``root_to_move``),
    ``"all"`` every ply.

    >>> recs = [{"root": "a", "line": "optimal", "line_index": 0, "ply": t, "branch_ply": None, "root_to_move": t % 2 == 0}
    ...         for t in range(3)] + [{"root": "a", "line": "suboptimal", "line_index": 1, "ply": t, "branch_ply": 0,
    ...                                "root_to_move": t % 2 == 0} for t in (1, 2)]
    >>> rollout_pairs(recs)["a"].pairs.tolist(), rollout_pairs(recs, "all")["a"].pairs.tolist()
    ([[2, 4]], [[1, 3], [2, 4]])
    """
    if plies not in PLIES:
        raise ArgumentError("{plies} must be 'root' (the root side's own plies) or 'all'", plies="plies")
    optimal: dict[object, dict[int, int]] = {}
    others: list[tuple[object, int, int, int]] = []  # (root, row, line index, ply)
    seen: set = set()
    for k, rec in enumerate(meta):
        m = _meta_of(rec, k)
        missing = [f for f in PAIRING_FIELDS if f not in m]
        if missing:
            name = m.get("id", getattr(rec, "id", None))
            raise ConceptChessError(f"not a rollouts dataset: position {k}{f' ({name})' if name is not None else ''} has no "
                                    f"{', '.join(missing)} (the pairing fields of conceptchess.rollouts)")
        root, line, j, t = m["root"], m["line"], m["line_index"], m["ply"]
        key = (root if not isinstance(root, list) else tuple(root), j, t)
        if key in seen:
            raise ConceptChessError(f"rollouts dataset: root {root!r} line {j} has ply {t} twice (position {k})")
        seen.add(key)
        if line == "optimal":
            optimal.setdefault(key[0], {})[int(t)] = k
        elif line == "suboptimal":
            b = m["branch_ply"]
            if b is None:
                raise ConceptChessError(f"rollouts dataset: position {k} is on a sub-optimal line without a branch_ply")
            if int(t) >= int(b) + 1 and (plies == "all" or m["root_to_move"]):
                others.append((key[0], k, int(j), int(t)))
            optimal.setdefault(key[0], {})
        else:
            raise ConceptChessError(f"rollouts dataset: position {k} has line {line!r} (optimal or suboptimal)")
    found: dict[object, list[tuple[int, int, int, int]]] = {root: [] for root in optimal}
    for root, row, j, t in others:
        opt = optimal[root].get(t)
        if opt is not None:
            found[root].append((opt, row, j, t))
    out = {}
    for root, rows in found.items():
        a = np.array(rows, dtype=np.int64).reshape(-1, 4)
        out[root] = RolloutPairs(root, a[:, :2].copy(), a[:, 2].copy(), a[:, 3].copy())
    return out


def rollout_activations(activations: ActivationFiles | str, tap: str, dataset=None) -> tuple[np.ndarray, list[dict]]:
    """A tap of a rollouts dataset's activation folder, flattened per position (float32, in memory), and
    the dataset's records' fields (for :func:`rollout_pairs` and :meth:`DynamicConceptDiscoverer.fit`).

    ``dataset``: the rollouts dataset (default: the one the folder records); it must be the one extracted.
    """
    acts = activations if isinstance(activations, ActivationFiles) else ActivationFiles(activations)
    dataset = dataset if dataset is not None else acts.manifest.get("dataset_path")
    if dataset is None:
        raise ConceptChessError(f"{acts.path}: records no dataset; name the rollouts dataset")
    sha = dataset_sha256(dataset)
    if acts.manifest.get("dataset_sha256") not in (None, sha):
        raise ConceptChessError(f"{acts.path} holds activations of another dataset than {dataset}")
    specs = list(iter_dataset(dataset))
    if [s.id for s in specs] != list(acts.ids):
        raise ConceptChessError(f"{acts.path}: its positions are not those of {dataset} in order")
    x = np.asarray(acts[tap][:], dtype=np.float32)
    return x.reshape(len(x), -1), [dict(s.meta, id=s.id) for s in specs]


# -- the LP ----------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class MarginSolution:
    """The optimum of one sparse-margin LP, in standardised units."""

    coef: np.ndarray  # (features,) float64: v; entries below tol·max|v| are zeros
    slack: np.ndarray  # (pairs,) float64: ξ, how far each pair falls short of the margin (zeros under a hard margin)
    soft: bool  # the hard-margin LP was infeasible and this is the soft-margin optimum
    hard_status: str  # how the hard-margin LP over every feature ended: "optimal", or "infeasible" ("unknown": the solver could not tell)
    status: str  # cvxpy's status of the last LP solved ("optimal", "optimal_inaccurate")
    objective: float  # ‖v‖₁, plus C Σ ξ under a soft margin
    solver: str
    rounds: int  # restricted LPs solved (column generation)
    features_used: int  # columns of the last restricted LP
    seconds: float  # wall time of all the solves, modelling included
    solver_seconds: float  # the time the solver itself reported


@cache
def _greet_highs_quietly() -> None:
    """Make the process's first HiGHS instance with stdout closed: HiGHS prints a two-line banner on the
    standard output (the file descriptor, past Python) when the first one is made, and a command's output
    (JSON, tables) is no place for it."""
    import highspy  # lazy: with cvxpy

    sys.stdout.flush()
    saved = os.dup(1)
    try:
        null = os.open(os.devnull, os.O_WRONLY)
        os.dup2(null, 1)
        os.close(null)
        highspy.Highs()
    finally:
        os.dup2(saved, 1)
        os.close(saved)


@dataclass(frozen=True)
class _Restricted:
    """One LP over the features W: v is None when the solver found no optimum."""

    status: str
    v: np.ndarray | None  # (|W|,) float64
    slack: np.ndarray | None  # (pairs,) float64
    duals: np.ndarray | None  # (pairs,) float64, λ ≥ 0 of the pair constraints; None: the solver gave none
    objective: float
    seconds: float


def _solve_restricted(cp, D: np.ndarray, W: np.ndarray, margin: float, form: str, C: float, solver: str, options: dict) -> _Restricted:
    """The LP over the features ``W`` in one of three forms: ``hard`` (min ‖v‖₁ s.t. Dv ≥ m), ``soft``
    (min ‖v‖₁ + C Σ ξ s.t. Dv + ξ ≥ m, ξ ≥ 0) or ``phase1`` (min Σ ξ s.t. Dv + ξ ≥ m, ξ ≥ 0: zero iff
    some v over W meets the margin on every pair)."""
    A = D[:, W]
    if form == "phase1":
        v = cp.Variable(len(W))
        lhs, objective = A @ v, 0
    else:
        x = cp.Variable(2 * len(W), nonneg=True)  # v⁺ then v⁻ on W: ‖v‖₁ = Σ x at the optimum
        lhs, objective = np.hstack([A, -A]) @ x, cp.sum(x)
    xi = None
    if form == "hard":
        constraint = lhs >= margin
    else:
        xi = cp.Variable(len(D), nonneg=True)
        constraint = lhs + xi >= margin
        objective = objective + (cp.sum(xi) if form == "phase1" else C * cp.sum(xi))
    problem = cp.Problem(cp.Minimize(objective), [constraint])
    try:
        problem.solve(solver=solver, **options)
    except cp.error.SolverError as e:
        raise ConceptChessError(f"the LP solver {solver} failed: {str(e).splitlines()[0] if str(e) else type(e).__name__}") from None
    except ValueError as e:  # cvxpy cannot unpack what the solver did not settle (HiGHS: model status unknown)
        if "invalid solution" not in str(e):
            raise
        return _Restricted("unknown", None, None, None, float("nan"), 0.0)
    seconds = problem.solver_stats.solve_time or 0.0
    if problem.status not in ("optimal", "optimal_inaccurate"):
        return _Restricted(problem.status, None, None, None, float("nan"), seconds)
    values = v.value if form == "phase1" else x.value[: len(W)] - x.value[len(W):]
    slack = np.zeros(len(D)) if xi is None else np.maximum(xi.value, 0.0)
    duals = constraint.dual_value
    duals = None if duals is None else np.asarray(duals, dtype=np.float64).reshape(-1)
    return _Restricted(problem.status, values, slack, duals, float(problem.value), seconds)


def sparse_margin_lp(diffs: np.ndarray, margin: float = 1.0, *, C: float = 1.0, solver: str = "HIGHS", working_set: int | None = 32,
                     tol: float = 1e-6, solver_options: Mapping | None = None) -> MarginSolution:
    """``min ‖v‖₁ s.t. diffs·v ≥ margin`` (one row of ``diffs`` = z⁺ − z⁻ per pair), or its soft-margin
    form with hinge penalty ``C`` where that is infeasible; column generation over ``working_set`` features
    a round (None: the whole LP at once). An all-zero optimum is returned as it is (the estimators refuse it).

    Column generation: each restricted LP's duals λ price the features left out; a feature j joins when
    |Σᵢ λᵢ Dᵢⱼ| > 1 (it would lower ‖v‖₁), the ``working_set`` best a round, until none does. Where the
    restricted hard LP is infeasible, the phase-1 LP (min Σ ξ, v free) decides by the same pricing
    (|Σᵢ λᵢ Dᵢⱼ| > 0) whether more features meet the margin on every pair, or none can: its duals are then
    a certificate (Farkas) that the whole hard LP is infeasible, and the soft margin takes over.
    """
    import cvxpy as cp  # lazy: cvxpy takes ~1 s to import and only fitting needs it

    if solver not in cp.installed_solvers():
        raise ArgumentError(f"{{solver}} {solver!r} is not an installed cvxpy solver ({', '.join(cp.installed_solvers())})", solver="solver")
    if solver == "HIGHS":
        _greet_highs_quietly()
    D = np.asarray(diffs, dtype=np.float64)
    n, d = D.shape
    options = dict(solver_options or {})
    start = time.perf_counter()
    order = np.argsort(-np.abs(D.sum(0)), kind="stable")  # the features the pairs agree on most: λ = 1 priced
    k0 = d if working_set is None else min(d, int(working_set))
    step = d if working_set is None else int(working_set)
    W = order[:k0]
    form, hard_status, feasible_at = "hard", "optimal", -1
    rounds, solver_seconds = 0, 0.0
    while True:
        rounds += 1
        r = _solve_restricted(cp, D, W, float(margin), form, float(C), solver, options)
        solver_seconds += r.seconds
        if r.v is None:
            if form == "soft" or r.status not in ("infeasible", "infeasible_or_unbounded", "unknown"):
                raise ConceptChessError(f"the LP solver {solver} ended with status {r.status!r} ({form} margin, {len(W)} features)")
            if form == "hard" and len(W) != feasible_at:  # the margin is out of reach over W: can more features reach it?
                form = "phase1"
            else:  # phase 1 unsettled, or it found W enough and the hard LP disagrees: no vector is known to meet the margin
                hard_status, form = r.status, "soft"
            continue
        if form == "phase1" and r.objective <= 1e-7 * n * max(1.0, margin):
            form, feasible_at = "hard", len(W)  # W suffices: back to the least ‖v‖₁ over it
            continue
        if len(W) == d:
            if form == "phase1":  # every feature in, the margin still out of reach
                hard_status, form = "infeasible", "soft"
                continue
            break
        if r.duals is None:  # a solver without duals cannot price: the whole LP instead
            W = np.arange(d)
            continue
        price = np.abs(D.T @ r.duals)
        price[W] = 0.0
        bar = PRICE_TOL * max(1.0, float(np.abs(r.duals).sum())) if form == "phase1" else 1.0 + PRICE_TOL
        better = np.flatnonzero(price > bar)
        if not len(better):
            if form == "phase1":  # λ certifies that no vector meets the margin on every pair; the soft LP starts from its features
                hard_status, form = "infeasible", "soft"
                continue
            break
        grow = max(step, len(W) // 2) if len(better) > step else step  # many improve: W grows by half, fewer rounds
        W = np.union1d(W, better[np.argsort(-price[better], kind="stable")[:grow]])
    coef = np.zeros(d)
    coef[W] = r.v
    big = np.abs(coef).max(initial=0.0)
    coef[np.abs(coef) <= tol * big] = 0.0
    return MarginSolution(coef, r.slack, form == "soft", hard_status, r.status, r.objective, solver, rounds, len(W),
                          time.perf_counter() - start, solver_seconds)


# -- the estimators --------------------------------------------------------------------------------------------
def _standardisation(X: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    x = np.asarray(X[rows], dtype=np.float64)
    mean = x.mean(0)
    scale = x.std(0)
    return mean, np.where(scale > SCALE_EPS * np.maximum(1.0, np.abs(mean)), scale, 1.0)


def _matrix(X, what: str = "X") -> np.ndarray:
    X = np.asarray(X)
    if X.ndim != 2 or not len(X) or not X.shape[1]:
        raise ConceptChessError(f"{what} must be a (positions, features) matrix, not of shape {X.shape}")
    if not np.all(np.isfinite(X)):
        raise ConceptChessError(f"{what} has non-finite values")
    return X


class _SparseConcept(BaseEstimator):
    """What both discoverers share: the LP on pairs, the fitted state, scores and the direction."""

    _kind = ""

    def _check_params(self) -> None:
        if not np.isfinite(self.margin) or self.margin < 0:
            raise ArgumentError("{margin} must be ≥ 0 (1 is one standard deviation)", margin="margin")
        if not self.C > 0:
            raise ArgumentError("{C} must be > 0", C="C")
        if self.working_set is not None and int(self.working_set) < 1:
            raise ArgumentError("{working_set} must be at least 1 (or None: the whole LP at once)", working_set="working_set")
        if not 0 <= self.tol < 1:
            raise ArgumentError("{tol} must lie in [0, 1)", tol="tol")

    def fit_pairs(self, X, pairs):
        """Fit on explicit pairs: ``pairs`` (k, 2) rows of ``X`` (positive, negative). Standardisation is
        learned on the rows the pairs use."""
        return self._fit(X, pairs)

    def _fit(self, X, pairs):
        self._check_params()
        X = _matrix(X)
        pairs = np.asarray(pairs, dtype=np.int64).reshape(-1, 2) if len(pairs) else np.zeros((0, 2), np.int64)
        if not len(pairs):
            raise ConceptChessError("no pairs to fit a concept on")
        if pairs.min() < 0 or pairs.max() >= len(X):
            raise ConceptChessError(f"pairs name rows outside X's {len(X)}")
        mean, scale = _standardisation(X, np.unique(pairs))
        D = (np.asarray(X[pairs[:, 0]], np.float64) - np.asarray(X[pairs[:, 1]], np.float64)) / scale
        sol = sparse_margin_lp(D, float(self.margin), C=float(self.C), solver=str(self.solver).upper(), working_set=self.working_set,
                               tol=float(self.tol), solver_options=self.solver_options)
        n = len(pairs)
        if np.abs(sol.coef).sum() <= ZERO_NORM:
            if self.margin == 0:
                why = "margin 0 lets the zero vector meet every constraint; use a positive margin"
            elif sol.soft:
                why = (f"no vector meets the margin on every pair, and with the soft margin (C={self.C}) leaving all {n} pairs "
                       f"short costs less than meeting any (do z⁺ and z⁻ differ? raise C)")
            else:
                why = f"status {sol.status}"
            raise ConceptChessError(f"the concept LP's optimum is v = 0, no concept: {why}")
        self.coef_ = sol.coef
        self.mean_, self.scale_ = mean, scale
        self.pairs_ = pairs
        self.n_pairs_ = n
        self.n_features_in_ = X.shape[1]
        self.n_nonzero_ = int(np.count_nonzero(sol.coef))
        self.soft_margin_ = sol.soft
        self.slack_ = sol.slack
        self.n_violated_ = int(np.count_nonzero(sol.slack > MARGIN_TOL * max(1.0, float(self.margin))))
        self.objective_ = sol.objective
        self.status_ = sol.status
        self.solver_ = sol.solver
        self.rounds_ = sol.rounds
        self.solve_seconds_ = sol.seconds
        self.solver_seconds_ = sol.solver_seconds
        self.message_ = None
        if sol.soft:
            why = "is infeasible" if sol.hard_status != "unknown" else "could not be settled by the solver (status unknown)"
            self.message_ = (f"no vector meets margin {self.margin} on all {n} pairs (the hard-margin LP {why}); fitted a "
                             f"soft margin (hinge penalty C={self.C}): {self.n_violated_} of {n} pairs fall short, total slack "
                             f"{sol.slack.sum():.3g}")
            warnings.warn(self.message_, DiscoveryWarning, stacklevel=3)
        return self

    def decision_function(self, X) -> np.ndarray:
        """The concept score of every row of ``X``: ((x − mean) / scale)·v."""
        X = np.asarray(X, dtype=np.float64)
        return ((X - self.mean_) / self.scale_) @ self.coef_

    def _provenance(self) -> dict:
        return {"method": "sparse-margin-lp", "concept": self._kind, "margin": float(self.margin), "C": float(self.C),
                "soft_margin": bool(self.soft_margin_), "pairs": int(self.n_pairs_), "pairs_short": int(self.n_violated_),
                "solver": self.solver_, "status": self.status_, "objective": float(self.objective_), "n_nonzero": int(self.n_nonzero_),
                "rounds": int(self.rounds_), "solve_seconds": round(float(self.solve_seconds_), 4)}

    def to_direction(self, name: str, tap: str, *, activations: ActivationFiles | None = None, pooling: str | None = None,
                     network_sha256: str | None = None, dataset_sha256: str | None = None, erased: bool | str = False,
                     provenance: Mapping | None = None) -> ConceptDirection:
        """The fitted concept as a ``discovered`` :class:`~conceptchess.directions.ConceptDirection` over ``tap``.

        ``activations``: the activation folder it was fitted on, whose pooling, network and dataset it records
        (or give them as ``pooling``, ``network_sha256``, ``dataset_sha256``). ``erased``: whether (or by which
        eraser) human concepts were erased from the activations first. ``provenance`` adds to what the fit records.
        """
        if not hasattr(self, "coef_"):
            raise ConceptChessError("fit the discoverer before asking for its direction")
        if activations is not None:
            shape = activations.shape(tap)
            if int(np.prod(shape)) != self.n_features_in_:
                raise ConceptChessError(f"tap {tap} of {activations.path} has {int(np.prod(shape))} values per position; the concept "
                                        f"was fitted on {self.n_features_in_}")
            pooling = pooling or activations.pool
            network_sha256 = network_sha256 or activations.manifest.get("net_sha256")
            dataset_sha256 = dataset_sha256 or activations.manifest.get("dataset_sha256")
        prov = self._provenance()
        prov.update({"network_sha256": network_sha256, "dataset_sha256": dataset_sha256, "erased": erased,
                     "software": software_versions("numpy", "cvxpy", "highspy")})
        prov.update(dict(provenance or {}))
        return ConceptDirection(name, tap, self.coef_.astype(np.float32), self.mean_.astype(np.float32), self.scale_.astype(np.float32),
                                kind="discovered", pooling=pooling, network_sha256=network_sha256, dataset_sha256=dataset_sha256,
                                provenance=prov)


class StaticConceptDiscoverer(_SparseConcept):
    """A concept that tells positive from negative positions: ``min ‖v‖₁ s.t. v·z⁺ᵢ ≥ v·z⁻ⱼ + margin``.

    ``fit(X, y)`` pairs every positive row with every negative one (``y`` true/false), a seeded sample of
    ``max_pairs`` of them when there are more; ``fit(X, pairs=…)`` takes the pairs as given.

    Fitted state: ``coef_`` (v over standardised features, float64), ``mean_``/``scale_`` (the standardisation,
    learned on the rows the pairs use), ``pairs_`` ((k, 2) rows of X: positive, negative), ``n_pairs_``,
    ``n_nonzero_``, ``soft_margin_`` and ``message_`` (None under a hard margin), ``slack_`` (per pair),
    ``n_violated_`` (pairs short of the margin), ``objective_``, ``status_``, ``solver_``, ``rounds_`` (LPs
    solved), ``solve_seconds_`` (wall, modelling included) and ``solver_seconds_``.

    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(80, 20)); y = rng.random(80) < 0.5; X[y, 7] += 3
    >>> disc = StaticConceptDiscoverer().fit(X, y)
    >>> int(np.argmax(np.abs(disc.coef_))), disc.score(X, y) > 0.95
    (7, True)
    """

    _kind = "static"

    def __init__(self, margin: float = 1.0, C: float = 1.0, max_pairs: int = 1000, random_state: int = 0, solver: str = "HIGHS",
                 working_set: int | None = 32, tol: float = 1e-6, solver_options: dict | None = None):
        self.margin = margin
        self.C = C
        self.max_pairs = max_pairs
        self.random_state = random_state
        self.solver = solver
        self.working_set = working_set
        self.tol = tol
        self.solver_options = solver_options

    def fit(self, X, y=None, pairs=None):
        """Fit on the positive × negative pairs of ``y`` (up to ``max_pairs``), or on ``pairs``."""
        if (y is None) == (pairs is None):
            raise ArgumentError("give either {y} (positive/negative rows) or {pairs}", y="y", pairs="pairs")
        if pairs is None:
            pairs = all_pairs(y, self.max_pairs, self.random_state)
        return self._fit(X, pairs)

    def score(self, X, y, sample_weight=None) -> float:
        """Share of (positive, negative) pairs of ``(X, y)`` the concept orders correctly (v·z⁺ > v·z⁻)."""
        pos, neg = _classes(y)
        s = self.decision_function(X)
        return _all_pairs_check(s[pos], s[neg], float(self.margin)).ordered


class DynamicConceptDiscoverer(_SparseConcept):
    """A concept of one root's rollouts: ``min ‖v‖₁ s.t. v·z⁺ₜ ≥ v·z⁻ₜ,ⱼ + margin`` for every ply t the
    optimal line and sub-optimal line j share (:func:`rollout_pairs`), on the root side's own plies
    (``plies="root"``, Schut's single-player concepts) or on all (``"all"``).

    ``fit(X, meta, root=None, lines=None)``: ``X`` the activations of the dataset's positions (rows in dataset
    order), ``meta`` its records; ``root`` (needed when the dataset has several); ``lines``: fit on these
    sub-optimal lines only. Fitted state as :class:`StaticConceptDiscoverer`'s, plus ``root_`` and ``lines_``
    (the sub-optimal lines fitted).
    """

    _kind = "dynamic"

    def __init__(self, margin: float = 1.0, C: float = 1.0, plies: str = "root", solver: str = "HIGHS", working_set: int | None = 32,
                 tol: float = 1e-6, solver_options: dict | None = None):
        self.margin = margin
        self.C = C
        self.plies = plies
        self.solver = solver
        self.working_set = working_set
        self.tol = tol
        self.solver_options = solver_options

    def _root_pairs(self, X, meta, root) -> RolloutPairs:
        if len(meta) != len(X):
            raise ConceptChessError(f"X has {len(X)} rows and meta {len(meta)} records")
        by_root = rollout_pairs(meta, self.plies)
        if root is None:
            if len(by_root) != 1:
                raise ArgumentError(f"the rollouts have {len(by_root)} roots; name one with {{root}}", root="root")
            root = next(iter(by_root))
        if root not in by_root:
            raise ConceptChessError(f"no root {root!r} in the rollouts")
        return by_root[root]

    def fit(self, X, meta, root=None, lines=None):
        """Fit on one root's (optimal, sub-optimal) pairs at the same ply."""
        pairs = self._root_pairs(X, meta, root)
        if lines is not None:
            pairs = pairs.select(lines)
        if not len(pairs):
            raise ConceptChessError(f"root {pairs.root!r} has no (optimal, sub-optimal) pairs on {self.plies} plies"
                                    f"{'' if lines is None else ' of the lines chosen'}")
        self._fit(X, pairs.pairs)
        self.root_ = pairs.root
        self.lines_ = pairs.line_indices()
        return self

    def fit_pairs(self, X, pairs):
        """Fit on explicit pairs (optimal, sub-optimal rows of ``X``), of no root in particular: ``root_`` and ``lines_`` are None."""
        self._fit(X, pairs)
        self.root_ = self.lines_ = None
        return self

    def score(self, X, meta, root=None) -> float:
        """Share of the root's pairs (all its lines) the concept orders correctly (v·z⁺ > v·z⁻)."""
        return check_pairs(self, X, self._root_pairs(X, meta, self.root_ if root is None else root).pairs).ordered

    def _provenance(self) -> dict:
        p = super()._provenance()
        p.update({"root": self.root_, "lines": None if self.lines_ is None else list(self.lines_), "plies": self.plies})
        return p


def all_pairs(y, max_pairs: int | None = None, seed: int = 0) -> np.ndarray:
    """Every (positive, negative) pair of rows of ``y`` ((k, 2) int64), or a seeded sample of ``max_pairs`` of them."""
    pos, neg = _classes(y)
    total = len(pos) * len(neg)
    if max_pairs is not None and max_pairs < 1:
        raise ArgumentError("{max_pairs} must be at least 1", max_pairs="max_pairs")
    if max_pairs is None or total <= max_pairs:
        k = np.arange(total)
    else:
        k = np.sort(np.random.default_rng(seed).choice(total, int(max_pairs), replace=False))
    return np.stack([pos[k // len(neg)], neg[k % len(neg)]], 1).astype(np.int64)


def _classes(y) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(y).reshape(-1)
    if y.dtype != bool:
        if not np.isin(y, (0, 1)).all():
            raise ConceptChessError("y must be true/false (or 1/0) per row")
        y = y.astype(bool)
    pos, neg = np.flatnonzero(y), np.flatnonzero(~y)
    if not len(pos) or not len(neg):
        raise ConceptChessError(f"a static concept needs positive and negative rows (has {len(pos)} and {len(neg)})")
    return pos, neg


# -- held-out checks -------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class PairCheck:
    """How a concept orders pairs: the share scored in the right order, and by the margin."""

    pairs: int
    ordered: float  # share with v·z⁺ > v·z⁻ (NaN without pairs)
    with_margin: float  # share with v·z⁺ ≥ v·z⁻ + margin (within MARGIN_TOL)
    mean_gap: float  # mean of v·(z⁺ − z⁻), standardised units


def _pairs_check(gaps: np.ndarray, margin: float) -> PairCheck:
    if not len(gaps):
        return PairCheck(0, float("nan"), float("nan"), float("nan"))
    return PairCheck(len(gaps), float(np.mean(gaps > 0)), float(np.mean(gaps >= margin - MARGIN_TOL * max(1.0, margin))),
                     float(np.mean(gaps)))


def _all_pairs_check(sp: np.ndarray, sn: np.ndarray, margin: float) -> PairCheck:
    """:class:`PairCheck` of every (positive, negative) pair of scores without listing the pairs."""
    sn = np.sort(sn)
    n = len(sp) * len(sn)
    below = np.searchsorted(sn, sp, "left").sum()
    by_margin = np.searchsorted(sn, sp - margin + MARGIN_TOL * max(1.0, margin), "right").sum()
    return PairCheck(n, float(below / n), float(by_margin / n), float(sp.mean() - sn.mean()))


def _scorer(model) -> tuple:
    if isinstance(model, ConceptDirection):
        v = model.vector.astype(np.float64)
        mean = 0.0 if model.mean is None else model.mean.astype(np.float64)
        scale = 1.0 if model.scale is None else model.scale.astype(np.float64)
        return lambda X: ((np.asarray(X, np.float64) - mean) / scale) @ v, float(model.provenance.get("margin", 1.0))
    if not hasattr(model, "coef_"):
        raise ConceptChessError("check a fitted discoverer or a ConceptDirection")
    return model.decision_function, float(model.margin)


def check_pairs(model, X, pairs, margin: float | None = None) -> PairCheck:
    """How ``model`` (a fitted discoverer or a :class:`~conceptchess.directions.ConceptDirection`) orders
    ``pairs`` ((k, 2) rows of ``X``: positive, negative). ``margin``: default the model's."""
    score, m = _scorer(model)
    pairs = np.asarray(pairs, dtype=np.int64).reshape(-1, 2)
    if not len(pairs):
        return _pairs_check(np.zeros(0), m)
    rows, inverse = np.unique(pairs, return_inverse=True)
    s = score(np.asarray(X)[rows])[inverse.reshape(-1, 2)]
    return _pairs_check(s[:, 0] - s[:, 1], m if margin is None else float(margin))


def swap_pairs(pairs, seed: int = 0) -> np.ndarray:
    """``pairs`` with positive and negative swapped in a seeded random half of them (the control's labels)."""
    pairs = np.asarray(pairs, dtype=np.int64).reshape(-1, 2)
    flip = np.random.default_rng(np.random.SeedSequence([seed, 0x5A9])).random(len(pairs)) < 0.5
    return np.where(flip[:, None], pairs[:, ::-1], pairs)


def _control(est, X, pairs, seed: int):
    """The swapped-label control: the same estimator on ``pairs`` swapped at random; None when its optimum is v = 0."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DiscoveryWarning)
        try:
            return clone(est).fit_pairs(X, swap_pairs(pairs, seed))
        except ConceptChessError as e:
            if "optimum is v = 0" not in str(e):
                raise
            return None


@dataclass(frozen=True)
class StaticValidation:
    """A static concept on positions it was not fitted on, beside the swapped-label control."""

    fit: PairCheck  # the pairs fitted
    held_out: PairCheck  # every (positive, negative) pair of the held-out rows
    control: PairCheck | None  # the control (fitting pairs swapped at random) on the same held-out pairs; None: its optimum was v = 0
    n_nonzero: int
    control_nonzero: int | None
    features: int
    soft_margin: bool
    held_out_groups: tuple  # the groups (games) held out

    @property
    def sparsity(self) -> float:
        """Share of the features the concept uses."""
        return self.n_nonzero / self.features


@dataclass(frozen=True)
class DynamicValidation:
    """A dynamic concept on sub-optimal lines of its root it was not fitted on and on other roots' rollouts,
    beside the swapped-label control."""

    root: object
    fit_lines: tuple[int, ...]
    held_out_lines: tuple[int, ...]
    fit: PairCheck  # the pairs fitted
    held_out: PairCheck  # the root's held-out sub-optimal lines
    other_roots: PairCheck  # every pair of every other root (0 pairs when there is none): how general the concept is
    control: PairCheck | None  # the control (fitting pairs swapped at random) on the held-out lines; None: its optimum was v = 0
    control_other_roots: PairCheck | None
    n_nonzero: int
    control_nonzero: int | None
    features: int
    soft_margin: bool
    model: DynamicConceptDiscoverer | None = None  # the concept fitted on ``fit_lines`` (for its direction)

    @property
    def sparsity(self) -> float:
        """Share of the features the concept uses."""
        return self.n_nonzero / self.features


def _held_out_count(n: int, share: float, what: str) -> int:
    if not 0 < share < 1:
        raise ArgumentError("{held_out} must lie in (0, 1)", held_out="held_out")
    if n < 2:
        raise ConceptChessError(f"a held-out check needs at least 2 {what} (has {n})")
    return min(n - 1, max(1, int(round(n * share))))


def validate_static(X, y, *, groups=None, held_out: float = 0.3, estimator: StaticConceptDiscoverer | None = None,
                    seed: int = 0) -> StaticValidation:
    """Fit ``estimator`` (default :class:`StaticConceptDiscoverer`) on the rows of a seeded ``1 − held_out``
    share of the ``groups`` (games; default: every row its own), check it on every (positive, negative)
    pair of the other rows, and do the same for the swapped-label control (seed ``seed``)."""
    X = _matrix(X)
    y = np.asarray(y).reshape(-1)
    if len(y) != len(X):
        raise ConceptChessError(f"X has {len(X)} rows and y {len(y)}")
    groups = np.arange(len(X)) if groups is None else np.asarray(groups).reshape(-1)
    unique = np.unique(groups)
    h = _held_out_count(len(unique), held_out, "groups")
    out = np.random.default_rng(np.random.SeedSequence([seed, 0x57A])).permutation(unique)[:h]
    test = np.isin(groups, out)
    fit_rows, test_rows = np.flatnonzero(~test), np.flatnonzero(test)
    est = clone(estimator) if estimator is not None else StaticConceptDiscoverer(random_state=seed)
    est.fit(X[fit_rows], y[fit_rows])
    pos, neg = _classes(y[test_rows])
    Xt = X[test_rows]

    def held(model) -> PairCheck:
        s = model.decision_function(Xt)
        return _all_pairs_check(s[pos], s[neg], float(model.margin))

    ctl = _control(est, X[fit_rows], est.pairs_, seed)
    return StaticValidation(check_pairs(est, X[fit_rows], est.pairs_), held(est), None if ctl is None else held(ctl), est.n_nonzero_,
                            None if ctl is None else ctl.n_nonzero_, X.shape[1], bool(est.soft_margin_), tuple(np.sort(out).tolist()))


def validate_dynamic(X, meta, root=None, *, held_out: float = 0.3, estimator: DynamicConceptDiscoverer | None = None,
                     seed: int = 0) -> DynamicValidation:
    """Split ``root``'s sub-optimal lines (those with pairs) into fitted and held-out ones (seeded, a
    ``held_out`` share held out), fit ``estimator`` (default :class:`DynamicConceptDiscoverer`) on the first,
    check it on the held-out lines and on every other root's pairs, and do the same for the swapped-label
    control (the fitting pairs swapped at random, seed ``seed``)."""
    X = _matrix(X)
    est = clone(estimator) if estimator is not None else DynamicConceptDiscoverer()
    by_root = rollout_pairs(meta, est.plies)
    mine = est._root_pairs(X, meta, root)
    lines = mine.line_indices()
    h = _held_out_count(len(lines), held_out, f"sub-optimal lines with pairs of root {mine.root!r}")
    out = tuple(sorted(np.random.default_rng(np.random.SeedSequence([seed, 0x11E])).permutation(lines)[:h].tolist()))
    fitted = tuple(j for j in lines if j not in out)
    est.fit(X, meta, mine.root, fitted)
    held_pairs = mine.select(out).pairs
    others = [p.pairs for r, p in by_root.items() if r != mine.root and len(p)]
    other_pairs = np.concatenate(others) if others else np.zeros((0, 2), np.int64)
    ctl = _control(est, X, est.pairs_, seed)
    return DynamicValidation(mine.root, fitted, out, check_pairs(est, X, est.pairs_), check_pairs(est, X, held_pairs),
                             check_pairs(est, X, other_pairs), None if ctl is None else check_pairs(ctl, X, held_pairs),
                             None if ctl is None else check_pairs(ctl, X, other_pairs), est.n_nonzero_,
                             None if ctl is None else ctl.n_nonzero_, X.shape[1], bool(est.soft_margin_), est)


# -- planted concepts (tests, benchmarks, examples) ------------------------------------------------------------
def planted_rollouts(roots: int = 3, depth: int = 5, lines_per_ply: int = 2, features: int = 64, support=(3, 10, 42),
                     strength: float = 1.5, noise: float = 0.3, seed: int = 0) -> tuple[np.ndarray, list[dict], np.ndarray]:
    """Synthetic rollouts with a planted concept: ``(X, meta, w)``.

    Records are laid out as :func:`~conceptchess.rollouts.rollouts_dataset` lays them out (per root: the
    optimal line's plies 0 … ``depth``, then ``lines_per_ply`` sub-optimal lines branched at each ply b,
    holding plies b+1 … ``depth``). A position at ply t of root r is the ply's state (the root's base plus a
    per-ply drift, both standard normal) plus ``noise`` · N(0, 1), plus ``strength`` · w on the optimal
    line: w is ±1 (alternating, + first) on the ``support`` features and 0 elsewhere.
    """
    if not all(0 <= i < features for i in support):
        raise ConceptChessError(f"planted support {tuple(support)} must name features 0 … {features - 1}")
    rng = np.random.default_rng(np.random.SeedSequence([seed, 0x9A7]))
    w = np.zeros(features)
    idx = np.asarray(support, dtype=np.int64)
    w[idx] = [1.0 if i % 2 == 0 else -1.0 for i in range(len(idx))]
    rows, meta = [], []
    for r in range(roots):
        state = rng.normal(size=features) + 0.5 * rng.normal(size=(depth + 1, features))
        lines = [(0, None, 0)] + [(1 + b * lines_per_ply + i, b, b + 1) for b in range(depth) for i in range(lines_per_ply)]
        for j, b, first in lines:
            for t in range(first, depth + 1):
                x = state[t] + noise * rng.normal(size=features)
                if b is None:  # the concept shows through its features in shares that change from position to position
                    x[idx] += strength * w[idx] * rng.dirichlet(np.ones(len(idx))) * len(idx)
                rows.append(x)
                meta.append({"id": f"r{r}/{j}/{t}", "game": f"r{r}", "root": f"r{r}", "line": "optimal" if b is None else "suboptimal",
                             "line_index": j, "ply": t, "branch_ply": b, "root_to_move": t % 2 == 0, "q": None, "visits": None,
                             "move": None, "terminal": None})
    return np.asarray(rows, dtype=np.float32), meta, w
