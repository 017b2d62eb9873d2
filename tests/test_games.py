"""`conceptchess positions from-pgn`: streaming PGN (plain, gzip, zstd) → positions datasets."""

from __future__ import annotations

import gzip
import hashlib
import itertools
import json
from pathlib import Path

import chess
import chess.pgn
import numpy as np
import pytest
import zstandard

from conceptchess.errors import ConceptChessError
from conceptchess.games import GameFilter, Sampling, _ZstdFrames, open_text, parse_clock, speed_class, stray_text
from conceptchess.lc0.encoder import game_histories
from conceptchess.positions import PositionSpec
from tests.helpers import DATA, cli

SHARED_PGN = DATA / "pgn" / "lichess_2021-10_games_a.pgn"
needs_shared_pgn = pytest.mark.skipif(not SHARED_PGN.exists(), reason=f"real Lichess games not found at {SHARED_PGN} (set CONCEPTCHESS_TEST_DATA)")


def game(headers: dict, movetext: str) -> str:
    return "".join(f'[{k} "{v}"]\n' for k, v in headers.items()) + "\n" + movetext + "\n\n"


# 7 games: G0 bullet 7 positions (with clocks), G1 blitz 5, G2 rapid 9 (one player unrated), G3 correspondence 9
# (a repetition), G4 Chess960, G5 Atomic, G6 standard chess from a FEN (rapid, no ratings) 4 positions.
FILTERS_PGN = (
    game({"Event": "g0", "Site": "https://lichess.org/aaaa", "Result": "1-0", "WhiteElo": 1500, "BlackElo": 1600, "TimeControl": "60+0"},
         "1. e4 { [%clk 0:01:00] } 1... e5 { [%clk 0:00:59] } 2. Nf3 { [%clk 0:00:58] } 2... Nc6 { [%clk 0:00:55] } "
         "3. Bb5 { [%clk 0:00:50] } 3... a6 { [%clk 0:00:45.5] } 1-0")
    + game({"Event": "g1", "Result": "*", "WhiteElo": 2000, "BlackElo": 2100, "TimeControl": "300+3"}, "1. d4 d5 2. c4 e6 *")
    + game({"Event": "g2", "Result": "1/2-1/2", "WhiteElo": "?", "BlackElo": 1800, "TimeControl": "900+10"},
           "1. e4 c5 2. Nf3 d6 3. d4 cxd4 4. Nxd4 Nf6 1/2-1/2")
    + game({"Event": "g3", "Result": "1/2-1/2", "WhiteElo": 1200, "BlackElo": 1250, "TimeControl": "-"},
           "1. Nf3 Nf6 2. Ng1 Ng8 3. Nf3 Nf6 4. Ng1 Ng8 1/2-1/2")
    + game({"Event": "g4", "Result": "1-0", "Variant": "Chess960", "SetUp": "1", "FEN": "bqnb1rkr/pp3ppp/3ppn2/2p5/5P2/P2P4/NPP1P1PP/BQ1BNRKR w HFhf - 2 9"},
           "9. g3 Nf6 1-0")
    + game({"Event": "g5", "Result": "0-1", "Variant": "Atomic", "WhiteElo": 1500, "BlackElo": 1500, "TimeControl": "60+0"}, "1. e4 d5 0-1")
    + game({"Event": "g6", "Result": "*", "Variant": "From Position", "SetUp": "1", "FEN": "4k3/8/8/8/8/8/4P3/4K3 w - - 0 1", "TimeControl": "600+0"},
           "1. e4 Kd7 2. Kd2 *")
)
POSITIONS = {0: 7, 1: 5, 2: 9, 3: 9, 6: 4}


@pytest.fixture
def filters_pgn(tmp_path) -> Path:
    p = tmp_path / "filters.pgn"
    p.write_text(FILTERS_PGN)
    return p


def ok(*args):
    r = cli("positions", *args)
    assert r.exit_code == 0, r.output
    return r


def load(ds: Path) -> tuple[list[dict], dict]:
    recs = [json.loads(line) for line in (ds / "positions.jsonl").read_text().splitlines()]
    return recs, json.loads((ds / "manifest.json").read_text())


def per_game(recs) -> dict[int, int]:
    out: dict[int, int] = {}
    for r in recs:
        out[r["game"]] = out.get(r["game"], 0) + 1
    return out


def assert_reencodes(recs: list[dict], games: dict[int, tuple[chess.Board, list[chess.Move]]]) -> None:
    """Each record, parsed alone, encodes exactly as its ply does in the whole game."""
    full = {}
    for rec in recs:
        start, moves = games[rec["game"]]
        if rec["game"] not in full:
            full[rec["game"]] = game_histories(start, moves)[0]
        want = full[rec["game"]][rec["ply"]]
        s, ms = PositionSpec.from_dict(rec).parsed()
        got = game_histories(s, ms, plies=[len(ms)])[0]
        for f in ("boards", "reps", "black", "castling", "rule50"):
            assert np.array_equal(getattr(got, f)[0], getattr(want, f)), (rec["id"], f)
        b = s.copy()
        for m in ms:
            b.push(m)
        assert rec["move"] is None or chess.Move.from_uci(rec["move"]) in b.legal_moves


def read_games(path) -> list[chess.pgn.Game]:
    out = []
    with open(path, encoding="utf-8") as f:
        while (g := chess.pgn.read_game(f)) is not None:
            out.append(g)
    return out


# -- helpers --------------------------------------------------------------------------------------------
def test_speed_classes_follow_lichess():
    assert [speed_class(tc) for tc in ("15+0", "0+1", "30+0", "120+1", "180+0", "300+3", "480+0", "900+10", "1500+0", "-", "?", None)] == [
        "ultrabullet", "bullet", "bullet", "bullet", "blitz", "blitz", "rapid", "rapid", "classical", "correspondence", None, None]


def test_clock_comments():
    assert parse_clock("[%clk 0:00:07]") == 7
    assert parse_clock("[%eval -1.2] [%clk 1:02:03.25]") == 3723.25
    assert parse_clock("[%eval 0.1]") is None


def test_zstd_frame_walker_knows_where_frames_end():
    text = FILTERS_PGN.encode()
    frames = [zstandard.ZstdCompressor(level=1).compress(text * 3),  # compressed blocks, content size, no checksum
              b"\x50\x2a\x4d\x18" + (5).to_bytes(4, "little") + b"hello",  # a skippable frame
              zstandard.ZstdCompressor(level=19, write_checksum=True, write_content_size=False).compress(text),
              zstandard.ZstdCompressor(level=1).compress(bytes(300_000))]  # RLE blocks, several blocks
    data = b"".join(frames)
    ends = set(np.cumsum([len(f) for f in frames]).tolist())
    for cut in sorted(set(range(0, len(data) + 1, 97)) | ends | {e - 1 for e in ends} | {e + 1 for e in ends}):
        if cut > len(data):
            continue
        w = _ZstdFrames()
        for i in range(0, cut, 1000):
            w.feed(memoryview(data)[i : min(i + 1000, cut)])
        assert w.complete == (cut == 0 or cut in ends), cut


def test_bad_options_are_one_line_errors(filters_pgn, tmp_path):
    for args in (["--every", "0"], ["--time-control", "blits"], ["--min-rating", "2000", "--max-rating", "1000"], ["--skip-plies", "-1"]):
        r = cli("positions", "from-pgn", filters_pgn, "-o", tmp_path / "x", *args)
        assert r.exit_code == 2, (args, r.output)
        assert r.stderr.startswith("error: ") and len(r.stderr.strip().splitlines()) == 1
    r = cli("positions", "from-pgn", tmp_path / "missing.pgn", "-o", tmp_path / "x")
    assert r.exit_code == 2 and "no such PGN file" in r.stderr
    assert not (tmp_path / "x").exists()


# -- the shared Lichess games -------------------------------------------------------------------------
@pytest.fixture(scope="module")
def shared_dataset(tmp_path_factory):
    if not SHARED_PGN.exists():
        pytest.skip(f"real Lichess games not found at {SHARED_PGN} (set CONCEPTCHESS_TEST_DATA)")
    ds = tmp_path_factory.mktemp("shared") / "ds"
    ok("from-pgn", SHARED_PGN, "-o", ds)
    recs, man = load(ds)
    return recs, man, read_games(SHARED_PGN)


@needs_shared_pgn
def test_shared_games_and_positions_match_python_chess(shared_dataset):
    recs, man, games = shared_dataset
    plies = [len(list(g.mainline_moves())) for g in games]
    assert len(games) == 700 and not any(g.errors for g in games)
    c = man["counts"]
    assert c["games_read"] == c["games_kept"] == len(games)
    assert c["games_skipped"] == {} and c["games_with_illegal_moves"] == 0
    assert c["positions_written"] == man["positions"] == len(recs) == sum(n + 1 for n in plies)
    assert man["sources"][0]["sha256"] == hashlib.sha256(SHARED_PGN.read_bytes()).hexdigest()
    assert man["software"]["python-chess"] == chess.__version__
    # every ply of every game, in order, with the move played next (null at the end)
    i = 0
    for gi, g in enumerate(games):
        moves = [m.uci() for m in g.mainline_moves()] + [None]
        for t, mv in enumerate(moves):
            r = recs[i]
            assert (r["id"], r["game"], r["ply"], r["move"]) == (f"g{gi}-p{t}", gi, t, mv)
            i += 1
    r0 = recs[0]
    assert (r0["result"], r0["white_elo"], r0["black_elo"], r0["site"], r0["source"]) == (
        "1-0", 1703, 1698, "https://lichess.org/NRafdioG", SHARED_PGN.name)


@needs_shared_pgn
def test_shared_records_reencode_exactly(shared_dataset):
    recs, _, games = shared_dataset
    picked = {0, 1, 2, 100, 350, 698, 699}
    picked.add(max(recs, key=lambda r: len(r["moves"]) if "fen" in r else 0)["game"])  # the longest fen + moves window
    sub = [r for r in recs if r["game"] in picked]
    assert_reencodes(sub, {i: (games[i].board(), list(games[i].mainline_moves())) for i in picked})
    assert any("fen" in r for r in sub) and any("fen" not in r for r in sub)


@needs_shared_pgn
def test_shared_clocks(shared_dataset):
    recs, _, games = shared_dataset
    g0 = [r for r in recs if r["game"] == 0]
    # G0 is 60+0: both sides start with 60 s; ply t shows the side to move's clock after its previous move
    assert [r["clock"] for r in g0[:8]] == [60, 60, 60, 60, 60, 59, 60, 58]
    assert sum(r["clock"] is not None for r in recs) > 0.9 * len(recs)


@needs_shared_pgn
def test_shared_zst_matches_plain(shared_dataset, tmp_path):
    plain, _, games = shared_dataset
    data = SHARED_PGN.read_bytes()
    cut = data.index(b"\n[Event ", len(data) // 5) + 1  # the first fifth of the games, in two zstd frames
    half = data.index(b"\n[Event ", cut // 2) + 1
    n = data[:cut].count(b"\n[Event ") + 1
    zst = tmp_path / "games.pgn.zst"
    zst.write_bytes(zstandard.ZstdCompressor(level=3).compress(data[:half]) + zstandard.ZstdCompressor(level=3, write_checksum=True).compress(data[half:cut]))
    ok("from-pgn", zst, "-o", tmp_path / "z")
    packed, man = load(tmp_path / "z")
    assert man["counts"]["games_read"] == n
    assert [dict(r, source=None) for r in packed] == [dict(r, source=None) for r in plain if r["game"] < n]
    assert man["sources"][0]["sha256"] == hashlib.sha256(zst.read_bytes()).hexdigest()
    assert man["sources"][0]["compression"] == "zstd"


# -- hand-written games with known answers ------------------------------------------------------------
def test_compressed_inputs_give_the_same_records(filters_pgn, tmp_path):
    raw = filters_pgn.read_bytes() * 3
    (tmp_path / "a.pgn").write_bytes(raw)
    (tmp_path / "a.pgn.gz").write_bytes(gzip.compress(raw))
    (tmp_path / "a.pgn.zst").write_bytes(zstandard.ZstdCompressor().compress(raw))
    out = {}
    for name in ("a.pgn", "a.pgn.gz", "a.pgn.zst"):
        ok("from-pgn", tmp_path / name, "-o", tmp_path / f"ds-{name}")
        recs, man = load(tmp_path / f"ds-{name}")
        assert man["sources"][0]["sha256"] == hashlib.sha256((tmp_path / name).read_bytes()).hexdigest()
        assert man["counts"]["games_read"] == 21
        out[name] = [dict(r, source=None) for r in recs]
    assert out["a.pgn"] == out["a.pgn.gz"] == out["a.pgn.zst"]
    assert len(out["a.pgn"]) == 3 * sum(POSITIONS.values())


def test_no_filters(filters_pgn, tmp_path):
    ok("from-pgn", filters_pgn, "-o", tmp_path / "ds")
    recs, man = load(tmp_path / "ds")
    assert per_game(recs) == POSITIONS
    c = man["counts"]
    assert (c["games_read"], c["games_kept"], c["games_skipped"]) == (7, 5, {"chess960": 1, "variant": 1})
    g6 = [r for r in recs if r["game"] == 6]
    assert all("fen" in r for r in g6) and g6[0]["fen"] == "4k3/8/8/8/8/8/4P3/4K3 w - - 0 1"
    assert [r["white_elo"] for r in recs if r["ply"] == 0] == [1500, 2000, None, 1200, None]
    assert [r["result"] for r in recs if r["ply"] == 0] == ["1-0", "*", "1/2-1/2", "1/2-1/2", "*"]
    games = {}
    with open(filters_pgn) as f:
        for i in range(7):
            g = chess.pgn.read_game(f)
            games[i] = (g.board(), list(g.mainline_moves()))
    assert_reencodes(recs, games)


def test_clocks_from_comments(filters_pgn, tmp_path):
    ok("from-pgn", filters_pgn, "-o", tmp_path / "ds")
    recs, _ = load(tmp_path / "ds")
    assert [r["clock"] for r in recs if r["game"] == 0] == [60, 60, 60, 59, 58, 55, 50]
    assert all(r["clock"] is None for r in recs if r["game"] != 0)


@pytest.mark.parametrize("args, games, skipped", [
    (["--min-rating", "1500"], {0: 7, 1: 5}, {"rating": 3}),
    (["--min-rating", "1500", "--max-rating", "2050"], {0: 7}, {"rating": 4}),
    (["--max-rating", "1300"], {3: 9}, {"rating": 4}),
    (["--time-control", "blitz"], {1: 5}, {"time_control": 4}),
    (["--time-control", "bullet,rapid"], {0: 7, 2: 9, 6: 4}, {"time_control": 2}),
    (["--time-control", "300+3", "--time-control", "correspondence"], {1: 5, 3: 9}, {"time_control": 3}),
    (["--time-control", "rapid", "--min-rating", "1000"], {}, {"rating": 2, "time_control": 3}),
])
def test_game_filters(filters_pgn, tmp_path, args, games, skipped):
    ok("from-pgn", filters_pgn, "-o", tmp_path / "ds", *args)
    recs, man = load(tmp_path / "ds")
    assert per_game(recs) == games
    assert man["counts"]["games_skipped"] == {"chess960": 1, "variant": 1, **skipped}
    assert man["counts"]["games_kept"] == len(games)


def test_skip_plies(filters_pgn, tmp_path):
    ok("from-pgn", filters_pgn, "-o", tmp_path / "ds", "--skip-plies", "5")
    recs, _ = load(tmp_path / "ds")
    assert per_game(recs) == {0: 2, 2: 4, 3: 4}
    assert min(r["ply"] for r in recs) == 5


def test_every_keeps_evenly_spaced_plies_from_a_seeded_offset(tmp_path):
    moves = "1. e4 e5 2. Nf3 Nc6 3. Bb5 a6 4. Ba4 Nf6 5. O-O Be7 6. Re1 *"  # 11 plies → 12 positions
    (tmp_path / "g.pgn").write_text(game({"Result": "*"}, moves) * 30)
    for k, per in ((2, 6), (3, 4), (4, 3)):
        ok("from-pgn", tmp_path / "g.pgn", "-o", tmp_path / f"e{k}", "--every", k, "--seed", 11)
        recs, man = load(tmp_path / f"e{k}")
        assert per_game(recs) == {g: per for g in range(30)}
        offsets = set()
        for g in range(30):
            plies = [r["ply"] for r in recs if r["game"] == g]
            assert plies[0] < k and all(b - a == k for a, b in itertools.pairwise(plies))
            offsets.add(plies[0])
        assert len(offsets) > 1  # both sides to move, even for even k
        assert man["seed"] == 11 and man["sampling"]["every"] == k
    # the same seed → the same dataset; another seed → other offsets
    ok("from-pgn", tmp_path / "g.pgn", "-o", tmp_path / "again", "--every", 3, "--seed", 11)
    assert (tmp_path / "again" / "positions.jsonl").read_bytes() == (tmp_path / "e3" / "positions.jsonl").read_bytes()
    ok("from-pgn", tmp_path / "g.pgn", "-o", tmp_path / "other", "--every", 3, "--seed", 12)
    assert (tmp_path / "other" / "positions.jsonl").read_bytes() != (tmp_path / "e3" / "positions.jsonl").read_bytes()
    assert Sampling(every=3, seed=11).first_ply(5) == Sampling(every=3, seed=11).first_ply(5) < 3


def test_max_positions(filters_pgn, tmp_path):
    ok("from-pgn", filters_pgn, "-o", tmp_path / "ds", "--max-positions", "10")
    recs, man = load(tmp_path / "ds")
    assert [r["id"] for r in recs] == [f"g0-p{t}" for t in range(7)] + [f"g1-p{t}" for t in range(3)]
    assert man["counts"]["stopped_at_max_positions"] is True and man["positions"] == 10
    assert man["sources"][0]["sha256"] == hashlib.sha256(filters_pgn.read_bytes()).hexdigest()


def test_dedup(filters_pgn, tmp_path):
    ok("from-pgn", filters_pgn, "-o", tmp_path / "ds", "--dedup")
    recs, man = load(tmp_path / "ds")
    # start position ×6 (g0–g3, twice more in g3's repetition), 1.e4 (g0, g2), g3's knight dance ×3
    assert len(recs) == 34 - 9 == man["counts"]["positions_written"]
    assert man["counts"]["positions_dropped_as_duplicates"] == 9
    assert per_game(recs) == {0: 7, 1: 4, 2: 7, 3: 3, 6: 4}
    keys = set()
    for r in recs:
        b = PositionSpec.from_dict(r).board()
        key = b.epd()
        assert key not in keys
        keys.add(key)


def test_illegal_move_skips_the_game_with_a_warning(tmp_path):
    p = tmp_path / "bad.pgn"
    p.write_text(game({"Result": "*", "Site": "ok1"}, "1. e4 e5 *") + game({"Result": "*", "Site": "https://lichess.org/bad"}, "1. e4 e5 2. Ke3 Nc6 *")
                 + game({"Result": "*", "Site": "ok2"}, "1. d4 *"))
    r = ok("from-pgn", p, "-o", tmp_path / "ds")
    assert "warning:" in r.stderr and "https://lichess.org/bad" in r.stderr and "Ke3" in r.stderr
    recs, man = load(tmp_path / "ds")
    assert [x["id"] for x in recs] == ["g0-p0", "g0-p1", "g0-p2", "g2-p0", "g2-p1"]
    c = man["counts"]
    assert (c["games_read"], c["games_kept"], c["games_with_illegal_moves"], c["games_skipped"]) == (3, 2, 1, {"illegal_move": 1})


# -- games with errors: python-chess's game.errors, and the text it passes over without a word -------------
def test_stray_text_is_what_python_chess_passes_over():
    lichess = ("1. e4 { [%eval 0.17] [%clk 0:03:00] } 1... c5 { [%clk 0:03:00] } 2. Nf3?! $6 d6 (2... Nc6 3. d4)\n"
               "3. d4 cxd4 4. O-O-O+ e8=Q# 5. exd6 e.p. -- ; a rest-of-line comment, words and all\n"
               "% an escape line, words and all\n1/2-1/2")
    assert stray_text(lichess) is None and stray_text("") is None and stray_text("{ an unterminated comment") is None
    assert stray_text("1. e4 e5 2. Nf3 xyzzy Nc6 *") == "xyzzy"
    assert stray_text("Hello this is some text\nnot a pgn at all, just words.\n1. e4\n") == "Hello"
    assert stray_text("1. e4 be4ch") == "be4ch"  # the whole word, though python-chess reads 'be4' out of it


GARBAGE = "Hello this is some text\nnot a pgn at all, just words.\n1. e4\nmore garbage here & stuff\n"


def test_text_with_a_move_among_garbage_is_refused(tmp_path):
    """What a user met: "wrote 2 positions from 1 of 1 games (skipped: none)" for this file; python-chess
    records no error for it (game.errors is empty)."""
    p = tmp_path / "notes.txt"
    p.write_text(GARBAGE)
    assert chess.pgn.read_game(open(p)).errors == []
    r = cli("positions", "from-pgn", p, "-o", tmp_path / "ds")
    assert r.exit_code == 2 and r.stderr.count("\n") == 1, r.output
    assert r.stderr.startswith(f"error: {p}: not PGN (its only game has errors; game 1: text that is not PGN ('Hello'))")
    assert not (tmp_path / "ds").exists()


def test_games_with_errors_are_skipped_and_counted_by_reason(tmp_path):
    p = tmp_path / "mixed.pgn"
    p.write_text(
        game({"Site": "ok1", "Result": "*"}, "1. e4 e5 *")
        + "Some notes between the games\n\n"                                            # not_pgn: no tag pairs (counted, not warned)
        + game({"Site": "words", "Result": "*"}, "1. d4 d5 2. c4 really? e6 *")           # not_pgn: a stray word, warned
        + game({"Site": "illegal", "Result": "*"}, "1. e4 e5 2. Ke3 *")                   # illegal_move (game.errors)
        + game({"Site": "fen", "Result": "*", "SetUp": "1", "FEN": "8/8/8/8 w - - 0 1"}, "*")  # pgn_error (game.errors)
        + "1. c4 e5 *\n\n"                                                               # import format: no tag pairs, kept
        + game({"Site": "ok2", "Result": "*"}, "1. Nf3 *"))
    r = ok("from-pgn", p, "-o", tmp_path / "ds")
    recs, man = load(tmp_path / "ds")
    c = man["counts"]
    assert c["games_skipped"] == {"illegal_move": 1, "not_pgn": 2, "pgn_error": 1}
    assert (c["games_read"], c["games_kept"], c["games_with_illegal_moves"]) == (7, 3, 1)
    assert per_game(recs) == {0: 3, 5: 3, 6: 2}
    warnings = [line for line in r.stderr.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 3 and "(id g2, words) skipped: text that is not PGN ('really?')" in warnings[0]
    assert "Ke3" in warnings[1] and "(id g4, fen)" in warnings[2]
    assert "skipped: illegal_move 1, not_pgn 2, pgn_error 1" in r.stdout


def test_a_file_where_every_game_has_errors_is_refused(tmp_path, filters_pgn):
    bad = tmp_path / "bad.pgn"
    bad.write_text(game({"Site": "a", "Result": "*"}, "1. e4 e5 2. Ke3 *") + game({"Site": "b", "Result": "*"}, "1. e5 *"))
    r = cli("positions", "from-pgn", filters_pgn, bad, "-o", tmp_path / "ds")
    assert r.exit_code == 2, r.output
    assert f"error: {bad}: not PGN (all its 2 games have errors; game 1: illegal san: 'Ke3'" in r.stderr
    assert not (tmp_path / "ds").exists()


# -- several files: one after another, or in turn ----------------------------------------------------------
def test_max_positions_fills_from_the_first_file_unless_interleave(filters_pgn, tmp_path):
    other = tmp_path / "other.pgn"
    other.write_text(game({"Site": "o0", "Result": "*"}, "1. d4 d5 *") + game({"Site": "o1", "Result": "*"}, "1. c4 *"))
    ok("from-pgn", filters_pgn, other, "-o", tmp_path / "seq", "--max-positions", "20")
    recs, man = load(tmp_path / "seq")
    assert {r["source"] for r in recs} == {"filters.pgn"} and [s["games"] for s in man["sources"]] == [3, 0]
    assert man["sampling"]["files"] == "one after another"
    ok("from-pgn", filters_pgn, other, "-o", tmp_path / "mixed", "--max-positions", "20", "--interleave")
    recs, man = load(tmp_path / "mixed")
    # game numbers in the order read: filters.pgn's G0 (7 positions), other's first (3), G1 (5), other's second (2),
    # then 3 of G2's 9, filters.pgn alone once other.pgn has ended
    assert per_game(recs) == {0: 7, 1: 3, 2: 5, 3: 2, 4: 3}
    assert [r["source"] for r in recs if r["ply"] == 0] == ["filters.pgn", "other.pgn", "filters.pgn", "other.pgn", "filters.pgn"]
    assert man["sampling"]["files"] == "in turn" and man["counts"]["stopped_at_max_positions"] is True
    for s, f in zip(man["sources"], (filters_pgn, other)):
        assert s["sha256"] == hashlib.sha256(f.read_bytes()).hexdigest()
    ok("from-pgn", filters_pgn, other, "-o", tmp_path / "all", "--interleave")
    recs, man = load(tmp_path / "all")
    assert len(recs) == 34 + 5 and [s["games"] for s in man["sources"]] == [7, 2] and man["counts"]["games_read"] == 9
    help_text = " ".join(cli("positions", "from-pgn", "--help").stdout.split())
    assert "the first ones fill it first" in help_text and "--interleave" in help_text


def _truncated_zst(tmp_path: Path) -> Path:
    data = zstandard.ZstdCompressor().compress(FILTERS_PGN.encode() * 50)
    p = tmp_path / "cut.pgn.zst"
    p.write_bytes(data[: len(data) // 2])
    return p


@pytest.mark.parametrize("make, says", [
    (_truncated_zst, "truncated"),
    (lambda d: (d / "junk.pgn.zst").write_bytes(b"\x28\xb5\x2f\xfd" + bytes(range(256)) * 40) and d / "junk.pgn.zst", "corrupt zstd"),
    (lambda d: (d / "text.pgn.zst").write_text(FILTERS_PGN) and d / "text.pgn.zst", "not zstd"),
    (lambda d: (d / "cut.pgn.gz").write_bytes(gzip.compress(FILTERS_PGN.encode() * 50)[:300]) and d / "cut.pgn.gz", "gzip"),
    (lambda d: (d / "readme.pgn").write_text("# Notes\n\nThis is not a game.\n") and d / "readme.pgn", "not PGN"),
    (lambda d: (d / "json.pgn").write_text('{"a": 1}\n') and d / "json.pgn", "not PGN"),
    (lambda d: (d / "bin.pgn").write_bytes(bytes(range(128, 256)) * 10) and d / "bin.pgn", "not UTF-8"),
])
def test_corrupt_input_is_a_one_line_error_and_leaves_nothing(tmp_path, make, says):
    src = tmp_path / "in"
    src.mkdir()
    path = make(src)
    out = tmp_path / "out"
    r = cli("positions", "from-pgn", path, "-o", out / "ds")
    assert r.exit_code == 2, r.output
    assert r.stderr.startswith("error: ") and r.stderr.count("\n") == 1 and says in r.stderr, r.stderr
    assert not (out / "ds").exists()
    assert not out.exists() or list(out.iterdir()) == []


def test_existing_output_is_refused_unless_overwrite(filters_pgn, tmp_path):
    ok("from-pgn", filters_pgn, "-o", tmp_path / "ds", "--max-positions", "3")
    r = cli("positions", "from-pgn", filters_pgn, "-o", tmp_path / "ds")
    assert r.exit_code == 2 and "already exists" in r.stderr
    ok("from-pgn", filters_pgn, "-o", tmp_path / "ds", "--overwrite")
    assert load(tmp_path / "ds")[1]["positions"] == 34


def test_game_numbers_run_across_files(filters_pgn, tmp_path):
    ok("from-pgn", filters_pgn, filters_pgn, "-o", tmp_path / "ds", "--time-control", "blitz")
    recs, man = load(tmp_path / "ds")
    assert per_game(recs) == {1: 5, 8: 5}
    assert [s["games"] for s in man["sources"]] == [7, 7]


def test_library_filter_reasons():
    h = chess.pgn.Headers({"Variant": "Crazyhouse"})
    assert GameFilter().reject(h) == "variant"
    assert GameFilter().reject(chess.pgn.Headers({"Variant": "Standard"})) is None
    assert GameFilter(min_rating=1000).reject(chess.pgn.Headers({"WhiteElo": "1200", "BlackElo": "?"})) == "rating"


# -- open_text: the same readers for any text file ------------------------------------------------------
CSV_TEXT = "PuzzleId,FEN\r\n00008,r6k/pp2r2p/4Rp1Q/3p4/8/1N1P2R1/PqP2bPP/7K b - - 0 24\r\nnon-ascii,é\r\n"


@pytest.mark.parametrize("name, pack", [
    ("p.csv", lambda b: b),
    ("p.csv.gz", gzip.compress),
    ("p.csv.zst", lambda b: zstandard.ZstdCompressor().compress(b)),
    ("p.csv", lambda b: zstandard.ZstdCompressor().compress(b)),  # the bytes say zstd, the name says nothing
])
def test_open_text_reads_plain_gzip_and_zstd_alike(tmp_path, name, pack):
    p = tmp_path / name
    p.write_bytes(pack(CSV_TEXT.encode()))
    with open_text(p, newline="") as f:
        assert f.read() == CSV_TEXT
    with open_text(p) as f:
        assert f.read() == CSV_TEXT.replace("\r\n", "\n")


def _half(data: bytes) -> bytes:
    return data[: len(data) // 2]


@pytest.mark.parametrize("make, says", [
    (lambda d: (d / "cut.csv.zst").write_bytes(_half(zstandard.ZstdCompressor().compress(CSV_TEXT.encode() * 500))) and d / "cut.csv.zst",
     "truncated zstd data"),
    (lambda d: (d / "text.csv.zst").write_text(CSV_TEXT) and d / "text.csv.zst", "not zstd data"),
    (lambda d: (d / "cut.csv.gz").write_bytes(_half(gzip.compress(CSV_TEXT.encode() * 500))) and d / "cut.csv.gz", "gzip data"),
    (lambda d: (d / "bin.csv").write_bytes(bytes(range(128, 256))) and d / "bin.csv", "not UTF-8 text"),
])
def test_open_text_refuses_bad_files_in_one_line_naming_them(tmp_path, make, says):
    path = make(tmp_path)
    with pytest.raises(ConceptChessError, match=says) as e, open_text(path) as f:
        f.read()
    assert str(e.value).startswith(f"{path}: ") and "\n" not in str(e.value)


def test_open_text_lets_other_errors_through(tmp_path):
    (tmp_path / "p.csv").write_text(CSV_TEXT)
    with pytest.raises(KeyError), open_text(tmp_path / "p.csv") as f:
        raise KeyError(f.readline())
