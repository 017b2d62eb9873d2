"""Threats: check, mate in one, mate threats, hanging pieces, attacks by cheaper pieces, queen captures.

"Attacked" and "defended" mean a piece's attack map covers the square (pins and x-rays ignored).

>>> from conceptchess.concepts import CONCEPTS
>>> fools_mate = chess.Board("rnbqkbnr/pppp1ppp/8/4p3/6P1/5P2/PPPPP2P/RNBQKBNR b KQkq - 0 2")
>>> CONCEPTS["us_has_mate_in_1"](fools_mate), CONCEPTS["in_check"](fools_mate)
(1, 0)
"""

from __future__ import annotations

import chess

from conceptchess.concepts.context import PositionContext
from conceptchess.concepts.registry import register, register_pair

FAMILY = "threats"


def hanging_pieces(ctx: PositionContext, color: chess.Color) -> int:
    """``color``'s pieces and pawns (king excluded) attacked by the enemy and defended by no own piece."""
    men = ctx.occ_co[color] & ~ctx.pieces[color][chess.KING]
    return (men & ctx.attacks[not color] & ~ctx.attacks[color]).bit_count()


def attacked_by_lower(ctx: PositionContext, color: chess.Color) -> int:
    """``color``'s pieces attacked by an enemy piece of lower value (P=1 < N=B=3 < R=5 < Q=9; king not an attacker)."""
    own, by = ctx.pieces[color], ctx.attacks_by[not color]
    minors = own[chess.KNIGHT] | own[chess.BISHOP]
    p = by[chess.PAWN]
    nb = by[chess.KNIGHT] | by[chess.BISHOP]
    r = by[chess.ROOK]
    return ((minors & p) | (own[chess.ROOK] & (p | nb)) | (own[chess.QUEEN] & (p | nb | r))).bit_count()


register("in_check", "The side to move is in check", "binary", "us", FAMILY, lambda ctx: int(ctx.board.is_check()))
register("us_has_mate_in_1", "The side to move has a move that checkmates", "binary", "us", FAMILY,
         lambda ctx: int(ctx.side(ctx.us).has_mate))
register("them_threatens_mate", "The opponent would have a checkmating move if it were its turn (the side to move passing)",
         "binary", "them", FAMILY, lambda ctx: int(ctx.side(ctx.them).has_mate))
register_pair("hanging_pieces", "number of {side}'s pieces and pawns (not the king) attacked by {other} and not defended",
              "scalar", FAMILY, hanging_pieces, dtype="int16")
register_pair("attacked_by_lower", "number of {side}'s pieces attacked by a piece of {other} of lower value (P=1 < N=B=3 < R=5 < Q=9)",
              "scalar", FAMILY, attacked_by_lower, dtype="int16")
register_pair("can_capture_queen", "{side} has a legal move capturing a queen of {other}{passed}",
              "binary", FAMILY, lambda ctx, c: int(ctx.side(c).captures_queen))
