"""The sweep's planner: cells in write order, what is left after a partial run, one extraction per network."""

from __future__ import annotations

from pathlib import Path

from conceptchess.probing.planner import plan_cells, sweep_networks, taps_to_extract
from conceptchess.probing.sources import NetInfo
from conceptchess.probing.targets import Target

TARGETS = [Target("in_check", "classification", "in_check"), Target("material_diff", "regression", "material_diff")]


def net(name: str, arch: str = "2x8", step: int | None = None, role: str = "probed") -> NetInfo:
    return NetInfo(Path(f"{name}.pb.gz"), sha256=name, kind="lc0-weights", blocks=2, filters=8, architecture=arch, run="r",
                   step=step, role=role)


def test_generated_controls_come_first_with_the_taps_of_the_networks_they_control():
    a, b, other = net("a"), net("b"), net("c", arch="3x8")
    ctrl = net("ctrl", role="random-init")
    order, taps = sweep_networks([a, b, other], {"a": ["input", "block1"], "b": ["input", "block1"], "c": ["block0"]}, {"2x8": ctrl})
    assert [n.sha256 for n in order] == ["ctrl", "a", "b", "c"]
    assert taps["ctrl"] == ["input", "block1"] and taps["c"] == ["block0"]
    # A step-0 checkpoint is its series' control and stays where the series puts it.
    s0, s1 = net("s0", step=0), net("s1", step=10)
    order, _ = sweep_networks([s0, s1], {"s0": ["input"], "s1": ["input"]}, {"2x8": s0})
    assert [n.sha256 for n in order] == ["s0", "s1"]


def test_cells_in_write_order_and_what_a_partial_run_leaves():
    order = [net("ctrl", role="random-init"), net("a"), net("b")]
    taps = {n.sha256: ["input", "block0", "block1"] for n in order}
    cells, total = plan_cells(order, taps, TARGETS, done=set())
    assert total == 7  # one input cell for all three networks, then 2 block taps × 3 networks
    assert [(c.index, c.net.sha256, c.tap) for c in cells] == [
        (0, "ctrl", "input"), (1, "ctrl", "block0"), (2, "ctrl", "block1"), (3, "a", "block0"), (4, "a", "block1"),
        (5, "b", "block0"), (6, "b", "block1")]
    assert cells[0].networks == ("ctrl", "a", "b") and cells[1].networks == ("ctrl",)
    assert all(c.targets == (0, 1) for c in cells)
    # Killed after the input cell, the control's block0 and half of a's block0.
    done = {(sha, "input", t.name) for sha in ("ctrl", "a", "b") for t in TARGETS}
    done |= {("ctrl", "block0", t.name) for t in TARGETS} | {("a", "block0", "material_diff")}
    cells, total = plan_cells(order, taps, TARGETS, done)
    assert total == 7
    assert [(c.index, c.net.sha256, c.tap, c.targets) for c in cells] == [
        (2, "ctrl", "block1", (0, 1)), (3, "a", "block0", (0,)), (4, "a", "block1", (0, 1)), (5, "b", "block0", (0, 1)),
        (6, "b", "block1", (0, 1))]
    # The input cell is left to do while any network lacks an input row.
    cells, _ = plan_cells(order, taps, TARGETS, done - {("b", "input", "in_check")})
    assert (cells[0].tap, cells[0].networks, cells[0].targets) == ("input", ("ctrl", "a", "b"), (0,))
    assert taps_to_extract(cells, ["mean", "mean"]) == {("ctrl", "mean"): ["input", "block1"], ("a", "mean"): ["block0", "block1"],
                                                        ("b", "mean"): ["block0", "block1"]}
    # Concepts of another pooling: a second extraction per network, for the taps whose cells still need them.
    assert taps_to_extract(cells, ["full", "mean"]) == {
        ("ctrl", "full"): ["input", "block1"], ("ctrl", "mean"): ["block1"], ("a", "full"): ["block0", "block1"],
        ("a", "mean"): ["block1"], ("b", "full"): ["block0", "block1"], ("b", "mean"): ["block0", "block1"]}


def test_no_input_tap_without_controls_and_nothing_left_when_all_is_done():
    order = [net("a")]
    taps = {"a": ["block1"]}
    cells, total = plan_cells(order, taps, TARGETS, set())
    assert total == 1 and [(c.tap, c.networks) for c in cells] == [("block1", ("a",))]
    assert plan_cells(order, taps, TARGETS, {("a", "block1", t.name) for t in TARGETS}) == ([], 1)
