"""Engine labels: Stockfish's MultiPV scores and WDL for every position of a dataset, and the training
targets made from them (AlphaZero-style targets without self-play).

:func:`label_engine_dataset` runs Stockfish 15.1 (``UCI_ShowWDL``, a node limit, ``MultiPV`` K) on
every position of a positions dataset, in parallel over Stockfish processes, and writes a copy of the
dataset whose records carry the label under ``engine``::

    "engine": {"lines": [["e2e4", 31, null], ["d2d4", 25, null], ...],   # move, cp, mate (side to move)
               "wdl": [212, 701, 87], "depth": 9, "nodes": 2011}         # Stockfish's WDL model, permille

``nodes`` is what Stockfish searched: the label is its last *completed* iteration (a node limit
stops it inside one), and a position where no iteration completes within the limit is searched again
with twice the nodes, up to 64×. Positions without a legal move get ``"engine": null``. Stockfish sees each position with its move
history (``position … moves …``), so repetitions count as they do in the game. The job is resumable:
records go to ``<output>.labelling/`` chunk by chunk and the folder is renamed to ``output`` at the end;
a killed run continues from its last whole chunk when started again with the same input and settings.

Targets (:func:`policy_target`, :func:`wdl_target`): the policy is a softmax of the lines' win chances
over a temperature, with a floor of probability spread uniformly over every legal move (the moves
Stockfish did not rank get only the floor); the WDL target is Stockfish's own WDL of its best line.
Win chance of a centipawn score: Lichess's logistic ``1 / (1 + exp(-0.00368208 · cp))``. Mates are
ranked beyond every centipawn score and by distance: mate in n scores ``1 + 0.25 / n``, being mated in
n scores ``-0.25 / n``, so mate in one is the clear target wherever it exists.

>>> round(win_chance(0, None), 3), round(win_chance(300, None), 3), win_chance(None, 1), win_chance(None, -2)
(0.5, 0.752, 1.25, -0.125)
"""

from __future__ import annotations

import asyncio
import json
import math
import multiprocessing
import os
import shutil
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import chess
import chess.engine
import numpy as np

from conceptchess.concepts.stockfish import require_stockfish
from conceptchess.datasets import MANIFEST_FILE, POSITIONS_FILE, dataset_sha256, iter_dataset, read_manifest
from conceptchess.errors import ArgumentError, ConceptChessError
from conceptchess.files import atomic_write_text, resume_folder
from conceptchess.lc0.policy_map import move_to_index
from conceptchess.positions import PositionSpec, boards_of
from conceptchess.progress import Progress
from conceptchess.provenance import sha256_of, software_versions

LABEL_KEY = "engine"
WIN_CHANCE_SCALE = 0.00368208  # Lichess's win-chance logistic, per centipawn
MATE_BONUS = 0.25
MAX_NODES_FACTOR = 64  # a position whose search completes no iteration is searched again with 2×, 4×… the nodes, up to this
CHUNK = 64  # positions per task of a Stockfish worker (and per resumable append)
STATE_FILE = "state.json"


@dataclass(frozen=True)
class LabelSettings:
    """How Stockfish labels each position."""

    nodes: int = 3000  # the default series was labelled at 3,000 nodes, MultiPV 5 (engines/README.md)
    multipv: int = 5
    hash_mb: int = 16
    workers: int = max(1, os.cpu_count() or 1)

    def check(self) -> None:
        for name, value, least in (("nodes", self.nodes, 1), ("multipv", self.multipv, 1), ("hash_mb", self.hash_mb, 1),
                                   ("workers", self.workers, 1)):
            if value < least:
                raise ArgumentError(f"{{{name}}} must be at least {least}, got {value}", **{name: name})


@dataclass(frozen=True)
class TargetSettings:
    """How engine labels become training targets."""

    temperature: float = 0.03  # in win-chance units: a move 0.03 worse gets e^-1 of the best move's weight
    floor: float = 0.02  # probability spread uniformly over all legal moves

    def check(self) -> None:
        if not self.temperature > 0:
            raise ArgumentError(f"{{temperature}} must be positive, got {self.temperature}", temperature="temperature")
        if not 0 <= self.floor < 1:
            raise ArgumentError(f"{{floor}} must be in [0, 1), got {self.floor}", floor="floor")


# ------------------------------------------------------------------------------------------ targets

def win_chance(cp: int | None, mate: int | None) -> float:
    """The score a policy target ranks moves by (module docstring), from the side to move's view."""
    if mate is not None:
        if mate == 0:  # mated already (never in a line Stockfish plays)
            return -MATE_BONUS
        return 1 + MATE_BONUS / mate if mate > 0 else MATE_BONUS / mate
    return 1.0 / (1.0 + math.exp(-WIN_CHANCE_SCALE * cp))


def check_label(label, board: chess.Board, where: str) -> None:
    """A one-line :class:`ConceptChessError` unless ``label`` is a well-formed engine label of ``board``."""
    def bad(why: str) -> ConceptChessError:
        return ConceptChessError(f"{where}: malformed engine label ({why})")

    if not isinstance(label, dict):
        raise bad(f"expected an object, got {type(label).__name__}")
    lines, wdl = label.get("lines"), label.get("wdl")
    if not isinstance(lines, list) or not lines:
        raise bad("\"lines\" must be a non-empty list")
    if not (isinstance(wdl, list) and len(wdl) == 3 and all(isinstance(x, int | float) and x >= 0 for x in wdl)
            and sum(wdl) > 0):
        raise bad(f"\"wdl\" must be three non-negative numbers, got {wdl!r}")
    seen = set()
    for line in lines:
        if not (isinstance(line, list) and len(line) == 3 and isinstance(line[0], str)):
            raise bad(f"a line must be [move, cp, mate], got {line!r}")
        uci, cp, mate = line
        try:
            move = chess.Move.from_uci(uci)
        except (chess.InvalidMoveError, ValueError):
            raise bad(f"{uci!r} is not a UCI move") from None
        if move not in board.legal_moves:
            raise bad(f"{uci} is not legal in {board.fen()}")
        if (cp is None) == (mate is None) or not isinstance(cp if cp is not None else mate, int):
            raise bad(f"line {uci} needs exactly one of an integer cp or mate")
        if uci in seen:
            raise bad(f"move {uci} appears twice")
        seen.add(uci)


def _line_weights(label: dict, settings: TargetSettings) -> np.ndarray:
    """The probability of each analysed line above the floor: a softmax of win chances, summing to 1 − floor."""
    scores = np.array([win_chance(cp, mate) for _, cp, mate in label["lines"]])
    w = np.exp((scores - scores.max()) / settings.temperature)
    return w * (1 - settings.floor) / w.sum()


def policy_target(label: dict, board: chess.Board, settings: TargetSettings = TargetSettings()) -> dict[str, float]:
    """Target probability of every legal move (UCI → p), summing to 1.

    >>> b = chess.Board("6k1/5ppp/8/8/8/8/5PPP/R5K1 w - - 0 1")
    >>> p = policy_target({"lines": [["a1a8", None, 1], ["g1f1", 0, None]], "wdl": [1000, 0, 0]}, b)
    >>> max(p, key=p.get), round(sum(p.values()), 6), p["a1a8"] > 0.97
    ('a1a8', 1.0, True)
    """
    legal = [m.uci() for m in board.legal_moves]
    w = _line_weights(label, settings)
    out = dict.fromkeys(legal, settings.floor / len(legal))
    for (uci, _, _), p in zip(label["lines"], w, strict=True):
        out[uci] += float(p)
    return out


def wdl_target(label: dict) -> tuple[float, float, float]:
    """Stockfish's win / draw / loss for the side to move, as probabilities."""
    w, d, loss = (float(x) for x in label["wdl"])
    s = w + d + loss
    return w / s, d / s, loss / s


def sparse_policy_target(label: dict, board: chess.Board, settings: TargetSettings) -> tuple[list[int], list[float], float]:
    """:func:`policy_target` in lc0's policy index space, sparsely: (indices of the analysed moves,
    their probability on top of the floor, the floor's share per legal move)."""
    w = _line_weights(label, settings)
    idx = []
    for uci, _, _ in label["lines"]:
        m = chess.Move.from_uci(uci)
        idx.append(move_to_index(m, board.turn, board.is_castling(m)))
    return idx, [float(x) for x in w], settings.floor / board.legal_moves.count()


# ------------------------------------------------------------------------------------------ labelling

class Labeller:
    """One Stockfish process labelling positions (``UCI_ShowWDL``, one thread, a node limit, MultiPV).

    It speaks to Stockfish through python-chess's asyncio API on its own event loop: the dozens of
    ``info`` lines a search prints are read in this thread, not handed over one by one from the
    background thread of ``SimpleEngine`` (which costs more than the search at a few thousand nodes).
    """

    def __init__(self, path: str, settings: LabelSettings):
        self.settings = settings
        self.loop = asyncio.new_event_loop()
        self.transport, self.engine = self.loop.run_until_complete(chess.engine.popen_uci(path))
        self.loop.run_until_complete(self.engine.configure({"Threads": 1, "Hash": settings.hash_mb, "UCI_ShowWDL": True}))

    def label(self, boards: list[chess.Board]) -> list[dict | None]:
        """Labels of ``boards`` (move stacks are their histories), analysed as one game: the hash is
        cleared before the first, so a list labels the same whatever was analysed before it."""
        return self.loop.run_until_complete(self._label(boards))

    async def _label(self, boards: list[chess.Board]) -> list[dict | None]:
        game = object()
        return [await self._analyse(board, game) for board in boards]

    async def _analyse(self, board: chess.Board, game: object) -> dict | None:
        """A node limit stops Stockfish inside an iteration, where its lines mix depths and some scores
        are only bounds (fail-high 3-pawn "scores" in quiet positions), so the label is the last
        *completed* iteration: the last block of lines printed together at one depth, all exact."""
        legal = board.legal_moves.count()
        if legal == 0:
            return None
        want = min(self.settings.multipv, legal)
        nodes = self.settings.nodes
        while (found := await self._search(board, game, want, nodes)) is None:
            if nodes >= MAX_NODES_FACTOR * self.settings.nodes:
                raise ConceptChessError(f"stockfish completed no iteration of {want} lines within {nodes} nodes in "
                                        f"{board.fen()} (raise --nodes)")
            nodes *= 2  # rare (a few positions in ten thousand at 3,000 nodes): search again, deeper
        infos, used = found
        lines = []
        for info in infos:
            score = info["score"].relative
            lines.append([info["pv"][0].uci(), score.score(), score.mate()])
        wdl = infos[0].get("wdl")
        if wdl is None:
            raise ConceptChessError("stockfish printed no WDL (is it Stockfish 15.1 or later?)")
        wdl = wdl.relative
        return {"lines": lines, "wdl": [wdl.wins, wdl.draws, wdl.losses], "depth": infos[0]["depth"], "nodes": used}

    async def _search(self, board: chess.Board, game: object, want: int, nodes: int) -> tuple[list[dict], int] | None:
        """The lines of the last completed iteration within ``nodes`` and the nodes searched, or None."""
        blocks: list[list[dict]] = []  # Stockfish prints all its lines together, line 1 first
        used = 0
        limit = chess.engine.Limit(nodes=nodes)
        with await self.engine.analysis(board, limit, multipv=want, game=game) as run:
            async for info in run:
                if "pv" not in info or "score" not in info:
                    continue
                used = info.get("nodes", used)
                if info.get("multipv", 1) == 1:
                    blocks.append([])
                if blocks:
                    blocks[-1].append(info)
        infos = next((b for b in reversed(blocks) if _exact(b, want)), None)
        return None if infos is None else (infos, used)

    def close(self) -> None:
        self.loop.run_until_complete(self.engine.quit())
        self.loop.close()

    def __enter__(self) -> "Labeller":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _exact(block: list[dict], want: int) -> bool:
    return (len(block) == want and len({i.get("depth") for i in block}) == 1
            and not any(i.get("lowerbound") or i.get("upperbound") for i in block))


_labeller: Labeller | None = None


def _start_worker(path: str, settings: LabelSettings) -> None:
    global _labeller
    _labeller = Labeller(path, settings)


def _label_chunk(chunk: list[tuple[str | None, list[str]]]) -> list[dict | None]:
    boards = []
    for fen, moves in chunk:
        board = chess.Board(fen) if fen else chess.Board()
        for uci in moves:
            board.push_uci(uci)
        boards.append(board)
    return _labeller.label(boards)


def _chunks(specs: list[PositionSpec], start: int) -> Iterator[list[tuple[str | None, list[str]]]]:
    for s in range(start, len(specs), CHUNK):
        yield [(spec.fen, spec.moves) for spec in specs[s : s + CHUNK]]


def _record(spec: PositionSpec, label: dict | None) -> dict:
    rec: dict = {"id": spec.id}
    if spec.fen:
        rec["fen"] = spec.fen
    rec["moves"] = spec.moves
    rec.update(spec.meta)
    rec[LABEL_KEY] = label
    return rec


def _complete_lines(path: Path) -> int:
    """Whole records in a partial output (a torn last line is cut off)."""
    if not path.exists():
        return 0
    data = path.read_bytes()
    keep = data.rfind(b"\n") + 1
    if keep != len(data):
        with open(path, "r+b") as f:
            f.truncate(keep)
    return data[:keep].count(b"\n")


def stockfish_version(path: str) -> str:
    eng = chess.engine.SimpleEngine.popen_uci(path)
    try:
        return eng.id.get("name", "unknown")
    finally:
        eng.quit()


def label_engine_dataset(dataset: str | os.PathLike, output: str | os.PathLike, settings: LabelSettings = LabelSettings(), *,
                         overwrite: bool = False, progress: Progress | None = None) -> dict:
    """Label every position of ``dataset`` with Stockfish and write the labelled copy to ``output``;
    returns its manifest. ``progress(done, total)`` counts positions (resumed ones included).

    Everything is checked before Stockfish starts: the settings, the binary, every position of the input.
    """
    settings.check()
    output = Path(output)
    if output.exists() and not overwrite:
        raise ArgumentError("already exists (choose another output or pass {overwrite})", prefix=f"{output}: ",
                            overwrite="overwrite=True")
    path = require_stockfish()
    specs = list(iter_dataset(dataset))
    if not specs:
        raise ConceptChessError(f"{dataset}: no positions to label")
    boards_of(specs, where=f"{dataset} ")  # every position valid, or a one-line error naming it
    source_sha = dataset_sha256(dataset)
    version = stockfish_version(path)
    state = {"input": str(dataset), "input_sha256": source_sha, "settings": {k: v for k, v in asdict(settings).items() if k != "workers"},
             "stockfish": version}
    work = resume_folder(output.with_name(output.name + ".labelling"), state, "an unfinished labelling of other input or settings; "
                         "remove it or run with the same input and settings to resume it", STATE_FILE)
    state_file, part = work / STATE_FILE, work / POSITIONS_FILE
    done = _complete_lines(part)
    if done > len(specs):
        raise ConceptChessError(f"{part}: holds {done} records, more than the {len(specs)} positions of {dataset}")
    if progress is not None:
        progress(done, len(specs))
    if done < len(specs):
        ctx = multiprocessing.get_context("spawn")
        workers = min(settings.workers, math.ceil((len(specs) - done) / CHUNK))
        with ctx.Pool(workers, initializer=_start_worker, initargs=(path, settings)) as pool, open(part, "a", encoding="utf-8") as f:
            for labels in pool.imap(_label_chunk, _chunks(specs, done)):
                f.write("".join(json.dumps(_record(specs[done + i], lab), separators=(",", ":")) + "\n"
                                for i, lab in enumerate(labels)))
                f.flush()
                os.fsync(f.fileno())
                done += len(labels)
                if progress is not None:
                    progress(done, len(specs))
    labelled = sum(1 for s in iter_dataset(part) if s.meta.get(LABEL_KEY) is not None)
    manifest = dict(read_manifest(dataset))
    manifest.pop("positions_sha256", None)
    manifest.update({
        "made_by": "positions label-engine",
        "labelled_from": {"dataset": str(dataset), "sha256": source_sha, "made_by": manifest.get("made_by")},
        "engine_labels": {"stockfish": version, "binary": path, **state["settings"], "options": {"Threads": 1, "UCI_ShowWDL": True},
                          "labelled": labelled, "without_legal_moves": len(specs) - labelled},
        "positions": len(specs),
        "positions_sha256": sha256_of(part),
        "software": software_versions("chess"),
    })
    atomic_write_text(work / MANIFEST_FILE, json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    state_file.unlink()
    if output.exists():
        shutil.rmtree(output)
    os.replace(work, output)
    return manifest


def has_engine_labels(dataset: str | os.PathLike) -> bool:
    """Whether a dataset's manifest says it was labelled by :func:`label_engine_dataset`."""
    return "engine_labels" in read_manifest(dataset)
