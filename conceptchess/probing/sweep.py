"""Probe sweeps: concepts × taps × networks, with controls, stored in the database and resumable.

:func:`plan_sweep` validates a request without writing anything (unknown concept or tap, a missing
or malformed network, a checkpoint folder of mixed architectures, a labels table without a requested
concept, too few games — each a one-line :class:`~conceptchess.errors.ConceptChessError`).
:func:`run_sweep` then labels the positions (cached), makes the random-init control network if one is
needed, registers the run, and works through the cells (network × tap) in order: the ``input`` tap
first (it is every row's input-plane control), then the random-init network (every row's random-init
control), then the probed networks. Cells are solved in worker processes (:func:`sweep_workers`) and
written by this process in that order, each cell's rows in one transaction after its probe vectors are
saved, so a killed sweep keeps every finished cell and the same command completes the rest: the run
is found again by its key (a hash of inputs and settings), and existing rows are skipped (the unique
constraint on ``(run, network, tap, concept)`` refuses duplicates in any case).

>>> plan = plan_sweep(SweepRequest(dataset="positions/", nets=["engines/"], concepts="in_check,material_diff"))  # doctest: +SKIP
>>> run_id = run_sweep(plan, db_url="sqlite:///probes.sqlite")                                                   # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import re
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from conceptchess.errors import ConceptChessError
from conceptchess.files import atomic_open
from conceptchess.probing.cell import ProbeSettings, TargetResult, probe_matrix
from conceptchess.probing.sources import INPUT_TAP, Activations, NetInfo, order_taps, random_init_network, read_matrix, resolve_networks
from conceptchess.probing.split import Split, game_codes, split_by_game
from conceptchess.probing.targets import Target, library_labels, read_labels_table, resolve_targets, target_values

Progress = Callable[[str, int, int], None]  # (stage, done, total)


def default_results() -> Path:
    """``results/probes`` in the project folder (beside ``db/``)."""
    return Path(__file__).resolve().parent.parent.parent / "results" / "probes"


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
    labels: str | os.PathLike | None = None
    results: str | os.PathLike | None = None
    stores: list[str | os.PathLike] = field(default_factory=list)
    settings: ProbeSettings = field(default_factory=ProbeSettings)
    threads: int | None = None
    jobs: int | None = None  # worker processes for the cells (None: auto, see sweep_workers)


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

    @property
    def controls(self) -> bool:
        return self.request.controls


def _parse_taps(taps) -> list[str] | None:
    if taps is None:
        return None
    if isinstance(taps, str):
        taps = taps.split(",")
    out = []
    for t in taps:
        t = t.strip()
        if t and t not in out:
            out.append(t)
    if not out:
        raise ConceptChessError("no taps given (e.g. input,block0,block3)")
    return out


def _read_positions(dataset: Path, limit: int | None) -> tuple[list, list, int]:
    """Ids and game ids of the first ``limit`` records, and the dataset's record count."""
    from conceptchess.datasets import positions_path

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
    from conceptchess.datasets import dataset_sha256, read_manifest

    if req.pool not in ("full", "mean"):
        raise ConceptChessError(f"pool must be full or mean, not {req.pool!r}")
    if req.max_positions is not None and req.max_positions < 1:
        raise ConceptChessError("--max-positions must be at least 1")
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
    # Networks and taps.
    nets, is_series = resolve_networks(req.nets)
    wanted = _parse_taps(req.taps)
    taps: dict[str, list[str]] = {}
    for n in nets:
        if wanted is None:
            t = n.taps
        else:
            bad = [x for x in wanted if x not in n.taps]
            if bad:
                raise ConceptChessError(f"tap {bad[0]!r} is not in network {n.path.name} (taps: {', '.join(n.taps)})")
            t = list(wanted)
        if req.controls and INPUT_TAP not in t:
            t = [INPUT_TAP] + t
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
                     nets, is_series, random_init, taps, targets, table, results, s)


# -- identity and bookkeeping ------------------------------------------------------------------------------
def _versions() -> dict:
    import sklearn
    import torch

    import conceptchess

    return {"conceptchess": conceptchess.__version__, "numpy": np.__version__, "torch": torch.__version__,
            "scikit-learn": sklearn.__version__, "python": platform.python_version()}


def _torch_threads() -> int:
    import torch

    return torch.get_num_threads()


def _settings(plan: SweepPlan, control_nets: dict[str, NetInfo]) -> dict:
    r = plan.request
    labels = "library (computed from the positions)"
    if plan.labels_table is not None:
        from conceptchess.datasets import sha256_of

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
        "labels": labels,
        "split": plan.split_kind,
        "split_sizes": list(plan.split.sizes()),
        "categorical": "one-vs-rest (concept=category)",
        "probe": plan.settings.to_dict(),
    }


def run_key(dataset_sha: str, settings: dict) -> str:
    return hashlib.sha256(json.dumps({"dataset": dataset_sha, "settings": settings}, sort_keys=True).encode()).hexdigest()


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.=+-]", "_", name)


def _save_vector(path: Path, v: np.ndarray) -> None:
    with atomic_open(path, "wb") as f:
        np.save(f, v.astype(np.float32))


def _upsert_network(s, n: NetInfo) -> int:
    from sqlalchemy import select

    from conceptchess.store.models import Network

    row = s.execute(select(Network).where(Network.sha256 == n.sha256)).scalar_one_or_none()
    if row is None:
        row = Network(sha256=n.sha256, kind=n.kind, architecture=n.architecture, blocks=n.blocks, filters=n.filters,
                      run=n.run, step=n.step, path=str(n.path.resolve()))
        s.add(row)
        s.flush()
    return row.id


def _upsert_dataset(s, plan: SweepPlan) -> int:
    from sqlalchemy import select

    from conceptchess.store.models import Dataset

    row = s.execute(select(Dataset).where(Dataset.sha256 == plan.dataset_sha)).scalar_one_or_none()
    if row is None:
        made_by = str(plan.dataset_manifest.get("made_by", ""))
        source = "human" if "pgn" in made_by else "machine" if "selfplay" in made_by or "self-play" in made_by else None
        row = Dataset(sha256=plan.dataset_sha, path=str(plan.dataset.resolve()), source=source, positions=plan.dataset_size,
                      manifest=plan.dataset_manifest or None)
        s.add(row)
        s.flush()
    return row.id


def _upsert_concepts(s, targets: list[Target]) -> dict[str, int]:
    from sqlalchemy import select

    from conceptchess.concepts import CONCEPTS
    from conceptchess.store.models import Concept

    out = {}
    for name in dict.fromkeys(t.concept for t in targets):
        if name not in CONCEPTS:
            continue
        row = s.execute(select(Concept).where(Concept.name == name)).scalar_one_or_none()
        if row is None:
            c = CONCEPTS[name]
            row = Concept(name=name, definition=c.definition, type=c.type, frame=c.frame, family=c.family)
            s.add(row)
            s.flush()
        out[name] = row.id
    return out


# -- the sweep ----------------------------------------------------------------------------------------------
@dataclass
class _CellJob:
    """What a worker needs to probe one cell (picklable: the matrix is read in the worker)."""

    store: Path
    tap: str
    positions: int
    ids: list
    targets: list[Target]
    Y: np.ndarray
    split: Split
    settings: ProbeSettings
    seed: int


def _probe_cell(job: _CellJob) -> list[TargetResult]:
    X, shape = read_matrix(job.store, job.tap, job.positions, job.ids)
    return probe_matrix(X, shape, job.targets, job.Y, job.split, settings=job.settings, seed=job.seed)


#: Cells submitted beyond the workers' count: while the oldest cell runs (the input tap, say, several
#: times a block's cost) the other workers keep solving the next ones.
QUEUE_AHEAD = 8
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
        raise ConceptChessError(f"--jobs must be at least 1, not {jobs}")
    jobs = max(1, min(jobs, cells))
    return jobs, max(1, cores // jobs)


def _init_worker(threads: int, parent: int) -> None:
    import threading

    import torch

    torch.set_num_threads(threads)
    threading.Thread(target=_exit_with, args=(parent,), daemon=True, name="parent-watch").start()


def _exit_with(parent: int) -> None:
    """End this worker once the sweep's process is gone (killed with -9, its queues never close: each
    worker holds both ends), instead of solving cells nobody will write."""
    import time

    while os.getppid() == parent:
        time.sleep(0.5)
    os._exit(1)


def _worker_pool(jobs: int, threads: int):
    """Worker processes started fresh ("spawn"): forking a process whose OpenMP threads have run can hang."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    return ProcessPoolExecutor(max_workers=jobs, mp_context=multiprocessing.get_context("spawn"),
                               initializer=_init_worker, initargs=(threads, os.getpid()))


@dataclass
class _Cell:
    net: NetInfo
    tap: str
    network_ids: list[int]  # rows are written for each (the input tap: every network of the run)


def _labels(plan: SweepPlan, progress: Progress | None) -> np.ndarray:
    if plan.labels_table is not None:
        return target_values(plan.targets, plan.labels_table[2])
    concepts = list(dict.fromkeys(t.concept for t in plan.targets))
    cache = plan.results / "labels" / f"{plan.dataset_sha[:16]}-n{plan.positions}"

    def boards():
        from itertools import islice

        from conceptchess.concepts.labeling import check_board
        from conceptchess.datasets import iter_dataset

        out = []
        for spec in islice(iter_dataset(plan.dataset), plan.positions):
            where = f"{plan.dataset}: id={spec.id}"
            b = spec.board(where)
            check_board(b, where)
            out.append(b)
        return out

    values = library_labels(concepts, boards, cache, (lambda d, t: progress("labelling", d, t)) if progress else None)
    return target_values(plan.targets, values)


def run_sweep(plan: SweepPlan, db_url: str | None = None, progress: Progress | None = None, db=None) -> int:
    """Run (or complete) the sweep of ``plan``; returns the run id."""
    from sqlalchemy import select

    from conceptchess.store import Database
    from conceptchess.store.base import utcnow
    from conceptchess.store.probes import ProbeResult, ProbeRun, ProbeRunNetwork

    req = plan.request
    Y = _labels(plan, progress)
    # Control networks: the step-0 checkpoint, or one generated per architecture.
    control_nets: dict[str, NetInfo] = {}
    for arch, net in plan.random_init.items():
        if net is None:
            like = next(n for n in plan.networks if n.architecture == arch)
            net = random_init_network(like, req.seed, plan.results / "networks")
        control_nets[arch] = net
    settings = _settings(plan, control_nets)
    key = run_key(plan.dataset_sha, settings)
    db = db or Database(db_url)
    order: list[NetInfo] = []
    for n in control_nets.values():
        if n.role == "random-init":
            order.append(n)
    order += plan.networks
    jobs, threads = sweep_workers(req.jobs, 10**9, plan.positions)  # as configured; capped below by the cells to do
    # Recorded, not part of the key: the thread count changes only the order of floating-point sums.
    versions = {**_versions(), "cell_workers": jobs, "torch_threads_per_cell": threads if jobs > 1 else _torch_threads()}
    with db.begin() as s:
        dataset_id = _upsert_dataset(s, plan)
        net_ids = {n.sha256: _upsert_network(s, n) for n in order}
        concept_ids = _upsert_concepts(s, plan.targets)
        run = s.execute(select(ProbeRun).where(ProbeRun.key == key)).scalar_one_or_none()
        if run is None:
            run = ProbeRun(key=key, dataset_id=dataset_id, seed=req.seed, settings=settings, versions=versions,
                           results_dir=str(plan.results.resolve()), status="running")
            s.add(run)
            s.flush()
            for pos, n in enumerate(order):
                s.add(ProbeRunNetwork(run_id=run.id, network_id=net_ids[n.sha256], position=pos, role=n.role, label=n.label))
        run_id = run.id
    # What is there already (resume), and the controls it holds.
    with db.session() as s:
        rows = s.execute(select(ProbeResult.network_id, ProbeResult.tap, ProbeResult.concept, ProbeResult.score)
                         .where(ProbeResult.run_id == run_id)).all()
    done = {(r.network_id, r.tap, r.concept) for r in rows}
    by_id = {v: k for k, v in net_ids.items()}
    input_scores = {r.concept: r.score for r in rows if r.tap == INPUT_TAP}
    random_shas = {n.sha256 for n in control_nets.values()}
    random_scores = {(by_id[r.network_id], r.tap, r.concept): r.score for r in rows if by_id.get(r.network_id) in random_shas}
    # Cells in order: input first, then the random-init network(s), then the probed networks.
    taps = dict(plan.taps)
    for n in order:  # a generated control network has the taps of the networks it controls
        taps.setdefault(n.sha256, next(plan.taps[p.sha256] for p in plan.networks if p.architecture == n.architecture))
    cells: list[_Cell] = []
    if any(INPUT_TAP in taps[n.sha256] for n in order):
        cells.append(_Cell(order[0], INPUT_TAP, [net_ids[n.sha256] for n in order if INPUT_TAP in taps[n.sha256]]))
    for n in order:
        cells += [_Cell(n, tap, [net_ids[n.sha256]]) for tap in taps[n.sha256] if tap != INPUT_TAP]
    acts = Activations(plan.dataset, plan.dataset_sha, plan.dataset_size, plan.positions, plan.ids, req.pool, plan.results,
                       [Path(p) for p in req.stores])
    run_dir = plan.results / "runs" / str(run_id)
    arch_control = {a: n.sha256 for a, n in control_nets.items()}
    total = len(cells)

    def todo_of(cell: _Cell) -> list[int]:
        return [j for j, t in enumerate(plan.targets) if any((nid, cell.tap, t.name) not in done for nid in cell.network_ids)]

    # One extraction per network for every tap it still needs (a forward pass yields all taps at once).
    needs: dict[str, list[str]] = {}
    for cell in cells:
        if todo_of(cell):
            needs.setdefault(cell.net.sha256, []).append(cell.tap)
    ensured: set[str] = set()

    def write(i: int, cell: _Cell, results: list[TargetResult]) -> None:
        """Save a finished cell's probe vectors, then its rows in one transaction (cells are written in order)."""
        folder = run_dir / ("input" if cell.tap == INPUT_TAP else f"{cell.net.sha256[:16]}/{cell.tap}")
        paths = {}
        for r in results:
            if r.vector is not None:
                paths[r.target.name] = folder / f"{_safe(r.target.name)}.npy"
                _save_vector(paths[r.target.name], r.vector)
        with db.begin() as s:
            for nid in cell.network_ids:
                net_sha = by_id[nid]
                arch = next(n.architecture for n in order if n.sha256 == net_sha)
                is_control = net_sha in random_shas
                for r in results:
                    if (nid, cell.tap, r.target.name) in done:
                        continue
                    ctrl_in = r.score if cell.tap == INPUT_TAP else input_scores.get(r.target.name)
                    if cell.tap == INPUT_TAP:
                        ctrl_rand = r.score
                    elif is_control:
                        ctrl_rand = None
                    else:
                        ctrl_rand = random_scores.get((arch_control.get(arch), cell.tap, r.target.name))
                    s.add(_row(ProbeResult, run_id, nid, cell.tap, r, concept_ids.get(r.target.concept), paths.get(r.target.name),
                               ctrl_in if req.controls else None, ctrl_rand if req.controls else None))
        for r in results:
            for nid in cell.network_ids:
                done.add((nid, cell.tap, r.target.name))
            if cell.tap == INPUT_TAP:
                input_scores[r.target.name] = r.score
            if cell.net.sha256 in random_shas:
                random_scores[(cell.net.sha256, cell.tap, r.target.name)] = r.score
        if progress:
            progress("probing", i + 1, total)

    work = [(i, cell, todo_of(cell)) for i, cell in enumerate(cells)]
    work = [w for w in work if w[2]]
    jobs, threads = sweep_workers(req.jobs, len(work), plan.positions)  # fewer workers (more threads each) for few cells
    if progress:
        progress("probing", total - len(work), total)
    # Cells are probed in worker processes (``jobs`` > 1) while this process extracts the activations of
    # the next networks and writes finished cells in order, so a kill leaves whole cells only.
    pool = _worker_pool(jobs, threads) if jobs > 1 else None
    pending: deque = deque()
    try:
        for i, cell, todo in work:
            if cell.net.sha256 not in ensured:
                acts.ensure(cell.net, needs.get(cell.net.sha256, [cell.tap]),
                            (lambda d, t, name=cell.net.label: progress(f"extracting {name}", d, t)) if progress else None, req.threads)
                ensured.add(cell.net.sha256)
            job = _CellJob(acts.locate(cell.net.sha256, cell.tap), cell.tap, plan.positions, plan.ids,
                           [plan.targets[j] for j in todo], Y[:, todo], plan.split, plan.settings, req.seed)
            pending.append((i, cell, pool.submit(_probe_cell, job) if pool else _probe_cell(job)))
            # Write the cells finished so far (in order); wait only when too many are outstanding. A long
            # cell (the input tap) must not leave the other workers idle: they run ahead meanwhile.
            while pending and (not pool or pending[0][2].done() or len(pending) > jobs + QUEUE_AHEAD):
                j, c, res = pending.popleft()
                write(j, c, res.result() if pool else res)
        while pending:
            j, c, res = pending.popleft()
            write(j, c, res.result())
    finally:
        if pool:
            pool.shutdown(wait=True, cancel_futures=True)
    with db.begin() as s:
        run = s.get(ProbeRun, run_id)
        run.status, run.finished_at = "complete", utcnow()
    if progress:
        progress("probing", total, total)
    return run_id


def _row(model, run_id: int, network_id: int, tap: str, r: TargetResult, concept_id: int | None, path: Path | None,
         ctrl_in: float | None, ctrl_rand: float | None):
    sel = None if r.score is None or r.shuffled is None else r.score - r.shuffled
    n = r.sizes or (None, None, None)
    return model(run_id=run_id, network_id=network_id, tap=tap, concept=r.target.name, concept_id=concept_id,
                 metric=r.target.metric, status=r.status, reason=r.reason, score=r.score, ci_low=r.ci_low, ci_high=r.ci_high,
                 control_input=None if r.score is None else ctrl_in, control_random=None if r.score is None else ctrl_rand,
                 control_shuffled=r.shuffled, selectivity=sel, nonzero=r.nonzero, features=r.features, alpha=r.alpha,
                 intercept=r.intercept, vector_path=str(path.resolve()) if path else None, n_train=n[0], n_val=n[1], n_test=n[2],
                 details=r.details or None)
