"""Mine puzzles from a concept: rank positions by concept score, keep the top 2.5% as prototypes,
and turn the prototypes whose network move is the only good move into puzzles.

A concept is given as a direction over one tap's flattened activations (a probe vector saved as
``.npy``; optionally with a standardisation ``mean``/``scale``: ``score = ((x - mean) / scale) · v``),
or — for controls — as a random direction of matched sparsity (:meth:`Direction.random_control`) or
a human concept of the library (:class:`HumanConcept`, scored from the board).

For each prototype (best score first) the network picks its move. Duplicate positions, finished
games and trivial candidates (:class:`MineFilters`: plain recaptures, check evasions with few legal
moves, moves the weak network already plays) are dropped; Stockfish (``workers`` single-threaded
processes) checks that the move is the only good one, keeps the solver winning, and extends the line
(:func:`~conceptchess.puzzles.verify.find_line`); positions already decided and puzzles too easy by
the difficulty estimate (:mod:`~conceptchess.puzzles.difficulty`) are dropped after it. Accepted
lines are tagged (:mod:`~conceptchess.puzzles.themes`). Controls go through the same steps; every
prototype that is no puzzle is counted under one of :data:`REJECTION_REASONS`, and
:func:`acceptance_report` sets concepts and controls side by side. A control with fewer than
:data:`MIN_CONTROL_PUZZLES` (5) puzzles is too few to compare with: an acceptance rate counted from
under five puzzles has a relative standard error above 1/√5 ≈ 45%.

>>> d = Direction.load("probes/fork_block3.npy", tap="block3", name="fork")      # doctest: +SKIP
>>> result = mine(d, ActivationStore("acts/"), "positions/", max_puzzles=20)    # doctest: +SKIP
>>> print(result.summary())                                                      # doctest: +SKIP
fork (concept): 4000 positions → 100 prototypes → 6 puzzles, 6 of 100 examined (6.0%); rejected: recapture 31, …
>>> with db.begin() as s: add_to_collection(s, "fork", result.puzzles)         # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
import math
import os
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import chess
import numpy as np

from conceptchess.errors import ConceptChessError
from conceptchess.puzzles.difficulty import MIN_DIFFICULTY, TRIVIAL_WEAK_PROB, checkpoint_label, estimate, policy_rank, weakest_checkpoint
from conceptchess.puzzles.engine_pool import StockfishPool
from conceptchess.puzzles.records import GENERATOR_VERSION, make_puzzle_id, side_name
from conceptchess.puzzles.themes import tag
from conceptchess.puzzles.verify import (
    DECIDED_CP,
    GAME_OVER,
    MATE_NOT_FORCED,
    NETWORK_DISAGREES,
    NOT_UNIQUE,
    NOT_WINNING,
    ONE_LEGAL_MOVE,
    Decided,
    Verdict,
    VerifySettings,
    already_decided,
    find_line,
)
from conceptchess.store.puzzles import Puzzle

TOP = 0.025  # Schut et al.: the top 2.5% of positions by concept score are the prototypes
MIN_CONTROL_PUZZLES = 5  # fewer control puzzles than this: too few to compare acceptance with (module docstring)


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


# Why a prototype is not a puzzle, in the order the checks meet it; it is counted under the first it
# fails. The Stockfish verdicts in between are verify's categories.
DUPLICATE_POSITION = "duplicate position"
RECAPTURE = "recapture"
CHECK_EVASION = "check evasion"
WEAK_PLAYS_IT = "weak network plays it"
ALREADY_DECIDED = "already decided"
TOO_EASY = "too easy"
DUPLICATE_PUZZLE = "duplicate puzzle"
REJECTION_REASONS = (DUPLICATE_POSITION, GAME_OVER, RECAPTURE, CHECK_EVASION, WEAK_PLAYS_IT, ONE_LEGAL_MOVE, NETWORK_DISAGREES,
                     NOT_UNIQUE, NOT_WINNING, MATE_NOT_FORCED, ALREADY_DECIDED, TOO_EASY, DUPLICATE_PUZZLE)


@dataclass(frozen=True)
class MineFilters:
    """Filters for trivial puzzles, all on by default; ``False``/0 turns one off.

    - ``recaptures``: the network's move takes back on the square where the opponent's last move
      captured (a plain exchange; checked before Stockfish, so it needs the move stack).
    - ``check_evasion_max_legal`` (3): the side to move is in check with at most this many legal moves.
    - ``weak_max_prob`` (0.5): the weak network (``weak_network`` of :func:`mine`, by default the
      series' weakest checkpoint) already plays the first move with at least this probability.
      Without a weak network this filter cannot run (each puzzle's record then has ``weak_network: None``).
    - ``min_difficulty`` (0.1): the difficulty estimate (:mod:`~conceptchess.puzzles.difficulty`) is
      below this.
    - ``decided_cp`` (500): the game was decided before the move
      (:func:`~conceptchess.puzzles.verify.already_decided`: won or lost by this many centipawns
      whatever is played, or the solver already this far ahead before the opponent's last move).

    The first three run before Stockfish; the last two on the lines Stockfish accepted.
    """

    recaptures: bool = True
    check_evasion_max_legal: int = 3
    weak_max_prob: float = TRIVIAL_WEAK_PROB
    min_difficulty: float = MIN_DIFFICULTY
    decided_cp: int = DECIDED_CP

    @classmethod
    def off(cls) -> "MineFilters":
        """Every filter off (puzzles as the verifier alone accepts them)."""
        return cls(False, 0, 0.0, 0.0, 0)

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass
class Rejection:
    """A prototype that is no puzzle: ``category`` is one of :data:`REJECTION_REASONS`, ``reason`` the detail."""

    position: object
    rank: int
    reason: str
    category: str

    def __post_init__(self):
        if self.category not in REJECTION_REASONS:
            raise ValueError(f"unknown rejection category {self.category!r}")


@dataclass
class MineResult:
    """What mining one concept gave: its puzzles, and every other prototype with the reason it is none.

    ``prototypes`` = puzzles + rejected + ``unchecked`` (candidates left when ``max_puzzles`` was reached).
    """

    concept: str
    kind: str
    puzzles: list[Puzzle] = field(default_factory=list)
    rejected: list[Rejection] = field(default_factory=list)
    positions: int = 0
    prototypes: int = 0
    candidates: int = 0  # prototypes sent to Stockfish (after duplicates, finished games and the board filters)
    unchecked: int = 0  # candidates left unjudged once max_puzzles were accepted
    duplicates: int = 0  # puzzles left out because the collection already had their position and line
    settings: dict = field(default_factory=dict)

    def counts(self) -> dict[str, int]:
        """Rejected prototypes by reason, every reason of :data:`REJECTION_REASONS` in order (zeros too)."""
        c = Counter(r.category for r in self.rejected)
        return {reason: c[reason] for reason in REJECTION_REASONS}

    @property
    def examined(self) -> int:
        """Prototypes that got a verdict (all of them unless ``max_puzzles`` stopped the run)."""
        return self.prototypes - self.unchecked

    @property
    def acceptance(self) -> float | None:
        """Puzzles per examined prototype (None when none was examined)."""
        return len(self.puzzles) / self.examined if self.examined else None

    def summary(self) -> str:
        """One line: the funnel, the acceptance and the rejections by reason.

        >>> MineResult("fork", "concept", positions=400, prototypes=10, unchecked=2,
        ...            rejected=[Rejection("a", 1, "…", "recapture")] * 8).summary()
        'fork (concept): 400 positions → 10 prototypes → 0 puzzles, 0 of 8 examined (0.0%); rejected: recapture 8; 2 not examined (max_puzzles reached)'
        """
        acc = f"{self.acceptance:.1%}" if self.acceptance is not None else "–"
        out = (f"{self.concept} ({self.kind}): {self.positions} positions → {self.prototypes} prototypes → {len(self.puzzles)} puzzles, "
               f"{len(self.puzzles)} of {self.examined} examined ({acc})")
        reasons = [f"{k} {v}" for k, v in self.counts().items() if v]
        if reasons:
            out += "; rejected: " + ", ".join(reasons)
        if self.unchecked:
            out += f"; {self.unchecked} not examined (max_puzzles reached)"
        return out


@dataclass
class AcceptanceReport:
    """Concepts and controls side by side (a value for the CLI and for people).

    ``columns``: (name, kind) of each mined concept or control; ``rows``: (label, one cell per
    column) — positions, prototypes, each rejection reason, unexamined, puzzles, acceptance;
    ``notes``: what cannot be compared, e.g. a control with fewer than :data:`MIN_CONTROL_PUZZLES`.
    """

    columns: list[tuple[str, str]]
    rows: list[tuple[str, list[str]]]
    notes: list[str]

    def text(self) -> str:
        width = max([len(r[0]) for r in self.rows] + [8])
        cols = [max(len(n), len(k) + 2, *(len(r[1][j]) for r in self.rows)) for j, (n, k) in enumerate(self.columns)]
        lines = [" " * width + "  " + "  ".join(n.rjust(w) for (n, _), w in zip(self.columns, cols, strict=True)),
                 " " * width + "  " + "  ".join(f"({k})".rjust(w) for (_, k), w in zip(self.columns, cols, strict=True))]
        lines += [label.ljust(width) + "  " + "  ".join(c.rjust(w) for c, w in zip(cells, cols, strict=True)) for label, cells in self.rows]
        return "\n".join(lines + self.notes)


def acceptance_report(results: list[MineResult], min_control: int | None = None) -> AcceptanceReport:
    """Concept and control acceptance side by side, with the counts behind it.

    A control with fewer than ``min_control`` (default :data:`MIN_CONTROL_PUZZLES`) puzzles is too
    few to compare with: the notes say so, as they do when no control or no concept was mined.
    """
    min_control = MIN_CONTROL_PUZZLES if min_control is None else min_control
    columns = [(r.concept, r.kind) for r in results]
    rows: list[tuple[str, list[str]]] = [("positions", [str(r.positions) for r in results]),
                                         ("prototypes", [str(r.prototypes) for r in results])]
    counts = [r.counts() for r in results]
    rows += [(reason, [str(c[reason]) for c in counts]) for reason in REJECTION_REASONS]
    rows.append(("not examined (max reached)", [str(r.unchecked) for r in results]))
    rows.append(("puzzles", [str(len(r.puzzles)) for r in results]))
    rows.append(("acceptance", [f"{len(r.puzzles)}/{r.examined} = {r.acceptance:.1%}" if r.acceptance is not None else "–"
                                for r in results]))
    concepts = [r for r in results if not r.kind.startswith("control")]
    controls = [r for r in results if r.kind.startswith("control")]
    notes = []
    if concepts and not controls:
        notes.append("no control was mined: the concepts' acceptance has nothing to compare with")
    if controls and not concepts:
        notes.append("no concept was mined: the controls have nothing to be compared with")
    for r in controls:
        if concepts and len(r.puzzles) < min_control:
            notes.append(f"control {r.concept}: {len(r.puzzles)} puzzle(s) of {r.examined} examined prototypes, fewer than "
                         f"{min_control}: too few to compare with the concepts")
    return AcceptanceReport(columns, rows, notes)


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
         engine=None, allow_recaptures: bool = False, filters: MineFilters = MineFilters(),
         progress: Callable[[int, int], None] | None = None) -> MineResult:
    """Mine puzzles for one concept over a positions dataset and its activation store.

    ``network``: the network file (default: the store's). ``weak_network``: a checkpoint file for the
    difficulty estimate and the weak-network filter, ``True`` for the series' weakest
    (:func:`weakest_checkpoint`), ``False``/None for none. ``max_puzzles``: stop once that many are
    accepted. ``pool``/``engine``: an open :class:`StockfishPool` / :class:`~conceptchess.engine.Engine`
    to reuse. ``filters``: the trivial-puzzle filters (:class:`MineFilters`); ``allow_recaptures``
    turns the recapture filter off (kept for older callers). ``progress(done, total)`` counts
    candidates checked by Stockfish.
    """
    from conceptchess.datasets import dataset_sha256, iter_dataset, read_manifest
    from conceptchess.engine import Engine
    from conceptchess.positions import histories_of

    if allow_recaptures:
        filters = replace(filters, recaptures=False)
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
            raise ConceptChessError(f"position {ids[i]!r} of {store.path} is not in {dataset}")
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
        why = _board_filter(board, move, weak[k] if weak else None, weak.label if weak else None, filters)
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


def _board_filter(board: chess.Board, move: chess.Move, weak, weak_label: str | None, filters: MineFilters) -> tuple[str, str] | None:
    """(category, reason) of the first board filter the network's ``move`` fails, before Stockfish."""
    if filters.recaptures and _recaptures(board, move):
        return RECAPTURE, f"recapture: the network plays {board.san(move)}, taking back on {chess.square_name(move.to_square)}"
    legal = board.legal_moves.count()
    if filters.check_evasion_max_legal and board.is_check() and legal <= filters.check_evasion_max_legal:
        return CHECK_EVASION, f"check evasion: {board.san(move)} with {legal} legal move(s) (≤ {filters.check_evasion_max_legal})"
    if filters.weak_max_prob and weak is not None and weak[0] >= filters.weak_max_prob:
        return WEAK_PLAYS_IT, f"weak network plays it: {weak_label} plays {board.san(move)} with p = {weak[0]:.2f} (≥ {filters.weak_max_prob})"
    return None


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
            reject: Callable[[str, str], None]) -> Puzzle | None:
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
    values = {"legal_moves": board.legal_moves.count(), "in_check": board.is_check(), "recapture": _recaptures(board, first),
              "weak_network": run.weak_label, "weak_prob": wp[0] if wp else None, "difficulty": round(diff, 4),
              "decided": decided.as_dict() if decided is not None else None}
    return Puzzle(
        id=make_puzzle_id(board.fen(), verdict.solution[0], concept.sha256, run.network_sha256),
        fen=board.fen(), start_fen=spec.start().fen(), leading_moves=list(spec.moves), solution=verdict.solution,
        side_to_solve=side_name(board.turn), kind=concept.kind, source=src, source_game=game,
        source_position=str(spec.id), dataset_sha256=run.dataset_sha256, network_sha256=run.network_sha256,
        checkpoint=checkpoint_label(run.network_path), tap=concept.tap, concept=concept.name, direction_sha256=concept.sha256,
        concept_score=score, concept_rank=rank, network_move=first.uci(),
        network_policy=float(ev.policy[ev.moves.index(first)]), seed=concept.seed, verify_engine=run.engine_name, verified_at=_now(),
        **{**verdict.columns(), "verify_settings": {**verdict.settings, **run.engine_settings}},
        themes=tag(board, verdict.solution, verdict.final_score), difficulty=diff, difficulty_detail=detail,
        filters={"settings": run.filters.as_dict(), "values": values}, generator_version=GENERATOR_VERSION,
    )


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


def _weak_evals(weak_network, net_path: str, candidates, evals) -> _WeakEvals | None:
    """(probability, rank, legal moves) of each candidate's network move under the weak checkpoint."""
    from conceptchess.engine import Engine
    from conceptchess.positions import histories_of

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


def _now():
    from conceptchess.store.base import utcnow

    return utcnow()


def mine_many(db, collection: str, concepts: list, store, dataset, *, network=None, top: float = TOP,
              max_puzzles: int | None = None, settings: VerifySettings = VerifySettings(), workers: int = 2,
              weak_network=True, seed: int = 0, filters: MineFilters = MineFilters(), engine=None,
              progress_for: Callable[[str], Callable[[int, int], None]] | None = None) -> list[MineResult]:
    """Mine each concept (directions and controls) with one Stockfish pool and one network, storing
    each concept's puzzles in ``collection`` in its own transaction as soon as it is done. Controls
    go through the same ``filters``; :func:`acceptance_report` puts the results side by side.
    ``engine``: an open :class:`~conceptchess.engine.Engine` to use instead of ``network``."""
    from conceptchess.engine import Engine
    from conceptchess.puzzles.records import add_to_collection

    if engine is None:
        net, _ = _network_for(store, network)
        engine = Engine(net, device="cpu", threads=1)
    results = []
    with StockfishPool(workers) as pool:
        for concept in concepts:
            progress = progress_for(f"mining {concept.name}") if progress_for else None
            res = mine(concept, store, dataset, top=top, max_puzzles=max_puzzles, settings=settings, weak_network=weak_network,
                       seed=seed, pool=pool, engine=engine, filters=filters, progress=progress)
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
            res.rejected.append(Rejection(p.source_position, p.concept_rank or 0, f"duplicate of puzzle {other}", DUPLICATE_PUZZLE))
            continue
        keep.append(p)
    return keep
