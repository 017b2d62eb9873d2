"""The whole story on the project's own networks: what ``make demo`` (``conceptchess demo``) runs.

Four stages, each a library call the command line only prints:

1. :func:`evaluate_demo_positions` — the demo's network (:func:`find_demo_network`) on a few
   well-known positions (:data:`DEMO_POSITIONS`).
2. :func:`plan_demo_sweep` and :func:`demo_atlas` — a probe sweep of :data:`PROBED_CONCEPTS` over the
   checkpoint series in ``engines/`` (what-when-where, with controls) and its atlas: the concepts of
   :data:`FULL_RESOLUTION_CONCEPTS` on the full 8×8 activations, the others on per-channel means, and one
   "when" figure per concept (best block score against training step).
3. :func:`probe_directions` and :func:`demo_puzzles` — puzzles mined for :data:`MINED_CONCEPTS` with
   the sweep's own stored probe vectors, stored in the collection ``demo`` and written to
   ``puzzles/demo.pgn``.
4. Schut et al.'s discovery on the series' final checkpoint, with the small budgets of
   :data:`DISCOVERY_BUDGET`: :func:`discovery_data` (roots where it and an earlier checkpoint disagree on
   human positions, rollouts of a few of them and a larger prototype pool, self-play, activations),
   :func:`demo_eraser` (LEACE of :data:`ERASED_CONCEPTS`), :func:`demo_discovery` (a dynamic concept per
   root), :func:`demo_filters` (novelty, amplification, prototypes, students, teaching with its controls,
   the funnel), :func:`discovered_puzzles` (the survivors, else the best-ranked said so, beside a random
   control, into the ``demo`` collection) and :func:`discovery_page` (``results/demo-discovery/index.html``).
   Each stage reuses what a previous demo made or stored.

Positions (:func:`demo_positions`) come from the shared Lichess games when they are present
(``../shared/data/pgn`` or ``$CONCEPTCHESS_TEST_DATA/pgn``), else from self-play of the network.

The concept directions are the sweep's stored probes (:func:`conceptchess.store.directions.probe_direction`):
for each concept, the probe of the run's final checkpoint at the block tap where it scored best on the
test games. A probe is fitted on the standardised activations of the training games (its L1 strength
chosen on the validation games) and scored on the test games, so puzzles are mined from **held-out
positions only** — positions of games outside the training and validation games: the run's test
games, and further games of the same source when a larger pool is given. The stored vector is in raw
activation space; each direction is expressed in the training games' standardised space, which the
demo recomputes (``score = ((x - mean) / scale) · v``: the probe's read-out less its intercept), so
that the random control of matched sparsity is drawn in the space the probe was fitted in. Controls,
mined from the same positions: that random direction, and the human concept itself (scored from the
board).

>>> path, why = find_demo_network()                                                           # doctest: +SKIP
>>> run_id, atlas = demo_atlas(plan_demo_sweep(demo_positions(path, WORK_DIR, DEMO_PROBE_POSITIONS, seed=0)), "atlas/")  # doctest: +SKIP
>>> report = demo_puzzles(run_id, positions=demo_positions(path, WORK_DIR, 12_000, seed=0))   # doctest: +SKIP
>>> [(r.concept, len(r.puzzles)) for r in report.results]                                    # doctest: +SKIP
[('them_hanging_pieces-probe-block5', 0), ('us_forks_available-probe-block1', 1), ...]
>>> data = discovery_data(path, "human/", "roots-from/")                                     # doctest: +SKIP
>>> found = demo_discovery(db, data, demo_eraser(db, data))                                  # doctest: +SKIP
>>> demo_filters(db, found.run_id, data).funnel.stages                                       # doctest: +SKIP
(('candidates', 10), ('enough prototypes', 4), ('a student', 4), ('teachable', 0), ('novel', 0), ('amplified above control', 0))
"""

from __future__ import annotations

import hashlib
import json
import os
from collections import Counter
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from itertools import groupby
from pathlib import Path

import numpy as np

from conceptchess.activations import extract_activations
from conceptchess.checkpoints import network_files, stem
from conceptchess.datasets import (
    HUMAN_GAMES,
    POSITIONS_FILE,
    DatasetWriter,
    dataset_origin,
    dataset_sha256,
    iter_dataset,
    positions_path,
    read_manifest,
)
from conceptchess.directions import ConceptDirection
from conceptchess.disagreement import disagreement_dataset
from conceptchess.discoveries import Funnel, amplify_concepts, funnel, passes_heldout, record_eraser, run_discovery, score_novelty
from conceptchess.discovery_filters import FunnelCounts, filter_run, teach_concepts
from conceptchess.discovery_report import plot_discoveries
from conceptchess.engine import Engine
from conceptchess.erasure import HumanConceptEraser, fit_eraser_from_files
from conceptchess.errors import ConceptChessError
from conceptchess.export import export_collection
from conceptchess.files import atomic_write_text
from conceptchess.games import Sampling, pgn_dataset
from conceptchess.names import unique
from conceptchess.networks import default_network
from conceptchess.novelty import NoveltyBases, build_novelty_bases
from conceptchess.paths import BUILD_DIR, PUZZLES_DIR, RESULTS_DIR, test_data_dir
from conceptchess.plots import plot_run
from conceptchess.positions import PositionSpec, histories_of
from conceptchess.probing import ProbeSettings, Standardizer, SweepPlan, SweepRequest, plan_sweep, run_sweep
from conceptchess.probing.results import NetRow, ResultRow, RunView, load_run
from conceptchess.probing.sources import Activations, default_series, net_info, series
from conceptchess.progress import Progress, ProgressFor
from conceptchess.puzzles.discovered import discovered_direction, random_control
from conceptchess.puzzles.mine import HumanConcept, MineResult, mine_many
from conceptchess.puzzles.records import collection_puzzles
from conceptchess.puzzles.verify import VerifySettings
from conceptchess.rollouts import RolloutSettings, rollouts_dataset
from conceptchess.selfplay import selfplay_dataset
from conceptchess.store import connect
from conceptchess.store import probes as queries
from conceptchess.store.directions import probe_direction
from conceptchess.store.discovery import (
    CONCEPT,
    ERASED,
    RANDOM_CONTROL,
    UNERASED,
    amplification_of,
    concepts_of_run,
    latest_novelty,
    teaching_of,
)
from conceptchess.taps import block, is_block
from conceptchess.teachability import TeachSettings
from conceptchess.teaching import MIN_PROTOTYPES, earlier_checkpoints

DEMO_POSITIONS = [
    ("start position", None, []),
    ("scholar's mate threat (1.e4 e5 2.Bc4 Nc6 3.Qh5 Nf6)", None, ["e2e4", "e7e5", "f1c4", "b8c6", "d1h5", "g8f6"]),
    ("same, from a FEN without history", "r1bqkb1r/pppp1ppp/2n2n2/4p2Q/2B1P3/8/PPPP1PPP/RNB1K1NR w KQkq - 4 4", []),
    ("back-rank mate in one", "6k1/5ppp/8/8/8/8/5PPP/R5K1 w - - 0 1", []),
    ("knight fork of king and rook", "r3k3/8/8/3N4/8/8/8/4K3 w q - 0 1", []),
]
#: The concepts the demo's sweep probes.
PROBED_CONCEPTS = ("in_check", "material_diff", "us_mobility", "them_mobility", "us_has_mate_in_1", "them_threatens_mate",
                   "us_hanging_pieces", "them_hanging_pieces", "us_forks_available", "us_bishop_pair", "us_king_castled", "game_phase")
#: The concepts of :data:`PROBED_CONCEPTS` the demo probes on the full 8×8 activations (the rest on channel
#: means): those whose story is known — what the board shows (check, material, mobility) and the tactics a
#: network must see (mates for either side, hanging pieces) — so that their emergence across the series can
#: be read off the atlas.
FULL_RESOLUTION_CONCEPTS = ("in_check", "material_diff", "us_mobility", "them_threatens_mate", "us_has_mate_in_1", "us_hanging_pieces")
#: Positions the demo probes: full 8×8 probes need a few thousand training positions (material from the
#: 7,168 input features needs ~6,000 positions before its test R² leaves 0); 70 % of them are training games.
DEMO_PROBE_POSITIONS = 6000
#: The concepts whose probes the demo mines puzzles for.
MINED_CONCEPTS = ("them_hanging_pieces", "us_forks_available", "us_has_mate_in_1")
WORK_DIR = BUILD_DIR / "demo-puzzles"


# -- 1. the network on a few positions ------------------------------------------------------------------
def find_demo_network() -> tuple[Path, str]:
    """The network the demo uses and why: engines/ (or $CONCEPTCHESS_NET), else the shared Maia test net."""
    net = default_network()
    if net is not None:
        return net, "the project's default network"
    maia = test_data_dir() / "weights" / "maia-1900.pb.gz"
    if maia.exists():
        return maia, "no network in engines/ yet, so the shared test data's Maia-1900"
    raise ConceptChessError("no network found: engines/ is empty, $CONCEPTCHESS_NET is unset and ../shared/data is absent")


@dataclass(frozen=True)
class PositionEvaluation:
    """The network on one of :data:`DEMO_POSITIONS`."""

    name: str
    top_moves: list[tuple[str, float]]  # (SAN, probability) of the three likeliest moves
    wdl: tuple[float, float, float] | None  # win / draw / loss for the side to move; None for a tanh value head
    value: float


@dataclass(frozen=True)
class DemoEvaluation:
    """What :func:`evaluate_demo_positions` found: the network, where it ran, and each position."""

    path: Path
    sha256: str
    description: str  # the network's architecture, in words
    provider: str  # the ONNX Runtime provider that ran it
    positions: list[PositionEvaluation]


def evaluate_demo_positions(path: str | os.PathLike) -> DemoEvaluation:
    """The network at ``path`` on :data:`DEMO_POSITIONS`."""
    engine = Engine(path)
    specs = [PositionSpec(name, fen, moves) for name, fen, moves in DEMO_POSITIONS]
    hist, boards = histories_of(specs)
    rows = []
    for spec, board, ev in zip(specs, boards, engine.evaluate(hist, boards)):
        tops = [(board.san(board.parse_uci(m)), p) for m, p in ev.top(3)]
        wdl = None if ev.wdl is None else (float(ev.wdl[0]), float(ev.wdl[1]), float(ev.wdl[2]))
        rows.append(PositionEvaluation(str(spec.id), tops, wdl, float(ev.value)))
    return DemoEvaluation(Path(path), engine.network.sha256, engine.network.describe(), engine.provider, rows)


# -- 2. what-when-where: the sweep over the checkpoint series -----------------------------------------------
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


#: How many checkpoints of the default series the demo probes (step 0, the last, evenly spaced in the series between).
DEMO_CHECKPOINTS = 7


def demo_checkpoints(count: int = DEMO_CHECKPOINTS, folder: str | os.PathLike | None = None) -> list[Path] | None:
    """Up to ``count`` checkpoints of the series in ``folder`` (default ``engines/``): the first (step 0), the last, and evenly
    spaced ones between — the series is log-spaced in steps, so this is too. None when ``engines/`` holds
    no series (the sweep then uses its own default).

    Every other checkpoint of a 14-checkpoint series: full 8×8 probes of a 6×64 network cost 9.5 s of a
    core per cell, so all fourteen would take the demo past its ~5 minutes.
    """
    folder = Path(folder) if folder is not None else default_series()
    if not folder.is_dir() or not network_files(folder):
        return None
    nets = series(folder)
    if len(nets) <= count:
        return [n.path for n in nets]
    picks = np.unique(np.round(np.linspace(0, len(nets) - 1, count)).astype(int))
    return [nets[i].path for i in picks]


def plan_demo_sweep(positions: str | os.PathLike, nets: list[str | os.PathLike] | None = None) -> SweepPlan:
    """The demo's sweep: :data:`PROBED_CONCEPTS` × every tap × the checkpoint series ``nets`` (default: the
    one in ``engines/``), controls on.

    :data:`FULL_RESOLUTION_CONCEPTS` are probed on the full 8×8 activations, as McGrath et al. probe
    (a concept on the board is somewhere on it), the others on per-channel means, which keep the demo to a
    few minutes: on 6,000 positions a cell (network × tap) of the full 8×8 activations took 2.8 s of one
    core for a 32-filter network (2,048 features), 9.5 s for a 64-filter one, 12 s for the input planes
    (7,168), where channel means take 0.1 s. Activation folders are removed once probed (the full ones of
    the cc-6x32 series came to 1.5 GB); mining extracts what it reads again.
    """
    return plan_sweep(SweepRequest(dataset=positions, nets=nets, concepts=list(PROBED_CONCEPTS), taps=None, controls=True, seed=0,
                                   threads=1, pool="mean", pools={c: "full" for c in FULL_RESOLUTION_CONCEPTS},
                                   keep_activations=False))


def demo_atlas(plan: SweepPlan, out_dir: str | os.PathLike, *, db_url: str | None = None,
               progress_for: ProgressFor | None = None) -> tuple[int, Path]:
    """Run the sweep of ``plan`` and draw its atlas into ``out_dir``: ``(probe run id, the atlas's index.html)``."""
    db = connect(db_url)
    run_id = run_sweep(plan, progress_for=progress_for, db=db)
    files = plot_run(db, run_id, out_dir)
    return run_id, next((f for f in files if f.name == "index.html"), Path(out_dir))


# -- 3. puzzles for the sweep's probe vectors ---------------------------------------------------------------
@dataclass(frozen=True)
class DemoDirection:
    """A stored probe as one of the demo's mining directions; what it is and how it scored come from the
    probe's provenance (:func:`~conceptchess.store.directions.probe_direction`)."""

    direction: ConceptDirection  # the stored probe in the training games' standardised space: vector · scale, with that mean and scale
    network_path: Path  # the checkpoint whose activations it reads

    def _said(self, key: str):
        return self.direction.provenance[key]

    @property
    def run_id(self) -> int:
        return self._said("run")

    @property
    def run_key(self) -> str:
        return self._said("run_key")

    @property
    def concept(self) -> str:
        return self._said("concept")

    @property
    def network(self) -> str:
        """The checkpoint's label in the run, e.g. ``cc-6x32 step 1000``."""
        return self._said("network")

    @property
    def tap(self) -> str:
        return self.direction.tap

    @property
    def metric(self) -> str:
        return self._said("metric")  # r2 | balanced_accuracy

    @property
    def score(self) -> float:
        return self._said("score")  # on the run's test games

    @property
    def ci_low(self) -> float | None:
        return self._said("ci")[0]

    @property
    def ci_high(self) -> float | None:
        return self._said("ci")[1]

    @property
    def nonzero(self) -> int | None:
        return self._said("nonzero")

    @property
    def features(self) -> int | None:
        return self._said("features")

    @property
    def vector_path(self) -> Path:
        return Path(self._said("vector_path"))

    def describe(self) -> str:
        metric = "test R²" if self.metric == "r2" else "test balanced accuracy"
        ci = "" if self.ci_low is None else f" (95% CI {self.ci_low:.3f}–{self.ci_high:.3f})"
        return (f"{self.concept}: probe of run {self.run_id} at {self.network} {self.tap}, {metric} {self.score:.3f}{ci}, "
                f"{self.nonzero}/{self.features} non-zero")


@dataclass(frozen=True)
class DemoDirections:
    """What :func:`probe_directions` found: one direction per usable concept, the reason for each other
    concept, and the held-out positions to mine (positions of games the probes were not fitted or
    selected on) as a dataset of their own."""

    directions: list[DemoDirection]
    skipped: dict[str, str]  # concept → why it has no direction
    held_out: Path  # a positions dataset: no position of the run's training or validation games
    held_out_positions: int
    held_out_test_positions: int  # how many of them are positions of the run's test games
    test_positions: int  # the run's test positions
    run_positions: int


def _best_final_rows(view: RunView, concepts: tuple[str, ...]) -> tuple[NetRow, dict[str, ResultRow], dict[str, str]]:
    """The final probed checkpoint, and per concept its best block-tap row there (by test score)."""
    if not view.probed:
        raise ConceptChessError(f"probe run {view.id} probed no network")
    final = view.probed[-1]
    best, skipped = {}, {}
    for c in concepts:
        rows = [r for r in view.rows if r.concept == c and r.network_id == final.id and is_block(r.tap)]
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


def _held_out_dataset(plan: SweepPlan, run_key: str, source: Path, work: Path) -> Path:
    """The positions of ``source`` outside the run's training and validation games, as a dataset of their
    own (made once per run and source under ``work``). From the run's own dataset: its test games."""
    out = work / f"held-out-{run_key[:12]}-{dataset_sha256(source)[:12]}"
    if (out / POSITIONS_FILE).exists():
        return out
    with open(positions_path(plan.dataset), encoding="utf-8") as f:
        records = [json.loads(line) for line in f if line.strip()][: plan.positions]
    has_games = any("game" in r or "game_id" in r for r in records)
    seen = {_game_key(records[i], has_games) for i in np.concatenate([plan.split.train, plan.split.val])}
    manifest = {k: v for k, v in read_manifest(source).items() if k in ("kind", "made_by", "origin", "sources", "seed")}
    manifest.update(subset_of=dataset_sha256(source), probe_run_key=run_key,
                    subset="positions outside the training and validation games of a probe run")
    with open(positions_path(source), encoding="utf-8") as f, DatasetWriter(out, manifest, overwrite=True) as w:
        for line in f:
            if line.strip() and _game_key(record := json.loads(line), has_games) not in seen:
                w.write(record)
    return out


def probe_directions(db, run_id: int, concepts: tuple[str, ...] = MINED_CONCEPTS, positions: str | os.PathLike | None = None,
                     work_dir: str | os.PathLike | None = None, progress: Progress | None = None) -> DemoDirections:
    """The stored probe vectors of run ``run_id`` for ``concepts`` as mining directions, and the
    held-out positions to mine: those of ``positions`` (a dataset; default the run's own) outside the
    run's training and validation games — from the run's dataset, its test games.

    Per concept: the probe of the run's final checkpoint at the block tap with the best test score, read
    by :func:`~conceptchess.store.directions.probe_direction`. The vector is stored in raw activation
    space; its standardisation (the training games' per-feature mean and scale, which the sweep does not
    store) is recomputed exactly as the sweep computed it, from the same activations and the same split,
    and the direction is expressed in that space, so that the random control of matched sparsity lives
    in the space the probe was fitted in. The run's dataset must be unchanged (its sha256 is checked).
    ``progress``: the extraction of activations, when the run's are not there any more.
    """
    view = load_run(db, run_id)
    final, best, skipped = _best_final_rows(view, concepts)
    if not best:
        raise ConceptChessError(f"probe run {run_id} has no usable probe of {', '.join(concepts)} at {view.probed[-1].label}: "
                                + "; ".join(f"{c}: {why}" for c, why in skipped.items()))
    with db.session() as s:
        run, ds = queries.run_with_dataset(s, run_id)
        net_path = next(n.path for _, n in queries.run_networks(s, run.id) if n.id == final.id)
        run_key, results_dir, dataset_sha = run.key, run.results_dir, ds.sha256
        stored = [probe_direction(s, run.id, c, r.tap, network=final.sha256) for c, r in best.items()]
    settings = view.settings
    if not net_path or not Path(net_path).is_file():
        raise ConceptChessError(f"probe run {run_id}: its final checkpoint {net_path!r} is not here")
    taps = sorted({r.tap for r in best.values()})
    probe = settings.get("probe", {})
    plan = plan_sweep(SweepRequest(dataset=view.dataset, nets=[net_path], concepts=list(best), taps=taps, controls=False,
                                   seed=settings["seed"], max_positions=settings.get("max_positions"), pool=settings["pool"],
                                   pools={c: view.pool(c) for c in best}, results=results_dir,
                                   settings=ProbeSettings(fractions=tuple(probe.get("fractions", ProbeSettings().fractions)))))
    if plan.dataset_sha != dataset_sha:
        raise ConceptChessError(f"{view.dataset} changed since probe run {run_id} (sha256 {plan.dataset_sha[:12]}…, "
                                f"the run's {dataset_sha[:12]}…)")
    if list(plan.split.sizes()) != list(settings.get("split_sizes", plan.split.sizes())):
        raise ConceptChessError(f"probe run {run_id}: its train / validation / test split could not be reproduced")
    info = net_info(net_path)
    standardisation = {}  # (tap, pooling) → the training games' mean and scale
    for pool in unique(d.pooling for d in stored):
        acts = Activations(plan.dataset, plan.dataset_sha, plan.dataset_size, plan.positions, plan.ids, pool, plan.results, [])
        pool_taps = sorted({d.tap for d in stored if d.pooling == pool})
        acts.ensure(info, pool_taps, progress)
        for tap in pool_taps:
            X, _ = acts.load(info.sha256, tap)
            std = Standardizer.fit(X, plan.split.train, dedupe=False)
            standardisation[(tap, pool)] = (std.mean, std.scale)
    out = []
    for d in stored:
        mean, scale = standardisation[(d.tap, d.pooling)]
        standardised = replace(d, vector=d.vector * scale, mean=mean, scale=scale,
                               provenance={**d.provenance, "standardisation": "the run's training games, recomputed"})
        out.append(DemoDirection(standardised, Path(net_path)))
    held_out = _held_out_dataset(plan, run_key, Path(positions) if positions is not None else plan.dataset, Path(work_dir or WORK_DIR))
    test_ids = {json.dumps(plan.ids[i]) for i in plan.split.test}
    held_ids = [json.dumps(spec.id) for spec in iter_dataset(held_out)]
    return DemoDirections(out, skipped, held_out, len(held_ids), sum(i in test_ids for i in held_ids), len(test_ids), plan.positions)


@dataclass
class DemoPuzzles:
    """What :func:`demo_puzzles` did: the directions mined, each concept's and control's mining result,
    and the PGN written."""

    path: Path
    directions: DemoDirections
    results: list[MineResult] = field(default_factory=list)


def demo_puzzles(run_id: int, out: str | os.PathLike | None = None, *, db_url: str | None = None,
                 concepts: tuple[str, ...] = MINED_CONCEPTS, positions: str | os.PathLike | None = None,
                 directions: DemoDirections | None = None, nodes: int = 100_000,
                 max_puzzles: int = 5, workers: int = 2, seed: int = 0, work_dir: str | os.PathLike | None = None, collection: str = "demo",
                 progress_for: ProgressFor | None = None) -> DemoPuzzles:
    """Mine the held-out positions of probe run ``run_id`` with its probe vectors of ``concepts`` and the
    controls; store the puzzles in ``collection`` and export it (default ``puzzles/demo.pgn``).

    ``positions``: the dataset to mine, less the run's training and validation games (default: the
    run's own, i.e. its test games). ``directions``: what :func:`probe_directions` already read for
    this run, ``concepts`` and ``positions`` (read here when None). ``nodes``: Stockfish nodes per check. ``max_puzzles``: per concept and per
    control. The random control has the sparsity of the first direction; the human control is the
    first concept with a direction. Everything is seeded by ``seed``. ``progress_for``: one stage per
    direction and control (:func:`~conceptchess.puzzles.mine.mine_many`).
    """
    db = connect(db_url)
    work = Path(work_dir or WORK_DIR)
    found = directions or probe_directions(db, run_id, concepts, positions, work)
    if found.directions[0].run_id != run_id:
        raise ConceptChessError(f"the directions given are of probe run {found.directions[0].run_id}, not {run_id}")
    first = found.directions[0]
    scorers: list = [d.direction for d in found.directions]
    controls = [first.direction.random_control(seed), HumanConcept(first.concept)]
    engine = Engine(first.network_path, device="cpu", threads=1)
    results = []
    # One activation folder per pooling the directions read (the human control reads the board: any folder).
    for pool, group in groupby(scorers + controls, key=lambda c: getattr(c, "pooling", None) or first.direction.pooling):
        taps = sorted({d.tap for d in found.directions if d.direction.pooling == pool})
        activations = extract_activations(first.network_path, found.held_out,
                                          work / f"activations-{found.held_out.name}-{pool}-{'_'.join(taps)}", taps, pool=pool,
                                          device="cpu", threads=1)
        results += mine_many(db, collection, list(group), activations, found.held_out, engine=engine, max_puzzles=max_puzzles,
                             settings=VerifySettings(nodes=nodes), workers=workers, weak_network=True, seed=seed,
                             progress_for=progress_for)
    if not any(r.puzzles for r in results):
        raise ConceptChessError(f"the demo found no puzzle in the {found.held_out_positions} held-out positions: "
                                + "; ".join(r.summary() for r in results))
    res = export_collection(db, collection, Path(out) if out else PUZZLES_DIR / "demo.pgn")
    return DemoPuzzles(res.path, found, results)


# -- 4. discovery: what the final checkpoint knows beyond the human concepts ---------------------------------
#: Stage 4's scratch folder (datasets, activation folders, the eraser, the novelty bases), kept so that a second
#: demo reuses what the first made; each name says the inputs or budget it was made with.
DISCOVERY_WORK_DIR = BUILD_DIR / "demo-discovery"
#: The funnel page (index.html, the funnel figure, a figure per concept) and the concept vectors.
DISCOVERY_RESULTS_DIR = RESULTS_DIR / "demo-discovery"
#: The roots are positions where the final checkpoint and the one this many checkpoints before it choose
#: different top moves: step 898 of the default series' 3,500, which plays but disagrees on 48 % of the
#: demo's human positions (Schut et al. contrast AlphaZero with a version of it 75 Elo weaker).
DISAGREE_BACK = 2
#: The human concepts erased before discovery: those the atlas probed.
ERASED_CONCEPTS = PROBED_CONCEPTS


@dataclass(frozen=True)
class DiscoveryBudget:
    """How much stage 4 does. :data:`DISCOVERY_BUDGET` is the demo's, sized for the whole demo to take
    ≤ 10 minutes on two idle cores (measured only on busy ones, below); tests pass a tiny one.

    Measured on two cores shared with other jobs (torch at one thread): a discovery root at 300 playouts
    ≈ 0.6 s; a pool root at 100 playouts, one sub-optimal line per branch ply and 16-playout extensions
    ≈ 0.25 s (≈ 0.8 s with lc0's two lines and 64-playout extensions, which also leave a concept fewer
    prototypes); teaching ≈ 6 s per concept or random vector with enough prototypes, after its students'
    agreements; mining one direction ≈ 20 s; the page ≈ 0.5 s a concept. At the full 8×8 (4,096 features)
    the eraser alone takes ≈ 80 s whatever the number of positions (LEACE's eigendecomposition and the
    report's probes factor 4,096 × 4,096 matrices), so the demo reads channel means (``pooling``). Most
    roots give a candidate (18 of 20 pass the held-out check) and each may cost two teachings, so only the
    first ``teach_limit`` are taught and the funnel counts the others as untaught. Stage 4 took 3 min 18 s
    of a 13 min 23 s demo on two cores shared with other jobs."""

    root_positions: int = 1000  # human positions compared for the roots (48 % disagree)
    roots: int = 20  # disagreement roots a concept is discovered on
    nodes: int = 300  # playouts of each discovery root's search
    prototype_roots: int = 150  # roots of the prototype pool (the discovery roots first among them)
    prototype_nodes: int = 100  # playouts of each pool root's search
    prototype_lines: int = 1  # sub-optimal lines per branch ply in the pool
    prototype_extend: int = 16  # playouts searched where a pool line leaves the tree
    depth: int = 5  # plies of every rollout (Schut's T)
    pooling: str = "mean"  # of the activations stage 4 reads at the last block: channel means, or the full 8×8
    selfplay_games: int = 12  # the teacher's own games: novelty's machine side, teaching's random positions
    selfplay_plies: int = 100
    novelty_positions: int = 2048  # positions of each kind (human, machine) in the novelty bases, at most
    novelty_controls: int = 20  # random directions scored beside each concept
    amplify_positions: int = 32  # unrelated (human) positions each concept is amplified on
    min_prototypes: int = MIN_PROTOTYPES  # a concept with fewer is dropped (Schut's floor)
    teach: TeachSettings = TeachSettings()
    teach_limit: int | None = 8  # candidates taught (the first, by root); the others are counted as untaught
    mined: int = 2  # discovered concepts mined for puzzles
    max_puzzles: int = 3  # puzzles per concept and for the control, at most


DISCOVERY_BUDGET = DiscoveryBudget()


def _short_key(*parts) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:10]


@contextmanager
def _one_torch_thread():
    """torch at one thread inside the block: on two shared cores its default two threads made amplification
    20× slower (2.9 s a concept against 0.13 s) and the eraser's probes 4×."""
    import torch  # lazy: heavy, and only stage 4's erasure, amplification and teaching need it

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def discovery_skipped(network: str | os.PathLike, human: str | os.PathLike) -> str | None:
    """Why stage 4 cannot run on ``network`` and the positions ``human`` (None when it can): it needs a checkpoint
    series (the roots' earlier checkpoint, the students) and positions of human games (erasure, novelty)."""
    try:
        discovery_checkpoints(network)
    except ConceptChessError as e:
        return f"discovery needs the last checkpoint of a series ({e})"
    if dataset_origin(read_manifest(human)) != HUMAN_GAMES:
        return f"{human} holds no positions of human games (the shared Lichess games are absent)"
    return None


def discovery_checkpoints(network: str | os.PathLike) -> tuple[Path, Path]:
    """The teacher (``network``, the series' final checkpoint) and the checkpoint :data:`DISAGREE_BACK` before it."""
    earlier = earlier_checkpoints(network)  # latest first, step 0 left out
    if len(earlier) < DISAGREE_BACK:
        raise ConceptChessError(f"{network}: discovery needs a checkpoint series with {DISAGREE_BACK} earlier checkpoints "
                                f"(for the roots and the students); {Path(network).parent} has {len(earlier)}")
    return Path(network), earlier[DISAGREE_BACK - 1]


@dataclass(frozen=True)
class RolloutCounts:
    """A rollouts dataset and what its manifest counts."""

    path: Path
    roots: int  # roots with lines (a finished game has none)
    nodes: int  # playouts of each root's search
    optimal_lines: int
    suboptimal_lines: int
    positions: int

    @classmethod
    def of(cls, path: Path) -> RolloutCounts:
        m = read_manifest(path)
        c = m["counts"]
        return cls(path, c["roots"] - c["roots_without_moves"], m["settings"]["nodes"], c["optimal_lines"], c["suboptimal_lines"],
                   c["records"])


@dataclass(frozen=True)
class DiscoveryData:
    """Every dataset and activation folder of stage 4 (:func:`discovery_data`), with their counts."""

    network: Path  # the teacher: the series' final checkpoint
    earlier: Path  # the checkpoint the roots disagree with
    tap: str  # the network's last block: discovery, erasure, novelty and mining read it
    pooling: str  # full (8×8) or mean (per channel)
    human: Path  # human positions: the eraser's, the novelty bases' human side, the positions mined
    human_activations: Path
    compared: int  # human positions both networks were compared on (those with a legal move)
    roots: Path  # the positions where they choose different top moves
    disagree: int
    rollouts: RolloutCounts  # the discovery roots' rollouts
    rollout_activations: Path
    pool: RolloutCounts  # the prototype pool: more roots, smaller searches
    pool_activations: Path
    selfplay: Path  # the teacher's own games
    selfplay_games: int
    selfplay_positions: int


def discovery_data(network: str | os.PathLike, human: str | os.PathLike, roots_from: str | os.PathLike | None = None,
                   budget: DiscoveryBudget = DISCOVERY_BUDGET, work: str | os.PathLike = DISCOVERY_WORK_DIR, *,
                   progress_for: ProgressFor | None = None) -> DiscoveryData:
    """Make (or find made under ``work``) stage 4's inputs: the roots, the positions of ``roots_from`` (human
    games; default ``human``) where ``network`` and the checkpoint :data:`DISAGREE_BACK` before it choose
    different top moves; the rollouts of the first ``budget.roots`` of them and a prototype pool of the first
    ``budget.prototype_roots``; the network's self-play games; and the activation folders of the network's
    last block over ``human`` and both rollouts. Every dataset is written atomically and rollouts and
    extraction resume, so a killed demo goes on where it stopped. ``progress_for``: a stage per dataset and
    activation folder made."""
    network, earlier = discovery_checkpoints(network)
    human, work = Path(human), Path(work)
    roots_from = Path(roots_from) if roots_from is not None else human
    for ds in {human, roots_from}:
        if dataset_origin(read_manifest(ds)) != HUMAN_GAMES:
            raise ConceptChessError(f"{ds}: discovery needs positions of human games (the roots, the eraser and the novelty bases), "
                                    "and these are not")
    tap = block(net_info(network).blocks - 1)
    work.mkdir(parents=True, exist_ok=True)

    def stage(name: str) -> Progress | None:
        return progress_for(name) if progress_for is not None else None

    roots = work / f"roots-{roots_from.name}-vs-{stem(earlier)}"
    if not roots.exists():
        disagreement_dataset(network, earlier, roots_from, roots, threads=1, device="cpu", progress=stage("disagreement"))
    rollouts = work / f"rollouts-{roots.name}-{budget.roots}x{budget.nodes}"
    if not rollouts.exists():
        rollouts_dataset(network, roots, rollouts, RolloutSettings(nodes=budget.nodes, depth=budget.depth), limit=budget.roots, threads=1,
                         device="cpu", progress=stage("rollouts (discovery roots)"))
    pool = work / (f"pool-{roots.name}-{budget.prototype_roots}x{budget.prototype_nodes}-"
                   f"lines{budget.prototype_lines}-extend{budget.prototype_extend}")
    if not pool.exists():
        settings = RolloutSettings(nodes=budget.prototype_nodes, depth=budget.depth, lines_per_ply=budget.prototype_lines,
                                   extend_nodes=budget.prototype_extend)
        rollouts_dataset(network, roots, pool, settings, limit=budget.prototype_roots, threads=1, device="cpu",
                         progress=stage("rollouts (prototype pool)"))
    selfplay = work / f"selfplay-{budget.selfplay_games}x{budget.selfplay_plies}"
    if not selfplay.exists():
        selfplay_dataset(network, selfplay, games=budget.selfplay_games, max_plies=budget.selfplay_plies, seed=0, threads=1, device="cpu",
                         progress=stage("self-play"))
    acts = {}
    for ds in (human, rollouts, pool):
        acts[ds] = work / f"activations-{ds.name}-{tap}-{budget.pooling}"
        extract_activations(network, ds, acts[ds], [tap], pool=budget.pooling, device="cpu", threads=1,
                            progress=stage(f"activations ({ds.name})"))
    r, s = read_manifest(roots)["counts"], read_manifest(selfplay)["counts"]
    return DiscoveryData(network, earlier, tap, budget.pooling, human, acts[human], r["positions"] - r["without_legal_moves"], roots, r["disagree"],
                         RolloutCounts.of(rollouts), acts[rollouts], RolloutCounts.of(pool), acts[pool], selfplay, s["games"],
                         s["positions_written"])


@dataclass(frozen=True)
class DemoErasure:
    """The LEACE eraser of :data:`ERASED_CONCEPTS` (:func:`demo_eraser`) and its held-out checks."""

    path: Path
    rank: int
    concepts: tuple[str, ...]
    checks_passed: int
    checks_failed: tuple[str, ...]  # "name: detail" of each failed check
    report: str  # the held-out report, as `discover erase` prints it


def demo_eraser(db, data: DiscoveryData, concepts: tuple[str, ...] = ERASED_CONCEPTS, work: str | os.PathLike = DISCOVERY_WORK_DIR, *,
                progress_for: ProgressFor | None = None) -> DemoErasure:
    """Fit (or find fitted under ``work``) a LEACE eraser of ``concepts`` at ``data.tap`` on the human positions,
    with its held-out report (:func:`~conceptchess.erasure.fit_eraser_from_files`, seed 0: probes before and
    after erasure, on the eraser's games and on fresh ones, beside a random subspace of the same rank), and
    record both in ``db``. The top-move check (do the erased activations still tell the network's move?) is left
    out for time: it runs the network over every human position, ≈ 15 s against ≈ 3 s for the rest at channel
    means (measured: it passes, erased accuracy 0.15 against 0.06 with shuffled labels)."""
    key = _short_key(dataset_sha256(data.human), net_info(data.network).sha256, data.tap, data.pooling, sorted(concepts))
    path = Path(work) / f"eraser-{data.tap}-{data.pooling}-{key}.npz"
    about = path.with_suffix(".json")
    if not (path.exists() and about.exists()):
        with _one_torch_thread():
            fitted = fit_eraser_from_files(data.human_activations, data.tap, dataset=data.human, concepts=list(concepts),
                                           network=data.network, top_move_check=False, seed=0, device="cpu", threads=1,
                                           progress_for=progress_for)
        report = fitted.report
        fitted.eraser.save(path)
        atomic_write_text(about, json.dumps({"rank": fitted.eraser.rank_, "concepts": list(concepts), "report": str(report),
                                             "passed": sum(c.passed is True for c in report.checks),
                                             "failed": [f"{c.name}: {c.detail}" for c in report.failures],
                                             "checks": report.to_dict()}, indent=1) + "\n")
    about_ = json.loads(about.read_text())
    with db.begin() as s:  # also when another database made the file: each records it once, with its report
        record_eraser(s, HumanConceptEraser.load(path), path, data.network, data.human, about_["checks"])
    return DemoErasure(path, about_["rank"], tuple(about_["concepts"]), about_["passed"], tuple(about_["failed"]), about_["report"])


@dataclass(frozen=True)
class DemoDiscovery:
    """The discovery run (:func:`demo_discovery`): what came through the fit and the held-out check, on erased
    activations and on unerased ones (the control)."""

    run_id: int
    erased: Funnel
    unerased: Funnel


def demo_discovery(db, data: DiscoveryData, eraser: DemoErasure, results_dir: str | os.PathLike = DISCOVERY_RESULTS_DIR, *,
                   progress: Progress | None = None) -> DemoDiscovery:
    """A dynamic concept per discovery root on the erased activations, the unerased fit beside it
    (:func:`~conceptchess.discoveries.run_discovery`, default settings; vectors under ``results_dir``/vectors).
    A second demo finds the run by its key and adds nothing."""
    run_id = run_discovery(db, data.network, data.rollouts.path, data.rollout_activations, data.tap, eraser=eraser.path,
                           results_dir=Path(results_dir) / "vectors", progress=progress)
    return DemoDiscovery(run_id, funnel(db, run_id, ERASED), funnel(db, run_id, UNERASED))


@dataclass(frozen=True)
class DemoFilters:
    """Schut's filters on the discovery run (:func:`demo_filters`)."""

    funnel: FunnelCounts  # candidates taught → enough prototypes → a student → teachable → novel → amplified above control (erased), stored
    novelty_scored: int  # concepts with a novelty score: every fitted one, both variants
    novelty_positions: int  # of each kind in the bases
    human_rank: int  # numerical ranks of the bases
    machine_rank: int
    amplified: int  # concepts amplified: those past the held-out check, both variants
    prototypes: tuple[int, ...]  # prototypes in the pool of each candidate taught, in id order
    control_prototypes: tuple[int, ...]  # … of each one's random vector
    students: tuple[tuple[str, int], ...]  # the students chosen, with how many concepts and controls each taught


def demo_filters(db, run_id: int, data: DiscoveryData, budget: DiscoveryBudget = DISCOVERY_BUDGET,
                 work: str | os.PathLike = DISCOVERY_WORK_DIR, *, progress_for: ProgressFor | None = None) -> DemoFilters:
    """Novelty (the human positions against the teacher's own games), amplification beside a random direction,
    then prototypes in the pool, the student and teaching with both controls
    (:func:`~conceptchess.discovery_filters.teach_concepts`), and the funnel
    (:func:`~conceptchess.discovery_filters.filter_run`, stored). A second demo skips what the first stored:
    novelty and amplification per concept, teaching by its key."""

    def stage(name: str) -> Progress | None:
        return progress_for(name) if progress_for is not None else None

    key = _short_key(net_info(data.network).sha256, dataset_sha256(data.human), dataset_sha256(data.selfplay), data.tap, data.pooling,
                     budget.novelty_positions)
    bases_path = Path(work) / f"novelty-bases-{data.tap}-{data.pooling}-{key}.npz"
    if bases_path.exists():
        bases = NoveltyBases.load(bases_path)
    else:
        bases = build_novelty_bases(data.network, data.human, data.selfplay, data.tap, pooling=data.pooling, max_positions=budget.novelty_positions,
                                    seed=0, threads=1, device="cpu", progress=stage("novelty bases"))
        bases.save(bases_path)
    with db.session() as s:
        fitted = [c for c in concepts_of_run(s, run_id) if c.vector_path]
        unscored = [c.id for c in fitted if latest_novelty(s, c.id) is None]
        passing = [c for c in fitted if passes_heldout(c)]
        unamplified = [c.id for c in passing if not amplification_of(s, c.id)]
    with _one_torch_thread():
        if unscored:
            score_novelty(db, run_id, bases, data.human, data.selfplay, controls=budget.novelty_controls, seed=0, progress=stage("novelty"))
        if unamplified:
            amplify_concepts(db, run_id, data.network, data.human, unrelated_count=budget.amplify_positions, seed=0,
                             progress=stage("amplifying"))
        teaching_key = teach_concepts(db, run_id, random_positions=data.selfplay, prototype_rollouts=data.pool.path,
                                      prototype_activations=data.pool_activations, settings=budget.teach,
                                      min_prototypes=budget.min_prototypes, limit=budget.teach_limit, threads=1, device="cpu",
                                      progress_for=progress_for)
    counts = filter_run(db, run_id, teaching_key=teaching_key)
    with db.session() as s:
        candidates = [c.id for c in concepts_of_run(s, run_id) if c.variant == ERASED and c.vector_path and passes_heldout(c)]
        rows = {(cid, role): teaching_of(s, cid, role, teaching_key) for cid in candidates for role in (CONCEPT, RANDOM_CONTROL)}
        rows = {(cid, role): r for (cid, role), r in rows.items() if rows[(cid, CONCEPT)] is not None}  # the taught candidates
        students = Counter(r.student for r in rows.values() if r is not None and r.student)
    return DemoFilters(counts, len(fitted), bases.human_count, bases.human_rank, bases.machine_rank, len(passing),
                       tuple(r.prototypes for (_, role), r in rows.items() if role == CONCEPT),
                       tuple(r.prototypes if r is not None else 0 for (_, role), r in rows.items() if role == RANDOM_CONTROL),
                       tuple(sorted(students.items(), key=lambda kv: (-kv[1], kv[0]))))


def choose_discovered(members: list[tuple[str, list[int]]], count: int) -> tuple[list[int], str, bool]:
    """The concepts to mine, from a funnel's members (:attr:`~conceptchess.discovery_filters.FunnelCounts.members`): the survivors of the whole funnel (``count`` at most),
    else the ``count`` best-ranked of the last stage any concept passed, said so; ``(ids, selection, survivors)``.

    >>> choose_discovered([("candidates", [4, 2, 9]), ("enough prototypes", [2]), ("teachable", [])], 2)
    ([2], 'no concept passed "teachable": the best-ranked of the 1 that passed "enough prototypes"', False)
    >>> choose_discovered([("candidates", [4, 2]), ("teachable", [2])], 2)
    ([2], 'the survivors of every filter (1)', True)
    """
    reached = [(k, name, ids) for k, (name, ids) in enumerate(members) if ids]
    if not reached:
        return [], f'no concept passed "{members[0][0]}" (the held-out check): nothing to mine', False
    k, name, ids = reached[-1]
    if k == len(members) - 1:
        return ids[:count], f"the survivors of every filter ({len(ids)})", True
    return ids[:count], f'no concept passed "{members[k + 1][0]}": the best-ranked of the {len(ids)} that passed "{name}"', False


@dataclass
class DiscoveredPuzzles:
    """What :func:`discovered_puzzles` mined: which concepts and why, each one's and the control's result."""

    concept_ids: list[int]
    selection: str  # which concepts were mined, in words: the survivors of every filter, or the best-ranked of a stage
    survivors: bool  # whether they passed every filter
    path: Path | None = None  # the collection's PGN (None when nothing was mined)
    results: list[MineResult] = field(default_factory=list)

    @property
    def puzzles(self) -> int:
        """Puzzles of the discovered concepts (not of the control)."""
        return sum(len(r.puzzles) for r in self.results if r.kind == "concept")


def discovered_puzzles(db, run_id: int, filters: DemoFilters, data: DiscoveryData, positions: str | os.PathLike | None = None, *,
                       budget: DiscoveryBudget = DISCOVERY_BUDGET, nodes: int = 100_000, workers: int = 2, seed: int = 0,
                       work: str | os.PathLike = DISCOVERY_WORK_DIR, collection: str = "demo", out: str | os.PathLike | None = None,
                       progress_for: ProgressFor | None = None) -> DiscoveredPuzzles:
    """Mine ``positions`` (default the human positions, whose activations are there already) for the concepts
    :func:`choose_discovered` picks and for the first one's random control of the same norm
    (:func:`~conceptchess.puzzles.discovered.random_control`); every puzzle carries its concept's discovery
    provenance. The puzzles join ``collection``, which is exported (default ``puzzles/<collection>.pgn``).
    ``nodes``: Stockfish nodes per check."""
    ids, selection, survivors = choose_discovered([(n, list(ids)) for n, ids in filters.funnel.members], budget.mined)
    found = DiscoveredPuzzles(ids, selection, survivors)
    if not ids:
        return found
    positions = Path(positions) if positions is not None else data.human
    folder = data.human_activations if positions == data.human else Path(work) / f"activations-{positions.name}-{data.tap}-{data.pooling}"
    acts = extract_activations(data.network, positions, folder, [data.tap], pool=data.pooling, device="cpu", threads=1,
                               progress=progress_for("activations (positions to mine)") if progress_for is not None else None)
    with db.session() as s:
        directions = [discovered_direction(s, cid, acts) for cid in ids]
    concepts = [*directions, random_control(directions[0], seed)]
    found.results = mine_many(db, collection, concepts, acts, positions, engine=Engine(data.network, device="cpu", threads=1),
                              max_puzzles=budget.max_puzzles, settings=VerifySettings(nodes=nodes), workers=workers, weak_network=True,
                              seed=seed, progress_for=progress_for)
    with db.session() as s:  # mine_many made the collection; the probes' puzzles may be in it already
        stored = bool(collection_puzzles(s, collection))
    if stored:
        found.path = export_collection(db, collection, Path(out) if out else PUZZLES_DIR / f"{collection}.pgn").path
    return found


def discovery_page(db, run_id: int, out_dir: str | os.PathLike = DISCOVERY_RESULTS_DIR, *, progress: Progress | None = None) -> Path:
    """The run's funnel page: ``index.html`` under ``out_dir`` with the stored funnel's figure atop and a figure
    per concept (:func:`~conceptchess.discovery_report.plot_discoveries`)."""
    files = plot_discoveries(db, out_dir, run_id, progress=progress)
    return next(f for f in files if f.name == "index.html")
