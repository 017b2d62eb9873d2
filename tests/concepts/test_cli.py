"""`conceptchess concepts list|label`: tables, outputs, and bad input (exit 2, one line, nothing written)."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from conceptchess.concepts import CONCEPTS
from conceptchess.concepts.stockfish import ENV_VAR, available
from tests.helpers import cli

MATED = "rnbqkbnr/ppppp2p/5p2/6pQ/4P3/8/PPPP1PPP/RNB1KBNR b KQkq - 1 3"
BACK_RANK = "6k1/5ppp/8/8/8/8/8/R5K1 w - - 0 1"
PY_NAMES = [n for n, c in CONCEPTS.items() if c.source == "python-chess"]


def write_jsonl(path: Path, records: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


@pytest.fixture
def positions(tmp_path: Path) -> Path:
    return write_jsonl(tmp_path / "p.jsonl", [
        {"id": "start", "moves": []},
        {"id": "mated", "fen": MATED},
        {"id": "back-rank", "fen": BACK_RANK},
        {"id": "e4", "moves": ["e2e4"], "ply": 1},
    ])


def test_list_shows_every_concept() -> None:
    r = cli("concepts", "list")
    assert r.exit_code == 0, r.output
    assert r.stdout.startswith(f"{len(CONCEPTS)} concepts: {len(PY_NAMES)} python-chess, {len(CONCEPTS) - len(PY_NAMES)} Stockfish 15.1 classical terms\n")
    for name in ("in_check", "material_diff", "them_discovered_check_available", "sf_king_safety_white_eg", "game_phase"):
        assert name in r.stdout


def test_list_is_compact_at_80_columns_and_long_gives_definitions() -> None:
    """What a user met: 16,904 lines at 80 columns, the definitions folded into a one-character column."""
    r = cli("concepts", "list", env={"COLUMNS": "80"})
    assert r.exit_code == 0, r.output
    lines = r.stdout.splitlines()
    assert all(len(line.rstrip()) <= 80 for line in lines)
    rows = {line.split()[0]: line.split()[1:] for line in lines if line.split() and line.split()[0] in CONCEPTS}
    assert len(rows) == len(CONCEPTS) and len(lines) < len(CONCEPTS) + 10  # one line each
    assert rows["in_check"] == ["binary", "threats"] and rows["game_phase"][0] == "categorical"
    assert CONCEPTS["in_check"].definition not in r.stdout
    r = cli("concepts", "list", "--long", "--family", "tactics", env={"COLUMNS": "80"})
    assert r.exit_code == 0, r.output
    text = " ".join(r.stdout.split())
    assert r.stdout.startswith("8 concepts: 8 python-chess\n")
    for name, c in CONCEPTS.items():
        if c.family == "tactics":
            assert f"{name} {c.type}, frame {c.frame}, tactics {c.definition}" in text, name
    assert all(len(line.rstrip()) <= 80 for line in r.stdout.splitlines())


def test_list_marks_stockfish_unavailable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV_VAR, "/nonexistent/stockfish")
    r = cli("concepts", "list", "--family", "stockfish")
    assert r.exit_code == 0, r.output
    assert "70 concepts unavailable: the stockfish binary was not found" in " ".join(r.stdout.split())
    assert "yes" not in r.stdout


def test_list_unknown_family() -> None:
    r = cli("concepts", "list", "--family", "nope")
    assert r.exit_code == 2 and r.stderr.startswith("error: unknown family 'nope'")


def test_label_csv(positions: Path, tmp_path: Path) -> None:
    out = tmp_path / "out" / "labels.csv"
    r = cli("concepts", "label", "--input", str(positions), "-o", str(out),
            "--concepts", "in_check,us_has_mate_in_1,material_diff,game_phase,us_mobility")
    assert r.exit_code == 0, r.output
    rows = list(csv.reader(out.open()))
    assert rows[0] == ["id", "in_check", "us_has_mate_in_1", "material_diff", "game_phase", "us_mobility"]
    assert rows[1:] == [
        ["start", "0", "0", "0", "0", "20"],
        ["mated", "1", "0", "0", "0", "0"],
        ["back-rank", "0", "1", "2", "2", "17"],  # R (5) vs three pawns; one piece left; Ra1 7 + 5, Kg1 f1 f2 g2 h1 h2
        ["e4", "0", "0", "0", "0", "20"],  # Black's 20 replies to 1.e4
    ]
    assert [p.name for p in out.parent.iterdir()] == ["labels.csv"]


def test_label_parquet_dataset_folder(tmp_path: Path) -> None:
    ds = tmp_path / "ds"
    ds.mkdir()
    write_jsonl(ds / "positions.jsonl", [{"id": i, "moves": ["e2e4", "e7e5"][:i]} for i in range(3)])
    (ds / "manifest.json").write_text("{}")
    out = tmp_path / "labels.parquet"
    r = cli("concepts", "label", "-i", str(ds), "-o", str(out))
    assert r.exit_code == 0, r.output
    t = pq.read_table(out)
    assert t.column_names == ["id", *PY_NAMES]
    assert t.column("id").to_pylist() == [0, 1, 2]
    assert t.column("white_to_move").to_pylist() == [1, 0, 1]
    assert t.column("us_centre_pawns").to_pylist() == [0, 0, 1]  # after 1.e4 e5 White (to move) has e4


@pytest.mark.parametrize("make_input,args,message", [
    (lambda d: write_jsonl(d / "p.jsonl", [{"id": 1}]), ["--concepts", "in_check,nope"], "unknown concept 'nope'"),
    (lambda d: write_jsonl(d / "p.jsonl", [{"id": 1}]), ["--concepts", "in_chek,material_diff,us_mobilty"],
     "unknown concepts 'in_chek' (did you mean in_check?), 'us_mobilty' (did you mean us_mobility or "),
    (lambda d: (d / "p.jsonl").write_text('{"id": 1}\n{"id": 2, \n'), [], "p.jsonl:2: malformed JSON"),
    (lambda d: write_jsonl(d / "p.jsonl", [{"id": 1}, {"id": 2, "moves": ["e2e4", "e2e4"]}]), [], "move 2 'e2e4' is illegal"),
    (lambda d: write_jsonl(d / "p.jsonl", [{"id": 1, "fen": "not a fen"}]), [], "malformed FEN"),
    (lambda d: write_jsonl(d / "p.jsonl", [{"id": 1}]), ["-o", "OUT/labels.txt"], "output must end in .csv or .parquet"),
    (lambda d: None, [], "no such positions dataset or file"),
    (lambda d: write_jsonl(d / "p.jsonl", [{"id": 1}]), ["--no-stockfish", "--concepts", "sf_total_total_mg"], "--no-stockfish"),
])
def test_label_bad_input(tmp_path: Path, make_input, args: list[str], message: str) -> None:
    make_input(tmp_path)
    out_dir = tmp_path / "OUT"
    out_dir.mkdir()
    argv = ["concepts", "label", "-i", str(tmp_path / "p.jsonl"), "-o", str(out_dir / "labels.csv")]
    argv += [a.replace("OUT/", f"{out_dir}/") for a in args]
    r = cli(*argv)
    assert r.exit_code == 2, r.output
    assert r.stderr.startswith("error: ") and message in r.stderr and r.stderr.count("\n") == 1, r.stderr
    assert list(out_dir.iterdir()) == []


def test_label_missing_stockfish(positions: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV_VAR, "/nonexistent/stockfish")
    out = tmp_path / "labels.csv"
    for extra in (["--stockfish"], ["--concepts", "in_check,sf_final_eval"]):
        r = cli("concepts", "label", "-i", str(positions), "-o", str(out), *extra)
        assert r.exit_code == 2 and "Stockfish 15.1 binary, not found" in r.stderr and r.stderr.count("\n") == 1
        assert not out.exists()


@pytest.mark.skipif(not available(), reason="stockfish binary not found")
def test_label_with_stockfish(positions: Path, tmp_path: Path) -> None:
    out = tmp_path / "labels.csv"
    r = cli("concepts", "label", "-i", str(positions), "-o", str(out), "--stockfish",
            "--concepts", "in_check,sf_mobility_white_mg,sf_final_eval")
    assert r.exit_code == 0, r.output
    rows = {row["id"]: row for row in csv.DictReader(out.open())}
    assert float(rows["start"]["sf_mobility_white_mg"]) == -0.50  # as in tests/data/stockfish_15.1_eval.txt
    assert math.isnan(float(rows["mated"]["sf_final_eval"]))  # in check: NaN, never 0
