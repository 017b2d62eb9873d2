"""Concept discovery (conceptchess.discovery): sparse concept vectors by an L1 LP, Schut et al.'s pairs,
the soft-margin fallback, the zero-vector refusal, the held-out checks and their swapped-label control.

Reference values come from elsewhere: the planted direction of synthetic rollouts, a hand-worked
one-feature LP, the same LP solved at once by scipy's HiGHS interface (no cvxpy, no column generation),
pairs worked out by hand from the rollouts layout, and piece counts by python-chess on real games.
"""

from __future__ import annotations

import chess
import chess.pgn
import numpy as np
import pytest
from scipy.optimize import linprog

from conceptchess.activations import ActivationFiles, extract_activations
from conceptchess.datasets import dataset_sha256, iter_dataset
from conceptchess.discovery import (
    DiscoveryWarning,
    DynamicConceptDiscoverer,
    StaticConceptDiscoverer,
    all_pairs,
    check_pairs,
    planted_rollouts,
    rollout_activations,
    rollout_pairs,
    sparse_margin_lp,
    swap_pairs,
    validate_dynamic,
    validate_static,
)
from conceptchess.engine import Engine
from conceptchess.errors import ArgumentError, ConceptChessError
from conceptchess.lc0.encoder import board_histories
from conceptchess.positions import PositionSpec
from conceptchess.rollouts import RolloutSettings, rollouts_dataset
from tests.helpers import random_games, tiny_net

PLANTED = dict(depth=8, lines_per_ply=3, noise=0.2)  # 108 pairs a root on all plies: enough variety to pin the support


def reference_l1(D: np.ndarray, margin: float = 1.0) -> float:
    """min ‖v‖₁ s.t. Dv ≥ margin, solved at once by scipy's linprog (HiGHS): the optimum's value."""
    n, d = D.shape
    res = linprog(np.ones(2 * d), A_ub=-np.hstack([D, -D]), b_ub=-margin * np.ones(n), bounds=(0, None), method="highs")
    assert res.status == 0
    return float(res.fun)


def standardised(X: np.ndarray, pairs: np.ndarray) -> np.ndarray:
    rows = np.unique(pairs)
    scale = X[rows].astype(np.float64).std(0)
    scale[scale <= 1e-6] = 1.0
    return (X[pairs[:, 0]].astype(np.float64) - X[pairs[:, 1]]) / scale


# -- (1) a planted direction ------------------------------------------------------------------------------------
def test_a_planted_sparse_direction_is_recovered():
    X, meta, w = planted_rollouts(roots=1, seed=3, **PLANTED)
    est = DynamicConceptDiscoverer(plies="all").fit(X, meta)
    assert np.flatnonzero(est.coef_).tolist() == [3, 10, 42]  # the planted support, nothing else
    assert np.sign(est.coef_[[3, 10, 42]]).tolist() == w[[3, 10, 42]].tolist() == [1.0, -1.0, 1.0]
    assert not est.soft_margin_ and est.message_ is None and est.status_ == "optimal" and est.n_nonzero_ == 3
    # every pair by the margin, the active ones on it; the optimum is scipy's, solved at once
    D = standardised(X, est.pairs_)
    gaps = D @ est.coef_
    assert gaps.min() == pytest.approx(1.0, abs=1e-7)
    assert est.objective_ == pytest.approx(np.abs(est.coef_).sum(), rel=1e-9)
    assert est.objective_ == pytest.approx(reference_l1(D), rel=1e-6)
    assert est.n_pairs_ == len(rollout_pairs(meta, "all")["r0"]) == 108
    # the default, the root side's plies: only pairs at even plies of the root's own line
    own = DynamicConceptDiscoverer().fit(X, meta)
    assert own.n_pairs_ < est.n_pairs_
    assert all(meta[i]["root_to_move"] and meta[i]["ply"] % 2 == 0 for i in own.pairs_.ravel())


@pytest.mark.parametrize("shift, working_set", [(1.5, 8), (0.0, 2)])
def test_column_generation_reaches_the_whole_lps_optimum(shift, working_set):
    """With a feature that carries the pairs (shift 1.5), and without: then the first 2 features cannot meet
    40 random constraints, and phase 1 finds features that can."""
    rng = np.random.default_rng(5)
    D = rng.normal(size=(40, 300))
    D[:, 7] += shift
    whole = sparse_margin_lp(D, working_set=None)
    generated = sparse_margin_lp(D, working_set=working_set)
    assert generated.rounds > 1 and generated.features_used < 300  # it did generate columns, and stopped short of them all
    assert not generated.soft and generated.hard_status == "optimal"
    assert generated.objective == pytest.approx(whole.objective, rel=1e-7) == pytest.approx(reference_l1(D), rel=1e-7)
    assert (D @ generated.coef).min() >= 1 - 1e-7
    first = np.argsort(-np.abs(D.sum(0)), kind="stable")[:working_set]  # the first working set: the margin out of its reach without a shift
    assert sparse_margin_lp(D[:, first], working_set=None).soft == (shift == 0)


# -- (2) the trivial solution -----------------------------------------------------------------------------------
def test_a_zero_vector_is_refused():
    X, meta, _ = planted_rollouts(roots=1, seed=0)
    same = X.copy()
    optimal = {m["ply"]: i for i, m in enumerate(meta) if m["line"] == "optimal"}
    for i, m in enumerate(meta):  # every sub-optimal position a copy of the optimal one at its ply: z⁺ = z⁻
        if m["line"] == "suboptimal":
            same[i] = X[optimal[m["ply"]]]
    with pytest.raises(ConceptChessError, match=r"optimum is v = 0.*do z⁺ and z⁻ differ") as e:
        DynamicConceptDiscoverer().fit(same, meta)
    assert "\n" not in str(e.value)
    with pytest.raises(ConceptChessError, match="margin 0 lets the zero vector meet every constraint"):
        DynamicConceptDiscoverer(margin=0.0).fit(X, meta)
    with pytest.raises(ArgumentError, match="margin must be ≥ 0"):
        DynamicConceptDiscoverer(margin=-1.0).fit(X, meta)


# -- (3) infeasible: the soft margin -----------------------------------------------------------------------------
def test_an_infeasible_margin_falls_back_to_a_soft_margin():
    """One feature x = 0, 2, 4, 3; pairs (1, 0), (2, 1), (3, 2) differ by 2, 2, −1 in raw units. No v meets
    v·2 ≥ σ and −v ≥ σ at once (σ the standard deviation: v is in standardised units). With u = v/σ the
    soft objective is σ|u| + Σ max(0, 1 − u·dᵢ): 3 + (σ − 3)u on [0, ½], rising beyond, so u = ½ and
    the third pair is short by 1 + ½ = 1.5."""
    X = np.array([[0.0], [2.0], [4.0], [3.0]])
    sigma = float(np.std(X))
    with pytest.warns(DiscoveryWarning, match="soft margin"):
        est = StaticConceptDiscoverer(C=1.0).fit(X, pairs=[(1, 0), (2, 1), (3, 2)])
    assert est.soft_margin_ and "infeasible" in est.message_ and "1 of 3 pairs fall short" in est.message_
    assert est.coef_[0] == pytest.approx(0.5 * sigma, rel=1e-7)
    assert est.slack_ == pytest.approx([0.0, 0.0, 1.5], abs=1e-7)
    assert est.objective_ == pytest.approx(0.5 * sigma + 1.5, rel=1e-7)
    assert est.n_violated_ == 1
    u = np.linspace(-2, 2, 40001)  # the same objective on a grid
    f = sigma * np.abs(u) + sum(np.maximum(0, 1 - u * d) for d in (2.0, 2.0, -1.0))
    assert u[np.argmin(f)] == pytest.approx(0.5, abs=1e-4)
    assert est.to_direction("soft", "block0").provenance["soft_margin"] is True


def test_a_cheap_violation_is_no_concept():
    """With C small enough leaving every pair short costs less than meeting one: v = 0, refused."""
    X = np.array([[0.0], [2.0], [4.0], [3.0]])
    with pytest.raises(ConceptChessError, match=r"optimum is v = 0.*C=0.1"):
        StaticConceptDiscoverer(C=0.1).fit(X, pairs=[(1, 0), (2, 1), (3, 2)])


# -- (4) real activations: piece presence on maia-1900 -------------------------------------------------------------
@pytest.fixture(scope="module")
def maia_block5(maia1900, lichess_pgn):
    """600 positions of the shared Lichess games (every 9th ply from the 10th), maia-1900's block5 mean-pooled
    over the squares (64 features: the LP stays small), and the boards and games."""
    boards, games = [], []
    with open(lichess_pgn) as f:
        for g in range(10_000):
            if len(boards) >= 600:
                break
            b = (game := chess.pgn.read_game(f)).board()
            for ply, move in enumerate(game.mainline_moves()):
                b.push(move)
                if ply >= 10 and ply % 9 == 0:
                    boards.append(b.copy())
                    games.append(g)
    engine = Engine(maia1900, threads=1, device="cpu")
    evs = engine.evaluate(board_histories(boards), boards, taps=["block5"])
    X = np.stack([e.taps["block5"] for e in evs]).mean(axis=(2, 3))
    return X, boards, np.array(games)


@pytest.mark.parametrize("side", ["us", "them"])
def test_static_queen_concepts_separate_held_out_positions(maia_block5, side):
    """Static concepts "side to move has a queen" and "the opponent has a queen" (python-chess), fitted on 70 % of the games;
    held-out accuracy is the share of held-out (with queen, without queen) pairs the concept scores in that
    order (every such pair of the held-out games). Schut et al. report ~99 % for such static concepts."""
    X, boards, games = maia_block5
    y = np.array([bool(b.pieces(chess.QUEEN, b.turn if side == "us" else not b.turn)) for b in boards])
    assert 0.2 < y.mean() < 0.8
    est = StaticConceptDiscoverer(max_pairs=500)
    val = validate_static(X, y, groups=games, held_out=0.3, estimator=est, seed=0)
    assert val.held_out.pairs > 2000
    assert val.held_out.ordered >= 0.95
    assert val.fit.with_margin == 1.0 and not val.soft_margin  # the margin holds on every fitted pair
    assert val.control is not None and val.control.ordered <= val.held_out.ordered - 0.25
    assert 0 < val.n_nonzero < 64 and val.sparsity == val.n_nonzero / 64
    # the held-out share, recomputed from the scores by hand on a fresh fit of the same rows
    test = np.isin(games, val.held_out_groups)
    assert len(val.held_out_groups) == round(0.3 * len(set(games.tolist())))
    fitted = StaticConceptDiscoverer(max_pairs=500).fit(X[~test], y[~test])
    s = fitted.decision_function(X[test])
    pos, neg = s[y[test]], s[~y[test]]
    assert np.mean(pos[:, None] > neg[None, :]) == pytest.approx(val.held_out.ordered)


# -- (5) pairs of a rollouts dataset --------------------------------------------------------------------------------
def _rec(root, j, t, b):
    return {"id": f"{root}/{j}/{t}", "root": root, "line": "optimal" if j == 0 else "suboptimal", "line_index": j, "ply": t,
            "branch_ply": b, "root_to_move": t % 2 == 0}


def test_rollout_pairs_of_a_hand_made_dataset():
    # root a: optimal plies 0-3; line 1 branched at 0 (plies 1-3), line 2 at 2 (ply 3).
    # root b: the optimal line ends at ply 1 (mate); line 1 branched at 0 holds plies 1-2: only ply 1 pairs.
    recs = ([_rec("a", 0, t, None) for t in range(4)] + [_rec("a", 1, t, 0) for t in (1, 2, 3)] + [_rec("a", 2, 3, 2)]
            + [_rec("b", 0, t, None) for t in (0, 1)] + [_rec("b", 1, t, 0) for t in (1, 2)])
    rows = {r["id"]: i for i, r in enumerate(recs)}
    everything = rollout_pairs(recs, "all")
    assert list(everything) == ["a", "b"]
    a = everything["a"]
    assert a.pairs.tolist() == [[rows["a/0/1"], rows["a/1/1"]], [rows["a/0/2"], rows["a/1/2"]], [rows["a/0/3"], rows["a/1/3"]],
                                [rows["a/0/3"], rows["a/2/3"]]]
    assert a.lines.tolist() == [1, 1, 1, 2] and a.plies.tolist() == [1, 2, 3, 3] and a.line_indices() == (1, 2)
    assert everything["b"].pairs.tolist() == [[rows["b/0/1"], rows["b/1/1"]]]
    own = rollout_pairs(recs)  # the root side's plies only: ply 2 of root a
    assert own["a"].pairs.tolist() == [[rows["a/0/2"], rows["a/1/2"]]] and len(own["b"]) == 0
    assert a.select([2]).pairs.tolist() == [[rows["a/0/3"], rows["a/2/3"]]]
    # the same from PositionSpecs, in another order
    specs = [PositionSpec.from_dict(r) for r in reversed(recs)]
    back = rollout_pairs(specs, "all")["a"]
    n = len(recs) - 1
    assert sorted(map(tuple, (n - back.pairs).tolist())) == sorted(map(tuple, a.pairs.tolist()))


def test_a_dataset_without_pairing_fields_is_not_rollouts(tmp_path):
    data = random_games(tmp_path / "games", games=2, plies=6)
    with pytest.raises(ConceptChessError, match=r"^not a rollouts dataset: position 0 \(g0-p0\) has no root, line, line_index") as e:
        rollout_pairs(list(iter_dataset(data)))
    assert "\n" not in str(e.value)
    with pytest.raises(ConceptChessError, match="not a rollouts dataset: position 1 has no branch_ply"):
        rollout_pairs([_rec("a", 0, 0, None), {k: v for k, v in _rec("a", 1, 1, 0).items() if k not in ("id", "branch_ply")}])
    with pytest.raises(ArgumentError, match="plies must be 'root'"):
        rollout_pairs([_rec("a", 0, 0, None)], "mine")
    with pytest.raises(ArgumentError, match="2 roots; name one with root"):
        DynamicConceptDiscoverer().fit(np.zeros((6, 3)), [_rec(r, 0, t, None) for r in "ab" for t in range(3)])


# -- (6) held-out checks and the swapped-label control ---------------------------------------------------------------
def test_held_out_lines_and_other_roots_beat_the_swapped_label_control():
    X, meta, _ = planted_rollouts(roots=3, seed=1, **PLANTED)
    est = DynamicConceptDiscoverer(plies="all")
    val = validate_dynamic(X, meta, "r0", estimator=est, seed=4)
    lines = rollout_pairs(meta, "all")["r0"].line_indices()
    assert set(val.fit_lines).isdisjoint(val.held_out_lines) and sorted(val.fit_lines + val.held_out_lines) == list(lines)
    assert len(val.held_out_lines) == round(0.3 * len(lines))
    assert val.fit.with_margin == 1.0 and val.fit.ordered == 1.0
    assert val.held_out.ordered >= 0.95 and val.other_roots.ordered >= 0.95
    assert val.other_roots.pairs == 2 * 108
    assert val.control is not None and val.control.ordered <= val.held_out.ordered - 0.3
    assert val.control_other_roots.ordered <= val.other_roots.ordered - 0.3
    assert val.n_nonzero == 3 and val.control_nonzero > val.n_nonzero  # the control fits noise with more features
    # the held-out check by hand: the concept refitted on the fitted lines, its gaps on the held-out pairs
    fitted = DynamicConceptDiscoverer(plies="all").fit(X, meta, "r0", val.fit_lines)
    held = rollout_pairs(meta, "all")["r0"].select(val.held_out_lines).pairs
    gaps = fitted.decision_function(X[held[:, 0]]) - fitted.decision_function(X[held[:, 1]])
    assert val.held_out.pairs == len(held) and val.held_out.ordered == np.mean(gaps > 0)
    assert val.held_out.mean_gap == pytest.approx(gaps.mean())


def test_swapping_and_pair_sampling_are_seeded():
    pairs = all_pairs([1, 0, 1, 0, 0], max_pairs=4, seed=2)
    assert len(pairs) == 4 and len({tuple(p) for p in pairs.tolist()}) == 4
    assert all(p in (0, 2) and n in (1, 3, 4) for p, n in pairs.tolist())
    assert all_pairs([1, 0, 1, 0, 0], max_pairs=4, seed=2).tolist() == pairs.tolist()
    assert all_pairs([1, 0, 1, 0, 0]).tolist() == [[0, 1], [0, 3], [0, 4], [2, 1], [2, 3], [2, 4]]
    s = swap_pairs(np.arange(200).reshape(100, 2), seed=7)
    flipped = s[:, 0] > s[:, 1]
    assert 30 < flipped.sum() < 70 and (swap_pairs(np.arange(200).reshape(100, 2), seed=7) == s).all()
    assert sorted(map(sorted, s.tolist())) == np.arange(200).reshape(100, 2).tolist()


def test_check_pairs_of_an_estimator_and_of_its_direction_agree():
    X, meta, _ = planted_rollouts(roots=2, seed=2, **PLANTED)
    est = DynamicConceptDiscoverer(plies="all").fit(X, meta, "r1")
    other = rollout_pairs(meta, "all")["r0"].pairs
    a, b = check_pairs(est, X, other), check_pairs(est.to_direction("planted", "block5"), X, other)
    assert a.pairs == b.pairs == 108 and a.ordered == b.ordered
    assert a.mean_gap == pytest.approx(b.mean_gap, rel=1e-5)
    assert est.score(X, meta, "r0") == a.ordered


# -- the direction it makes -----------------------------------------------------------------------------------------
def test_a_discovered_direction_scores_its_activation_files_as_the_estimator(tmp_path):
    net = tiny_net(tmp_path / "tiny.pb.gz", seed=3)
    roots = random_games(tmp_path / "roots", games=2, plies=12, seed=1)
    rolled = tmp_path / "rollouts"
    rollouts_dataset(net, roots, rolled, RolloutSettings(nodes=64, depth=4, lines_per_ply=2, value_gap=0.0, extend_nodes=8), limit=3, threads=1,
                     device="cpu")
    acts = extract_activations(net, rolled, tmp_path / "acts", ["block1"], threads=1, device="cpu")
    X, meta = rollout_activations(acts, "block1")
    assert X.shape == (len(meta), 8 * 64) and [m["id"] for m in meta] == ActivationFiles(tmp_path / "acts").ids
    root = max(rollout_pairs(meta, "all").items(), key=lambda kv: len(kv[1]))[0]
    est = DynamicConceptDiscoverer(plies="all").fit(X, meta, root)
    d = est.to_direction("tiny-concept", "block1", activations=acts, erased=False)
    assert d.kind == "discovered" and d.pooling == "full" and d.nonzeros == est.n_nonzero_
    assert d.network_sha256 == acts.manifest["net_sha256"] and d.dataset_sha256 == dataset_sha256(rolled)
    p = d.provenance
    assert p["root"] == root and p["erased"] is False and p["margin"] == 1.0 and p["solver"] == "HIGHS" and p["status"] == "optimal"
    assert p["n_nonzero"] == est.n_nonzero_ and p["plies"] == "all" and p["lines"] == list(est.lines_) and "cvxpy" in p["software"]
    assert d.scores(acts) == pytest.approx(est.decision_function(X), rel=1e-4, abs=1e-4)
    with pytest.raises(ConceptChessError, match="has 512 values per position; the concept was fitted on 64"):
        DynamicConceptDiscoverer(plies="all").fit(X[:, :64], meta, root).to_direction("x", "block1", activations=acts)
