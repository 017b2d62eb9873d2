"""How well a network plays: the numbers a checkpoint series is judged by.

- **Stockfish agreement**: the share of held-out positions (games the trainer held out: the same
  split by game, :func:`conceptchess.training.holdout_games` with the run's ``holdout`` and ``seed``)
  where the network's top move over the legal moves is Stockfish's best move in the position's
  engine label (:mod:`conceptchess.enginelabels`).
- **Human move matching**: on the held-out positions of games people played (the dataset's origin,
  or for a merged dataset its inputs' origins), the share where the top move is the move played.
- **Mates**: on a Lichess puzzle CSV, the share of ``mateIn1`` puzzles where the top move mates
  (any mating move), and of ``mateIn2`` puzzles where it is the puzzle's first solution move. The
  network sees the puzzle after the opponent's setup move (one ply of history, as the puzzle page).

Each share comes with its count. :func:`puzzle_overlap` counts puzzle positions that also occur in a
training dataset (then the puzzle is not held out).

>>> s = network_strength("engines/cc-6x64-step012000.pb.gz", "build/labelled", "puzzles.csv")   # doctest: +SKIP
>>> s.sf_agreement, s.mate_in_1                                                                   # doctest: +SKIP
"""

from __future__ import annotations

import csv
import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

import chess
import numpy as np

from conceptchess.checkpoints import read_sidecar
from conceptchess.datasets import HUMAN_GAMES, dataset_origin, iter_dataset, read_manifest
from conceptchess.engine import Engine
from conceptchess.enginelabels import LABEL_KEY
from conceptchess.errors import ConceptChessError
from conceptchess.games import open_text
from conceptchess.lc0.encoder import Histories, encode
from conceptchess.lc0.policy_map import legal_move_indices, move_to_index
from conceptchess.positions import PositionSpec, boards_of, histories_of
from conceptchess.progress import Progress
from conceptchess.puzzles.lichess import row_to_puzzle
from conceptchess.search import SearchSettings, SearchTree, check_nodes
from conceptchess.training import TrainingData, holdout_games, load_training_data


@dataclass(frozen=True)
class Share:
    hits: int
    total: int

    @property
    def rate(self) -> float | None:
        return self.hits / self.total if self.total else None

    def __str__(self) -> str:
        return "–" if not self.total else f"{self.rate:.3f} ({self.hits}/{self.total})"


@dataclass(frozen=True)
class Strength:
    network: str
    sf_agreement: Share | None = None
    human_matching: Share | None = None
    mate_in_1: Share | None = None
    mate_in_2: Share | None = None

    def as_dict(self) -> dict:
        out = {"network": self.network}
        for k, v in asdict(self).items():
            if k != "network":
                out[k] = None if v is None else {**v, "rate": getattr(self, k).rate}
        return out


def top_moves(engine: Engine, hist: Histories, legal: np.ndarray) -> np.ndarray:
    """The index (lc0 policy space) of the network's top legal move in each position."""
    logits = engine.run_planes(encode(hist))["policy"]
    return np.where(legal, logits, -np.inf).argmax(axis=1)


@dataclass
class HeldOut:
    """The held-out positions of a labelled dataset: Stockfish's best move, and the move played where known."""

    data: TrainingData
    sf_best: np.ndarray  # (N,) policy index of the label's first line
    played: np.ndarray  # (N,) policy index of the move played, -1 where none
    human: bool  # whether any of them is from a game people played (``played`` is -1 elsewhere)


def held_out(labelled: str | os.PathLike, holdout: float = 0.1, seed: int = 0) -> HeldOut:
    """The trainer's held-out split of ``labelled`` (``--targets engine``), read once for every checkpoint."""
    data = load_training_data(labelled, targets="engine")
    _, held = holdout_games(data.game, holdout, seed)
    sub = data.subset(held)
    played = np.full(len(sub), -1, np.int64)
    manifest = read_manifest(labelled)
    origins = manifest.get("origins") or {}  # a merged dataset: the origin of each input, whose name prefixes the ids

    def from_people(pid: str) -> bool:
        if origins:
            return origins.get(pid.split("/", 1)[0]) == HUMAN_GAMES
        return dataset_origin(manifest) == HUMAN_GAMES

    specs = [spec for spec in iter_dataset(labelled) if spec.meta.get(LABEL_KEY) is not None]
    for i, k in enumerate(held.tolist()):
        spec, board = specs[k], sub.boards[i]
        move = spec.meta.get("move")
        if move and from_people(str(spec.id)):
            m = chess.Move.from_uci(move)
            played[i] = move_to_index(m, board.turn, board.is_castling(m))
    human = bool((played >= 0).any())
    return HeldOut(sub, sub.target_index[:, 0].copy(), played, human)


@dataclass
class MatePuzzles:
    hist: Histories
    legal: np.ndarray
    boards: list[chess.Board]
    first: list[str]  # the puzzle's first solution move (UCI)
    mate_in: list[int]  # 1 or 2


def _csv_puzzles(csv_path: str | os.PathLike) -> list:
    """Every row of a Lichess puzzle CSV, checked as ``puzzles import`` checks it except for the id,
    which is not needed here (the shared file has one mangled by a spreadsheet: ``6E+087``)."""
    path = Path(csv_path)
    if not path.is_file():
        raise ConceptChessError(f"{path}: no such file")
    with open_text(path, newline="") as f:
        reader = csv.DictReader(f)
        missing = [c for c in ("FEN", "Moves", "Themes") if c not in (reader.fieldnames or [])]
        if missing:
            raise ConceptChessError(f"{path}: not a Lichess puzzle CSV (no column {', '.join(missing)})")
        return [row_to_puzzle({**row, "PuzzleId": f"line{reader.line_num}"}, f"{path}:{reader.line_num}") for row in reader]


def mate_puzzles(csv_path: str | os.PathLike) -> MatePuzzles:
    """The ``mateIn1`` and ``mateIn2`` puzzles of a Lichess CSV, after the setup move."""
    specs, first, mate_in = [], [], []
    for p in _csv_puzzles(csv_path):
        n = 1 if "mateIn1" in p.source_themes else 2 if "mateIn2" in p.source_themes else 0
        if n:
            specs.append(PositionSpec(p.id, p.start_fen, list(p.leading_moves)))
            first.append(p.solution[0])
            mate_in.append(n)
    hist, boards = histories_of(specs, where=f"{csv_path} ")
    legal = np.zeros((len(boards), 1858), bool)
    for i, b in enumerate(boards):
        legal[i, legal_move_indices(b)[1]] = True
    return MatePuzzles(hist, legal, boards, first, mate_in)


def puzzle_overlap(puzzles: MatePuzzles, dataset: str | os.PathLike) -> int:
    """How many puzzle positions (board, side to move, castling, en passant) occur in ``dataset``."""
    keys = {b.epd() for b in puzzles.boards}
    specs = list(iter_dataset(dataset))
    return len(keys & {b.epd() for b in boards_of(specs)})


def network_strength(network: str | os.PathLike, held: HeldOut | None = None, puzzles: MatePuzzles | None = None,
                     *, threads: int | None = None) -> Strength:
    engine = Engine(network, batch_size=512, threads=threads, device="cpu")
    sf = human = m1 = m2 = None
    if held is not None:
        top = top_moves(engine, held.data.hist, held.data.legal)
        sf = Share(int((top == held.sf_best).sum()), len(top))
        if held.human:
            has = held.played >= 0
            human = Share(int((top[has] == held.played[has]).sum()), int(has.sum()))
    if puzzles is not None:
        top = top_moves(engine, puzzles.hist, puzzles.legal)
        hits = {1: 0, 2: 0}
        totals = {1: 0, 2: 0}
        for idx, board, first, n in zip(top, puzzles.boards, puzzles.first, puzzles.mate_in, strict=True):
            move = next(m for m in board.legal_moves if move_to_index(m, board.turn, board.is_castling(m)) == idx)
            totals[n] += 1
            if n == 1:
                b = board.copy(stack=False)
                b.push(move)
                hits[1] += b.is_checkmate()
            else:
                hits[2] += move.uci() == first
        m1, m2 = Share(hits[1], totals[1]), Share(hits[2], totals[2])
    return Strength(Path(network).name, sf, human, m1, m2)


def series_markdown(strengths: list[Strength], folder: str | os.PathLike) -> str:
    """A markdown table of a checkpoint series: step, samples seen, held-out losses (from each file's
    sidecar), the :class:`Strength` numbers and the file's sha256."""
    rows = ["| file | step | samples seen | held-out policy KL | held-out WDL loss | Stockfish top-1 | human move | "
            "mate in 1 | mate in 2 | sha256 |", "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|"]

    def cell(share: Share | None) -> str:
        return "–" if share is None or not share.total else f"{share.rate:.3f}"

    def num(x) -> str:
        return "–" if x is None else f"{x:.4f}"

    for s in strengths:
        meta = read_sidecar(Path(folder) / s.network)
        run_file = Path(folder) / f"{meta.get('run')}.json"
        batch = json.loads(run_file.read_text())["config"]["batch_size"] if run_file.exists() else None
        seen = "–" if batch is None or meta.get("step") is None else f"{meta['step'] * batch:,}"
        rows.append(f"| {s.network} | {meta.get('step', '–')} | {seen} | {num(meta.get('heldout_policy_loss'))} | "
                    f"{num(meta.get('heldout_value_loss'))} | {cell(s.sf_agreement)} | {cell(s.human_matching)} | {cell(s.mate_in_1)} | "
                    f"{cell(s.mate_in_2)} | `{meta.get('sha256', '')}` |")
    return "\n".join(rows) + "\n"


@dataclass(frozen=True)
class MateSolving:
    """How a network solves the mate-in-n puzzles of a Lichess CSV, by its raw policy and by search.

    ``first``: the first solver move is the puzzle's (or mates at once). ``line``: every solver move is
    the puzzle's or mates at once, with the opponent's replies the puzzle's.
    """

    mate_in: int
    policy_first: Share
    policy_line: Share
    search_first: Share | None
    search_line: Share | None
    nodes: int | None
    solved_by_search_only: tuple[str, ...] = ()  # puzzles (CSV line) the search solves and the policy does not

    def as_dict(self) -> dict:
        out = {"mate_in": self.mate_in, "nodes": self.nodes, "solved_by_search_only": list(self.solved_by_search_only)}
        for k in ("policy_first", "policy_line", "search_first", "search_line"):
            v = getattr(self, k)
            out[k] = None if v is None else {**asdict(v), "rate": v.rate}
        return out


def _solves(choose, start: chess.Board, leading: list[chess.Move], solution: list[chess.Move]) -> tuple[bool, bool]:
    """(first move right, whole line right) of a chooser ``choose(start, moves) -> move``."""
    moves = list(leading)
    board = start.copy(stack=False)
    for m in moves:
        board.push(m)
    first = None
    for k in range(0, len(solution), 2):
        chosen = choose(start, moves)
        after = board.copy(stack=False)
        after.push(chosen)
        right = chosen == solution[k] or after.is_checkmate()
        if first is None:
            first = right
        if not right:
            return first, False
        if after.is_checkmate():
            return first, True
        for m in solution[k : k + 2]:
            board.push(m)
            moves.append(m)
    return bool(first), True


def solve_mate_puzzles(network: str | os.PathLike, csv_path: str | os.PathLike, *, nodes: int | None = 800, mate_in=(2, 3),
                       settings: SearchSettings = SearchSettings(), threads: int | None = None,
                       progress: Progress | None = None) -> list[MateSolving]:
    """Solve every ``mateIn{n}`` puzzle of a Lichess CSV (n in ``mate_in``) with the raw policy's top move
    and, unless ``nodes`` is None, with the best move of a fresh search of ``nodes`` playouts at each
    solver ply (the network sees the puzzle's moves as history). ``progress(done, total)`` counts puzzles."""
    if nodes is not None:
        check_nodes(nodes)
    engine = Engine(network, batch_size=settings.batch_size, threads=threads, device="cpu")
    puzzles = [p for p in _csv_puzzles(csv_path) if any(f"mateIn{n}" in p.source_themes for n in mate_in)]

    def policy(start, moves):
        hist, boards = histories_of([PositionSpec("p", start.fen(), [m.uci() for m in moves])])
        return engine.evaluate(hist, boards)[0].best_move()

    def search(start, moves):
        return SearchTree(engine, start, moves, settings).search(nodes).best_move

    tallies = {n: {"pf": 0, "pl": 0, "sf": 0, "sl": 0, "total": 0, "only": []} for n in mate_in}
    if progress is not None:
        progress(0, len(puzzles))
    for k, p in enumerate(puzzles):
        n = next(n for n in mate_in if f"mateIn{n}" in p.source_themes)
        start = chess.Board(p.start_fen)
        leading = [chess.Move.from_uci(u) for u in p.leading_moves]
        solution = [chess.Move.from_uci(u) for u in p.solution]
        t = tallies[n]
        t["total"] += 1
        pf, pl = _solves(policy, start, leading, solution)
        t["pf"] += pf
        t["pl"] += pl
        if nodes is not None:
            sf, sl = _solves(search, start, leading, solution)
            t["sf"] += sf
            t["sl"] += sl
            if sl and not pl:
                t["only"].append(p.id)
        if progress is not None:
            progress(k + 1, len(puzzles))
    return [MateSolving(n, Share(t["pf"], t["total"]), Share(t["pl"], t["total"]),
                        Share(t["sf"], t["total"]) if nodes is not None else None,
                        Share(t["sl"], t["total"]) if nodes is not None else None, nodes, tuple(t["only"]))
            for n, t in tallies.items()]
