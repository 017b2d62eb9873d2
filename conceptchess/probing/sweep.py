"""Probe sweeps: concepts × taps × networks, with controls, stored in the database and resumable.

:func:`plan_sweep` validates a request without writing anything (unknown concept or tap, a missing
or malformed network, a checkpoint folder of mixed architectures, a labels table without a requested
concept, too few games — each a one-line :class:`~conceptchess.errors.ConceptChessError`).
:func:`run_sweep` then labels the positions (cached), makes the random-init control network if one is
needed, registers the run, and works through the cells (network × tap) in order: the ``input`` tap
first (it is every row's input-plane control), then the random-init network (every row's random-init
control), then the probed networks. It is planner → executor → writer: the planner
(:mod:`~conceptchess.probing.planner`) lists the cells left to do; an executor
(:mod:`conceptchess.executors`: in this process, or in worker processes — :func:`sweep_workers`)
probes them; the writer (:mod:`~conceptchess.probing.writer`), in this process only, writes them in
that order, each cell's rows in one transaction after its probe vectors are saved, so a killed sweep
keeps every finished cell and the same command completes the rest: the run is found again by its key
(a hash of inputs and settings), and existing rows are skipped (the unique constraint on
``(run, network, tap, concept)`` refuses duplicates in any case).

Activations are the sweep's big files (float16, full 8×8: 6,000 positions × 7 taps of two 64-filter
networks and their random-init control come to ~0.9 GB): before extracting any, the sweep says how
much it will write (``announce``, an :class:`ExtractionEstimate`), and with
``keep_activations=False`` it removes each folder it extracted once the cells reading it are stored
(folders that were there before, or given in ``activation_folders``, are never removed).

Each concept is probed on one pooling of the activations: the request's ``pool`` (full 8×8, or the
per-channel mean), or its own in ``pools`` — a few concepts at full resolution and the rest on channel
means costs little more than the full ones alone. A cell then reads one activation folder per pooling
and probes each pooling's concepts together; the run's settings record the pooling of each concept
that differs from ``pool``, and :func:`~conceptchess.store.probes.result_pool` reads it back.

>>> plan = plan_sweep(SweepRequest(dataset="positions/", nets=["engines/"], concepts="in_check,material_diff"))  # doctest: +SKIP
>>> run_id = run_sweep(plan, db_url="sqlite:///probes.sqlite")                                                   # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path

import numpy as np
import torch

from conceptchess.activations import POOLS, activation_bytes, size_text
from conceptchess.concepts.labeling import check_board
from conceptchess.datasets import dataset_sha256, iter_dataset, positions_path, read_manifest
from conceptchess.errors import ArgumentError, ConceptChessError
from conceptchess.executors import check_executor, make_executor
from conceptchess.names import unique
from conceptchess.paths import RESULTS_DIR
from conceptchess.positions import boards_of
from conceptchess.probing.cell import ProbeSettings, TargetResult, probe_matrix
from conceptchess.probing.planner import plan_cells, sweep_networks, taps_to_extract
from conceptchess.probing.sources import Activations, NetInfo, random_init_network, read_matrix, resolve_networks, tap_shape
from conceptchess.probing.split import Split, game_codes, split_by_game
from conceptchess.probing.targets import Target, library_labels, read_labels_table, resolve_targets, target_values
from conceptchess.probing.writer import SweepWriter
from conceptchess.progress import ProgressFor
from conceptchess.provenance import sha256_of, software_versions
from conceptchess.store import Database
from conceptchess.taps import INPUT
from conceptchess.taps import check as check_taps
from conceptchess.taps import order as order_taps
from conceptchess.taps import parse as parse_taps


def default_results() -> Path:
    """``results/probes`` in the project folder (beside ``db/``)."""
    return RESULTS_DIR / "probes"


@dataclass
class SweepRequest:
    """What ``conceptchess probe run`` asks for (see the CLI for each option)."""

    dataset: str | os.PathLike
    nets: list[str | os.PathLike] | None = None
    concepts: list[str] | str | None = None
    taps: list[str] | str | None = None
    controls: bool = True
    seed: int = 0
    max_positions: int | None = None
    pool: str = "full"
    pools: dict[str, str] = field(default_factory=dict)  # concept (or concept=category) → its pooling, instead of pool
    labels: str | os.PathLike | None = None
    results: str | os.PathLike | None = None
    activation_folders: list[str | os.PathLike] = field(default_factory=list)  # further folders to read activations from
    settings: ProbeSettings = field(default_factory=ProbeSettings)
    threads: int | None = None
    jobs: int | None = None  # worker processes for the cells (None: auto, see sweep_workers)
    executor: str | None = None  # inline | process | ray (None: worker processes when there is more than one worker)
    ray_address: str | None = None  # the ray executor's cluster: "auto", HOST:PORT, or None for a local one
    keep_activations: bool = True  # False: remove the activation folders it extracted once their cells are stored


@dataclass
class SweepPlan:
    """A validated request: everything resolved, nothing written yet."""

    request: SweepRequest
    dataset: Path
    dataset_sha: str
    dataset_size: int
    dataset_manifest: dict
    positions: int
    ids: list
    split: Split
    split_kind: str
    networks: list[NetInfo]
    is_series: bool
    random_init: dict[str, NetInfo | None]  # architecture → step-0 checkpoint (None: generate one)
    taps: dict[str, list[str]]  # network sha → taps
    targets: list[Target]
    labels_table: tuple[Path, list, dict] | None
    results: Path
    settings: ProbeSettings
    pools: dict[str, str]  # target name → the pooling of the activations it is probed on

    @property
    def controls(self) -> bool:
        return self.request.controls

    def pool_of(self, target: Target) -> str:
        return self.pools[target.name]


def _read_positions(dataset: Path, limit: int | None) -> tuple[list, list, int]:
    """Ids and game ids of the first ``limit`` records, and the dataset's record count."""
    f = positions_path(dataset)
    ids, games, n = [], [], 0
    with open(f, encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            if limit is None or n < limit:
                try:
                    d = json.loads(line)
                except json.JSONDecodeError as e:
                    raise ConceptChessError(f"{f}:{lineno}: malformed JSON ({e.msg})") from None
                if not isinstance(d, dict) or "id" not in d:
                    raise ConceptChessError(f"{f}:{lineno}: a position needs an \"id\"")
                ids.append(d["id"])
                games.append(d.get("game", d.get("game_id")))
            n += 1
    return ids, games, n


def plan_sweep(req: SweepRequest) -> SweepPlan:
    """Validate and resolve a request; raises a one-line error and writes nothing."""
    for pool in (req.pool, *req.pools.values()):
        if pool not in POOLS:
            raise ConceptChessError(f"pool must be {' or '.join(POOLS)}, not {pool!r}")
    check_executor(req.executor, req.ray_address)
    if req.max_positions is not None and req.max_positions < 1:
        raise ArgumentError("{max_positions} must be at least 1", max_positions="max_positions")
    s = req.settings
    if s.n_boot < 0 or not 0 < s.level < 1 or s.patience < 1 or not s.ratios:
        raise ConceptChessError("bad probe settings (bootstrap count ≥ 0, level in (0, 1), patience ≥ 1, a λ grid)")
    dataset = Path(req.dataset)
    ids, games, size = _read_positions(dataset, req.max_positions)
    if not ids:
        raise ConceptChessError(f"{dataset}: the dataset has no positions")
    if len(set(map(json.dumps, ids))) != len(ids):
        raise ConceptChessError(f"{dataset}: position ids are not unique")
    if all(g is None for g in games):
        games, split_kind = [json.dumps(i) for i in ids], "by position (the records have no game ids)"
    else:
        if any(g is None for g in games):
            raise ConceptChessError(f"{dataset}: some records have a \"game\" and some do not")
        split_kind = "by game"
    split = split_by_game(game_codes(games), s.fractions, req.seed)
    # Labels (before networks: a bad concept name is the commonest mistake and the cheapest to check).
    table = None
    if req.labels is not None:
        t_ids, cols = read_labels_table(req.labels)
        index = {json.dumps(i): k for k, i in enumerate(t_ids)}
        missing = [i for i in ids if json.dumps(i) not in index and json.dumps(str(i)) not in index]
        if missing:
            raise ConceptChessError(f"{req.labels}: the labels table has no row for position id {missing[0]!r}")
        rows = np.array([index.get(json.dumps(i), index.get(json.dumps(str(i)))) for i in ids])
        cols = {k: v[rows] for k, v in cols.items()}
        table = (Path(req.labels), t_ids, cols)
    targets = resolve_targets(req.concepts, table_columns=table[2] if table else None)
    named = {t.name for t in targets} | {t.concept for t in targets}
    stray = [c for c in req.pools if c not in named]
    if stray:
        raise ConceptChessError(f"pools names {', '.join(map(repr, stray))}, not among the concepts probed ({', '.join(t.name for t in targets)})")
    pools = {t.name: req.pools.get(t.name, req.pools.get(t.concept, req.pool)) for t in targets}
    # Networks and taps.
    nets, is_series = resolve_networks(req.nets)
    wanted = parse_taps(req.taps)
    taps: dict[str, list[str]] = {}
    for n in nets:
        if wanted is None:
            t = n.taps
        else:
            check_taps(wanted, n.taps, f"network {n.path.name}")
            t = list(wanted)
        if req.controls and INPUT not in t:
            t = [INPUT] + t
        taps[n.sha256] = order_taps(t)
    random_init: dict[str, NetInfo | None] = {}
    if req.controls:
        first = nets[0]
        for n in nets:
            if n.architecture in random_init:
                continue
            if is_series and first.step == 0:
                random_init[n.architecture] = first
            elif n.spec is not None:
                random_init[n.architecture] = None  # generated at run time
    results = Path(req.results) if req.results is not None else default_results()
    return SweepPlan(req, dataset, dataset_sha256(dataset), size, read_manifest(dataset), len(ids), ids, split, split_kind,
                     nets, is_series, random_init, taps, targets, table, results, s, pools)


# -- identity and bookkeeping ------------------------------------------------------------------------------
def _versions() -> dict:
    """What a run records of the software that made it (conceptchess, numpy, torch, scikit-learn, python)."""
    return software_versions("numpy", "torch", "sklearn")


def _torch_threads() -> int:
    return torch.get_num_threads()


def _settings(plan: SweepPlan, control_nets: dict[str, NetInfo]) -> dict:
    r = plan.request
    labels = "library (computed from the positions)"
    if plan.labels_table is not None:
        labels = f"table {plan.labels_table[0]} (sha256 {sha256_of(plan.labels_table[0])})"
    return {
        "concepts": [t.name for t in plan.targets],
        "taps": {n.sha256: plan.taps[n.sha256] for n in plan.networks},
        "networks": [n.sha256 for n in plan.networks],
        "series": plan.is_series,
        "controls": r.controls,
        "random_init": {a: {"sha256": n.sha256, "source": "step-0 checkpoint" if n.role == "probed" else f"generated (seed {r.seed})"}
                        for a, n in control_nets.items()},
        "seed": r.seed,
        "positions": plan.positions,
        "max_positions": r.max_positions,
        "pool": r.pool,
        # only where a concept differs from pool: a run of one pooling keeps the key it always had
        **({"pools": own} if (own := {t.name: p for t in plan.targets if (p := plan.pool_of(t)) != r.pool}) else {}),
        "labels": labels,
        "split": plan.split_kind,
        "split_sizes": list(plan.split.sizes()),
        "categorical": "one-vs-rest (concept=category)",
        "probe": plan.settings.to_dict(),
    }


def run_key(dataset_sha: str, settings: dict) -> str:
    return hashlib.sha256(json.dumps({"dataset": dataset_sha, "settings": settings}, sort_keys=True).encode()).hexdigest()


# -- the sweep ----------------------------------------------------------------------------------------------
ACTIVATION_DTYPE = "float16"  # what a sweep extracts (extract_activations' default)


@dataclass(frozen=True)
class ExtractionEstimate:
    """The activations a sweep is about to extract, said before the first is written."""

    folder: Path  # where they go
    networks: int
    taps: int  # (network, tap, pooling) triples
    positions: int
    pools: tuple[str, ...]  # the poolings extracted ("full", "mean")
    bytes: int  # of the networks whose width is known
    unknown: int  # networks whose width is known only once extracted (lc0 ONNX files)
    keep: bool  # kept after the sweep (else removed once their cells are stored)

    def __str__(self) -> str:
        layout = " and ".join("full 8×8" if p == "full" else "mean-pooled" for p in self.pools)
        size = size_text(self.bytes) + (f" plus {self.unknown} ONNX network{'s' if self.unknown > 1 else ''} of unknown width"
                                        if self.unknown else "")
        fate = "kept for `puzzles mine`" if self.keep else "removed once probed"
        return (f"extracting {self.taps} tap{'s' if self.taps != 1 else ''} of {self.networks} network{'s' if self.networks != 1 else ''} "
                f"over {self.positions:,} positions ({layout}, {ACTIVATION_DTYPE}): ≈ {size} in {self.folder}, {fate}")


def extraction_estimate(acts: dict[str, Activations], nets: dict[str, NetInfo], needs: dict[tuple[str, str], list[str]],
                        keep: bool) -> ExtractionEstimate | None:
    """What ``acts[pool].ensure`` will extract for the taps ``needs`` of the networks ``nets`` (by sha256 and
    pooling); None: nothing."""
    missing = {(sha, pool): acts[pool].missing(sha, taps) for (sha, pool), taps in needs.items()}
    missing = {key: taps for key, taps in missing.items() if taps}
    if not missing:
        return None
    shapes = {(sha, pool, t): tap_shape(nets[sha], t, pool) for (sha, pool), taps in missing.items() for t in taps}
    known = {f"{sha}/{pool}/{t}": shape for (sha, pool, t), shape in shapes.items() if shape is not None}
    unknown = len({sha for (sha, _, _), shape in shapes.items() if shape is None})
    some = next(iter(acts.values()))
    return ExtractionEstimate(some.extract_dir, len({sha for sha, _ in missing}), len(shapes), some.positions,
                              tuple(p for p in POOLS if any(pool == p for _, pool in missing)),
                              activation_bytes(some.positions, known, ACTIVATION_DTYPE), unknown, keep)


@dataclass
class _CellJob:
    """What a worker needs to probe one cell (picklable: the matrices are read in the worker)."""

    parts: list[tuple[Path, list[int]]]  # per pooling: the activation folder holding the cell's tap, and the targets read from it
    tap: str
    positions: int
    ids: list
    targets: list[Target]
    Y: np.ndarray
    split: Split
    settings: ProbeSettings
    seed: int


def _probe_cell(job: _CellJob) -> list[TargetResult]:
    out: dict[int, TargetResult] = {}
    for folder, cols in job.parts:
        X, shape = read_matrix(folder, job.tap, job.positions, job.ids)
        found = probe_matrix(X, shape, [job.targets[k] for k in cols], job.Y[:, cols], job.split, settings=job.settings, seed=job.seed)
        out.update(zip(cols, found))
    return [out[k] for k in range(len(job.targets))]


#: Below this many positions a cell takes a second or two and starting worker processes (each imports
#: torch) costs more than it saves.
PARALLEL_MIN_POSITIONS = 5000


def sweep_workers(jobs: int | None, cells: int, positions: int) -> tuple[int, int]:
    """``(worker processes, torch threads per worker)`` for a sweep of ``cells`` cells.

    ``jobs=None`` (auto): one worker per core, at most 4, each with ``cores // workers`` torch threads;
    1 (cells solved in this process, torch's own threads) for small sweeps. Cells are independent and
    a cell's solver alternates memory-bound products with many small operations that one thread runs
    no faster than two: on 2 cores, two single-threaded workers solved two 2,048-feature cells of 60
    concepts in 8.7–9.0 s where one process with two threads took 10.6–13.3 s.
    """
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    if jobs is None:
        jobs = 1 if positions < PARALLEL_MIN_POSITIONS else min(cores, 4)
    if jobs < 1:
        raise ArgumentError(f"{{jobs}} must be at least 1, not {jobs}", jobs="jobs")
    jobs = max(1, min(jobs, cells))
    return jobs, max(1, cores // jobs)


def _executor_choice(executor: str | None, jobs: int) -> str:
    """The executor a sweep uses: the one asked for, else worker processes when there is more than one worker."""
    return executor or ("process" if jobs > 1 else "inline")


def _labels(plan: SweepPlan, progress_for: ProgressFor | None) -> np.ndarray:
    if plan.labels_table is not None:
        return target_values(plan.targets, plan.labels_table[2])
    concepts = unique(t.concept for t in plan.targets)
    cache = plan.results / "labels" / f"{plan.dataset_sha[:16]}-n{plan.positions}"

    def boards():
        return boards_of(list(islice(iter_dataset(plan.dataset), plan.positions)), f"{plan.dataset}: ", check=check_board)

    values = library_labels(concepts, boards, cache, progress_for("labelling") if progress_for else None)
    return target_values(plan.targets, values)


def run_sweep(plan: SweepPlan, db_url: str | None = None, progress_for: ProgressFor | None = None, db=None,
              announce: Callable[[ExtractionEstimate], None] | None = None) -> int:
    """Run (or complete) the sweep of ``plan``; returns the run id.

    Planner → executor → writer: :func:`~conceptchess.probing.planner.plan_cells` lists the cells left
    to do, an executor (:mod:`conceptchess.executors`, chosen by the request's ``executor`` and ``jobs``)
    probes them, and the :class:`~conceptchess.probing.writer.SweepWriter` stores each in order.
    ``progress_for``: the stages are ``labelling``, ``extracting <network>`` (``extracting <network> (<pool>)``
    when concepts differ in pooling) and ``probing`` (cells).
    ``announce``: called once with the :class:`ExtractionEstimate` before any activation is extracted
    (not when every activation is there already).
    """
    req = plan.request
    probing = progress_for("probing") if progress_for else None
    Y = _labels(plan, progress_for)
    # Control networks: the step-0 checkpoint, or one generated per architecture.
    control_nets: dict[str, NetInfo] = {}
    for arch, net in plan.random_init.items():
        if net is None:
            like = next(n for n in plan.networks if n.architecture == arch)
            net = random_init_network(like, req.seed, plan.results / "networks")
        control_nets[arch] = net
    settings = _settings(plan, control_nets)
    order, taps = sweep_networks(plan.networks, plan.taps, control_nets)
    jobs, threads = sweep_workers(req.jobs, 10**9, plan.positions)  # as configured; capped below by the cells to do
    # Recorded, not part of the key: the thread count changes only the order of floating-point sums.
    recorded = _executor_choice(req.executor, jobs) in ("process", "ray")
    versions = {**_versions(), "cell_workers": jobs if recorded else 1,
                "torch_threads_per_cell": threads if recorded else _torch_threads()}
    writer = SweepWriter(db or Database(db_url), plan.results, req.controls)
    run_id = writer.open_run(run_key(plan.dataset_sha, settings),
                             {"sha256": plan.dataset_sha, "path": str(plan.dataset.resolve()), "positions": plan.dataset_size,
                              "manifest": plan.dataset_manifest},
                             order, plan.targets, control_nets, seed=req.seed, settings=settings, versions=versions)
    cells, total = plan_cells(order, taps, plan.targets, writer.done)
    pools = [plan.pool_of(t) for t in plan.targets]
    needs = taps_to_extract(cells, pools)
    acts = {pool: Activations(plan.dataset, plan.dataset_sha, plan.dataset_size, plan.positions, plan.ids, pool, plan.results,
                              [Path(p) for p in req.activation_folders]) for pool in unique(pools)}
    if announce is not None:
        estimate = extraction_estimate(acts, {n.sha256: n for n in order}, needs, req.keep_activations)
        if estimate is not None:
            announce(estimate)
    if probing:
        probing(total - len(cells), total)
    extracted: dict[str, list[Path]] = {}  # network sha256 → the folders this sweep extracted for it
    cells_left = Counter(c.net.sha256 for c in cells)  # a network's cells are the only readers of its folder

    def units():
        """Each cell left with its job, extracting a network's activations (every tap it still needs, in one
        forward pass) when its first cell comes up: meanwhile, the workers solve the cells before it."""
        ensured: set[tuple[str, str]] = set()
        for cell in cells:
            net = cell.net
            todo = list(cell.targets)
            parts = []
            for pool in unique(pools[j] for j in todo):
                if (net.sha256, pool) not in ensured:
                    stage = f"extracting {net.label}" + (f" ({pool})" if len(acts) > 1 else "")
                    folder = acts[pool].ensure(net, needs[(net.sha256, pool)], progress_for(stage) if progress_for else None, req.threads)
                    if folder is not None:
                        extracted.setdefault(net.sha256, []).append(folder)
                    ensured.add((net.sha256, pool))
                parts.append((acts[pool].locate(net.sha256, cell.tap), [k for k, j in enumerate(todo) if pools[j] == pool]))
            yield cell, _CellJob(parts, cell.tap, plan.positions, plan.ids, [plan.targets[j] for j in todo], Y[:, todo], plan.split,
                                 plan.settings, req.seed)

    jobs, threads = sweep_workers(req.jobs, len(cells), plan.positions)  # fewer workers (more threads each) for few cells
    with make_executor(_executor_choice(req.executor, jobs) if cells else "inline", jobs, threads, req.ray_address) as executor:
        for cell, results in executor.map(_probe_cell, units()):
            writer.write(cell, results)
            cells_left[cell.net.sha256] -= 1
            if not req.keep_activations and not cells_left[cell.net.sha256]:
                for folder in extracted.pop(cell.net.sha256, []):
                    shutil.rmtree(folder, ignore_errors=True)
            if probing:
                probing(cell.index + 1, total)
    writer.finish()
    if probing:
        probing(total, total)
    return run_id
