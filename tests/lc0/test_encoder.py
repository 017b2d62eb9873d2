"""The 112-plane encoder on hand-worked positions (plane layout from lc0's INPUT_CLASSICAL_112_PLANE)."""

import chess
import numpy as np
import pytest

from conceptchess.lc0.encoder import board_histories, encode, encode_boards, game_histories
from conceptchess.lc0.replay import replay
from conceptchess.positions import PositionSpec


def planes_of(fen=None, moves=()):
    return encode_boards([PositionSpec("t", fen, list(moves)).board()])[0]


def rows(plane):
    """A plane as 8 strings, row 0 = rank 1 of the side to move's frame."""
    return ["".join("1" if x else "." for x in r) for r in plane]


def test_start_position_no_history_no_fill():
    p = planes_of()
    assert rows(p[0])[1] == "11111111" and p[0].sum() == 8  # our pawns on rank 2
    assert rows(p[5])[0] == "....1..." and p[5].sum() == 1  # our king e1
    assert rows(p[11])[7] == "....1..." and p[11].sum() == 1  # their king e8
    assert rows(p[3])[0] == "1......1"  # our rooks
    assert p[12].sum() == 0  # no repetition
    assert p[13:104].sum() == 0  # a game from the start position leaves missing history empty
    assert (p[104:108] == 1).all()  # all four castling rights
    assert (p[108] == 0).all() and (p[109] == 0).all() and (p[110] == 0).all() and (p[111] == 1).all()


def test_black_to_move_is_flipped_and_history_is_in_its_frame():
    p = planes_of(moves=["e2e4"])
    assert (p[108] == 1).all()
    # Step 0: our (black) pawns on our 2nd rank; their (white) pawns on their 2nd rank but e-pawn on e4,
    # which is row 7-3 = 4 from black's side.
    assert rows(p[0])[1] == "11111111" and p[0].sum() == 8
    assert rows(p[6])[6] == "1111.111" and rows(p[6])[4] == "....1..."
    assert rows(p[5])[0] == "....1..."  # black king e8 seen from black's side: row 0, file e
    # Step 1 = the start position, also from black's side: white pawns all on row 6.
    assert rows(p[13 + 6])[6] == "11111111" and p[13 + 6].sum() == 8
    assert p[26:104].sum() == 0


def test_castling_planes_follow_the_side_to_move():
    w = planes_of("r3k2r/8/8/8/8/8/8/R3K2R w Kq - 0 1")
    assert [w[i, 0, 0] for i in range(104, 108)] == [0, 1, 1, 0]  # us O-O-O, us O-O, them O-O-O, them O-O
    b = planes_of("r3k2r/8/8/8/8/8/8/R3K2R b Kq - 0 1")
    assert [b[i, 0, 0] for i in range(104, 108)] == [1, 0, 0, 1]
    assert (w[104:108].reshape(4, 64).min(1) == w[104:108].reshape(4, 64).max(1)).all()  # whole planes


def test_rule50_plane_is_the_unscaled_ply_count():
    p = planes_of("8/8/4k3/8/8/4K3/8/7R w - - 37 80")
    assert (p[109] == 37).all()
    q = planes_of("8/8/4k3/8/8/4K3/8/7R w - - 37 80", ["h1h2"])
    assert (q[109] == 38).all()


def test_repetition_planes():
    p = planes_of(moves=["g1f3", "g8f6", "f3g1", "f6g8"])  # back to the start position
    assert (p[12] == 1).all()  # step 0 has occurred before
    assert p[13 * 4 + 12].sum() == 0  # the first occurrence (step 4) has not
    q = planes_of(moves=["g1f3", "g8f6", "f3g1", "f6g8", "g1f3"])
    assert (q[12] == 1).all() and q[13 * 4 + 12].sum() == 0 and q[13 * 1 + 12].sum() == 64
    # An irreversible move in between resets the count: the later position is not a repetition.
    r = planes_of(moves=["g1f3", "g8f6", "e2e4", "e7e5", "f3g1", "f6g8", "g1f3"])
    assert r[12].sum() == 0


def test_fen_only_fills_history_with_copies_and_undoes_the_double_push():
    fen = "rnbqkbnr/pppppppp/8/8/4P3/8/PPPP1PPP/RNBQKBNR b KQkq e3 0 1"
    p = planes_of(fen)
    # Step 0: white's e-pawn on e4 (black's frame: row 4).
    assert rows(p[6])[4] == "....1..."
    for i in range(1, 8):
        their_pawns = p[13 * i + 6]
        assert rows(their_pawns)[6] == "11111111" and their_pawns.sum() == 8  # e-pawn back on e2
        np.testing.assert_array_equal(p[13 * i : 13 * i + 6], p[0:6])  # our pieces copied unchanged
        assert p[13 * i + 12].sum() == 0


def test_fewer_than_eight_plies_from_a_fen_fill_the_rest_with_its_first_position():
    fen = "4k3/8/8/8/8/8/8/R3K3 w Q - 0 1"
    p = planes_of(fen, ["a1a2", "e8d8"])
    assert rows(p[3])[1] == "1......."  # step 0: rook a2
    assert rows(p[13 + 3])[1] == "1......."  # step 1: rook a2 (before e8d8)
    for i in range(2, 8):
        assert rows(p[13 * i + 3])[0] == "1......." and p[13 * i + 3].sum() == 1  # the FEN position
        assert rows(p[13 * i + 11])[7] == "....1..."  # their king still on e8


def test_fen_only_without_history_differs_from_empty_history():
    fen = "r1bqkb1r/pppp1ppp/2n2n2/4p2Q/2B1P3/8/PPPP1PPP/RNB1K1NR w KQkq - 4 4"
    p = planes_of(fen)
    for i in range(1, 8):
        np.testing.assert_array_equal(p[13 * i : 13 * i + 12], p[0:12])


def test_batch_equals_singles_and_game_replay_equals_board_stacks():
    moves = [chess.Move.from_uci(u) for u in ["e2e4", "c7c5", "g1f3", "d7d6", "d2d4", "c5d4", "f3d4", "g8f6", "b1c3", "a7a6", "c1e3"]]
    h, boards = game_histories(chess.Board(), moves, keep_boards=True)
    batch = encode(h)
    b = chess.Board()
    singles = [encode_boards([b.copy()])[0]]
    for m in moves:
        b.push(m)
        singles.append(encode_boards([b.copy()])[0])
    np.testing.assert_array_equal(batch, np.stack(singles))  # mixed colours vs the batch-1 path
    np.testing.assert_array_equal(encode(h[1::2]), np.stack(singles[1::2]))  # a batch all black to move
    np.testing.assert_array_equal(encode(h[0::2]), np.stack(singles[0::2]))  # all white to move
    assert [x.fen() for x in boards][-1] == b.fen()
    assert len(board_histories([b, b])) == 2


# -- the fast replay (conceptchess.lc0.replay) against game_histories -------------------------------------------
SPECIAL_GAMES = [
    # castling both ways, en passant, captures (checked against python-chess in the test)
    (None, "e2e4 d7d5 e4d5 c7c5 d5c6 b8c6 g1f3 g8f6 f1b5 c8d7 e1g1 e7e5 d2d4 d8e7 c1g5 e8c8 g5f6 g7f6 b1c3 h8g8 "
           "b5c6 d7c6 d4e5 e7e5 f3e5 f6e5 d1g4 c8b8 g4g8"),
    # a rook taken on its corner (castling rights), checks, castling queenside with its rook attacked
    ("r3k2r/8/8/8/8/8/8/R3K2R w KQkq - 0 1", "a1a7 h8h1 e1d2 e8c8 d2e3 d8d1 a7a8 c8c7"),
    # promotions: a queen taken at once, another from check, a knight by capture, a rook; castling after
    ("4r1k1/1P6/8/8/8/8/5p2/R6K w - - 0 40", "b7b8q e8b8 a1a8 b8a8 h1g2 f2f1q g2f1 a8a1 f1e2"),
    ("4k3/8/8/8/8/8/5p2/3K2N1 b - - 0 1", "f2g1n d1d2 g1f3 d2e3 f3g5"),
    ("4k3/8/8/8/8/8/p6P/2N1K2R b K - 0 1", "a2a1r h2h4 a1a8 e1g1 e8d7 h4h5 a8a1 f1f2 a1c1 g1h2"),
    # en passant from a FEN whose last move was a double push, then repetitions
    ("rnbqkbnr/ppp1p1pp/8/3pPp2/8/8/PPPP1PPP/RNBQKBNR w KQkq f6 0 3", "e5f6 g8f6 g1f3 f6g8 f3g1 g8f6 g1f3 f6g8 f3g1"),
]


@pytest.mark.parametrize("fen, moves", SPECIAL_GAMES)
def test_replay_equals_game_histories_on_every_ply(fen, moves):
    start = chess.Board(fen) if fen else chess.Board()
    ucis = moves.split()
    want, boards = game_histories(start, [chess.Move.from_uci(u) for u in ucis], keep_boards=True, check_legal=True)
    order = list(range(len(ucis) + 1))[::-1]  # longest first: the shorter ones are prefixes met later
    r = replay([(fen, ucis[:t]) for t in order])
    for f in ("boards", "reps", "black", "castling", "rule50"):
        np.testing.assert_array_equal(getattr(r.histories, f), getattr(want, f)[order], err_msg=f)
    for t, b in zip(order, r.boards):
        assert b == boards[t] and b.fen(en_passant="fen") == boards[t].fen(en_passant="fen") and b.promoted == boards[t].promoted


def test_replay_boards_only_and_declined_positions():
    r = replay([(None, ["e2e4", "e7e5"]), (None, ["e2e4", "e1e2", "e7e5"]), ("not a fen", []), (None, ["e2e4", 5])], histories=False)
    assert r.histories is None
    assert r.boards[0].fen() == "rnbqkbnr/pppp1ppp/8/4p3/4P3/8/PPPP1PPP/RNBQKBNR w KQkq - 0 2" and r.boards[1:] == [None, None, None]
    r = replay([(None, ["e2e4", "e2e4"]), (None, [])])
    assert r.boards[0] is None and r.histories.boards[0].sum() == 0 and r.histories.boards[1].any()
