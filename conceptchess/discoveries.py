"""Discovery runs: every root of a rollouts dataset → a dynamic concept, its checks and controls, in the database.

:func:`run_discovery` reads a rollouts dataset (:mod:`conceptchess.rollouts`) and its activation files
at one tap, erases the human concepts with a fitted eraser (:mod:`conceptchess.erasure`; the default
when one is given), and for each root fits a dynamic concept (:mod:`conceptchess.discovery`: the
sparsest vector ordering the optimal line above every sub-optimal line by a margin) on a share of its
sub-optimal lines, checks it on the held-out ones, on every other root's rollouts and beside the
swapped-label control, and stores a row per (root, variant): ``erased`` and, as the control, the same
root fitted on the ``unerased`` activations. Vectors go to ``.npz`` files
(:class:`~conceptchess.directions.ConceptDirection`, so ``puzzles mine`` takes them unchanged); the
database keeps paths, hashes and numbers. A killed run resumes: the same command finds its run by key
and skips the roots it stored.

An erased-space concept reads ``E(x) = x − L·R·(x − b)`` (LEACE); its stored direction is the same score
on raw activations: ``w = u − Rᵀ·Lᵀ·u`` with ``u = v / scale`` (up to a constant), so mining, novelty and
amplification use it on the activations the network computes. The LP's own sparsity (of v) is recorded
beside it (``nonzero``); ``w`` is generally dense.

:func:`score_novelty` and :func:`amplify_concepts` add those checks to a run's concepts;
:func:`funnel` counts what survives each step.

>>> run = run_discovery(db, "maia-1900.pb.gz", "rollouts/", "acts/", "block5", eraser="eraser.npz", results_dir="results/discovery")  # doctest: +SKIP
>>> funnel(db, run)                                                                                                          # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from conceptchess.activations import ActivationFiles
from conceptchess.amplification import amplify
from conceptchess.datasets import ROLLOUTS, dataset_origin, dataset_sha256, iter_dataset, read_manifest
from conceptchess.directions import ConceptDirection
from conceptchess.discovery import DiscoveryWarning, DynamicConceptDiscoverer, rollout_activations, rollout_pairs, validate_dynamic
from conceptchess.erasure import HumanConceptEraser
from conceptchess.errors import ArgumentError, ConceptChessError
from conceptchess.networks import Network, open_network
from conceptchess.novelty import NoveltyBases
from conceptchess.positions import PositionSpec
from conceptchess.progress import Progress
from conceptchess.provenance import sha256_of, software_versions
from conceptchess.store.discovery import (
    ERASED,
    UNERASED,
    AmplificationResult,
    DiscoveredConcept,
    DiscoveryRun,
    EraserRow,
    NoveltyScore,
    amplification_of,
    concepts_of_run,
    discovery_run_by_key,
    eraser_by_sha,
    latest_novelty,
    roots_done,
)
from conceptchess.store.models import Dataset, NetworkRow
from conceptchess.store.probes import dataset_id, network_id

#: A concept's held-out satisfaction must beat its swapped-label control by this much to pass.
CONTROL_GAP = 0.10
OK, SOFT, FAILED = "ok", "soft-margin", "failed"


@dataclass(frozen=True)
class DiscoverySettings:
    """How each root is fitted and checked (defaults: Schut's single-player concepts at margin 1)."""

    margin: float = 1.0
    C: float = 1.0
    plies: str = "root"
    held_out: float = 0.3
    solver: str = "HIGHS"
    control: bool = True  # also fit each root on unerased activations (when an eraser is given)
    seed: int = 0

    def check(self) -> None:
        """Refuse settings every root would fail on, before anything is read."""
        if not self.margin > 0:
            raise ArgumentError("{margin} must be > 0 (at 0 the zero vector meets every constraint)", margin="margin")
        if not self.C > 0:
            raise ArgumentError("{C} must be > 0", C="C")
        if not 0 < self.held_out < 1:
            raise ArgumentError("{held_out} must lie in (0, 1)", held_out="held_out")
        if self.plies not in ("root", "all"):
            raise ArgumentError("{plies} must be 'root' (the root side's own plies) or 'all'", plies="plies")

    def as_dict(self) -> dict:
        return asdict(self)


def raw_direction(direction: ConceptDirection, eraser: HumanConceptEraser) -> ConceptDirection:
    """The score of an erased-space ``direction`` as a direction over raw activations (see the module docstring)."""
    L = eraser.proj_left_.astype(np.float64)
    R = eraser.proj_right_.astype(np.float64)
    u = direction.vector.astype(np.float64) / (1.0 if direction.scale is None else direction.scale.astype(np.float64))
    w = u - R.T @ (L.T @ u)
    prov = dict(direction.provenance, space="raw activations (LEACE pulled back)", erased_space_nonzero=direction.nonzeros)
    return ConceptDirection(direction.name, direction.tap, w.astype(np.float32), None, None, kind="discovered",
                            pooling=direction.pooling, network_sha256=direction.network_sha256,
                            dataset_sha256=direction.dataset_sha256, provenance=prov)


def _network_row(s, network: str | os.PathLike | Network) -> int:
    net = network if isinstance(network, Network) else open_network(network)
    return network_id(s, sha256=net.sha256, kind=net.kind, blocks=net.blocks, path=str(net.path))


def record_eraser(s, eraser: HumanConceptEraser, path: str | os.PathLike, network: str | os.PathLike | Network, dataset: str | os.PathLike | None = None,
                  report: dict | None = None) -> int:
    """The id of the eraser saved at ``path`` in the database, recorded (with its provenance and ``report``) if new;
    ``network``: the network file it was fitted for (its sha256 must be the eraser's); ``dataset``: the positions it
    was fitted on (recorded by path when given)."""
    sha = sha256_of(path)
    row = eraser_by_sha(s, sha)
    if row is None:
        prov = eraser.provenance_
        net_id = _network_row(s, network)
        if s.get(NetworkRow, net_id).sha256 != prov.network_sha256:
            raise ConceptChessError(f"{path}: an eraser of another network than {network}")
        row = EraserRow(sha256=sha, network_id=net_id,
                        dataset_id=dataset_id(s, sha256=prov.dataset_sha256, source="human-games",
                                              **({"path": str(dataset)} if dataset is not None else {})), tap=prov.tap, pool=prov.pooling,
                        concepts=list(prov.columns or []), rank=int(eraser.rank_), path=str(path), report=report)
        s.add(row)
        s.flush()
    elif report is not None and row.report is None:
        row.report = report
    return row.id


def _key(*parts) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


def _status(est) -> str:
    return SOFT if est.soft_margin_ else OK


def run_discovery(db, network: str | os.PathLike, rollouts: str | os.PathLike, activations: str | os.PathLike, tap: str, *,
                  eraser: str | os.PathLike | None = None, results_dir: str | os.PathLike = "results/discovery",
                  settings: DiscoverySettings = DiscoverySettings(), limit: int | None = None,
                  progress: Progress | None = None) -> int:
    """Fit and check a dynamic concept per root of ``rollouts`` (its activation files ``activations`` at
    ``tap``), on erased activations when ``eraser`` is given (and on unerased ones beside them as the
    control), storing every result; returns the run id. Everything is checked before the first fit.
    """
    settings.check()
    if limit is not None and limit < 1:
        raise ArgumentError("{limit} must be at least 1", limit="limit")
    rollouts = Path(rollouts)
    manifest = read_manifest(rollouts)
    if dataset_origin(manifest) != ROLLOUTS:
        raise ConceptChessError(f"{rollouts}: not a rollouts dataset (origin {dataset_origin(manifest)}; make one with positions rollouts)")
    acts = ActivationFiles(activations)
    if tap not in acts:
        raise ConceptChessError(f"{acts.path}: has no tap {tap!r} (taps: {', '.join(acts.taps)})")
    net = open_network(network)
    if acts.manifest.get("net_sha256") != net.sha256:
        raise ConceptChessError(f"{acts.path}: activations of another network than {network}")
    X, meta = rollout_activations(acts, tap, rollouts)
    pairs = rollout_pairs(meta, settings.plies)
    roots = list(pairs)[:limit]
    er = None
    if eraser is not None:
        er = HumanConceptEraser.load(eraser)
        er.check_matches(net.sha256, tap, acts.pool)
    variants = ([ERASED] if er is not None else []) + ([UNERASED] if er is None or settings.control else [])
    views = {UNERASED: X}
    if er is not None:
        views[ERASED] = er.transform(X).astype(np.float32)
    sha = dataset_sha256(rollouts)
    key = _key("discover", net.sha256, sha, str(acts.path), tap, er and sha256_of(eraser), settings.as_dict(), limit)
    out_dir = Path(results_dir)
    with db.begin() as s:
        run = discovery_run_by_key(s, key)
        if run is None:
            eraser_id = None
            if er is not None:
                eraser_id = record_eraser(s, er, eraser, net)
            run = DiscoveryRun(key=key, network_id=_network_row(s, net),
                               dataset_id=dataset_id(s, sha256=sha, path=str(rollouts), source=ROLLOUTS, positions=len(meta),
                                                     manifest=manifest),
                               eraser_id=eraser_id, tap=tap, pool=acts.pool, activations=str(acts.path), results_dir="",
                               seed=settings.seed, settings={**settings.as_dict(), "limit": limit},
                               versions=software_versions("numpy", "cvxpy", "highspy", "sklearn", "torch"))
            s.add(run)
            s.flush()
            run.results_dir = str(out_dir / f"run-{run.id}")
        run_id, run_dir = run.id, Path(run.results_dir)
        done = roots_done(s, run_id)
    run_dir.mkdir(parents=True, exist_ok=True)
    total = len(roots) * len(variants)
    count = len(done)
    if progress is not None:
        progress(count, total)
    for root in roots:
        for variant in variants:
            if (str(root), variant) in done:
                continue
            row = _fit_root(X=views[variant], meta=meta, root=root, variant=variant, settings=settings, tap=tap, acts=acts,
                            eraser=er if variant == ERASED else None, eraser_path=eraser, run_dir=run_dir, run_id=run_id)
            with db.begin() as s:
                s.add(row)
            count += 1
            if progress is not None:
                progress(count, total)
    with db.begin() as s:
        run = s.get(DiscoveryRun, run_id)
        run.status, run.finished_at = "complete", datetime.now(UTC)
    return run_id


def _fit_root(*, X, meta, root, variant, settings, tap, acts, eraser, eraser_path, run_dir: Path, run_id: int) -> DiscoveredConcept:
    est = DynamicConceptDiscoverer(margin=settings.margin, C=settings.C, plies=settings.plies, solver=settings.solver)
    base = {"run_id": run_id, "root": str(root), "variant": variant, "margin": settings.margin, "solver": settings.solver,
            "features": X.shape[1]}
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DiscoveryWarning)
            val = validate_dynamic(X, meta, root, held_out=settings.held_out, estimator=est, seed=settings.seed)
        fitted = val.model
    except ConceptChessError as e:
        return DiscoveredConcept(**base, status=FAILED, reason=str(e))
    name = f"run{run_id}-{root}-{variant}"
    direction = fitted.to_direction(name, tap, activations=acts, erased=variant == ERASED and str(eraser_path),
                                    provenance={"root": str(root), "variant": variant, "run": run_id})
    if eraser is not None:
        direction = raw_direction(direction, eraser)
    safe = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in name)
    path = direction.save(run_dir / f"{safe}.npz")
    details = {"fit": asdict(val.fit), "held_out": asdict(val.held_out), "other_roots": asdict(val.other_roots),
               "control": None if val.control is None else asdict(val.control),
               "control_other_roots": None if val.control_other_roots is None else asdict(val.control_other_roots),
               "fit_lines": list(val.fit_lines), "held_out_lines": list(val.held_out_lines), "control_nonzero": val.control_nonzero,
               "objective": fitted.objective_, "lp_status": fitted.status_, "rounds": fitted.rounds_,
               "solve_seconds": fitted.solve_seconds_, "message": fitted.message_, "raw_nonzero": direction.nonzeros}
    return DiscoveredConcept(**base, status=_status(fitted), reason=fitted.message_, constraints=int(fitted.n_pairs_),
                             nonzero=int(fitted.n_nonzero_), heldout_same_root=val.held_out.ordered,
                             heldout_other_roots=val.other_roots.ordered,
                             swapped_control=None if val.control is None else val.control.ordered,
                             vector_path=str(path), vector_sha256=direction.sha256, details=json.loads(json.dumps(details, default=float)))


def passes_heldout(c: DiscoveredConcept, gap: float = CONTROL_GAP) -> bool:
    """Held-out satisfaction on the root's own held-out lines above chance and the swapped-label control by ``gap``."""
    if c.heldout_same_root is None or not np.isfinite(c.heldout_same_root):
        return False
    control = c.swapped_control if c.swapped_control is not None and np.isfinite(c.swapped_control) else 0.5
    return c.heldout_same_root > 0.5 and c.heldout_same_root >= control + gap


def concept_direction(c: DiscoveredConcept) -> ConceptDirection:
    if not c.vector_path:
        raise ConceptChessError(f"concept {c.id} has no vector ({c.status}: {c.reason})")
    return ConceptDirection.load(c.vector_path)


def score_novelty(db, run_id: int, bases: NoveltyBases, human: str | os.PathLike, machine: str | os.PathLike, *,
                  controls: int = 100, seed: int = 0, progress: Progress | None = None) -> int:
    """Score every fitted concept of a run against ``bases`` (built from ``human`` and ``machine``); returns how many."""
    with db.begin() as s:
        run = s.get(DiscoveryRun, run_id)
        if run is None:
            raise ConceptChessError(f"no discovery run {run_id}")
        if run.tap != bases.tap or run.pool != bases.pooling:
            raise ConceptChessError(f"the novelty bases are of {bases.tap} ({bases.pooling}), run {run_id} of {run.tap} ({run.pool})")
        h_id = dataset_id(s, sha256=dataset_sha256(human), path=str(human), source="human-games", positions=bases.human_count)
        m_id = dataset_id(s, sha256=dataset_sha256(machine), path=str(machine), source="machine-games", positions=bases.machine_count)
        todo = [(c.id, c.vector_path) for c in concepts_of_run(s, run_id) if c.vector_path]
    for k, (cid, path) in enumerate(todo):
        sc = bases.score(ConceptDirection.load(path), controls=controls, seed=seed)
        quant = {str(kk): [float(sc.control_quantiles[0, i]), float(sc.control_quantiles[-1, i])] for i, kk in enumerate(sc.ks)}
        with db.begin() as s:
            s.add(NoveltyScore(concept_id=cid, human_dataset_id=h_id, machine_dataset_id=m_id, novel=bool(sc.novel),
                               scores={str(kk): float(v) for kk, v in zip(sc.ks, sc.scores)}, human_rank=sc.human_rank,
                               machine_rank=sc.machine_rank,
                               control={"controls": sc.controls, "seed": sc.control_seed, "novel_share": sc.control_novel_share,
                                        "levels": list(sc.control_levels), "quantiles": quant,
                                        "at_least": [float(x) for x in sc.control_at_least]}))
        if progress is not None:
            progress(k + 1, len(todo))
    return len(todo)


def _root_positions(rollouts: str | os.PathLike, root: str) -> list[PositionSpec]:
    """The optimal line's positions where the root's side is to move, each with the line's next move."""
    out = []
    for spec in iter_dataset(rollouts):
        m = spec.meta
        if str(m.get("root")) == root and m.get("line") == "optimal" and m.get("root_to_move") and m.get("move"):
            out.append(PositionSpec(spec.id, spec.fen, spec.moves, {"move": m["move"]}))
    return out


def amplify_concepts(db, run_id: int, network: str | os.PathLike, unrelated: str | os.PathLike, *, alphas=(0.0, 0.25, 0.5, 1.0, 2.0),
                     only_passing: bool = True, unrelated_count: int = 64, seed: int = 0, progress: Progress | None = None) -> int:
    """Amplify a run's concepts (by default those past the held-out check) on their own root positions and on
    ``unrelated_count`` positions of ``unrelated``, each beside a random direction of the same norm and sparsity."""
    with db.begin() as s:
        run = s.get(DiscoveryRun, run_id)
        if run is None:
            raise ConceptChessError(f"no discovery run {run_id}")
        rollouts = s.get(Dataset, run.dataset_id).path
        todo = [(c.id, c.root, c.vector_path) for c in concepts_of_run(s, run_id)
                if c.vector_path and (passes_heldout(c) or not only_passing)]
    specs = list(iter_dataset(unrelated))
    rng = np.random.default_rng(seed)
    pick = sorted(rng.choice(len(specs), min(unrelated_count, len(specs)), replace=False).tolist())
    others = [specs[i] for i in pick]
    for k, (cid, root, path) in enumerate(todo):
        d = ConceptDirection.load(path)
        a = amplify(network, d, roots=_root_positions(rollouts, root), unrelated=others, alphas=alphas, seed=seed)
        with db.begin() as s:
            for eff in (a.roots, a.unrelated):
                if eff is None:
                    continue
                curves = {"alphas": list(a.alphas), "spread": a.spread,
                          "concept": {"mean": [e.move.mean for e in eff.effects], "low": [e.move.low for e in eff.effects],
                                      "high": [e.move.high for e in eff.effects]},
                          "control": {"mean": [e.move_control.mean for e in eff.effects], "low": [e.move_control.low for e in eff.effects],
                                      "high": [e.move_control.high for e in eff.effects]},
                          "value": {"concept": [e.value.mean for e in eff.effects], "control": [e.value_control.mean for e in eff.effects]}}
                last = eff.effects[-1]
                s.add(AmplificationResult(concept_id=cid, positions=eff.kind, n_positions=len(eff.ids), alphas=list(a.alphas),
                                          effect=last.move.mean, control_effect=last.move_control.mean,
                                          above_control=bool(last.move.low > last.move_control.high),
                                          curves=json.loads(json.dumps(curves, default=float))))
        if progress is not None:
            progress(k + 1, len(todo))
    return len(todo)


@dataclass(frozen=True)
class Funnel:
    """What survives each step of a run's discovery (``variant``: erased or the unerased control)."""

    run_id: int
    variant: str
    roots: int
    fitted: int  # a non-trivial vector met the margin (hard margin)
    soft: int  # infeasible at the margin: fitted with slack (not counted as fitted)
    failed: int
    heldout: int  # held-out satisfaction above chance and the swapped-label control
    novelty_scored: int
    novel: int
    amplified: int
    amplification_above_control: int
    mean_heldout: float | None
    mean_control: float | None
    mean_other_roots: float | None

    def as_dict(self) -> dict:
        return asdict(self)


def funnel(db, run_id: int, variant: str = ERASED) -> Funnel:
    with db.session() as s:
        rows = [c for c in concepts_of_run(s, run_id) if c.variant == variant]
        fitted = [c for c in rows if c.status == OK]
        held = [c for c in fitted if passes_heldout(c)]
        nov = {c.id: latest_novelty(s, c.id) for c in held}
        novel = [c for c in held if nov[c.id] is not None and nov[c.id].novel]
        amps = {c.id: [a for a in amplification_of(s, c.id) if a.positions == "roots"] for c in novel}
        above = [c for c in novel if amps[c.id] and amps[c.id][-1].above_control]

        def mean(vals):
            vals = [v for v in vals if v is not None and np.isfinite(v)]
            return float(np.mean(vals)) if vals else None

        return Funnel(run_id, variant, len(rows), len(fitted), sum(c.status == SOFT for c in rows), sum(c.status == FAILED for c in rows),
                      len(held), sum(1 for v in nov.values() if v is not None), len(novel), sum(1 for c in novel if amps[c.id]),
                      len(above), mean(c.heldout_same_root for c in fitted), mean(c.swapped_control for c in fitted),
                      mean(c.heldout_other_roots for c in fitted))

