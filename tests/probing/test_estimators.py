"""Probing maths on synthetic data: sparse recovery, null concepts, the split by game, the solver, the
bootstrap, the estimators; and a probe that ends at all-zero weights, from the library to `probe show`
and the atlas."""

from __future__ import annotations

import chess
import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.linear_model import Lasso, LassoCV
from sklearn.model_selection import PredefinedSplit

from conceptchess.concepts.labeling import label
from conceptchess.datasets import DatasetWriter, position_record
from conceptchess.errors import ConceptChessError
from conceptchess.lc0.encoder import encode_boards
from conceptchess.lc0.trainable import TrainableLc0Net
from conceptchess.lc0.weights import NetSpec, write_weights
from conceptchess.plots import NO_FIT_NOTE, concept_figure
from conceptchess.probing import Target, probe_matrix, split_by_game
from conceptchess.probing.cell import NO_FIT, NO_FIT_REASON
from conceptchess.probing.estimators import SparseLinearProbe, SparseLogisticProbe
from conceptchess.probing.regularisation import Design, regression_path
from conceptchess.probing.results import load_run
from conceptchess.probing.solvers import L1Quadratic
from conceptchess.probing.split import Standardizer, bootstrap_ci, bootstrap_counts
from conceptchess.store import Database
from tests.helpers import cli, random_move_lists


def activations(n: int, d: int, seed: int = 0) -> np.ndarray:
    """ReLU-like, correlated, unevenly scaled features (like a tap)."""
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(n, d)) + 0.6 * rng.normal(size=(n, 1))
    z = z + 0.5 * np.roll(z, 1, axis=1)
    return (np.maximum(z, 0.0) * rng.uniform(0.2, 3.0, size=d)).astype(np.float32)


def games_of(n: int, per_game: int = 20) -> np.ndarray:
    return np.arange(n) // per_game


# -- the split ---------------------------------------------------------------------------------------
def test_split_never_shares_a_game():
    rng = np.random.default_rng(1)
    games = rng.integers(0, 137, size=5000)  # interleaved, uneven games
    s = split_by_game(games, seed=3)
    sides = [set(games[s.train]), set(games[s.val]), set(games[s.test])]
    assert not (sides[0] & sides[1]) and not (sides[0] & sides[2]) and not (sides[1] & sides[2])
    assert sorted(np.concatenate([s.train, s.val, s.test]).tolist()) == list(range(5000))
    assert [len(x) for x in sides] == [95, 21, 21]  # 70/15/15 of the games
    again = split_by_game(games, seed=3)
    assert np.array_equal(again.test, s.test)  # seeded
    assert not np.array_equal(split_by_game(games, seed=4).test, s.test)


def test_split_needs_three_games():
    with pytest.raises(ConceptChessError, match="at least 3"):
        split_by_game(np.zeros(50, dtype=int))


# -- the solver ----------------------------------------------------------------------------------------
def test_admm_matches_sklearn_lasso():
    X = activations(800, 40, seed=2)
    X = (X - X.mean(0)) / X.std(0)
    rng = np.random.default_rng(2)
    y = X[:, [3, 11, 30]] @ np.array([1.5, -2.0, 0.7]) + 0.3 * rng.normal(size=800)
    alpha = 0.05
    ref = Lasso(alpha=alpha, tol=1e-10, max_iter=100000).fit(X, y)
    G = torch.from_numpy((X.T @ X / len(X)).astype(np.float32))
    C = torch.from_numpy((X.T @ (y - y.mean()) / len(X))[:, None].astype(np.float32))
    st = L1Quadratic(G).solve(C, torch.tensor([alpha], dtype=torch.float32), iters=2000, tol=1e-7)
    assert np.abs(st.z[:, 0].numpy() - ref.coef_).max() < 2e-3
    assert set(np.flatnonzero(st.z[:, 0].numpy())) == set(np.flatnonzero(ref.coef_))


def test_path_r2_close_to_lassocv():
    X = activations(3000, 120, seed=5)
    rng = np.random.default_rng(5)
    w = np.zeros(120)
    w[rng.choice(120, 25, replace=False)] = rng.normal(size=25)
    y = (X @ w + 1.0 * rng.normal(size=3000)).astype(np.float32)
    s = split_by_game(games_of(3000), seed=0)
    std = Standardizer.fit(X, s.train)
    Z = std.transform(X)
    t = lambda a: torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32))  # noqa: E731
    fit = regression_path(Design(t(Z[s.train]), t(Z[s.val])), t(y[s.train]), None, t(y[s.val]), None)
    ours = 1 - ((y[s.test] - (Z[s.test] @ fit.coef.numpy()[:, 0] + fit.intercept.numpy()[0])) ** 2).sum() / ((y[s.test] - y[s.test].mean()) ** 2).sum()
    tv = np.concatenate([s.train, s.val])
    fold = np.r_[np.full(len(s.train), -1), np.zeros(len(s.val))]
    ref = LassoCV(cv=PredefinedSplit(fold), max_iter=20000).fit(Z[tv], y[tv])
    assert abs(ours - ref.score(Z[s.test], y[s.test])) <= 0.01


def test_copied_features_are_fitted_once_and_share_the_weight():
    X = activations(3000, 40, seed=9)
    X[:, 30:34] = X[:, [3]]  # four copies of feature 3 (like the 64 equal squares of an input plane)
    X[:, 35] = X[:, 7]
    X[:, 36] = 2.5  # constant
    std = Standardizer.fit(X)
    assert std.copy_of[30:34].tolist() == [3, 3, 3, 3] and std.copy_of[35] == 7 and std.copy_of[36] == -1
    assert std.keep.sum() == 40 - 6 and std.transform(X).shape == (3000, 34)
    assert not Standardizer.fit(X, dedupe=False).keep[36] and Standardizer.fit(X, dedupe=False).keep.sum() == 39
    y = 2.0 * X[:, 3] - X[:, 7] + 0.5 * X[:, 12]
    s = split_by_game(games_of(3000), seed=0)
    (r,) = probe_matrix(X, (40,), [Target("synthetic", "regression", "synthetic")], y[:, None], s, seed=0)
    assert r.status == "ok" and r.score > 0.999
    v = r.vector
    # feature 3's weight is shared by its 5 equal columns, feature 7's by 2; predictions are unchanged
    np.testing.assert_allclose(v[[3, 30, 31, 32, 33]], v[3], rtol=1e-6)
    np.testing.assert_allclose(v[[7, 35]], v[7], rtol=1e-6)
    assert 5 * v[3] == pytest.approx(2.0, abs=0.02) and 2 * v[7] == pytest.approx(-1.0, abs=0.02) and v[36] == 0
    np.testing.assert_allclose(X @ v + r.intercept, y, atol=0.05)


# -- acceptance: known sparse concept, null concept ---------------------------------------------------------
def test_sparse_linear_concept_is_recovered():
    X = activations(4000, 64, seed=7)
    support = [5, 17, 40, 41]
    y = X[:, support] @ np.array([2.0, -1.0, 0.5, 1.5])
    s = split_by_game(games_of(4000), seed=0)
    (r,) = probe_matrix(X, (64,), [Target("synthetic", "regression", "synthetic")], y[:, None], s, seed=0)
    assert r.status == "ok" and r.score > 0.999 and r.ci_low > 0.99
    strong = np.flatnonzero(np.abs(r.vector) > 0.05 * np.abs(r.vector).max())
    assert sorted(strong.tolist()) == support
    np.testing.assert_allclose(r.vector[support], [2.0, -1.0, 0.5, 1.5], rtol=0.05)
    assert abs(r.shuffled) < 0.02 and r.score - r.shuffled > 0.97  # selectivity


def test_sparse_binary_concept_is_recovered():
    rng = np.random.default_rng(8)
    X = (rng.normal(size=(4000, 64)) + 0.5 * rng.normal(size=(4000, 1))).astype(np.float32)
    margin = X[:, [2, 33]] @ np.array([2.0, -1.0]) + 0.1 * rng.normal(size=4000)
    y = (margin > 0.3).astype(float)
    s = split_by_game(games_of(4000), seed=0)
    (r,) = probe_matrix(X, (8, 8), [Target("synthetic", "classification", "synthetic")], y[:, None], s, seed=0)
    assert r.score > 0.95 and r.vector.shape == (8, 8)
    top = np.argsort(-np.abs(r.vector.ravel()))[:2]
    assert sorted(top.tolist()) == [2, 33]
    assert abs(r.shuffled - 0.5) < 0.05


def test_rare_binary_concept_is_recovered():
    """A concept true in ~1% of positions (like mate-in-1) is found, not left at the all-zero probe.

    This synthetic case passes with or without the retry of rejected logistic steps; the failure the
    retry fixes (BA exactly 0.5 for mate-in-1) only showed on maia-1100's activations."""
    rng = np.random.default_rng(11)
    n = 8000
    X = (rng.normal(size=(n, 256)) + 0.5 * rng.normal(size=(n, 1))).astype(np.float32)
    margin = X[:, [5, 77, 140]] @ np.array([1.5, -1.0, 1.0])
    y = (margin > np.quantile(margin, 0.99)).astype(float)
    s = split_by_game(games_of(n), seed=0)
    (r,) = probe_matrix(X, (256,), [Target("rare", "classification", "rare")], y[:, None], s, seed=0)
    assert r.score > 0.85
    top = np.argsort(-np.abs(r.vector.ravel()))[:3]
    assert sorted(top.tolist()) == [5, 77, 140]

def test_independent_concept_scores_zero_and_selectivity_zero():
    X = activations(4000, 64, seed=9)
    rng = np.random.default_rng(9)
    Y = np.stack([rng.normal(size=4000), (rng.random(4000) < 0.3).astype(float)], 1)
    targets = [Target("noise", "regression", "noise"), Target("coin", "classification", "coin")]
    s = split_by_game(games_of(4000), seed=0)
    noise, coin = probe_matrix(X, (64,), targets, Y, s, seed=0)
    assert abs(noise.score) < 0.02 and abs(noise.score - noise.shuffled) < 0.03
    assert abs(coin.score - 0.5) < 0.05 and abs(coin.score - coin.shuffled) < 0.06


def test_skipped_targets_say_why():
    X = activations(600, 16, seed=1)
    y = np.zeros((600, 2))
    y[:, 1] = np.nan
    y[:5, 1] = 1.0
    s = split_by_game(games_of(600), seed=0)
    const, sparse = probe_matrix(X, (16,), [Target("c", "regression", "c"), Target("s", "classification", "s")], y, s)
    assert const.status == "skipped" and "constant" in const.reason
    assert sparse.status == "skipped" and "labelled" in sparse.reason


def test_bootstrap_is_seeded_and_brackets_the_score():
    rng = np.random.default_rng(0)
    y = rng.normal(size=(500, 1))
    pred = y + 0.5 * rng.normal(size=(500, 1))
    games = games_of(500, 10)
    codes, counts = bootstrap_counts(games, 500, seed=1)
    low, high = bootstrap_ci("r2", y, pred, np.ones_like(y, bool), codes, counts)
    r2 = 1 - ((y - pred) ** 2).sum() / ((y - y.mean()) ** 2).sum()
    assert low[0] < r2 < high[0] and high[0] - low[0] < 0.2
    codes2, counts2 = bootstrap_counts(games, 500, seed=1)
    assert np.array_equal(counts, counts2)


def test_bootstrap_resamples_games_not_rows():
    """Residuals shared by the positions of a game (a game-level effect the activations do not show)
    make an interval from resampled test games much wider than one from resampled rows; the probe's
    interval is the game-level one (both references below are computed independently, by loops)."""
    n_games, per = 150, 20
    n = n_games * per
    games = games_of(n, per)
    rng = np.random.default_rng(21)
    X = activations(n, 16, seed=21)
    y = X[:, [2, 9]] @ np.array([1.0, -0.5]) + 1.5 * rng.normal(size=n_games)[games] + 0.2 * rng.normal(size=n)
    s = split_by_game(games, seed=0)
    (r,) = probe_matrix(X, (16,), [Target("y", "regression", "y")], y[:, None], s, seed=0)
    assert r.status == "ok" and 0.1 < r.score < 0.6
    yt, pred, gt = y[s.test], X[s.test] @ r.vector.astype(np.float64) + r.intercept, games[s.test]

    def interval(groups: np.ndarray) -> tuple[float, float]:
        members = [np.flatnonzero(groups == g) for g in np.unique(groups)]
        draw = np.random.default_rng(5)
        boot = []
        for _ in range(2000):
            rows = np.concatenate([members[i] for i in draw.integers(len(members), size=len(members))])
            boot.append(1 - ((yt[rows] - pred[rows]) ** 2).sum() / ((yt[rows] - yt[rows].mean()) ** 2).sum())
        return tuple(np.quantile(boot, [0.025, 0.975]))

    game_low, game_high = interval(gt)
    row_low, row_high = interval(np.arange(len(gt)))
    assert game_high - game_low > 2 * (row_high - row_low)  # the data tells the two resamplings apart
    assert r.ci_high - r.ci_low == pytest.approx(game_high - game_low, rel=0.15)
    assert r.ci_low == pytest.approx(game_low, abs=0.05) and r.ci_high == pytest.approx(game_high, abs=0.05)


# -- a probe that ends at all-zero weights ------------------------------------------------------------------
NO_FIT_GAMES = random_move_lists(20, 60)  # ~1,200 positions: few enough for material_diff to end at all-zero weights


def test_exactly_linear_concept_at_full_resolution_is_a_no_fit_not_a_low_score():
    """material_diff is a linear function of the input planes (piece counts), yet on ~1,200 positions at
    full 8×8 resolution (2,282 distinct features) every λ below λ_max scores worse on validation than the
    all-zero probe: the row says no-fit. Mean-pooled planes, same positions: an ordinary near-perfect fit."""
    boards, games = [], []
    for g, moves in enumerate(NO_FIT_GAMES):
        b = chess.Board()
        for m in moves:
            b.push(m)
            boards.append(b.copy())
            games.append(g)
    y = label(boards, ["material_diff"])["material_diff"].astype(np.float64)[:, None]
    planes = encode_boards(boards)
    s = split_by_game(np.array(games), seed=0)
    target = [Target("material_diff", "regression", "material_diff")]
    (full,) = probe_matrix(planes.reshape(len(boards), -1), (112, 8, 8), target, y, s, seed=0)
    assert full.status == NO_FIT and full.reason == NO_FIT_REASON
    assert full.nonzero == 0 and not full.vector.any() and abs(full.score) < 0.01
    (pooled,) = probe_matrix(planes.mean((2, 3)), (112,), target, y, s, seed=0)
    assert pooled.status == "ok" and pooled.reason is None and pooled.score > 0.99 and pooled.nonzero > 0


@pytest.fixture(scope="module")
def no_fit_run(tmp_path_factory):
    """A real sweep (CLI) of material_diff on the full-resolution input tap of those positions."""
    root = tmp_path_factory.mktemp("no_fit")
    with DatasetWriter(root / "positions", {"made_by": "test random games"}) as w:
        for g, moves in enumerate(NO_FIT_GAMES):
            for t in range(1, len(moves) + 1):
                w.write({"id": f"g{g}-p{t}", "game": g, "ply": t, **position_record(chess.Board(), moves, t)})
    spec = NetSpec(blocks=1, filters=8, se_channels=4, policy="convolution", policy_channels=0, value="wdl", value_channels=4,
                   value_hidden=16, moves_left=False)
    torch.manual_seed(0)
    write_weights(root / "net.pb.gz", spec, TrainableLc0Net(spec).folded_state())
    db = f"sqlite:///{root / 'probes.sqlite'}"
    r = cli("probe", "run", "--net", str(root / "net.pb.gz"), "--positions", str(root / "positions"),
            "--concepts", "material_diff,in_check", "--taps", "input", "--pool", "full",
            "--bootstrap", "200", "--db", db, "--results", str(root / "results"))
    assert r.exit_code == 0, r.output
    return root, db


def test_show_and_atlas_mark_a_no_fit_probe(no_fit_run):
    root, db = no_fit_run
    view = load_run(Database(db), 1)
    mat = [r for r in view.rows if r.concept == "material_diff"]
    assert mat and all(r.status == NO_FIT and r.reason == NO_FIT_REASON and r.nonzero == 0 for r in mat)
    assert all(r.status == "ok" and r.nonzero > 0 for r in view.rows if r.concept == "in_check")
    r = cli("probe", "show", "--concept", "material_diff", "--db", db)
    assert r.exit_code == 0, r.output
    assert r.output.count(" ×") == len(mat) and f"× no fit: {NO_FIT_REASON}" in r.output
    r = cli("probe", "show", "--concept", "in_check", "--db", db)
    assert r.exit_code == 0 and "×" not in r.output and "no fit" not in r.output
    # The atlas: the what-when-where figure marks the cell and says why; the index counts the cells.
    def crosses(fig) -> list[tuple[str, tuple]]:
        return [(ax.get_title(), tuple(t.get_position())) for ax in fig.axes for t in ax.texts if t.get_text() == "×"]

    fig = concept_figure(view, "material_diff")  # one row (input) × one column per panel
    assert sorted(crosses(fig)) == [("control: random init", (0, 0)), ("score", (0, 0))]
    assert NO_FIT_NOTE in [t.get_text() for t in fig.texts]
    clean = concept_figure(view, "in_check")
    assert not crosses(clean) and NO_FIT_NOTE not in [t.get_text() for t in clean.texts]
    r = cli("probe", "plot", "1", "-o", str(root / "atlas"), "--db", db)
    assert r.exit_code == 0, r.output
    page = (root / "atlas" / "index.html").read_text()
    row = next(line for line in page.splitlines() if ">material_diff</a>" in line)
    assert f"no fit in {len(mat)} of {len(mat)} cells" in row and "<b>No fit</b>" in page
    assert "no fit" not in next(line for line in page.splitlines() if ">in_check</a>" in line)


# -- the scikit-learn contract -----------------------------------------------------------------------------
def test_estimators_follow_the_sklearn_contract():
    X = activations(1500, 30, seed=4)
    y = 2 * X[:, 4] - X[:, 9]
    groups = games_of(1500)
    for est, target in ((SparseLinearProbe(random_state=1), y), (SparseLogisticProbe(random_state=1), (y > np.median(y)).astype(int))):
        assert not [k for k in vars(est) if k.endswith("_")]
        assert clone(est).get_params() == est.get_params()
        est.fit(X, target, groups=groups)
        assert est.coef_.shape == (30,) and est.n_nonzero_ == int((est.coef_ != 0).sum())
        assert {"mean_", "scale_", "intercept_", "alpha_", "val_score_"} <= set(vars(est))
        assert est.score(X, target) > 0.95
    assert set(SparseLogisticProbe(random_state=1).fit(X, (y > 0).astype(int), groups=groups).predict(X)) <= {0, 1}
    multi = SparseLinearProbe().fit(X, np.stack([y, X[:, 0]], 1), groups=groups)
    assert multi.coef_.shape == (2, 30) and multi.predict(X).shape == (1500, 2)


def test_network_figure_and_show_rows_mark_a_no_fit_probe_and_say_why(no_fit_run):
    from conceptchess.plots import network_figure

    root, db = no_fit_run
    view = load_run(Database(db), 1)
    probed = view.probed[0]
    fig = network_figure(view, probed.id)
    # one row per metric: material_diff (R²) and in_check (balanced accuracy), each with its panels
    crosses = {}
    for ax in fig.axes:
        for t in ax.texts:
            if t.get_text() == "×":
                crosses.setdefault(ax.get_title(), []).append([lbl.get_text() for lbl in ax.get_yticklabels()])
    control = view.control_of(probed.id)
    assert sorted(crosses) == sorted([f"{probed.label}: score", f"control: {control.label}"])  # no-fit in both, never in shuffled
    assert all(len(v) == 1 for v in crosses.values())
    assert NO_FIT_NOTE in [t.get_text() for t in fig.texts]
    r = cli("probe", "show", "--concept", "material_diff", "--db", db, env={"COLUMNS": "80"})
    assert r.exit_code == 0, r.output
    rows = [ln for ln in r.stdout.splitlines() if ln.lstrip().startswith("input ")]
    assert rows and sum("no fit: all weights zero" in ln for ln in rows) == len(view.networks)  # the row says why
    assert "…" not in r.stdout
