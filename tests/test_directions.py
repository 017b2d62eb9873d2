"""Concept directions: saved and loaded whole; a stored probe of a real (tiny) sweep read back as a direction
scores what its probe vector file scores; unknown runs, concepts, taps and networks are refused in one line."""

from __future__ import annotations

import json
from dataclasses import fields

import numpy as np
import pytest

from conceptchess.directions import ConceptDirection
from conceptchess.errors import ConceptChessError
from conceptchess.store import connect
from conceptchess.store.directions import ProbeRef, probe_direction
from tests.helpers import cli, random_games, tiny_net


def test_a_saved_direction_loads_back_whole(tmp_path):
    rng = np.random.default_rng(0)
    d = ConceptDirection("fork", "block3", rng.standard_normal(64), mean=rng.standard_normal(64), scale=rng.random(64) + 0.5,
                         kind="discovered", pooling="mean", network_sha256="ab" * 32, dataset_sha256="cd" * 32,
                         provenance={"run": 3, "concept": "fork", "score": 0.75, "ci": [0.7, 0.8]})
    path = d.save(tmp_path / "fork.npz")
    back = ConceptDirection.load(path)
    for f in fields(ConceptDirection):
        if f.name in ("vector", "mean", "scale"):
            a, b = getattr(d, f.name), getattr(back, f.name)
            assert a.dtype == b.dtype == np.float32 and np.array_equal(a, b), f.name
        else:
            assert getattr(back, f.name) == getattr(d, f.name), f.name
    assert back.sha256 == d.sha256
    assert not list(tmp_path.glob(".*.part*"))
    with np.load(path) as z:  # the metadata is plain JSON beside the arrays
        assert json.loads(str(z["meta"]))["provenance"]["ci"] == [0.7, 0.8] and sorted(z.files) == ["mean", "meta", "scale", "vector"]
    # a random control keeps everything but the vector, its kind, name and seed
    r = ConceptDirection.load(d.random_control(5).save(tmp_path / "r.npz"))
    assert (r.kind, r.seed, r.name, r.pooling, r.tap) == ("random-control", 5, "random-fork-seed5", "mean", "block3")
    assert np.array_equal(r.scale, d.scale) and r.nonzeros == d.nonzeros and r.sha256 != d.sha256
    assert ConceptDirection.load(path, "block3", name="renamed").name == "renamed"
    with pytest.raises(ConceptChessError, match="the direction reads tap block3, not block0"):
        ConceptDirection.load(path, "block0")
    with pytest.raises(ConceptChessError, match="carries its own standardisation"):
        ConceptDirection.load(path, mean=tmp_path / "m.npy")
    np.save(tmp_path / "bare.npy", d.vector)
    with pytest.raises(ConceptChessError, match="bare.npy: a bare direction vector needs its tap"):
        ConceptDirection.load(tmp_path / "bare.npy")
    with pytest.raises(ConceptChessError, match="kind must be one of probe, discovered, random-control, not 'concept'"):
        ConceptDirection("x", "block0", np.ones(3), kind="concept")


def test_probe_refs():
    assert ProbeRef.parse("12:them_hanging_pieces:block5") == ProbeRef("12", "them_hanging_pieces", "block5")
    assert ProbeRef.parse("ab12cd:game_phase=endgame:input") == ProbeRef("ab12cd", "game_phase=endgame", "input")
    assert str(ProbeRef("3", "in_check", "block0")) == "3:in_check:block0"
    for text in ("probes/fork.npy", "3:in_check", ":in_check:block0", "3::block0", "3:in_check:"):
        assert ProbeRef.parse(text) is None, text


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    """A real probe sweep (a tiny random-init network and its generated random-init control, random games,
    mean-pooled input and block1 taps) and the activation folder of the probed network."""
    from conceptchess.activations import extract_activations

    root = tmp_path_factory.mktemp("directions")
    net = tiny_net(root / "single.pb.gz", 7)
    data = random_games(root / "positions", games=24, plies=40)
    url = f"sqlite:///{root / 'probes.sqlite'}"
    r = cli("probe", "run", "--positions", str(data), "--net", str(net), "--concepts", "material_diff,in_check",
            "--taps", "input,block1", "--pool", "mean", "--bootstrap", "100", "--db", url, "--results",
            str(root / "results"), "--jobs", "1")
    assert r.exit_code == 0, r.output
    store = extract_activations(net, data, root / "acts", ["input", "block1"], pool="mean", device="cpu", threads=1)
    return connect(url), store, net, data


def test_a_stored_probe_scores_what_its_vector_file_scores(sweep):
    from conceptchess.concepts import label
    from conceptchess.datasets import dataset_sha256, iter_dataset
    from conceptchess.networks import open_network
    from conceptchess.store.probes import ProbeResult

    db, store, net, data = sweep
    with db.session() as s:
        d = probe_direction(s, 1, "material_diff", "input")
        row = s.get(ProbeResult, d.provenance["probe_result"])
    assert row.status == "ok" and row.concept == "material_diff" and row.tap == "input"
    assert d.name == "material_diff-probe-input" and d.kind == "probe" and d.mean is None and d.scale is None
    assert d.pooling == "mean" and d.network_sha256 == open_network(net).sha256 == store.manifest["net_sha256"]
    assert d.dataset_sha256 == dataset_sha256(data) and d.provenance["network_role"] == "probed"
    assert (d.provenance["run"], d.provenance["score"], d.provenance["intercept"]) == (1, row.score, row.intercept)
    x = np.asarray(store["input"], dtype=np.float64).reshape(len(store), -1)
    v = np.load(row.vector_path).reshape(-1)
    np.testing.assert_allclose(d.scores(store), x @ v, rtol=1e-5, atol=1e-4)
    # the probe's read-out (score + intercept) is the concept: material difference is linear in the mean input planes
    truth = np.asarray(label([spec.board() for spec in iter_dataset(data)], ["material_diff"])["material_diff"], dtype=np.float64)
    pred = d.scores(store) + row.intercept
    r2 = 1 - np.sum((truth - pred) ** 2) / np.sum((truth - truth.mean()) ** 2)
    assert row.score > 0.9 and r2 > 0.9, (row.score, r2)


def test_the_networks_of_a_run_are_told_apart(sweep):
    from conceptchess.store.directions import find_run

    db, store, net, _ = sweep
    with db.session() as s:
        run = find_run(s, 1)
        probed = probe_direction(s, 1, "in_check", "block1")
        assert find_run(s, run.key[:10]).id == 1
        assert probe_direction(s, 1, "in_check", "block1", network=probed.network_sha256[:8]).sha256 == probed.sha256
        control = probe_direction(s, str(run.id), "in_check", "block1", network="random-init 2x8")
    assert control.network_sha256 != probed.network_sha256 and control.provenance["network_role"] == "random-init"
    assert control.sha256 != probed.sha256 and probed.network_sha256 == store.manifest["net_sha256"]
    np.testing.assert_allclose(probed.scores(store), np.asarray(store["block1"], dtype=np.float64).reshape(len(store), -1)
                               @ np.load(probed.provenance["vector_path"]).reshape(-1), rtol=1e-5, atol=1e-4)
    with pytest.raises(ConceptChessError, match=r"reads network .*; the activations of .* are network"):
        control.scores(store)


@pytest.mark.parametrize("run, concept, tap, network, message", [
    (9, "material_diff", "input", None, r"^no probe run '9' \(runs: 1\)$"),
    ("zz", "material_diff", "input", None, r"^no probe run 'zz' \(runs: 1\)$"),
    (1, "material_dif", "input", None, r"^probe run 1 has no probe of concept 'material_dif' \(closest: material_diff; "
                                       r"concepts: in_check, material_diff\)$"),
    (1, "in_check", "block7", None, r"^probe run 1 probed in_check at taps input, block1, not 'block7'$"),
    (1, "material_diff", "block1", None, r"^probe run 1: material_diff at block1 of single is no direction \(no-fit: "),
    (1, "in_check", "block1", "0000000000", r"^network '0000000000' is not one of probe run 1's networks with a probe of in_check "
                                           r"at block1: .*\(.*…\), .*\(.*…\)$"),
])
def test_unknown_runs_concepts_taps_and_networks_are_refused(sweep, run, concept, tap, network, message):
    db = sweep[0]
    with db.session() as s, pytest.raises(ConceptChessError, match=message) as e:
        probe_direction(s, run, concept, tap, network)
    assert "\n" not in str(e.value)
