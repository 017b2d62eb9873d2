"""Outposts: knights and bishops on squares no enemy pawn can ever attack, defended by a pawn.

An outpost for a side is a square on its ranks 4–6, defended by one of its pawns, with no enemy pawn
on an adjacent file ahead of it.

>>> from conceptchess.concepts import CONCEPTS
>>> b = chess.Board("4k3/p6p/8/3N4/4P3/8/8/4K3 w - - 0 1")   # Nd5 defended by e4; no c/e pawn of Black ahead
>>> CONCEPTS["us_outposts"](b)
1
"""

from __future__ import annotations

import chess

from conceptchess.concepts.bitboards import OUTPOST_SPAN, relative_ranks
from conceptchess.concepts.context import PositionContext
from conceptchess.concepts.registry import register_pair

FAMILY = "outposts"
_OUTPOST_RANKS = [relative_ranks(c, 4, 6) for c in (chess.BLACK, chess.WHITE)]


def outposts(ctx: PositionContext, color: chess.Color) -> int:
    """``color``'s knights and bishops standing on an outpost (see module docstring)."""
    p = ctx.pieces[color]
    candidates = (p[chess.KNIGHT] | p[chess.BISHOP]) & _OUTPOST_RANKS[color] & ctx.attacks_by[color][chess.PAWN]
    enemy = ctx.pieces[not color][chess.PAWN]
    span = OUTPOST_SPAN[color]
    return sum(1 for s in chess.scan_reversed(candidates) if not span[s] & enemy)


register_pair("outposts", "number of {side}'s knights and bishops on its ranks 4-6, defended by its pawn, with no pawn of {other} "
              "on an adjacent file ahead", "scalar", FAMILY, outposts, dtype="int16")
