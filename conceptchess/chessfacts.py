"""Facts about a chess move that more than one part of the pipeline asks, each defined once.

>>> board = chess.Board("7k/6pp/8/8/8/8/8/R5K1 w - - 0 1")
>>> gives_checkmate(board, chess.Move.from_uci("a1a8")), gives_checkmate(board, chess.Move.from_uci("a1a7"))
(True, False)
>>> [board.san(m) for m in mates_in_one(board)], mates_in_one(chess.Board())
(['Ra8#'], [])
"""

from __future__ import annotations

import chess


def gives_checkmate(board: chess.Board, move: chess.Move) -> bool:
    """Whether the legal ``move`` mates on ``board`` (the board is left as it was)."""
    board.push(move)
    try:
        return board.is_checkmate()
    finally:
        board.pop()


def mates_in_one(board: chess.Board) -> list[chess.Move]:
    """The legal moves that mate at once on ``board`` (a forced mate in one when not empty), in
    python-chess's move order."""
    return [m for m in board.legal_moves if gives_checkmate(board, m)]
