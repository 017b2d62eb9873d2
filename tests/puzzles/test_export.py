"""PGN export: every puzzle reads back with python-chess (FEN, tags, solution intact); blinded sheets."""

from __future__ import annotations

from dataclasses import fields, replace

import chess
import chess.pgn
import pytest

from conceptchess.errors import ConceptChessError
from conceptchess.export import PROVENANCE_TAGS, default_path, export_collection, read_pgn_puzzles
from conceptchess.puzzles.records import PuzzleRecord, add_to_collection, blind_order, collection_puzzles, update_puzzle
from conceptchess.store.puzzles import Puzzle
from tests.helpers import cli, imported_db, mined


@pytest.fixture
def db(tmp_path):
    db = imported_db(tmp_path, "mixed")
    with db.begin() as s:
        add_to_collection(s, "mixed", [mined(0), mined(1), mined(2, "control-random", "random-fork-dir-seed0"),
                                       mined(3, "control-human", "us_forks_available")])
    return db


def test_round_trip(db, tmp_path):
    res = export_collection(db, "mixed", tmp_path / "out" / "mixed.pgn")
    games = read_pgn_puzzles(res.path)
    with db.session() as s:
        puzzles = collection_puzzles(s, "mixed")
    assert len(games) == len(puzzles) == res.puzzles == 11
    for g, p in zip(games, puzzles, strict=True):
        h = g.headers
        assert h["SetUp"] == "1" and h["FEN"] == p.fen and g.board().fen() == p.fen
        assert h["Event"] == "mixed" and h["PuzzleId"] == p.id and h["Kind"] == p.kind
        assert set(PROVENANCE_TAGS) <= set(h)
        assert tuple(m.uci() for m in g.mainline_moves()) == p.solution
        assert h["Themes"] == " ".join(p.themes)
        assert not g.errors
        if p.kind != "imported":
            assert h["Concept"] == p.concept and h["Network"] == "ab" * 32 and h["Checkpoint"] == "cc-6x32@178"
            assert h["Tap"] == "block5" and float(h["ConceptScore"]) == pytest.approx(p.concept_score)
            assert float(h["Difficulty"]) == pytest.approx(0.375)
        else:
            assert h["Rating"] == str(p.rating) and h["Concept"] == "lichess"
    mate_game = next(g for g, p in zip(games, puzzles, strict=True) if p.fen.startswith("7k/3pp1pp"))
    first = mate_game.next()
    assert "Also accepted: Rb8#" in first.comment and "Checkmate." in first.comment
    assert "Network policy 0.42" in first.comment
    lichess_game = next(g for g in games if g.headers["PuzzleId"] == "cc0Fk")
    assert lichess_game.comment == "White to play. Last move: 21...h6."
    assert not list(res.path.parent.glob(".*.part"))


def test_a_stored_record_reads_back_the_same(db):
    """Records become rows only when stored; read back, each is the record it was (its stored time aside)."""
    assert {f.name for f in fields(PuzzleRecord)} == set(Puzzle.__table__.columns.keys())
    given = [mined(0), mined(1), mined(2, "control-random", "random-fork-dir-seed0"), mined(3, "control-human", "us_forks_available")]
    with db.session() as s:
        back = {p.id: p for p in collection_puzzles(s, "mixed")}
    for p in given:
        assert back[p.id].created_at is not None and replace(back[p.id], created_at=None) == p
        assert p.accepted_moves == tuple(tuple(a) for a in [[[], []], [[]], [["b1b8"]], [[], []]][given.index(p)])
    with db.begin() as s:
        update_puzzle(s, replace(given[0], difficulty=0.5, themes=("fork",)))
        with pytest.raises(ConceptChessError, match="stored with another position or solution"):
            update_puzzle(s, replace(given[0], solution=("b5a7",)))
    with db.session() as s:
        p = next(p for p in collection_puzzles(s, "mixed") if p.id == given[0].id)
    assert (p.difficulty, p.themes, p.concept_score) == (0.5, ("fork",), 3.25)


def test_blinded_export_hides_concepts_and_solutions(db, tmp_path):
    res = export_collection(db, "mixed", tmp_path / "blind.pgn", blind=True, seed=11)
    games = read_pgn_puzzles(res.path)
    with db.session() as s:
        ids = [p.id for p in collection_puzzles(s, "mixed")]
    assert [g.headers["PuzzleId"] for g in games] == blind_order(ids, 11) == res.order != ids
    for k, g in enumerate(games, start=1):
        assert not list(g.mainline_moves())
        assert not set(g.headers) & {"Concept", "Kind", "Network", "Checkpoint", "Tap", "ConceptScore", "Themes", "Difficulty",
                                     "Rating", "Source", "Verification"}
        assert g.headers["Site"] == "?" and g.headers["OrderSeed"] == "11" and g.headers["Round"] == str(k)
        assert "Last move" in g.comment or g.comment.endswith("to play.")
    again = export_collection(db, "mixed", tmp_path / "blind2.pgn", blind=True, seed=11)
    assert again.path.read_text() == res.path.read_text()
    drawn = export_collection(db, "mixed", tmp_path / "blind3.pgn", blind=True)
    assert drawn.seed is not None and [g.headers["PuzzleId"] for g in read_pgn_puzzles(drawn.path)] == blind_order(ids, drawn.seed)


def test_export_errors(db, tmp_path):
    with pytest.raises(ConceptChessError, match="no collection named 'nope'"):
        export_collection(db, "nope", tmp_path / "x.pgn")
    with pytest.raises(ConceptChessError, match="^seed orders a blinded export; add blind=True$"):
        export_collection(db, "mixed", tmp_path / "x.pgn", seed=3)
    assert default_path("my set", blind=True, seed=4).name == "my-set-blind-seed4.pgn"
    assert default_path("my set").parent.name == "puzzles"


def test_cli_export(db, tmp_path):
    env = {"CONCEPTCHESS_DB": db.url}
    out = tmp_path / "cli.pgn"
    r = cli("puzzles", "export", "--collection", "mixed", "--blind", "--seed", "5", "-o", str(out), env=env)
    assert r.exit_code == 0, r.stderr
    assert "blinded, order seed 5" in r.stdout
    with open(out) as f:
        assert chess.pgn.read_game(f).headers["OrderSeed"] == "5"
    r = cli("puzzles", "export", "--collection", "mixed", "--seed", "5", "-o", str(out), env=env)
    assert r.exit_code == 2 and r.stderr.strip() == "error: --seed orders a blinded export; add --blind"
    r = cli("puzzles", "list", "--collection", "mixed", env=env)
    assert r.exit_code == 0 and "cc0Fk" in r.stdout
    r = cli("puzzles", "list", env=env)
    assert r.exit_code == 0 and "mixed" in r.stdout and " 11 " in r.stdout
