"""Schut's filters on a real small discovery run: prototypes, student, teaching with both controls, the funnel;
resume; bad input (no student passes the agreement rule, a concept without prototypes, unknown run)."""

from __future__ import annotations

import numpy as np
import pytest

from conceptchess.directions import ConceptDirection
from conceptchess.discoveries import passes_heldout
from conceptchess.discovery import rollout_activations
from conceptchess.discovery_filters import filter_run
from conceptchess.store import connect
from conceptchess.store.discovery import RANDOM_CONTROL, all_concepts, latest_funnel, teaching_of
from conceptchess.teaching import concept_scores
from tests.helpers import LICHESS_GAMES, cli, data_file


@pytest.fixture(scope="module")
def run(maia1100, tmp_path_factory):
    """maia-1100's rollouts from ten roots, block5 mean-pooled activations, self-play, a discovery run (unerased)."""
    d = tmp_path_factory.mktemp("filters")
    net = maia1100
    steps = [
        ("positions", "selfplay", "--net", net, "--games", 16, "--max-plies", 60, "-o", d / "selfplay", "--threads", 1),
        ("positions", "from-pgn", data_file("pgn", LICHESS_GAMES), "-o", d / "roots", "--skip-plies", 14, "--every", 23, "--max-positions", 10),
        ("positions", "rollouts", "--net", net, "--input", d / "roots", "--nodes", 64, "--depth", 4, "--lines-per-ply", 2,
         "--extend-nodes", 8, "-o", d / "rollouts", "--threads", 1),
        ("activations", "extract", "--net", net, "--positions", d / "rollouts", "--taps", "block5", "--pool", "mean", "-o", d / "acts",
         "--threads", 1),
        ("discover", "run", "--net", net, "--rollouts", d / "rollouts", "--activations", d / "acts", "--tap", "block5",
         "--results", d / "results", "--db", d / "cc.sqlite"),
    ]
    for args in steps:
        r = cli(*args)
        assert r.exit_code == 0, (args, r.output)
    return d, net


def _prototype_roots_by_hand(direction, X, meta) -> set:
    """Roots whose optimal position at each root-side ply ≥ 1 outscores every sub-optimal line's at that ply."""
    s = concept_scores(direction, X)
    optimal = {(m["root"], m["ply"]): k for k, m in enumerate(meta) if m["line"] == "optimal"}
    ok: dict = {}
    for k, m in enumerate(meta):
        if m["line"] == "suboptimal" and m["root_to_move"] and m["ply"] >= m["branch_ply"] + 1:
            ok.setdefault(str(m["root"]), []).append(s[optimal[(m["root"], m["ply"])]] > s[k])
    return {r for r, v in ok.items() if v and all(v)}


def test_teach_and_filter(run, maia1900):
    d, net = run
    db = d / "cc.sqlite"
    args = ("discover", "teach", "--run", 1, "--random-positions", d / "selfplay", "--student", maia1900, "--min-prototypes", 3,
            "--max-agreement", 1.0, "--resamples", 200, "--variant", "unerased", "--db", db, "--threads", 1)
    r = cli(*args)
    assert r.exit_code == 0, r.output
    database = connect(str(db))
    X, meta = rollout_activations(d / "acts", "block5", d / "rollouts")
    with database.session() as s:
        cands = [c for c in all_concepts(s) if c.variant == "unerased" and c.vector_path and passes_heldout(c)]
        assert cands
        rows = {c.id: (teaching_of(s, c.id), teaching_of(s, c.id, RANDOM_CONTROL)) for c in cands}
        vectors = {c.id: c.vector_path for c in cands}
    taught = 0
    for cid, (concept, control) in rows.items():
        assert concept is not None and control is not None and concept.key == control.key
        by_hand = _prototype_roots_by_hand(ConceptDirection.load(vectors[cid]), X, meta)
        assert set(concept.prototype_roots) == by_hand and concept.prototypes == len(by_hand)
        for row in (concept, control):
            if row.prototypes < 3:
                assert row.status == "too-few-prototypes" and row.teachable is None and row.difference is None
                continue
            taught += 1
            res = row.result
            assert row.status == "taught" and row.student == maia1900.name and len(res["seeds"]) == 3
            assert row.student_choice["chosen"] == maia1900.name and row.student_choice["max_agreement"] == 1.0
            cc, rc = res["table"]["concept on concept"], res["table"]["random on concept"]
            assert row.difference == pytest.approx(np.mean(cc["per_seed"]) - np.mean(rc["per_seed"]))
            assert row.teachable == (row.difference >= 0.05 and row.interval_low > 0)
            assert row.settings["min_prototypes"] == 3 and row.settings["seeds"] == [0, 1, 2] and row.versions["torch"]
    assert taught >= 1  # the fixture's concept 10 has three prototypes
    assert "top-1 agreement" in r.output
    # the same command again: nothing taught twice
    r = cli(*args)
    assert r.exit_code == 0, r.output
    with database.session() as s:
        assert all(teaching_of(s, cid).id == rows[cid][0].id for cid in rows)
    # the funnel, counted by hand from the rows
    r = cli("discover", "filter", "--run", 1, "--variant", "unerased", "-o", d / "page", "--db", db)
    assert r.exit_code == 0, r.output
    f = filter_run(database, 1, variant="unerased", store=False)
    enough = [cid for cid, (c, _) in rows.items() if c.status in ("taught", "no-student")]
    teachable = [cid for cid in enough if rows[cid][0].teachable]
    assert dict(f.stages)["a student"] == sum(rows[cid][0].status == "taught" for cid in enough) == len(enough)  # max agreement 1
    assert dict(f.stages)["candidates"] == len(cands) and dict(f.stages)["enough prototypes"] == len(enough)
    assert dict(f.stages)["teachable"] == len(teachable) and dict(f.stages)["novel"] == 0  # novelty was not scored
    assert dict(f.controls)["random vectors"] == len(cands)
    assert [n for _, n in f.stages] == sorted((n for _, n in f.stages), reverse=True)
    with database.session() as s:
        stored = latest_funnel(s, 1, "unerased")
        assert stored is not None and [tuple(x) for x in stored.stages] == list(f.stages)
    page = (d / "page" / "index.html").read_text()
    assert "funnel-run-1-unerased.png" in page and (d / "page" / "funnel-run-1-unerased.png").stat().st_size > 5000
    assert "Schut" in r.output and "2.4%" in r.output  # Schut et al.'s teachability share beside the counts


def _rows(db) -> tuple[int, int]:
    from sqlalchemy import func, select

    from conceptchess.store.discovery import DiscoveryFunnel, TeachingResult

    with connect(str(db)).session() as s:
        return (s.execute(select(func.count()).select_from(TeachingResult)).scalar_one(),
                s.execute(select(func.count()).select_from(DiscoveryFunnel)).scalar_one())


def test_bad_input(run, maia1900, tmp_path):
    d, net = run
    db = d / "cc.sqlite"
    before = _rows(db)
    base = ("discover", "teach", "--run", 1, "--random-positions", d / "selfplay", "--student", maia1900, "--variant", "unerased",
            "--db", db, "--threads", 1)
    r = cli(*base, "--min-prototypes", 3, "--max-agreement", 0.0001)
    errors = [line for line in r.output.splitlines() if line.startswith("error:")]
    assert r.exit_code == 2 and len(errors) == 1 and "below 0.0001" in errors[0] and f"{maia1900.name} 0." in errors[0], r.output
    r = cli(*base, "--concept", 2)
    assert r.exit_code == 2 and "concept 2 has no prototypes" in r.output.splitlines()[-1], r.output
    r = cli(*base, "--concept", 999)
    assert r.exit_code == 2 and "no concept 999" in r.output, r.output
    r = cli("discover", "teach", "--run", 9, "--random-positions", d / "selfplay", "--db", db)
    assert r.exit_code == 2 and "no discovery run 9" in r.output
    r = cli(*base, "--seeds", "0,1")
    assert r.exit_code == 2 and "--seeds" in r.output, r.output
    r = cli("discover", "filter", "--run", 9, "--db", db)
    assert r.exit_code == 2 and "no discovery run 9" in r.output, r.output
    assert _rows(db) == before
