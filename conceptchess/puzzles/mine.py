"""Mine puzzles from a concept: rank positions by concept score, keep the top 2.5% as prototypes,
and turn the prototypes whose network move is the only good move into puzzles.

A concept is given as a direction over one tap's flattened activations (a probe vector saved as
``.npy``; optionally with a standardisation ``mean``/``scale``: ``score = ((x - mean) / scale) · v``),
or — for controls — as a random direction of matched sparsity (:meth:`Direction.random_control`) or
a human concept of the library (:class:`HumanConcept`, scored from the board).

For each prototype (best score first; duplicate positions dropped) the network picks its move;
Stockfish (``workers`` single-threaded processes) checks it is the only good move and extends the
line (:func:`~conceptchess.puzzles.verify.find_line`). Accepted lines are tagged
(:mod:`~conceptchess.puzzles.themes`) and given a difficulty estimate
(:mod:`~conceptchess.puzzles.difficulty`).

>>> d = Direction.load("probes/fork_block3.npy", tap="block3", name="fork")      # doctest: +SKIP
>>> result = mine(d, ActivationStore("acts/"), "positions/", max_puzzles=20)    # doctest: +SKIP
>>> with db.begin() as s: add_to_collection(s, "fork", result.puzzles)         # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
import math
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import chess
import numpy as np

from conceptchess.errors import ConceptChessError
from conceptchess.puzzles.difficulty import checkpoint_label, estimate, policy_rank, weakest_checkpoint
from conceptchess.puzzles.engine_pool import StockfishPool
from conceptchess.puzzles.records import GENERATOR_VERSION, make_puzzle_id, side_name
from conceptchess.puzzles.themes import tag
from conceptchess.puzzles.verify import Verdict, VerifySettings, find_line
from conceptchess.store.puzzles import Puzzle

TOP = 0.025  # Schut et al.: the top 2.5% of positions by concept score are the prototypes


def _load_array(path: str | os.PathLike, what: str) -> np.ndarray:
    try:
        a = np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise ConceptChessError(f"{path}: no such {what} file") from None
    except (OSError, ValueError) as e:
        raise ConceptChessError(f"{path}: not a .npy/.npz array ({e})") from None
    return a


@dataclass
class Direction:
    """A concept direction over the flattened activations of ``tap``."""

    name: str
    tap: str
    vector: np.ndarray
    mean: np.ndarray | None = None
    scale: np.ndarray | None = None
    kind: str = "concept"
    seed: int | None = None

    def __post_init__(self):
        self.vector = np.asarray(self.vector, dtype=np.float32).reshape(-1)
        if not np.all(np.isfinite(self.vector)) or not np.any(self.vector):
            raise ConceptChessError(f"direction {self.name!r}: must be finite and not all zeros")
        for attr in ("mean", "scale"):
            a = getattr(self, attr)
            if a is not None:
                a = np.asarray(a, dtype=np.float32).reshape(-1)
                if a.size == 1:
                    a = np.full(self.vector.size, a[0], np.float32)
                if a.size != self.vector.size:
                    raise ConceptChessError(f"direction {self.name!r}: {attr} has {a.size} values, the direction {self.vector.size}")
                setattr(self, attr, a)
        if self.scale is not None and np.any(self.scale == 0):
            raise ConceptChessError(f"direction {self.name!r}: standardisation scale has zeros")

    @classmethod
    def load(cls, path: str | os.PathLike, tap: str, name: str | None = None, mean: str | os.PathLike | None = None,
             scale: str | os.PathLike | None = None, kind: str = "concept") -> "Direction":
        """From a ``.npy`` vector (or a ``.npz`` with ``direction``/``vector``/``coef`` and optional
        ``mean`` and ``scale``/``std``), plus optional ``.npy`` files for the standardisation."""
        a = _load_array(path, "direction")
        m = s = None
        if isinstance(a, np.lib.npyio.NpzFile):
            keys = set(a.files)
            key = next((k for k in ("direction", "vector", "coef") if k in keys), None)
            if key is None:
                raise ConceptChessError(f"{path}: an .npz direction needs a 'direction', 'vector' or 'coef' array (has {sorted(keys)})")
            vec = a[key]
            m = a["mean"] if "mean" in keys else None
            s = a["scale"] if "scale" in keys else a["std"] if "std" in keys else None
        else:
            vec = a
        if mean is not None:
            m = _load_array(mean, "mean")
        if scale is not None:
            s = _load_array(scale, "scale")
        return cls(name or Path(path).name.split(".")[0], tap, vec, m, s, kind)

    @property
    def sha256(self) -> str:
        h = hashlib.sha256(self.tap.encode())
        for a in (self.vector, self.mean, self.scale):
            h.update(b"-" if a is None else np.ascontiguousarray(a, np.float32).tobytes())
        return h.hexdigest()

    @property
    def nonzeros(self) -> int:
        return int(np.count_nonzero(self.vector))

    def random_control(self, seed: int) -> "Direction":
        """A random direction with as many non-zeros as this one (random support, Gaussian values,
        the same L2 norm) and the same standardisation: a control of matched sparsity."""
        rng = np.random.default_rng(seed)
        v = np.zeros_like(self.vector)
        support = rng.choice(v.size, self.nonzeros, replace=False)
        v[support] = rng.standard_normal(self.nonzeros).astype(np.float32)
        v *= np.linalg.norm(self.vector) / np.linalg.norm(v)
        return Direction(f"random-{self.name}-seed{seed}", self.tap, v, self.mean, self.scale, "control-random", seed)

    def scores(self, store, dataset=None) -> np.ndarray:
        """Concept score of every position of an :class:`~conceptchess.activations.ActivationStore`."""
        shape = store.shape(self.tap)
        size = int(np.prod(shape))
        if size != self.vector.size:
            raise ConceptChessError(f"direction {self.name!r} has {self.vector.size} values; tap {self.tap} of {store.path} has "
                                    f"{'×'.join(map(str, shape))} = {size} per position ({store.pool} pooling)")
        w = self.vector.astype(np.float64)
        b = 0.0
        if self.scale is not None:
            w = w / self.scale
        if self.mean is not None:
            b = float(self.mean.astype(np.float64) @ w)
        out = []
        for chunk in store[self.tap].iter_chunks():
            x = np.asarray(chunk, dtype=np.float32).reshape(len(chunk), -1)
            out.append(x @ w.astype(np.float32) - b)
        return np.concatenate(out).astype(np.float64) if out else np.zeros(0)


@dataclass
class HumanConcept:
    """A human concept of the library, scored from the board (a control: known human knowledge)."""

    name: str
    kind: str = "control-human"
    tap: str | None = None
    seed: int | None = None

    def __post_init__(self):
        from conceptchess.concepts import CONCEPTS

        if self.name not in CONCEPTS:
            raise ConceptChessError(f"unknown human concept {self.name!r}")

    @property
    def sha256(self) -> str:
        return hashlib.sha256(f"human:{self.name}".encode()).hexdigest()

    def scores(self, store, dataset) -> np.ndarray:
        from conceptchess.concepts import label
        from conceptchess.datasets import iter_dataset

        boards = [spec.board() for spec in iter_dataset(dataset)]
        if len(boards) != len(store):
            raise ConceptChessError(f"{dataset} has {len(boards)} positions, the activation store {len(store)}")
        return np.asarray(label(boards, [self.name])[self.name], dtype=np.float64)


@dataclass
class Rejection:
    position: object
    rank: int
    reason: str


@dataclass
class MineResult:
    concept: str
    kind: str
    puzzles: list[Puzzle] = field(default_factory=list)
    rejected: list[Rejection] = field(default_factory=list)
    positions: int = 0
    prototypes: int = 0
    candidates: int = 0  # prototypes left after dropping duplicate positions, finished games and recaptures
    duplicates: int = 0  # puzzles left out because the collection already had their position and line
    settings: dict = field(default_factory=dict)

    def summary(self) -> str:
        return (f"{self.concept}: {self.positions} positions → {self.prototypes} prototypes → {self.candidates} candidates → "
                f"{len(self.puzzles)} puzzles ({len(self.rejected)} rejected)")


def rank_positions(scores: np.ndarray, seed: int = 0) -> np.ndarray:
    """Indices by score, highest first; ties broken by a seeded random order."""
    tiebreak = np.random.default_rng(seed).permutation(len(scores))
    return np.lexsort((tiebreak, -np.nan_to_num(scores, nan=-np.inf)))


def prototype_count(n: int, top: float = TOP) -> int:
    if not 0 < top <= 1:
        raise ConceptChessError(f"top fraction must be in (0, 1], not {top}")
    return max(1, math.ceil(top * n)) if n else 0


def _network_for(store, network) -> tuple[object, str]:
    """An open network for the store's activations: the given file, else the one named in the store."""
    from conceptchess.networks import open_network

    path = network or store.manifest.get("net_path")
    if not path or not Path(path).is_file():
        raise ConceptChessError(f"{store.path}: its network {path!r} is not here; pass the network file")
    net = open_network(path)
    want = store.manifest.get("net_sha256")
    if want and net.sha256 != want:
        raise ConceptChessError(f"{path}: sha256 {net.sha256[:12]}… is not the network of {store.path} ({want[:12]}…)")
    return net, str(path)


def _source(manifest: dict, meta: dict) -> tuple[str, str | None]:
    kind = "self-play" if str(manifest.get("made_by", "")).endswith("selfplay") else "game"
    game = meta.get("site") or (f"{meta.get('source')}#game{meta.get('game')}" if meta.get("game") is not None else None)
    return kind, game


def mine(concept: Direction | HumanConcept, store, dataset: str | os.PathLike, *, network: str | os.PathLike | None = None,
         top: float = TOP, max_puzzles: int | None = None, settings: VerifySettings = VerifySettings(), workers: int = 2,
         weak_network: str | os.PathLike | None | bool = True, seed: int = 0, pool: StockfishPool | None = None,
         engine=None, allow_recaptures: bool = False, progress: Callable[[int, int], None] | None = None) -> MineResult:
    """Mine puzzles for one concept over a positions dataset and its activation store.

    ``network``: the network file (default: the store's). ``weak_network``: a checkpoint file for the
    difficulty estimate, ``True`` for the series' weakest (:func:`weakest_checkpoint`), ``False``/None
    for none. ``max_puzzles``: stop once that many are accepted. ``pool``/``engine``: an open
    :class:`StockfishPool` / :class:`~conceptchess.engine.Engine` to reuse. ``allow_recaptures``:
    keep prototypes whose network move merely takes back on the square of the opponent's last
    capture (an exchange, not a puzzle; skipped by default before Stockfish is asked).
    ``progress(done, total)`` counts candidates checked.
    """
    from conceptchess.datasets import dataset_sha256, iter_dataset, read_manifest
    from conceptchess.engine import Engine
    from conceptchess.positions import histories_of

    ds_sha = dataset_sha256(dataset)
    if store.manifest.get("dataset_sha256") and store.manifest["dataset_sha256"] != ds_sha:
        raise ConceptChessError(f"{store.path} was extracted from another dataset than {dataset}")
    if engine is None:
        net, net_path = _network_for(store, network)
        engine = Engine(net, device="cpu", threads=1)
    else:
        net, net_path = engine.network, str(engine.network.path)
    scores = concept.scores(store, dataset)
    ids = store.ids
    if len(scores) != len(ids):
        raise ConceptChessError(f"{concept.name}: {len(scores)} scores for {len(ids)} positions")
    order = rank_positions(scores, seed)
    n_proto = prototype_count(len(scores), top)
    protos = order[:n_proto]
    result = MineResult(concept.name, concept.kind, positions=len(scores), prototypes=n_proto,
                        settings={**settings.as_dict(), "top": top, "seed": seed})
    rank_of = {int(i): r + 1 for r, i in enumerate(order[:n_proto])}
    wanted = {ids[i]: int(i) for i in protos}
    specs = {}
    for spec in iter_dataset(dataset):
        if spec.id in wanted:
            specs[wanted[spec.id]] = spec
    manifest = read_manifest(dataset)
    candidates, seen = [], set()
    for i in protos:
        spec = specs.get(int(i))
        if spec is None:
            raise ConceptChessError(f"position {ids[i]!r} of {store.path} is not in {dataset}")
        board = spec.board(f"{dataset}: id={spec.id}")
        key = (board.board_fen(), board.turn, board.castling_rights, board.ep_square)
        if key in seen:
            continue
        seen.add(key)
        if board.is_game_over(claim_draw=False):
            result.rejected.append(Rejection(spec.id, rank_of[int(i)], "game over"))
            continue
        candidates.append((int(i), spec, board))
    if not candidates:
        return result
    hist, _ = histories_of([c[1] for c in candidates])
    evals = engine.evaluate(hist, [c[2] for c in candidates])
    if not allow_recaptures:
        kept = []
        for c, ev in zip(candidates, evals, strict=True):
            if _recaptures(c[2], ev.best_move()):
                result.rejected.append(Rejection(c[1].id, rank_of[c[0]], f"recapture: the network plays {c[2].san(ev.best_move())}"))
            else:
                kept.append((c, ev))
        candidates, evals = [k[0] for k in kept], [k[1] for k in kept]
    result.candidates = len(candidates)
    if not candidates:
        return result
    own_pool = pool is None
    pool = pool or StockfishPool(workers)
    accepted: list[tuple[int, object, chess.Board, object, Verdict]] = []
    engine_name, engine_settings = pool.name, pool.settings()
    try:
        result.settings.update(engine_settings)
        items = list(zip(candidates, evals, strict=True))
        if progress:
            progress(0, len(items))
        jobs = pool.map(lambda sf, item: find_line(sf, item[0][2], settings, item[1].best_move()), items)
        for done, ((i, spec, board), ev) in enumerate(items, start=1):
            verdict = next(jobs)
            if verdict.accepted:
                accepted.append((i, spec, board, ev, verdict))
            else:
                result.rejected.append(Rejection(spec.id, rank_of[i], verdict.reason))
            if progress:
                progress(done, len(items))
            if max_puzzles is not None and len(accepted) >= max_puzzles:
                break
        jobs.close()
    finally:
        if own_pool:
            pool.close()
    weak = _weak_evals(weak_network, net_path, accepted)
    for k, (i, spec, board, ev, verdict) in enumerate(accepted):
        first = chess.Move.from_uci(verdict.solution[0])
        p_net = float(ev.policy[ev.moves.index(first)])
        wp = weak[k] if weak else None
        diff, detail = estimate(weak_prob=wp[0] if wp else None, weak_rank=wp[1] if wp else None, legal=wp[2] if wp else None,
                                depth_found=verdict.first.depth_found if verdict.first.best == first else None,
                                solver_moves=verdict.solver_moves)
        if weak:
            detail["weak_network"] = weak.label
        src, game = _source(manifest, spec.meta)
        start = spec.start()
        result.puzzles.append(Puzzle(
            id=make_puzzle_id(board.fen(), verdict.solution[0], concept.sha256, net.sha256),
            fen=board.fen(), start_fen=start.fen(), leading_moves=list(spec.moves), solution=verdict.solution,
            side_to_solve=side_name(board.turn), kind=concept.kind, source=src, source_game=game,
            source_position=str(spec.id), dataset_sha256=ds_sha, network_sha256=net.sha256,
            checkpoint=checkpoint_label(net_path), tap=concept.tap, concept=concept.name, direction_sha256=concept.sha256,
            concept_score=float(scores[i]), concept_rank=rank_of[i], network_move=first.uci(), network_policy=p_net,
            seed=concept.seed, verify_engine=engine_name, verified_at=_now(),
            **{**verdict.columns(), "verify_settings": {**verdict.settings, **engine_settings}},
            themes=tag(board, verdict.solution, verdict.final_score), difficulty=diff, difficulty_detail=detail,
            generator_version=GENERATOR_VERSION,
        ))
    return result


def _recaptures(board: chess.Board, move: chess.Move | None) -> bool:
    """``move`` captures on the square where the opponent's last move (in the board's stack) captured."""
    if move is None or not board.move_stack or not board.is_capture(move):
        return False
    last = board.pop()
    try:
        was_capture = board.is_capture(last)
    finally:
        board.push(last)
    return was_capture and last.to_square == move.to_square


class _WeakEvals(list):
    label: str = ""


def _weak_evals(weak_network, net_path: str, accepted) -> _WeakEvals | None:
    """(probability, rank, legal moves) of each accepted puzzle's first move under the weak checkpoint."""
    from conceptchess.engine import Engine
    from conceptchess.positions import histories_of

    if not accepted or weak_network is False or weak_network is None:
        return None
    path = weakest_checkpoint(net_path) if weak_network is True else Path(weak_network)
    if path is None:
        return None
    eng = Engine(path, device="cpu", threads=1)
    hist, boards = histories_of([a[1] for a in accepted])
    out = _WeakEvals()
    out.label = checkpoint_label(path)
    for (*_, verdict), wev in zip(accepted, eng.evaluate(hist, boards), strict=True):
        out.append(policy_rank(wev.moves, wev.policy, chess.Move.from_uci(verdict.solution[0])))
    return out


def _now():
    from conceptchess.store.base import utcnow

    return utcnow()


def mine_many(db, collection: str, concepts: list, store, dataset, *, network=None, top: float = TOP,
              max_puzzles: int | None = None, settings: VerifySettings = VerifySettings(), workers: int = 2,
              weak_network=True, seed: int = 0,
              progress_for: Callable[[str], Callable[[int, int], None]] | None = None) -> list[MineResult]:
    """Mine each concept (directions and controls) with one Stockfish pool and one network, storing
    each concept's puzzles in ``collection`` in its own transaction as soon as it is done."""
    from conceptchess.engine import Engine
    from conceptchess.puzzles.records import add_to_collection

    net, _ = _network_for(store, network)
    engine = Engine(net, device="cpu", threads=1)
    results = []
    with StockfishPool(workers) as pool:
        for concept in concepts:
            progress = progress_for(f"mining {concept.name}") if progress_for else None
            res = mine(concept, store, dataset, top=top, max_puzzles=max_puzzles, settings=settings, weak_network=weak_network,
                       seed=seed, pool=pool, engine=engine, progress=progress)
            with db.begin() as s:
                res.puzzles = _new_positions(s, collection, res)
                add_to_collection(s, collection, res.puzzles)
            results.append(res)
    return results


def _new_positions(session, collection: str, res: MineResult) -> list[Puzzle]:
    """``res.puzzles`` less those whose position and line the collection already holds under another
    id (e.g. the same prototype found by two concepts: it stays with the first)."""
    from conceptchess.puzzles.records import collection_puzzles

    try:
        have = {(p.fen, tuple(p.solution)): p.id for p in collection_puzzles(session, collection)}
    except ConceptChessError:
        return res.puzzles
    keep = []
    for p in res.puzzles:
        other = have.get((p.fen, tuple(p.solution)))
        if other is not None and other != p.id:
            res.duplicates += 1
            res.rejected.append(Rejection(p.source_position, p.concept_rank or 0, f"duplicate of puzzle {other}"))
            continue
        keep.append(p)
    return keep
