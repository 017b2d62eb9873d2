"""The Engine on real Maia weights: known chess facts from ../shared/data/README.md."""

import chess
import numpy as np
import pytest

from conceptchess.engine import Engine
from conceptchess.errors import ConceptChessError
from conceptchess.lc0.encoder import board_histories
from conceptchess.positions import PositionSpec, histories_of

SCHOLAR = ["e2e4", "e7e5", "f1c4", "b8c6", "d1h5", "g8f6"]


@pytest.fixture(scope="module")
def maia(maia1900):
    return Engine(maia1900, device="cpu")


def test_qxf7_mate_with_game_history_and_with_fen_fill(maia):
    with_history = PositionSpec("h", None, SCHOLAR)
    fen_only = PositionSpec("f", with_history.board().fen(), [])
    hist, boards = histories_of([with_history, fen_only])
    for ev in maia.evaluate(hist, boards):
        move, p = ev.top(1)[0]
        assert move == "h5f7" and p > 0.85


def test_empty_history_misses_the_mate(maia):
    """lc0's README fact: with empty history Maia-1900 plays Nf3 (p ≈ 0.30)."""
    board = chess.Board(PositionSpec("f", None, SCHOLAR).board().fen())
    h = board_histories([board])
    h.boards[:, 1:] = 0
    move, p = maia.evaluate(h, [board])[0].top(1)[0]
    assert move == "g1f3" and 0.25 < p < 0.35


def test_policy_is_a_distribution_over_legal_moves_only(maia):
    board = PositionSpec("x", "r3k2r/pppq1ppp/2n1bn2/3pp3/3PP3/2N1BN2/PPPQ1PPP/R3K2R b KQkq - 3 8", []).board()
    ev = maia.evaluate_boards([board])[0]
    assert {m.uci() for m in ev.moves} == {m.uci() for m in board.legal_moves}
    assert abs(ev.policy.sum() - 1) < 1e-5 and (ev.policy > 0).all()
    assert abs(ev.wdl.sum() - 1) < 1e-5 and ev.value == pytest.approx(ev.wdl[0] - ev.wdl[2])
    assert "e8g8" in [m.uci() for m in ev.moves]  # castling reaches the policy through e8h8


def test_checkmated_position_has_no_moves(maia):
    board = chess.Board("rnb1kbnr/pppp1ppp/8/4p3/6Pq/5P2/PPPPP2P/RNBQKBNR w KQkq - 1 3")
    ev = maia.evaluate_boards([board])[0]
    assert ev.moves == [] and ev.best_move() is None


def test_unknown_tap_and_device(maia, maia1900):
    with pytest.raises(ConceptChessError, match="tap 'block9' is not in this network"):
        maia.run_planes(np.zeros((1, 112, 8, 8), np.float32), ["block9"])
    with pytest.raises(ConceptChessError, match="unknown device"):
        Engine(maia1900, device="tpu")


def test_pipelined_batches_equal_one_position_at_a_time(maia, lichess_pgn):
    """Tasks of several batches, a mated position inside a task: the same numbers as a plain run."""
    import chess.pgn

    from conceptchess.lc0.encoder import encode
    from conceptchess.lc0.policy_map import legal_move_indices

    boards = []
    with open(lichess_pgn) as f:
        game = chess.pgn.read_game(f)
    board = game.board()
    for move in list(game.mainline_moves())[:69]:
        board.push(move)
        boards.append(board.copy())
    boards.insert(40, chess.Board("rnb1kbnr/pppp1ppp/8/4p3/6Pq/5P2/PPPPP2P/RNBQKBNR w KQkq - 1 3"))
    hist = board_histories(boards)
    ref = maia.run_planes(encode(hist), maia.taps)
    for bs in (1, 7, 256):
        maia.batch_size = bs
        evs = maia.evaluate(hist, boards, ["block2"])
        for i, (b, ev) in enumerate(zip(boards, evs, strict=True)):
            moves, idx = legal_move_indices(b)
            want = dict(zip(moves, ref["policy"][i, idx].tolist()))
            assert dict(zip(ev.moves, ev.logits.tolist())) == pytest.approx(want, abs=1e-5)
            if moves:
                p = np.exp(ref["policy"][i, idx] - ref["policy"][i, idx].max())
                assert dict(zip(ev.moves, ev.policy.tolist())) == pytest.approx(dict(zip(moves, (p / p.sum()).tolist())), abs=1e-6)
            np.testing.assert_allclose(ev.wdl, ref["wdl"][i], atol=1e-6)
            np.testing.assert_allclose(ev.taps["block2"], ref["block2"][i], atol=1e-5)
        assert evs[40].moves == [] and len(evs[41].moves) > 0
    maia.batch_size = 256


def test_histories_and_boards_must_match_in_number(maia):
    boards = [chess.Board(), chess.Board()]
    with pytest.raises(ConceptChessError, match="2 histories but 1 boards"):
        maia.evaluate(board_histories(boards), boards[:1])


def test_evaluate_file_reproduces_evaluate_position_by_position(maia, maia1900, lichess_pgn, tmp_path):
    """Several chunks (32 positions each at batch 8), one position set up from a FEN: each written line is
    what Engine.evaluate gives that position alone; progress ends at (n, n)."""
    import json

    import chess.pgn

    from conceptchess.engine import evaluate_file

    with open(lichess_pgn) as f:
        moves = [m.uci() for m in chess.pgn.read_game(f).mainline_moves()][:80]
    specs = [PositionSpec(f"p{t}", None, moves[:t]) for t in range(len(moves) + 1)]
    specs.insert(33, PositionSpec("fen", "6k1/5ppp/8/8/8/8/5PPP/R5K1 w - - 0 1", ["a1a8"]))
    inp = tmp_path / "in.jsonl"
    inp.write_text("".join(json.dumps({"id": s.id, **({"fen": s.fen} if s.fen else {}), "moves": s.moves}) + "\n" for s in specs))
    seen = []
    written = evaluate_file(maia1900, inp, tmp_path / "out.jsonl", batch_size=8, device="cpu",
                            progress=lambda done, total: seen.append((done, total)))
    lines = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert (written.positions, written.provider, [d["id"] for d in lines]) == (len(specs), maia.provider, [s.id for s in specs])
    for spec, got in zip(specs, lines, strict=True):
        want = maia.evaluate(*histories_of([spec]))[0].to_json(spec.id)
        assert got["policy"] == pytest.approx(want["policy"], abs=1e-6) and got["wdl"] == pytest.approx(want["wdl"], abs=1e-6)
    assert seen[-1] == (len(specs), len(specs)) and [d for d, _ in seen] == sorted(d for d, _ in seen)
    assert lines[33]["policy"] == {}  # Ra8 mates: Black has no move
