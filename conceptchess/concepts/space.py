"""Space and centre control.

Space follows Stockfish's idea in a simple, countable form: the side's "space area" is files c–f on
its own ranks 2–4; a square there counts when it holds no own pawn and no enemy pawn attacks it.

>>> from conceptchess.concepts import CONCEPTS
>>> b = chess.Board()
>>> CONCEPTS["us_space"](b), CONCEPTS["us_centre_control"](b), CONCEPTS["us_attacked_squares"](b)
(8, 0, 22)
"""

from __future__ import annotations

import chess

from conceptchess.concepts.bitboards import CENTRE, SPACE_AREA
from conceptchess.concepts.context import PositionContext
from conceptchess.concepts.registry import register_pair

FAMILY = "space"


def space(ctx: PositionContext, color: chess.Color) -> int:
    return (SPACE_AREA[color] & ~ctx.pieces[color][chess.PAWN] & ~ctx.attacks_by[not color][chess.PAWN]).bit_count()


def centre_control(ctx: PositionContext, color: chess.Color) -> int:
    return sum((a & CENTRE).bit_count() for _, _, a in ctx.piece_attacks[color])


register_pair("space", "squares on files c-f of {side}'s ranks 2-4 holding no {side} pawn and not attacked by a pawn of {other}",
              "scalar", FAMILY, space, dtype="int16")
register_pair("centre_control", "number of attacks by {side}'s pieces on d4, e4, d5 and e5 (one per attacking piece and square)",
              "scalar", FAMILY, centre_control, dtype="int16")
register_pair("centre_pawns", "number of {side}'s pawns on d4, e4, d5 and e5", "scalar", FAMILY,
              lambda ctx, c: (ctx.pieces[c][chess.PAWN] & CENTRE).bit_count(), dtype="int16")
register_pair("attacked_squares", "number of squares attacked by at least one of {side}'s pieces", "scalar", FAMILY,
              lambda ctx, c: ctx.attacks[c].bit_count(), dtype="int16")
