"""Bitboard masks and small helpers shared by the concept families (built once, at import).

Everything here is derived from python-chess's own tables (``chess.BB_*``); masks are indexed
``[colour][square]`` where a direction matters ("ahead" means towards the opponent's back rank).

>>> import chess
>>> chess.SquareSet(FRONT_SPAN[chess.WHITE][chess.E6]) == chess.SquareSet([chess.D7, chess.E7, chess.F7, chess.D8, chess.E8, chess.F8])
True
>>> relative_rank(chess.BLACK, chess.E7)
2
"""

from __future__ import annotations

import chess

VALUES: dict[chess.PieceType, int] = {chess.PAWN: 1, chess.KNIGHT: 3, chess.BISHOP: 3, chess.ROOK: 5, chess.QUEEN: 9, chess.KING: 1000}
"""Conventional piece values in pawns (the king as "more than everything", for comparisons only)."""

PIECE_NAMES: dict[chess.PieceType, str] = {t: chess.piece_name(t) for t in chess.PIECE_TYPES}

CENTRE: int = chess.BB_CENTER  # d4 e4 d5 e5
WING_SHORT: int = chess.BB_FILE_G | chess.BB_FILE_H
WING_LONG: int = chess.BB_FILE_A | chess.BB_FILE_B | chess.BB_FILE_C
BACK_RANK: tuple[int, int] = (chess.BB_RANK_8, chess.BB_RANK_1)  # [BLACK], [WHITE]
SEVENTH_RANK: tuple[int, int] = (chess.BB_RANK_2, chess.BB_RANK_7)
MINOR_HOMES: tuple[int, int] = (
    chess.BB_B8 | chess.BB_C8 | chess.BB_F8 | chess.BB_G8,
    chess.BB_B1 | chess.BB_C1 | chess.BB_F1 | chess.BB_G1,
)
SPACE_AREA: tuple[int, int] = tuple(  # files c–f on the side's own ranks 2–4
    (chess.BB_FILE_C | chess.BB_FILE_D | chess.BB_FILE_E | chess.BB_FILE_F)
    & (chess.BB_RANK_7 | chess.BB_RANK_6 | chess.BB_RANK_5 if c == chess.BLACK else chess.BB_RANK_2 | chess.BB_RANK_3 | chess.BB_RANK_4)
    for c in (chess.BLACK, chess.WHITE)  # indexed by colour: [BLACK] = [0], [WHITE] = [1]
)


def relative_rank(color: chess.Color, square: chess.Square) -> int:
    """Rank 1–8 counted from ``color``'s own back rank."""
    r = chess.square_rank(square)
    return r + 1 if color == chess.WHITE else 8 - r


def _ranks(color: chess.Color, lo: int, hi: int) -> int:
    """Mask of relative ranks ``lo..hi`` (1–8) of ``color``; empty if ``lo > hi``."""
    bb = 0
    for rr in range(max(lo, 1), min(hi, 8) + 1):
        bb |= chess.BB_RANKS[rr - 1 if color == chess.WHITE else 8 - rr]
    return bb


def relative_ranks(color: chess.Color, lo: int, hi: int) -> int:
    """Public alias of the relative rank mask, e.g. ``relative_ranks(WHITE, 4, 6)``."""
    return _ranks(color, lo, hi)


ADJACENT_FILES: list[int] = [
    (chess.BB_FILES[f - 1] if f > 0 else 0) | (chess.BB_FILES[f + 1] if f < 7 else 0) for f in range(8)
]
NEAR_FILES: list[int] = [ADJACENT_FILES[f] | chess.BB_FILES[f] for f in range(8)]


def _table(fn) -> list[list[int]]:
    return [[fn(c, s) for s in chess.SQUARES] for c in (chess.BLACK, chess.WHITE)]


def _ahead(c: chess.Color, s: chess.Square) -> int:
    return _ranks(c, relative_rank(c, s) + 1, 8)


FRONT_SPAN = _table(lambda c, s: _ahead(c, s) & NEAR_FILES[chess.square_file(s)])
"""Same and adjacent files, strictly ahead: a pawn is passed when no enemy pawn stands here."""
OUTPOST_SPAN = _table(lambda c, s: _ahead(c, s) & ADJACENT_FILES[chess.square_file(s)])
"""Adjacent files, strictly ahead: the squares enemy pawns would need to attack ``s`` one day."""
SUPPORT_SPAN = _table(lambda c, s: _ranks(c, 1, relative_rank(c, s)) & ADJACENT_FILES[chess.square_file(s)])
"""Adjacent files, same rank or behind: where a friendly pawn must stand to (eventually) support ``s``."""
SHIELD = _table(lambda c, s: _ranks(c, relative_rank(c, s) + 1, relative_rank(c, s) + 2) & NEAR_FILES[chess.square_file(s)])
"""The 3×2 block in front of a king on ``s`` (its file ± 1, one and two ranks ahead)."""
STOP = _table(lambda c, s: chess.BB_SQUARES[s + 8] if c == chess.WHITE and s < 56 else chess.BB_SQUARES[s - 8] if c == chess.BLACK and s >= 8 else 0)
"""The square directly ahead of ``s``."""
KING_ZONE: list[int] = [chess.BB_KING_ATTACKS[s] | chess.BB_SQUARES[s] for s in chess.SQUARES]
"""A king's square and its neighbours."""


def file_fill(bb: int) -> int:
    """The full files that hold at least one square of ``bb``.

    >>> file_fill(chess.BB_E4 | chess.BB_A7) == chess.BB_FILE_A | chess.BB_FILE_E
    True
    """
    bb |= bb << 8
    bb |= bb << 16
    bb |= bb << 32
    bb &= chess.BB_ALL
    bb |= bb >> 8
    bb |= bb >> 16
    bb |= bb >> 32
    return bb


def count_files(file_mask: int) -> int:
    """Number of files in a union of full files (as made by :func:`file_fill`)."""
    return (file_mask & chess.BB_RANK_1).bit_count()


def file_occupancy(bb: int) -> int:
    """An 8-bit mask of the files (bit 0 = a-file) that hold at least one square of ``bb``."""
    return file_fill(bb) & chess.BB_RANK_1


def attacks_from(piece_type: chess.PieceType, color: chess.Color, square: chess.Square, occupied: int) -> int:
    """Squares a ``piece_type`` of ``color`` on ``square`` attacks given ``occupied`` (python-chess tables).

    Used to ask "what would this piece attack after moving" without pushing the move.

    >>> chess.SquareSet(attacks_from(chess.ROOK, chess.WHITE, chess.A1, chess.BB_A3)) == chess.SquareSet([chess.A2, chess.A3, chess.B1, chess.C1, chess.D1, chess.E1, chess.F1, chess.G1, chess.H1])
    True
    """
    if piece_type == chess.PAWN:
        return chess.BB_PAWN_ATTACKS[color][square]
    if piece_type == chess.KNIGHT:
        return chess.BB_KNIGHT_ATTACKS[square]
    if piece_type == chess.KING:
        return chess.BB_KING_ATTACKS[square]
    a = 0
    if piece_type in (chess.BISHOP, chess.QUEEN):
        a = chess.BB_DIAG_ATTACKS[square][chess.BB_DIAG_MASKS[square] & occupied]
    if piece_type in (chess.ROOK, chess.QUEEN):
        a |= chess.BB_RANK_ATTACKS[square][chess.BB_RANK_MASKS[square] & occupied]
        a |= chess.BB_FILE_ATTACKS[square][chess.BB_FILE_MASKS[square] & occupied]
    return a


def line_snipers(board: chess.Board, target: chess.Square, color: chess.Color) -> int:
    """Sliders of ``color`` on an (empty-board) line with ``target`` that they move along."""
    rq = (board.rooks | board.queens) & board.occupied_co[color]
    bq = (board.bishops | board.queens) & board.occupied_co[color]
    return ((chess.BB_RANK_ATTACKS[target][0] | chess.BB_FILE_ATTACKS[target][0]) & rq) | (chess.BB_DIAG_ATTACKS[target][0] & bq)


def single_blockers(board: chess.Board, target: chess.Square, snipers: int) -> int:
    """Pieces (either colour) that are the only piece between ``target`` and one of ``snipers``.

    With ``snipers`` the enemy sliders aimed at a king these are the pin candidates (python-chess's
    ``Board._slider_blockers`` generalised to any target and sniper set).
    """
    out = 0
    occ = board.occupied
    for s in chess.scan_reversed(snipers):
        b = chess.between(target, s) & occ
        if b and not b & (b - 1):
            out |= b
    return out
