"""Probe sweeps end to end on tiny networks: database rows with controls, resume after kill -9, bad input, the atlas.

Everything here is generated (small random-init lc0 networks, random legal games), so it runs without
the shared data; activations are mean-pooled to keep it fast.
"""

from __future__ import annotations

import html
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import chess
import numpy as np
import pytest
import torch
from sqlalchemy import create_engine, func, select, text

from tests.helpers import ROOT, cli, random_games, random_move_lists, stockfish_or_skip, tiny_net

CONCEPTS = "in_check,us_mobility,material_diff,game_phase"
TARGETS = 6  # game_phase is probed one-vs-rest: 3 targets


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("probe")
    series = root / "series"
    series.mkdir()
    for i, step in enumerate((0, 10, 200)):
        tiny_net(series / f"tiny-step{step:06d}.pb.gz", seed=i, step=step)
    mixed = root / "mixed"
    mixed.mkdir()
    tiny_net(mixed / "a.pb.gz", 0)
    tiny_net(mixed / "b.pb.gz", 1, blocks=3)
    return {"root": root, "series": series, "mixed": mixed, "single": tiny_net(root / "single.pb.gz", 7),
            "data": random_games(root / "positions", games=36, plies=40)}


def rows(db: Path, where: str = "1=1") -> list:
    eng = create_engine(f"sqlite:///{db}")
    with eng.connect() as c:
        return c.execute(text(f"SELECT run_id, network_id, tap, concept, score, control_input, control_random, control_shuffled, "
                              f"selectivity, vector_path, status, id FROM probe_results WHERE {where}")).all()


def base_args(world, tmp: Path, *extra: str) -> list[str]:
    return ["run", "--positions", str(world["data"]), "--concepts", CONCEPTS, "--pool", "mean", "--bootstrap", "200",
            "--db", f"sqlite:///{tmp / 'probes.sqlite'}", "--results", str(tmp / "results"), *extra]


# -- a series sweep -----------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def series_run(world, tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("series_run")
    r = cli("probe", *base_args(world, tmp, "--net", str(world["series"])))
    assert r.exit_code == 0, r.output
    return tmp


def test_series_sweep_rows_carry_their_controls(series_run):
    db = series_run / "probes.sqlite"
    got = rows(db)
    assert len(got) == 3 * 3 * TARGETS  # 3 checkpoints × (input, block0, block1) × targets
    assert len({(r.network_id, r.tap, r.concept) for r in got}) == len(got)
    ok = [r for r in got if r.status in ("ok", "no-fit")]  # no-fit: all-zero weights, scored like any probe
    assert ok and all(r.control_shuffled is not None and abs(r.selectivity - (r.score - r.control_shuffled)) < 1e-9 for r in ok)
    eng = create_engine(f"sqlite:///{db}")
    with eng.connect() as c:
        nets = dict(c.execute(text("SELECT n.step, n.id FROM networks n JOIN probe_run_networks p ON p.network_id = n.id")).all())
        assert sorted(nets) == [0, 10, 200]
        roles = set(c.execute(text("SELECT role FROM probe_run_networks")).scalars())
        assert roles == {"probed"}  # the step-0 checkpoint is the random-init control
    score = {(r.network_id, r.tap, r.concept): r.score for r in ok}
    for r in ok:
        assert r.control_input == pytest.approx(score[(r.network_id, "input", r.concept)])
        if r.tap != "input" and r.network_id != nets[0]:
            assert r.control_random == pytest.approx(score[(nets[0], r.tap, r.concept)])
        v = np.load(r.vector_path)
        assert v.shape == ((112,) if r.tap == "input" else (8,))


def test_show_prints_a_table(series_run):
    r = cli("probe", "show", "--concept", "in_check", "--db", f"sqlite:///{series_run / 'probes.sqlite'}")
    assert r.exit_code == 0, r.output
    assert "in_check" in r.output and "block1" in r.output and "tiny step 200" in r.output


def test_plot_writes_the_atlas(series_run, tmp_path):
    out = tmp_path / "atlas"
    r = cli("probe", "plot", "1", "-o", str(out), "--db", f"sqlite:///{series_run / 'probes.sqlite'}")
    assert r.exit_code == 0, r.output
    pngs = sorted(p.name for p in out.glob("*.png"))
    assert "concept-in_check.png" in pngs and "concept-game_phase=opening.png" in pngs
    assert len([p for p in pngs if p.startswith("network-")]) == 3
    page = (out / "index.html").read_text()
    for c in ("in_check", "us_mobility", "material_diff", "game_phase=middlegame"):
        assert f">{c}</a>" in page
    assert "sortTable" in page and not list(out.glob(".*.part"))
    assert (out / "concept-in_check.png").read_bytes()[:4] == b"\x89PNG"


def test_atlas_has_a_when_figure_per_concept_with_each_checkpoints_best_block_score(series_run, tmp_path):
    from conceptchess.plots import BEST_LABEL, when_figure
    from conceptchess.probing.results import load_run, when_curves
    from conceptchess.store import Database

    url = f"sqlite:///{series_run / 'probes.sqlite'}"
    out = tmp_path / "atlas"
    r = cli("probe", "plot", "1", "-o", str(out), "--db", url)
    assert r.exit_code == 0, r.output
    view = load_run(Database(url), 1)
    page = (out / "index.html").read_text()
    for c in view.concepts:
        assert (out / f"when-{c}.png").read_bytes()[:4] == b"\x89PNG"
        assert f"<a href='when-{c}.png'>when</a>" in next(line for line in page.splitlines() if f">{c}</a>" in line)
    assert "No when figures" not in page
    # Per concept and checkpoint, from the stored rows: the best block score and the shuffled control's best block score.
    with create_engine(f"sqlite:///{series_run / 'probes.sqlite'}").connect() as c:
        stored = c.execute(text("SELECT n.step, r.tap, r.concept, r.score, r.control_shuffled FROM probe_results r "
                                "JOIN networks n ON n.id = r.network_id WHERE r.run_id = 1")).all()
    best, shuffled, inputs = {}, {}, {}
    for step, tap, concept, score, shuf in stored:
        if tap == "input" and score is not None:
            inputs[concept] = score
        if tap.startswith("block") and score is not None:
            best[(concept, step)] = max(best.get((concept, step), -np.inf), score)
        if tap.startswith("block") and shuf is not None:
            shuffled[(concept, step)] = max(shuffled.get((concept, step), -np.inf), shuf)
    curves, why = when_curves(view)
    assert why is None and [w.concept for w in curves] == view.concepts
    for curve in curves:
        ax = when_figure(curve).axes[0]
        lines = {ln.get_label(): ln for ln in ax.get_lines()}
        steps = [s for s in (0, 10, 200) if (curve.concept, s) in best]  # none: the concept was skipped (no endgames here)
        np.testing.assert_array_equal(lines[BEST_LABEL].get_xdata(), steps)
        np.testing.assert_allclose(lines[BEST_LABEL].get_ydata(), [best[(curve.concept, s)] for s in steps])
        if not steps:
            assert curve.concept == "game_phase=endgame" and set(lines) == {BEST_LABEL}
            continue
        np.testing.assert_allclose(lines["control: shuffled labels (best block)"].get_ydata(),
                                   [shuffled.get((curve.concept, s), np.nan) for s in (0, 10, 200)])
        # the series' step 0 is its random-init control; the input-plane probe is one line
        np.testing.assert_allclose(lines["control: tiny step 0 (best block)"].get_ydata(), best[(curve.concept, 0)])
        np.testing.assert_allclose(lines["control: input planes"].get_ydata(), inputs[curve.concept])
        assert ax.get_xscale() == "symlog" and ax.get_xlim()[0] < 0  # step 0 is drawn, left of step 10


def test_a_run_of_networks_without_training_steps_has_no_when_figure_and_its_index_says_why(world, tmp_path):
    r = cli("probe", *base_args(world, tmp_path, "--net", str(world["single"]), "--taps", "block1"))
    assert r.exit_code == 0, r.output
    r = cli("probe", "plot", "1", "-o", str(tmp_path / "atlas"), "--db", f"sqlite:///{tmp_path / 'probes.sqlite'}")
    assert r.exit_code == 0, r.output
    assert list((tmp_path / "atlas").glob("concept-*.png")) and not list((tmp_path / "atlas").glob("when-*.png"))
    page = html.unescape((tmp_path / "atlas" / "index.html").read_text())
    assert ("<p><b>No when figures</b>: the run's networks are not a checkpoint series: no training step is recorded for single.</p>"
            in page) and ">when</a>" not in page


def test_rerun_is_a_no_op(world, series_run):
    before = rows(series_run / "probes.sqlite")
    r = cli("probe", *base_args(world, series_run, "--net", str(world["series"])))
    assert r.exit_code == 0, r.output
    assert sorted(before) == sorted(rows(series_run / "probes.sqlite"))


def test_worker_processes_give_the_rows_of_a_single_process_sweep(world, tmp_path):
    # Workers run one torch thread each (2 cores here); the in-process sweep gets the same, since the
    # order of floating-point sums depends on the thread count.
    threads = torch.get_num_threads()
    torch.set_num_threads(max(1, len(os.sched_getaffinity(0)) // 2))
    try:
        r = cli("probe", *base_args(world, tmp_path / "one", "--net", str(world["series"]), "--jobs", "1"))
    finally:
        torch.set_num_threads(threads)
    assert r.exit_code == 0, r.output
    r = cli("probe", *base_args(world, tmp_path / "two", "--net", str(world["series"]), "--jobs", "2"))
    assert r.exit_code == 0, r.output
    key = lambda x: (x.network_id, x.tap, x.concept)  # noqa: E731
    one = {key(x): x for x in rows(tmp_path / "one" / "probes.sqlite")}
    two = {key(x): x for x in rows(tmp_path / "two" / "probes.sqlite")}
    with create_engine(f"sqlite:///{tmp_path / 'two' / 'probes.sqlite'}").connect() as c:
        versions = json.loads(c.execute(text("SELECT versions FROM probe_runs")).scalar_one())
    assert versions["cell_workers"] == 2  # the second sweep really ran in worker processes
    assert sorted(one) == sorted(two)
    for k, x in two.items():
        assert x.status == one[k].status
        for f in ("score", "control_input", "control_random", "control_shuffled"):
            a, b = getattr(x, f), getattr(one[k], f)
            assert (a is None and b is None) or a == pytest.approx(b, abs=1e-9), (k, f, a, b)


ROW_NUMBERS = ("score", "ci_low", "ci_high", "control_input", "control_random", "control_shuffled", "selectivity", "nonzero", "features",
               "alpha", "intercept", "n_train", "n_val", "n_test")


def stored(db_url: str) -> dict:
    """Every result row of a database by (network sha256, tap, concept): its numbers, status, details and probe vector."""
    from conceptchess.store import Database
    from conceptchess.store.models import NetworkRow
    from conceptchess.store.probes import ProbeResult

    with Database(db_url).session() as s:
        got = s.execute(select(ProbeResult, NetworkRow.sha256).join(NetworkRow, NetworkRow.id == ProbeResult.network_id)).all()
        return {(sha, r.tap, r.concept): ({f: getattr(r, f) for f in ROW_NUMBERS}, r.status, r.details,
                                          None if r.vector_path is None else np.load(r.vector_path)) for r, sha in got}


def test_inline_and_process_executors_give_identical_rows(world, tmp_path):
    from conceptchess.probing import ProbeSettings, SweepRequest, plan_sweep, run_sweep

    def sweep(name: str, executor: str) -> tuple[dict, dict]:
        req = SweepRequest(dataset=world["data"], nets=[world["series"]], concepts=CONCEPTS, pool="mean", results=tmp_path / name / "results",
                           settings=ProbeSettings(n_boot=200), jobs=2, executor=executor)
        url = f"sqlite:///{tmp_path / name / 'probes.sqlite'}"
        run_sweep(plan_sweep(req), db_url=url)
        with create_engine(url).connect() as c:
            versions = json.loads(c.execute(text("SELECT versions FROM probe_runs")).scalar_one())
        return stored(url), versions

    # Two workers of cores // 2 torch threads each; the inline sweep gets as many threads (the order of
    # floating-point sums depends on the thread count).
    threads = torch.get_num_threads()
    torch.set_num_threads(max(1, len(os.sched_getaffinity(0)) // 2))
    try:
        inline, v_inline = sweep("inline", "inline")
    finally:
        torch.set_num_threads(threads)
    process, v_process = sweep("process", "process")
    assert (v_inline["cell_workers"], v_process["cell_workers"]) == (1, 2)  # each really ran where it was asked to
    assert len(inline) == 3 * 3 * TARGETS and sorted(inline) == sorted(process)
    for k, (numbers, status, details, vector) in inline.items():
        p_numbers, p_status, p_details, p_vector = process[k]
        assert (status, details.keys() if details else None) == (p_status, p_details.keys() if p_details else None), k
        for f, a in numbers.items():
            b = p_numbers[f]
            assert (a is None and b is None) or abs(a - b) <= 1e-9, (k, f, a, b)
        for f, a in (details or {}).items():
            assert abs(a - p_details[f]) <= 1e-9, (k, f)
        assert (vector is None and p_vector is None) or np.abs(vector - p_vector).max() <= 1e-9, k


def test_an_unknown_executor_is_refused_before_anything_is_written(world, tmp_path):
    from conceptchess.errors import ConceptChessError
    from conceptchess.probing import SweepRequest, plan_sweep

    with pytest.raises(ConceptChessError, match="unknown executor 'dask'; use inline or process or ray"):
        plan_sweep(SweepRequest(dataset=world["data"], nets=[world["single"]], concepts="in_check", results=tmp_path / "r", executor="dask"))
    assert not (tmp_path / "r").exists()


def test_sweep_workers_resolves_auto_and_refuses_zero():
    from conceptchess.errors import ConceptChessError
    from conceptchess.probing.sweep import PARALLEL_MIN_POSITIONS, sweep_workers

    assert sweep_workers(None, 50, PARALLEL_MIN_POSITIONS - 1)[0] == 1  # a small sweep stays in this process
    assert sweep_workers(3, 2, 10**6)[0] == 2  # never more workers than cells
    jobs, threads = sweep_workers(None, 50, 10**6)
    cores = len(os.sched_getaffinity(0))
    assert jobs == min(cores, 4) and threads == max(1, cores // jobs)
    with pytest.raises(ConceptChessError, match="at least 1"):
        sweep_workers(0, 5, 10**6)


# -- a single network: a generated random-init control ---------------------------------------------------
def test_single_network_gets_a_generated_random_init_control(world, tmp_path):
    r = cli("probe", *base_args(world, tmp_path, "--net", str(world["single"]), "--taps", "block1", "--seed", "3"))
    assert r.exit_code == 0, r.output
    eng = create_engine(f"sqlite:///{tmp_path / 'probes.sqlite'}")
    with eng.connect() as c:
        roles = dict(c.execute(text("SELECT role, network_id FROM probe_run_networks")).all())
        assert set(roles) == {"probed", "random-init"}
    assert list((tmp_path / "results" / "networks").glob("random-init-2x8-*-seed3.pb.gz"))
    got = rows(tmp_path / "probes.sqlite", f"network_id = {roles['probed']} AND tap = 'block1' AND status = 'ok'")
    ctrl = {r.concept: r.score for r in rows(tmp_path / "probes.sqlite", f"network_id = {roles['random-init']} AND tap = 'block1'")}
    assert got and all(r.control_random == pytest.approx(ctrl[r.concept]) for r in got)


def test_no_controls(world, tmp_path):
    r = cli("probe", *base_args(world, tmp_path, "--net", str(world["single"]), "--taps", "block0", "--no-controls"))
    assert r.exit_code == 0, r.output
    got = rows(tmp_path / "probes.sqlite")
    assert len(got) == TARGETS and {r.tap for r in got} == {"block0"}
    assert all(r.control_input is None and r.control_random is None and r.control_shuffled is None and r.selectivity is None for r in got)


# -- per-concept pooling ------------------------------------------------------------------------------------
def test_concepts_of_two_poolings_in_one_run_give_the_rows_of_two_single_pooling_runs(world, tmp_path):
    from conceptchess.probing import ProbeSettings, SweepRequest, plan_sweep, run_sweep
    from conceptchess.probing.results import load_run
    from conceptchess.probing.sources import net_info
    from conceptchess.store import Database
    from conceptchess.store.directions import probe_direction

    def sweep(name: str, concepts: str, pool: str, pools: dict | None = None, controls: bool = False) -> tuple[Path, int]:
        db = tmp_path / f"{name}.sqlite"
        plan = plan_sweep(SweepRequest(dataset=world["data"], nets=[world["single"]], concepts=concepts, taps="block1", seed=3, pool=pool,
                                       pools=pools or {}, max_positions=500, controls=controls, results=tmp_path / name, settings=ProbeSettings(n_boot=200),
                                       keep_activations=False))
        return db, run_sweep(plan, db_url=f"sqlite:///{db}")

    # Without controls: the 7,168 features of the full input planes make a slow cell (~20 s here); the writer
    # keeps controls per concept, whatever its pooling.
    both, run = sweep("both", CONCEPTS, "mean", {"us_mobility": "full", "game_phase=opening": "full"})
    full, _ = sweep("full", "us_mobility,game_phase=opening", "full")
    mean, _ = sweep("mean", "in_check,material_diff,game_phase=middlegame,game_phase=endgame", "mean")
    columns = lambda r: (r.tap, r.concept, r.score, r.control_shuffled, r.selectivity, r.status)  # noqa: E731
    got = sorted(map(columns, rows(both)), key=str)
    assert got == sorted(map(columns, rows(full) + rows(mean)), key=str)
    assert len(got) == TARGETS
    assert {r.concept for r in rows(full) if r.score is not None and r.tap == "block1"} == {"us_mobility", "game_phase=opening"}
    shapes = {(r.tap, r.concept): np.load(r.vector_path).shape for r in rows(both) if r.vector_path}
    for (tap, concept), shape in shapes.items():
        channels = 112 if tap == "input" else 8
        assert shape == ((channels, 8, 8) if concept in ("us_mobility", "game_phase=opening") else (channels,)), (tap, concept)
    view = load_run(Database(f"sqlite:///{both}"), run)
    assert view.settings["pool"] == "mean" and view.settings["pools"] == {"us_mobility": "full", "game_phase=opening": "full"}
    assert [view.pool(c) for c in ("in_check", "us_mobility", "game_phase=opening")] == ["mean", "full", "full"]
    assert not list((tmp_path / "both" / "activations").iterdir())  # both poolings' folders removed once probed
    with Database(f"sqlite:///{both}").session() as s:
        ok = [r for r in rows(both) if r.status == "ok" and r.tap == "block1"]
        sha = net_info(world["single"]).sha256
        pooling = {r.concept: probe_direction(s, run, r.concept, "block1", network=sha).pooling for r in ok if r.network_id == ok[0].network_id}
    assert {"us_mobility", "material_diff"} <= set(pooling)
    assert all(p == ("full" if c in ("us_mobility", "game_phase=opening") else "mean") for c, p in pooling.items())


@pytest.mark.parametrize("pools, message", [({"in_check": "8x8"}, "pool must be full or mean, not '8x8'"),
                                            ({"us_has_mate_in_1": "full"}, "pools names 'us_has_mate_in_1', not among the concepts probed")])
def test_bad_pools_are_refused(world, tmp_path, pools, message):
    from conceptchess.errors import ConceptChessError
    from conceptchess.probing import SweepRequest, plan_sweep

    with pytest.raises(ConceptChessError, match=re.escape(message)):
        plan_sweep(SweepRequest(dataset=world["data"], nets=[world["single"]], concepts=CONCEPTS, pools=pools, results=tmp_path / "r"))
    assert not (tmp_path / "r").exists()


# -- a known sparse function of real activations, through the whole chain (labels table) ---------------------
def test_sweep_recovers_a_sparse_function_of_the_activations(world, tmp_path):
    from conceptchess.activations import extract_activations

    store = extract_activations(world["single"], world["data"], tmp_path / "acts", ["block1"], pool="mean")
    a = np.asarray(store["block1"], dtype=np.float64)
    y = 3.0 * a[:, 2] - 2.0 * a[:, 5] + 0.5
    labels = tmp_path / "labels.csv"
    labels.write_text("id,synthetic\n" + "".join(f"{i},{v:.17g}\n" for i, v in zip(store.ids, y)))
    r = cli("probe", "run", "--positions", str(world["data"]), "--net", str(world["single"]), "--labels", str(labels), "--taps", "block1",
            "--pool", "mean", "--no-controls", "--db", f"sqlite:///{tmp_path / 'p.sqlite'}", "--results", str(tmp_path / "res"),
            "--store", str(tmp_path))
    assert r.exit_code == 0, r.output
    assert not (tmp_path / "res" / "activations").exists()  # read from the given store, nothing extracted
    (row,) = rows(tmp_path / "p.sqlite")
    assert row.concept == "synthetic" and row.score > 0.999
    v = np.load(row.vector_path)
    assert sorted(np.flatnonzero(np.abs(v) > 0.05 * np.abs(v).max()).tolist()) == [2, 5]
    np.testing.assert_allclose(v[[2, 5]], [3.0, -2.0], rtol=0.02)


# -- bad input: one line, exit 2, nothing written ----------------------------------------------------------------
@pytest.mark.parametrize("change, message", [
    ({"--concepts": "in_check,no_such_concept"}, "unknown concept 'no_such_concept'"),
    # every misspelt name at once, each with the closest known names
    ({"--concepts": "in_chek,us_mobility,matrial_diff"},
     "unknown concepts 'in_chek' (did you mean in_check?), 'matrial_diff' (did you mean material_diff"),
    ({"--concepts": "game_phase=late"}, "no category 'late'"),
    ({"--taps": "block0,block7"}, "tap 'block7' is not in network"),
    ({"--net": "MIXED"}, "mixed architectures"),
    ({"--net": "/nonexistent/net.pb.gz"}, "no such network"),
    ({"--positions": "/nonexistent/positions"}, "no such positions dataset"),
    ({"--labels": "LABELS"}, "no labels for concept 'in_check'"),
    ({"--pool": "max"}, "pool must be full or mean"),
])
def test_bad_input_is_refused_before_anything_is_written(world, tmp_path, change, message):
    labels = tmp_path / "labels.csv"
    ids = [json.loads(line)["id"] for line in (world["data"] / "positions.jsonl").read_text().splitlines()]
    labels.write_text("id,other\n" + "".join(f"{i},1\n" for i in ids))
    args = dict(zip(["--positions", "--net", "--concepts", "--taps", "--pool"],
                    [str(world["data"]), str(world["single"]), "in_check", "input,block0", "mean"]))
    args.update({k: {"MIXED": str(world["mixed"]), "LABELS": str(labels)}.get(v, v) for k, v in change.items()})
    db = tmp_path / "db" / "probes.sqlite"
    r = cli("probe", "run", *[x for kv in args.items() for x in kv], "--db", f"sqlite:///{db}", "--results", str(tmp_path / "results"))
    assert r.exit_code == 2, r.output
    err = r.stderr if hasattr(r, "stderr") else r.output
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], err
    assert not db.parent.exists() and not (tmp_path / "results").exists()


def test_reading_commands_refuse_missing_things(series_run, tmp_path):
    r = cli("probe", "show", "--concept", "no_such", "--db", f"sqlite:///{series_run / 'probes.sqlite'}")
    assert r.exit_code == 2 and "no probe results for concept 'no_such'" in r.output
    r = cli("probe", "plot", "99", "-o", str(tmp_path / "x"), "--db", f"sqlite:///{series_run / 'probes.sqlite'}")
    assert r.exit_code == 2 and "no probe run 99" in r.output
    r = cli("probe", "show", "--concept", "in_check", "--db", f"sqlite:///{tmp_path / 'none.sqlite'}")
    assert r.exit_code == 2 and not (tmp_path / "none.sqlite").exists()


# -- the database ---------------------------------------------------------------------------------------------
def test_unique_constraint_refuses_a_duplicate_result(series_run):
    from sqlalchemy.exc import IntegrityError

    from conceptchess.store import Database
    from conceptchess.store.probes import ProbeResult

    db = Database(f"sqlite:///{series_run / 'probes.sqlite'}")
    with db.session() as s:
        r = s.execute(select(ProbeResult).limit(1)).scalar_one()
        dup = ProbeResult(run_id=r.run_id, network_id=r.network_id, tap=r.tap, concept=r.concept, metric=r.metric, status="ok")
    with pytest.raises(IntegrityError):
        with db.begin() as s:
            s.add(dup)
    with db.session() as s:
        assert s.execute(select(func.count()).select_from(ProbeResult)).scalar() == 3 * 3 * TARGETS


# -- kill -9 mid-sweep, then resume -------------------------------------------------------------------------------
SLOW_DRIVER = """
import sys, time
import conceptchess.probing.writer as writer
real = writer._save_vector
def slow(*a, **k):
    time.sleep(0.1)  # while a finished cell is being written (in this process, with or without workers)
    return real(*a, **k)
writer._save_vector = slow
from conceptchess.cli.main import app
app(["probe", *sys.argv[1:]], prog_name="conceptchess")
"""


def _children(pid: int) -> list[int]:
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:  # the field after the state is the parent's pid
            out.append(int(stat.parent.name))
    return out


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    return "State:\tZ" not in state  # a zombie has exited (only its parent's wait is missing)


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_kill_9_mid_sweep_keeps_finished_cells_and_resume_completes_without_duplicates(world, tmp_path, jobs):
    args = base_args(world, tmp_path, "--net", str(world["series"]), "--jobs", jobs)
    db = tmp_path / "probes.sqlite"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    # a real process (slowed down by SLOW_DRIVER), since the point is to SIGKILL it mid-sweep
    proc = subprocess.Popen([sys.executable, "-c", SLOW_DRIVER, *args], cwd=tmp_path, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + 90
    partial, workers = [], []
    try:
        while time.time() < deadline and proc.poll() is None:
            if db.exists():
                try:
                    partial = rows(db)
                except Exception:  # noqa: BLE001 - tables not migrated yet
                    partial = []
                if len(partial) >= 2 * TARGETS * 3:  # the input cell (3 networks) and at least one more
                    break
            time.sleep(0.05)
        assert proc.poll() is None, f"the sweep ended before it could be killed: {proc.stderr.read().decode()[-500:]}"
        workers = _children(proc.pid)
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
    if jobs == "2":
        assert workers, "the sweep was expected to run worker processes"
        deadline = time.time() + 20
        while time.time() < deadline and any(_alive(p) for p in workers):
            time.sleep(0.1)
        assert not any(_alive(p) for p in workers), "worker processes outlived the killed sweep"
    partial = rows(db)
    total = 3 * 3 * TARGETS
    assert 0 < len(partial) < total
    r = cli("probe", *args)
    assert r.exit_code == 0, r.output
    final = rows(db)
    assert len(final) == total
    assert len({(x.run_id, x.network_id, x.tap, x.concept) for x in final}) == total
    assert {x.run_id for x in final} == {partial[0].run_id}  # the same run was completed
    by_id = {x.id: x for x in final}
    assert all(by_id[x.id] == x for x in partial)  # finished cells were kept as they were


# -- what a user meets: the labels behind each row, 80 columns, the mining hand-off, progress, activations' size -----
def _boards_and_games(games: int = 36, plies: int = 40) -> tuple[list[chess.Board], list[int]]:
    """The positions of ``world["data"]`` (random_games: every position of each game, the start included)."""
    boards, game = [], []
    for g, moves in enumerate(random_move_lists(games, plies)):
        b = chess.Board()
        boards.append(b.copy(stack=False))
        game.append(g)
        for m in moves:
            b.push(m)
            boards.append(b.copy(stack=False))
            game.append(g)
    return boards, game


def test_every_row_stores_the_labels_of_its_training_and_test_games(series_run):
    from conceptchess.concepts.labeling import label
    from conceptchess.probing.split import game_codes, split_by_game

    boards, games = _boards_and_games()
    split = split_by_game(game_codes(games), seed=0)
    check = np.array([b.is_check() for b in boards])  # a chess fact, not the library's label
    mobility = label(boards, ["us_mobility"])["us_mobility"].astype(np.float64)
    got = stored(f"sqlite:///{series_run / 'probes.sqlite'}")
    for (_, tap, concept), (_, _, details, _) in got.items():
        if concept == "in_check":
            for side, rows_ in (("train", split.train), ("val", split.val), ("test", split.test)):
                assert details[f"{side}_positives"] == int(check[rows_].sum()), (tap, side)
                assert details[f"{side}_negatives"] == int((~check[rows_]).sum()), (tap, side)
        elif concept == "us_mobility":
            for side, rows_ in (("train", split.train), ("test", split.test)):
                assert details[f"{side}_variance"] == pytest.approx(mobility[rows_].var(), rel=1e-9)
        assert not any(k.endswith("_variance") for k in details) or not any(k.endswith("_positives") for k in details)


def test_show_never_cuts_a_number_at_80_columns_and_flags_too_few_positives(series_run):
    from conceptchess.probing.results import MIN_TEST_CLASS

    db = series_run / "probes.sqlite"
    r = cli("probe", "show", "--concept", "in_check", "--run", "1", "--db", f"sqlite:///{db}", env={"COLUMNS": "80"})
    assert r.exit_code == 0, r.output
    assert "…" not in r.stdout
    table = [ln for ln in r.stdout.splitlines() if not ln.startswith("  conceptchess ")]  # commands are for copying whole
    assert max(len(ln) for ln in table) <= 80
    got = [x for x in rows(db, "concept = 'in_check'")]
    details = next(d for (_, _, c), (_, _, d, _) in stored(f"sqlite:///{db}").items() if c == "in_check")
    for x in got:
        assert f"{x.score:.3f}" in r.stdout and f"{x.control_shuffled:.3f}" in r.stdout
    train = f"{details['train_positives']}+/{details['train_negatives']}−"
    test = f"{details['test_positives']}+/{details['test_negatives']}−"
    assert r.stdout.count(train) == r.stdout.count(test) == len(got)  # on every row
    few = details["test_positives"] < MIN_TEST_CLASS
    assert few, "the fixture's in_check is expected to be rare in the test games"
    assert r.stdout.count("too few positives") >= len(got) + 1  # every row, and the note that says why
    assert f"too few positives: {details['test_positives']} positive positions in the test games" in r.stdout
    r = cli("probe", "show", "--concept", "game_phase=opening", "--db", f"sqlite:///{db}", env={"COLUMNS": "80"})
    assert r.exit_code == 0 and "too few" not in r.stdout and "…" not in r.stdout


def _mining_commands(output: str) -> list[list[str]]:
    import shlex

    return [shlex.split(ln.strip())[1:] for ln in output.splitlines() if ln.startswith("  conceptchess ")]


def test_show_prints_the_command_that_mines_its_best_probe(series_run, tmp_path):
    from conceptchess.activations import ActivationFiles
    from conceptchess.datasets import dataset_sha256
    from conceptchess.store import Database
    from conceptchess.store.directions import ProbeRef, probe_direction

    url = f"sqlite:///{series_run / 'probes.sqlite'}"
    r = cli("probe", "show", "--concept", "game_phase=opening", "--db", url)
    assert r.exit_code == 0, r.output
    (mine,) = _mining_commands(r.output)
    assert mine[:2] == ["puzzles", "mine"] and "--mean" not in mine and "--scale" not in mine
    opt = dict(zip(mine[2::2], mine[3::2]))
    assert opt["--db"] == url and opt["-c"] == "game_phase=opening"
    # the best fitted probe at a block tap of the run (computed from the rows, not from the hand-off)
    with create_engine(url).connect() as c:
        best = c.execute(text("SELECT r.tap, n.sha256, r.vector_path FROM probe_results r JOIN networks n ON n.id = r.network_id "
                              "WHERE r.concept = 'game_phase=opening' AND r.status = 'ok' AND r.tap LIKE 'block%' "
                              "ORDER BY r.score DESC LIMIT 1")).one()
    ref = ProbeRef.parse(opt["--direction"])
    assert (ref.run, ref.concept, ref.tap) == ("1", "game_phase=opening", best.tap)
    files = ActivationFiles(opt["--activations"])
    assert files.manifest["net_sha256"] == best.sha256 and best.tap in files.taps and files.pool == "mean"
    assert files.manifest["dataset_sha256"] == dataset_sha256(opt["--dataset"])
    with Database(url).session() as s:  # what puzzles mine does with --direction and the folder's network
        d = probe_direction(s, ref.run, ref.concept, ref.tap, network=files.manifest["net_sha256"])
    np.testing.assert_array_equal(d.vector, np.load(best.vector_path))
    assert np.asarray(files[best.tap][:2], dtype=np.float32).reshape(2, -1).shape[1] == d.vector.size
    stockfish_or_skip()
    r = cli(*mine, "--nodes", "2000", "--workers", "1")  # the printed command runs as printed (Stockfish kept brief)
    assert r.exit_code == 0, r.output
    assert "game_phase=opening-probe-" + best.tap in r.stdout and "prototypes" in r.stdout


def test_show_says_how_to_extract_the_activations_when_they_are_gone(world, tmp_path):
    r = cli("probe", *base_args(world, tmp_path, "--net", str(world["single"]), "--taps", "block1", "--no-keep-activations"))
    assert r.exit_code == 0, r.output
    assert not list((tmp_path / "results" / "activations").glob("*"))  # removed once probed
    r = cli("probe", "show", "--concept", "game_phase=opening", "--db", f"sqlite:///{tmp_path / 'probes.sqlite'}")
    assert r.exit_code == 0, r.output
    extract, mine = _mining_commands(r.output)
    assert extract[:2] == ["activations", "extract"]
    e = dict(zip(extract[2::2], extract[3::2]))
    m = dict(zip(mine[2::2], mine[3::2]))
    assert (e["--net"], e["--taps"], e["--pool"]) == (str(world["single"].resolve()), "block1", "mean")
    assert e["-o"] == m["--activations"] and e["--positions"] == m["--dataset"] and m["--direction"] == "1:game_phase=opening:block1"
    r = cli(*extract)  # the printed command, as printed
    assert r.exit_code == 0, r.output
    r = cli("probe", "show", "--concept", "game_phase=opening", "--db", f"sqlite:///{tmp_path / 'probes.sqlite'}")
    assert [c[:2] for c in _mining_commands(r.output)] == [["puzzles", "mine"]]  # the folder is found now
    assert dict(zip(*[iter(_mining_commands(r.output)[0][2:])] * 2))["--activations"] == e["-o"]


def test_run_says_the_size_of_its_activations_and_prints_progress_lines(world, tmp_path):
    from conceptchess.activations import extract_activations, size_text

    given = tmp_path / "given"  # a folder the user extracted: never removed, whatever --no-keep-activations says
    extract_activations(world["single"], world["data"], given / "single-block0", ["block0"], pool="mean")
    r = cli("probe", *base_args(world, tmp_path, "--net", str(world["single"]), "--taps", "input,block0,block1", "--activations", str(given),
                                "--no-keep-activations"))
    assert r.exit_code == 0, r.output
    n = len((world["data"] / "positions.jsonl").read_text().splitlines())
    # input (112 planes) and block1 (8 filters) of the network, block0 and block1 of its random-init control; block0 is there
    want = n * (112 + 8 + 8 + 8) * 2
    line = next(ln for ln in r.stderr.splitlines() if ln.startswith("extracting 4 taps of 2 networks"))
    assert line == (f"extracting 4 taps of 2 networks over {n:,} positions (mean-pooled, float16): ≈ {size_text(want)} in "
                    f"{tmp_path / 'results' / 'activations'}, removed once probed")
    assert (given / "single-block0" / "manifest.json").exists() and not list((tmp_path / "results" / "activations").glob("*"))
    # CliRunner's output is no terminal: each stage prints a line when it starts and when it ends
    lines = r.stderr.splitlines()
    probing = [ln for ln in lines if ln.startswith("probing: ")]
    assert probing[0].startswith("probing: 0/5 (0%), ") and probing[-1].startswith("probing: 5/5 (100%), ")
    assert all(re.search(r"\d+:\d\d:\d\d elapsed, ETA (\d+:\d\d:\d\d|–)$", ln) for ln in probing)
    assert any(ln.startswith(f"extracting single: {n:,}/{n:,} (100%)") for ln in lines)
    assert lines.index(line) < min(i for i, ln in enumerate(lines) if re.match(r"extracting (single|random-init 2x8): ", ln))


def test_network_figure_has_numbers_its_controls_and_one_metric_per_colour_bar(series_run):
    from conceptchess.plots import FLAG_COLOUR, concept_figure, network_figure
    from conceptchess.probing.results import load_run
    from conceptchess.store import Database

    view = load_run(Database(f"sqlite:///{series_run / 'probes.sqlite'}"), 1)
    step = {n.step: n for n in view.networks}
    fig = network_figure(view, step[10].id)
    bars = [ax for ax in fig.axes if ax.get_label() == "<colorbar>"]
    assert sorted(ax.get_ylabel() for ax in bars) == ["test R²", "test balanced accuracy"]
    panels = {}
    for ax in fig.axes:
        if ax.get_title():
            panels.setdefault(ax.get_title(), []).append(ax)
    assert {k: len(v) for k, v in panels.items()} == {"tiny step 10: score": 2, "control: shuffled labels": 2, "control: tiny step 0": 2}
    taps = view.taps
    for k, score_ax in enumerate(panels["tiny step 10: score"]):
        names = [t.get_text() for t in score_ax.get_yticklabels()]
        concepts = [n.split(" (")[0] for n in names]
        assert {view.metric(c) for c in concepts} == {["balanced_accuracy", "r2"][k]}  # one metric per row of panels
        cells = {tuple(np.round(t.get_position()).astype(int)): t.get_text() for t in score_ax.texts}
        shuffled = {tuple(np.round(t.get_position()).astype(int)): t.get_text() for t in panels["control: shuffled labels"][k].texts}
        control = {tuple(np.round(t.get_position()).astype(int)): t.get_text() for t in panels["control: tiny step 0"][k].texts}
        for i, c in enumerate(concepts):
            train, test = view.labels(c)
            assert names[i].startswith(f"{c} (train {train} · test {test})")
            assert (names[i].endswith("too few positives") and score_ax.get_yticklabels()[i].get_color() == FLAG_COLOUR) \
                == (view.too_few(c) == "too few positives")
            for j, t in enumerate(taps):
                r, r0 = view.get(c, step[10].id, t), view.get(c, step[0].id, t)
                if r.score is None:
                    assert (j, i) not in cells
                    continue
                assert cells[(j, i)] == ("×" if r.no_fit else f"{r.score:.2f}")
                assert shuffled[(j, i)] == f"{r.control_shuffled:.2f}"
                assert control[(j, i)] == ("×" if r0.no_fit else f"{r0.score:.2f}")
    own = network_figure(view, step[0].id)  # the step-0 checkpoint is the run's random-init control: no control beside it
    assert not [ax for ax in own.axes if ax.get_title().startswith("control: tiny")]
    assert any("the run's random-init control" in t.get_text() for t in own.texts)
    # the what-when-where figure says what the concept was probed on, and flags a rare one
    for c in ("in_check", "game_phase=opening"):
        title = next(t.get_text() for t in concept_figure(view, c).texts if t.get_text().startswith(c))
        train, test = view.labels(c)
        assert f"labels: train {train} · test {test}" in title and ("too few positives" in title) == (view.too_few(c) is not None)


def test_atlas_index_shows_the_labels_and_flags_too_few_positives(series_run, tmp_path):
    from conceptchess.probing.results import load_run
    from conceptchess.store import Database

    url = f"sqlite:///{series_run / 'probes.sqlite'}"
    r = cli("probe", "plot", "1", "-o", str(tmp_path / "atlas"), "--db", url)
    assert r.exit_code == 0, r.output
    page = (tmp_path / "atlas" / "index.html").read_text()
    view = load_run(Database(url), 1)
    assert "training games +/− (var)" in page and "test games +/− (var)" in page
    for c in view.concepts:
        row = next(line for line in page.splitlines() if f">{c}</a>" in line)
        train, test = view.labels(c)
        assert f">{train}</td>" in row and f">{test}</td>" in row
        assert (row.startswith("<tr class='few'>") and "too few positives: " in row) == (view.too_few(c) == "too few positives"), c
    assert view.too_few("in_check") == "too few positives"


def test_progress_lines_keep_coming_while_a_long_cell_reports_nothing():
    """Off a terminal, a stage whose unit takes minutes (one big cell) still prints a line every interval."""
    import io

    from rich.console import Console

    from conceptchess.cli.common import Bars, stage_callback

    out = io.StringIO()
    with Bars(console=Console(file=out), log_every=0.2) as bar:
        probing = stage_callback(bar)("probing")
        probing(3, 40)
        time.sleep(1.1)  # no report meanwhile
        probing(40, 40)
    lines = [ln for ln in out.getvalue().splitlines() if ln.startswith("probing: ")]
    assert lines[0].startswith("probing: 3/40 (8%), ") and lines[-1].startswith("probing: 40/40 (100%), ")
    assert 3 <= len(lines) - 2 <= 6  # about one line per 0.2 s without a report (5 on an idle machine)
    assert all(ln.startswith("probing: 3/40 (8%), ") for ln in lines[1:-1])


def test_a_ray_sweep_on_two_nodes_gives_the_inline_rows(world, tmp_path):
    """A real two-node Ray cluster on this machine (``ray.cluster_utils.Cluster``): the rows equal the inline sweep's."""
    pytest.importorskip("ray", reason="the ray extra is not installed (pip install 'conceptchess[ray]')")
    from ray.cluster_utils import Cluster

    from conceptchess.probing import ProbeSettings, SweepRequest, plan_sweep, run_sweep

    def sweep(name: str, executor: str, address: str | None = None) -> dict:
        req = SweepRequest(dataset=world["data"], nets=[world["series"]], concepts=CONCEPTS, pool="mean", results=tmp_path / name / "results",
                           settings=ProbeSettings(n_boot=200), jobs=2, executor=executor, ray_address=address)
        url = f"sqlite:///{tmp_path / name / 'probes.sqlite'}"
        run_sweep(plan_sweep(req), db_url=url)
        return stored(url)

    threads = torch.get_num_threads()
    torch.set_num_threads(max(1, len(os.sched_getaffinity(0)) // 2))  # as many threads as each Ray task gets
    try:
        inline = sweep("inline", "inline")
    finally:
        torch.set_num_threads(threads)
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1})
    try:
        cluster.add_node(num_cpus=1)
        cluster.wait_for_nodes()
        ray_rows = sweep("ray", "ray", cluster.address)
    finally:
        cluster.shutdown()
    assert len(inline) == 3 * 3 * TARGETS and sorted(inline) == sorted(ray_rows)
    for k, (numbers, status, _details, vector) in inline.items():
        r_numbers, r_status, r_details, r_vector = ray_rows[k]
        assert status == r_status, k
        for f, a in numbers.items():
            b = r_numbers[f]
            assert (a is None and b is None) or abs(a - b) <= 1e-9, (k, f, a, b)
        assert (vector is None and r_vector is None) or np.max(np.abs(vector - r_vector)) <= 1e-9, k


def test_the_ray_executor_refuses_an_unreachable_cluster_before_writing(world, tmp_path):
    pytest.importorskip("ray", reason="the ray extra is not installed (pip install 'conceptchess[ray]')")
    from conceptchess.errors import ConceptChessError
    from conceptchess.executors import make_executor

    with pytest.raises(ConceptChessError, match="cannot reach the Ray cluster at 127.0.0.1:1"):
        make_executor("ray", 1, 1, "127.0.0.1:1")
    r = cli("probe", *base_args(world, tmp_path, "--net", str(world["series"]), "--executor", "ray", "--ray-address", "127.0.0.1:1"))
    assert r.exit_code == 2 and r.output.strip().splitlines()[-1].startswith("error: cannot reach the Ray cluster at 127.0.0.1:1"), r.output
    assert not any(tmp_path.rglob("*.sqlite"))
