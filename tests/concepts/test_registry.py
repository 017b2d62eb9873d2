"""The concept registry: names, frames, types, must-have concepts, selection and the label() contract."""

from __future__ import annotations

import re

import chess
import numpy as np
import pytest

from conceptchess.concepts import CONCEPTS, Concept, ConceptUnavailableError, UnknownConceptError, label, select
from conceptchess.concepts.registry import FRAMES, TYPES, UNPREFIXED_RELATIVE, register
from conceptchess.errors import ArgumentError, ConceptChessError, PositionError

PY = {n: c for n, c in CONCEPTS.items() if c.source == "python-chess"}


def test_at_least_sixty_python_chess_concepts() -> None:
    assert len(PY) >= 60


def test_every_concept_is_well_formed() -> None:
    for name, c in CONCEPTS.items():
        assert name == c.name and re.fullmatch(r"[a-z][a-z0-9_]*", name), name
        assert c.type in TYPES and c.frame in FRAMES, name
        assert c.definition and "\n" not in c.definition and c.definition[0].isupper(), name
        assert callable(c.function)
        assert np.dtype(c.dtype).kind in "iuf", name
        assert bool(c.categories) == (c.type == "categorical"), name
        if c.source == "python-chess":
            prefix = name.split("_")[0]
            if prefix in ("us", "them", "white", "black"):
                assert c.frame == prefix, name
            else:
                assert c.frame == "both" or name in UNPREFIXED_RELATIVE, name
        else:
            assert name.startswith("sf_") and c.frame in ("white", "black") and c.dtype == "float64"


@pytest.mark.parametrize("name,type_,frame", [
    ("in_check", "binary", "us"), ("material_diff", "scalar", "us"), ("us_has_mate_in_1", "binary", "us"),
    ("them_threatens_mate", "binary", "them"), ("us_mobility", "scalar", "us"), ("them_mobility", "scalar", "them"),
    ("us_knight_mobility", "scalar", "us"), ("them_queen_mobility", "scalar", "them"), ("us_hanging_pieces", "scalar", "us"),
    ("us_bishop_pair", "binary", "us"), ("game_phase", "categorical", "both"), ("white_to_move", "binary", "white"),
    ("sf_mobility_total_mg", "scalar", "white"), ("sf_king_safety_white_eg", "scalar", "white"),
    ("sf_king_safety_black_eg", "scalar", "black"), ("sf_final_eval", "scalar", "white"),
])
def test_must_have_concepts(name: str, type_: str, frame: str) -> None:
    c = CONCEPTS[name]
    assert (c.type, c.frame) == (type_, frame)


def test_families_cover_mcgrath_list() -> None:
    families = {c.family for c in CONCEPTS.values()}
    assert {"material", "mobility", "king_safety", "threats", "tactics", "pawns", "space", "development", "files",
            "outposts", "phase", "stockfish"} <= families


def test_frame_must_match_prefix() -> None:
    with pytest.raises(ValueError, match="prefix"):
        Concept("x_count", "X", "scalar", "us", "test", lambda ctx: 0)
    with pytest.raises(ValueError, match="registered twice"):
        register("in_check", "again", "binary", "us", "threats", lambda ctx: 0)


def test_select() -> None:
    sel = select(["in_check", " material_diff", "in_check", "sf_total_total_mg"])
    assert sel.names == ["in_check", "material_diff", "sf_total_total_mg"]
    assert [c.name for c in sel.stockfish] == ["sf_total_total_mg"]
    assert all(c.source == "python-chess" for c in select().python_chess) and not select().stockfish
    assert len(select(stockfish=True).stockfish) == 70
    both = select(["sf_final_eval", "in_check"], stockfish=True).names
    assert both[:2] == ["sf_final_eval", "in_check"] and len(both) == 71
    with pytest.raises(UnknownConceptError, match="'nope'"):
        select(["in_check", "nope"])
    with pytest.raises(ArgumentError, match="needs Stockfish, but stockfish=False was given") as refused:
        select(["sf_total_total_mg"], stockfish=False)
    assert refused.value.naming({"stockfish": "--no-stockfish"}).endswith("but --no-stockfish was given")
    assert issubclass(UnknownConceptError, ConceptChessError) and issubclass(ConceptUnavailableError, ConceptChessError)


def test_every_unknown_name_is_reported_with_the_closest_names() -> None:
    with pytest.raises(UnknownConceptError) as e:
        select("in_chek, material_diff, them_pawnz, qqqqq, in_chek")
    message = str(e.value)
    assert message.startswith("unknown concepts 'in_chek' (did you mean in_check?), 'them_pawnz' (did you mean them_pawns")
    assert message.endswith(", 'qqqqq' (see `conceptchess concepts list`)") and message.count("in_chek") == 1
    assert "\n" not in message


def test_label_contract() -> None:
    board = chess.Board()
    for uci in ["e2e4", "e7e5", "g1f3"]:
        board.push_uci(uci)
    before = (board.fen(), list(board.move_stack))
    cols = label([board, chess.Board()], ["them_mobility", "in_check", "material_phase", "us_king_wing"])
    assert list(cols) == ["them_mobility", "in_check", "material_phase", "us_king_wing"]
    assert [cols[n].dtype.name for n in cols] == ["int16", "int8", "float32", "int8"]
    # White after 1.e4 e5 2.Nf3 if Black passed: 12 pawn, Nb1 2, Nf3 5, Bf1 5, Qe2, Ke2, Rg1 = 27 moves
    assert cols["them_mobility"].tolist() == [27, 20]
    assert (board.fen(), list(board.move_stack)) == before
    empty = label([], ["in_check", "material_phase"])
    assert empty["in_check"].shape == (0,) and empty["material_phase"].dtype.name == "float32"


def test_label_all_matches_single_calls() -> None:
    boards = [chess.Board(), chess.Board("r3k3/8/8/1N6/8/8/8/4K3 w - - 0 1"), chess.Board("4k3/8/8/3q4/8/8/8/3RK3 b - - 0 1")]
    cols = label(boards)
    assert list(cols) == list(PY)
    for name, c in PY.items():
        assert cols[name].tolist() == pytest.approx([c(b) for b in boards]), name


def test_label_rejects_impossible_positions() -> None:
    with pytest.raises(PositionError, match="position 1: white must have exactly one king"):
        label([chess.Board(), chess.Board("4k3/8/8/8/8/8/8/8 w - - 0 1")], ["in_check"])
    with pytest.raises(PositionError, match="side not to move is in check"):
        label([chess.Board("4k3/8/8/8/8/8/8/4RK2 w - - 0 1")], ["in_check"])
