"""Training: loss goes down, checkpoints are lc0 files, resume is exact, the student API learns."""

import copy
import json

import chess
import chess.pgn
import numpy as np
import pytest
import torch

from conceptchess.datasets import DatasetWriter, position_record
from conceptchess.engine import Engine
from conceptchess.errors import ConceptChessError
from conceptchess.lc0.encoder import encode
from conceptchess.lc0.model import Lc0Net
from conceptchess.lc0.weights import read_weights
from conceptchess.provenance import sha256_of
from conceptchess.training import (
    TrainConfig,
    Trainer,
    checkpoint_schedule,
    finetune_student,
    holdout_games,
    legal_masks,
    load_trainable,
    load_training_data,
    policy_distributions,
    top1_agreement,
)
from tests.helpers import cli


def make_dataset(pgn_path, out, games=25):
    with open(pgn_path) as f, DatasetWriter(out, manifest={"source": str(pgn_path)}) as w:
        for g in range(games):
            game = chess.pgn.read_game(f)
            moves = list(game.mainline_moves())
            for t in range(len(moves)):
                rec = {"id": f"g{g}-p{t}", **position_record(game.board(), moves, t), "game": g, "ply": t,
                       "move": moves[t].uci(), "result": game.headers["Result"], "plies_left": len(moves) - t}
                w.write(rec)
    return out


@pytest.fixture(scope="module")
def dataset(tmp_path_factory, lichess_pgn):
    return make_dataset(lichess_pgn, tmp_path_factory.mktemp("ds") / "lichess25")


TINY = dict(blocks=1, filters=8, se_channels=2, value_channels=4, value_hidden=16, batch_size=64, lr=3e-3, checkpoints=5, threads=1)


def test_schedule_includes_zero_and_the_end():
    s = checkpoint_schedule(2000, 10)
    assert s[0] == 0 and s[-1] == 2000 and len(s) == 10 and s == sorted(set(s))
    assert s[2] / s[1] > 1.5  # log-spaced, not linear


def test_split_never_shares_a_game():
    games = np.repeat(np.arange(50), 7)
    tr, ho = holdout_games(games.astype(str), 0.2, seed=3)
    assert set(games[tr]).isdisjoint(set(games[ho])) and len(set(games[ho])) == 10


def test_tiny_net_learns_and_writes_lc0_checkpoints(tmp_path, dataset):
    cfg = TrainConfig(run="t", steps=300, moves_left=True, seed=1, **TINY)
    trainer = Trainer(cfg, dataset, tmp_path)
    in_memory = {}  # step → a copy of the network being trained, taken as its checkpoint is written
    write = trainer._write_checkpoint

    def keep_a_copy(net, step, *args):
        in_memory[step] = copy.deepcopy(net).eval()
        return write(net, step, *args)

    trainer._write_checkpoint = keep_a_copy
    hist = trainer.run()
    assert [m["step"] for m in hist] == checkpoint_schedule(300, 5) == sorted(in_memory)
    first, last = hist[0], hist[-1]
    assert last["heldout_loss"] < first["heldout_loss"] - 0.5
    assert last["heldout_accuracy"] > first["heldout_accuracy"]
    for m in hist:
        p = tmp_path / m["file"]
        assert sha256_of(p) == m["sha256"]
        spec, _ = read_weights(p)
        assert spec.blocks == 1 and spec.moves_left
        assert json.loads(p.with_name(p.name.replace(".pb.gz", ".json")).read_text())["dataset_sha256"] == m["dataset_sha256"]
    # Each checkpoint file, run by the Engine (ONNX Runtime), reproduces the network it was written
    # from on real held-out positions, up to LINEAR16 quantisation (measured: logits within 3e-4, WDL
    # within 1e-4, moves-left within 0.004 plies) — far below what separates two checkpoints.
    planes = encode(trainer.data.hist[trainer.held_idx])
    assert len(planes) > 50
    expected = {}
    with torch.no_grad():
        for step, net in in_memory.items():
            expected[step] = {k: v.numpy() for k, v in net(torch.from_numpy(planes)).items()}
    for m in hist:
        got = Engine(tmp_path / m["file"], device="cpu", threads=1).run_planes(planes)
        want = expected[m["step"]]
        np.testing.assert_allclose(got["policy"], want["policy"], atol=2e-3, err_msg=m["file"])
        np.testing.assert_allclose(got["wdl"], want["wdl"], atol=1e-3, err_msg=m["file"])
        np.testing.assert_allclose(got["mlh"], want["mlh"].reshape(-1), atol=0.05, err_msg=m["file"])
    assert np.abs(expected[hist[-1]["step"]]["policy"] - expected[hist[-2]["step"]]["policy"]).max() > 1.0


def test_resume_after_interruption_equals_uninterrupted(tmp_path, dataset):
    cfg = TrainConfig(run="r", steps=40, seed=5, **TINY)
    data = load_training_data(dataset, max_positions=600)
    Trainer(cfg, dataset, tmp_path / "full", data=data).run()
    Trainer(cfg, dataset, tmp_path / "cut", data=data).run(stop_after=23)  # dies between checkpoints
    assert not (tmp_path / "cut" / "r-step000040.pb.gz").exists()
    Trainer(cfg, dataset, tmp_path / "cut", data=data).run()
    a = torch.load(tmp_path / "full" / "resume.pt", weights_only=False)["model"]
    b = torch.load(tmp_path / "cut" / "resume.pt", weights_only=False)["model"]
    for k in a:
        assert torch.equal(a[k], b[k]), k
    assert sha256_of(tmp_path / "full" / "r-step000040.pb.gz") == sha256_of(tmp_path / "cut" / "r-step000040.pb.gz")


def test_resume_with_another_architecture_is_refused(tmp_path, dataset):
    data = load_training_data(dataset, max_positions=200)
    Trainer(TrainConfig(run="a", steps=10, **TINY), dataset, tmp_path, data=data).run(stop_after=2)
    other = TrainConfig(run="a", steps=10, **{**TINY, "filters": 16})
    with pytest.raises(ConceptChessError, match="different architecture"):
        Trainer(other, dataset, tmp_path, data=data).run()


def test_student_learns_its_prototypes(tmp_path, dataset, maia1100):
    data = load_training_data(dataset, max_positions=160)
    teacher = load_trainable(maia1100)
    # load_trainable reproduces the file's network exactly
    spec, state = read_weights(maia1100)
    x = torch.from_numpy(np.random.default_rng(0).random((4, 112, 8, 8)).round().astype(np.float32))
    assert (teacher(x)["policy"] - Lc0Net.from_state(spec, state)(x)["policy"]).abs().max() < 1e-4
    tp = policy_distributions(teacher, data.hist, data.legal)
    cfg = TrainConfig(run="s", steps=1, **TINY)
    Trainer(cfg, dataset, tmp_path, data=data).run()
    student = load_trainable(tmp_path / "s-step000000.pb.gz")
    before = top1_agreement(student, tp, data.hist, data.legal)
    tuned = finetune_student(student, data.hist, data.legal, tp, steps=150, lr=3e-3, seed=0)
    after = top1_agreement(tuned, tp, data.hist, data.legal)
    assert after > before + 0.3, (before, after)
    assert top1_agreement(student, tp, data.hist, data.legal) == before  # the original is untouched
    assert legal_masks(data.boards[:3]).sum(1).tolist() == data.legal[:3].sum(1).tolist()


def test_bad_inputs_exit_2_and_leave_no_checkpoint(tmp_path, dataset):
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    r = cli("train", "--positions", str(empty), "-o", str(tmp_path / "o1"), "--steps", "5")
    assert r.exit_code == 2 and "no training positions" in r.output
    assert not list((tmp_path).glob("o1/*.pb.gz"))
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"id": 1, "moves": ["e2e4", "e2e4"], "move": "e7e5"}) + "\n")
    r = cli("train", "--positions", str(bad), "-o", str(tmp_path / "o2"), "--steps", "5")
    assert r.exit_code == 2 and "illegal" in r.output
    assert not (tmp_path / "o2").exists()
    r = cli("train", "--positions", str(dataset), "-o", str(tmp_path / "o3"), "--steps", "3", "--blocks", "1",
            "--filters", "8", "--max-positions", "100", "--checkpoints", "2")
    assert r.exit_code == 0, r.output
    r = cli("train", "--positions", str(dataset), "-o", str(tmp_path / "o3"), "--steps", "3", "--blocks", "2",
            "--filters", "8", "--max-positions", "100", "--checkpoints", "2")
    assert r.exit_code == 2 and "different architecture" in r.output


def test_two_checkpoints_are_the_start_and_the_end():
    assert checkpoint_schedule(20, 2) == [0, 20]
    assert checkpoint_schedule(0, 5) == [0]
