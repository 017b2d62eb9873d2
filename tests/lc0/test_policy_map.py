"""The 1858 policy map, checked against known lc0 facts and lc0's own export."""

import chess
import numpy as np
import onnx
from onnx import numpy_helper

from conceptchess.lc0.policy_map import CONV_POLICY_MAP, N_POLICY, POLICY_INDEX, POLICY_MOVES, legal_move_indices, move_to_index


def test_size_and_layout():
    assert N_POLICY == 1858 == len(set(POLICY_MOVES))
    # 1792 queen/knight moves, then 66 promotions (22 pawn moves × q, r, b).
    assert sum(len(m) == 5 for m in POLICY_MOVES) == 66
    assert all(len(m) == 4 for m in POLICY_MOVES[:1792])
    # From a1: the rook line, then a2/b2/c2 (c2 is a knight jump), a3, b3 (knight), c3, ...
    assert POLICY_MOVES[:10] == ("a1b1", "a1c1", "a1d1", "a1e1", "a1f1", "a1g1", "a1h1", "a1a2", "a1b2", "a1c2")
    # A corner square reaches 21 queen squares + 2 knight squares.
    assert sum(m.startswith("a1") for m in POLICY_MOVES) == 23
    # A central square reaches 27 queen squares + 8 knight squares.
    assert sum(m.startswith("d4") for m in POLICY_MOVES) == 35


def test_black_moves_are_flipped_castling_is_king_takes_rook_knight_promotion_is_plain():
    assert move_to_index(chess.Move.from_uci("e7e5"), turn_white=False) == POLICY_INDEX["e2e4"]
    b = chess.Board("r3k2r/8/8/8/8/8/8/R3K2R b KQkq - 0 1")
    moves, idx = legal_move_indices(b)
    by_uci = dict(zip((m.uci() for m in moves), idx.tolist()))
    assert by_uci["e8g8"] == POLICY_INDEX["e1h1"]
    assert by_uci["e8c8"] == POLICY_INDEX["e1a1"]
    p = chess.Board("8/1P6/8/8/8/8/8/k6K w - - 0 1")
    moves, idx = legal_move_indices(p)
    by_uci = dict(zip((m.uci() for m in moves), idx.tolist()))
    assert by_uci["b7b8n"] == POLICY_INDEX["b7b8"]
    assert by_uci["b7b8q"] == POLICY_INDEX["b7b8q"]
    assert by_uci["b7b8r"] == POLICY_INDEX["b7b8r"]
    assert len(set(idx.tolist())) == len(idx)  # four promotions, four distinct indices


def test_every_legal_move_in_real_games_has_an_index(lichess_pgn):
    import chess.pgn

    with open(lichess_pgn) as f:
        for _ in range(30):
            game = chess.pgn.read_game(f)
            board = game.board()
            for move in game.mainline_moves():
                _, idx = legal_move_indices(board)
                assert (idx >= 0).all() and len(set(idx.tolist())) == len(idx)
                board.push(move)


def test_convolution_map_equals_lc0_mapping_table(lc0_onnx_dir):
    """lc0's leela2onnx gathers the 80×8×8 policy planes with this table; ours is built from rules."""
    model = onnx.load(str(lc0_onnx_dir / "maia-1100.onnx"))
    table = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}["/const/mapping_table"]
    np.testing.assert_array_equal(table, CONV_POLICY_MAP)
