"""Tactics: pins, forks available, discovered attacks.

>>> from conceptchess.concepts import CONCEPTS
>>> pin = chess.Board("4k3/4r3/8/8/8/8/4N3/4K3 w - - 0 1")   # the e2 knight is pinned by the e7 rook
>>> CONCEPTS["us_pinned_pieces"](pin), CONCEPTS["them_pinned_pieces"](pin)
(1, 0)
"""

from __future__ import annotations

import chess

from conceptchess.concepts.bitboards import VALUES, line_snipers, single_blockers
from conceptchess.concepts.context import PositionContext
from conceptchess.concepts.registry import register_pair

FAMILY = "tactics"
_LINES = {
    chess.BISHOP: [chess.BB_DIAG_ATTACKS[s][0] for s in chess.SQUARES],
    chess.ROOK: [chess.BB_RANK_ATTACKS[s][0] | chess.BB_FILE_ATTACKS[s][0] for s in chess.SQUARES],
}
_WORTH_MORE = {pt: [et for et in chess.PIECE_TYPES if VALUES[et] > VALUES[pt]] for pt in chess.PIECE_TYPES}
_LINES[chess.QUEEN] = [_LINES[chess.BISHOP][s] | _LINES[chess.ROOK][s] for s in chess.SQUARES]


def pinned_pieces(ctx: PositionContext, color: chess.Color) -> int:
    """``color``'s pieces pinned to their own king (the only piece between it and an enemy slider on its line)."""
    k = ctx.king(color)
    return (single_blockers(ctx.board, k, line_snipers(ctx.board, k, not color)) & ctx.occ_co[color]).bit_count()


def discovered_attacks(ctx: PositionContext, color: chess.Color) -> int:
    """``color``'s pieces that alone block a line from an own slider to an enemy piece worth more than that slider.

    Moving such a piece off the line discovers the attack (a discovered check when the target is the king).
    """
    own, enemy_pieces, occ = ctx.occ_co[color], ctx.pieces[not color], ctx.occupied
    blockers = 0
    for pt in (chess.BISHOP, chess.ROOK, chess.QUEEN):
        sliders = ctx.pieces[color][pt]
        if not sliders:
            continue
        worth_more = 0
        for et in _WORTH_MORE[pt]:
            worth_more |= enemy_pieces[et]
        lines = _LINES[pt]
        for s in chess.scan_reversed(sliders):
            for t in chess.scan_reversed(worth_more & lines[s]):
                b = chess.between(s, t) & occ
                if b and not b & (b - 1) and b & own:
                    blockers |= b
    return blockers.bit_count()


register_pair("pinned_pieces", "number of {side}'s pieces pinned to its own king by a bishop, rook or queen of {other}",
              "scalar", FAMILY, pinned_pieces, dtype="int16")
register_pair("forks_available", "number of legal moves of {side}{passed} after which the moved piece attacks two or more pieces "
              "of {other} that are worth more than it or undefended", "scalar", FAMILY,
              lambda ctx, c: ctx.side(c).forks, dtype="int16")
register_pair("discovered_attacks", "number of {side}'s pieces that alone block a line from one of its bishops, rooks or queens "
              "to a piece of {other} worth more than that slider (king included)", "scalar", FAMILY, discovered_attacks, dtype="int16")
register_pair("discovered_check_available", "{side} has a legal move giving discovered check{passed}",
              "binary", FAMILY, lambda ctx, c: int(ctx.side(c).discovered_check))
