"""Cross-check the fast, shared-work concepts against slow reference definitions on random positions.

The fast path (``PositionContext``) finds checks, mates, forks and discovered checks with bitboard
filters instead of pushing every move; here every move is pushed and looked at. Positions come from
seeded random games, which are rich in checks, mates, pins and hanging pieces.
"""

from __future__ import annotations

import chess
import pytest

from conceptchess.concepts import label
from conceptchess.concepts.bitboards import VALUES
from tests.helpers import random_positions

POSITIONS = random_positions(150)
COLS = label(POSITIONS)


def _mover_board(board: chess.Board, us: bool) -> chess.Board:
    b = board.copy(stack=False)
    if not us:
        b.push(chess.Move.null())
    return b


def reference(board: chess.Board, us: bool) -> dict[str, int]:
    """Slow definitions: push every legal move (after a null move for the opponent)."""
    b = _mover_board(board, us)
    color = b.turn
    enemy_king = b.king(not color)
    moves = [m for m in b.legal_moves if m.to_square != enemy_king]
    undefended = {s for s in chess.SquareSet(b.occupied_co[not color])
                  if not board.is_attacked_by(not color, s) and b.piece_type_at(s) != chess.KING}
    checks = mate = forks = disc = 0
    for m in moves:
        mover = m.promotion or b.piece_type_at(m.from_square)
        after = b.copy(stack=False)
        after.push(m)
        checkers = after.checkers()
        checks += bool(checkers)
        disc = disc or any(s != m.to_square for s in checkers)
        mate = mate or after.is_checkmate()
        hit = [s for s in after.attacks(m.to_square)
               if after.color_at(s) == (not color) and (VALUES[after.piece_type_at(s)] > VALUES[mover] or s in undefended)]
        forks += len(hit) >= 2
    queen_capture = any(b.piece_type_at(m.to_square) == chess.QUEEN for m in moves)
    by_type = {t: sum(1 for m in moves if b.piece_type_at(m.from_square) == t) for t in chess.PIECE_TYPES}
    own = board.occupied_co[color]
    return {
        "mobility": len(moves), "checks_available": checks, "forks_available": forks,
        "can_capture_queen": int(queen_capture), "discovered_check_available": int(disc), "mate": int(mate),
        **{f"{chess.piece_name(t)}_mobility": n for t, n in by_type.items()},
        "pinned_pieces": sum(1 for s in chess.SquareSet(own) if board.is_pinned(color, s)),
        "hanging_pieces": sum(1 for s in chess.SquareSet(own & ~board.kings)
                              if board.is_attacked_by(not color, s) and not board.is_attacked_by(color, s)),
        "attacked_by_lower": sum(1 for s in chess.SquareSet(own & ~board.kings & ~board.pawns)
                                 if any(board.piece_type_at(a) != chess.KING and VALUES[board.piece_type_at(a)] < VALUES[board.piece_type_at(s)]
                                        for a in board.attackers(not color, s))),
    }


@pytest.mark.parametrize("us", [True, False], ids=["us", "them"])
def test_against_reference(us: bool) -> None:
    prefix = "us_" if us else "them_"
    mismatches = []
    for i, board in enumerate(POSITIONS):
        ref = reference(board, us)
        for key, want in ref.items():
            if key == "mate":
                name = "us_has_mate_in_1" if us else "them_threatens_mate"
            else:
                name = prefix + key
            if key in ("checks_available", "discovered_check_available") and not us and board.is_check():
                continue  # "gives check" is ill-defined when the passer is already in check; hand-tested instead
            got = COLS[name][i].item()
            if got != want:
                mismatches.append(f"{board.fen()} {name}: {got} != reference {want}")
    assert not mismatches, "\n".join(mismatches[:10])


def test_reference_positions_are_interesting() -> None:
    assert sum(COLS["in_check"]) >= 3
    assert sum(COLS["us_has_mate_in_1"]) + sum(COLS["them_threatens_mate"]) >= 2
    assert sum(COLS["us_forks_available"] > 0) >= 20
    assert sum(COLS["us_pinned_pieces"] > 0) + sum(COLS["them_pinned_pieces"] > 0) >= 5
