"""The verifier on hand-made positions: one winning move, two winning moves, several mates, and a
network that disagrees with Stockfish (lichess-puzzler's criterion, small node counts); on real-game
only moves that merely hold the balance (refused unless the advantage floor is off); and the test of
a game decided before the move."""

from __future__ import annotations

import chess
import chess.engine
import pytest

from conceptchess.puzzles.verify import (
    NOT_UNIQUE,
    NOT_WINNING,
    VerifySettings,
    already_decided,
    check_line,
    find_line,
    fmt_score,
    judge,
    win_chances,
)
from tests.helpers import (
    EQUAL_ONLY_MOVES,
    FORCED_FINISH,
    FORK,
    MATE_IN_2,
    MATE_IN_2_SECOND_NOT_UNIQUE,
    MATES,
    MATES_BUT_ALL_WIN,
    NODES,
    ONE_WINNER,
    TWO_WINNERS,
    WON_BEFORE,
    cli,
    lichess_positions,
    network_or_skip,
    sqlite_db,
    stockfish_or_skip,
)

S = VerifySettings(nodes=NODES)
REAL_NODES = 150_000  # the node count at which the real-game only moves below were accepted before the advantage floor


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


def _board(record: dict) -> chess.Board:
    b = chess.Board()
    for u in record["moves"]:
        b.push_uci(u)
    return b


@pytest.fixture(scope="module")
def equal_only_moves():
    """The real-game positions of EQUAL_ONLY_MOVES, with their games' moves as history."""
    recs = lichess_positions([(site, ply) for site, ply, *_ in EQUAL_ONLY_MOVES])
    boards = [_board(r) for r in recs]
    assert [b.fen() for b in boards] == [fen for _, _, fen, _, _ in EQUAL_ONLY_MOVES]
    return boards


def test_the_advantage_floor_is_lichess_puzzlers_and_recorded():
    assert VerifySettings().min_advantage_cp == 200 and VerifySettings().as_dict()["min_advantage_cp"] == 200
    assert VerifySettings(min_advantage_cp=None).min_advantage_cp == 0 == VerifySettings(min_advantage_cp=0).as_dict()["min_advantage_cp"]


@pytest.mark.parametrize("k", range(len(EQUAL_ONLY_MOVES)))
def test_real_game_only_moves_that_do_not_win_are_refused_unless_the_floor_is_off(sf, equal_only_moves, k):
    _, _, _, uci, score = EQUAL_ONLY_MOVES[k]
    b, move = equal_only_moves[k], chess.Move.from_uci(uci)
    floor, off = VerifySettings(nodes=REAL_NODES), VerifySettings(nodes=REAL_NODES, min_advantage_cp=0)
    v = find_line(sf, b, floor, network_move=move)
    assert not v.accepted and v.category == NOT_WINNING
    assert v.reason == f"not winning enough: {b.san(move)} {score} < +2.00" and v.settings["min_advantage_cp"] == 200
    accepted = find_line(sf, b, off, network_move=move)
    assert accepted.accepted and accepted.solution[0] == uci and fmt_score(accepted.first.best_score) == score, accepted.reason
    assert accepted.settings["min_advantage_cp"] == 0
    refused = check_line(sf, b, [uci], floor)
    assert not refused.accepted and refused.category == NOT_WINNING and f"({score} < +2.00)" in refused.reason
    assert check_line(sf, b, [uci], off).accepted


def test_cli_verify_applies_the_advantage_floor(equal_only_moves, tmp_path):
    from conceptchess.puzzles.records import PuzzleRecord, add_to_collection
    from conceptchess.store.puzzles import Puzzle

    stockfish_or_skip()
    db = sqlite_db(tmp_path, "cli.sqlite")
    with db.begin() as s:
        add_to_collection(s, "equal", [PuzzleRecord(id=f"eq{k}", fen=b.fen(), start_fen=chess.STARTING_FEN, leading_moves=[m.uci() for m in b.move_stack],
                                              solution=[uci], side_to_solve="white", kind="imported", themes=[])
                                       for k, (b, (_, _, _, uci, _)) in enumerate(zip(equal_only_moves, EQUAL_ONLY_MOVES, strict=True))])
    env = {"CONCEPTCHESS_DB": f"sqlite:///{tmp_path / 'cli.sqlite'}"}
    r = cli("puzzles", "verify", "--collection", "equal", "--nodes", str(REAL_NODES), env=env)
    assert r.exit_code == 0, r.stderr
    assert "0 accepted, 3 rejected of 3 (not winning enough 3)" in r.stdout and "+2.00" in r.stdout
    with db.session() as s:
        assert [(p.verified, p.verify_settings["min_advantage_cp"]) for p in s.query(Puzzle).order_by(Puzzle.id)] == [(False, 200)] * 3
    r = cli("puzzles", "verify", "--collection", "equal", "--nodes", str(REAL_NODES), "--min-advantage", "0", env=env)
    assert r.exit_code == 0, r.stderr
    assert "3 accepted, 0 rejected of 3" in r.stdout and "no advantage floor" in r.stdout
    with db.session() as s:
        assert [(p.verified, p.verify_settings["min_advantage_cp"]) for p in s.query(Puzzle).order_by(Puzzle.id)] == [(True, 0)] * 3
    assert cli("puzzles", "verify", "--collection", "equal", "--min-advantage", "-1", env=env).exit_code == 2


def test_a_mate_line_with_an_ambiguous_later_move_is_refused_whole(sf):
    b = chess.Board(MATE_IN_2_SECOND_NOT_UNIQUE)
    v = find_line(sf, b, S)
    first, second = v.steps
    assert first.best.uci() == "e2e8" and first.unique and first.best_score.mate() == 2 and first.gap > 0.7
    # after Re8+ Qxe8: three mates in one, and a knight promotion that wins as well
    assert second.best_score.mate() == 1 and {m.uci() for m in second.accepted} == {"e1e8", "d7e8q", "d7e8r"}
    assert second.second.uci() == "d7e8n" and win_chances(second.second_score) > 0.6 and not second.unique
    assert not v.accepted and v.category == NOT_UNIQUE and v.reason.startswith("mate line: solver move 2 is not unique")
    assert v.solution[:2] == ["e2e8", "d8e8"]  # what was judged, not a one-move puzzle Re8+
    refused = check_line(sf, b, ["e2e8", "d8e8", "e1e8"], S)
    assert not refused.accepted and refused.reason.startswith("move 2 (Rxe8#): no unique move")
    assert find_line(sf, chess.Board(MATE_IN_2), S).accepted  # the same mate with one way to finish it


def test_a_final_forced_move_is_dropped(sf):
    b = chess.Board(FORCED_FINISH)
    b.push_uci("d5f6")
    b.push(sf.analyse(b, chess.engine.Limit(nodes=NODES), game=object())["pv"][0])
    assert b.peek().uci() == "f3g2" and [m.uci() for m in b.legal_moves] == ["h1g2"]  # Bxg2+: Kxg2 is forced
    v = find_line(sf, chess.Board(FORCED_FINISH), S)
    assert v.accepted and v.solution == ["d5f6"] and v.reason.endswith("final forced move dropped (1)")
    assert len(v.steps) == 1 and v.alternatives() == [[]]


def test_a_game_decided_before_the_move(sf):
    record = lichess_positions([WON_BEFORE[:2]])[0]
    b = _board(record)
    assert b.fen() == WON_BEFORE[2]
    v = find_line(sf, b, S, network_move=chess.Move.from_uci(WON_BEFORE[3]))
    assert v.accepted and v.first.best_score.score() >= 500, v.reason  # Bxf3 is the only move …
    d = already_decided(sf, b, v, S)
    assert d.decided and d.before_move == "f1f3" and d.before_cp >= 500 and d.reason.startswith("won before Rxf3+")  # … of a won game
    assert d.as_dict()["threshold_cp"] == 500 and not already_decided(sf, b, v, S, threshold_cp=2000).decided
    # Black's blunder Qd4 made the puzzle: before it, White was lost
    blunder = chess.Board("3q2k1/ppp2pp1/7p/8/8/5N2/PPP2PPP/6K1 b - - 0 20")
    blunder.push_uci("d8d4")
    v = find_line(sf, blunder, S)
    d = already_decided(sf, blunder, v, S)
    assert v.accepted and not d.decided and d.before_cp <= -500 and d.before_move == "d8d4"
    d = already_decided(sf, chess.Board(ONE_WINNER), find_line(sf, chess.Board(ONE_WINNER), S), S)
    assert not d.decided and d.before_cp is None  # no move stack: nothing to look back at
    # the two tests on the position itself (no accepted line can fail them at the default gap)
    lost = chess.Board("7r/8/8/3q4/4k3/8/8/K7 w - - 0 1")
    d = already_decided(sf, lost, find_line(sf, lost, S), S)
    assert d.decided and d.reason.startswith("lost whatever is played")
    d = already_decided(sf, chess.Board(MATES_BUT_ALL_WIN), find_line(sf, chess.Board(MATES_BUT_ALL_WIN), S), S)
    assert d.decided and d.reason.startswith("won whatever is played")
