"""Positions datasets: a folder with ``positions.jsonl`` (the JSONL positions format) and ``manifest.json``.

Each record is a position in the interchange format plus metadata. Its ``fen``/``moves`` carry just
enough history to encode it exactly as lc0 would from the whole game: the moves start at the game's
start, or at the last irreversible move at or before 7 plies back (so all 8 history boards and every
repetition flag are reproduced), written as a FEN. Typical metadata keys: ``game`` (game id within
the dataset), ``ply``, ``move`` (the move played next, UCI, or null at the end), ``result``
(``1-0``/``0-1``/``1/2-1/2``), ``white_elo``, ``black_elo``, ``clock`` (seconds left for the side to
move, when known), ``source``.

The manifest records the dataset's ``origin`` when it is built (:data:`ORIGINS`: games people played,
games a network played, search rollouts, puzzles); :func:`dataset_origin` reads it back and nothing
guesses it from other fields. The origin is not part of a dataset's identity (:func:`dataset_sha256`
hashes the positions file only).

Commands accept either such a folder or a bare ``.jsonl`` file. :func:`label_dataset` writes a
dataset's concept labels as a table (one row per position id, one column per concept).

>>> rec = position_record(chess.Board(), [chess.Move.from_uci("e2e4")], 1)
>>> rec["moves"], "fen" in rec
(['e2e4'], False)
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import chess
import numpy as np

from conceptchess.concepts.labeling import check_board, label_selection
from conceptchess.concepts.registry import select
from conceptchess.concepts.stockfish import StockfishEval, require_stockfish
from conceptchess.concepts.table import table_format, write_table
from conceptchess.errors import ArgumentError, ConceptChessError
from conceptchess.files import atomic_folder
from conceptchess.lc0.encoder import HISTORY, starts_at_standard_position
from conceptchess.positions import PositionSpec, boards_of, read_positions_jsonl
from conceptchess.progress import Progress
from conceptchess.provenance import sha256_of

POSITIONS_FILE = "positions.jsonl"
MANIFEST_FILE = "manifest.json"

HUMAN_GAMES, MACHINE_GAMES, ROLLOUTS, PUZZLES = "human-games", "machine-games", "rollouts", "puzzles"
ORIGINS = (HUMAN_GAMES, MACHINE_GAMES, ROLLOUTS, PUZZLES)
UNKNOWN_ORIGIN = "unknown"  # a manifest written before origins were recorded, or none at all


def history_start(halfmove_clocks: list[int], t: int) -> int:
    """First ply whose position a record for ply ``t`` must start from (see module docstring).

    ``halfmove_clocks[i]`` is the rule-50 counter of the position after i plies.
    """
    s = t - (HISTORY - 1)
    if s <= 0:
        return 0
    return max(0, s - halfmove_clocks[s])


def position_record(start: chess.Board, moves: list[chess.Move], t: int, halfmove_clocks: list[int] | None = None,
                    boards: list[chess.Board | None] | None = None, fen_cache: dict[int, str] | None = None) -> dict:
    """The interchange record (``fen`` when needed, ``moves``) of the position after ``t`` plies.

    For many plies of one game pass the per-ply ``halfmove_clocks`` and ``boards`` (position after i
    plies; only the irreversible plies, where a history can start, are needed — others may be None)
    to avoid replaying, and a ``fen_cache`` dict shared across the game's records so each origin's
    FEN is written once; otherwise the game is replayed here.
    """
    if halfmove_clocks is None or boards is None:
        b = start.copy(stack=False)
        boards, halfmove_clocks = [b.copy(stack=False)], [b.halfmove_clock]
        for m in moves[:t]:
            b.push(m)
            boards.append(b.copy(stack=False))
            halfmove_clocks.append(b.halfmove_clock)
    s = history_start(halfmove_clocks, t)
    rec: dict = {}
    origin = boards[s]
    if s > 0 or not starts_at_standard_position(origin):
        fen = fen_cache.get(s) if fen_cache is not None else None
        if fen is None:
            fen = origin.fen(en_passant="fen")
            if fen_cache is not None:
                fen_cache[s] = fen
        rec["fen"] = fen
    rec["moves"] = [m.uci() for m in moves[s:t]]
    return rec


def positions_path(dataset: str | os.PathLike) -> Path:
    """The JSONL file of a dataset folder, or the path itself for a bare ``.jsonl`` file."""
    p = Path(dataset)
    if p.is_dir():
        f = p / POSITIONS_FILE
        if not f.exists():
            raise ConceptChessError(f"{p}: not a positions dataset (no {POSITIONS_FILE})")
        return f
    if not p.exists():
        raise ConceptChessError(f"{p}: no such positions dataset or file")
    return p


def read_manifest(dataset: str | os.PathLike) -> dict:
    p = Path(dataset)
    m = p / MANIFEST_FILE if p.is_dir() else p.with_name(p.name + ".manifest.json")
    if not m.exists():
        return {}
    try:
        return json.loads(m.read_text())
    except json.JSONDecodeError as e:
        raise ConceptChessError(f"{m}: malformed manifest ({e.msg})") from None


def dataset_origin(manifest: dict) -> str:
    """Where a dataset's positions come from, as recorded when it was built (one of :data:`ORIGINS`),
    or ``"unknown"`` for a manifest that does not say (written before origins were recorded).

    >>> dataset_origin({"origin": "human-games", "made_by": "positions from-pgn"}), dataset_origin({"made_by": "positions from-pgn"})
    ('human-games', 'unknown')
    """
    origin = manifest.get("origin")
    return origin if isinstance(origin, str) and origin else UNKNOWN_ORIGIN


def dataset_sha256(dataset: str | os.PathLike) -> str:
    """Identity of a dataset: the sha256 of its positions file."""
    return sha256_of(positions_path(dataset))


def iter_dataset(dataset: str | os.PathLike) -> Iterator[PositionSpec]:
    return read_positions_jsonl(positions_path(dataset))


class DatasetWriter:
    """Write a dataset folder atomically: records stream to a temporary folder renamed at the end.

    >>> with DatasetWriter("out/ds", manifest={"source": "x.pgn"}) as w:   # doctest: +SKIP
    ...     w.write({"id": "g0-p1", "moves": ["e2e4"]})
    """

    def __init__(self, path: str | os.PathLike, manifest: dict | None = None, overwrite: bool = False):
        self.path = Path(path)
        if self.path.exists() and not overwrite:
            raise ArgumentError("already exists (choose another output or pass {overwrite})", prefix=f"{self.path}: ",
                                overwrite="overwrite=True")
        self.manifest = dict(manifest or {})
        self.count = 0

    def __enter__(self) -> "DatasetWriter":
        self._folder = atomic_folder(self.path, replace=True)
        self.tmp = self._folder.__enter__()
        self.f = open(self.tmp / POSITIONS_FILE, "w", encoding="utf-8")
        return self

    def write(self, record: dict) -> None:
        self.f.write(json.dumps(record, separators=(",", ":")) + "\n")
        self.count += 1

    def __exit__(self, exc_type, exc, tb) -> bool | None:
        self.f.close()
        if exc_type is None:
            try:
                self.manifest.setdefault("positions", self.count)
                self.manifest["positions_sha256"] = sha256_of(self.tmp / POSITIONS_FILE)
                (self.tmp / MANIFEST_FILE).write_text(json.dumps(self.manifest, indent=2, sort_keys=True) + "\n")
            except BaseException as e:
                self._folder.__exit__(type(e), e, e.__traceback__)
                raise
        return self._folder.__exit__(exc_type, exc, tb)


LABEL_CHUNK = 2048  # positions replayed and labelled at a time


@dataclass(frozen=True)
class ConceptTable:
    """What :func:`label_dataset` wrote: ``positions`` rows of ``concepts`` columns (and ``id``) at ``path``."""

    path: Path
    positions: int
    concepts: list[str]


def label_dataset(dataset: str | os.PathLike, output: str | os.PathLike, concepts: str | Iterable[str] | None = None, *,
                  stockfish: bool | None = None, progress: Progress | None = None) -> ConceptTable:
    """Label every position of ``dataset`` with ``concepts`` and write the table to ``output`` (.csv or
    .parquet, atomically): an ``id`` column, then one column per concept.

    ``concepts`` and ``stockfish`` as for :func:`conceptchess.concepts.select` (default: every python-chess
    concept). The output name, the concepts and the Stockfish binary are checked before any position is
    read; positions are replayed ``LABEL_CHUNK`` at a time (:func:`~conceptchess.positions.boards_of`) and
    ``progress(done, total)`` counts them.

    >>> label_dataset("positions/", "labels.parquet", "in_check,material_diff")     # doctest: +SKIP
    ConceptTable(path=PosixPath('labels.parquet'), positions=20000, concepts=['in_check', 'material_diff'])
    """
    table_format(output)
    sel = select(concepts, stockfish=stockfish)
    if sel.stockfish:
        require_stockfish()
    where = f"{positions_path(dataset)}: "
    specs = list(iter_dataset(dataset))
    if progress is not None:
        progress(0, len(specs))
    parts: list[dict[str, np.ndarray]] = []
    engine = StockfishEval() if sel.stockfish else None
    try:
        for s in range(0, len(specs), LABEL_CHUNK):
            chunk = specs[s : s + LABEL_CHUNK]
            parts.append(label_selection(boards_of(chunk, where, check=check_board), sel, engine=engine))
            if progress is not None:
                progress(s + len(chunk), len(specs))
    finally:
        if engine is not None:
            engine.close()
    columns = {c.name: np.concatenate([p[c.name] for p in parts]) if parts else np.array([], dtype=c.dtype)
               for c in sel.python_chess + sel.stockfish}
    write_table(output, [spec.id for spec in specs], {n: columns[n] for n in sel.names})
    return ConceptTable(Path(output), len(specs), list(sel.names))


def merge_datasets(inputs: list[str | os.PathLike], output: str | os.PathLike, *, overwrite: bool = False,
                   progress: Progress | None = None) -> dict:
    """One dataset of the records of several, in order; returns its manifest.

    Ids and game keys are prefixed by each input's name (``human/g12-p3``) so games of different
    inputs never merge (a held-out split by game stays a split by game). The manifest lists each input
    (path, sha256, origin, records); its ``origin`` is the inputs' common origin, or unknown when they
    differ (``origins`` gives each). Engine labels (``engine_labels``) carry over when every input has
    them with the same settings; otherwise merging labelled with unlabelled data is refused.
    """
    names = [Path(p).name.removesuffix(".jsonl") for p in inputs]
    if len(inputs) < 2:
        raise ArgumentError("{inputs} needs at least two datasets to merge", inputs="inputs")
    if len(set(names)) != len(names):
        raise ConceptChessError(f"inputs share a name ({', '.join(names)}): ids are prefixed by it, so rename one")
    manifests = [read_manifest(p) for p in inputs]
    labels = [{k: v for k, v in m.get("engine_labels", {}).items() if k not in ("labelled", "without_legal_moves", "binary")}
              for m in manifests]
    if any(labels) and any(lab != labels[0] for lab in labels):
        raise ConceptChessError("inputs have different engine labels (or some none): "
                                + "; ".join(f"{n}: {lab or 'unlabelled'}" for n, lab in zip(names, labels, strict=True)))
    origins = {n: dataset_origin(m) for n, m in zip(names, manifests, strict=True)}
    sources = []
    with DatasetWriter(output, overwrite=overwrite) as w:
        for path, name in zip(inputs, names, strict=True):
            before = w.count
            games = set()
            for spec in iter_dataset(path):
                rec = {"id": f"{name}/{spec.id}"}
                if spec.fen:
                    rec["fen"] = spec.fen
                rec["moves"] = spec.moves
                rec.update(spec.meta)
                game = spec.meta.get("game")
                rec["game"] = f"{name}/{game if game is not None else str(spec.id).rsplit('-p', 1)[0]}"
                games.add(rec["game"])
                w.write(rec)
                if progress is not None and w.count % 4096 == 0:
                    progress(w.count, None)
            sources.append({"dataset": str(path), "sha256": dataset_sha256(path), "origin": origins[name], "records": w.count - before,
                            "games": len(games)})
        w.manifest = {"kind": "positions", "made_by": "positions merge", "inputs": sources, "origins": origins}
        if len(set(origins.values())) == 1:
            w.manifest["origin"] = next(iter(origins.values()))
        if labels[0]:
            w.manifest["engine_labels"] = {**manifests[0]["engine_labels"],
                                           "labelled": sum(m["engine_labels"].get("labelled", 0) for m in manifests),
                                           "without_legal_moves": sum(m["engine_labels"].get("without_legal_moves", 0) for m in manifests)}
        manifest = w.manifest
    return manifest
