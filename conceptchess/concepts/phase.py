"""Game phase and whose turn it is.

>>> from conceptchess.concepts import CONCEPTS
>>> CONCEPTS["game_phase"](chess.Board()), CONCEPTS["material_phase"](chess.Board())
(0, 1.0)
>>> CONCEPTS["game_phase"](chess.Board("4k3/8/8/8/8/8/8/R3K3 w - - 0 40"))
2
"""

from __future__ import annotations

import chess

from conceptchess.concepts.context import PositionContext
from conceptchess.concepts.registry import register

FAMILY = "phase"
PHASES = ("opening", "middlegame", "endgame")
OPENING_MOVES = 10
ENDGAME_PIECES = 6
FULL_NON_PAWN_MATERIAL = 62  # 2 × (2N + 2B + 2R + Q) = 2 × 31


def game_phase(ctx: PositionContext) -> int:
    """0 opening (move number <= 10), 2 endgame (<= 6 knights, bishops, rooks and queens left), 1 otherwise."""
    b = ctx.board
    pieces = (b.knights | b.bishops | b.rooks | b.queens).bit_count()
    if pieces <= ENDGAME_PIECES:
        return 2
    return 0 if b.fullmove_number <= OPENING_MOVES else 1


def material_phase(ctx: PositionContext) -> float:
    """Non-pawn material of both sides over its starting value 62 (N=B=3, R=5, Q=9), clipped to [0, 1]."""
    b = ctx.board
    npm = 3 * (b.knights | b.bishops).bit_count() + 5 * b.rooks.bit_count() + 9 * b.queens.bit_count()
    return min(1.0, npm / FULL_NON_PAWN_MATERIAL)


register("game_phase", f"Opening if fullmove number <= {OPENING_MOVES}, endgame if <= {ENDGAME_PIECES} knights/bishops/rooks/queens "
         "remain (endgame wins), else middlegame", "categorical", "both", FAMILY, game_phase, categories=PHASES)
register("material_phase", "Non-pawn material of both sides (N=B=3, R=5, Q=9) divided by its starting value 62, at most 1",
         "scalar", "both", FAMILY, material_phase)
register("white_to_move", "White is the side to move", "binary", "white", FAMILY, lambda ctx: int(ctx.us == chess.WHITE))
