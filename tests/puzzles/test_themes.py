"""Theme tags from board geometry (no engine), and the difficulty estimate's arithmetic."""

from __future__ import annotations

import chess
import chess.engine
import pytest

from conceptchess.checkpoints import checkpoint_label, weakest_checkpoint
from conceptchess.puzzles.difficulty import estimate, policy_rank
from conceptchess.puzzles.themes import THEMES, phase, tag


@pytest.mark.parametrize("fen, line, score, expected, absent", [
    ("7k/6pp/8/8/8/8/8/RR4K1 w - - 0 1", ["a1a8"], None, {"mate", "mateIn1", "backRankMate", "oneMove", "endgame"}, {"fork"}),
    ("6rk/6pp/8/6N1/8/8/8/6K1 w - - 0 1", ["g5f7"], None, {"mate", "mateIn1", "smotheredMate"}, set()),
    ("3qr1k1/5ppp/8/8/8/8/4RPPP/4R1K1 w - - 0 1", ["e2e8", "d8e8", "e1e8"], None, {"mate", "mateIn2", "short"}, {"oneMove"}),
    ("r3k3/pp3ppp/8/1N6/8/8/PPP2PPP/6K1 w - - 0 1", ["b5c7", "e8d7", "c7a8"], chess.engine.Cp(350), {"fork", "short", "advantage"}, {"mate"}),
    ("6k1/ppp2pp1/7p/8/3q4/5N2/PPP2PPP/6K1 w - - 0 1", ["f3d4"], chess.engine.Cp(700), {"hangingPiece", "crushing", "oneMove"}, {"sacrifice"}),
    ("k7/6q1/8/4n3/8/8/K7/4B3 w - - 0 1", ["e1c3"], None, {"pin"}, {"skewer"}),
    ("8/8/5q2/8/3k4/8/7P/2B3K1 w - - 0 1", ["c1b2", "d4c4", "b2f6"], chess.engine.Cp(800), {"skewer", "crushing", "short"}, {"pin"}),
    ("k7/1r6/8/8/1B6/8/8/1R4K1 w - - 0 1", ["b4c5"], None, {"discoveredAttack"}, {"quietMove"}),
    ("4k3/8/8/8/8/8/3q4/R2QK3 w - - 0 1", ["d1d2"], None, {"hangingPiece"}, set()),
    ("k7/8/8/3Pp3/8/8/8/6K1 w - e6 0 1", ["d5e6"], None, {"enPassant"}, set()),
    ("k7/3P4/8/8/8/8/8/6K1 w - - 0 1", ["d7d8n"], None, {"promotion", "underPromotion"}, set()),
    ("k7/8/8/8/8/8/8/4K2R w K - 0 1", ["e1g1"], None, {"castling"}, set()),
    ("4k3/8/8/8/8/8/8/R3K2R w KQ - 0 1", ["a1a7"], chess.engine.Cp(100), {"equality", "quietMove", "defensiveMove"}, set()),
    ("4k3/8/8/8/8/8/8/3QK3 w - - 0 1", ["d1d7", "e8d7"], chess.engine.Cp(0), {"sacrifice", "equality"}, set()),
    ("r1bqkb1r/pppp1ppp/2n2n2/4p2Q/2B1P3/8/PPPP1PPP/RNB1K1NR w KQkq - 4 4", ["h5f7"], None, {"opening", "mateIn1"}, {"endgame"}),
    # a back-rank check that is no mate (the king takes the queen): the queen is given for nothing
    ("4k3/8/8/8/8/8/8/3QK2R w K - 0 1", ["d1d8"], None, {"oneMove", "endgame", "sacrifice"},
     {"mate", "mateIn1", "backRankMate", "quietMove", "fork", "hangingPiece", "castling"}),
])
def test_tags(fen, line, score, expected, absent):
    tags = set(tag(chess.Board(fen), line, score))
    assert expected <= tags, tags
    assert not (absent & tags), tags
    assert tags <= set(THEMES)


def test_double_and_discovered_check():
    start = chess.Board("4k3/8/8/8/4N3/8/8/4RK2 w - - 0 1")  # the knight blocks the rook's check
    both = tag(start, ["e4d6"])  # the knight checks too: double check
    assert {"doubleCheck", "discoveredAttack"} <= set(both)
    single = tag(start, ["e4c5"])  # only the rook checks
    assert "discoveredAttack" in single and "doubleCheck" not in single


def test_phase():
    assert phase(chess.Board()) == "opening"
    assert phase(chess.Board("4k3/8/8/8/8/8/8/R3K3 w - - 0 40")) == "endgame"
    assert phase(chess.Board("r1bq1rk1/pppp1ppp/2n2n2/8/8/2N2N2/PPPP1PPP/R1BQ1RK1 w - - 0 20")) == "middlegame"


def test_difficulty_estimate():
    easy, _ = estimate(weak_prob=0.9, weak_rank=1, legal=30, depth_found=1, solver_moves=1)
    hard, detail = estimate(weak_prob=0.01, weak_rank=25, legal=30, depth_found=18, solver_moves=4)
    assert 0 <= easy < 0.1 < 0.8 < hard <= 1
    assert detail["signals"]["length"] == 1 and detail["weak_rank"] == 25
    only_engine, d = estimate(depth_found=10, solver_moves=1)  # no weak network: weights renormalised
    assert only_engine == pytest.approx(0.35 * 0.5 / 0.5) and "weak_prob" not in d["signals"]
    assert policy_rank([1, 2, 3], [0.2, 0.5, 0.3], 3) == (0.3, 2, 3)


def test_checkpoint_series(tmp_path):
    for step in (0, 5, 40):
        (tmp_path / f"r-step{step:06d}.pb.gz").write_bytes(b"x")
        (tmp_path / f"r-step{step:06d}.json").write_text(f'{{"run": "r", "step": {step}, "file": "r-step{step:06d}.pb.gz"}}')
    assert weakest_checkpoint(tmp_path / "r-step000040.pb.gz") == tmp_path / "r-step000005.pb.gz"
    assert checkpoint_label(tmp_path / "r-step000040.pb.gz") == "r@40"
    assert checkpoint_label(tmp_path / "other.pb.gz") == "other.pb.gz" and weakest_checkpoint(tmp_path / "other.pb.gz") is None
