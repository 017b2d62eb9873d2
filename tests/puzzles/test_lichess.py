"""Lichess puzzle CSV import (read by header name, first move is the opponent's) and `puzzles verify`."""

from __future__ import annotations

import csv
import shutil

import chess
import pytest
from sqlalchemy import func, select

from conceptchess.errors import ConceptChessError
from conceptchess.puzzles.lichess import import_lichess, read_lichess_csv
from conceptchess.puzzles.records import collection_puzzles
from conceptchess.store.puzzles import CollectionPuzzle, Puzzle
from tests.helpers import LICHESS_CSV, NODES, cli, imported_db, sqlite_db, stockfish_or_skip

HEADER = "PuzzleId,FEN,Moves,Rating,RatingDeviation,Popularity,NbPlays,Themes,GameUrl,OpeningTags\n"


def test_rows_become_puzzles_shown_after_the_opponents_move():
    ps = {p.id: p for p in read_lichess_csv(LICHESS_CSV)}
    assert len(ps) == 7
    p = ps["cc0Fk"]
    start = chess.Board("r3k3/pp3ppp/8/1N6/8/8/PPP2PPP/6K1 b - - 0 21")
    start.push_uci("h7h6")
    assert p.fen == start.fen() and p.start_fen.startswith("r3k3/pp3ppp/") and p.leading_moves == ("h7h6",)
    assert p.solution == ("b5c7", "e8d7", "c7a8") and p.side_to_solve == "white"
    assert (p.rating, p.rating_deviation, p.popularity, p.nb_plays) == (1105, 80, 90, 903)
    assert p.source == "lichess" and p.kind == "imported" and p.source_game.endswith("#41")
    assert "fork" in p.source_themes and "fork" in p.themes
    assert ps["cc0Sm"].opening_tags == ("Italian_Game", "Italian_Game_Other_variations")
    # our geometric tags agree with the themes the rows carry, apart from the score-based ones
    for q in ps.values():
        mine = set(q.themes) - {"crushing", "advantage", "equality"}
        theirs = set(q.source_themes) - {"crushing", "advantage", "equality"}
        assert theirs <= mine, (q.id, mine, theirs)


def test_columns_are_read_by_name(tmp_path):
    rows = list(csv.DictReader(open(LICHESS_CSV)))
    f = tmp_path / "shuffled.csv"
    cols = ["Moves", "GameUrl", "PuzzleId", "FEN"]
    with open(f, "w", newline="") as out:
        w = csv.DictWriter(out, cols, extrasaction="ignore")
        w.writeheader()
        w.writerows(rows)
    ps = read_lichess_csv(f)
    assert [p.id for p in ps] == [r["PuzzleId"] for r in rows] and ps[0].rating is None


def test_zstd_files(tmp_path):
    import zstandard

    f = tmp_path / "p.csv.zst"
    f.write_bytes(zstandard.ZstdCompressor().compress(LICHESS_CSV.read_bytes()))
    assert len(read_lichess_csv(f)) == 7


def test_import_is_idempotent_and_atomic(tmp_path):
    db = imported_db(tmp_path)
    assert import_lichess(db, LICHESS_CSV, "lichess") == (0, 7)
    assert import_lichess(db, LICHESS_CSV, "second") == (7, 0)  # the same puzzles in another collection
    with db.session() as s:
        assert s.scalar(select(func.count()).select_from(Puzzle)) == 7
        assert [p.id for p in collection_puzzles(s, "lichess")][:2] == ["cc0Bk", "cc0Fk"]
    bad = tmp_path / "bad.csv"
    bad.write_text(HEADER + "zz1,4k3/8/8/8/8/8/8/R3K3 b - - 0 1,e8d8 a1a8,900,80,90,10,,,\n"
                            "zz2,4k3/8/8/8/8/8/8/R3K3 b - - 0 1,e8d8 a1a9,900,80,90,10,,,\n")
    with pytest.raises(ConceptChessError, match=r"bad.csv:3: move 2 'a1a9' is not UCI"):
        import_lichess(db, bad, "lichess")
    with db.session() as s:  # the good first row was not stored either
        assert s.get(Puzzle, "zz1") is None
        assert s.scalar(select(func.count()).select_from(CollectionPuzzle)) == 14


@pytest.mark.parametrize("body, message", [
    ("x,8/8/8/8/8/8/8/8 w - - 0 1,e2e4 e7e5,1,1,1,1,,,\n", "illegal position"),
    ("x,not a fen,e2e4 e7e5,1,1,1,1,,,\n", "malformed FEN"),
    ("x,4k3/8/8/8/8/8/8/R3K3 b - - 0 1,e8d8,1,1,1,1,,,\n", "at least one solver move"),
    ("x,4k3/8/8/8/8/8/8/R3K3 b - - 0 1,e8d8 a1a8 d8c7,1,1,1,1,,,\n", "even count"),
    ("x,4k3/8/8/8/8/8/8/R3K3 b - - 0 1,e8d8 a1a4,high,1,1,1,,,\n", "Rating 'high' is not a whole number"),
    ("x y,4k3/8/8/8/8/8/8/R3K3 b - - 0 1,e8d8 a1a4,1,1,1,1,,,\n", "PuzzleId"),
    ("x,4k3/8/8/8/8/8/8/R3K3 b - - 0 1,e8d8 a1a4,1,1,1,1,,,\nx,4k3/8/8/8/8/8/8/R3K3 b - - 0 1,e8d8 a1a4,1,1,1,1,,,\n", "appears twice"),
])
def test_bad_rows_are_refused_with_file_and_line(tmp_path, body, message):
    f = tmp_path / "bad.csv"
    f.write_text(HEADER + body)
    with pytest.raises(ConceptChessError, match=message) as e:
        read_lichess_csv(f)
    assert "bad.csv:" in str(e.value) and "\n" not in str(e.value)


def test_a_file_without_the_header_is_refused(tmp_path):
    f = tmp_path / "raw.csv"
    f.write_text("".join(LICHESS_CSV.read_text().splitlines(keepends=True)[1:]))
    with pytest.raises(ConceptChessError, match="no header row naming PuzzleId, FEN, Moves"):
        read_lichess_csv(f)


def test_cli_import_and_verify(tmp_path):
    stockfish_or_skip()
    env = {"CONCEPTCHESS_DB": f"sqlite:///{tmp_path / 'cli.sqlite'}"}
    r = cli("puzzles", "import", str(LICHESS_CSV), "--collection", "lichess", env=env)
    assert r.exit_code == 0, r.stderr
    assert "7 puzzle(s) added" in r.stdout
    out = tmp_path / "verdicts.csv"
    r = cli("puzzles", "verify", "--collection", "lichess", "--nodes", str(NODES), "--output", str(out), env=env)
    assert r.exit_code == 0, r.stderr
    assert "6 accepted, 1 rejected of 7" in r.stdout and "cc0Tw" in r.stdout
    rows = list(csv.DictReader(open(out)))
    assert list(rows[0]) == ["puzzle_id", "accepted", "reason"] and len(rows) == 7
    by_id = {r["puzzle_id"]: r for r in rows}
    assert by_id["cc0Tw"]["accepted"] == "no" and "no unique move" in by_id["cc0Tw"]["reason"]
    assert by_id["cc0M2"]["accepted"] == "yes" and by_id["cc0M2"]["reason"] == "ok: mate in 2 (Rxe8+)"
    db = sqlite_db(tmp_path, "cli.sqlite")
    with db.session() as s:
        p = s.get(Puzzle, "cc0Fk")
        assert p.verified and p.verify_settings["nodes"] == NODES and p.verify_settings["threads"] == 1
        assert p.verify_engine.startswith("Stockfish") and p.best_move == "b5c7" and p.win_chance_gap > 0.7
        assert p.accepted_moves == [[], []] and "advantage" in p.themes and p.difficulty is not None
        assert s.get(Puzzle, "cc0Bk").best_mate == 1
        assert s.get(Puzzle, "cc0Tw").verified is False
    r = cli("puzzles", "verify", "--collection", "nope", env=env)
    assert r.exit_code == 2 and r.stderr.strip() == "error: no collection named 'nope' (collections: lichess)"


def test_cli_import_errors_are_one_line(tmp_path):
    env = {"CONCEPTCHESS_DB": f"sqlite:///{tmp_path / 'cli.sqlite'}"}
    r = cli("puzzles", "import", str(tmp_path / "missing.csv"), "--collection", "x", env=env)
    assert r.exit_code == 2 and r.stderr.strip().startswith("error: ") and r.stderr.strip().endswith("no such file")
    assert len(r.stderr.strip().splitlines()) == 1
    shutil.copy(LICHESS_CSV, tmp_path / "ok.csv")
