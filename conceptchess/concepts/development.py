"""Development: minor pieces still at home, connected rooks.

>>> from conceptchess.concepts import CONCEPTS
>>> CONCEPTS["us_undeveloped_minors"](chess.Board()), CONCEPTS["us_connected_rooks"](chess.Board())
(4, 0)
"""

from __future__ import annotations

import chess

from conceptchess.concepts.bitboards import MINOR_HOMES
from conceptchess.concepts.context import PositionContext
from conceptchess.concepts.registry import register_pair

FAMILY = "development"


def undeveloped_minors(ctx: PositionContext, color: chess.Color) -> int:
    """``color``'s knights and bishops on the squares b, c, f, g of its back rank."""
    p = ctx.pieces[color]
    return ((p[chess.KNIGHT] | p[chess.BISHOP]) & MINOR_HOMES[color]).bit_count()


def connected_rooks(ctx: PositionContext, color: chess.Color) -> int:
    """1 if two of ``color``'s rooks defend each other (same rank or file, nothing between)."""
    rooks = ctx.pieces[color][chess.ROOK]
    if rooks & (rooks - 1) == 0:
        return 0
    return int(any(ctx.attack_at[s] & rooks for s in chess.scan_reversed(rooks)))


register_pair("undeveloped_minors", "number of {side}'s knights and bishops still on b, c, f or g of its back rank", "scalar", FAMILY,
              undeveloped_minors, dtype="int16")
register_pair("connected_rooks", "two of {side}'s rooks defend each other (same rank or file, nothing between)", "binary", FAMILY,
              connected_rooks)
