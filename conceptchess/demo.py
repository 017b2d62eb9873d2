"""The whole story on the project's own networks: what ``make demo`` (``conceptchess demo``) runs.

Three stages, each a library call the command line only prints:

1. :func:`evaluate_demo_positions` — the demo's network (:func:`find_demo_network`) on a few
   well-known positions (:data:`DEMO_POSITIONS`).
2. :func:`plan_demo_sweep` and :func:`demo_atlas` — a probe sweep of :data:`PROBED_CONCEPTS` over the
   checkpoint series in ``engines/`` (what-when-where, with controls) and its atlas: the concepts of
   :data:`FULL_RESOLUTION_CONCEPTS` on the full 8×8 activations, the others on per-channel means, and one
   "when" figure per concept (best block score against training step).
3. :func:`probe_directions` and :func:`demo_puzzles` — puzzles mined for :data:`MINED_CONCEPTS` with
   the sweep's own stored probe vectors, stored in the collection ``demo`` and written to
   ``puzzles/demo.pgn``.

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
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field, replace
from itertools import groupby
from pathlib import Path

import numpy as np

from conceptchess.activations import extract_activations
from conceptchess.checkpoints import network_files
from conceptchess.datasets import POSITIONS_FILE, DatasetWriter, dataset_sha256, iter_dataset, positions_path, read_manifest
from conceptchess.directions import ConceptDirection
from conceptchess.engine import Engine
from conceptchess.errors import ConceptChessError
from conceptchess.export import export_collection
from conceptchess.games import Sampling, pgn_dataset
from conceptchess.names import unique
from conceptchess.networks import default_network
from conceptchess.paths import BUILD_DIR, PUZZLES_DIR, test_data_dir
from conceptchess.plots import plot_run
from conceptchess.positions import PositionSpec, histories_of
from conceptchess.probing import ProbeSettings, Standardizer, SweepPlan, SweepRequest, plan_sweep, run_sweep
from conceptchess.probing.results import NetRow, ResultRow, RunView, load_run
from conceptchess.probing.sources import Activations, default_series, net_info, series
from conceptchess.progress import Progress, ProgressFor
from conceptchess.puzzles.mine import HumanConcept, MineResult, mine_many
from conceptchess.puzzles.verify import VerifySettings
from conceptchess.selfplay import selfplay_dataset
from conceptchess.store import connect
from conceptchess.store import probes as queries
from conceptchess.store.directions import probe_direction
from conceptchess.taps import is_block

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
