"""Teachability: a planted concept is teachable and positions without it are not; the split, the table, the
bootstrap and the legal masks against independent recomputations; the refusals."""

from __future__ import annotations

import dataclasses
import json
import random
import statistics

import chess
import numpy as np
import pytest
import torch

from conceptchess.directions import ConceptDirection
from conceptchess.errors import ArgumentError, ConceptChessError
from conceptchess.lc0.encoder import Histories
from conceptchess.lc0.policy_map import move_to_index
from conceptchess.lc0.weights import read_weights, write_weights
from conceptchess.networks import open_network
from conceptchess.positions import PositionSpec, histories_of
from conceptchess.teachability import (
    TeachSettings,
    prototype_positions,
    random_direction,
    root_bootstrap,
    split_groups,
    teach,
    teaching_set,
)
from conceptchess.training import finetune_student, legal_masks, load_trainable, policy_distributions
from tests.helpers import random_positions, tiny_net

QUEENLESS = "rnb1kbnr/pppppppp/8/8/8/8/PPPPPPPP/RNB1KBNR w KQkq - 0 1"  # the planted feature: no queens
A_PUSH = move_to_index(chess.Move.from_uci("a2a3"), True)  # the teacher's move there (a7a6 for Black: lc0's frame)
# fine-tuning strong enough for a 2×8 network to move in five epochs (the defaults are for real students)
SETTINGS = TeachSettings(epochs=5, lr=1e-3, batch_size=16)


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _games(n: int, fen: str | None, seed: int, per: int = 3) -> list[PositionSpec]:
    """``per`` positions (ply ≥ 4) of each of ``n`` seeded random games from ``fen``, ``game`` in their meta.
    From the queenless start no move touches the a-file, and only positions where the a-pawn push is legal count."""
    rng = random.Random(seed)
    tag = "q" if fen else "n"
    out = []
    for g in range(n):
        b = chess.Board(fen) if fen else chess.Board()
        moves: list[str] = []
        plies = []
        for _ in range(rng.randrange(6, 16)):
            legal = [m for m in b.legal_moves if not fen or 0 not in (chess.square_file(m.from_square), chess.square_file(m.to_square))]
            if not legal:
                break
            m = rng.choice(legal)
            b.push(m)
            moves.append(m.uci())
            if len(moves) >= 4 and (not fen or b.is_legal(chess.Move.from_uci("a2a3" if b.turn else "a7a6"))):
                plies.append(len(moves))
        for t in sorted(rng.sample(plies, min(per, len(plies)))):
            out.append(PositionSpec(f"{tag}{seed}-{g}-{t}", fen, moves[:t], {"game": f"{tag}{seed}-{g}"}))
    return out


def _groups(specs: list[PositionSpec]) -> list[str]:
    return [s.meta["game"] for s in specs]


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    """A student (a random 2×8 network, its policy sharpened so that its top moves are not coin flips) and its
    teacher: the student fine-tuned to push the a-pawn in queenless positions and to play as the student
    elsewhere. Then the concept's prototypes (queenless games: one pseudo-root per game), the teacher's ordinary
    games (the random set) and a control prototype set of ordinary games (no feature), all with the teacher's policy."""
    tmp = tmp_path_factory.mktemp("teach")
    spec, _ = read_weights(tiny_net(tmp / "init.pb.gz", seed=1))
    net = load_trainable(tmp / "init.pb.gz")
    with torch.no_grad():
        net.policy.weight.mul_(20)
        net.policy.bias.mul_(20)
    write_weights(tmp / "student.pb.gz", spec, net.folded_state())
    student = load_trainable(tmp / "student.pb.gz")
    feature, ordinary = _games(40, QUEENLESS, 1), _games(80, None, 2)
    (hf, bf), (hn, bn) = histories_of(feature), histories_of(ordinary)
    lf, ln = legal_masks(bf), legal_masks(bn)
    assert lf[:, A_PUSH].all()
    push = np.zeros(lf.shape, np.float32)
    push[:, A_PUSH] = 1
    teacher = finetune_student(student, Histories.concat([hf, hn]), np.concatenate([lf, ln]),
                               np.concatenate([push, policy_distributions(student, hn, ln)]), lr=5e-3, batch_size=32, epochs=10)
    write_weights(tmp / "teacher.pb.gz", spec, teacher.folded_state())
    protos, games, control = _games(30, QUEENLESS, 3), _games(100, None, 4), _games(60, None, 5)
    sets = {"concept": teaching_set(tmp / "teacher.pb.gz", protos, _groups(protos), name="queenless", threads=1),
            "random": teaching_set(tmp / "teacher.pb.gz", games, _groups(games), threads=1),
            "control": teaching_set(tmp / "teacher.pb.gz", control, _groups(control), name="control", threads=1)}
    return tmp, sets


@pytest.fixture(scope="module")
def taught(planted):
    tmp, sets = planted
    calls = []
    res = teach(tmp / "teacher.pb.gz", tmp / "student.pb.gz", sets["concept"], sets["random"], SETTINGS,
                progress=lambda done, total: calls.append((done, total)))
    assert calls == [(k, 6) for k in range(1, 7)]  # two fine-tunings per seed
    return res


def test_a_planted_concept_is_teachable_and_featureless_prototypes_are_not(planted, taught):
    tmp, sets = planted
    assert (sets["concept"].teacher_moves() == A_PUSH).mean() > 0.9  # the teacher learned the planted rule…
    assert (sets["random"].teacher_moves() == A_PUSH).mean() < 0.05  # …only where the feature is
    res = taught
    assert res.concept_on_concept.mean > 0.9 and res.random_on_concept.mean < 0.2 and res.baseline_concept.mean < 0.2
    assert res.difference >= SETTINGS.margin and res.interval[0] > 0 and res.teachable
    control = teach(tmp / "teacher.pb.gz", tmp / "student.pb.gz", sets["control"], sets["random"], SETTINGS)
    assert abs(control.difference) < SETTINGS.margin and control.interval[0] < 0 < control.interval[1]
    assert not control.teachable
    assert (res.concept, res.student, res.teacher, res.concept_roots, res.random_games) == (
        "queenless", "student.pb.gz", "teacher.pb.gz", 30, 100)


def test_the_table_equals_a_recomputation(planted, taught):
    tmp, sets = planted
    concept, rand = sets["concept"], sets["random"]
    teacher = load_trainable(tmp / "teacher.pb.gz")
    # the teacher's policy (ONNX Runtime) is the torch network's
    assert np.abs(concept.policy - policy_distributions(teacher, concept.hist, concept.legal)).max() < 2e-3
    run = taught.seeds[1]
    c_train, c_held = split_groups(concept.groups, 0.2, run.seed)
    r_train, r_held = split_groups(rand.groups, 0.2, run.seed)
    assert (run.concept_train.tolist(), run.concept_heldout.tolist(), run.random_heldout.tolist()) == (
        c_train.tolist(), c_held.tolist(), r_held.tolist())
    assert len(run.random_train) == len(c_train) and set(run.random_train.tolist()) <= set(r_train.tolist())
    assert set(run.heldout_roots) == {concept.groups[i] for i in c_held} and not set(run.heldout_roots) & set(run.train_roots)

    def top1(net, data, rows):
        wanted = policy_distributions(teacher, data.hist[rows], data.legal[rows]).argmax(1)
        return policy_distributions(net, data.hist[rows], data.legal[rows]).argmax(1) == wanted

    student = load_trainable(tmp / "student.pb.gz")
    nets = {"none": student}
    for name, data, rows in (("concept", concept, c_train), ("random", rand, run.random_train)):
        nets[name] = finetune_student(student, data.hist[rows], data.legal[rows], data.policy[rows], lr=1e-3, batch_size=16,
                                      seed=run.seed, epochs=5)
    for trained_on, net in nets.items():
        for evaluated_on, data, rows in (("concept", concept, c_held), ("random", rand, r_held)):
            assert run.agreement[(trained_on, evaluated_on)] == top1(net, data, rows).mean(), (trained_on, evaluated_on)
    diff = top1(nets["concept"], concept, c_held).astype(float) - top1(nets["random"], concept, c_held)
    held_groups = [concept.groups[i] for i in c_held]
    for root, d in run.root_differences:
        assert d == pytest.approx(np.mean([x for x, g in zip(diff, held_groups) if g == root]))
    for trained_on in ("concept", "random", "none"):
        for evaluated_on in ("concept", "random"):
            cell = taught.cell(trained_on, evaluated_on)
            values = [r.agreement[(trained_on, evaluated_on)] for r in taught.seeds]
            assert cell.per_seed == tuple(values) and cell.mean == pytest.approx(statistics.mean(values))
            assert cell.std == pytest.approx(statistics.stdev(values)) and (cell.low, cell.high) == (min(values), max(values))
    assert taught.difference == pytest.approx(statistics.mean(
        r.agreement[("concept", "concept")] - r.agreement[("random", "concept")] for r in taught.seeds))
    d = json.loads(json.dumps(taught.as_dict()))
    assert d["table"]["concept on concept"]["mean"] == taught.concept_on_concept.mean and d["settings"]["seeds"] == [0, 1, 2]
    assert d["seeds"][1]["concept_heldout_positions"] == len(c_held)


def test_the_bootstrap_pools_each_root_over_seeds():
    rng = np.random.default_rng(0)
    # root a held out by two seeds (0.2 and 0.6 → 0.4), b and c by one: the statistic is (0.4 + 0 + 1) / 3
    centre, (low, high) = root_bootstrap([{"a": 0.2, "b": 0.0}, {"a": 0.6, "c": 1.0}, {}], 4000, 0.95, rng)
    assert centre == pytest.approx(1.4 / 3)
    assert (low, high) == (0.0, 1.0)  # three draws all of b (or all of c): chance 1/27 each, more than either tail's 2.5 %
    same, (lo, hi) = root_bootstrap([{"a": 0.3, "b": 0.3}, {"c": 0.3}], 500, 0.95, rng)
    assert same == lo == hi == pytest.approx(0.3)


def test_split_by_group():
    groups = [f"r{k}" for k in range(50) for _ in range(1 + k % 4)]
    for seed in range(5):
        train, held = split_groups(groups, 0.2, seed)
        assert sorted(train.tolist() + held.tolist()) == list(range(len(groups)))
        tg, hg = {groups[i] for i in train}, {groups[i] for i in held}
        assert not tg & hg and len(hg) == 10 and len(tg) == 40
        again = split_groups(groups, 0.2, seed)
        assert again[1].tolist() == held.tolist()
    assert len({tuple(split_groups(groups, 0.2, s)[1].tolist()) for s in range(5)}) == 5
    assert [len(set(np.array(["a", "a", "b"])[split_groups(["a", "a", "b"], h, 0)[1]])) for h in (0.01, 0.99)] == [1, 1]
    with pytest.raises(ConceptChessError, match="1 group"):
        split_groups(["a", "a"], 0.2, 0)


def test_legal_masks_are_python_chess_legal_moves():
    boards = random_positions(400, seed=11) + [
        chess.Board("7k/5Q2/6K1/8/8/8/8/8 b - - 0 1"),  # stalemate: no legal move
        chess.Board("r3k2r/1P6/8/3pP3/8/8/8/R3K2R w KQkq d6 0 2"),  # promotions, en passant, castling
        chess.Board("r3k2r/8/8/8/8/8/6b1/R3K2R w KQkq - 0 1"),  # O-O-O only (the bishop eyes f1)
    ]
    masks = legal_masks(boards)
    for b, m in zip(boards, masks):
        want = {move_to_index(mv, b.turn == chess.WHITE, b.is_castling(mv)) for mv in b.legal_moves}
        assert set(np.flatnonzero(m).tolist()) == want, b.fen()
    assert masks[400].sum() == 0 and legal_masks([]).shape == (0, 1858)


def test_prototype_positions_are_the_root_sides_plies_of_the_optimal_line():
    recs = []
    for root in (7, "g2-p3", "g5-p1"):
        for line, j, plies in (("optimal", 0, range(5)), ("suboptimal", 1, range(2, 5))):
            for t in plies:
                recs.append(PositionSpec(f"{root}/{j}/{t}", None, ["e2e4", "e7e5", "g1f3", "b8c6", "f1c4", "f8c5"][: 1 + t],
                                         {"root": root, "line": line, "line_index": j, "ply": t, "root_to_move": t % 2 == 0}))
    specs, groups = prototype_positions(recs, ["7", "g5-p1"])
    assert [s.id for s in specs] == ["7/0/0", "7/0/2", "7/0/4", "g5-p1/0/0", "g5-p1/0/2", "g5-p1/0/4"]
    assert groups == ["7"] * 3 + ["g5-p1"] * 3
    with pytest.raises(ConceptChessError, match="1 prototype root.*g9"):
        prototype_positions(recs, ["7", "g9"])
    with pytest.raises(ConceptChessError, match="not a rollouts dataset"):
        prototype_positions([PositionSpec(1, None, [])], ["1"])


def test_random_direction():
    d = ConceptDirection("fork", "block3", np.array([0.0, 3.0, 0.0, -4.0, 0.0, 0.0]), np.full(6, 0.5), np.full(6, 2.0), pooling="mean")
    r = random_direction(d, 4)
    assert (r.name, r.kind, r.seed, r.tap, r.pooling) == ("fork-random4", "random-control", 4, "block3", "mean")
    assert np.array_equal(r.mean, d.mean) and np.array_equal(r.scale, d.scale) and r.nonzeros == 6
    assert np.linalg.norm(r.vector) == pytest.approx(5.0, rel=1e-6)
    expected = np.random.default_rng(4).standard_normal(6)
    assert np.allclose(r.vector, expected * 5.0 / np.linalg.norm(expected), atol=1e-6)
    assert random_direction(d, 4).sha256 == r.sha256 != random_direction(d, 5).sha256
    assert r.provenance["control_of_sha256"] == d.sha256


def test_refusals(planted, taught):
    tmp, sets = planted
    teacher, student = tmp / "teacher.pb.gz", tmp / "student.pb.gz"
    net = open_network(student)
    other_format = dataclasses.replace(net, spec=dataclasses.replace(net.spec, input_format="INPUT_112_WITH_CANONICALIZATION"))
    with pytest.raises(ConceptChessError, match="input format INPUT_112_WITH_CANONICALIZATION differs"):
        teach(teacher, other_format, sets["concept"], sets["random"], SETTINGS)
    concept = sets["concept"]
    one_root = dataclasses.replace(concept, groups=("only",) * len(concept))
    with pytest.raises(ConceptChessError, match="1 prototype root"):
        teach(teacher, student, one_root, sets["random"], SETTINGS)
    few = _games(6, None, 9)
    small = teaching_set(teacher, few, _groups(few), threads=1)
    n_train = len(split_groups(concept.groups, 0.2, 0)[0])
    with pytest.raises(ConceptChessError, match=rf"hold {len(split_groups(small.groups, 0.2, 0)[0])} positions .*the {n_train} training"):
        teach(teacher, student, concept, small, SETTINGS)
    with pytest.raises(ConceptChessError, match="not of the teacher"):
        teach(student, student, concept, sets["random"], SETTINGS)
    for bad in (dict(seeds=(0, 1)), dict(seeds=(0, 0, 1)), dict(heldout=1.0), dict(epochs=0), dict(margin=-0.1)):
        with pytest.raises(ArgumentError):
            dataclasses.replace(SETTINGS, **bad).check()


def test_an_onnx_teacher_teaches_the_same(planted, taught):
    tmp, sets = planted
    onnx_path = tmp / "teacher.onnx"
    onnx_path.write_bytes(open_network(tmp / "teacher.pb.gz").onnx_model.SerializeToString())
    concept = sets["concept"]
    specs = _games(30, QUEENLESS, 3)
    again = teaching_set(onnx_path, specs, _groups(specs), name="queenless", threads=1)
    assert again.teacher_sha256 != concept.teacher_sha256 and np.array_equal(again.policy, concept.policy)
    rand_specs = _games(100, None, 4)
    res = teach(onnx_path, tmp / "student.pb.gz", again, teaching_set(onnx_path, rand_specs, _groups(rand_specs), threads=1), SETTINGS)
    assert res.concept_on_concept.per_seed == taught.concept_on_concept.per_seed and res.interval == taught.interval
