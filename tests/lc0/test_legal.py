"""The batched legal-move generator against known perft counts, chess rules and python-chess."""

import chess
import pytest

from conceptchess.lc0.legal import legal_moves_batch
from conceptchess.lc0.policy_map import POLICY_INDEX, legal_move_indices
from tests.helpers import random_positions

# perft(n) = the number of move sequences of n plies (chessprogramming.org "Perft Results").
PERFT = [
    ("rnbqkbnr/pppppppp/8/8/8/8/PPPPPPPP/RNBQKBNR w KQkq - 0 1", [20, 400, 8902]),
    ("r3k2r/p1ppqpb1/bn2pnp1/3PN3/1p2P3/2N2Q1p/PPPBBPPP/R3K2R w KQkq - 0 1", [48, 2039, 97862]),  # "Kiwipete"
    ("8/2p5/3p4/KP5r/1R3p1k/8/4P1P1/8 w - - 0 1", [14, 191, 2812, 43238]),  # en passant, rook pins
    ("r3k2r/Pppp1ppp/1b3nbN/nP6/BBP1P3/q4N2/Pp1P2PP/R2Q1RK1 w kq - 0 1", [6, 264, 9467]),  # promotions, checks
    ("r2q1rk1/pP1p2pp/Q4n2/bbp1p3/Np6/1B3NBn/pPPP1PPP/R3K2R b KQ - 0 1", [6, 264, 9467]),  # its mirror, black to move
    ("rnbq1k1r/pp1Pbppp/2p5/8/2B5/8/PPP1NnPP/RNBQK2R w KQ - 1 8", [44, 1486, 62379]),
    ("r4rk1/1pp1qppp/p1np1n2/2b1p1B1/2B1P1b1/P1NP1N2/1PP1QPPP/R4RK1 w - - 0 10", [46, 2079, 89890]),
]


@pytest.mark.parametrize("fen,counts", PERFT, ids=[f"perft{i}" for i in range(len(PERFT))])
def test_perft_counts(fen, counts):
    """Each level's positions get their moves in one batch; the counts are the published perft values."""
    level = [chess.Board(fen)]
    for depth, want in enumerate(counts, start=1):
        lists = legal_moves_batch(level)
        assert sum(len(moves) for moves, _ in lists) == want, f"perft({depth})"
        if depth < len(counts):
            nxt = []
            for board, (moves, _) in zip(level, lists):
                for m in moves:
                    b = board.copy(stack=False)
                    b.push(m)
                    nxt.append(b)
            level = nxt


def _as_dict(pair):
    moves, idx = pair
    assert len(moves) == len(idx)
    return dict(zip(moves, idx.tolist()))


def _same_as_python_chess(boards):
    got = legal_moves_batch(boards)
    assert len(got) == len(boards)
    for board, pair in zip(boards, got):
        assert _as_dict(pair) == _as_dict(legal_move_indices(board)), board.fen()
        assert list(pair[1]) == sorted(pair[1]), "moves come in policy-index order"


def _uci(board):
    [(moves, _)] = legal_moves_batch([board])
    return {m.uci() for m in moves}


def test_en_passant_that_would_expose_the_king_along_the_rank_is_illegal():
    board = chess.Board("8/8/8/K2pP2q/8/8/8/7k w - d6 0 1")
    assert board.ep_square == chess.D6
    assert "e5d6" not in _uci(board) and "e5e6" in _uci(board)
    assert "e5d6" in _uci(chess.Board("8/8/8/K2pP3/8/8/8/7k w - d6 0 1"))  # no rook on the rank: allowed


def test_en_passant_removes_a_checking_pawn():
    board = chess.Board("8/8/8/2k5/3Pp3/8/8/4K3 b - d3 0 1")  # d2-d4 gave check to the king on c5
    assert board.is_check()
    assert "e4d3" in _uci(board)


def test_castling_rules():
    both = chess.Board("r3k2r/8/8/8/8/8/8/R3K2R w KQkq - 0 1")
    assert {"e1g1", "e1c1"} <= _uci(both)
    assert "e1g1" not in _uci(chess.Board("r3k2r/8/8/8/2b5/8/8/R3K2R w KQkq - 0 1"))  # f1 attacked
    assert "e1c1" in _uci(chess.Board("r3k2r/8/8/8/2b5/8/8/R3K2R w KQkq - 0 1"))
    assert "e1c1" in _uci(chess.Board("1r2k2r/8/8/8/8/8/8/R3K2R w KQk - 0 1"))  # only b1 attacked: allowed
    assert "e1c1" not in _uci(chess.Board("2r1k2r/8/8/8/8/8/8/R3K2R w KQk - 0 1"))  # c1 attacked
    assert not {"e1g1", "e1c1"} & _uci(chess.Board("r3k2r/8/8/8/8/8/8/R3K2R w - - 0 1"))  # no rights
    assert not {"e1g1", "e1c1"} & _uci(chess.Board("r3k2r/8/8/8/4r3/8/8/R3K2R w KQ - 0 1"))  # in check
    assert "e1g1" not in _uci(chess.Board("r3k2r/8/8/8/8/8/8/R3KN1R w KQ - 0 1"))  # f1 occupied
    [(moves, idx)] = legal_moves_batch([chess.Board("r3k2r/8/8/8/8/8/8/R3K2R b KQkq - 0 1")])
    by_uci = dict(zip((m.uci() for m in moves), idx.tolist()))
    assert (by_uci["e8g8"], by_uci["e8c8"]) == (POLICY_INDEX["e1h1"], POLICY_INDEX["e1a1"])  # king takes rook, own frame


def test_pins_double_check_mate_and_stalemate():
    assert not {m for m in _uci(chess.Board("4r1k1/8/8/8/8/8/4N3/4K3 w - - 0 1")) if m.startswith("e2")}  # pinned knight
    double = chess.Board("4k3/8/8/8/8/5n2/8/r3K3 w - - 0 1")  # rook and knight both give check
    assert len(double.checkers()) == 2
    assert all(m.startswith("e1") for m in _uci(double))
    assert _uci(chess.Board("7k/6Q1/6K1/8/8/8/8/8 b - - 0 1")) == set()  # checkmate
    assert _uci(chess.Board("7k/8/6QK/8/8/8/8/8 b - - 0 1")) == set()  # stalemate


def test_promotions_get_four_moves_each():
    board = chess.Board("1n5k/P7/8/8/8/8/8/7K w - - 0 1")
    promos = {m for m in _uci(board) if m.startswith("a7")}
    assert promos == {f"a7{t}{p}" for t in ("a8", "b8") for p in "qrbn"}
    _same_as_python_chess([board, board.mirror()])


def test_positions_outside_the_tables_fall_back_to_python_chess():
    odd = [
        chess.Board("8/8/8/8/8/8/8/K6k w - - 0 1"),
        chess.Board("8/8/8/8/8/8/8/7k w - - 0 1"),  # no white king
        chess.Board("k7/8/8/8/8/8/8/KP6 w - - 0 1"),  # a pawn on the first rank
        chess.Board("k7/8/8/3P4/8/8/8/K7 w - e6 0 1"),  # en-passant square without the pawn that moved
        chess.Board("1r2k2r/8/8/8/8/8/8/R3K2R w KQk - 0 1", chess960=True),
    ]
    _same_as_python_chess(odd)


def test_random_play_equals_python_chess():
    """3,000 positions from seeded random games: every legal move and index equal python-chess's."""
    boards = random_positions(3000, seed=20261126)
    for s in range(0, len(boards), 256):
        _same_as_python_chess(boards[s : s + 256])


def test_real_games_equal_python_chess(lichess_pgn):
    import chess.pgn

    boards = []
    with open(lichess_pgn) as f:
        for _ in range(150):
            game = chess.pgn.read_game(f)
            board = game.board()
            for move in game.mainline_moves():
                board.push(move)
                boards.append(board.copy(stack=False))
    _same_as_python_chess(boards)


def test_en_passant_after_a_double_push_in_a_game():
    board = chess.Board()
    for u in ("e2e4", "c7c5", "e4e5", "d7d5"):
        board.push_uci(u)
    assert "e5d6" in _uci(board)
    board.push_uci("g1f3")  # the chance is gone one move later
    board.push_uci("g8f6")
    assert "e5d6" not in _uci(board)
