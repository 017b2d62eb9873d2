"""The puzzle part of ``make demo``: mine puzzles for the probe vectors of the demo's probe sweep, store
them in the collection ``demo`` and write ``puzzles/demo.pgn``.

The concept directions are the sweep's own stored probe vectors (:func:`probe_directions`): for each
concept, the probe of the run's final checkpoint at the block tap where it scored best on the test
games. A probe is fitted on the standardised activations of the training games (its L1 strength chosen
on the validation games) and scored on the test games, so puzzles are mined from **held-out positions
only** — positions of games outside the training and validation games: the run's test games, and
further games of the same source when a larger pool is given — and each direction carries the
training games' standardisation (``score = ((x - mean) / scale) · v``: the probe's read-out less its
intercept). Controls, mined from the same positions: a random direction of matched sparsity in the
same standardised space, and the human concept itself (scored from the board).

Positions (:func:`demo_positions`) come from the shared Lichess games when they are present
(``../shared/data/pgn`` or ``$CONCEPTCHESS_TEST_DATA/pgn``), else from self-play of the network.

>>> report = demo_puzzles(run_id, positions=demo_positions(net, WORK_DIR, 12_000, seed=0))   # doctest: +SKIP
>>> [(r.concept, len(r.puzzles)) for r in report.results]                                  # doctest: +SKIP
[('them_hanging_pieces-probe-block5', 0), ('us_forks_available-probe-block1', 1), ...]
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from sqlalchemy import select

from conceptchess.activations import extract_activations
from conceptchess.datasets import POSITIONS_FILE, DatasetWriter, dataset_sha256, iter_dataset, positions_path, read_manifest
from conceptchess.errors import ConceptChessError
from conceptchess.export import export_collection
from conceptchess.games import Sampling, pgn_dataset
from conceptchess.paths import BUILD_DIR, PUZZLES_DIR, test_data_dir
from conceptchess.puzzles.mine import Direction, HumanConcept, MineResult, mine_many
from conceptchess.puzzles.verify import VerifySettings
from conceptchess.selfplay import selfplay_dataset
from conceptchess.store import connect
from conceptchess.store.models import Dataset, NetworkRow
from conceptchess.store.probes import ProbeRun

DEMO_CONCEPTS = ("them_hanging_pieces", "us_forks_available", "us_has_mate_in_1")
WORK_DIR = BUILD_DIR / "demo-puzzles"


def demo_positions(network: Path, work: Path, positions: int, seed: int) -> Path:
    """The demo's positions (kept under ``work`` per count and seed): shared Lichess games when present,
    else self-play of ``network``."""
    out = work / f"positions-{positions}-seed{seed}"
    if (out / POSITIONS_FILE).exists():
        return out
    games = test_data_dir() / "pgn"
    pgns = sorted(games.glob("*.pgn")) if games.is_dir() else []
    if pgns:
        pgn_dataset(pgns, out, sampling=Sampling(skip_plies=8, every=3, max_positions=positions, seed=seed))
    else:
        selfplay_dataset(network, out, games=max(1, positions // 60), temperature=1.0, seed=seed, max_plies=120, threads=1,
                         device="cpu")
    return out


@dataclass(frozen=True)
class ProbeDirection:
    """A stored probe vector as a mining direction, with where it comes from and how it scored."""

    direction: Direction  # vector in the training games' standardised space (tap features,), with that mean/scale
    run_id: int
    run_key: str
    concept: str
    network: str  # the checkpoint's label, e.g. "cc-6x32 step 1000"
    network_path: Path
    tap: str
    metric: str  # r2 | balanced_accuracy
    score: float  # on the run's test games
    ci_low: float | None
    ci_high: float | None
    nonzero: int | None
    features: int | None
    vector_path: Path

    def describe(self) -> str:
        metric = "test R²" if self.metric == "r2" else "test balanced accuracy"
        ci = "" if self.ci_low is None else f" (95% CI {self.ci_low:.3f}–{self.ci_high:.3f})"
        return (f"{self.concept}: probe of run {self.run_id} at {self.network} {self.tap}, {metric} {self.score:.3f}{ci}, "
                f"{self.nonzero}/{self.features} non-zero")


@dataclass(frozen=True)
class ProbeDirections:
    """What :func:`probe_directions` found: one direction per usable concept, the reason for each other
    concept, and the held-out positions to mine (positions of games the probes were not fitted or
    selected on) as a dataset of their own."""

    directions: list[ProbeDirection]
    skipped: dict[str, str]  # concept → why it has no direction
    held_out: Path  # a positions dataset: no position of the run's training or validation games
    held_out_positions: int
    held_out_test_positions: int  # how many of them are positions of the run's test games
    test_positions: int  # the run's test positions
    run_positions: int
    pool: str  # the run's pooling of activations ("full" or "mean"), which the vectors assume


def _best_final_rows(view, concepts: tuple[str, ...]) -> tuple[object, dict, dict[str, str]]:
    """The final probed checkpoint, and per concept its best block-tap row there (by test score)."""
    if not view.probed:
        raise ConceptChessError(f"probe run {view.id} probed no network")
    final = view.probed[-1]
    best, skipped = {}, {}
    for c in concepts:
        rows = [r for r in view.rows if r.concept == c and r.network_id == final.id and re.fullmatch(r"block\d+", r.tap)]
        ok = [r for r in rows if r.status == "ok" and r.score is not None and r.vector_path and r.nonzero]
        if not ok:
            reasons = sorted({r.reason for r in rows if r.reason})
            skipped[c] = (reasons[0] if reasons else f"every probe at {final.label} ended at zero weights" if rows
                          else f"not probed at {final.label} in run {view.id}")
            continue
        best[c] = max(ok, key=lambda r: r.score)
    return final, best, skipped


def _game_key(record: dict, has_games: bool) -> str:
    """A record's game as the sweep groups it (its ``game``/``game_id``; the position itself without game ids)."""
    return json.dumps(record.get("game", record.get("game_id")) if has_games else record["id"])


def _held_out_dataset(plan, run_key: str, source: Path, work: Path) -> Path:
    """The positions of ``source`` outside the run's training and validation games, as a dataset of their
    own (made once per run and source under ``work``). From the run's own dataset: its test games."""
    out = work / f"held-out-{run_key[:12]}-{dataset_sha256(source)[:12]}"
    if (out / POSITIONS_FILE).exists():
        return out
    with open(positions_path(plan.dataset), encoding="utf-8") as f:
        records = [json.loads(line) for line in f if line.strip()][: plan.positions]
    has_games = any("game" in r or "game_id" in r for r in records)
    seen = {_game_key(records[i], has_games) for i in np.concatenate([plan.split.train, plan.split.val])}
    manifest = {k: v for k, v in read_manifest(source).items() if k in ("kind", "made_by", "sources", "seed")}
    manifest.update(subset_of=dataset_sha256(source), probe_run_key=run_key,
                    subset="positions outside the training and validation games of a probe run")
    with open(positions_path(source), encoding="utf-8") as f, DatasetWriter(out, manifest, overwrite=True) as w:
        for line in f:
            if line.strip() and _game_key(record := json.loads(line), has_games) not in seen:
                w.write(record)
    return out


def probe_directions(db, run_id: int, concepts: tuple[str, ...] = DEMO_CONCEPTS, positions: str | os.PathLike | None = None,
                     work_dir: str | os.PathLike | None = None, progress: Callable[[int, int], None] | None = None) -> ProbeDirections:
    """The stored probe vectors of run ``run_id`` for ``concepts`` as mining directions, and the
    held-out positions to mine: those of ``positions`` (a dataset; default the run's own) outside the
    run's training and validation games — from the run's dataset, its test games.

    Per concept: the probe of the run's final checkpoint at the block tap with the best test score.
    The vector is stored in raw activation space; its standardisation (the training games' per-feature
    mean and scale, which the sweep does not store) is recomputed exactly as the sweep computed it, from
    the same activations and the same split, so that the random control of matched sparsity lives in
    the space the probe was fitted in. The run's dataset must be unchanged (its sha256 is checked).
    """
    # probing imports torch (its package solves the probes): loaded only when a run is read
    from conceptchess.probing import ProbeSettings, Standardizer, SweepRequest, plan_sweep
    from conceptchess.probing.results import load_run
    from conceptchess.probing.sources import Activations, net_info

    view = load_run(db, run_id)
    final, best, skipped = _best_final_rows(view, concepts)
    if not best:
        raise ConceptChessError(f"probe run {run_id} has no usable probe of {', '.join(concepts)} at {view.probed[-1].label}: "
                                + "; ".join(f"{c}: {why}" for c, why in skipped.items()))
    with db.session() as s:
        run = s.get(ProbeRun, int(run_id))
        ds = s.get(Dataset, run.dataset_id)
        net_path = s.execute(select(NetworkRow.path).where(NetworkRow.id == final.id)).scalar_one()
        run_key, results_dir, dataset_sha = run.key, run.results_dir, ds.sha256
    settings = view.settings
    if not net_path or not Path(net_path).is_file():
        raise ConceptChessError(f"probe run {run_id}: its final checkpoint {net_path!r} is not here")
    taps = sorted({r.tap for r in best.values()})
    probe = settings.get("probe", {})
    plan = plan_sweep(SweepRequest(dataset=view.dataset, nets=[net_path], concepts=list(best), taps=taps, controls=False,
                                   seed=settings["seed"], max_positions=settings.get("max_positions"), pool=settings["pool"],
                                   results=results_dir,
                                   settings=ProbeSettings(fractions=tuple(probe.get("fractions", ProbeSettings().fractions)))))
    if plan.dataset_sha != dataset_sha:
        raise ConceptChessError(f"{view.dataset} changed since probe run {run_id} (sha256 {plan.dataset_sha[:12]}…, "
                                f"the run's {dataset_sha[:12]}…)")
    if list(plan.split.sizes()) != list(settings.get("split_sizes", plan.split.sizes())):
        raise ConceptChessError(f"probe run {run_id}: its train / validation / test split could not be reproduced")
    acts = Activations(plan.dataset, plan.dataset_sha, plan.dataset_size, plan.positions, plan.ids, plan.request.pool,
                       plan.results, [])
    info = net_info(net_path)
    acts.ensure(info, taps, progress)
    standardisation = {}
    for tap in taps:
        X, _ = acts.load(info.sha256, tap)
        std = Standardizer.fit(X, plan.split.train, dedupe=False)
        standardisation[tap] = (std.mean, std.scale)
    out = []
    for c, r in best.items():
        raw = np.load(r.vector_path, allow_pickle=False).reshape(-1)
        mean, scale = standardisation[r.tap]
        d = Direction(f"{c}-probe-{r.tap}", r.tap, raw * scale, mean, scale)
        out.append(ProbeDirection(d, view.id, run_key, c, final.label, Path(net_path), r.tap, r.metric, r.score, r.ci_low, r.ci_high,
                                  r.nonzero, r.features, Path(r.vector_path)))
    held_out = _held_out_dataset(plan, run_key, Path(positions) if positions is not None else plan.dataset, Path(work_dir or WORK_DIR))
    test_ids = {json.dumps(plan.ids[i]) for i in plan.split.test}
    held_ids = [json.dumps(spec.id) for spec in iter_dataset(held_out)]
    return ProbeDirections(out, skipped, held_out, len(held_ids), sum(i in test_ids for i in held_ids), len(test_ids), plan.positions,
                           plan.request.pool)


@dataclass
class DemoPuzzles:
    """What :func:`demo_puzzles` did: the directions mined, each concept's and control's mining result,
    and the PGN written."""

    path: Path
    directions: ProbeDirections
    results: list[MineResult] = field(default_factory=list)


def demo_puzzles(run_id: int, out: str | os.PathLike | None = None, *, db_url: str | None = None,
                 concepts: tuple[str, ...] = DEMO_CONCEPTS, positions: str | os.PathLike | None = None,
                 directions: ProbeDirections | None = None, nodes: int = 100_000,
                 max_puzzles: int = 5, workers: int = 2, seed: int = 0, work_dir: str | os.PathLike | None = None, collection: str = "demo",
                 progress_for: Callable[[str], Callable[[int, int], None]] | None = None) -> DemoPuzzles:
    """Mine the held-out positions of probe run ``run_id`` with its probe vectors of ``concepts`` and the
    controls; store the puzzles in ``collection`` and export it (default ``puzzles/demo.pgn``).

    ``positions``: the dataset to mine, less the run's training and validation games (default: the
    run's own, i.e. its test games). ``directions``: what :func:`probe_directions` already read for
    this run, ``concepts`` and ``positions`` (read here when None). ``nodes``: Stockfish nodes per check. ``max_puzzles``: per concept and per
    control. The random control has the sparsity of the first direction; the human control is the
    first concept with a direction. Everything is seeded by ``seed``.
    """
    db = connect(db_url)
    work = Path(work_dir or WORK_DIR)
    found = directions or probe_directions(db, run_id, concepts, positions, work)
    if found.directions[0].run_id != run_id:
        raise ConceptChessError(f"the directions given are of probe run {found.directions[0].run_id}, not {run_id}")
    first = found.directions[0]
    taps = sorted({d.tap for d in found.directions})
    store = extract_activations(first.network_path, found.held_out,
                                work / f"activations-{found.held_out.name}-{found.pool}-{'_'.join(taps)}", taps, pool=found.pool,
                                device="cpu", threads=1)
    scorers: list = [d.direction for d in found.directions]
    controls = [first.direction.random_control(seed), HumanConcept(first.concept)]
    results = mine_many(db, collection, scorers + controls, store, found.held_out, network=first.network_path,
                        max_puzzles=max_puzzles, settings=VerifySettings(nodes=nodes), workers=workers, weak_network=True, seed=seed,
                        progress_for=progress_for)
    if not any(r.puzzles for r in results):
        raise ConceptChessError(f"the demo found no puzzle in the {found.held_out_positions} held-out positions: "
                                + "; ".join(r.summary() for r in results))
    res = export_collection(db, collection, Path(out) if out else PUZZLES_DIR / "demo.pgn")
    return DemoPuzzles(res.path, found, results)
