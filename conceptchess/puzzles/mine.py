"""Mine puzzles from a concept: rank positions by concept score, keep the top 2.5% as prototypes,
and turn the prototypes whose network move is the only good move into puzzles.

A concept is a :class:`~conceptchess.directions.ConceptDirection` over one tap's flattened activations
(a probe, a discovered direction, or a random control of matched sparsity), or a human concept of the
library (:class:`HumanConcept`, scored from the board: the control of known human knowledge). A stored
discovered concept (:func:`~conceptchess.puzzles.discovered.discovered_direction`) and its random control
carry their discovery provenance into every puzzle (``PuzzleRecord.discovery``).

For each prototype (best score first) the network picks its move. Duplicate positions, finished
games and trivial candidates (:class:`~conceptchess.puzzles.filters.MineFilters`: plain recaptures,
check evasions with few legal moves, moves the weak network already plays) are dropped; Stockfish
(``workers`` single-threaded processes) checks that the move is the only good one, keeps the solver
winning, and extends the line (:func:`~conceptchess.puzzles.verify.find_line`); positions already
decided and puzzles too easy by the difficulty estimate (:mod:`~conceptchess.puzzles.difficulty`) are
dropped after it. Accepted lines are tagged (:mod:`~conceptchess.puzzles.themes`) and become
:class:`~conceptchess.puzzles.records.PuzzleRecord` values. Controls go through the same steps; every
prototype that is no puzzle is counted under one of the
:data:`~conceptchess.puzzles.filters.REJECTION_REASONS`, and
:func:`~conceptchess.puzzles.acceptance.acceptance_report` sets concepts and controls side by side.

>>> d = ConceptDirection.load("probes/fork_block3.npy", tap="block3", name="fork")  # doctest: +SKIP
>>> result = mine(d, ActivationFiles("acts/"), "positions/", max_puzzles=20)        # doctest: +SKIP
>>> print(result.summary())                                                          # doctest: +SKIP
fork (concept): 4000 positions → 100 prototypes → 6 puzzles, 6 of 100 examined (6.0%); rejected: recapture 31, …
>>> with db.begin() as s: add_to_collection(s, "fork", result.puzzles)             # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
import math
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import chess
import numpy as np

from conceptchess.checkpoints import checkpoint_label, weakest_checkpoint
from conceptchess.concepts import CONCEPTS, label
from conceptchess.datasets import HUMAN_GAMES, MACHINE_GAMES, UNKNOWN_ORIGIN, dataset_origin, dataset_sha256, iter_dataset, read_manifest
from conceptchess.directions import ConceptDirection
from conceptchess.engine import Engine
from conceptchess.errors import ConceptChessError
from conceptchess.networks import open_network
from conceptchess.positions import boards_of, histories_of
from conceptchess.progress import Progress, ProgressFor
from conceptchess.puzzles.acceptance import MineResult
from conceptchess.puzzles.difficulty import estimate, policy_rank
from conceptchess.puzzles.discovered import discovery_of
from conceptchess.puzzles.engine_pool import StockfishPool
from conceptchess.puzzles.filters import (
    ALREADY_DECIDED,
    DUPLICATE_POSITION,
    DUPLICATE_PUZZLE,
    TOO_EASY,
    MineFilters,
    Rejection,
    board_filter,
    recaptures,
)
from conceptchess.puzzles.records import GENERATOR_VERSION, PuzzleRecord, add_to_collection, collection_puzzles, make_puzzle_id, side_name
from conceptchess.puzzles.themes import tag
from conceptchess.puzzles.verify import GAME_OVER, Decided, Verdict, VerifySettings, already_decided, find_line
from conceptchess.store.base import utcnow

TOP = 0.025  # Schut et al.: the top 2.5% of positions by concept score are the prototypes
Direction = ConceptDirection  # the name this module gave it before conceptchess.directions (kept for older callers)
# the kind of the puzzles a concept's kind gives (a human concept is a control-human)
PUZZLE_KINDS = {"probe": "concept", "discovered": "concept", "random-control": "control-random"}
# a puzzle's source for the origin its dataset records (other origins are stored as they are): "game" unless self-play,
# as before origins were recorded
PUZZLE_SOURCES = {HUMAN_GAMES: "game", MACHINE_GAMES: "self-play", UNKNOWN_ORIGIN: "game"}


@dataclass
class HumanConcept:
    """A human concept of the library, scored from the board (a control: known human knowledge)."""

    name: str
    kind: str = "control-human"
    tap: str | None = None
    seed: int | None = None

    def __post_init__(self):
        if self.name not in CONCEPTS:
            raise ConceptChessError(f"unknown human concept {self.name!r}")

    @property
    def sha256(self) -> str:
        return hashlib.sha256(f"human:{self.name}".encode()).hexdigest()

    def scores(self, activations, dataset) -> np.ndarray:
        boards = boards_of(list(iter_dataset(dataset)), f"{dataset}: ")
        if len(boards) != len(activations):
            raise ConceptChessError(f"{dataset} has {len(boards)} positions, the activation folder {len(activations)}")
        return np.asarray(label(boards, [self.name])[self.name], dtype=np.float64)


def puzzle_kind(concept) -> str:
    """The kind of the puzzles mined for ``concept``: ``concept`` for a probe or a discovered direction,
    ``control-random`` for a random control, ``control-human`` for a :class:`HumanConcept`."""
    return PUZZLE_KINDS.get(concept.kind, concept.kind)


def rank_positions(scores: np.ndarray, seed: int = 0) -> np.ndarray:
    """Indices by score, highest first; ties broken by a seeded random order."""
    tiebreak = np.random.default_rng(seed).permutation(len(scores))
    return np.lexsort((tiebreak, -np.nan_to_num(scores, nan=-np.inf)))


def prototype_count(n: int, top: float = TOP) -> int:
    if not 0 < top <= 1:
        raise ConceptChessError(f"top fraction must be in (0, 1], not {top}")
    return max(1, math.ceil(top * n)) if n else 0


def _network_for(activations, network) -> tuple[object, str]:
    """An open network for an activation folder: the given file, else the one the folder names."""
    path = network or activations.manifest.get("net_path")
    if not path or not Path(path).is_file():
        raise ConceptChessError(f"{activations.path}: its network {path!r} is not here; pass the network file")
    net = open_network(path)
    want = activations.manifest.get("net_sha256")
    if want and net.sha256 != want:
        raise ConceptChessError(f"{path}: sha256 {net.sha256[:12]}… is not the network of {activations.path} ({want[:12]}…)")
    return net, str(path)


def _source(manifest: dict, meta: dict) -> tuple[str, str | None]:
    """A puzzle's source (from its dataset's origin) and source game (from its position's metadata)."""
    origin = dataset_origin(manifest)
    kind = PUZZLE_SOURCES.get(origin, origin)
    game = meta.get("site") or (f"{meta.get('source')}#game{meta.get('game')}" if meta.get("game") is not None else None)
    return kind, game


def mine(concept: ConceptDirection | HumanConcept, activations, dataset: str | os.PathLike, *, network: str | os.PathLike | None = None,
         top: float = TOP, max_puzzles: int | None = None, settings: VerifySettings = VerifySettings(), workers: int = 2,
         weak_network: str | os.PathLike | None | bool = True, seed: int = 0, pool: StockfishPool | None = None,
         engine=None, filters: MineFilters = MineFilters(),
         progress: Progress | None = None) -> MineResult:
    """Mine puzzles for one concept over a positions dataset and its activation folder.

    ``activations``: the :class:`~conceptchess.activations.ActivationFiles` of ``dataset``. ``network``: the
    network file (default: the activation folder's). ``weak_network``: a checkpoint file for the
    difficulty estimate and the weak-network filter, ``True`` for the series' weakest
    (:func:`weakest_checkpoint`), ``False``/None for none. ``max_puzzles``: stop once that many are
    accepted. ``pool``/``engine``: an open :class:`StockfishPool` / :class:`~conceptchess.engine.Engine`
    to reuse. ``filters``: the trivial-puzzle filters (:class:`MineFilters`). ``progress(done, total)`` counts
    candidates checked by Stockfish.
    """
    ds_sha = dataset_sha256(dataset)
    if activations.manifest.get("dataset_sha256") and activations.manifest["dataset_sha256"] != ds_sha:
        raise ConceptChessError(f"{activations.path} was extracted from another dataset than {dataset}")
    if engine is None:
        net, net_path = _network_for(activations, network)
        engine = Engine(net, device="cpu", threads=1)
    else:
        net, net_path = engine.network, str(engine.network.path)
    scores = concept.scores(activations, dataset)
    ids = activations.ids
    if len(scores) != len(ids):
        raise ConceptChessError(f"{concept.name}: {len(scores)} scores for {len(ids)} positions")
    order = rank_positions(scores, seed)
    n_proto = prototype_count(len(scores), top)
    protos = order[:n_proto]
    result = MineResult(concept.name, puzzle_kind(concept), positions=len(scores), prototypes=n_proto,
                        settings={**settings.as_dict(), "top": top, "seed": seed, "filters": filters.as_dict()})
    rank_of = {int(i): r + 1 for r, i in enumerate(order[:n_proto])}
    wanted = {ids[i]: int(i) for i in protos}
    specs = {}
    for spec in iter_dataset(dataset):
        if spec.id in wanted:
            specs[wanted[spec.id]] = spec
    manifest = read_manifest(dataset)

    def reject(i: int, spec, category: str, reason: str) -> None:
        result.rejected.append(Rejection(spec.id, rank_of[i], reason, category))

    candidates, seen = [], {}
    for i in protos:
        spec = specs.get(int(i))
        if spec is None:
            raise ConceptChessError(f"position {ids[i]!r} of {activations.path} is not in {dataset}")
        board = spec.board(f"{dataset}: id={spec.id}")
        key = (board.board_fen(), board.turn, board.castling_rights, board.ep_square)
        if key in seen:
            reject(int(i), spec, DUPLICATE_POSITION, f"duplicate position: the same as prototype {seen[key]!r}")
            continue
        seen[key] = spec.id
        if board.is_game_over(claim_draw=False):
            reject(int(i), spec, GAME_OVER, f"game over ({board.outcome().termination.name.lower().replace('_', ' ')})")
            continue
        candidates.append((int(i), spec, board))
    if not candidates:
        return result
    hist, _ = histories_of([c[1] for c in candidates])
    evals = engine.evaluate(hist, [c[2] for c in candidates])
    weak = _weak_evals(weak_network, net_path, candidates, evals)
    checks = []
    for k, ((i, spec, board), ev) in enumerate(zip(candidates, evals, strict=True)):
        move = ev.best_move()
        why = board_filter(board, move, weak[k] if weak else None, weak.label if weak else None, filters)
        if why:
            reject(i, spec, *why)
        else:
            checks.append(((i, spec, board), ev, weak[k] if weak else None))
    result.candidates = len(checks)
    if not checks:
        return result
    own_pool = pool is None
    pool = pool or StockfishPool(workers)
    engine_name, engine_settings = pool.name, pool.settings()
    accepted = 0
    try:
        result.settings.update(engine_settings)
        if progress:
            progress(0, len(checks))

        def judge_line(sf, item):
            (_, _, board), ev, _ = item
            verdict = find_line(sf, board, settings, ev.best_move())
            decided = already_decided(sf, board, verdict, settings, filters.decided_cp) if verdict.accepted and filters.decided_cp else None
            return verdict, decided

        run = _Run(concept, filters, manifest, ds_sha, net.sha256, net_path, engine_name, engine_settings,
                   weak.label if weak else None)
        jobs = pool.map(judge_line, checks)
        done = 0
        for ((i, spec, board), ev, wp), (verdict, decided) in zip(checks, jobs):
            done += 1
            puzzle = _puzzle(run, spec, board, ev, wp, verdict, decided, rank_of[i], float(scores[i]),
                             lambda category, reason: reject(i, spec, category, reason))  # noqa: B023 (called at once)
            if puzzle is not None:
                result.puzzles.append(puzzle)
                accepted += 1
            if progress:
                progress(done, len(checks))
            if max_puzzles is not None and accepted >= max_puzzles:
                break
        result.unchecked = len(checks) - done
        jobs.close()
    finally:
        if own_pool:
            pool.close()
    return result


@dataclass(frozen=True)
class _Run:
    """What every puzzle of one mining run shares."""

    concept: object
    filters: MineFilters
    manifest: dict
    dataset_sha256: str
    network_sha256: str
    network_path: str
    engine_name: str
    engine_settings: dict
    weak_label: str | None


def _puzzle(run: _Run, spec, board: chess.Board, ev, wp, verdict: Verdict, decided: Decided | None, rank: int, score: float,
            reject: Callable[[str, str], None]) -> PuzzleRecord | None:
    """The puzzle of an examined candidate, or None after ``reject(category, reason)``."""
    if not verdict.accepted:
        reject(verdict.category, verdict.reason)
        return None
    if decided is not None and decided.decided:
        reject(ALREADY_DECIDED, f"already decided: {decided.reason}")
        return None
    first = chess.Move.from_uci(verdict.solution[0])
    diff, detail = estimate(weak_prob=wp[0] if wp else None, weak_rank=wp[1] if wp else None, legal=wp[2] if wp else None,
                            depth_found=verdict.first.depth_found if verdict.first.best == first else None,
                            solver_moves=verdict.solver_moves)
    if run.filters.min_difficulty and diff < run.filters.min_difficulty:
        reject(TOO_EASY, f"too easy: difficulty {diff:.3f} < {run.filters.min_difficulty}")
        return None
    if wp:
        detail["weak_network"] = run.weak_label
    concept = run.concept
    src, game = _source(run.manifest, spec.meta)
    values = {"legal_moves": board.legal_moves.count(), "in_check": board.is_check(), "recapture": recaptures(board, first),
              "weak_network": run.weak_label, "weak_prob": wp[0] if wp else None, "difficulty": round(diff, 4),
              "decided": decided.as_dict() if decided is not None else None}
    return PuzzleRecord(
        id=make_puzzle_id(board.fen(), verdict.solution[0], concept.sha256, run.network_sha256),
        fen=board.fen(), start_fen=spec.start().fen(), leading_moves=list(spec.moves), solution=verdict.solution,
        side_to_solve=side_name(board.turn), kind=puzzle_kind(concept), source=src, source_game=game,
        source_position=str(spec.id), dataset_sha256=run.dataset_sha256, network_sha256=run.network_sha256,
        checkpoint=checkpoint_label(run.network_path), tap=concept.tap, concept=concept.name, direction_sha256=concept.sha256,
        concept_score=score, concept_rank=rank, network_move=first.uci(),
        network_policy=float(ev.policy[ev.moves.index(first)]), seed=concept.seed, discovery=discovery_of(concept),
        verify_engine=run.engine_name, verified_at=utcnow(),
        **{**verdict.columns(), "verify_settings": {**verdict.settings, **run.engine_settings}},
        themes=tag(board, verdict.solution, verdict.final_score), difficulty=diff, difficulty_detail=detail,
        filters={"settings": run.filters.as_dict(), "values": values}, generator_version=GENERATOR_VERSION,
    )


class _WeakEvals(list):
    label: str = ""


def _weak_evals(weak_network, net_path: str, candidates, evals) -> _WeakEvals | None:
    """(probability, rank, legal moves) of each candidate's network move under the weak checkpoint."""
    if not candidates or weak_network is False or weak_network is None:
        return None
    path = weakest_checkpoint(net_path) if weak_network is True else Path(weak_network)
    if path is None:
        return None
    eng = Engine(path, device="cpu", threads=1)
    hist, boards = histories_of([c[1] for c in candidates])
    out = _WeakEvals()
    out.label = checkpoint_label(path)
    for ev, wev in zip(evals, eng.evaluate(hist, boards), strict=True):
        out.append(policy_rank(wev.moves, wev.policy, ev.best_move()))
    return out


def mine_many(db, collection: str, concepts: list, activations, dataset, *, network=None, top: float = TOP,
              max_puzzles: int | None = None, settings: VerifySettings = VerifySettings(), workers: int = 2,
              weak_network=True, seed: int = 0, filters: MineFilters = MineFilters(), engine=None,
              progress_for: ProgressFor | None = None) -> list[MineResult]:
    """Mine each concept (directions and controls) with one Stockfish pool and one network, storing
    each concept's puzzles in ``collection`` in its own transaction as soon as it is done. Controls
    go through the same ``filters``; :func:`acceptance_report` puts the results side by side.
    ``engine``: an open :class:`~conceptchess.engine.Engine` to use instead of ``network``. ``progress_for``:
    one stage per concept, ``mining <name>``."""
    if engine is None:
        net, _ = _network_for(activations, network)
        engine = Engine(net, device="cpu", threads=1)
    results = []
    with StockfishPool(workers) as pool:
        for concept in concepts:
            progress = progress_for(f"mining {concept.name}") if progress_for else None
            res = mine(concept, activations, dataset, top=top, max_puzzles=max_puzzles, settings=settings, weak_network=weak_network,
                       seed=seed, pool=pool, engine=engine, filters=filters, progress=progress)
            with db.begin() as s:
                res.puzzles = _new_positions(s, collection, res)
                add_to_collection(s, collection, res.puzzles)
            results.append(res)
    return results


def _new_positions(session, collection: str, res: MineResult) -> list[PuzzleRecord]:
    """``res.puzzles`` less those whose position and line the collection already holds under another
    id (e.g. the same prototype found by two concepts: it stays with the first)."""
    try:
        have = {(p.fen, tuple(p.solution)): p.id for p in collection_puzzles(session, collection)}
    except ConceptChessError:
        return res.puzzles
    keep = []
    for p in res.puzzles:
        other = have.get((p.fen, tuple(p.solution)))
        if other is not None and other != p.id:
            res.duplicates += 1
            res.rejected.append(Rejection(p.source_position, p.concept_rank or 0, f"duplicate of puzzle {other}", DUPLICATE_PUZZLE))
            continue
        keep.append(p)
    return keep
