"""Positions: the JSONL interchange format, validated into boards with their history.

One JSON object per line: ``{"id": ..., "moves": ["e2e4", ...]}`` (UCI from the start position) or
``{"id": ..., "fen": "...", "moves": [...]}`` (moves optional, played from that FEN). Extra keys are
kept in ``meta``. A position's history is its moves from the start position or the FEN.

>>> spec = PositionSpec.from_dict({"id": 1, "moves": ["e2e4", "e7e5"]})
>>> spec.board().fen()
'rnbqkbnr/pppp1ppp/8/4p3/4P3/8/PPPP1PPP/RNBQKBNR w KQkq - 0 2'
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import chess

from conceptchess.errors import PositionError
from conceptchess.lc0.encoder import Histories, IllegalMoveInHistory, game_histories
from conceptchess.lc0.replay import replay


def parse_fen(fen: str, where: str = "") -> chess.Board:
    """A ``chess.Board`` from a FEN, or a one-line :class:`PositionError` naming the problem."""
    prefix = f"{where}: " if where else ""
    try:
        board = chess.Board(fen)
    except ValueError as e:
        raise PositionError(f"{prefix}malformed FEN {fen!r} ({e})") from None
    if not board.is_valid():
        raise PositionError(f"{prefix}illegal position in FEN {fen!r} ({board.status()!r})")
    return board


def parse_moves(board: chess.Board, moves: Iterable[str], where: str = "") -> list[chess.Move]:
    """Validate UCI moves played in sequence from ``board`` (not modified)."""
    prefix = f"{where}: " if where else ""
    b = board.copy(stack=False)
    out = []
    for ply, uci in enumerate(moves, start=1):
        if not isinstance(uci, str):
            raise PositionError(f"{prefix}move {ply} is {uci!r}, expected a UCI string")
        try:
            move = b.parse_uci(uci)
        except chess.InvalidMoveError:
            raise PositionError(f"{prefix}move {ply} {uci!r} is not UCI notation") from None
        except chess.IllegalMoveError:
            raise PositionError(f"{prefix}move {ply} {uci!r} is illegal in {b.fen()}") from None
        b.push(move)
        out.append(move)
    return out


@dataclass
class PositionSpec:
    id: object
    fen: str | None = None
    moves: list[str] = field(default_factory=list)
    meta: dict = field(default_factory=dict)

    @classmethod
    def from_dict(cls, d: dict, where: str = "") -> "PositionSpec":
        if not isinstance(d, dict):
            raise PositionError(f"{where}: expected a JSON object, got {type(d).__name__}")
        if "id" not in d:
            raise PositionError(f"{where}: missing \"id\"")
        moves = d.get("moves") or []
        if not isinstance(moves, list):
            raise PositionError(f"{where}: \"moves\" must be a list of UCI strings")
        fen = d.get("fen")
        if fen is not None and not isinstance(fen, str):
            raise PositionError(f"{where}: \"fen\" must be a string")
        meta = {k: v for k, v in d.items() if k not in ("id", "fen", "moves")}
        return cls(d["id"], fen, list(moves), meta)

    def start(self, where: str = "") -> chess.Board:
        return parse_fen(self.fen, where) if self.fen else chess.Board()

    def parsed(self, where: str = "") -> tuple[chess.Board, list[chess.Move]]:
        start = self.start(where)
        return start, parse_moves(start, self.moves, where)

    def board(self, where: str = "") -> chess.Board:
        """The position as a ``chess.Board`` whose move stack is its history."""
        start, moves = self.parsed(where)
        b = start.copy()
        for m in moves:
            b.push(m)
        return b


def read_positions_jsonl(path: str | os.PathLike) -> Iterator[PositionSpec]:
    """Stream the position specs of a JSONL file; errors name the file and line."""
    path = Path(path)
    try:
        f = open(path, encoding="utf-8")
    except OSError as e:
        raise PositionError(f"{path}: cannot read ({e.strerror})") from None
    with f:
        for lineno, line in enumerate(f, start=1):
            if not line.strip():
                continue
            where = f"{path}:{lineno}"
            try:
                d = json.loads(line)
            except json.JSONDecodeError as e:
                raise PositionError(f"{where}: malformed JSON ({e.msg})") from None
            yield PositionSpec.from_dict(d, where)


CHUNK = 16384  # positions replayed as one tree: bounds its memory; a game's positions are usually together


def histories_of(specs: list[PositionSpec], where: str = "") -> tuple[Histories, list[chess.Board]]:
    """Encoder histories and boards (no move stack) of validated position specs, in their order.

    The positions are replayed together (:func:`conceptchess.lc0.replay.replay`): a game, or any move
    prefix positions share, is played once, whatever the order of the positions. One the fast replay
    declines is replayed alone by :func:`history_of`, which gives the same result or the one-line
    error naming its id and ply; errors come in the order of ``specs``.
    """
    parts, boards = [], []
    for s in range(0, len(specs), CHUNK):
        chunk = specs[s : s + CHUNK]
        r = replay([(spec.fen, spec.moves) for spec in chunk])
        h = r.histories
        for i, board in enumerate(r.boards):
            if board is None:
                one, r.boards[i] = history_of(chunk[i], where)
                for f in ("boards", "reps", "black", "castling", "rule50"):
                    getattr(h, f)[i] = getattr(one, f)[0]
        parts.append(h)
        boards += r.boards
    return Histories.concat(parts) if len(parts) != 1 else parts[0], boards


def boards_of(specs: list[PositionSpec], where: str = "",
              check: Callable[[chess.Board, str], None] | None = None) -> list[chess.Board]:
    """The boards (no move stack) of validated position specs, in their order: :func:`histories_of`
    without the histories. Positions are replayed together; one the fast replay declines is replayed
    alone with python-chess (:meth:`PositionSpec.board`), which gives the same board or the one-line
    error naming its id and ply. ``check(board, where)``, when given, vets each board in turn (errors
    come in the order of ``specs``)."""
    boards = replay([(spec.fen, spec.moves) for spec in specs], histories=False).boards
    for i, spec in enumerate(specs):
        w = f"{where}id={spec.id}"
        if boards[i] is None:
            boards[i] = spec.board(w).copy(stack=False)
        if check is not None:
            check(boards[i], w)
    return boards


def history_of(spec: PositionSpec, where: str = "") -> tuple[Histories, chess.Board]:
    """One position's encoder history and board, replayed alone with python-chess (the reference
    :func:`histories_of` equals); a malformed FEN or move raises a one-line :class:`PositionError`."""
    w = f"{where}id={spec.id}"
    start = spec.start(w)
    moves = []
    for ply, uci in enumerate(spec.moves, start=1):
        try:
            moves.append(chess.Move.from_uci(uci))
        except (chess.InvalidMoveError, TypeError, AttributeError):
            raise PositionError(f"{w}: move {ply} {uci!r} is not UCI notation") from None
    try:
        h, bs = game_histories(start, moves, plies=[len(moves)], keep_boards=True, check_legal=True)
    except IllegalMoveInHistory as e:
        raise PositionError(f"{w}: {e}") from None
    return h, bs[0]
