"""histories_of replays positions together (a tree of shared move prefixes, conceptchess.lc0.replay);
it must equal history_of, python-chess replaying each position alone, bit for bit and error for error."""

import random

import chess
import chess.pgn
import numpy as np
import pytest

from conceptchess.datasets import position_record
from conceptchess.errors import PositionError
from conceptchess.positions import PositionSpec, histories_of, history_of
from tests.helpers import cli

FIELDS = ("boards", "reps", "black", "castling", "rule50")


def assert_equals_one_at_a_time(specs: list[PositionSpec]) -> None:
    hist, boards = histories_of(specs)
    assert len(hist) == len(boards) == len(specs)
    for i, spec in enumerate(specs):
        h, board = history_of(spec)
        for f in FIELDS:
            got, want = getattr(hist, f)[i], getattr(h, f)[0]
            assert got.dtype == want.dtype and np.array_equal(got, want), (spec.id, f)
        b = boards[i]
        assert (b.fen(en_passant="fen"), b.promoted, b.chess960, b.move_stack) == (board.fen(en_passant="fen"), board.promoted, False, []), spec.id
        assert b == board and b.ep_square == board.ep_square, spec.id


def real_games(path, n: int) -> list[list[str]]:
    out = []
    with open(path, encoding="utf-8") as f:
        while len(out) < n and (g := chess.pgn.read_game(f)) is not None:
            out.append([m.uci() for m in g.mainline_moves()])
    return out


def random_game(rng: random.Random, board: chess.Board, plies: int) -> list[str]:
    """Seeded random legal play from ``board`` (not modified): checks, promotions, en passant, castling."""
    b, out = board.copy(stack=False), []
    for _ in range(plies):
        moves = list(b.legal_moves)
        if not moves:
            break
        # prefer the rare moves, so that a few hundred games hold many of them
        special = [m for m in moves if m.promotion or b.is_en_passant(m) or b.is_castling(m)]
        m = rng.choice(special if special and rng.random() < 0.7 else moves)
        out.append(m.uci())
        b.push(m)
    return out


def test_real_games_shared_prefixes_fen_starts_and_shuffled_order(lichess_pgn, shared_data):
    games = real_games(lichess_pgn, 40) + real_games(shared_data / "pgn" / "lichess_DrDrunkenstein_2019-01-29.pgn", 20)
    rng = random.Random(3)
    specs = []
    for g, moves in enumerate(games):
        for t in range(0, len(moves) + 1, 3):  # full move lists: every position shares its game's prefix
            specs.append(PositionSpec(f"g{g}-p{t}", None, moves[:t]))
        start, ms = chess.Board(), [chess.Move.from_uci(u) for u in moves]
        for t in rng.sample(range(len(ms) + 1), min(12, len(ms) + 1)):  # positions from-pgn writes: FEN + recent moves
            rec = position_record(start, ms, t)
            specs.append(PositionSpec(f"g{g}-r{t}", rec.get("fen"), rec["moves"]))
    specs += [PositionSpec(f"dup{i}", s.fen, list(s.moves)) for i, s in enumerate(rng.sample(specs, 30))]
    assert any(s.fen for s in specs) and any(len(s.moves) > 100 for s in specs)
    rng.shuffle(specs)
    assert_equals_one_at_a_time(specs)


def test_random_play_from_the_start_and_from_fens():
    rng = random.Random(11)
    specs = []
    for g in range(60):
        start = chess.Board()
        if g % 2:  # a FEN start: a position reached by random play, written with its en-passant square
            for u in random_game(rng, start, rng.randrange(1, 60)):
                start.push(chess.Move.from_uci(u))
        fen = None if g % 2 == 0 else start.fen(en_passant="fen")
        moves = random_game(rng, start, rng.randrange(20, 160))
        for t in rng.sample(range(len(moves) + 1), min(15, len(moves) + 1)):
            specs.append(PositionSpec(f"{g}-{t}", fen, moves[:t]))
    rng.shuffle(specs)
    assert_equals_one_at_a_time(specs)


def test_every_move_text_is_played_exactly_when_python_chess_finds_it_legal():
    """The fast replay's legality check against python-chess, one move from many positions."""
    from conceptchess.lc0.replay import replay

    rng = random.Random(5)
    fens = ["r3k2r/8/8/8/8/8/8/R3K2R w KQkq - 0 1", "r3k2r/8/8/8/8/8/8/R3K2R b KQkq - 0 1",
            "r3k2r/8/8/8/8/5b2/8/R3K2R w KQkq - 0 1", "rn2k2r/8/8/8/8/8/8/R3K1NR b KQkq - 0 1",
            "8/8/8/KPp4r/8/8/8/7k w - c6 0 2", "4k3/8/8/8/1pP5/8/8/4K3 b - c3 0 1", "4k3/8/8/q7/1pP5/8/8/4K3 b - c3 0 1", "4k3/1P6/8/8/8/8/6p1/4K2R w K - 0 1"]
    for _ in range(40):
        b = chess.Board()
        for u in random_game(rng, b, rng.randrange(10, 120)):
            b.push(chess.Move.from_uci(u))
        fens.append(b.fen(en_passant="fen"))
    texts = [a + b for a in chess.SQUARE_NAMES for b in chess.SQUARE_NAMES if a != b]
    texts += [m + p for m in texts if m[1] in "27" and m[3] in "18" for p in "qrbnk"]
    positions, want = [], []
    for fen in fens:
        board = chess.Board(fen)
        assert board.is_valid(), fen
        for u in texts:
            move = chess.Move.from_uci(u)
            legal = board.is_legal(move)
            if legal or board.is_pseudo_legal(move) or rng.random() < 0.02:
                positions.append((fen, [u]))
                after = board.copy(stack=False)
                if legal:
                    after.push(move)
                want.append((legal, move, after))
    r = replay(positions, histories=False)
    assert sum(w[0] for w in want) > 1000 and sum(not w[0] for w in want) > 1000
    for (fen, [u]), (legal, move, after), got in zip(positions, want, r.boards):
        king_takes_rook = legal and chess.Board(fen).is_castling(move) and chess.square_distance(move.from_square, move.to_square) > 2
        if not legal or king_takes_rook:  # king-takes-rook castling is legal but left to python-chess
            assert got is None, (fen, u)
        else:
            assert got is not None and got == after and got.fen(en_passant="fen") == after.fen(en_passant="fen"), (fen, u)


def test_fens_the_replay_reads_itself_are_read_as_python_chess_reads_them():
    """FENs as python-chess writes them (positions from-pgn's origins) are read without python-chess when
    that is simple; whatever is read so python-chess finds valid and reads the same, the rest is left to it."""
    from conceptchess.lc0.encoder import board_row
    from conceptchess.lc0.replay import _fen_state

    rng = random.Random(13)
    written, fens = [], ["8/8/8/8/8/8/8/8 w - - 0 1", "4k3/8/8/8/8/8/8/4K1R1 w K - 0 1", "4k3/8/8/8/8/8/8/4K3 w - - 00 0",
                         "rnbqkbnr/pppp1ppp/8/4p3/4P3/8/PPPP1PPP/RNBQKBNR w KQkq e3 0 2", "4k3/8/8/8/8/8/8/4K3 w - - 0 1 x"]
    for _ in range(150):
        b = chess.Board()
        for u in random_game(rng, b, rng.randrange(1, 150)):
            b.push(chess.Move.from_uci(u))
            if rng.random() < 0.1:
                written.append(b.copy(stack=False))
                fens += [b.fen(), b.fen(en_passant="fen")]
    for fen in fens[:1500]:  # typos: python-chess must refuse them or read them as the replay does
        i = rng.randrange(len(fen))
        fens += [fen[:i] + rng.choice("12345678/pnbrqkPNBRQK wb-KQkqaeh0~ ") + fen[i + 1 :], fen[:i] + fen[i + 1 :]]
    accepted = 0
    for fen in fens:
        state = _fen_state(fen)
        if state is not None:
            accepted += 1
            board = chess.Board(fen)
            assert board.is_valid(), fen
            assert state == (board_row(board), board.turn, board.castling_rights, board.ep_square, board.halfmove_clock,
                             board.fullmove_number, board.promoted), fen
    assert accepted > 1500
    assert all(_fen_state(b.fen(en_passant="fen")) is not None for b in written if not b.is_check())


def test_repetitions_null_moves_and_king_takes_rook_castling():
    shuffle = ["g1f3", "g8f6", "f3g1", "f6g8"] * 3
    specs = [PositionSpec(f"r{t}", None, shuffle[:t]) for t in range(len(shuffle) + 1)]
    specs += [PositionSpec("null", None, ["e2e4", "0000", "d2d4"]),  # python-chess plays a null move: so do we
              PositionSpec("e1h1", "r3k2r/8/8/8/8/8/8/R3K2R w KQkq - 0 1", ["e1h1", "e8a8"]),
              PositionSpec("startfen", chess.STARTING_FEN, ["e2e4"]), PositionSpec("emptyfen", "", ["e2e4"])]
    assert_equals_one_at_a_time(specs)
    hist, _ = histories_of(specs[:13])
    assert hist.reps[4].tolist() == [1, 0, 0, 0, 0, 0, 0, 0]  # back at the start position after 4 plies
    assert hist.reps[12].tolist() == [1, 1, 1, 1, 1, 1, 1, 1]


def test_duplicate_positions_get_a_board_each():
    hist, boards = histories_of([PositionSpec(1, None, ["e2e4"]), PositionSpec(2, None, ["e2e4"])])
    assert boards[0] == boards[1] and boards[0] is not boards[1]


@pytest.mark.parametrize("bad, message", [
    (PositionSpec(7, None, ["e2e4", "e7e5", "e1e3"]), "id=7: move 3 'e1e3' is illegal in rnbqkbnr/pppp1ppp/8/4p3/4P3/8/PPPP1PPP/RNBQKBNR w KQkq - 0 2"),
    (PositionSpec(7, None, ["e2e4", "zz"]), "id=7: move 2 'zz' is not UCI notation"),
    (PositionSpec(7, None, ["e2e4", 5]), "id=7: move 2 5 is not UCI notation"),
    (PositionSpec(7, None, ["e2e4", ["e7e5"]]), "id=7: move 2 ['e7e5'] is not UCI notation"),
    (PositionSpec(7, None, ["e2e4", "e7e5", "e1g1"]), "id=7: move 3 'e1g1' is illegal in"),
    (PositionSpec(7, "not a fen", ["e2e4"]), "id=7: malformed FEN 'not a fen'"),
    (PositionSpec(7, "8/8/8/8/8/8/8/8 w - - 0 1", []), "id=7: illegal position in FEN"),
])
def test_errors_are_the_one_at_a_time_errors_in_input_order(bad, message):
    good = [PositionSpec(i, None, ["e2e4", "e7e5", "g1f3"][:i]) for i in range(4)]
    later_bad = PositionSpec(8, None, ["e2e4", "e2e4"])
    with pytest.raises(PositionError) as alone:
        history_of(bad, "f.jsonl: ")
    with pytest.raises(PositionError) as together:
        histories_of([*good, bad, later_bad], "f.jsonl: ")
    assert str(together.value) == str(alone.value) and str(alone.value).startswith("f.jsonl: " + message)
    assert "\n" not in str(together.value)


# -- the commands that read positions ----------------------------------------------------------------------
def shuffled_records(lichess_pgn, games: int, every: int) -> list[dict]:
    rng = random.Random(9)
    recs = []
    for g, moves in enumerate(real_games(lichess_pgn, games)):
        ms = [chess.Move.from_uci(u) for u in moves]
        for t in range(0, len(moves) + 1, every):
            recs.append({"id": f"g{g}-p{t}", "moves": moves[:t]})
            recs.append({"id": f"g{g}-r{t}", **position_record(chess.Board(), ms, t)})
    rng.shuffle(recs)
    return recs


def test_net_eval_input_writes_what_one_position_at_a_time_gives(tmp_path, lichess_pgn, maia1100):
    import json

    from conceptchess.engine import Engine
    from conceptchess.lc0.encoder import Histories

    recs = shuffled_records(lichess_pgn, 8, 5)
    inp, out = tmp_path / "p.jsonl", tmp_path / "o.jsonl"
    inp.write_text("".join(json.dumps(r) + "\n" for r in recs))
    r = cli("net", "eval", str(maia1100), "--input", str(inp), "--output", str(out), "--batch-size", "8",
            "--threads", "1", "--device", "cpu")  # chunks of 32: several in flight
    assert r.exit_code == 0, r.output
    assert len(recs) > 150
    specs = [PositionSpec.from_dict(rec) for rec in recs]
    alone = [history_of(s) for s in specs]
    evs = Engine(maia1100, batch_size=8, threads=1, device="cpu").evaluate(Histories.concat([h for h, _ in alone]), [b for _, b in alone])
    assert out.read_text() == "".join(json.dumps(ev.to_json(s.id)) + "\n" for s, ev in zip(specs, evs))


def test_net_eval_input_error_in_a_later_chunk_leaves_nothing(tmp_path, lichess_pgn, maia1100):
    import json


    recs = shuffled_records(lichess_pgn, 4, 5)
    recs.insert(150, {"id": "bad", "moves": ["e2e4", "e7e5", "e1e3"]})
    inp, out = tmp_path / "p.jsonl", tmp_path / "o.jsonl"
    inp.write_text("".join(json.dumps(r) + "\n" for r in recs))
    r = cli("net", "eval", str(maia1100), "--input", str(inp), "--output", str(out), "--batch-size", "8")
    assert r.exit_code == 2
    assert r.output.strip() == "error: id=bad: move 3 'e1e3' is illegal in rnbqkbnr/pppp1ppp/8/4p3/4P3/8/PPPP1PPP/RNBQKBNR w KQkq - 0 2"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p.jsonl"]


def test_concepts_label_equals_labels_of_boards_replayed_alone(tmp_path, lichess_pgn):
    import json

    from conceptchess.concepts import label
    from conceptchess.concepts.table import write_table

    recs = shuffled_records(lichess_pgn, 3, 11)
    inp, out, want = tmp_path / "p.jsonl", tmp_path / "l.csv", tmp_path / "want.csv"
    inp.write_text("".join(json.dumps(r) + "\n" for r in recs))
    r = cli("concepts", "label", "--input", str(inp), "--output", str(out))
    assert r.exit_code == 0, r.output
    write_table(want, [rec["id"] for rec in recs], label([PositionSpec.from_dict(rec).board() for rec in recs]))
    assert out.read_text() == want.read_text()
