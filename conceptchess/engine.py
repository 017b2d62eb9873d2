"""Inference through ONNX Runtime: batches of positions → policy over legal moves, WDL/value,
moves-left and any block taps. CUDA when the installed onnxruntime offers it, CPU otherwise.

:func:`evaluate_file` is the batch mode: a JSONL positions file in, a JSONL file of evaluations out.

>>> eng = Engine("maia-1900.pb.gz")                          # doctest: +SKIP
>>> ev = eng.evaluate_boards([chess.Board()])[0]             # doctest: +SKIP
>>> ev.top(3), ev.wdl, eng.provider                          # doctest: +SKIP
>>> evaluate_file("maia-1900.pb.gz", "positions.jsonl", "evaluations.jsonl")   # doctest: +SKIP
EvaluatedFile(path=PosixPath('evaluations.jsonl'), positions=1000, provider='CPUExecutionProvider')
"""

from __future__ import annotations

import json
import os
from collections import deque
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import chess
import numpy as np

from conceptchess.errors import ConceptChessError
from conceptchess.files import atomic_open
from conceptchess.lc0.encoder import Histories, board_histories, encode
from conceptchess.lc0.legal import legal_moves_batch
from conceptchess.networks import Network, open_network
from conceptchess.positions import PositionSpec, histories_of, read_positions_jsonl
from conceptchess.progress import Progress
from conceptchess.taps import check


@dataclass
class Evaluation:
    """The network's view of one position."""

    moves: list[chess.Move]  # legal moves in lc0 policy-index order, the order of logits/policy
    logits: np.ndarray  # raw policy logits of the legal moves
    policy: np.ndarray  # softmax over the legal moves
    wdl: np.ndarray | None  # (3,) win/draw/loss for the side to move, None for a tanh value head
    value: float  # expected score in [-1, 1] for the side to move (W - L, or the tanh value)
    mlh: float | None
    taps: dict[str, np.ndarray] = field(default_factory=dict)

    def top(self, k: int = 5) -> list[tuple[str, float]]:
        order = np.argsort(-self.policy, kind="stable")[:k]
        return [(self.moves[i].uci(), float(self.policy[i])) for i in order]

    def best_move(self) -> chess.Move | None:
        return self.moves[int(np.argmax(self.policy))] if self.moves else None

    def to_json(self, id_) -> dict:
        return {
            "id": id_,
            "logits": {m.uci(): float(x) for m, x in zip(self.moves, self.logits)},
            "policy": {m.uci(): float(x) for m, x in zip(self.moves, self.policy)},
            "wdl": None if self.wdl is None else [float(x) for x in self.wdl],
            "value": float(self.value),
            "mlh": None if self.mlh is None else float(self.mlh),
        }


def softmax_segments(logits: np.ndarray, pos: np.ndarray, starts: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Softmax (in float64, returned as float32) of each position's run of ``logits``; ``pos`` names
    each entry's position, ``starts``/``counts`` each position's run."""
    if not len(logits):
        return logits.astype(np.float32)
    x = logits.astype(np.float64)
    full = counts > 0  # reduceat cannot see empty runs (mate, stalemate)
    top = np.zeros(len(counts))
    top[full] = np.maximum.reduceat(x, starts[full])
    e = np.exp(x - top[pos])
    total = np.ones(len(counts))
    total[full] = np.add.reduceat(e, starts[full])
    return (e / total[pos]).astype(np.float32)


def available_providers() -> list[str]:
    import onnxruntime as ort  # lazy: only running a network needs it, and it takes ~0.4 s to import

    return ort.get_available_providers()


class Engine:
    """One ONNX Runtime session over a network, with taps on request.

    ``device``: ``'auto'`` (CUDA if offered, else CPU), ``'cuda'`` or ``'cpu'``. ``provider`` tells
    which execution provider actually runs the graph.
    """

    LOOKAHEAD = 2  # tasks queued for ONNX Runtime ahead of the one being finished
    TASK_POSITIONS = 32  # positions per pipelined task when batches are smaller (see evaluate)

    def __init__(self, network: str | os.PathLike | Network, *, device: str = "auto", batch_size: int = 256,
                 threads: int | None = None, tap_dtype: str = "float32"):
        import onnxruntime as ort  # lazy: see available_providers

        self.network = network if isinstance(network, Network) else open_network(network)
        if tap_dtype not in ("float32", "float16"):
            raise ConceptChessError(f"tap dtype must be float32 or float16, not {tap_dtype!r}")
        self.tap_dtype = np.dtype(tap_dtype)
        self.batch_size = int(batch_size)
        if self.batch_size < 1:
            raise ConceptChessError("batch size must be at least 1")
        offered = ort.get_available_providers()
        if device == "cpu":
            providers = ["CPUExecutionProvider"]
        elif device in ("cuda", "auto"):
            if "CUDAExecutionProvider" in offered:
                providers = ["CUDAExecutionProvider", "CPUExecutionProvider"]
            elif device == "cuda":
                raise ConceptChessError(f"CUDA requested but this onnxruntime offers only {', '.join(offered)} (pip install 'conceptchess[gpu]')")
            else:
                providers = ["CPUExecutionProvider"]
        else:
            raise ConceptChessError(f"unknown device {device!r}; use auto, cuda or cpu")
        opts = ort.SessionOptions()
        if threads:
            opts.intra_op_num_threads = int(threads)
            opts.inter_op_num_threads = 1
        opts.log_severity_level = 3
        self.session = ort.InferenceSession(self.network.onnx_model.SerializeToString(), sess_options=opts, providers=providers)
        self.provider = self.session.get_providers()[0]
        self.input_name = self.session.get_inputs()[0].name
        outputs = {o.name for o in self.session.get_outputs()}
        self.heads = [h for h in ("policy", "wdl", "value", "mlh") if h in outputs]
        self.taps = [t for t in self.network.taps if t in outputs]
        self._pool: ThreadPoolExecutor | None = None

    # -- raw planes ---------------------------------------------------------------------------
    def check_taps(self, taps) -> list[str]:
        """``taps`` as a list, once each is known to be a tap of this network."""
        taps = list(taps or [])
        check(taps, self.taps, "this network")
        return taps

    def run_planes(self, planes: np.ndarray, taps=()) -> dict[str, np.ndarray]:
        """Run the graph on [N, 112, 8, 8] planes in batches; heads plus the requested taps."""
        taps = self.check_taps(taps)
        names = self.heads + taps
        parts: dict[str, list[np.ndarray]] = {n: [] for n in names}
        for s in range(0, len(planes), self.batch_size):
            res = self.session.run(names, {self.input_name: np.ascontiguousarray(planes[s : s + self.batch_size], dtype=np.float32)})
            for n, r in zip(names, res):
                parts[n].append(r.astype(self.tap_dtype, copy=False) if n in taps else r)
        out = {n: (v[0] if len(v) == 1 else np.concatenate(v)) if v else np.zeros((0,)) for n, v in parts.items()}
        if "value" in out:
            out["value"] = out["value"].reshape(-1)
        if "mlh" in out:
            out["mlh"] = out["mlh"].reshape(-1)
        return out

    # -- positions ------------------------------------------------------------------------------
    def evaluate(self, histories: Histories, boards: list[chess.Board], taps=()) -> list[Evaluation]:
        """Evaluate positions given as encoder histories plus their boards (for legal moves).

        Work is pipelined in tasks of several batches (about ``TASK_POSITIONS`` positions; one batch
        when batches are larger): ONNX Runtime (which releases the GIL) runs task k's batches one after
        another in a worker thread while this thread encodes the next tasks, lists their legal moves
        (batched, :func:`~conceptchess.lc0.legal.legal_moves_batch`) and finishes task k-1 (softmax
        over the legal moves of the whole task at once). Grouping small batches into a task hands work
        between the threads once per task instead of once per batch: at batch 1 a hand-off costs
        ~10–20 % of a network call. Up to ``LOOKAHEAD`` tasks wait in the worker's queue, so that a
        slow moment of this thread does not leave ONNX Runtime idle. The worker does nothing but run
        the graph; everything else, joining the batches' outputs included, happens here.

        Each :class:`Evaluation` lists the legal moves in lc0 policy-index order.
        """
        taps = self.check_taps(taps)
        if len(histories) != len(boards):
            raise ConceptChessError(f"{len(histories)} histories but {len(boards)} boards")
        names = self.heads + taps
        bs = self.batch_size
        step = bs * max(1, self.TASK_POSITIONS // bs)
        out: list[Evaluation] = []
        pending: deque = deque()
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ort")
        pool = self._pool
        for s in range(0, len(boards), step):
            future = pool.submit(self._run_task, encode(histories[s : s + step]), bs, names, taps)
            pending.append((future, legal_moves_batch(boards[s : s + step])))
            if len(pending) > self.LOOKAHEAD:
                out += self._finish(*pending.popleft(), taps)
        while pending:
            out += self._finish(*pending.popleft(), taps)
        return out

    def _run_task(self, planes: np.ndarray, bs: int, names: list[str], taps: list[str]) -> list[dict[str, np.ndarray]]:
        """Run ``planes`` through the graph in batches of ``bs`` (one task of :meth:`evaluate`).

        The batches' outputs come back as they are: joining them allocates fresh memory whose page
        faults (~1–3 ms for a task of 32 positions with 6 taps) would stall this thread, the one that
        runs ONNX Runtime, so the thread that finishes the task joins what it needs.
        """
        return [self._run_batch(planes[s : s + bs], names, taps) for s in range(0, len(planes), bs)]

    def _run_batch(self, planes: np.ndarray, names: list[str], taps: list[str]) -> dict[str, np.ndarray]:
        res = dict(zip(names, self.session.run(names, {self.input_name: planes})))
        for t in taps:
            res[t] = res[t].astype(self.tap_dtype, copy=False)
        return res

    def _finish(self, future, legal, taps) -> list[Evaluation]:
        parts = future.result()  # one dict of outputs per batch; the task has at least one position
        n = len(legal)
        bs = len(parts[0]["policy"])
        counts = np.fromiter((len(idx) for _, idx in legal), np.int64, n)
        ends = np.cumsum(counts)
        pos = np.repeat(np.arange(n), counts)
        raw = {h: parts[0][h] if len(parts) == 1 else np.concatenate([p[h] for p in parts]) for h in self.heads}
        logits = raw["policy"][pos, np.concatenate([idx for _, idx in legal])]
        policy = softmax_segments(logits, pos, ends - counts, counts)
        if "wdl" in raw:
            wdl = raw["wdl"]
            values = (wdl[:, 0] - wdl[:, 2]).tolist()
        else:
            wdl = None
            values = raw["value"].reshape(-1).tolist()
        mlh = raw["mlh"].reshape(-1).tolist() if "mlh" in raw else [None] * n
        evs = []
        for i, ((moves, _), a, b) in enumerate(zip(legal, (ends - counts).tolist(), ends.tolist())):
            part = parts[i // bs]
            evs.append(Evaluation(moves, logits[a:b], policy[a:b], None if wdl is None else wdl[i], values[i], mlh[i],
                                  {t: part[t][i % bs] for t in taps}))
        return evs

    def evaluate_boards(self, boards: list[chess.Board], taps=()) -> list[Evaluation]:
        """Evaluate ``chess.Board`` objects, each with its move stack as history."""
        return self.evaluate(board_histories(boards), boards, taps)


# -- batch mode: a JSONL file of positions ----------------------------------------------------------
@dataclass(frozen=True)
class EvaluatedFile:
    """What :func:`evaluate_file` wrote: one JSON line per position at ``path``, evaluated on ``provider``."""

    path: Path
    positions: int
    provider: str


def evaluate_file(network: str | os.PathLike | Network, positions: str | os.PathLike, output: str | os.PathLike, *,
                  batch_size: int = 256, threads: int | None = None, device: str = "auto",
                  progress: Progress | None = None) -> EvaluatedFile:
    """Evaluate every position of a JSONL positions file and write one line per position to ``output``
    (atomically): ``{"id", "logits", "policy", "wdl", "value", "mlh"}`` (:meth:`Evaluation.to_json`).

    Every line is parsed, and the first chunk replayed, before the network is loaded; then ONNX Runtime
    evaluates chunk after chunk in a thread while this one replays the next chunks and writes the results
    (:func:`_evaluations`). ``progress(done, total)`` counts the positions written.
    """
    specs = list(read_positions_jsonl(positions))  # every line parsed before anything is evaluated
    # chunks of one engine task: the first is replayed before the network is loaded, the last one's
    # results are all that is written once ONNX Runtime is done (between two Engine.evaluate calls
    # ONNX Runtime waits only for the encoding of the next chunk, ~1 ms)
    step = max(batch_size, Engine.TASK_POSITIONS)
    chunks = [specs[s : s + step] for s in range(0, len(specs), step)]
    first = histories_of(chunks[0] if chunks else [])
    engine = Engine(network, batch_size=batch_size, threads=threads, device=device)
    done = 0
    with atomic_open(output, "w") as f:
        if progress is not None:
            progress(0, len(specs))
        for chunk, evs in zip(chunks, _evaluations(engine, first, chunks[1:])):
            f.write("".join(json.dumps(ev.to_json(spec.id)) + "\n" for spec, ev in zip(chunk, evs)))
            done += len(evs)
            if progress is not None:
                progress(done, len(specs))
    return EvaluatedFile(Path(output), len(specs), engine.provider)


def _evaluations(engine: Engine, first: tuple[Histories, list[chess.Board]],
                 rest: list[list[PositionSpec]]) -> Iterator[list[Evaluation]]:
    """Evaluations of chunks of positions, in order: ``first`` as histories and boards, ``rest`` as
    position specs. ONNX Runtime works through the chunks in a thread while this one replays the next
    ones (:func:`~conceptchess.positions.histories_of`: an error there stops everything, found about as
    soon as replaying everything first would find it) and the caller writes the results.
    """
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="evaluate")
    try:
        pending = deque([pool.submit(engine.evaluate, *first)])
        for chunk in rest:
            pending.append(pool.submit(engine.evaluate, *histories_of(chunk)))
        while pending:
            yield pending.popleft().result()
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
