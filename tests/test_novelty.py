"""Novelty: on hand-built subspaces a vector of the machine-only subspace is novel at every k and one of the shared
subspace is not; numerical ranks of matrices of known rank; bases saved and loaded whole; datasets of the wrong
origin (or another network's self-play) refused in one line; a small real run on maia-1100 gives finite scores and
a random-direction control."""

from __future__ import annotations

import json
from dataclasses import fields

import chess
import numpy as np
import pytest

from conceptchess.datasets import HUMAN_GAMES, MACHINE_GAMES, DatasetWriter, position_record, read_manifest
from conceptchess.directions import ConceptDirection
from conceptchess.errors import ConceptChessError
from conceptchess.novelty import RANK_EPS, NoveltyBases, build_novelty_bases, numerical_rank
from tests.helpers import cli, random_move_lists, tiny_net

FEATURES = 32


def _subspaces(n: int = 200, seed: int = 0):
    """Human and machine rows over 32 features: both vary along a shared 4-dim subspace S (human std 3, machine 1);
    only the machine along M (2 dims, std 12 and 10: its top directions); only humans along one more (std 1)."""
    rng = np.random.default_rng(seed)
    q, _ = np.linalg.qr(rng.standard_normal((FEATURES, FEATURES)))
    shared, machine_only, human_only = q[:, :4], q[:, 4:6], q[:, 6:7]
    human = (rng.standard_normal((n, 4)) * 3) @ shared.T + rng.standard_normal((n, 1)) @ human_only.T
    machine = rng.standard_normal((n, 4)) @ shared.T + (rng.standard_normal((n, 2)) * [12, 10]) @ machine_only.T
    return human.astype(np.float32), machine.astype(np.float32), shared, machine_only, human_only


def test_machine_only_vectors_are_novel_and_shared_ones_are_not():
    human, machine, shared, machine_only, human_only = _subspaces()
    bases = NoveltyBases.from_rows(human, machine, tap="block3")
    assert (bases.human_rank, bases.machine_rank, bases.features) == (5, 6, FEATURES)
    assert bases.ks == (1, 2, 4)  # powers of two up to the smaller rank
    novel = bases.score(ConceptDirection("m", "block3", machine_only[:, 0]), controls=50, seed=1)
    # v ⟂ the human subspace: nothing of it explained by humans; the machine's top-2 directions are M itself (up to
    # the sample's small correlation of M with S)
    assert novel.novel and novel.ks == (1, 2, 4)
    assert novel.scores[1:] == pytest.approx([1, 1], abs=1e-3) and novel.scores[0] > 0.5
    for v in (shared[:, 0], shared @ [0.5, -0.5, 0.5, 0.5]):
        s = bases.score(ConceptDirection("s", "block3", v), controls=50, seed=1)
        # humans' top 4 are S: all of v explained; the machine's top 4 hold only part of S
        assert not s.novel and s.scores[-1] <= 1e-5
    human_side = bases.score(ConceptDirection("h", "block3", human_only[:, 0]), controls=50, seed=1)
    assert not human_side.novel and np.all(human_side.scores <= 1e-5)
    # the control: random 1-sparse directions of the feature space are mostly neither
    assert novel.controls == 50 and novel.control_quantiles.shape == (3, 3) and np.all(np.isfinite(novel.control_quantiles))
    assert novel.control_novel_share < 0.5 and np.all(novel.control_at_least <= 0.1)
    again = bases.score(ConceptDirection("m", "block3", machine_only[:, 0]), controls=50, seed=1)
    assert np.array_equal(again.control_quantiles, novel.control_quantiles)  # seeded
    # the score is the formula's: ‖v − P_H,k v‖² − ‖v − P_M,k v‖² with P on the top-k right singular vectors
    v = shared @ [1.0, 2.0, 0.0, -1.0] + machine_only @ [1.0, 1.0]
    v /= np.linalg.norm(v)
    for j, k in enumerate(bases.ks):
        ph = np.linalg.svd(human.astype(np.float64), full_matrices=False)[2][:k]
        pm = np.linalg.svd(machine.astype(np.float64), full_matrices=False)[2][:k]
        want = np.sum((v - ph.T @ (ph @ v)) ** 2) - np.sum((v - pm.T @ (pm @ v)) ** 2)
        assert bases.novelty(v)[0, j] == pytest.approx(want, abs=1e-5)


def test_a_standardised_direction_is_read_as_scale_times_v():
    human, machine, _, machine_only, _ = _subspaces()
    bases = NoveltyBases.from_rows(human, machine, tap="block3")
    scale = np.random.default_rng(2).random(FEATURES) + 0.5
    d = ConceptDirection("m", "block3", machine_only[:, 0] / scale, mean=np.ones(FEATURES), scale=scale)
    assert d.vector.size == FEATURES and bases.score(d, controls=5).scores[1:] == pytest.approx([1, 1], abs=1e-3)


def test_numerical_ranks_of_hand_built_matrices():
    rng = np.random.default_rng(3)
    for rank, n, features in ((3, 50, 20), (7, 40, 64), (20, 30, 20)):
        x = rng.standard_normal((n, rank)) @ rng.standard_normal((rank, features))
        noisy = x + 1e-9 * rng.standard_normal(x.shape)  # far below the float32 tolerance: still rank `rank`
        s = np.linalg.svd(noisy, compute_uv=False)
        assert numerical_rank(s, noisy.shape) == rank
        assert np.linalg.matrix_rank(noisy, tol=s[0] * max(noisy.shape) * RANK_EPS) == rank
    h = rng.standard_normal((30, 3)) @ rng.standard_normal((3, 20))
    m = rng.standard_normal((30, 9)) @ rng.standard_normal((9, 20))
    b = NoveltyBases.from_rows(h, m, tap="block0")
    assert (b.human_rank, b.machine_rank, b.ks) == (3, 9, (1, 2))
    assert b.human.shape == (3, 20) and np.allclose(b.human @ b.human.T, np.eye(3), atol=1e-6)
    assert numerical_rank(np.zeros(5), (5, 5)) == 0
    # a projection on the whole feature space explains everything in both bases: k stays below the feature count
    full = NoveltyBases.from_rows(rng.standard_normal((40, 8)), rng.standard_normal((40, 8)), tap="block0")
    assert (full.human_rank, full.ks) == (8, (1, 2, 4))
    with pytest.raises(ConceptChessError, match="30 human and 31 machine positions: novelty compares equal counts"):
        NoveltyBases.from_rows(h, np.vstack([m, m[:1]]), tap="block0")


def test_bases_save_and_load_whole(tmp_path):
    human, machine, _, machine_only, _ = _subspaces(n=60)
    bases = NoveltyBases.from_rows(human, machine, tap="block3", pooling="mean", network_sha256="ab" * 32,
                                   human_dataset_sha256="cd" * 32, machine_dataset_sha256="ef" * 32, seed=7,
                                   provenance={"human_dataset": "h/", "counts": [60, 60]})
    back = NoveltyBases.load(bases.save(tmp_path / "b.npz"))
    for f in fields(NoveltyBases):
        a, b = getattr(bases, f.name), getattr(back, f.name)
        if isinstance(a, np.ndarray):
            assert a.dtype == b.dtype and np.array_equal(a, b), f.name
        else:
            assert a == b, f.name
    assert not list(tmp_path.glob(".*.part*"))
    with np.load(tmp_path / "b.npz") as z:  # no pickles: arrays and JSON
        assert json.loads(str(z["meta"]))["network_sha256"] == "ab" * 32
    d = ConceptDirection("m", "block3", machine_only[:, 0], pooling="mean")
    assert np.array_equal(back.score(d, controls=5).scores, bases.score(d, controls=5).scores)
    with pytest.raises(ConceptChessError, match="reads full-pooled activations; these novelty bases are mean-pooled"):
        bases.score(ConceptDirection("m", "block3", machine_only[:, 0], pooling="full"))
    with pytest.raises(ConceptChessError, match="reads tap block0; these novelty bases are of block3"):
        bases.score(ConceptDirection("m", "block0", machine_only[:, 0]))
    with pytest.raises(ConceptChessError, match="reads network 000000000000…; these novelty bases are network abababababab…'s"):
        bases.score(ConceptDirection("m", "block3", machine_only[:, 0], network_sha256="0" * 64))
    with pytest.raises(ConceptChessError, match="has 5 values; these novelty bases have 32 features"):
        bases.score(ConceptDirection("m", "block3", np.ones(5)))
    np.save(tmp_path / "bare.npy", np.ones(3))
    with pytest.raises(ConceptChessError, match="bare.npy: not novelty bases"):
        NoveltyBases.load(tmp_path / "bare.npy")


def _games(path, origin, manifest=None, seed=0):
    with DatasetWriter(path, {"origin": origin, **(manifest or {})}) as w:
        for g, moves in enumerate(random_move_lists(2, 12, seed)):
            for t in range(len(moves) + 1):
                w.write({"id": f"g{g}-p{t}", "game": g, "ply": t, **position_record(chess.Board(), moves, t)})
    return path


def test_datasets_of_the_wrong_origin_are_refused(tmp_path):
    net = tiny_net(tmp_path / "tiny.pb.gz", seed=1)
    human = _games(tmp_path / "human", HUMAN_GAMES)
    machine = _games(tmp_path / "machine", MACHINE_GAMES, seed=1)
    other = _games(tmp_path / "other", MACHINE_GAMES, {"net": {"sha256": "ab" * 32}})
    unknown = _games(tmp_path / "unknown", None)
    with pytest.raises(ConceptChessError, match=r"machine: recorded origin is machine-games, not human-games"):
        build_novelty_bases(net, machine, machine, "block1")
    with pytest.raises(ConceptChessError, match=r"human: recorded origin is human-games, not machine-games"):
        build_novelty_bases(net, human, human, "block1")
    with pytest.raises(ConceptChessError, match=r"unknown: recorded origin is unknown, not human-games"):
        build_novelty_bases(net, unknown, machine, "block1")
    with pytest.raises(ConceptChessError, match=r"other: games of network abababababab…, not of .*tiny.pb.gz"):
        build_novelty_bases(net, human, other, "block1")
    with pytest.raises(ConceptChessError, match=r"tap 'block2' is not in network"):
        build_novelty_bases(net, human, machine, "block2")
    # equal counts, seeded choice of positions
    b = build_novelty_bases(net, human, machine, "block1", pooling="mean", max_positions=10, seed=3, threads=1, device="cpu")
    assert (b.human_count, b.machine_count, b.features, b.seed) == (10, 10, 8, 3)
    c = build_novelty_bases(net, human, machine, "block1", pooling="mean", max_positions=10, seed=3, threads=1, device="cpu")
    assert np.array_equal(b.human_singular_values, c.human_singular_values)


def test_a_small_real_run_on_maia_1100(tmp_path, maia1100, lichess_pgn):
    r = cli("positions", "from-pgn", lichess_pgn, "-o", tmp_path / "human", "--skip-plies", 8, "--every", 3, "--max-positions", 64)
    assert r.exit_code == 0, r.output
    r = cli("positions", "selfplay", "--net", maia1100, "--games", 2, "--max-plies", 48, "-o", tmp_path / "machine", "--threads", 1,
            "--device", "cpu")
    assert r.exit_code == 0, r.output
    assert read_manifest(tmp_path / "machine")["origin"] == MACHINE_GAMES
    bases = build_novelty_bases(maia1100, tmp_path / "human", tmp_path / "machine", "block5", max_positions=64, threads=1,
                                device="cpu")
    n = bases.human_count
    assert n == bases.machine_count and 30 <= n <= 64 and bases.features == 64 * 64
    assert 0 < bases.human_rank <= n and 0 < bases.machine_rank <= n and bases.network_sha256 and bases.provenance["provider"]
    rng = np.random.default_rng(0)
    v = np.zeros(bases.features, np.float32)
    v[rng.choice(bases.features, 40, replace=False)] = rng.standard_normal(40)
    s = bases.score(ConceptDirection("probe", "block5", v, pooling="full", network_sha256=bases.network_sha256), controls=20, seed=0)
    assert s.ks[0] == 1 and s.ks[-1] <= min(bases.human_rank, bases.machine_rank)
    assert np.all(np.isfinite(s.scores)) and np.all(np.abs(s.scores) <= 1)
    assert s.controls == 20 and np.all(np.isfinite(s.control_quantiles)) and 0 <= s.control_novel_share <= 1
    assert "random controls novel" in str(s)
