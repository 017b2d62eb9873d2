"""LEACE erasure of human concepts: the guarantee on synthetic data, the concept matrix, files, the random
control, and real maia-1900 activations of Lichess games."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.metrics import balanced_accuracy_score, r2_score

from conceptchess.erasure import (
    ConceptEncoding,
    EraserProvenance,
    HumanConceptEraser,
    concept_matrix,
    fit_eraser_from_files,
    random_subspace_eraser,
    side_to_move_uci,
)
from conceptchess.errors import ConceptChessError

torch.set_num_threads(1)


def concept_data(n: int, d: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Activations ``(n, d)`` whose mean shifts with a binary concept (column 0 of C) and a scalar one
    (column 1) along random directions, correlated noise, and a third concept of its own (``u``, unrelated
    to C, along a direction orthogonal to both) that no eraser of C should touch."""
    rng = np.random.default_rng(seed)
    b = (rng.random(n) < 0.3).astype(np.float64)
    s = rng.normal(size=n)
    u = (rng.random(n) < 0.5).astype(np.float64)
    A = np.linalg.qr(rng.normal(size=(d, 3)))[0].T  # three orthonormal directions
    mix = np.eye(d) + 0.25 * rng.normal(size=(d, d)) / np.sqrt(d)  # correlated, well conditioned
    X = rng.normal(size=(n, d)) @ mix + np.outer(b, 2.5 * A[0]) + np.outer(s, 1.0 * A[1]) + np.outer(u, 1.5 * A[2])
    return X.astype(np.float32), np.stack([b, s], 1), u


def balanced_accuracy(train_X, train_y, test_X, test_y) -> float:
    """Held-out balanced accuracy of scikit-learn's logistic regression, deciding at the training prevalence
    (so that a model that learned anything is not hidden behind always predicting the majority class)."""
    clf = LogisticRegression(max_iter=1000).fit(train_X, train_y)
    return balanced_accuracy_score(test_y, clf.predict_proba(test_X)[:, 1] > np.mean(train_y))


# -- the guarantee ----------------------------------------------------------------------------------------------
def test_after_leace_no_linear_model_beats_chance_on_held_out_data():
    X, C, _ = concept_data(12_000, 24, seed=1)
    tr, te = slice(0, 8000), slice(8000, None)
    eraser = HumanConceptEraser().fit(X[tr], C[tr])
    E = eraser.transform(X)
    assert eraser.rank_ == 2 and E.dtype == np.float32 and E.shape == X.shape
    # the exact statement of LEACE, on the fitting rows: zero cross-covariance (numpy, float64)
    Et, Ct = E[tr].astype(np.float64), C[tr]
    assert np.abs((Et - Et.mean(0)).T @ (Ct - Ct.mean(0)) / len(Ct)).max() < 1e-5
    # before: both concepts are read off linearly on held-out rows; after: chance within a small tolerance
    assert balanced_accuracy(X[tr], C[tr, 0], X[te], C[te, 0]) > 0.8
    assert balanced_accuracy(E[tr], C[tr, 0], E[te], C[te, 0]) < 0.53
    assert r2_score(C[te, 1], LinearRegression().fit(X[tr], C[tr, 1]).predict(X[te])) > 0.4
    assert r2_score(C[te, 1], LinearRegression().fit(E[tr], C[tr, 1]).predict(E[te])) < 0.01
    # the least change: only the rank-2 part moves, and the unconditional mean stays
    assert np.linalg.matrix_rank((X[tr] - E[tr]).astype(np.float64), tol=1e-3) == 2
    assert np.allclose(E[tr].mean(0), X[tr].mean(0), atol=1e-4)


def test_rows_with_an_undefined_concept_are_left_out_of_the_fit():
    X, C, _ = concept_data(3000, 12, seed=2)
    holes = C.copy()
    holes[::10, 1] = np.nan
    a = HumanConceptEraser().fit(X, holes)
    b = HumanConceptEraser().fit(X[~np.isnan(holes).any(1)], C[~np.isnan(holes).any(1)])
    assert a.n_undefined_ == 300 and a.provenance_.positions == 2700
    assert np.allclose(a.transform(X), b.transform(X), atol=1e-6)


# -- the concept matrix -------------------------------------------------------------------------------------------
def test_concept_matrix_encodes_binary_categorical_and_scalar_columns():
    md = np.array([3.0, -1.0, 0.0, 2.0, np.nan, -4.0])
    columns = {
        "in_check": np.array([0, 1, 0, 0, 1, 0]),
        "game_phase": np.array([0, 0, 1, 1, 1, 1]),  # opening, middlegame; no endgame in these rows
        "material_diff": md,
        "us_queens": np.ones(6),  # constant: left out
        "my_flag": np.array([1, 1, 0, 0, 0, 1]),  # not a library concept, 0/1: binary
        "my_score": np.array([0.5, 1.5, 2.5, 3.5, 4.5, 5.5]),  # not a library concept: scalar
    }
    C, names = concept_matrix(columns)
    assert names == ["in_check", "game_phase=opening", "game_phase=middlegame", "material_diff", "my_flag", "my_score"]
    assert C.dtype == np.float32 and C.shape == (6, 6)
    assert C[:, 0].tolist() == [0, 1, 0, 0, 1, 0]
    assert C[:, 1].tolist() == [1, 1, 0, 0, 0, 0] and C[:, 2].tolist() == [0, 0, 1, 1, 1, 1]
    defined = [3.0, -1.0, 0.0, 2.0, -4.0]  # mean 0, population std sqrt(30 / 5)
    assert np.allclose(C[[0, 1, 2, 3, 5], 3], np.array(defined) / np.sqrt(6.0)) and np.isnan(C[4, 3])
    assert C[:, 4].tolist() == [1, 1, 0, 0, 0, 1]
    assert np.allclose(C[:, 5], (np.arange(6) - 2.5) / np.sqrt(35 / 12))
    enc = ConceptEncoding.from_rows(columns)
    assert enc.dropped == ("game_phase=endgame", "us_queens")
    assert enc.kinds == ("binary", "category", "category", "scalar", "binary", "scalar")
    assert enc.metrics[3] == "r2" and enc.metrics[1] == "balanced_accuracy"


def test_the_encoding_learned_on_some_rows_applies_to_others():
    columns = {"material_diff": np.array([1.0, 3.0, 100.0, -7.0]), "game_phase": np.array([0, 2, 1, 1])}
    enc = ConceptEncoding.from_rows(columns, "material_diff,game_phase", rows=np.array([0, 1]))
    assert enc.names == ("material_diff", "game_phase=opening", "game_phase=endgame")  # middlegame not seen on rows 0, 1
    C = enc.matrix(columns)
    assert np.allclose(C[:, 0], [-1.0, 1.0, 98.0, -9.0])  # mean 2 and std 1 of rows 0 and 1
    assert C[:, 1].tolist() == [1, 0, 0, 0] and C[:, 2].tolist() == [0, 1, 0, 0]
    with pytest.raises(ConceptChessError, match="no labels for concept 'in_check'"):
        concept_matrix(columns, "in_check")


# -- files and identity -------------------------------------------------------------------------------------------
def fitted(d: int = 16) -> HumanConceptEraser:
    X, C, _ = concept_data(2000, d, seed=3)
    prov = EraserProvenance(network_sha256="ab" * 32, tap="block5", pooling="mean", dataset_sha256="cd" * 32,
                            concepts=("in_check", "material_diff"), seed=7)
    return HumanConceptEraser(svd_tol=0.005).fit(X, C, columns=["in_check", "material_diff"], provenance=prov)


def test_save_and_load_give_the_same_eraser(tmp_path):
    eraser = fitted()
    path = eraser.save(tmp_path / "erasers" / "block5.npz")
    back = HumanConceptEraser.load(path)
    for k in ("proj_left_", "proj_right_", "bias_", "concept_scale_"):
        assert np.array_equal(getattr(back, k), getattr(eraser, k))
    assert back.get_params() == eraser.get_params() and back.svd_tol == 0.005
    assert (back.rank_, back.n_features_in_, back.n_undefined_) == (2, 16, 0)
    assert back.provenance_ == eraser.provenance_
    assert back.provenance_.columns == ("in_check", "material_diff") and back.provenance_.positions == 2000
    assert "concept_erasure" in back.provenance_.versions
    X = np.random.default_rng(0).normal(size=(50, 16)).astype(np.float32)
    assert np.array_equal(back.transform(X), eraser.transform(X))
    with np.load(path, allow_pickle=False) as f:  # plain arrays and a JSON string: no pickles
        assert all(f[k].dtype != object for k in f.files)
        assert json.loads(str(f["meta"]))["provenance"]["tap"] == "block5"
    assert [p.name for p in path.parent.iterdir()] == ["block5.npz"]  # no temporary file left


def test_an_eraser_of_another_network_tap_or_pooling_is_refused(tmp_path):
    eraser = fitted()
    eraser.check_matches("ab" * 32, "block5", "mean")
    with pytest.raises(ConceptChessError, match=r"reads network abababababab…, not 999999999999…"):
        eraser.check_matches("9" * 64, "block5", "mean")
    with pytest.raises(ConceptChessError, match="reads tap block5, not block3$"):
        eraser.check_matches("ab" * 32, "block3", "mean")
    with pytest.raises(ConceptChessError, match="reads pooling mean, not full"):
        eraser.check_matches("ab" * 32, "block5", "full")
    X, C, _ = concept_data(500, 16, seed=4)
    with pytest.raises(ConceptChessError, match="does not record its network"):
        HumanConceptEraser().fit(X, C).check_matches("ab" * 32, "block5", "mean")
    with pytest.raises(ConceptChessError, match="reads 16 features per position; these activations have 12"):
        eraser.transform(X[:, :12])
    np.savez(tmp_path / "direction.npz", vector=np.ones(4))
    with pytest.raises(ConceptChessError, match="not an eraser"):
        HumanConceptEraser.load(tmp_path / "direction.npz")


# -- the random control -------------------------------------------------------------------------------------------
def test_the_random_subspace_control_leaves_an_unrelated_concept_readable():
    X, C, u = concept_data(6000, 64, seed=5)
    tr, te = slice(0, 4000), slice(4000, None)
    eraser = HumanConceptEraser().fit(X[tr], C[tr])
    control = random_subspace_eraser(eraser.rank_, 64, seed=11)
    Q = control.basis
    assert Q.shape == (64, 2) and np.allclose(Q.T @ Q, np.eye(2))
    R = control.transform(X)
    assert np.allclose(R @ Q, 0, atol=1e-4)  # the subspace is gone …
    assert np.allclose(R, control.transform(R), atol=1e-5)  # … by a projection
    before = balanced_accuracy(X[tr], u[tr], X[te], u[te])
    assert before > 0.7
    assert abs(balanced_accuracy(R[tr], u[tr], R[te], u[te]) - before) < 0.02
    # LEACE of the other concepts leaves it readable too, while the control leaves them readable
    E = eraser.transform(X)
    assert abs(balanced_accuracy(E[tr], u[tr], E[te], u[te]) - before) < 0.02
    assert balanced_accuracy(R[tr], C[tr, 0], R[te], C[te, 0]) > 0.8
    assert np.array_equal(random_subspace_eraser(2, 64, seed=11).basis, Q)  # seeded
    with pytest.raises(ConceptChessError, match="rank must be between 0 and the 64 features"):
        random_subspace_eraser(65, 64, seed=0)


def test_moves_are_read_in_the_side_to_move_frame():
    import chess

    assert side_to_move_uci(chess.Move.from_uci("g8f6"), chess.BLACK) == "g1f3"
    assert side_to_move_uci(chess.Move.from_uci("b2b1q"), chess.BLACK) == "b7b8q"
    assert side_to_move_uci(chess.Move.from_uci("e2e4"), chess.WHITE) == "e2e4"


# -- real activations: maia-1900, Lichess games -------------------------------------------------------------------
CONCEPTS = ["in_check", "material_diff", "us_mobility", "us_king_castled", "us_hanging_pieces"]


@pytest.fixture(scope="module")
def maia_erasure(maia1900, lichess_pgn, tmp_path_factory):
    """An eraser of five python-chess concepts at maia-1900's ``block5`` (mean-pooled: 64 features) fitted on
    4,000 positions, one ply in eight of the shared Lichess games (~470 games), and its report."""
    from conceptchess.activations import extract_activations
    from conceptchess.engine import Engine
    from conceptchess.games import Sampling, pgn_dataset

    work = tmp_path_factory.mktemp("erasure")
    pgn_dataset([lichess_pgn], work / "positions", sampling=Sampling(every=8, max_positions=4000))
    engine = Engine(maia1900, device="cpu", threads=1)
    store = extract_activations(engine, work / "positions", work / "acts", ["block5"], pool="mean", dtype="float32")
    return store, fit_eraser_from_files(store, "block5", concepts=CONCEPTS, network=engine, seed=0)


def test_erasing_python_chess_concepts_from_maia_activations(maia_erasure, maia1900):
    store, fitted = maia_erasure
    report, eraser = fitted.report, fitted.eraser
    assert eraser.rank_ == 5 and report.rank == 5
    assert eraser.provenance_.network_sha256 == hashlib.sha256(Path(maia1900).read_bytes()).hexdigest()
    assert (eraser.provenance_.tap, eraser.provenance_.pooling) == ("block5", "mean")
    assert eraser.provenance_.columns == tuple(CONCEPTS) and eraser.provenance_.positions == report.positions[0]
    eraser.check_matches(store.manifest["net_sha256"], "block5", "mean")
    with pytest.raises(ConceptChessError, match="reads tap block5, not block4"):
        eraser.check_matches(store.manifest["net_sha256"], "block4", "mean")
    for c in report.columns:  # readable before, at chance after, the random control close to before
        assert c.unerased >= (0.75 if c.metric == "balanced_accuracy" else 0.3), c
        assert report.check(f"{c.name} erased").passed, c
        assert report.check(f"{c.name} random control").passed, c
        # on games the eraser never saw, most of the concept is gone too (what is left is estimation error)
        assert c.erased_fresh - c.chance <= 0.5 * (c.unerased - c.chance), c
        assert report.check(f"{c.name} erased on fresh games").passed == (c.erased_fresh <= (0.55 if c.chance else 0.05))
    t = report.top_move
    assert report.check("top move above shuffled").passed and t.erased > 2 * t.shuffled and t.erased > t.majority
    assert json.loads(json.dumps(report.to_dict()))["rank"] == 5


def test_erased_maia_activations_defeat_independent_linear_models(maia_erasure):
    """The report's verdict recomputed with scikit-learn on the same split, the labels from python-chess directly."""
    from conceptchess.concepts import label
    from conceptchess.datasets import iter_dataset
    from conceptchess.positions import boards_of

    store, fitted = maia_erasure
    values = label(boards_of(list(iter_dataset(store.manifest["dataset_path"]))), ["in_check", "material_diff"])
    check, material = values["in_check"].astype(float), values["material_diff"].astype(float)
    Z = np.asarray(store["block5"], dtype=np.float32)
    E = fitted.eraser.transform(Z)
    tr, te = fitted.split.train, fitted.split.test
    mean, std = Z[tr].mean(0), Z[tr].std(0) + 1e-6
    S, T = (Z - mean) / std, (E - mean) / std
    assert balanced_accuracy(S[tr], check[tr], S[te], check[te]) > 0.95
    assert balanced_accuracy(T[tr], check[tr], T[te], check[te]) < 0.55
    assert r2_score(material[te], LinearRegression().fit(S[tr], material[tr]).predict(S[te])) > 0.8
    assert r2_score(material[te], LinearRegression().fit(T[tr], material[tr]).predict(T[te])) < 0.05


def test_a_labels_table_gives_the_eraser_labelling_on_the_fly_gives(maia_erasure, tmp_path):
    from conceptchess.datasets import label_dataset

    store, fitted = maia_erasure
    table = label_dataset(store.manifest["dataset_path"], tmp_path / "labels.parquet", CONCEPTS)
    again = fit_eraser_from_files(store.path, "block5", labels=table.path, top_move_check=False, seed=0)
    for k in ("proj_left_", "proj_right_", "bias_"):
        assert np.allclose(getattr(again.eraser, k), getattr(fitted.eraser, k), rtol=0, atol=1e-12)
    assert again.report.top_move is None and again.eraser.provenance_.concepts == tuple(CONCEPTS)
    with pytest.raises(ConceptChessError, match="not the positions .* was extracted from"):
        fit_eraser_from_files(store.path, "block5", labels=table.path, dataset=tmp_path / "labels.parquet", top_move_check=False)
