"""Engine labels and the targets made from them: hand-worked scores, Stockfish on known positions,
resume after a kill, bad input refused with nothing written."""

import json
import math

import chess
import pytest

from conceptchess.datasets import DatasetWriter, merge_datasets, position_record, read_manifest
from conceptchess.enginelabels import (
    CHUNK,
    LabelSettings,
    TargetSettings,
    check_label,
    label_engine_dataset,
    policy_target,
    sparse_policy_target,
    wdl_target,
    win_chance,
)
from conceptchess.errors import ConceptChessError
from conceptchess.lc0.policy_map import move_to_index
from conceptchess.positions import PositionSpec
from tests.helpers import cli, random_move_lists, stockfish_or_skip

BACK_RANK = "6k1/5ppp/8/8/8/8/5PPP/R5K1 w - - 0 1"  # Ra8# is the only mate
STALEMATE = "7k/5Q2/6K1/8/8/8/8/8 b - - 0 1"
FAST = LabelSettings(nodes=400, multipv=3, workers=1)


def test_win_chance_by_hand():
    assert win_chance(0, None) == 0.5
    # Lichess: 1 / (1 + exp(-0.00368208 * 100))
    assert win_chance(100, None) == pytest.approx(1 / (1 + math.exp(-0.368208)))
    assert win_chance(-100, None) == pytest.approx(1 - win_chance(100, None))
    # mates rank beyond every centipawn score, shorter mates first; being mated sooner is worst
    assert win_chance(None, 1) > win_chance(None, 2) > win_chance(None, 9) > win_chance(5000, None)
    assert win_chance(None, -1) < win_chance(None, -3) < win_chance(-5000, None)


def test_policy_target_by_hand():
    board = chess.Board()  # 20 legal moves
    label = {"lines": [["e2e4", 30, None], ["d2d4", 30, None], ["a2a3", -100, None]], "wdl": [100, 850, 50]}
    s = TargetSettings(temperature=0.05, floor=0.1)
    p = policy_target(label, board, s)
    assert set(p) == {m.uci() for m in board.legal_moves}
    assert sum(p.values()) == pytest.approx(1.0)
    w_top, w_low = 1.0, math.exp((win_chance(-100, None) - win_chance(30, None)) / 0.05)
    assert p["e2e4"] == pytest.approx(0.9 * w_top / (2 * w_top + w_low) + 0.1 / 20)
    assert p["a2a3"] == pytest.approx(0.9 * w_low / (2 * w_top + w_low) + 0.1 / 20)
    assert p["g1f3"] == pytest.approx(0.1 / 20)  # not analysed: the floor only
    assert wdl_target(label) == pytest.approx((0.1, 0.85, 0.05))
    idx, probs, floor = sparse_policy_target(label, board, s)
    assert idx[0] == move_to_index(chess.Move.from_uci("e2e4"), chess.WHITE, False)
    assert probs[0] + floor == pytest.approx(p["e2e4"]) and floor == pytest.approx(0.005)


def test_mate_in_one_dominates_the_target():
    board = chess.Board(BACK_RANK)
    label = {"lines": [["a1a8", None, 1], ["a1a7", 900, None], ["g1f1", 0, None]], "wdl": [1000, 0, 0]}
    p = policy_target(label, board)
    assert max(p, key=p.get) == "a1a8" and p["a1a8"] > 0.97


@pytest.mark.parametrize("label, why", [
    ([], "expected an object"),
    ({"lines": [], "wdl": [1, 2, 3]}, "non-empty"),
    ({"lines": [["e2e5", 1, None]], "wdl": [1, 2, 3]}, "not legal"),
    ({"lines": [["e2e4", 1, 2]], "wdl": [1, 2, 3]}, "exactly one"),
    ({"lines": [["e2e4", 1, None], ["e2e4", 0, None]], "wdl": [1, 2, 3]}, "twice"),
    ({"lines": [["e2e4", 1, None]], "wdl": [1, 2]}, "three"),
    ({"lines": [["zz", 1, None]], "wdl": [1, 2, 3]}, "UCI"),
])
def test_malformed_labels_are_named(label, why):
    with pytest.raises(ConceptChessError, match=why):
        check_label(label, chess.Board(), "d id=1")


def _dataset(path, fens_or_games):
    with DatasetWriter(path, manifest={"origin": "human-games", "made_by": "test"}) as w:
        for g, item in enumerate(fens_or_games):
            if isinstance(item, str):
                w.write({"id": f"g{g}-p0", "fen": item, "moves": [], "game": g, "ply": 0, "move": None})
                continue
            for t in range(len(item) + 1):
                w.write({"id": f"g{g}-p{t}", **position_record(chess.Board(), item, t), "game": g, "ply": t,
                         "move": item[t].uci() if t < len(item) else None, "result": "1/2-1/2"})
    return path


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    stockfish_or_skip()
    return _dataset(tmp_path_factory.mktemp("el") / "small", [BACK_RANK, STALEMATE, *random_move_lists(2, 40, seed=3)])


def _records(folder):
    return [json.loads(line) for line in (folder / "positions.jsonl").read_text().splitlines()]


def test_stockfish_labels_known_positions(small, tmp_path):
    out = tmp_path / "labelled"
    m = label_engine_dataset(small, out, FAST)
    recs = _records(out)
    assert len(recs) == 2 + 2 * 41
    back_rank, stalemate = recs[0]["engine"], recs[1]["engine"]
    assert back_rank["lines"][0][:3] == ["a1a8", None, 1] and back_rank["wdl"] == [1000, 0, 0]
    assert stalemate is None
    assert m["engine_labels"]["stockfish"].startswith("Stockfish") and m["engine_labels"]["nodes"] == 400
    assert m["engine_labels"]["labelled"] == 83 and m["engine_labels"]["without_legal_moves"] == 1
    for r in recs[2:]:
        board = PositionSpec.from_dict(r).board()
        if r["engine"] is not None:
            check_label(r["engine"], board, r["id"])
            assert len(r["engine"]["lines"]) == min(3, board.legal_moves.count())
            scores = [win_chance(cp, mate) for _, cp, mate in r["engine"]["lines"]]
            assert scores == sorted(scores, reverse=True)  # a completed iteration: lines best first
    assert read_manifest(out)["origin"] == "human-games"


def test_killed_labelling_resumes_to_the_same_file(small, tmp_path):
    clean = tmp_path / "clean"
    label_engine_dataset(small, clean, FAST)

    out = tmp_path / "resumed"

    def kill(done, total):
        if done >= CHUNK:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        label_engine_dataset(small, out, FAST, progress=kill)
    work = tmp_path / "resumed.labelling"
    assert not out.exists() and work.exists()
    with open(work / "positions.jsonl", "ab") as f:  # a torn last line, as a kill mid-write leaves
        f.write(b'{"id": "g0-p')
    seen = []
    label_engine_dataset(small, out, FAST, progress=lambda d, t: seen.append(d))
    assert seen[0] == CHUNK and seen[-1] == 2 + 2 * 41
    assert (out / "positions.jsonl").read_bytes() == (clean / "positions.jsonl").read_bytes()
    assert not work.exists()


def test_resume_with_other_settings_is_refused(small, tmp_path):
    out = tmp_path / "o"
    with pytest.raises(KeyboardInterrupt):
        label_engine_dataset(small, out, FAST, progress=lambda d, t: (_ for _ in ()).throw(KeyboardInterrupt) if d else None)
    with pytest.raises(ConceptChessError, match="other input or settings"):
        label_engine_dataset(small, out, LabelSettings(nodes=500, multipv=3, workers=1))


def test_cli_label_engine_bad_input(tmp_path, small):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": 1, "moves": ["e2e4", "e2e4"]}\n')
    r = cli("positions", "label-engine", "--input", bad, "-o", tmp_path / "out")
    assert r.exit_code == 2 and "illegal" in r.output and not (tmp_path / "out").exists()
    assert not (tmp_path / "out.labelling").exists()
    r = cli("positions", "label-engine", "--input", small, "-o", tmp_path / "out", env={"CONCEPTCHESS_STOCKFISH": str(tmp_path / "none")})
    assert r.exit_code == 2 and "Stockfish" in r.output and not (tmp_path / "out").exists()
    r = cli("positions", "label-engine", "--input", small, "-o", tmp_path / "out", "--nodes", "0")
    assert r.exit_code == 2 and "--nodes must be at least 1" in r.output


def test_cli_label_engine(small, tmp_path):
    r = cli("positions", "label-engine", "--input", small, "-o", tmp_path / "out", "--nodes", "300", "--multipv", "2", "--workers", "2")
    assert r.exit_code == 0, r.output
    assert "labelled 83 positions (1 without a legal move)" in r.output


def test_merge_keeps_games_apart(small, tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    label_engine_dataset(small, a, FAST)
    label_engine_dataset(small, b, FAST)
    m = merge_datasets([a, b], tmp_path / "ab")
    recs = _records(tmp_path / "ab")
    assert len(recs) == 2 * 84 and recs[0]["id"] == "a/g0-p0" and recs[84]["id"] == "b/g0-p0"
    assert recs[0]["game"] == "a/0" and recs[84]["game"] == "b/0"
    assert m["engine_labels"]["labelled"] == 2 * 83 and m["origin"] == "human-games"
    with pytest.raises(ConceptChessError, match="different engine labels"):
        merge_datasets([a, small], tmp_path / "mixed")
    assert not (tmp_path / "mixed").exists()
    assert len({r["id"] for r in recs}) == len(recs)
