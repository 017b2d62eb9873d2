"""Material: piece counts, material (P=1, N=B=3, R=5, Q=9), difference, bishop pair, imbalance.

>>> from conceptchess.concepts import CONCEPTS
>>> board = chess.Board("4k3/8/8/8/8/8/8/R3K3 b - - 0 1")   # White has an extra rook, Black to move
>>> CONCEPTS["material_diff"](board), CONCEPTS["them_material"](board)
(-5, 5)
"""

from __future__ import annotations

import chess

from conceptchess.concepts.context import PositionContext
from conceptchess.concepts.registry import register, register_pair

FAMILY = "material"
_MEN = (chess.PAWN, chess.KNIGHT, chess.BISHOP, chess.ROOK, chess.QUEEN)


def count(ctx: PositionContext, color: chess.Color, piece_type: chess.PieceType) -> int:
    """Number of ``color``'s pieces of ``piece_type``."""
    return ctx.pieces[color][piece_type].bit_count()


def material(ctx: PositionContext, color: chess.Color) -> int:
    """``color``'s material in pawns: P=1, N=3, B=3, R=5, Q=9 (king not counted)."""
    p = ctx.pieces[color]
    return p[1].bit_count() + 3 * (p[2].bit_count() + p[3].bit_count()) + 5 * p[4].bit_count() + 9 * p[5].bit_count()


def non_pawn_material(ctx: PositionContext, color: chess.Color) -> int:
    """``color``'s material without pawns (N=B=3, R=5, Q=9)."""
    return material(ctx, color) - ctx.pieces[color][chess.PAWN].bit_count()


def material_diff(ctx: PositionContext) -> int:
    """Side to move's material minus the opponent's (P=1, N=B=3, R=5, Q=9)."""
    return material(ctx, ctx.us) - material(ctx, ctx.them)


def bishop_pair(ctx: PositionContext, color: chess.Color) -> int:
    """1 if ``color`` has bishops on both square colours."""
    b = ctx.pieces[color][chess.BISHOP]
    return int(bool(b & chess.BB_LIGHT_SQUARES) and bool(b & chess.BB_DARK_SQUARES))


def material_imbalance(ctx: PositionContext) -> int:
    """1 if each side has more of some piece type (N, B, R, Q) than the other (e.g. R vs B+N, B vs N)."""
    w_more = b_more = False
    for w, b in zip(ctx.pieces[chess.WHITE][2:6], ctx.pieces[chess.BLACK][2:6], strict=True):  # N B R Q
        nw, nb = w.bit_count(), b.bit_count()
        w_more = w_more or nw > nb
        b_more = b_more or nb > nw
    return int(w_more and b_more)


for _t in _MEN:
    _name = chess.piece_name(_t)
    register_pair(f"{_name}s", f"number of {{side}}'s {_name}s", "scalar", FAMILY,
                  lambda ctx, c, t=_t: count(ctx, c, t), dtype="int16")
register_pair("material", "{side}'s material in pawns (P=1, N=3, B=3, R=5, Q=9; king excluded)", "scalar", FAMILY, material, dtype="int16")
register_pair("non_pawn_material", "{side}'s material without pawns (N=3, B=3, R=5, Q=9)", "scalar", FAMILY, non_pawn_material, dtype="int16")
register("material_diff", "Material of the side to move minus the opponent's (P=1, N=3, B=3, R=5, Q=9)", "scalar", "us", FAMILY,
         material_diff, dtype="int16")
register_pair("bishop_pair", "{side} has bishops on both light and dark squares", "binary", FAMILY, bishop_pair)
register("material_imbalance", "Each side has more of some piece type (N, B, R, Q) than the other (e.g. rook vs two minors, bishop vs knight)",
         "binary", "both", FAMILY, material_imbalance)
