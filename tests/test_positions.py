"""Positions: boards of many position specs at once, equal to python-chess replaying each alone."""

from __future__ import annotations

import chess
import pytest

from conceptchess.errors import PositionError
from conceptchess.positions import PositionSpec, boards_of

ITALIAN = ["e2e4", "e7e5", "g1f3", "b8c6", "f1c4", "f8c5"]


def test_boards_of_equals_python_chess_board_by_board():
    specs = [PositionSpec(t, None, ITALIAN[:t]) for t in range(len(ITALIAN) + 1)]
    specs.append(PositionSpec("castles", None, [*ITALIAN, "e1h1"]))  # king takes rook: the fast replay declines it
    specs.append(PositionSpec("fen", "4k3/8/8/8/8/8/4P3/4K3 w - - 0 1", ["e2e4", "e8d7"]))
    boards = boards_of(specs)
    assert [b.fen() for b in boards] == [s.board().fen() for s in specs]
    assert all(b.move_stack == [] for b in boards)
    assert boards[len(ITALIAN) + 1].piece_at(chess.G1) == chess.Piece(chess.KING, chess.WHITE)


def test_boards_of_checks_each_board_in_order_and_names_the_position():
    specs = [PositionSpec("a", None, ["e2e4"]), PositionSpec("b", None, ["e2e4", "e2e4"]), PositionSpec("c", None, [])]
    with pytest.raises(PositionError, match=r"^data\.jsonl: id=b: move 2 'e2e4' is illegal"):
        boards_of(specs, "data.jsonl: ")
    checked = []
    with pytest.raises(PositionError, match="^x: id=a: refused$"):
        boards_of(specs, "x: ", check=lambda board, where: checked.append(where) or _refuse(where))
    assert checked == ["x: id=a"]  # the first board is vetted before the second is replayed alone


def _refuse(where: str) -> None:
    raise PositionError(f"{where}: refused")
