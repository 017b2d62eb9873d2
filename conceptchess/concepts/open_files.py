"""Files and ranks: open and half-open files, rooks on them, rooks on the 7th rank.

A file is open when it holds no pawn; it is half-open for a side when it holds no pawn of that side
but at least one enemy pawn.

>>> from conceptchess.concepts import CONCEPTS
>>> b = chess.Board("4k3/pp4pp/8/8/8/8/PPP3PP/3RK3 w - - 0 1")   # d, e, f open; c half-open for Black
>>> CONCEPTS["open_files"](b), CONCEPTS["us_rooks_on_open_files"](b), CONCEPTS["them_half_open_files"](b)
(3, 1, 1)
"""

from __future__ import annotations

import chess

from conceptchess.concepts.bitboards import SEVENTH_RANK, count_files, file_fill
from conceptchess.concepts.context import PositionContext
from conceptchess.concepts.registry import register, register_pair

FAMILY = "files"


def open_file_mask(ctx: PositionContext) -> int:
    """Union of the files holding no pawn."""
    return ~file_fill(ctx.board.pawns) & chess.BB_ALL


def half_open_file_mask(ctx: PositionContext, color: chess.Color) -> int:
    """Union of the files with no pawn of ``color`` and at least one enemy pawn."""
    return ~file_fill(ctx.pieces[color][chess.PAWN]) & file_fill(ctx.pieces[not color][chess.PAWN])


register("open_files", "Number of files with no pawns", "scalar", "both", FAMILY, lambda ctx: count_files(open_file_mask(ctx)), dtype="int16")
register_pair("half_open_files", "number of files without {side}'s pawns but with a pawn of {other}", "scalar", FAMILY,
              lambda ctx, c: count_files(half_open_file_mask(ctx, c)), dtype="int16")
register_pair("rooks_on_open_files", "number of {side}'s rooks on files with no pawns", "scalar", FAMILY,
              lambda ctx, c: (ctx.pieces[c][chess.ROOK] & open_file_mask(ctx)).bit_count(), dtype="int16")
register_pair("rooks_on_half_open_files", "number of {side}'s rooks on files without {side}'s pawns but with a pawn of {other}",
              "scalar", FAMILY, lambda ctx, c: (ctx.pieces[c][chess.ROOK] & half_open_file_mask(ctx, c)).bit_count(), dtype="int16")
register_pair("rooks_on_seventh", "number of {side}'s rooks on its 7th rank (the opponent's second rank)", "scalar", FAMILY,
              lambda ctx, c: (ctx.pieces[c][chess.ROOK] & SEVENTH_RANK[c]).bit_count(), dtype="int16")
