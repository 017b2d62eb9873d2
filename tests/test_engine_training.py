"""Training on engine targets, engine games, and the strength numbers of a checkpoint series."""

import json

import chess
import numpy as np
import pytest
import torch

from conceptchess.datasets import DatasetWriter, iter_dataset, merge_datasets, position_record
from conceptchess.engine import Engine
from conceptchess.enginegames import EngineGameSettings, book_of, engine_games_dataset, read_opening_lines
from conceptchess.enginelabels import LabelSettings, TargetSettings, label_engine_dataset, policy_target, wdl_target
from conceptchess.lc0.encoder import encode
from conceptchess.lc0.policy_map import move_to_index
from conceptchess.positions import PositionSpec
from conceptchess.strength import held_out, mate_puzzles, network_strength
from conceptchess.training import (
    TrainConfig,
    Trainer,
    batch_tensors,
    evaluate_loss,
    holdout_games,
    load_trainable,
    load_training_data,
    losses,
)
from tests.helpers import cli, random_move_lists, stockfish_or_skip

TINY = dict(blocks=1, filters=8, se_channels=2, value_channels=4, value_hidden=16, batch_size=32, lr=3e-3, checkpoints=3, threads=1)
BACK_RANK = "6k1/5ppp/8/8/8/8/5PPP/R5K1 w - - 0 1"


@pytest.fixture(scope="module")
def labelled(tmp_path_factory):
    stockfish_or_skip()
    root = tmp_path_factory.mktemp("et")
    with DatasetWriter(root / "games", manifest={"origin": "human-games", "made_by": "test"}) as w:
        for g, moves in enumerate(random_move_lists(6, 30, seed=11)):
            for t in range(len(moves) + 1):
                w.write({"id": f"g{g}-p{t}", **position_record(chess.Board(), moves, t), "game": g, "ply": t,
                         "move": moves[t].uci() if t < len(moves) else None, "result": "1-0"})
    label_engine_dataset(root / "games", root / "labelled", LabelSettings(nodes=300, multipv=4, workers=2))
    return root


def _records(path):
    return [json.loads(line) for line in (path / "positions.jsonl").read_text().splitlines()]


def test_engine_targets_equal_the_label_targets(labelled):
    s = TargetSettings(temperature=0.04, floor=0.05)
    data = load_training_data(labelled / "labelled", targets="engine", target_settings=s)
    recs = [r for r in _records(labelled / "labelled") if r["engine"] is not None]
    assert len(data) == len(recs)
    dense = data.dense_targets(np.arange(len(data)))
    np.testing.assert_allclose(dense.sum(1), 1.0, atol=1e-5)
    for i in (0, 7, len(recs) - 1):
        board = PositionSpec.from_dict(recs[i]).board()
        want = policy_target(recs[i]["engine"], board, s)
        for uci, p in want.items():
            m = chess.Move.from_uci(uci)
            assert dense[i, move_to_index(m, board.turn, board.is_castling(m))] == pytest.approx(p, abs=1e-6)
        np.testing.assert_allclose(data.wdl[i], wdl_target(recs[i]["engine"]), atol=1e-6)


def test_mix_targets_blend_engine_and_played(labelled):
    mix = load_training_data(labelled / "labelled", targets="mix", mix=0.25)
    eng = load_training_data(labelled / "labelled", targets="engine")
    recs = [r for r in _records(labelled / "labelled") if r["engine"] is not None and r["move"]]
    assert len(mix) == len(recs)
    i = 3
    board = PositionSpec.from_dict(recs[i]).board()
    m = chess.Move.from_uci(recs[i]["move"])
    played = move_to_index(m, board.turn, board.is_castling(m))
    d_mix = mix.dense_targets(np.array([i]))[0]
    j = [k for k, r in enumerate(r for r in _records(labelled / "labelled") if r["engine"] is not None) if r["id"] == recs[i]["id"]][0]
    d_eng = eng.dense_targets(np.array([j]))[0]
    onehot = np.zeros(1858, np.float32)
    onehot[played] = 1
    np.testing.assert_allclose(d_mix, 0.25 * d_eng + 0.75 * onehot, atol=1e-6)
    result = (1.0, 0.0, 0.0) if board.turn == chess.WHITE else (0.0, 0.0, 1.0)
    np.testing.assert_allclose(mix.wdl[i], 0.25 * np.array(wdl_target(recs[i]["engine"])) + 0.75 * np.array(result), atol=1e-6)


def test_training_on_engine_targets_lowers_the_kl(labelled, tmp_path):
    cfg = TrainConfig(run="e", steps=120, seed=2, targets="engine", **TINY)
    trainer = Trainer(cfg, labelled / "labelled", tmp_path)
    hist = trainer.run()
    assert hist[-1]["targets"] == "engine"
    # random games hold nothing to generalise from; the training positions' KL must fall
    first, last = (evaluate_loss(load_trainable(tmp_path / m["file"]), trainer.data, trainer.train_idx) for m in (hist[0], hist[-1]))
    assert last["policy"] < first["policy"] - 0.3 and last["value"] < first["value"]
    # the library's policy loss is the KL divergence: zero for a network whose policy is the target,
    # and the cross-entropy less the target's entropy otherwise
    data = load_training_data(labelled / "labelled", targets="engine")
    planes, legal, target, wdl, mlh = batch_tensors(data, np.arange(4))

    def outputs(policy):
        return lambda _planes: {"policy": policy, "wdl": torch.full((4, 3), 1 / 3)}

    exact = losses(outputs(torch.log(target.clamp_min(1e-30))), planes, legal, target, wdl, mlh)["policy"]
    assert abs(float(exact)) < 1e-5
    uniform = losses(outputs(torch.zeros(4, 1858)), planes, legal, target, wdl, mlh)["policy"]
    n_legal = legal.sum(1).double()
    entropy = -(target.double() * torch.log(target.double().clamp_min(1e-30))).sum(1)
    assert float(uniform) == pytest.approx(float((torch.log(n_legal) - entropy).mean()), abs=1e-4)


def test_cli_targets_bad_input(labelled, tmp_path):
    r = cli("train", "--positions", labelled / "games", "-o", tmp_path / "o", "--targets", "engine", "--steps", "2")
    assert r.exit_code == 2 and "no engine labels" in r.output and not (tmp_path / "o").exists()
    recs = _records(labelled / "labelled")
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "manifest.json").write_text((labelled / "labelled" / "manifest.json").read_text())
    recs[5]["engine"]["lines"][0][0] = "a1a8"  # not legal there
    (bad / "positions.jsonl").write_text("".join(json.dumps(r) + "\n" for r in recs))
    r = cli("train", "--positions", bad, "-o", tmp_path / "o", "--targets", "engine", "--steps", "2")
    assert r.exit_code == 2 and "malformed engine label" in r.output and "a1a8" in r.output
    assert not (tmp_path / "o").exists()
    r = cli("train", "--positions", labelled / "labelled", "-o", tmp_path / "o", "--targets", "mix", "--mix", "2", "--steps", "2")
    assert r.exit_code == 2 and "--mix must be in [0, 1]" in r.output and not (tmp_path / "o").exists()


def test_engine_games_are_deterministic_whatever_the_workers(tmp_path, lichess_pgn):
    stockfish_or_skip()
    s = EngineGameSettings(games=3, nodes=200, opening_plies=6, random_plies=2, blunder_rate=0.2, max_plies=40, seed=4, workers=1)
    m1 = engine_games_dataset([lichess_pgn], tmp_path / "one", s)
    m2 = engine_games_dataset([lichess_pgn], tmp_path / "two", EngineGameSettings(**{**s.__dict__, "workers": 2}))
    assert (tmp_path / "one" / "positions.jsonl").read_bytes() == (tmp_path / "two" / "positions.jsonl").read_bytes()
    assert m1["origin"] == "machine-games" and m1["counts"] == m2["counts"]
    recs = _records(tmp_path / "one")
    lines = read_opening_lines([lichess_pgn], 6)
    first = book_of(0, lines, s)
    assert recs[0]["id"] == f"g0-p{len(first.moves)}"  # the book (opening + random plies) gives no record
    assert 2 <= len(first.moves) <= 8
    assert all(r["source"] == "stockfish" for r in recs)


def test_strength_counts_by_hand(labelled, tmp_path):
    # two mate-in-1 puzzles (one id mangled by a spreadsheet) and one that is no mate, in the Lichess
    # CSV format: the FEN is before the setup move, the solver plays the second move
    csv = tmp_path / "p.csv"
    csv.write_text("PuzzleId,FEN,Moves,Rating,RatingDeviation,Popularity,NbPlays,Themes,GameUrl,OpeningTags\n"
                   "aaaaa,6k1/5ppp/8/8/8/8/5PPP/R5K1 b - - 0 1,g8h8 a1a8,1,1,1,1,mate mateIn1 oneMove,,\n"
                   "6E+087,6k1/5ppp/8/8/8/8/5PPP/R5K1 b - - 0 1,f7f6 a1a8,1,1,1,1,mateIn1,,\n"
                   "bbbbb,r1bqkbnr/pppp1ppp/2n5/4p3/2B1P3/5Q2/PPPP1PPP/RNB1K1NR w KQkq - 2 3,g1e2 g8f6,1,1,1,1,crushing,,\n")
    mates = mate_puzzles(csv)
    assert mates.mate_in == [1, 1] and mates.first == ["a1a8", "a1a8"]
    net = tmp_path / "net"
    Trainer(TrainConfig(run="s", steps=3, seed=0, **TINY), labelled / "labelled", net).run()
    path = next(net.glob("s-step000003.pb.gz"))
    held = held_out(labelled / "labelled", 0.34, 0)
    s = network_strength(path, held, mates)
    # independent count: the network's top move against Stockfish's best on the trainer's held-out games
    data = load_training_data(labelled / "labelled", targets="engine")
    _, idx = holdout_games(data.game, 0.34, 0)
    logits = Engine(path, device="cpu").run_planes(encode(data.hist[idx]))["policy"]
    top = np.where(data.legal[idx], logits, -np.inf).argmax(1)
    assert s.sf_agreement.total == len(idx) and s.sf_agreement.hits == int((top == data.target_index[idx, 0]).sum())
    assert s.human_matching is not None and 0 < s.human_matching.total <= len(idx)
    assert s.mate_in_1.total == 2 and s.mate_in_2.total == 0
    found = 0
    for ev, board in zip(Engine(path, device="cpu").evaluate(mates.hist, mates.boards), mates.boards, strict=True):
        b = board.copy()
        b.push_uci(ev.top(1)[0][0])
        found += b.is_checkmate()
    assert s.mate_in_1.hits == found


def test_human_matching_counts_only_games_people_played(labelled, tmp_path):
    machine = tmp_path / "machine"
    machine.mkdir()
    manifest = json.loads((labelled / "labelled" / "manifest.json").read_text())
    (machine / "manifest.json").write_text(json.dumps({**manifest, "origin": "machine-games"}))
    (machine / "positions.jsonl").write_text((labelled / "labelled" / "positions.jsonl").read_text())
    merged = tmp_path / "merged"
    merge_datasets([labelled / "labelled", machine], merged)
    held = held_out(merged, 0.5, 1)
    ids = [s.id for s in iter_dataset(merged) if s.meta["engine"] is not None]
    _, idx = holdout_games(load_training_data(merged, targets="engine").game, 0.5, 1)
    people = np.array([str(ids[k]).startswith("labelled/") for k in idx])
    assert people.any() and (~people).any()
    assert (held.played[~people] == -1).all() and (held.played[people] >= 0).sum() > 0
