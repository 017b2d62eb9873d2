"""Discovery runs end to end on a small real pipeline: rollouts → activations → eraser → concepts → novelty →
amplification → figures, in the database; the raw-space pull-back of an erased-space concept; resume; bad input."""

from __future__ import annotations

import json

import numpy as np
import pytest

from conceptchess.directions import ConceptDirection
from conceptchess.discoveries import funnel, raw_direction
from conceptchess.erasure import HumanConceptEraser
from conceptchess.store import connect
from conceptchess.store.discovery import all_concepts, amplification_of, latest_novelty
from tests.helpers import LICHESS_GAMES, cli, data_file


def test_raw_direction_scores_like_the_erased_space_concept():
    """w = u − Rᵀ·Lᵀ·u reads raw activations as the concept reads erased ones, up to one constant."""
    rng = np.random.default_rng(0)
    C = rng.integers(0, 2, size=(3000, 2)).astype(np.float32)
    X = rng.normal(size=(3000, 12)).astype(np.float32) + C @ rng.normal(size=(2, 12)).astype(np.float32)
    eraser = HumanConceptEraser().fit(X, C)
    v = np.zeros(12, np.float32)
    v[[1, 5, 7]] = [0.7, -1.2, 0.4]
    mean, scale = rng.normal(size=12).astype(np.float32), rng.uniform(0.5, 2, size=12).astype(np.float32)
    d = ConceptDirection("c", "block0", v, mean, scale, kind="discovered")
    erased_score = ((eraser.transform(X) - mean) / scale) @ v
    raw = raw_direction(d, eraser)
    assert raw.mean is None and raw.scale is None and raw.provenance["erased_space_nonzero"] == 3
    diff = X.astype(np.float64) @ raw.vector.astype(np.float64) - erased_score
    assert np.ptp(diff) < 1e-3 * np.abs(erased_score).max()


@pytest.fixture(scope="module")
def pipeline(maia1100, tmp_path_factory):
    """Human positions, self-play, three roots, their rollouts, mean-pooled block5 activations, an eraser."""
    d = tmp_path_factory.mktemp("disc")
    net = maia1100
    steps = [
        ("positions", "from-pgn", data_file("pgn", LICHESS_GAMES), "-o", d / "human", "--skip-plies", 8, "--every", 4, "--max-positions", 1500),
        ("positions", "selfplay", "--net", net, "--games", 12, "--max-plies", 60, "-o", d / "selfplay", "--threads", 1),
        ("positions", "from-pgn", data_file("pgn", LICHESS_GAMES), "-o", d / "roots", "--skip-plies", 14, "--every", 37, "--max-positions", 3),
        ("positions", "rollouts", "--net", net, "--input", d / "roots", "--nodes", 96, "--depth", 4, "--lines-per-ply", 3,
         "--extend-nodes", 16, "-o", d / "rollouts", "--threads", 1),
        ("activations", "extract", "--net", net, "--positions", d / "rollouts", "--taps", "block5", "--pool", "mean", "-o", d / "act-rollouts",
         "--threads", 1),
        ("activations", "extract", "--net", net, "--positions", d / "human", "--taps", "block5", "--pool", "mean", "-o", d / "act-human",
         "--threads", 1),
        ("discover", "erase", "--activations", d / "act-human", "--tap", "block5", "--concepts", "in_check,material_diff,us_mobility",
         "-o", d / "eraser.npz", "--db", d / "cc.sqlite", "--threads", 1),
    ]
    for args in steps:
        r = cli(*args)
        assert r.exit_code == 0, (args, r.output)
    return d, net


def test_discovery_pipeline(pipeline):
    d, net = pipeline
    db = d / "cc.sqlite"
    args = ("discover", "run", "--net", net, "--rollouts", d / "rollouts", "--activations", d / "act-rollouts", "--tap", "block5",
            "--eraser", d / "eraser.npz", "--results", d / "results", "--db", db)
    r = cli(*args)
    assert r.exit_code == 0, r.output
    database = connect(str(db))
    with database.session() as s:
        rows = all_concepts(s)
    assert {c.variant for c in rows} == {"erased", "unerased"} and len({c.root for c in rows}) == 3
    fitted = [c for c in rows if c.vector_path]
    assert fitted, [(c.status, c.reason) for c in rows]
    for c in fitted:
        direction = ConceptDirection.load(c.vector_path)
        assert direction.kind == "discovered" and direction.tap == "block5" and direction.sha256 == c.vector_sha256
        assert 0 < c.nonzero <= c.features == 64 and c.constraints >= 1
        assert 0 <= c.heldout_same_root <= 1 and c.details["fit"]["ordered"] == 1.0 or c.status != "ok"
        if c.variant == "erased":
            assert direction.provenance["space"].startswith("raw activations")
    # the same command again: the same run, nothing stored twice
    r = cli(*args)
    assert r.exit_code == 0, r.output
    with database.session() as s:
        assert len(all_concepts(s)) == len(rows)
    # novelty and amplification of every fitted concept, then the funnel and the figures
    r = cli("discover", "novelty", "--run", 1, "--net", net, "--human", d / "human", "--machine", d / "selfplay", "--tap", "block5",
            "--pool", "mean", "--max-positions", 400, "--controls", 20, "--threads", 1, "--db", db)
    assert r.exit_code == 0, r.output
    r = cli("discover", "amplify", "--run", 1, "--net", net, "--unrelated", d / "human", "--all", "--count", 16, "--alphas", "0,0.5,1",
            "--db", db)
    assert r.exit_code == 0, r.output
    with database.session() as s:
        for c in fitted:
            nov = latest_novelty(s, c.id)
            assert nov is not None and set(nov.scores) and nov.human_rank <= 64 and nov.control["controls"] == 20
            amps = {a.positions: a for a in amplification_of(s, c.id)}
            assert set(amps) == {"roots", "unrelated"} and amps["unrelated"].n_positions == 16
            assert amps["roots"].curves["concept"]["mean"][0] == 0.0  # α = 0 changes nothing
    f = funnel(database, 1, "erased")
    assert f.roots == 3 and f.fitted + f.soft + f.failed == 3 and f.novel <= f.heldout <= f.fitted
    r = cli("discover", "plot", "-o", d / "figs", "--db", db)
    assert r.exit_code == 0, r.output
    index = (d / "figs" / "index.html").read_text()
    assert all(f"concept-{c.id}.png" in index for c in fitted) and (d / "figs" / f"concept-{fitted[0].id}.png").stat().st_size > 10_000
    r = cli("discover", "show", fitted[0].id, "--db", db)
    assert r.exit_code == 0 and "held_out_same_root" in r.stdout
    r = cli("discover", "list", "--db", db)
    assert r.exit_code == 0 and "unerased" in r.stdout


def test_discovery_bad_input(pipeline, tmp_path):
    d, net = pipeline
    db = tmp_path / "cc.sqlite"
    base = ("discover", "run", "--net", net, "--activations", d / "act-rollouts", "--results", tmp_path / "res", "--db", db)
    cases = [
        ((*base, "--rollouts", d / "human", "--tap", "block5"), "not a rollouts dataset"),
        ((*base, "--rollouts", d / "rollouts", "--tap", "block9"), "has no tap 'block9'"),
        ((*base, "--rollouts", d / "rollouts", "--tap", "block5", "--margin", "0"), "--margin must be > 0"),
        ((*base, "--rollouts", d / "rollouts", "--tap", "block5", "--held-out", "1"), "--held-out must lie in (0, 1)"),
    ]
    human_acts = json.loads((d / "act-human" / "manifest.json").read_text())
    assert human_acts["taps"]  # the eraser below is of block5: refused at another pooling/tap
    other = HumanConceptEraser.load(d / "eraser.npz")
    with pytest.raises(Exception, match="tap|pool"):
        other.check_matches(other.provenance_.network_sha256, "block4", "mean")
    for args, message in cases:
        r = cli(*args)
        assert r.exit_code == 2 and message in r.stderr, (args, r.output)
        assert len(r.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "res").exists()
    r = cli("discover", "show", 999, "--db", db)
    assert r.exit_code == 2 and "no discovered concept 999" in r.stderr
