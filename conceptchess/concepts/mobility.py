"""Mobility: legal moves, in total and per moving piece type.

The opponent's mobility is the number of legal moves it would have if the side to move passed
(a null move; when the side to move is in check, "capturing the king" is not counted).

>>> from conceptchess.concepts import CONCEPTS
>>> CONCEPTS["us_mobility"](chess.Board()), CONCEPTS["them_knight_mobility"](chess.Board())
(20, 4)
"""

from __future__ import annotations

import chess

from conceptchess.concepts.context import PositionContext
from conceptchess.concepts.registry import register_pair

FAMILY = "mobility"


def mobility(ctx: PositionContext, color: chess.Color) -> int:
    """Number of legal moves of ``color`` (after a null move if it is not ``color``'s turn)."""
    return len(ctx.side(color).moves)


def piece_mobility(ctx: PositionContext, color: chess.Color, piece_type: chess.PieceType) -> int:
    """Legal moves of ``color`` made by its pieces of ``piece_type`` (each promotion choice counts)."""
    return ctx.side(color).by_type[piece_type]


register_pair("mobility", "number of legal moves of {side}{passed}", "scalar", FAMILY,
              mobility, dtype="int16")
for _t in chess.PIECE_TYPES:
    _name = chess.piece_name(_t)
    register_pair(f"{_name}_mobility", f"number of legal {_name} moves of {{side}}{{passed}}",
                  "scalar", FAMILY, lambda ctx, c, t=_t: piece_mobility(ctx, c, t), dtype="int16")
