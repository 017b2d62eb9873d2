"""The sweep's planner: which cells (network × tap) are left to do, given what the database already holds.

Pure functions of their inputs (no files, no database). Cells come in the order their rows must be
written, because later cells read earlier ones as controls: the ``input`` tap first (it depends on
the positions only, so one cell serves every network and is every row's input-plane control), then
the random-init control networks (every row's random-init control), then the probed networks.

>>> order, taps = sweep_networks(plan.networks, plan.taps, controls)             # doctest: +SKIP
>>> cells, total = plan_cells(order, taps, plan.targets, done=set())             # doctest: +SKIP
>>> [(c.net.label, c.tap) for c in cells][:2]                                    # doctest: +SKIP
[('random-init 6x64', 'input'), ('random-init 6x64', 'block0')]
"""

from __future__ import annotations

from dataclasses import dataclass

from conceptchess.names import unique
from conceptchess.probing.sources import NetInfo
from conceptchess.probing.targets import Target
from conceptchess.taps import INPUT


@dataclass(frozen=True)
class Cell:
    """One unit of a sweep: a tap of one network, probed for the targets not yet stored."""

    index: int  # position among all the sweep's cells (done or not)
    net: NetInfo  # whose activations are probed (the input tap: the first network's, they are all the same)
    tap: str
    networks: tuple[str, ...]  # sha256 of every network whose rows this cell writes (the input tap: all of them)
    targets: tuple[int, ...]  # indices into the sweep's targets still to do


def sweep_networks(probed: list[NetInfo], taps: dict[str, list[str]],
                   controls: dict[str, NetInfo]) -> tuple[list[NetInfo], dict[str, list[str]]]:
    """The sweep's networks in order (generated random-init controls first, then ``probed``) and the taps of each.

    ``controls``: architecture → random-init network (a step-0 checkpoint is one of ``probed``); a
    generated control has the taps of the networks it controls.
    """
    order = [n for n in controls.values() if n.role == "random-init"] + list(probed)
    taps = dict(taps)
    for n in order:
        taps.setdefault(n.sha256, next(taps[p.sha256] for p in probed if p.architecture == n.architecture))
    return order, taps


def plan_cells(order: list[NetInfo], taps: dict[str, list[str]], targets: list[Target],
               done: set[tuple[str, str, str]]) -> tuple[list[Cell], int]:
    """``(cells left to do in write order, number of cells in the whole sweep)``.

    ``done``: ``(network sha256, tap, target name)`` of the rows already stored. A cell is left to do
    while any of its networks lacks a row for any target; it then lists those targets only.
    """
    cells: list[tuple[NetInfo, str, tuple[str, ...]]] = []
    with_input = tuple(n.sha256 for n in order if INPUT in taps[n.sha256])
    if with_input:
        cells.append((order[0], INPUT, with_input))
    for n in order:
        cells += [(n, tap, (n.sha256,)) for tap in taps[n.sha256] if tap != INPUT]
    left = []
    for i, (net, tap, nets) in enumerate(cells):
        todo = tuple(j for j, t in enumerate(targets) if any((sha, tap, t.name) not in done for sha in nets))
        if todo:
            left.append(Cell(i, net, tap, nets, todo))
    return left, len(cells)


def taps_to_extract(cells: list[Cell], pools: list[str]) -> dict[tuple[str, str], list[str]]:
    """Per network (sha256) and pooling, the taps its cells left to do read: one extraction per network and
    pooling yields them all. ``pools``: the pooling of each of the sweep's targets (a cell reads a pooling
    only for the targets it still has to do)."""
    needs: dict[tuple[str, str], list[str]] = {}
    for c in cells:
        for pool in unique(pools[j] for j in c.targets):
            needs.setdefault((c.net.sha256, pool), []).append(c.tap)
    return needs
