"""King safety: attackers near the king, pawn shield, open files by the king, checks, castling.

The king zone is the king's square and its neighbours; the files near the king are its file and the
adjacent ones.

>>> from conceptchess.concepts import CONCEPTS
>>> CONCEPTS["us_pawn_shield"](chess.Board()), CONCEPTS["us_can_castle_kingside"](chess.Board())
(3, 1)
"""

from __future__ import annotations

import chess

from conceptchess.concepts.bitboards import BACK_RANK, KING_ZONE, NEAR_FILES, SHIELD, WING_LONG, WING_SHORT, count_files, file_fill
from conceptchess.concepts.context import PositionContext
from conceptchess.concepts.registry import register, register_pair

FAMILY = "king_safety"
WINGS = ("centre", "kingside", "queenside")


def king_zone_attackers(ctx: PositionContext, color: chess.Color) -> int:
    """Enemy pieces (king excluded) attacking at least one square of ``color``'s king zone."""
    zone = KING_ZONE[ctx.king(color)]
    return sum(1 for _, pt, a in ctx.piece_attacks[not color] if a & zone and pt != chess.KING)


def king_zone_attacked_squares(ctx: PositionContext, color: chess.Color) -> int:
    """Squares of ``color``'s king zone attacked by the enemy."""
    return (KING_ZONE[ctx.king(color)] & ctx.attacks[not color]).bit_count()


def pawn_shield(ctx: PositionContext, color: chess.Color) -> int:
    """Own pawns on the king's file and adjacent files, one or two ranks ahead of the king."""
    return (SHIELD[color][ctx.king(color)] & ctx.pieces[color][chess.PAWN]).bit_count()


def king_open_files(ctx: PositionContext, color: chess.Color) -> int:
    """Files near ``color``'s king with no pawns of either colour."""
    return count_files(NEAR_FILES[ctx.king(color) & 7] & ~file_fill(ctx.board.pawns))


def king_half_open_files(ctx: PositionContext, color: chess.Color) -> int:
    """Files near ``color``'s king without own pawns but with an enemy pawn."""
    own, enemy = ctx.pieces[color][chess.PAWN], ctx.pieces[not color][chess.PAWN]
    return count_files(NEAR_FILES[ctx.king(color) & 7] & ~file_fill(own) & file_fill(enemy))


def king_wing(ctx: PositionContext, color: chess.Color) -> int:
    """0 king on files d–f, 1 on g–h (kingside), 2 on a–c (queenside)."""
    k = chess.BB_SQUARES[ctx.king(color)]
    return 1 if k & WING_SHORT else 2 if k & WING_LONG else 0


def king_castled(ctx: PositionContext, color: chess.Color) -> int:
    """1 if ``color``'s king is on its back rank on files a–c or g–h (where castling puts it)."""
    k = chess.BB_SQUARES[ctx.king(color)]
    return int(bool(k & BACK_RANK[color] and k & (WING_SHORT | WING_LONG)))


def opposite_side_castled(ctx: PositionContext) -> int:
    """1 if both kings are castled (see ``king_castled``) on opposite wings."""
    if not (king_castled(ctx, chess.WHITE) and king_castled(ctx, chess.BLACK)):
        return 0
    return int(king_wing(ctx, chess.WHITE) != king_wing(ctx, chess.BLACK))


register_pair("king_zone_attackers", "number of {other}'s pieces (king excluded) attacking a square next to or on {side}'s king",
              "scalar", FAMILY, king_zone_attackers, dtype="int16")
register_pair("king_zone_attacked_squares", "number of squares on or next to {side}'s king attacked by {other}",
              "scalar", FAMILY, king_zone_attacked_squares, dtype="int16")
register_pair("pawn_shield", "{side}'s pawns on its king's file and adjacent files, one or two ranks in front of the king",
              "scalar", FAMILY, pawn_shield, dtype="int16")
register_pair("king_open_files", "files at or next to {side}'s king with no pawns at all", "scalar", FAMILY, king_open_files, dtype="int16")
register_pair("king_half_open_files", "files at or next to {side}'s king without {side}'s pawns but with {other}'s pawns",
              "scalar", FAMILY, king_half_open_files, dtype="int16")
register_pair("checks_available", "number of legal moves of {side}{passed} that give check{in_check_note}", "scalar", FAMILY, lambda ctx, c: ctx.side(c).checks, dtype="int16")
register_pair("king_wing", "where {side}'s king stands: centre (files d-f), kingside (g-h) or queenside (a-c)", "categorical", FAMILY,
              king_wing, categories=WINGS)
register_pair("king_castled", "{side}'s king is on its back rank on files a-c or g-h, where castling puts it", "binary", FAMILY, king_castled)
register("opposite_side_castled", "Both kings are castled (back rank, files a-c or g-h) on opposite wings", "binary", "both", FAMILY,
         opposite_side_castled)
register_pair("can_castle_kingside", "{side} still has the right to castle kingside", "binary", FAMILY,
              lambda ctx, c: int(ctx.board.has_kingside_castling_rights(c)))
register_pair("can_castle_queenside", "{side} still has the right to castle queenside", "binary", FAMILY,
              lambda ctx, c: int(ctx.board.has_queenside_castling_rights(c)))
