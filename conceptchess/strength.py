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
from conceptchess.puzzles.lichess import row_to_puzzle
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
