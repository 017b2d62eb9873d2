"""`conceptchess positions selfplay`: games a network plays against itself → positions datasets."""

from __future__ import annotations

import json
from pathlib import Path

import chess
import numpy as np
import pytest

from conceptchess.lc0.encoder import game_histories
from conceptchess.positions import PositionSpec
from conceptchess.provenance import sha256_of
from conceptchess.selfplay import BUILTIN_OPENINGS, Opening, SelfPlayGame, builtin_openings, choose_move, play, read_openings
from tests.helpers import DATA, cli

NET = DATA / "weights" / "maia-1100.pb.gz"
needs_net = pytest.mark.skipif(not NET.exists(), reason=f"Maia network not found at {NET} (set CONCEPTCHESS_TEST_DATA)")


def load(ds: Path) -> tuple[list[dict], dict]:
    recs = [json.loads(line) for line in (ds / "positions.jsonl").read_text().splitlines()]
    return recs, json.loads((ds / "manifest.json").read_text())


def opening(fen: str | None = None, moves: str = "") -> Opening:
    start = chess.Board(fen) if fen else chess.Board()
    b = start.copy()
    ms = [b.push_uci(m) for m in moves.split()]
    return Opening("t", start, ms)


# -- without a network --------------------------------------------------------------------------------
def test_builtin_openings_are_legal_and_named():
    ops = builtin_openings()
    assert len({o.name for o in ops}) == len(ops) == len(BUILTIN_OPENINGS) and ops[0].moves == []
    for o in ops:
        b = o.start.copy()
        for m in o.moves:
            assert m in b.legal_moves, (o.name, m)
            b.push(m)
        assert not b.is_game_over()


def test_choose_move_temperature():
    moves = [chess.Move.from_uci(u) for u in ("e2e4", "d2d4", "g1f3")]
    logits = np.array([1.0, 3.0, 2.0], np.float32)
    assert choose_move(moves, logits, 0.0, np.random.default_rng(0)).uci() == "d2d4"
    picks = [choose_move(moves, logits, 1.0, np.random.default_rng([1, i])).uci() for i in range(3000)]
    p = np.exp(logits - logits.max())
    p /= p.sum()
    freq = np.array([picks.count(m.uci()) for m in moves]) / len(picks)
    assert np.allclose(freq, p, atol=0.03)
    hot = [choose_move(moves, logits, 100.0, np.random.default_rng([1, i])).uci() for i in range(3000)]
    assert min(hot.count(m.uci()) for m in moves) > 800  # nearly uniform at a high temperature
    assert picks == [choose_move(moves, logits, 1.0, np.random.default_rng([1, i])).uci() for i in range(3000)]


@pytest.mark.parametrize("op, result, termination", [
    (opening("7k/5Q2/6K1/8/8/8/8/8 b - - 0 1"), "1/2-1/2", "stalemate"),
    (opening(None, "f2f3 e7e5 g2g4 d8h4"), "0-1", "checkmate"),
    (opening("8/8/4k3/8/8/3K4/8/8 w - - 0 1"), "1/2-1/2", "insufficient_material"),
    # the start position twice already; black's Ng8 would make it three times: claimed now
    (opening(None, "g1f3 g8f6 f3g1 f6g8 g1f3 g8f6 f3g1"), "1/2-1/2", "threefold_repetition"),
    (opening("4k3/8/8/8/8/8/4P3/R3K3 w Q - 99 80"), "1/2-1/2", "fifty_moves"),
    (opening("4k3/8/8/8/8/8/4P3/R3K3 w Q - 150 120"), "1/2-1/2", "seventyfive_moves"),
])
def test_games_end_by_the_rules(op, result, termination):
    g = SelfPlayGame(0, op)
    assert g.finish(max_plies=400)
    assert (g.result, g.termination) == (result, termination)
    recs = list(g.records("x"))
    assert len(recs) == 1 and recs[0]["move"] is None and recs[0]["result"] == result


def test_max_plies_stops_with_an_unfinished_result():
    g = SelfPlayGame(3, opening(None, "e2e4 e7e5"))
    assert not g.finish(max_plies=3)
    g.push(chess.Move.from_uci("g1f3"))
    assert g.finish(max_plies=3) and (g.result, g.termination) == ("*", "max_plies")
    recs = list(g.records("net.pb.gz"))
    assert [r["id"] for r in recs] == ["g3-p2", "g3-p3"]  # from the end of the book moves
    assert [r["move"] for r in recs] == ["g1f3", None]
    assert recs[0]["moves"] == ["e2e4", "e7e5"] and recs[0]["white_elo"] is None and recs[0]["clock"] is None


def test_incremental_histories_equal_the_whole_game():
    # captures, pawn moves (history restarts), repetitions, castling, and a FEN start (history fill)
    lines = {
        None: "e2e4 e7e5 g1f3 b8c6 f1c4 g8f6 f3g5 d7d5 e4d5 f6d5 g5f7 e8f7 d1f3 f7e6 b1c3 c6b4 e1g1 c7c6 f1e1 h7h6 "
              "c3e4 e6d7 e4c5 d7c7 c5e4 c7d7 e4c5 d7c7 c5e4 c7d7 a2a4 a7a5 d2d4 e5d4",
        "r3k2r/pppq1ppp/2n2n2/3pp3/3PP3/2N2N2/PPPQ1PPP/R3K2R w KQkq - 0 8":
            "e1g1 e8c8 f1e1 h8e8 e1f1 e8h8 f1e1 h8e8 e1f1 e8h8 d4e5 c6e5 f3e5 d7e6 e5f3 f6e4 c3e4 d5e4 d2g5 e4f3 g5d8 c8d8 g2f3 h7h5",
    }
    for fen, line in lines.items():
        start = chess.Board(fen) if fen else chess.Board()
        b = start.copy()
        moves = [b.push_uci(u) for u in line.split()]
        g = SelfPlayGame(0, Opening("t", start, []))
        full, _ = game_histories(start, moves)
        for t in range(len(moves) + 1):
            h = g.histories()
            for f in ("boards", "reps", "black", "castling", "rule50"):
                assert np.array_equal(getattr(h, f)[0], getattr(full, f)[t]), (fen, t, f)
            if t < len(moves):
                g.push(moves[t])


def test_openings_file(tmp_path):
    p = tmp_path / "o.jsonl"
    p.write_text('{"id": "kid", "moves": ["d2d4", "g8f6", "c2c4", "g7g6"]}\n{"id": "endgame", "fen": "4k3/8/8/8/8/8/4P3/4K3 w - - 0 1"}\n')
    ops = read_openings(p)
    assert [o.name for o in ops] == ["kid", "endgame"] and len(ops[0].moves) == 4 and ops[1].start.fen().startswith("4k3")
    (tmp_path / "bad.jsonl").write_text('{"id": 1, "moves": ["e2e5"]}\n')
    r = cli("positions", "selfplay", "--net", tmp_path / "no-net.pb.gz", "--games", 1, "-o", tmp_path / "ds", "--openings", tmp_path / "bad.jsonl")
    assert r.exit_code == 2 and r.stderr.startswith("error: ") and len(r.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "ds").exists()


# -- with a real network ------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def engine():
    if not NET.exists():
        pytest.skip(f"Maia network not found at {NET} (set CONCEPTCHESS_TEST_DATA)")
    from conceptchess.engine import Engine

    return Engine(NET, threads=1, device="cpu")


def _replay(rec: dict) -> chess.Board:
    return PositionSpec.from_dict(rec).board()  # validates fen and every move


@needs_net
def test_cli_selfplay_is_deterministic_and_legal(tmp_path):
    args = ["--net", NET, "--games", 2, "--max-plies", 20, "--seed", 7, "--threads", 1, "--device", "cpu"]
    for name in ("a", "b"):
        r = cli("positions", "selfplay", *args, "-o", tmp_path / name)
        assert r.exit_code == 0, r.output
    a, man = load(tmp_path / "a")
    b, _ = load(tmp_path / "b")
    assert (tmp_path / "a" / "positions.jsonl").read_bytes() == (tmp_path / "b" / "positions.jsonl").read_bytes()
    assert man["net"]["sha256"] == sha256_of(NET) and man["seed"] == 7 and man["temperature"] == 1.0
    assert man["counts"]["games"] == 2 and man["positions"] == len(a)
    assert set(a[0]) == {"id", "moves", "game", "ply", "move", "result", "white_elo", "black_elo", "clock", "source"}
    for g in (0, 1):
        recs = [r for r in a if r["game"] == g]
        book = len(builtin_openings()[g].moves)
        assert [r["ply"] for r in recs] == list(range(book, book + len(recs)))
        assert recs[0]["moves"] == [m.uci() for m in builtin_openings()[g].moves]  # game i from opening i
        for r, nxt in zip(recs, recs[1:] + [None], strict=True):
            board = _replay(r)
            if nxt is None:
                assert r["move"] is None
                assert r["ply"] == 20 and r["result"] == "*" or board.is_game_over(claim_draw=True)
            else:
                assert chess.Move.from_uci(r["move"]) in board.legal_moves
                board.push_uci(r["move"])
                assert _replay(nxt).fen() == board.fen()
    r = cli("positions", "selfplay", *args[:-6], "--seed", 8, "--threads", 1, "--device", "cpu", "-o", tmp_path / "c")
    assert r.exit_code == 0, r.output
    assert load(tmp_path / "c")[0] != a


@needs_net
def test_temperature_zero_plays_the_top_move(engine):
    games = list(play(engine, 2, temperature=0.0, seed=0, max_plies=6, openings=[opening()]))
    assert [m.uci() for m in games[0].moves] == [m.uci() for m in games[1].moves]  # no randomness left
    b = chess.Board()
    for m in games[0].moves:
        assert m == engine.evaluate_boards([b])[0].best_move()
        b.push(m)


@needs_net
def test_games_do_not_depend_on_the_batch(engine):
    one = [g.moves for g in play(engine, 3, seed=5, max_plies=12, batch_size=1)]
    three = [g.moves for g in play(engine, 3, seed=5, max_plies=12, batch_size=3)]
    assert one == three
