"""Puzzles, collections and expert studies (migrations ``0002_puzzles``, ``0003_puzzle_filters``).

- :class:`Puzzle`: a position shown to a solver and its solution line (UCI, solver move first and
  last), where it came from (Lichess, a game, self-play), its provenance (network sha256, checkpoint,
  tap, concept or direction, concept score), its verification (engine, settings, best and
  second-best evaluation, win-chance gap, every other accepted move), themes and a difficulty
  estimate made before anyone solves it; for a mined puzzle, the trivial-puzzle filters it passed
  (``filters``: their settings and the puzzle's numbers).
- :class:`Collection` and :class:`CollectionPuzzle`: named, ordered sets of puzzles.
- :class:`Expert`, :class:`EvalSession` (a study session: expert × phase × collection, blinded or not,
  order seed; the table keeps its older name) and :class:`Answer` (one per session and puzzle: a unique
  constraint refuses a second one).

These are storage: the puzzle value that mining, import, verification, export and studies pass around
is :class:`~conceptchess.puzzles.records.PuzzleRecord`, made into a row only when it is stored
(:func:`~conceptchess.puzzles.records.add_to_collection`) and read back as records.

>>> with db.begin() as s:                                   # doctest: +SKIP
...     s.add(Puzzle(id="00sHx", fen=..., solution=["e2e4"], side_to_solve="white", kind="imported"))
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Boolean, CheckConstraint, DateTime, Float, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from conceptchess.store.base import Base, utcnow

PHASES = ("before", "study", "after")
KINDS = ("concept", "control-random", "control-human", "imported")


class Puzzle(Base):
    """One puzzle. ``id`` is the Lichess PuzzleId for imported puzzles, an opaque hash otherwise."""

    __tablename__ = "puzzles"
    __table_args__ = (
        CheckConstraint("side_to_solve IN ('white', 'black')", name="side_to_solve"),
        CheckConstraint("kind IN ('concept', 'control-random', 'control-human', 'imported')", name="kind"),
    )
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    # the position: `fen` is what the solver sees; `leading_moves` (UCI) lead to it from `start_fen`
    fen: Mapped[str] = mapped_column(Text, nullable=False)
    start_fen: Mapped[str | None] = mapped_column(Text)
    leading_moves: Mapped[list] = mapped_column(JSON, nullable=False, default=list)
    solution: Mapped[list] = mapped_column(JSON, nullable=False)  # UCI: solver, reply, ..., solver
    side_to_solve: Mapped[str] = mapped_column(String(5), nullable=False)
    kind: Mapped[str] = mapped_column(String(16), nullable=False, default="concept")
    # source
    source: Mapped[str | None] = mapped_column(String(16))  # lichess | game | self-play
    source_game: Mapped[str | None] = mapped_column(Text)  # GameUrl, or dataset source + game number
    source_position: Mapped[str | None] = mapped_column(Text)  # position id in its dataset
    dataset_sha256: Mapped[str | None] = mapped_column(String(64))
    # provenance
    network_sha256: Mapped[str | None] = mapped_column(String(64), index=True)
    checkpoint: Mapped[str | None] = mapped_column(String(200))
    tap: Mapped[str | None] = mapped_column(String(32))
    concept: Mapped[str | None] = mapped_column(String(200), index=True)  # concept name or direction id
    direction_sha256: Mapped[str | None] = mapped_column(String(64))
    concept_score: Mapped[float | None] = mapped_column(Float)
    concept_rank: Mapped[int | None] = mapped_column(Integer)  # 1 = highest score in the dataset
    network_move: Mapped[str | None] = mapped_column(String(5))
    network_policy: Mapped[float | None] = mapped_column(Float)
    seed: Mapped[int | None] = mapped_column(Integer)  # seed of a random control direction
    # a discovered concept's provenance: discovery run, concept id, root, tap, variant, teachability, novelty
    discovery: Mapped[dict | None] = mapped_column(JSON)
    # verification (latest)
    verified: Mapped[bool | None] = mapped_column(Boolean)
    verify_reason: Mapped[str | None] = mapped_column(Text)
    verify_engine: Mapped[str | None] = mapped_column(String(100))
    verify_settings: Mapped[dict | None] = mapped_column(JSON)
    best_move: Mapped[str | None] = mapped_column(String(5))
    best_cp: Mapped[int | None] = mapped_column(Integer)  # solver's view; None when a mate
    best_mate: Mapped[int | None] = mapped_column(Integer)
    second_move: Mapped[str | None] = mapped_column(String(5))
    second_cp: Mapped[int | None] = mapped_column(Integer)
    second_mate: Mapped[int | None] = mapped_column(Integer)
    win_chance_gap: Mapped[float | None] = mapped_column(Float)
    accepted_moves: Mapped[list | None] = mapped_column(JSON)  # per solver move: the other accepted moves (UCI)
    verified_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # description
    themes: Mapped[list] = mapped_column(JSON, nullable=False, default=list)
    source_themes: Mapped[list | None] = mapped_column(JSON)  # e.g. Lichess's own themes
    difficulty: Mapped[float | None] = mapped_column(Float)  # 0 (easy) … 1 (hard), before anyone solves it
    difficulty_detail: Mapped[dict | None] = mapped_column(JSON)
    filters: Mapped[dict | None] = mapped_column(JSON)  # mined: {"settings": MineFilters, "values": what they compared}
    rating: Mapped[int | None] = mapped_column(Integer)  # Lichess
    rating_deviation: Mapped[int | None] = mapped_column(Integer)
    popularity: Mapped[int | None] = mapped_column(Integer)
    nb_plays: Mapped[int | None] = mapped_column(Integer)
    opening_tags: Mapped[list | None] = mapped_column(JSON)
    generator_version: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, nullable=False)


class Collection(Base):
    __tablename__ = "collections"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True, nullable=False)
    description: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, nullable=False)
    members: Mapped[list[CollectionPuzzle]] = relationship(order_by="CollectionPuzzle.position", back_populates="collection")


class CollectionPuzzle(Base):
    """Membership, in order (``position`` counts from 0)."""

    __tablename__ = "collection_puzzles"
    __table_args__ = (UniqueConstraint("collection_id", "position", name="uq_collection_puzzles_position"),)
    collection_id: Mapped[int] = mapped_column(ForeignKey("collections.id"), primary_key=True)
    puzzle_id: Mapped[str] = mapped_column(ForeignKey("puzzles.id"), primary_key=True)
    position: Mapped[int] = mapped_column(Integer, nullable=False)
    collection: Mapped[Collection] = relationship(back_populates="members")
    puzzle: Mapped[Puzzle] = relationship()


class Expert(Base):
    __tablename__ = "experts"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True, nullable=False)
    title: Mapped[str | None] = mapped_column(String(16))
    rating: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, nullable=False)


class EvalSession(Base):
    """A study session: an expert solving one collection in one phase; ``puzzle_order`` is the order shown."""

    __tablename__ = "eval_sessions"
    __table_args__ = (CheckConstraint("phase IN ('before', 'study', 'after')", name="phase"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    expert_id: Mapped[int] = mapped_column(ForeignKey("experts.id"), nullable=False, index=True)
    phase: Mapped[str] = mapped_column(String(8), nullable=False)
    collection_id: Mapped[int] = mapped_column(ForeignKey("collections.id"), nullable=False)
    blinded: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    order_seed: Mapped[int | None] = mapped_column(Integer)
    puzzle_order: Mapped[list] = mapped_column(JSON, nullable=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, nullable=False)
    expert: Mapped[Expert] = relationship()
    collection: Mapped[Collection] = relationship()


class Answer(Base):
    """One expert's answer to one puzzle in one session (a second one is refused)."""

    __tablename__ = "answers"
    __table_args__ = (
        UniqueConstraint("session_id", "puzzle_id", name="uq_answers_session_puzzle"),
        CheckConstraint("confidence IS NULL OR (confidence >= 1 AND confidence <= 5)", name="confidence"),
        CheckConstraint("seconds IS NULL OR seconds >= 0", name="seconds"),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    session_id: Mapped[int] = mapped_column(ForeignKey("eval_sessions.id"), nullable=False, index=True)
    puzzle_id: Mapped[str] = mapped_column(ForeignKey("puzzles.id"), nullable=False)
    moves: Mapped[list] = mapped_column(JSON, nullable=False)  # UCI, as given (solver first)
    first_move_correct: Mapped[bool] = mapped_column(Boolean, nullable=False)
    line_correct: Mapped[bool | None] = mapped_column(Boolean)  # None: no line given for a longer puzzle
    seconds: Mapped[float | None] = mapped_column(Float)
    confidence: Mapped[int | None] = mapped_column(Integer)
    comment: Mapped[str | None] = mapped_column(Text)
    entered_via: Mapped[str | None] = mapped_column(String(16))  # cli | interactive | import
    entered_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, nullable=False)
    session: Mapped[EvalSession] = relationship()
    puzzle: Mapped[Puzzle] = relationship()


__all__ = ["Answer", "Collection", "CollectionPuzzle", "EvalSession", "Expert", "KINDS", "PHASES", "Puzzle"]
