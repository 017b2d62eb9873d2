"""The demo's concept directions are the sweep's stored probe vectors, applied to the held-out test games.

A small sweep (the project's final checkpoint in engines/, 600 positions of the shared Lichess games,
one concept on mean-pooled activations and one on the full 8×8 ones, as the demo mixes them) is run
into a temporary database; the directions read back must score the held-out positions exactly as the
stored probes did (their test score is recomputed from the concept labels), carry the training games'
standardisation of their own pooling, and leave every training game out.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import func, select

from conceptchess.activations import ActivationFiles, extract_activations
from conceptchess.concepts import label
from conceptchess.datasets import iter_dataset, positions_path
from conceptchess.demo import (
    FULL_RESOLUTION_CONCEPTS,
    PROBED_CONCEPTS,
    DiscoveryBudget,
    choose_discovered,
    demo_checkpoints,
    demo_discovery,
    demo_eraser,
    demo_filters,
    discovered_puzzles,
    discovery_data,
    discovery_page,
    plan_demo_sweep,
    probe_directions,
)
from conceptchess.discovery_filters import STAGES, filter_run
from conceptchess.export import read_pgn_puzzles
from conceptchess.games import Sampling, pgn_dataset
from conceptchess.networks import default_network
from conceptchess.probing import SweepRequest, plan_sweep, run_sweep
from conceptchess.probing.sources import Activations, net_info
from conceptchess.puzzles.records import collection_puzzles
from conceptchess.store import connect
from conceptchess.store.discovery import AmplificationResult, DiscoveredConcept, NoveltyScore, TeachingResult
from conceptchess.store.probes import ProbeResult
from conceptchess.teachability import TeachSettings
from tests.helpers import network_or_skip, stockfish_or_skip, tiny_net

CONCEPTS = ("them_hanging_pieces", "us_mobility")
POOLS = {"them_hanging_pieces": "mean", "us_mobility": "full"}


@pytest.fixture(scope="module")
def sweep(tmp_path_factory, lichess_pgn):
    tmp = tmp_path_factory.mktemp("demo")
    net = default_network()
    if net is None or not net.is_file():
        pytest.skip("no network in engines/")
    ds = tmp / "positions"
    pgn_dataset([lichess_pgn], ds, sampling=Sampling(skip_plies=8, every=3, max_positions=600, seed=0))
    url = f"sqlite:///{tmp / 'db.sqlite'}"
    plan = plan_sweep(SweepRequest(dataset=ds, nets=[net], concepts=list(CONCEPTS), taps="block3,block5", controls=False, seed=0,
                                   threads=1, pool="mean", pools={"us_mobility": "full"}, results=tmp / "results"))
    run_id = run_sweep(plan, db_url=url)
    found = probe_directions(connect(url), run_id, CONCEPTS, work_dir=tmp / "work")
    return tmp, url, plan, run_id, found


def test_held_out_positions_are_the_test_games(sweep):
    _, _, plan, _, found = sweep
    held = [spec.id for spec in iter_dataset(found.held_out)]
    assert held == [plan.ids[i] for i in sorted(plan.split.test)]
    assert found.held_out_positions == found.held_out_test_positions == found.test_positions == len(held)
    assert found.run_positions == 600
    with open(positions_path(plan.dataset)) as f:
        game = {d["id"]: d["game"] for d in map(json.loads, f)}
    train_games = {game[plan.ids[i]] for i in plan.split.train}
    assert train_games and not train_games & {game[i] for i in held}


def test_a_larger_pool_leaves_out_every_training_and_validation_game(sweep, lichess_pgn):
    tmp, url, plan, run_id, _ = sweep
    more = tmp / "more-positions"
    pgn_dataset([lichess_pgn], more, sampling=Sampling(skip_plies=8, every=3, max_positions=900, seed=0))
    found = probe_directions(connect(url), run_id, CONCEPTS, positions=more, work_dir=tmp / "work")
    with open(positions_path(more)) as f:
        pool = [json.loads(line) for line in f]
    with open(positions_path(plan.dataset)) as f:
        game = {d["id"]: d["game"] for d in map(json.loads, f)}
    fitted = {game[plan.ids[i]] for i in (*plan.split.train, *plan.split.val)}
    held = [spec.id for spec in iter_dataset(found.held_out)]
    assert held == [r["id"] for r in pool if r["game"] not in fitted]
    assert {plan.ids[i] for i in plan.split.test} < set(held)  # every test position, and positions of further games
    assert found.held_out_positions == len(held) and found.held_out_test_positions == found.test_positions == len(plan.split.test)


def test_directions_reproduce_the_stored_probes_on_the_held_out_games(sweep):
    tmp, url, plan, run_id, found = sweep
    assert [d.concept for d in found.directions] == list(CONCEPTS) and not found.skipped
    with connect(url).session() as s:
        stored = {(r.concept, r.tap): r for r in s.execute(select(ProbeResult).where(ProbeResult.run_id == run_id)).scalars()}
    boards = [spec.board() for spec in iter_dataset(found.held_out)]
    labels = label(boards, list(CONCEPTS))
    sha = net_info(found.directions[0].network_path).sha256
    for d in found.directions:
        assert d.direction.pooling == POOLS[d.concept]
        acts = Activations(plan.dataset, plan.dataset_sha, plan.dataset_size, plan.positions, plan.ids, POOLS[d.concept], plan.results, [])
        row = stored[(d.concept, d.tap)]
        block_scores = [r.score for (c, t), r in stored.items() if c == d.concept and t.startswith("block") and r.score is not None]
        assert d.score == pytest.approx(row.score) == pytest.approx(max(block_scores))
        assert d.direction.name == f"{d.concept}-probe-{d.tap}" and d.direction.tap == d.tap
        # the training games' standardisation, computed here with numpy from the sweep's own activations
        X, _ = acts.load(sha, d.tap)
        train = X[plan.split.train].astype(np.float64)
        np.testing.assert_allclose(d.direction.mean, train.mean(0), rtol=1e-5, atol=1e-6)
        std = train.std(0)  # a constant feature (a square a channel is always 0 on, at full 8×8) keeps scale 1
        np.testing.assert_allclose(d.direction.scale, np.where(std > 1e-6 * np.maximum(1, np.abs(train.mean(0))), std, 1.0), rtol=1e-4)
        # the stored raw vector, expressed in that space
        raw = np.load(row.vector_path).reshape(-1)  # (C,) or (C, 8, 8), as the tap's activations
        np.testing.assert_allclose(d.direction.vector / d.direction.scale, raw, rtol=1e-5, atol=1e-8)
        # score + the stored intercept = the probe's prediction: its R² on the held-out games is the stored test score
        store = extract_activations(d.network_path, found.held_out, tmp / f"held-{d.concept}-{d.tap}", [d.tap], pool=POOLS[d.concept],
                                    device="cpu", threads=1)
        pred = d.direction.scores(store) + float(d.direction.mean.astype(np.float64) @ raw) + row.intercept
        y = np.asarray(labels[d.concept], dtype=np.float64)
        r2 = 1 - ((y - pred) ** 2).sum() / ((y - y.mean()) ** 2).sum()
        assert r2 == pytest.approx(row.score, abs=2e-3)


def test_the_demo_probes_its_six_concepts_at_full_resolution_and_the_rest_on_channel_means(sweep):
    series = sweep[0] / "series"
    series.mkdir()
    for step in (0, 10):
        tiny_net(series / f"tiny-step{step:06d}.pb.gz", seed=step, step=step)
    plan = plan_demo_sweep(sweep[2].dataset, [series])
    assert {t.concept for t in plan.targets if plan.pool_of(t) == "full"} == set(FULL_RESOLUTION_CONCEPTS)
    assert {t.concept for t in plan.targets if plan.pool_of(t) == "mean"} == set(PROBED_CONCEPTS) - set(FULL_RESOLUTION_CONCEPTS)
    assert plan.controls and plan.is_series and len(plan.networks) >= 2


def test_random_control_has_the_probes_sparsity_and_standardisation(sweep):
    d = sweep[4].directions[0].direction
    c = d.random_control(0)
    assert c.nonzeros == d.nonzeros and c.kind != d.kind
    assert np.array_equal(c.mean, d.mean) and np.array_equal(c.scale, d.scale)
    assert not np.array_equal(c.vector, d.vector)
    assert np.linalg.norm(c.vector) == pytest.approx(np.linalg.norm(d.vector), rel=1e-5)


def test_unknown_run_is_a_one_line_error(sweep):
    from conceptchess.errors import ConceptChessError

    with pytest.raises(ConceptChessError, match="no probe run 999"):
        probe_directions(connect(sweep[1]), 999, CONCEPTS, work_dir=Path(sweep[0]) / "work")


def test_demo_probes_every_other_checkpoint_of_a_long_series(tmp_path):
    steps = [0, 1, 2, 4, 8, 15, 30, 59, 117, 231, 455, 898, 1773, 3500]
    for i, step in enumerate(steps):
        tiny_net(tmp_path / f"s-step{step:06d}.pb.gz", seed=i, step=step, run="s")
    picked = demo_checkpoints(7, tmp_path)
    assert [int(p.name[6:12]) for p in picked] == [0, 2, 8, 30, 231, 898, 3500]
    assert demo_checkpoints(20, tmp_path) == sorted(tmp_path.glob("*.pb.gz"), key=lambda p: int(p.name[6:12]))
    assert demo_checkpoints(7, tmp_path / "none") is None


# -- stage 4: discovery on four checkpoints of the default series, with tiny budgets -------------------------------
TINY = DiscoveryBudget(roots=4, nodes=48, prototype_roots=24, prototype_nodes=16, prototype_lines=1, prototype_extend=8, depth=4,
                       pooling="mean", selfplay_games=4, selfplay_plies=40, novelty_positions=256, novelty_controls=5, amplify_positions=8,
                       min_prototypes=2, teach=TeachSettings(epochs=1, resamples=100), teach_limit=2, mined=1, max_puzzles=1)
STEPS = (8, 898, 1773, 3500)  # the teacher is step 3500; the roots come from its disagreement with step 898; step 8 is a student


@pytest.fixture(scope="module")
def discovered(tmp_path_factory, lichess_pgn):
    """Stage 4 up to the funnel on four checkpoints of the default series and 300 human positions, run twice: the
    second run must find everything the first stored and add nothing."""
    final = network_or_skip()
    tmp = tmp_path_factory.mktemp("discovery")
    series = tmp / "series"
    series.mkdir()
    for step in STEPS:
        name = final.name.replace("003500", f"{step:06d}")
        for f in (final.with_name(name), final.with_name(name.replace(".pb.gz", ".json"))):
            (series / f.name).symlink_to(f)
    human = tmp / "human"
    pgn_dataset([lichess_pgn], human, sampling=Sampling(skip_plies=8, every=3, max_positions=300, seed=0))
    db = connect(f"sqlite:///{tmp / 'db.sqlite'}")
    work, results = tmp / "work", tmp / "results"

    def run():
        data = discovery_data(series / final.name, human, budget=TINY, work=work)
        eraser = demo_eraser(db, data, ("in_check", "material_diff", "us_mobility"), work=work)
        found = demo_discovery(db, data, eraser, results)
        return data, eraser, found, demo_filters(db, found.run_id, data, TINY, work)

    first = run()
    with db.session() as s:
        rows = {name: s.scalar(select(func.count()).select_from(model)) for name, model in
                (("concepts", DiscoveredConcept), ("novelty", NoveltyScore), ("amplification", AmplificationResult), ("teaching", TeachingResult))}
    second = run()
    return tmp, db, first, second, rows


def test_discovery_data_counts_what_it_made(discovered):
    tmp, _, (data, *_), _, _ = discovered
    assert data.earlier.name == "cc-6x64-step000898.pb.gz" and data.tap == "block5"  # two checkpoints back; the last block
    roots = list(iter_dataset(data.roots))
    assert len(roots) == data.disagree and 0 < data.disagree <= data.compared <= 300
    assert all(r.meta["move_a"] != r.meta["move_b"] for r in roots)
    assert data.rollouts.roots == TINY.roots and data.pool.roots == TINY.prototype_roots
    pooled = {str(s.meta["root"]) for s in iter_dataset(data.pool.path)}
    assert {str(s.meta["root"]) for s in iter_dataset(data.rollouts.path)} <= pooled  # the discovery roots come first in the pool
    assert [str(r.id) for r in roots[: TINY.prototype_roots]] == list(dict.fromkeys(str(s.meta["root"]) for s in iter_dataset(data.pool.path)))
    assert data.selfplay_games == TINY.selfplay_games and data.selfplay_positions == len(list(iter_dataset(data.selfplay)))
    for folder, ds in ((data.human_activations, data.human), (data.rollout_activations, data.rollouts.path), (data.pool_activations, data.pool.path)):
        assert len(ActivationFiles(folder)) == len(list(iter_dataset(ds)))


def test_each_stage_passes_at_most_what_the_one_before_passed(discovered):
    _, db, (data, eraser, found, filters), _, _ = discovered
    assert eraser.rank >= 3 and eraser.checks_passed + len(eraser.checks_failed) > 0
    for f in (found.erased, found.unerased):
        assert f.fitted + f.soft + f.failed == f.roots == TINY.roots
        assert f.heldout <= f.fitted
    counts = [n for _, n in filters.funnel.stages]
    assert [name for name, _ in filters.funnel.stages] == list(STAGES)
    assert counts[0] == min(found.erased.heldout, TINY.teach_limit) and counts[0] + filters.funnel.untaught == found.erased.heldout
    assert all(a >= b for a, b in zip(counts, counts[1:]))
    assert [len(ids) for _, ids in filter_run(db, found.run_id, teaching_key=filters.funnel.teaching_key, store=False).members] == counts
    assert len(filters.prototypes) == len(filters.control_prototypes) == counts[0]
    assert sum(p >= TINY.min_prototypes for p in filters.prototypes) == counts[1]
    assert filters.amplified == found.erased.heldout + found.unerased.heldout
    assert filters.novelty_scored == found.erased.fitted + found.unerased.fitted + found.erased.soft + found.unerased.soft
    controls = dict(filters.funnel.controls)
    assert controls["random vectors"] == counts[0] and controls["enough prototypes"] == sum(
        p >= TINY.min_prototypes for p in filters.control_prototypes)
    assert sum(n for _, n in filters.students) == dict(filters.funnel.stages)["a student"] + controls["a student"]


def test_a_second_demo_reuses_what_the_first_stored(discovered):
    _, db, first, second, rows = discovered
    assert second[0] == first[0] and second[1] == first[1] and second[2].run_id == first[2].run_id
    for a, b in ((first[2].erased, second[2].erased), (first[2].unerased, second[2].unerased)):
        assert (a.roots, a.fitted, a.soft, a.failed, a.heldout) == (b.roots, b.fitted, b.soft, b.failed, b.heldout)
    assert second[3].funnel.stages == first[3].funnel.stages and second[3].funnel.teaching_key == first[3].funnel.teaching_key
    with db.session() as s:
        assert rows == {name: s.scalar(select(func.count()).select_from(model)) for name, model in
                        (("concepts", DiscoveredConcept), ("novelty", NoveltyScore), ("amplification", AmplificationResult),
                         ("teaching", TeachingResult))}


def test_discovered_puzzles_carry_their_concept_and_the_page_shows_the_funnel(discovered):
    stockfish_or_skip()
    tmp, db, (data, _, found, filters), _, _ = discovered
    mined = discovered_puzzles(db, found.run_id, filters, data, budget=TINY, nodes=20_000, workers=1, work=tmp / "work",
                               out=tmp / "demo.pgn")
    members = filter_run(db, found.run_id, teaching_key=filters.funnel.teaching_key, store=False).members
    members = [(name, list(ids)) for name, ids in members]
    assert (mined.concept_ids, mined.selection, mined.survivors) == choose_discovered(members, TINY.mined)
    if not mined.concept_ids:
        assert mined.results == [] and mined.path is None
    else:
        assert [r.kind for r in mined.results] == ["concept"] * len(mined.concept_ids) + ["control-random"]
        with db.session() as s:
            stored = collection_puzzles(s, "demo")
        assert len(stored) == sum(len(r.puzzles) for r in mined.results)
        for p in stored:
            assert p.discovery["concept"] in mined.concept_ids and p.discovery["run"] == found.run_id
            assert p.discovery["role"] == ("concept" if p.kind == "concept" else "random-control")
        if stored:
            assert mined.path == tmp / "demo.pgn" and len(read_pgn_puzzles(mined.path)) == len(stored)
    page = discovery_page(db, found.run_id, tmp / "page")
    assert page.name == "index.html" and (tmp / "page" / f"funnel-run-{found.run_id}-erased.png").exists()
