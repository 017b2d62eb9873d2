"""The sweep's writer: the one part of a sweep that touches the database and the probe vector files.

It registers a run (found again by its key, so the same command completes a killed sweep), tells the
planner what is stored already, and writes each finished cell: its probe vectors first (``.npy``,
written atomically under ``<results>/runs/<run id>/``), then its rows in one transaction, each row with
its input-plane and random-init controls (kept from earlier cells: cells come in the planner's order).
It runs in the sweep's own process only, so a worker — or, later, a node without the shared
filesystem — never writes anything.

>>> writer = SweepWriter(db, results_dir, controls=True)                                                 # doctest: +SKIP
>>> run_id = writer.open_run(key, dataset, order, targets, control_nets, seed=0, settings={}, versions={})  # doctest: +SKIP
>>> cells, total = plan_cells(order, taps, targets, writer.done)                                         # doctest: +SKIP
>>> writer.write(cells[0], probe_matrix(...)); writer.finish()                                          # doctest: +SKIP
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from conceptchess.concepts import CONCEPTS
from conceptchess.datasets import HUMAN_GAMES, MACHINE_GAMES, ROLLOUTS, dataset_origin
from conceptchess.files import atomic_open
from conceptchess.names import unique
from conceptchess.probing.cell import TargetResult
from conceptchess.probing.planner import Cell
from conceptchess.probing.sources import NetInfo
from conceptchess.probing.targets import Target
from conceptchess.store import probes as queries
from conceptchess.taps import INPUT


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.=+-]", "_", name)


def _save_vector(path: Path, v: np.ndarray) -> None:
    with atomic_open(path, "wb") as f:
        np.save(f, v.astype(np.float32))


#: The ``source`` a dataset row records (human | machine) for each origin its manifest records; None for the others.
DATASET_SOURCES = {HUMAN_GAMES: "human", MACHINE_GAMES: "machine", ROLLOUTS: "machine"}


def dataset_source(manifest: dict) -> str | None:
    """``human`` or ``machine`` from the origin a dataset's manifest records (:func:`~conceptchess.datasets.dataset_origin`),
    None where it records none (a dataset built before origins were recorded) or another one."""
    return DATASET_SOURCES.get(dataset_origin(manifest))


class SweepWriter:
    """Database rows and probe vector files of one sweep run (see the module docstring)."""

    def __init__(self, db, results: Path, controls: bool):
        self.db, self.results, self.controls = db, results, controls
        self.run_id: int | None = None
        self._ids: dict[str, int] = {}  # network sha256 → database id
        self._arch: dict[str, str] = {}  # network sha256 → architecture
        self._control_of: dict[str, str] = {}  # architecture → sha256 of its random-init control
        self._concepts: dict[str, int] = {}
        self._done: set[tuple[str, str, str]] = set()  # (network sha256, tap, target name)
        self._input: dict[str, float | None] = {}  # target name → score at the input tap
        self._random: dict[tuple[str, str, str], float | None] = {}  # (control sha256, tap, target name) → its score

    # -- the run ------------------------------------------------------------------------------------------
    def open_run(self, key: str, dataset: dict, order: list[NetInfo], targets: list[Target], controls: dict[str, NetInfo], *,
                 seed: int, settings: dict, versions: dict) -> int:
        """Find the run of ``key`` or register it (with its dataset, networks and concepts); read what it holds.

        ``dataset``: sha256, path, positions and manifest of the positions dataset; ``order``: the sweep's
        networks; ``controls``: architecture → random-init network.
        """
        with self.db.begin() as s:
            ds = queries.dataset_id(s, sha256=dataset["sha256"], path=dataset["path"], source=dataset_source(dataset["manifest"]),
                                    positions=dataset["positions"], manifest=dataset["manifest"] or None)
            self._ids = {n.sha256: queries.network_id(s, sha256=n.sha256, kind=n.kind, architecture=n.architecture, blocks=n.blocks,
                                                      filters=n.filters, run=n.run, step=n.step, path=str(n.path.resolve()))
                         for n in order}
            for name in unique(t.concept for t in targets):
                if name in CONCEPTS:
                    c = CONCEPTS[name]
                    self._concepts[name] = queries.concept_id(s, name=name, definition=c.definition, type=c.type, frame=c.frame,
                                                              family=c.family)
            run_id = queries.run_id_by_key(s, key)
            if run_id is None:
                run_id = queries.add_run(s, key=key, dataset_id=ds, seed=seed, settings=settings, versions=versions,
                                         results_dir=str(self.results.resolve()),
                                         networks=[(self._ids[n.sha256], n.role, n.label) for n in order])
        self.run_id = run_id
        self._arch = {n.sha256: n.architecture for n in order}
        self._control_of = {a: n.sha256 for a, n in controls.items()}
        controls_sha = set(self._control_of.values())
        by_id = {v: k for k, v in self._ids.items()}
        with self.db.session() as s:
            rows = queries.result_scores(s, run_id)
        for r in rows:
            sha = by_id.get(r.network_id)
            self._done.add((sha, r.tap, r.concept))
            if r.tap == INPUT:
                self._input[r.concept] = r.score
            if sha in controls_sha:
                self._random[(sha, r.tap, r.concept)] = r.score
        return run_id

    @property
    def done(self) -> set[tuple[str, str, str]]:
        """``(network sha256, tap, target name)`` of every stored row (for the planner)."""
        return set(self._done)

    def finish(self) -> None:
        with self.db.begin() as s:
            queries.finish_run(s, self.run_id)

    # -- cells --------------------------------------------------------------------------------------------
    def write(self, cell: Cell, results: list[TargetResult]) -> None:
        """Save a finished cell's probe vectors, then its rows in one transaction (cells come in the planner's order)."""
        folder = self.results / "runs" / str(self.run_id) / ("input" if cell.tap == INPUT else f"{cell.net.sha256[:16]}/{cell.tap}")
        paths = {}
        for r in results:
            if r.vector is not None:
                paths[r.target.name] = folder / f"{_safe(r.target.name)}.npy"
                _save_vector(paths[r.target.name], r.vector)
        controls_sha = set(self._control_of.values())
        with self.db.begin() as s:
            for sha in cell.networks:
                for r in results:
                    if (sha, cell.tap, r.target.name) in self._done:
                        continue
                    ctrl_in = r.score if cell.tap == INPUT else self._input.get(r.target.name)
                    if cell.tap == INPUT:
                        ctrl_rand = r.score
                    elif sha in controls_sha:
                        ctrl_rand = None
                    else:
                        ctrl_rand = self._random.get((self._control_of.get(self._arch[sha]), cell.tap, r.target.name))
                    queries.add_result(s, **_row(self.run_id, self._ids[sha], cell.tap, r, self._concepts.get(r.target.concept),
                                                 paths.get(r.target.name), ctrl_in if self.controls else None,
                                                 ctrl_rand if self.controls else None))
        for r in results:
            for sha in cell.networks:
                self._done.add((sha, cell.tap, r.target.name))
            if cell.tap == INPUT:
                self._input[r.target.name] = r.score
            if cell.net.sha256 in controls_sha:
                self._random[(cell.net.sha256, cell.tap, r.target.name)] = r.score


def _row(run_id: int, network_id: int, tap: str, r: TargetResult, concept_id: int | None, path: Path | None,
         ctrl_in: float | None, ctrl_rand: float | None) -> dict:
    sel = None if r.score is None or r.shuffled is None else r.score - r.shuffled
    n = r.sizes or (None, None, None)
    return dict(run_id=run_id, network_id=network_id, tap=tap, concept=r.target.name, concept_id=concept_id,
                metric=r.target.metric, status=r.status, reason=r.reason, score=r.score, ci_low=r.ci_low, ci_high=r.ci_high,
                control_input=None if r.score is None else ctrl_in, control_random=None if r.score is None else ctrl_rand,
                control_shuffled=r.shuffled, selectivity=sel, nonzero=r.nonzero, features=r.features, alpha=r.alpha,
                intercept=r.intercept, vector_path=str(path.resolve()) if path else None, n_train=n[0], n_val=n[1], n_test=n[2],
                details=r.details or None)
