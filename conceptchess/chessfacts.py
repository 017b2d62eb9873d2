"""Facts about a chess move that more than one part of the pipeline asks, each defined once.

>>> board = chess.Board("7k/6pp/8/8/8/8/8/R5K1 w - - 0 1")
>>> gives_checkmate(board, chess.Move.from_uci("a1a8")), gives_checkmate(board, chess.Move.from_uci("a1a7"))
(True, False)
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
