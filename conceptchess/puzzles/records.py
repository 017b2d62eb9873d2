"""Puzzle records: the puzzle value that mining, import, verification, export and studies pass around,
and where it meets the database (collections).

A :class:`PuzzleRecord` is a frozen value with the fields of a stored puzzle
(:class:`~conceptchess.store.puzzles.Puzzle`); the row is made from it only when it is stored
(:func:`add_to_collection`), and what is read back is converted to records at once
(:func:`collection_puzzles`, :func:`stored_puzzles`). Also here: puzzle ids, the board of a puzzle,
and the seeded order of a blinded set.

>>> p = PuzzleRecord(id="00sHx", fen="7k/6pp/8/8/8/8/8/RR4K1 w - - 0 1", solution=["a1a8"], side_to_solve="white",
...                  kind="imported")
>>> p.solution, p.kind, puzzle_board(p).turn
(('a1a8',), 'imported', True)
>>> with db.begin() as s:                                          # doctest: +SKIP
...     add_to_collection(s, "demo", [p])
>>> [q.id for q in collection_puzzles(s, "demo")]                  # doctest: +SKIP
['00sHx']
"""

from __future__ import annotations

import hashlib
import random
import re
from collections.abc import Iterable
from dataclasses import dataclass, fields
from datetime import datetime

import chess
from sqlalchemy import func, select
from sqlalchemy.orm import Session

import conceptchess
from conceptchess.errors import ConceptChessError
from conceptchess.store.puzzles import Collection, CollectionPuzzle, Puzzle

GENERATOR_VERSION = f"conceptchess {conceptchess.__version__} puzzles/2"  # 2: min advantage, mate lines whole, trivial-puzzle filters
_NAME = re.compile(r"^[^\x00-\x1f]{1,200}$")


@dataclass(frozen=True)
class PuzzleRecord:
    """One puzzle (see :class:`~conceptchess.store.puzzles.Puzzle` for what each field holds).

    Move lists are tuples of UCI strings (lists given are turned into tuples); the JSON fields
    (``verify_settings``, ``difficulty_detail``, ``filters``, ``discovery``) stay dicts. ``created_at`` is None
    until the puzzle is stored.
    """

    id: str  # the Lichess PuzzleId of an imported puzzle, else an opaque hash (make_puzzle_id)
    fen: str  # the position shown
    solution: tuple[str, ...]  # UCI: solver, reply, …, solver
    side_to_solve: str  # white | black
    kind: str = "concept"  # concept | control-random | control-human | imported
    start_fen: str | None = None
    leading_moves: tuple[str, ...] = ()  # UCI from start_fen to fen
    # source
    source: str | None = None  # lichess | game | self-play
    source_game: str | None = None
    source_position: str | None = None
    dataset_sha256: str | None = None
    # provenance
    network_sha256: str | None = None
    checkpoint: str | None = None
    tap: str | None = None
    concept: str | None = None
    direction_sha256: str | None = None
    concept_score: float | None = None
    concept_rank: int | None = None  # 1 = highest score in the dataset
    network_move: str | None = None
    network_policy: float | None = None
    seed: int | None = None  # seed of a random control direction
    discovery: dict | None = None  # a discovered concept's provenance (conceptchess.puzzles.discovered.DiscoveryProvenance.as_dict)
    # verification (latest)
    verified: bool | None = None
    verify_reason: str | None = None
    verify_engine: str | None = None
    verify_settings: dict | None = None
    best_move: str | None = None
    best_cp: int | None = None
    best_mate: int | None = None
    second_move: str | None = None
    second_cp: int | None = None
    second_mate: int | None = None
    win_chance_gap: float | None = None
    accepted_moves: tuple[tuple[str, ...], ...] | None = None  # per solver move: the other accepted moves (UCI)
    verified_at: datetime | None = None
    # description
    themes: tuple[str, ...] = ()
    source_themes: tuple[str, ...] | None = None
    difficulty: float | None = None  # 0 (easy) … 1 (hard)
    difficulty_detail: dict | None = None
    filters: dict | None = None  # mined: {"settings": MineFilters, "values": what they compared}
    rating: int | None = None
    rating_deviation: int | None = None
    popularity: int | None = None
    nb_plays: int | None = None
    opening_tags: tuple[str, ...] | None = None
    generator_version: str | None = None
    created_at: datetime | None = None  # set when stored

    def __post_init__(self):
        set_ = object.__setattr__
        for name in ("solution", "leading_moves", "themes"):
            set_(self, name, tuple(getattr(self, name) or ()))
        for name in ("source_themes", "opening_tags"):
            if getattr(self, name) is not None:
                set_(self, name, tuple(getattr(self, name)))
        if self.accepted_moves is not None:
            set_(self, "accepted_moves", tuple(tuple(alts) for alts in self.accepted_moves))

    @classmethod
    def of(cls, row: Puzzle) -> PuzzleRecord:
        """The record of a stored row."""
        return cls(**{f.name: getattr(row, f.name) for f in fields(cls)})

    def row_values(self) -> dict:
        """The row's column values (lists for the JSON columns; no ``created_at`` before it is stored)."""
        out = {}
        for f in fields(self):
            v = getattr(self, f.name)
            if f.name == "accepted_moves" and v is not None:
                v = [list(alts) for alts in v]
            elif isinstance(v, tuple):
                v = list(v)
            out[f.name] = v
        if out["created_at"] is None:
            del out["created_at"]
        return out


def make_puzzle_id(*parts: object) -> str:
    """An opaque id (10 hex digits) from what makes a puzzle: the same inputs give the same id.

    It says nothing about the puzzle's kind, so a blinded set does not reveal its controls.
    """
    return hashlib.sha256("|".join(str(p) for p in parts).encode()).hexdigest()[:10]


def check_collection_name(name: str) -> str:
    name = (name or "").strip()
    if not _NAME.match(name):
        raise ConceptChessError(f"collection name {name!r} must be 1–200 printable characters")
    return name


def find_collection(session: Session, name: str) -> Collection:
    """The collection called ``name``, or a one-line error listing the ones there are."""
    c = session.scalar(select(Collection).where(Collection.name == name))
    if c is None:
        names = session.scalars(select(Collection.name).order_by(Collection.name)).all()
        have = ", ".join(names[:10]) + (" …" if len(names) > 10 else "") if names else "none yet"
        raise ConceptChessError(f"no collection named {name!r} (collections: {have})")
    return c


def collection_puzzles(session: Session, name: str) -> list[PuzzleRecord]:
    """The puzzles of a collection, in its order."""
    c = find_collection(session, name)
    rows = session.scalars(select(Puzzle).join(CollectionPuzzle, CollectionPuzzle.puzzle_id == Puzzle.id)
                           .where(CollectionPuzzle.collection_id == c.id).order_by(CollectionPuzzle.position)).all()
    return [PuzzleRecord.of(r) for r in rows]


def stored_puzzles(session: Session, ids: Iterable[str]) -> dict[str, PuzzleRecord]:
    """The stored puzzles among ``ids``, by id (ids not stored are left out)."""
    ids = [str(i) for i in ids]
    return {r.id: PuzzleRecord.of(r) for r in session.scalars(select(Puzzle).where(Puzzle.id.in_(ids)))} if ids else {}


def stored_puzzle(session: Session, puzzle_id: str) -> PuzzleRecord | None:
    row = session.get(Puzzle, str(puzzle_id))
    return None if row is None else PuzzleRecord.of(row)


def collection_sizes(session: Session) -> list[tuple[str, int, datetime]]:
    """``(name, puzzles, created)`` of every collection, by name."""
    q = (select(Collection.name, func.count(CollectionPuzzle.puzzle_id), Collection.created_at)
         .outerjoin(CollectionPuzzle, CollectionPuzzle.collection_id == Collection.id).group_by(Collection.id).order_by(Collection.name))
    return [(name, int(n), created) for name, n, created in session.execute(q)]


def same_puzzle(a, b) -> bool:
    """The same position and solution (records or rows)."""
    return a.fen == b.fen and list(a.solution) == list(b.solution)


def add_to_collection(session: Session, name: str, puzzles: Iterable[PuzzleRecord], description: str | None = None) -> tuple[int, int]:
    """Store ``puzzles`` (new ones) and append them to collection ``name`` (made if missing), inside
    the caller's transaction. A puzzle id already stored with another position or solution is refused.
    Returns ``(puzzles added to the collection, already there)``."""
    name = check_collection_name(name)
    c = session.scalar(select(Collection).where(Collection.name == name))
    if c is None:
        c = Collection(name=name, description=description)
        session.add(c)
        session.flush()
    members = set(session.scalars(select(CollectionPuzzle.puzzle_id).where(CollectionPuzzle.collection_id == c.id)))
    nxt = session.scalar(select(func.coalesce(func.max(CollectionPuzzle.position), -1)).where(CollectionPuzzle.collection_id == c.id)) + 1
    added = already = 0
    for p in puzzles:
        old = session.get(Puzzle, p.id)
        if old is None:
            session.add(Puzzle(**p.row_values()))
            session.flush()
        elif not same_puzzle(old, p):
            raise ConceptChessError(f"puzzle {p.id} is already stored with another position or solution ({old.fen})")
        if p.id in members:
            already += 1
            continue
        session.add(CollectionPuzzle(collection_id=c.id, puzzle_id=p.id, position=nxt))
        members.add(p.id)
        nxt += 1
        added += 1
    session.flush()
    return added, already


def update_puzzle(session: Session, puzzle: PuzzleRecord) -> None:
    """Overwrite the stored row of ``puzzle.id`` with the record's values (inside the caller's
    transaction); its position and solution must be the stored ones."""
    row = session.get(Puzzle, puzzle.id)
    if row is None:
        raise ConceptChessError(f"no stored puzzle {puzzle.id!r}")
    if not same_puzzle(row, puzzle):
        raise ConceptChessError(f"puzzle {puzzle.id} is stored with another position or solution ({row.fen})")
    for key, value in puzzle.row_values().items():
        if key not in ("id", "created_at"):
            setattr(row, key, value)
    session.flush()


def puzzle_board(p: PuzzleRecord) -> chess.Board:
    """The position shown, with the moves that led to it as its move stack (for the network's history)."""
    if p.start_fen and p.leading_moves:
        b = chess.Board(p.start_fen)
        for u in p.leading_moves:
            b.push_uci(u)
        if b.fen() == p.fen:
            return b
    return chess.Board(p.fen)


def side_name(color: chess.Color) -> str:
    return "white" if color == chess.WHITE else "black"


def blind_order(ids: list[str], seed: int) -> list[str]:
    """The order a blinded set is shown in: ``ids`` shuffled by ``random.Random(seed)``."""
    out = list(ids)
    random.Random(int(seed)).shuffle(out)
    return out
