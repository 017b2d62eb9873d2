"""Pawn structure: passed, isolated, doubled, backward, connected passed and protected pawns, islands.

Definitions (for a pawn of colour c; "ahead" is towards the enemy back rank):
passed — no enemy pawn ahead on its own or an adjacent file; isolated — no own pawn on an adjacent
file; doubled — pawns beyond the first on a file; backward — not isolated, no own pawn on an
adjacent file level with or behind it, and the square in front is attacked or occupied by an enemy
pawn; connected passed — a passed pawn with a passed own pawn on an adjacent file; islands — groups
of adjacent files holding own pawns. All of them come from one pass over the side's pawns
(:func:`pawn_structure`, memoised per position).

>>> from conceptchess.concepts import CONCEPTS
>>> b = chess.Board("4k3/8/8/8/8/8/PP3P1P/4K3 w - - 0 1")   # a2 b2 f2 h2 against nothing
>>> CONCEPTS["us_passed_pawns"](b), CONCEPTS["us_isolated_pawns"](b), CONCEPTS["us_pawn_islands"](b)
(4, 2, 3)
"""

from __future__ import annotations

from typing import NamedTuple

import chess

from conceptchess.concepts.bitboards import ADJACENT_FILES, FRONT_SPAN, STOP, SUPPORT_SPAN, file_fill, relative_rank
from conceptchess.concepts.context import PositionContext
from conceptchess.concepts.registry import register_pair

FAMILY = "pawns"


class PawnStructure(NamedTuple):
    passed: int
    isolated: int
    doubled: int
    backward: int
    connected_passed: int
    protected: int
    islands: int
    most_advanced_passed: int  # relative rank 1–8, 0 if none


def pawn_structure(ctx: PositionContext, color: chess.Color) -> PawnStructure:
    """Every pawn-structure count of ``color`` (memoised per position).

    >>> from conceptchess.concepts.context import PositionContext
    >>> pawn_structure(PositionContext(chess.Board()), chess.WHITE).islands
    1
    """
    key = "pawns_white" if color else "pawns_black"
    try:
        return ctx._cache[key]
    except KeyError:
        pass
    own, enemy = ctx.pieces[color][chess.PAWN], ctx.pieces[not color][chess.PAWN]
    span, support, stop = FRONT_SPAN[color], SUPPORT_SPAN[color], STOP[color]
    blockers = ctx.attacks_by[not color][chess.PAWN] | enemy
    passed = 0
    isolated = backward = 0
    for s in chess.scan_reversed(own):
        if not span[s] & enemy:
            passed |= chess.BB_SQUARES[s]
        if not ADJACENT_FILES[s & 7] & own:
            isolated += 1
        elif not support[s] & own and stop[s] & blockers:
            backward += 1
    connected = sum(1 for s in chess.scan_reversed(passed) if ADJACENT_FILES[s & 7] & passed)
    most_advanced = 0
    if passed:
        # the most advanced passed pawn is the highest square for White, the lowest for Black
        most_advanced = relative_rank(color, chess.msb(passed) if color == chess.WHITE else chess.lsb(passed))
    files = file_fill(own) & chess.BB_RANK_1  # one bit per file holding a pawn
    doubled = own.bit_count() - files.bit_count()
    islands = (files & ~(files << 1)).bit_count()  # a file with pawns whose left neighbour has none starts an island
    out = PawnStructure(passed.bit_count(), isolated, doubled, backward, connected,
                        (own & ctx.attacks_by[color][chess.PAWN]).bit_count(), islands, most_advanced)
    ctx._cache[key] = out
    return out


def _field(i: int):
    return lambda ctx, c: pawn_structure(ctx, c)[i]


_DEFINITIONS = {
    "passed": "number of {side}'s passed pawns (no enemy pawn ahead on the same or an adjacent file)",
    "isolated": "number of {side}'s pawns with no own pawn on an adjacent file",
    "doubled": "number of {side}'s pawns beyond the first on each file (sum over files of pawns - 1)",
    "backward": "number of {side}'s non-isolated pawns with no own pawn on an adjacent file level or behind "
                "whose square ahead is attacked or occupied by an enemy pawn",
    "connected_passed": "number of {side}'s passed pawns with another passed own pawn on an adjacent file",
    "protected": "number of {side}'s pawns defended by an own pawn",
}
for _i, _f in enumerate(PawnStructure._fields[:6]):
    register_pair(f"{_f}_pawns", _DEFINITIONS[_f], "scalar", FAMILY, _field(_i), dtype="int16")
register_pair("pawn_islands", "number of groups of adjacent files holding {side}'s pawns", "scalar", FAMILY, _field(6), dtype="int16")
register_pair("most_advanced_passed_pawn", "rank (1-8, from {side}'s side) of {side}'s most advanced passed pawn; 0 if none",
              "scalar", FAMILY, _field(7), dtype="int16")
