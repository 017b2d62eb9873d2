"""A few single-threaded Stockfish processes (python-chess UCI) shared by worker threads.

Each process runs with ``Threads=1``; ``workers`` processes keep that many cores busy. Work items are
handed out in order and results come back in order.

>>> with StockfishPool(workers=2) as pool:                      # doctest: +SKIP
...     scores = list(pool.map(lambda sf, b: sf.analyse(b, chess.engine.Limit(nodes=10_000))["score"], boards))
"""

from __future__ import annotations

import queue
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

import chess.engine

from conceptchess.concepts.stockfish import ENV_VAR, find_stockfish
from conceptchess.errors import ConceptChessError

T = TypeVar("T")
R = TypeVar("R")
ENGINE_ERRORS = (chess.engine.EngineError, chess.engine.EngineTerminatedError)


def stockfish_path(path: str | None = None) -> str:
    """The Stockfish binary: ``path``, else $CONCEPTCHESS_STOCKFISH, ``stockfish`` on PATH, /usr/games/stockfish."""
    if path:
        return path
    found = find_stockfish()
    if found is None:
        raise ConceptChessError(f"puzzle verification needs Stockfish, not found (set ${ENV_VAR} or apt-get install stockfish)")
    return found


class StockfishPool:
    """``workers`` Stockfish processes, each ``Threads=1`` and ``Hash=hash_mb``."""

    def __init__(self, workers: int = 2, path: str | None = None, hash_mb: int = 16):
        if workers < 1:
            raise ConceptChessError("need at least one Stockfish worker")
        self.path = stockfish_path(path)
        self.hash_mb = int(hash_mb)
        self.engines: list[chess.engine.SimpleEngine] = []
        try:
            for _ in range(workers):
                sf = chess.engine.SimpleEngine.popen_uci(self.path)
                sf.configure({"Threads": 1, "Hash": self.hash_mb})
                self.engines.append(sf)
        except (OSError, *ENGINE_ERRORS) as e:
            self.close()
            raise ConceptChessError(f"cannot start Stockfish at {self.path} ({type(e).__name__}: {e})") from None
        self.name = self.engines[0].id.get("name", "Stockfish")
        self._free: queue.Queue = queue.Queue()
        for sf in self.engines:
            self._free.put(sf)

    @property
    def workers(self) -> int:
        return len(self.engines)

    def settings(self) -> dict:
        return {"engine": self.name, "threads": 1, "hash_mb": self.hash_mb, "processes": self.workers}

    def _call(self, fn: Callable[[chess.engine.SimpleEngine, T], R], item: T) -> R:
        sf = self._free.get()
        try:
            return fn(sf, item)
        except ENGINE_ERRORS as e:
            raise ConceptChessError(f"Stockfish failed ({type(e).__name__}: {e})") from None
        finally:
            self._free.put(sf)

    def map(self, fn: Callable[[chess.engine.SimpleEngine, T], R], items: Iterable[T]) -> Iterator[R]:
        """``fn(engine, item)`` for every item, ``workers`` at a time; results in the items' order."""
        items = list(items)
        if self.workers == 1:
            for it in items:
                yield self._call(fn, it)
            return
        with ThreadPoolExecutor(self.workers, thread_name_prefix="stockfish") as ex:
            futures = [ex.submit(self._call, fn, it) for it in items]
            try:
                for f in futures:
                    yield f.result()
            finally:
                for f in futures:
                    f.cancel()

    def close(self) -> None:
        for sf in self.engines:
            try:
                sf.quit()
            except Exception:  # noqa: BLE001 - already gone
                pass
        self.engines = []

    def __enter__(self) -> "StockfishPool":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
