"""Grading an expert's answer: a move from SAN or UCI, the moves an answer gives, and the one verdict.

The first move is correct when it is the solution's move or one of the verified alternatives, or
when it gives checkmate. The line is correct when every solver move of the given line is (the
opponent's moves in it are not judged); a line that stops early is not correct; with no line given
it is unknown for puzzles longer than one move. Answer entry, CSV import and the interactive mode
all store :func:`grade`'s verdict.

>>> key = AnswerKey("r3k3/pp3ppp/8/1N6/8/8/PPP2PPP/6K1 w - - 0 1", ("b5c7", "e8d7", "c7a8"))
>>> moves = answer_moves(chess.Board(key.fen), "Nc7+", "Nc7+ Kd7 Nxa8")
>>> grade(key, moves)
Grade(first=True, line=True)
>>> grade(key, moves[:1])
Grade(first=True, line=None)
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

import chess

from conceptchess.chessfacts import gives_checkmate
from conceptchess.errors import ArgumentError, ConceptChessError

_MOVE_NUMBER = re.compile(r"^\d+\.+$")
_UCI = re.compile(r"[a-hA-H][1-8][a-hA-H][1-8][qrbnQRBN]?")


@dataclass(frozen=True)
class AnswerKey:
    """What an answer is graded against: the position shown, the solution line and, per solver move,
    the other moves verification accepted."""

    fen: str  # the position shown
    solution: tuple[str, ...]  # UCI: solver, reply, …, solver
    alternatives: tuple[tuple[str, ...], ...] = ()  # per solver move: the other accepted moves (UCI)

    @classmethod
    def of(cls, puzzle) -> AnswerKey:
        """The key of a stored puzzle (anything with ``fen``, ``solution`` and ``accepted_moves``)."""
        return cls(puzzle.fen, tuple(puzzle.solution), tuple(tuple(alts) for alts in puzzle.accepted_moves or ()))

    @property
    def solver_moves(self) -> int:
        return (len(self.solution) + 1) // 2

    def accepted(self, k: int) -> frozenset[str]:
        """The UCI moves accepted as the solver's ``k``-th move (from 0), checkmates aside."""
        if 2 * k >= len(self.solution):
            return frozenset()
        return frozenset({self.solution[2 * k], *(self.alternatives[k] if k < len(self.alternatives) else ())})


class Grade(NamedTuple):
    first: bool  # the first move is correct
    line: bool | None  # the whole line is correct; None: no line given for a puzzle longer than one move


def parse_move(board: chess.Board, text: str) -> chess.Move:
    """A legal move from SAN (``Nf3``, ``exd5``, ``O-O``) or UCI (``g1f3``); a one-line error otherwise."""
    t = (text or "").strip()
    side = "White" if board.turn == chess.WHITE else "Black"
    if not t:
        raise ConceptChessError(f"no move given ({side} to move)")
    if t in ("0000", "--", "Z0"):
        raise ConceptChessError("a null move is not an answer")
    try:
        return board.parse_uci(t.lower()) if _UCI.fullmatch(t) else board.parse_san(t)
    except chess.IllegalMoveError:
        raise ConceptChessError(f"illegal move {t!r} in {board.fen()} ({side} to move)") from None
    except chess.AmbiguousMoveError:
        raise ConceptChessError(f"ambiguous move {t!r} in {board.fen()} (say which piece, e.g. Nbd2, or use UCI)") from None
    except (chess.InvalidMoveError, ValueError):
        raise ConceptChessError(f"malformed move {t!r} (use SAN like Nf3 or UCI like g1f3)") from None


def split_line(text: str | Sequence[str] | None) -> list[str]:
    """Tokens of a line like ``"1. Nf3 Kg8 2. Qh7#"`` or ``"g1f3,g8h8"`` (move numbers dropped)."""
    if text is None:
        return []
    parts = re.split(r"[\s,;]+", text) if isinstance(text, str) else text
    out = []
    for tok in parts:
        tok = tok.strip()
        if not tok or _MOVE_NUMBER.match(tok):
            continue
        tok = re.sub(r"^\d+\.+", "", tok)
        if tok:
            out.append(tok)
    return out


def answer_moves(board: chess.Board, move: str, line: str | Sequence[str] | None = None) -> list[chess.Move]:
    """The moves an answer gives: ``move``, then the rest of ``line`` (which may or may not repeat
    ``move`` as its first move), each legal in turn."""
    first = parse_move(board, move)
    tokens = split_line(line)
    if not tokens:
        return [first]
    b = board.copy(stack=False)
    try:
        line_first = parse_move(b, tokens[0])
    except ConceptChessError:
        line_first = None
    if line_first == first:
        tokens = tokens[1:]
    elif line_first is not None:
        raise ArgumentError(f"{{line}} starts with {tokens[0]} but the move given is {board.san(first)}", line="line")
    out = [first]
    b.push(first)
    for tok in tokens:
        m = parse_move(b, tok)
        out.append(m)
        b.push(m)
    return out


def grade(key: AnswerKey, moves: Sequence[chess.Move]) -> Grade:
    """The verdict on the moves an answer gives (solver first, legal in turn; see the module's docs)."""
    board = chess.Board(key.fen)
    first = moves[0].uci() in key.accepted(0) or gives_checkmate(board, moves[0])
    n = key.solver_moves
    if n == 1:
        return Grade(first, first)
    if len(moves) == 1:
        return Grade(first, None)
    for k in range(n):
        if 2 * k >= len(moves):
            return Grade(first, False)
        m = moves[2 * k]
        if gives_checkmate(board, m):
            return Grade(first, True)
        if m.uci() not in key.accepted(k):
            return Grade(first, False)
        board.push(m)
        if 2 * k + 1 < len(moves):
            board.push(moves[2 * k + 1])
    return Grade(first, True)


def solution_reply(key: AnswerKey, moves: Sequence[chess.Move]) -> chess.Move | None:
    """The opponent's reply to show an expert who has played ``moves`` (ending with a solver move) so
    far: the solution's next move while the answer follows the solution. None when the answer stops
    there: it left the solution (even for an accepted alternative, whose reply the solution does not
    know), the game is over, or the solution ends."""
    ply = len(moves)
    if ply % 2 == 0 or ply >= len(key.solution) or [m.uci() for m in moves] != list(key.solution[:ply]):
        return None
    board = chess.Board(key.fen)
    for m in moves:
        board.push(m)
    return None if board.is_game_over() else chess.Move.from_uci(key.solution[ply])
