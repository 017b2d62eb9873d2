"""The verifier on hand-made positions: one winning move, two winning moves, several mates, and a
network that disagrees with Stockfish (lichess-puzzler's criterion, small node counts)."""

from __future__ import annotations

import chess
import chess.engine
import pytest
from test_puzzles_common import (
    FORK,
    MATE_IN_2,
    MATES,
    MATES_BUT_ALL_WIN,
    NODES,
    ONE_WINNER,
    TWO_WINNERS,
    network_or_skip,
    stockfish_or_skip,
)

from conceptchess.puzzles.verify import VerifySettings, check_line, find_line, fmt_score, judge, win_chances

S = VerifySettings(nodes=NODES)


@pytest.fixture(scope="module")
def sf():
    from conceptchess.puzzles.engine_pool import StockfishPool

    stockfish_or_skip()
    with StockfishPool(1) as pool:
        yield pool.engines[0]


def test_win_chances_is_lichess_formula():
    assert win_chances(chess.engine.Cp(0)) == 0
    assert win_chances(chess.engine.Cp(300)) == pytest.approx(2 / (1 + 2.718281828 ** (-0.00368208 * 300)) - 1, abs=1e-6)
    assert win_chances(chess.engine.Mate(3)) == 1 and win_chances(chess.engine.Mate(-2)) == -1
    assert win_chances(chess.engine.Cp(-500)) == -win_chances(chess.engine.Cp(500))
    assert fmt_score(chess.engine.Cp(123)) == "+1.23" and fmt_score(chess.engine.Mate(-2)) == "#-2"


def test_exactly_one_winning_move_is_accepted(sf):
    v = find_line(sf, chess.Board(ONE_WINNER), S)
    assert v.accepted, v.reason
    assert v.solution[0] == "f3d4" and len(v.solution) % 2 == 1
    assert v.first.gap > 0.7 and v.alternatives()[0] == []
    assert v.settings["nodes"] == NODES and v.settings["multipv"] == 2
    again = check_line(sf, chess.Board(ONE_WINNER), ["f3d4"], S)
    assert again.accepted, again.reason


def test_two_winning_moves_are_refused(sf):
    v = find_line(sf, chess.Board(TWO_WINNERS), S)
    assert not v.accepted
    assert v.reason.startswith("no unique move") and "Nxd4" in v.reason and "Rxd4" in v.reason and "gap" in v.reason
    assert not check_line(sf, chess.Board(TWO_WINNERS), ["f3d4"], S).accepted


def test_mate_in_one_accepts_every_mating_move(sf):
    v = find_line(sf, chess.Board(MATES), S)
    assert v.accepted, v.reason
    assert v.checkmate and len(v.solution) == 1
    assert {v.solution[0], *v.alternatives()[0]} == {"a1a8", "b1b8"}
    for move in ("a1a8", "b1b8"):  # either mate passes a re-check, and is a fine network move
        assert check_line(sf, chess.Board(MATES), [move], S).accepted
        assert find_line(sf, chess.Board(MATES), S, chess.Move.from_uci(move)).accepted


def test_mate_in_one_is_refused_when_a_non_mate_wins_too(sf):
    v = find_line(sf, chess.Board(MATES_BUT_ALL_WIN), S)
    assert not v.accepted and "non-mate" in v.reason


def test_network_and_stockfish_must_agree(sf):
    # the network plays Nxa7 (a pawn) where Nc7+ (fork) is the only good move
    v = find_line(sf, chess.Board(FORK), S, network_move=chess.Move.from_uci("b5a7"))
    assert not v.accepted
    assert v.reason == f"network plays Nxa7, Stockfish's only good move is Nc7+ ({fmt_score(v.first.best_score)})"
    agree = find_line(sf, chess.Board(FORK), S, network_move=chess.Move.from_uci("b5c7"))
    assert agree.accepted and agree.solution[0] == "b5c7"
    refused = check_line(sf, chess.Board(FORK), agree.solution, S, network_move=chess.Move.from_uci("b5a7"))
    assert not refused.accepted and "network plays Nxa7" in refused.reason


def test_real_network_verdict_matches_its_move(sf):
    from conceptchess.engine import Engine

    eng = Engine(network_or_skip(), device="cpu", threads=1)
    boards = [chess.Board(f) for f in (ONE_WINNER, FORK, MATES)]
    for b, ev in zip(boards, eng.evaluate_boards(boards), strict=True):
        plain = find_line(sf, b, S)
        with_net = find_line(sf, b, S, ev.best_move())
        assert with_net.accepted == (plain.accepted and ev.best_move() in plain.steps[0].accepted), (b.fen(), with_net.reason)


def test_line_extends_while_unique_and_ends_on_a_solver_move(sf):
    v = find_line(sf, chess.Board(FORK), S)
    assert v.accepted and len(v.solution) == 3 and v.solution[0] == "b5c7" and v.solution[2] == "c7a8"
    assert len(v.steps) == 2  # the third solver move (after Nxa8) is not unique: the line stopped before it
    m2 = find_line(sf, chess.Board(MATE_IN_2), S)
    assert m2.accepted and m2.checkmate and m2.solution == ["e2e8", "d8e8", "e1e8"]


def test_verdicts_are_reproducible(sf):
    a = find_line(sf, chess.Board(FORK), S)
    judge(sf, chess.Board(TWO_WINNERS), S)  # searching something else in between changes nothing
    b = find_line(sf, chess.Board(FORK), S)
    assert (a.solution, a.reason) == (b.solution, b.reason)


def test_check_line_reports_the_move_that_fails(sf):
    v = check_line(sf, chess.Board(FORK), ["b5a7"], S)
    assert not v.accepted and v.reason.startswith("move 1 (Nxa7): Stockfish's only good move is Nc7+")
    assert not check_line(sf, chess.Board(FORK), ["b5c7", "e8d7"], S).accepted  # must end on a solver move
    over = check_line(sf, chess.Board("8/8/8/8/8/5k2/8/5K2 w - - 0 1"), ["f1e1"], S)
    assert not over.accepted and over.reason.startswith("game over")


def test_pool_runs_two_processes_in_order():
    from conceptchess.puzzles.engine_pool import StockfishPool

    stockfish_or_skip()
    fens = [ONE_WINNER, TWO_WINNERS, FORK, MATES]
    with StockfishPool(2) as pool:
        assert pool.workers == 2 and pool.settings()["threads"] == 1
        verdicts = list(pool.map(lambda e, f: find_line(e, chess.Board(f), S), fens))
    assert [v.accepted for v in verdicts] == [True, False, True, True]
