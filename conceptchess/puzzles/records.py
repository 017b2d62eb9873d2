"""Puzzles in the database: ids, collections, boards, and the seeded order of a blinded set.

>>> db = connect()                                                 # doctest: +SKIP
>>> add_to_collection(db, "demo", [Puzzle(...)])                   # doctest: +SKIP
>>> [p.id for p in collection_puzzles(db, "demo")]                 # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
import random
import re

import chess
from sqlalchemy import func, select
from sqlalchemy.orm import Session

import conceptchess
from conceptchess.errors import ConceptChessError
from conceptchess.store.puzzles import Collection, CollectionPuzzle, Puzzle

GENERATOR_VERSION = f"conceptchess {conceptchess.__version__} puzzles/2"  # 2: min advantage, mate lines whole, trivial-puzzle filters
_NAME = re.compile(r"^[^\x00-\x1f]{1,200}$")


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


def collection_puzzles(session: Session, name: str) -> list[Puzzle]:
    """The puzzles of a collection, in its order."""
    c = find_collection(session, name)
    rows = session.scalars(select(Puzzle).join(CollectionPuzzle, CollectionPuzzle.puzzle_id == Puzzle.id)
                           .where(CollectionPuzzle.collection_id == c.id).order_by(CollectionPuzzle.position)).all()
    return list(rows)


def same_puzzle(a: Puzzle, b: Puzzle) -> bool:
    return a.fen == b.fen and list(a.solution) == list(b.solution)


def add_to_collection(session: Session, name: str, puzzles: list[Puzzle], description: str | None = None) -> tuple[int, int]:
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
            session.add(p)
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


def puzzle_board(p: Puzzle) -> chess.Board:
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


def accepted_first_moves(p: Puzzle) -> set[str]:
    """UCI moves accepted as the first move: the solution's and the verified alternatives."""
    alts = p.accepted_moves[0] if p.accepted_moves else []
    return {p.solution[0], *alts}
