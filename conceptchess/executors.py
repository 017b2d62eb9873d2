"""Executors: run the units of a long job (probe cells, later shards and roots) here or in worker processes.

A long job is planner → executor → writer (see DESIGN.md, "Seams"): the planner lists the units left to
do, an executor runs them, and the writer — in this process only — stores each result. An executor's
:meth:`~Executor.map` takes ``(key, argument)`` pairs lazily and yields ``(key, fn(argument))`` in the
order the pairs came, so the writer can write whole units in order and a killed job resumes cleanly.
The key stays in this process; only ``fn`` and the argument travel (they must pickle for
:class:`ProcessExecutor`).

- :class:`InlineExecutor` runs each unit here, when it is pulled.
- :class:`ProcessExecutor` runs them in fresh worker processes, up to ``workers + ahead`` at a time,
  and yields each as soon as it and all before it are done. The next pair is pulled (and so prepared
  by the caller's generator, e.g. extracting activations) while the workers are busy.
- :class:`RayExecutor` runs them as tasks on a Ray cluster (``pip install 'conceptchess[ray]'``), the same
  way: ``workers + ahead`` outstanding, results back to this process in order (arguments and results travel
  through Ray's object store, so the nodes need no shared filesystem). A task whose node dies is retried
  elsewhere (``retries``), so a job loses no unit and, the writer being here, stores none twice.

>>> with make_executor("inline") as ex:
...     list(ex.map(abs, [("a", -1), ("b", 2)]))
[('a', 1), ('b', 2)]
"""

from __future__ import annotations

import multiprocessing
import os
import socket
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from typing import Any, Protocol, TypeVar

from conceptchess.errors import ConceptChessError

K = TypeVar("K")
A = TypeVar("A")
R = TypeVar("R")

EXECUTORS = ("inline", "process", "ray")
RAY_EXTRA = "pip install 'conceptchess[ray]'"
#: Units submitted beyond the workers' count: while the oldest unit runs (a sweep's input tap, say,
#: several times a block's cost) the other workers keep solving the next ones.
AHEAD = 8


class Executor(Protocol):
    """Runs ``fn`` over ``(key, argument)`` pairs; a context manager that releases its workers on exit."""

    workers: int

    def map(self, fn: Callable[[A], R], items: Iterable[tuple[K, A]]) -> Iterator[tuple[K, R]]: ...

    def __enter__(self) -> Executor: ...

    def __exit__(self, *exc) -> None: ...


class InlineExecutor:
    """Each unit in this process, as it is pulled (with this process's torch threads)."""

    workers = 1

    def map(self, fn: Callable[[A], R], items: Iterable[tuple[K, A]]) -> Iterator[tuple[K, R]]:
        for key, arg in items:
            yield key, fn(arg)

    def __enter__(self) -> InlineExecutor:
        return self

    def __exit__(self, *exc) -> None:
        pass


class ProcessExecutor:
    """Units in ``workers`` fresh processes with ``threads`` torch threads each; results in submission order.

    Workers are started with "spawn" (forking a process whose OpenMP threads have run can hang) and end
    themselves when this process is gone (killed with -9, their queues never close), instead of
    solving units nobody will write. On exit, units not yet started are cancelled.
    """

    def __init__(self, workers: int, threads: int, ahead: int = AHEAD):
        self.workers, self.threads, self.ahead = workers, threads, ahead
        self._pool = ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn"),
                                         initializer=_init_worker, initargs=(threads, os.getpid()))

    def map(self, fn: Callable[[A], R], items: Iterable[tuple[K, A]]) -> Iterator[tuple[K, R]]:
        pending: deque[tuple[Any, Any]] = deque()
        for key, arg in items:
            pending.append((key, self._pool.submit(fn, arg)))
            # Yield the units finished so far (in order); wait only when too many are outstanding. A long
            # unit must not leave the other workers idle: they run ahead meanwhile.
            while pending and (pending[0][1].done() or len(pending) > self.workers + self.ahead):
                key0, future = pending.popleft()
                yield key0, future.result()
        while pending:
            key0, future = pending.popleft()
            yield key0, future.result()

    def __enter__(self) -> ProcessExecutor:
        return self

    def __exit__(self, *exc) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)


class RayExecutor:
    """Units as Ray tasks of ``threads`` CPUs each on the cluster at ``address`` (``"auto"``: the one this
    machine belongs to; ``None``: a local one started here), ``workers + ahead`` outstanding; results in
    submission order. A task lost with its node is retried up to ``retries`` times. Ray is imported lazily:
    it is an optional extra, and without it asking for this executor is a one-line error naming the extra."""

    def __init__(self, workers: int, threads: int, address: str | None = None, ahead: int = AHEAD, retries: int = 3):
        try:
            import ray  # lazy: an optional extra, and a second to import
        except ImportError:
            raise ConceptChessError(f"the ray executor needs Ray: {RAY_EXTRA}") from None
        self.workers, self.threads, self.ahead, self.retries = workers, threads, ahead, retries
        self._ray, self._started = ray, False
        if not ray.is_initialized():
            _check_reachable(address)
            try:
                ray.init(address=address, include_dashboard=False, log_to_driver=False, configure_logging=False)
            except (ConnectionError, ValueError, RuntimeError) as e:
                first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
                raise ConceptChessError(f"cannot reach the Ray cluster at {address or 'a new local cluster'}: {first}") from None
            self._started = True
        self._task = ray.remote(num_cpus=threads, max_retries=retries, retry_exceptions=False)(_ray_unit)

    def map(self, fn: Callable[[A], R], items: Iterable[tuple[K, A]]) -> Iterator[tuple[K, R]]:
        ray = self._ray
        pending: deque[tuple[Any, Any]] = deque()
        fn_ref = ray.put(fn)
        for key, arg in items:
            pending.append((key, self._task.remote(fn_ref, arg, self.threads)))
            while pending and (len(pending) > self.workers + self.ahead or not ray.wait([pending[0][1]], timeout=0)[1]):
                key0, ref = pending.popleft()
                yield key0, ray.get(ref)
        while pending:
            key0, ref = pending.popleft()
            yield key0, ray.get(ref)

    def __enter__(self) -> RayExecutor:
        return self

    def __exit__(self, *exc) -> None:
        if self._started:
            self._ray.shutdown()


def check_executor(name: str | None, address: str | None = None) -> None:
    """Refuse, before a job writes anything, an unknown executor, the ray executor without Ray installed, or a
    Ray address that accepts no connection."""
    if name is not None and name not in EXECUTORS:
        raise ConceptChessError(f"unknown executor {name!r}; use {' or '.join(EXECUTORS)}")
    if name == "ray":
        try:
            import ray  # noqa: F401  lazy: an optional extra
        except ImportError:
            raise ConceptChessError(f"the ray executor needs Ray: {RAY_EXTRA}") from None
        _check_reachable(address)
    elif address is not None:
        raise ConceptChessError(f"a Ray address ({address}) goes with the ray executor, not {name or 'the default one'}")


def _check_reachable(address: str | None, timeout: float = 3.0) -> None:
    """A HOST:PORT address must accept a connection: Ray itself retries an unreachable one for minutes."""
    if not address or address == "auto" or "://" in address or ":" not in address:
        return
    host, _, port = address.rpartition(":")
    try:
        socket.create_connection((host, int(port)), timeout=timeout).close()
    except (OSError, ValueError) as e:
        raise ConceptChessError(f"cannot reach the Ray cluster at {address}: {e.strerror or e}") from None


def _ray_unit(fn, arg, threads: int):
    import torch  # lazy: a Ray worker process solves with torch; its thread count follows the task's CPUs

    torch.set_num_threads(threads)
    return fn(arg)


def make_executor(name: str = "inline", workers: int = 1, threads: int = 1,
                  address: str | None = None) -> InlineExecutor | ProcessExecutor | RayExecutor:
    """``"inline"``, ``"process"`` (``workers`` processes of ``threads`` torch threads each) or ``"ray"``
    (tasks on the Ray cluster at ``address``)."""
    if name == "inline":
        return InlineExecutor()
    if name == "process":
        return ProcessExecutor(workers, threads)
    if name == "ray":
        return RayExecutor(workers, threads, address)
    raise ConceptChessError(f"unknown executor {name!r}; use {' or '.join(EXECUTORS)}")


def _init_worker(threads: int, parent: int) -> None:
    import torch  # lazy: only a worker needs it (its units solve with torch; the thread count is set once per worker)

    torch.set_num_threads(threads)
    threading.Thread(target=_exit_with, args=(parent,), daemon=True, name="parent-watch").start()


def _exit_with(parent: int) -> None:
    """End this worker once the parent process is gone."""
    while os.getppid() == parent:
        time.sleep(0.5)
    os._exit(1)
