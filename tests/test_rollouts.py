"""Rollouts (optimal and sub-optimal lines of a search) and positions where two networks disagree."""

from __future__ import annotations

import json
import shutil

import chess
import pytest

from conceptchess.datasets import ROLLOUTS, iter_dataset, read_manifest
from conceptchess.disagreement import disagreement_dataset
from conceptchess.engine import Engine
from conceptchess.positions import boards_of, histories_of
from conceptchess.rollouts import RolloutSettings, rollouts_dataset
from tests.helpers import LICHESS_GAMES, cli, data_file, tiny_net


def _positions(folder, every: int, count: int):
    r = cli("positions", "from-pgn", data_file("pgn", LICHESS_GAMES), "-o", folder, "--skip-plies", 16, "--every", every,
            "--max-positions", count)
    assert r.exit_code == 0, r.output
    return folder


@pytest.fixture(scope="module")
def roots(tmp_path_factory):
    """Four middlegame positions of the shared Lichess games, with their game history."""
    return _positions(tmp_path_factory.mktemp("roots") / "roots", 45, 4)


@pytest.fixture(scope="module")
def rolled(maia1100, roots, tmp_path_factory):
    out = tmp_path_factory.mktemp("rollouts") / "r"
    manifest = rollouts_dataset(maia1100, roots, out, RolloutSettings(nodes=200, depth=5), threads=1, device="cpu")
    return out, manifest


def _board(rec: dict) -> chess.Board:
    b = chess.Board(rec["fen"]) if "fen" in rec else chess.Board()
    for u in rec["moves"]:
        b.push_uci(u)
    return b


def test_suboptimal_lines_branch_off_the_optimal_line_by_the_rules(rolled):
    out, manifest = rolled
    recs = [json.loads(x) for x in (out / "positions.jsonl").read_text().splitlines()]
    by = {(r["root"], r["line_index"], r["ply"]): r for r in recs}
    settings = RolloutSettings()
    branches = 0
    for r in recs:
        root, j, t = r["root"], r["line_index"], r["ply"]
        if r["line"] == "optimal":
            assert r["branch_ply"] is None and j == 0
            if t:  # the optimal line follows its own moves
                prev = by[(root, 0, t - 1)]
                b = _board(prev)
                b.push_uci(prev["move"])
                assert b.fen() == _board(r).fen()
            continue
        b = r["branch_ply"]
        if t != b + 1:
            continue
        branches += 1
        before = by[(root, 0, b)]  # the optimal line's position where this line branches
        opt = by[(root, 0, b + 1)]
        here = _board(r)
        alt = here.pop()
        assert here.fen() == _board(before).fen()  # same position, same history up to the branch
        assert alt.uci() != before["move"]  # a different move there
        # Q for the side that chose at ply b is minus the side to move's q at ply b + 1
        worse = (-opt["q"]) - (-r["q"]) >= settings.value_gap - 1e-6
        rare = r["visits"] < settings.visit_share * opt["visits"]
        assert worse or rare, (r, opt)
        assert r["root_to_move"] == (t % 2 == 0)
    assert branches == manifest["counts"]["suboptimal_lines"] > 0
    # every line reaches depth 5 unless it ended in a decided position
    ends = {}
    for r in recs:
        ends[(r["root"], r["line_index"])] = max(ends.get((r["root"], r["line_index"]), 0), r["ply"])
    for (root, j), last in ends.items():
        assert last == 5 or by[(root, j, last)]["terminal"] is not None


def test_rollouts_are_an_ordinary_positions_dataset(rolled, roots):
    out, manifest = rolled
    specs = list(iter_dataset(out))
    hist, boards = histories_of(specs)  # what activations extract does with it
    assert len(hist) == len(specs) == manifest["positions"] == manifest["counts"]["records"]
    assert read_manifest(out)["origin"] == ROLLOUTS
    assert manifest["counts"]["roots"] == 4 and manifest["counts"]["optimal_lines"] == 4
    assert manifest["settings"]["nodes"] == 200 and manifest["seed"] == 0 and manifest["network"]["sha256"]
    # the root records are the roots themselves
    root_boards = boards_of(list(iter_dataset(roots)))
    assert [b.fen() for b in boards_of([s for s in specs if s.meta["ply"] == 0])] == [b.fen() for b in root_boards]


def test_rollouts_resume_to_the_same_bytes(maia1100, roots, rolled, tmp_path):
    out, _ = rolled
    settings = RolloutSettings(nodes=200, depth=5)
    target = tmp_path / "r"

    class Stop(Exception):
        pass

    def stop_after_two(done, total):
        if done == 2:
            raise Stop

    with pytest.raises(Stop):
        rollouts_dataset(maia1100, roots, target, settings, threads=1, device="cpu", progress=stop_after_two)
    work = tmp_path / "r.rollouts"
    assert work.exists() and not target.exists()
    with open(work / "positions.jsonl", "ab") as f:  # a torn record after the last whole root
        f.write(b'{"id": "torn')
    rollouts_dataset(maia1100, roots, target, settings, threads=1, device="cpu")
    assert (target / "positions.jsonl").read_bytes() == (out / "positions.jsonl").read_bytes()
    assert not work.exists()


def test_rollouts_bad_input(tmp_path, roots):
    net = tiny_net(tmp_path / "t.pb.gz", seed=1)
    out = tmp_path / "out"
    for args, message in [(["--depth", "0"], "--depth must be at least 1"), (["--nodes", "0"], "--nodes must be at least 1"),
                          (["--branch-plies", "7"], "--branch-plies must lie in 0 … --depth − 1")]:
        r = cli("positions", "rollouts", "--net", net, "--input", roots, "-o", out, *args)
        assert r.exit_code == 2 and message in r.stderr, r.output
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"id": 1, "moves": ["e2e4", "e7e6", "e4e6"]}) + "\n")
    r = cli("positions", "rollouts", "--net", net, "--input", bad, "-o", out)
    assert r.exit_code == 2 and "illegal" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert not out.exists() and not (tmp_path / "out.rollouts").exists()


def test_rollouts_command(tmp_path, roots):
    net = tiny_net(tmp_path / "t.pb.gz", seed=1)
    r = cli("positions", "rollouts", "--net", net, "--input", roots, "-o", tmp_path / "out", "--nodes", 40, "--depth", 3,
            "--branch-plies", "0,2", "--extend-nodes", 8)
    assert r.exit_code == 0, r.output
    manifest = read_manifest(tmp_path / "out")
    assert manifest["settings"]["branch_plies"] == [0, 2] and manifest["settings"]["depth"] == 3
    recs = [s.meta for s in iter_dataset(tmp_path / "out")]
    assert {m["branch_ply"] for m in recs if m["line"] == "suboptimal"} <= {0, 2}
    assert max(m["ply"] for m in recs) <= 3
    # a root where the game is over has no lines, and is counted
    mated = tmp_path / "mated.jsonl"
    mated.write_text(json.dumps({"id": "fools-mate", "moves": ["f2f3", "e7e5", "g2g4", "d8h4"]}) + "\n"
                     + json.dumps({"id": "start", "moves": []}) + "\n")
    manifest = rollouts_dataset(net, mated, tmp_path / "mated", RolloutSettings(nodes=16, depth=2, extend_nodes=4), device="cpu")
    assert (manifest["counts"]["roots"], manifest["counts"]["roots_without_moves"]) == (2, 1)
    assert {s.meta["root"] for s in iter_dataset(tmp_path / "mated")} == {"start"}


def test_disagreement_matches_each_networks_top_move(maia1100, maia1900, tmp_path):
    src = _positions(tmp_path / "pos", 23, 120)
    out = tmp_path / "dis"
    manifest = disagreement_dataset(maia1100, maia1900, src, out, threads=1, device="cpu")
    specs = list(iter_dataset(src))
    hist, boards = histories_of(specs)
    tops = [[ev.best_move() for ev in Engine(n, device="cpu", threads=1).evaluate(hist, boards)] for n in (maia1100, maia1900)]
    expected = {str(s.id) for s, a, b in zip(specs, *tops) if a != b}
    got = {str(s.id): s.meta for s in iter_dataset(out)}
    assert set(got) == expected and 0 < len(expected) < len(specs)
    for s, a, b in zip(specs, *tops):
        if str(s.id) in got:
            assert (got[str(s.id)]["move_a"], got[str(s.id)]["move_b"]) == (a.uci(), b.uci())
    assert manifest["counts"]["disagree"] == len(expected)
    assert manifest["counts"]["rate"] == pytest.approx(len(expected) / len(specs), abs=1e-6)
    # with a search budget the same command compares best moves of searches
    r = cli("positions", "disagree", "--net", maia1100, "--net", maia1900, "--input", src, "-o", tmp_path / "dis-search",
            "--nodes", 16, "--threads", 1)
    assert r.exit_code == 0, r.output
    assert read_manifest(tmp_path / "dis-search")["choice"] == "search best move at 16 playouts"
    shutil.rmtree(tmp_path / "dis-search")
    r = cli("positions", "disagree", "--net", maia1100, "--input", src, "-o", tmp_path / "x")
    assert r.exit_code == 2 and "exactly two networks" in r.stderr
