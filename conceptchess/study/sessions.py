"""Experts, sessions and answers in the database.

A *session* is one expert solving one collection in one phase (``before``, ``study``, ``after``),
blinded or not; a blinded session shows the puzzles in the order of a recorded seed (the same order
as ``conceptchess puzzles export --blind --seed S``). An *answer* is the move (and optionally the
whole line) an expert gave for one puzzle of the session, graded on entry
(:func:`conceptchess.study.grading.grade`); a second answer for the same puzzle in the same session
is refused (and the database's unique constraint refuses it even when two processes race). Each
answer is committed on its own as soon as it is given, so an interrupted interactive session loses
nothing already answered and resumes where it stopped. A CSV of answers is stored all or nothing, and
a file that answers the same puzzle of a session twice is refused with the rows that do.

Which puzzles a session shows: the collection's, less those whose latest verification rejected them
(``verified`` False: ``conceptchess puzzles verify`` found their solution is not the only winning
line); ``include_rejected=True`` keeps them. A puzzle never verified (``verified`` None, e.g. an
imported Lichess puzzle, which Lichess has checked already) is kept, and counted. It is the rule of
``export_collection(verified_only=True)``, so a blinded session's order and its sheet agree. Each
puzzle's number is its place in the session's order, as on its sheet (the ``Round`` of the export).

An expert gets one session per phase and collection: a second one (which would show the same puzzles
again) is refused unless asked for with ``again=True``.

Every function here does its database work in one transaction and returns plain values
(:class:`ExpertSession`, :class:`RecordedAnswer`, :class:`SessionPuzzle`), usable after it closes.

>>> sid = new_session(db, "Alice", "before", "fork", blind=True, seed=3).id    # doctest: +SKIP
>>> record_answer(db, sid, "a1b2c3d4e5", "Nc7+", seconds=40, confidence=4).first_move_correct  # doctest: +SKIP
True
"""

from __future__ import annotations

import csv
import os
import secrets
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path

import chess
import numpy as np
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session

from conceptchess.errors import ArgumentError, ConceptChessError
from conceptchess.puzzles.records import PuzzleRecord, blind_order, collection_puzzles, find_collection, stored_puzzle, stored_puzzles
from conceptchess.store.puzzles import PHASES, Answer, Collection, EvalSession, Expert
from conceptchess.study.grading import AnswerKey, answer_moves, grade


@dataclass(frozen=True)
class ExpertSession:
    """One expert solving one collection in one phase, as stored."""

    id: int
    expert: str  # the expert's name (unique)
    phase: str  # before, study or after
    collection: str  # the collection's name
    blinded: bool
    order_seed: int | None  # the seed of a blinded session's order
    puzzle_order: tuple[str, ...]  # puzzle ids, in the order shown
    created_at: datetime
    answered: int = 0  # answers stored so far

    @classmethod
    def of(cls, row: EvalSession, expert: str, collection: str, answered: int = 0) -> ExpertSession:
        return cls(row.id, expert, row.phase, collection, bool(row.blinded), row.order_seed, tuple(row.puzzle_order),
                   row.created_at, answered)


@dataclass(frozen=True)
class NewSession(ExpertSession):
    """A session just started (:func:`new_session`), and what starting it left out or found."""

    left_out: tuple[str, ...] = ()  # puzzles of the collection left out: their latest verification rejected them
    rejected_kept: int = 0  # rejected puzzles kept (include_rejected=True)
    unverified: int = 0  # puzzles shown that were never verified (kept)
    earlier: tuple[int, ...] = ()  # the expert's earlier sessions in this phase on this collection (again=True)


@dataclass(frozen=True)
class RecordedAnswer:
    """One stored answer and its grade."""

    id: int
    session_id: int
    puzzle_id: str
    moves: tuple[str, ...]  # UCI, as given (solver first)
    first_move_correct: bool
    line_correct: bool | None  # None: no line given for a puzzle longer than one move
    seconds: float | None
    confidence: int | None  # 1 (guess) … 5 (sure)
    comment: str | None
    entered_via: str  # cli, interactive or import
    entered_at: datetime

    @classmethod
    def of(cls, row: Answer) -> RecordedAnswer:
        return cls(row.id, row.session_id, row.puzzle_id, tuple(row.moves), bool(row.first_move_correct), row.line_correct,
                   row.seconds, row.confidence, row.comment, row.entered_via, row.entered_at)


@dataclass(frozen=True)
class SessionPuzzle:
    """A puzzle as a session shows it: the answer key, and the moves that led to the position."""

    id: str
    key: AnswerKey
    start_fen: str | None = None  # where the leading moves start
    leading_moves: tuple[str, ...] = ()  # UCI, the last one the opponent's move that led to the position shown
    number: int = 0  # its place in the session's order, from 1: the number on the session's sheet

    @classmethod
    def of(cls, p: PuzzleRecord, number: int = 0) -> SessionPuzzle:
        return cls(p.id, AnswerKey.of(p), p.start_fen, tuple(p.leading_moves or ()), number)

    def last_move(self) -> str | None:
        """The move that led to the position, numbered (``31...Kh8``); None when not known."""
        if not (self.start_fen and self.leading_moves):
            return None
        b = chess.Board(self.start_fen)
        for u in self.leading_moves[:-1]:
            b.push_uci(u)
        last = b.parse_uci(self.leading_moves[-1])
        num = f"{b.fullmove_number}." if b.turn == chess.WHITE else f"{b.fullmove_number}..."
        return f"{num}{b.san(last)}"


# -- transactions -------------------------------------------------------------------------------------
def _retrying(db, fn: Callable[[Session], object], tries: int = 20):
    """Run ``fn`` in one transaction; retry when SQLite reports a busy/locked database."""
    delay = 0.05
    for attempt in range(tries):
        try:
            with db.begin() as s:
                return fn(s)
        except OperationalError as e:
            msg = str(e.orig if hasattr(e, "orig") else e).lower()
            if ("locked" not in msg and "busy" not in msg) or attempt == tries - 1:
                raise ConceptChessError(f"database error: {str(e).splitlines()[0]}") from None
            time.sleep(delay)
            delay = min(delay * 2, 1.0)


# -- sessions -------------------------------------------------------------------------------------------
def check_phase(phase: str) -> str:
    if phase not in PHASES:
        raise ConceptChessError(f"phase must be one of {', '.join(PHASES)}, not {phase!r}")
    return phase


def new_session(db, expert: str, phase: str, collection: str, blind: bool = False, seed: int | None = None, *,
                include_rejected: bool = False, again: bool = False) -> NewSession:
    """Start a session (the expert is created on first use) on the collection's puzzles less those its
    latest verification rejected (``include_rejected``: all of them). Blinded: the order is theirs
    shuffled by ``seed`` (drawn when not given); otherwise the collection's own order. A second session
    of the same expert in the same phase on the same collection is refused unless ``again``."""
    check_phase(phase)
    expert = (expert or "").strip()
    if not expert or len(expert) > 200:
        raise ConceptChessError("expert name must be 1–200 characters")
    if seed is not None and not blind:
        raise ArgumentError("{seed} orders a blinded session; add {blind}", seed="seed", blind="blind=True")

    def work(s: Session) -> NewSession:
        puzzles = collection_puzzles(s, collection)
        if not puzzles:
            raise ConceptChessError(f"collection {collection!r} has no puzzles")
        rejected = [p.id for p in puzzles if p.verified is False]
        shown = puzzles if include_rejected else [p for p in puzzles if p.verified is not False]
        if not shown:
            raise ArgumentError("{include_rejected} shows them anyway", include_rejected="include_rejected=True",
                                prefix=f"verification rejected all {len(puzzles)} puzzles of collection {collection!r}; ")
        ids = [p.id for p in shown]
        c = find_collection(s, collection)
        e = s.scalar(select(Expert).where(Expert.name == expert))
        if e is None:
            e = Expert(name=expert)
            s.add(e)
            s.flush()
        earlier = s.scalars(select(EvalSession).where(EvalSession.expert_id == e.id, EvalSession.phase == phase,
                                                      EvalSession.collection_id == c.id).order_by(EvalSession.id)).all()
        if earlier and not again:
            last = earlier[-1]
            answered = s.scalar(select(func.count(Answer.id)).where(Answer.session_id == last.id))
            raise ArgumentError("answer in it, or add {again} to start another", again="again=True",
                                prefix=f"{e.name} already has a {phase} session on collection {c.name!r}: session {last.id} "
                                       f"({answered} of {len(last.puzzle_order)} answered, started {last.created_at:%Y-%m-%d %H:%M}); ")
        order_seed = (secrets.randbelow(2**31) if seed is None else int(seed)) if blind else None
        order = blind_order(ids, order_seed) if blind else ids
        sess = EvalSession(expert_id=e.id, phase=phase, collection_id=c.id, blinded=bool(blind), order_seed=order_seed,
                           puzzle_order=order)
        s.add(sess)
        s.flush()
        return replace(NewSession.of(sess, e.name, c.name), left_out=() if include_rejected else tuple(rejected),
                       rejected_kept=len(rejected) if include_rejected else 0, unverified=sum(p.verified is None for p in shown),
                       earlier=tuple(x.id for x in earlier))

    return _retrying(db, work)


def list_sessions(db) -> list[ExpertSession]:
    """Every session, oldest first, with how many answers each has."""
    with db.session() as s:
        q = (select(EvalSession, Expert.name, Collection.name, func.count(Answer.id))
             .join(Expert, EvalSession.expert_id == Expert.id).join(Collection, EvalSession.collection_id == Collection.id)
             .outerjoin(Answer, Answer.session_id == EvalSession.id).group_by(EvalSession.id, Expert.name, Collection.name)
             .order_by(EvalSession.id))
        return [ExpertSession.of(sess, expert, coll, n) for sess, expert, coll, n in s.execute(q)]


def _session_row(s: Session, session_id: int, pre: str = "") -> EvalSession:
    sess = s.get(EvalSession, int(session_id))
    if sess is None:
        raise ConceptChessError(f"{pre}no evaluation session {session_id}")
    return sess


def pending(db, session_id: int) -> tuple[ExpertSession, list[SessionPuzzle], int]:
    """The session, its puzzles not answered yet (in session order), and how many it has in all."""
    with db.session() as s:
        sess = _session_row(s, session_id)
        done = set(s.scalars(select(Answer.puzzle_id).where(Answer.session_id == sess.id)))
        order = list(sess.puzzle_order)
        puzzles = stored_puzzles(s, order)
        todo = [SessionPuzzle.of(puzzles[i], k) for k, i in enumerate(order, start=1) if i not in done and i in puzzles]
        return ExpertSession.of(sess, sess.expert.name, sess.collection.name, len(done)), todo, len(order)


# -- answers --------------------------------------------------------------------------------------------
def _check_numbers(seconds: float | None, confidence: int | None, where: str = "") -> None:
    pre = f"{where}: " if where else ""
    if seconds is not None and not (seconds >= 0 and np.isfinite(seconds)):
        raise ConceptChessError(f"{pre}seconds must be a number ≥ 0, not {seconds}")
    if confidence is not None and confidence not in (1, 2, 3, 4, 5):
        raise ConceptChessError(f"{pre}confidence must be 1–5, not {confidence}")


def add_answer(s: Session, session_id: int, puzzle_id: str, move: str, line: str | Sequence[str] | None = None,
               seconds: float | None = None, confidence: int | None = None, comment: str | None = None,
               via: str = "cli", where: str = "") -> Answer:
    """Validate, grade and add one answer inside the caller's transaction (see :func:`record_answer`)."""
    pre = f"{where}: " if where else ""
    _check_numbers(seconds, confidence, where)
    sess = _session_row(s, session_id, pre)
    puzzle = stored_puzzle(s, puzzle_id)
    if puzzle is None:
        raise ConceptChessError(f"{pre}no puzzle {puzzle_id!r}")
    if puzzle.id not in sess.puzzle_order:
        raise ConceptChessError(f"{pre}puzzle {puzzle_id} is not in session {session_id} (collection {sess.collection.name!r})")
    try:
        moves = answer_moves(chess.Board(puzzle.fen), move, line)
    except ArgumentError as e:
        raise e.within(f"{pre}puzzle {puzzle_id}: ") from None
    except ConceptChessError as e:
        raise ConceptChessError(f"{pre}puzzle {puzzle_id}: {e}") from None
    old = s.scalar(select(Answer).where(Answer.session_id == sess.id, Answer.puzzle_id == puzzle.id))
    if old is not None:
        raise ConceptChessError(f"{pre}session {session_id} already has an answer for puzzle {puzzle_id} "
                                f"(entered {old.entered_at:%Y-%m-%d %H:%M}); nothing stored")
    first, line_ok = grade(AnswerKey.of(puzzle), moves)
    a = Answer(session_id=sess.id, puzzle_id=puzzle.id, moves=[m.uci() for m in moves], first_move_correct=first,
               line_correct=line_ok, seconds=None if seconds is None else float(seconds), confidence=confidence,
               comment=(comment or None), entered_via=via)
    s.add(a)
    try:
        s.flush()
    except IntegrityError:
        raise ConceptChessError(f"{pre}session {session_id} already has an answer for puzzle {puzzle_id}; nothing stored") from None
    return a


def record_answer(db, session_id: int, puzzle_id: str, move: str, line: str | Sequence[str] | None = None,
                  seconds: float | None = None, confidence: int | None = None, comment: str | None = None,
                  via: str = "cli") -> RecordedAnswer:
    """Store one answer in its own transaction. Refused with a one-line message (nothing stored) for an
    unknown session or puzzle, a puzzle outside the session's collection, an illegal or malformed
    move, a line that starts with another move, a confidence outside 1–5, or a second answer to the
    same puzzle in the same session."""
    try:
        return _retrying(db, lambda s: RecordedAnswer.of(add_answer(s, session_id, puzzle_id, move, line, seconds, confidence,
                                                                    comment, via)))
    except IntegrityError:
        raise ConceptChessError(f"session {session_id} already has an answer for puzzle {puzzle_id}; nothing stored") from None


ANSWER_COLUMNS = {"session": ("session", "session_id"), "puzzle": ("puzzle", "puzzle_id", "PuzzleId"), "move": ("move",),
                  "line": ("line",), "seconds": ("seconds",), "confidence": ("confidence",), "comment": ("comment",)}


def import_answers(db, path: str | os.PathLike) -> int:
    """Answers from a CSV (columns ``session, puzzle, move`` and optionally ``line, seconds,
    confidence, comment``), all or nothing: one bad row stores none, and a file that answers a puzzle
    of a session on two rows is refused naming them. Returns the number stored."""
    path = Path(path)
    try:
        f = open(path, newline="", encoding="utf-8")
    except OSError as e:
        raise ConceptChessError(f"{path}: cannot read ({e.strerror})") from None
    rows = []
    with f:
        reader = csv.DictReader(f)
        header = reader.fieldnames or []
        cols = {k: next((c for c in names if c in header), None) for k, names in ANSWER_COLUMNS.items()}
        missing = [k for k in ("session", "puzzle", "move") if cols[k] is None]
        if missing:
            raise ConceptChessError(f"{path}: the header must name {', '.join(missing)} (found: {', '.join(header) or 'nothing'})")
        for row in reader:
            if not any((v or "").strip() for v in row.values() if isinstance(v, str)):
                continue
            rows.append((reader.line_num, {k: (row.get(c) or "").strip() if c else "" for k, c in cols.items()}))
    if not rows:
        raise ConceptChessError(f"{path}: no answers in the file")

    def num(value: str, kind, where: str, name: str):
        if value == "":
            return None
        try:
            return kind(value)
        except ValueError:
            raise ConceptChessError(f"{where}: {name} {value!r} is not a number") from None

    sessions = []
    for line_num, r in rows:
        sid = num(r["session"], int, f"{path}:{line_num}", "session")
        if sid is None:
            raise ConceptChessError(f"{path}:{line_num}: no session id")
        sessions.append(sid)
    # a file's second answer to a puzzle would be refused by the first one, not yet stored: name the rows instead
    lines_of = defaultdict(list)
    for sid, (line_num, r) in zip(sessions, rows, strict=True):
        lines_of[(sid, r["puzzle"])].append(line_num)
    twice = [f"lines {', '.join(map(str, lines))} answer puzzle {pid} of session {sid}"
             for (sid, pid), lines in lines_of.items() if len(lines) > 1]
    if twice:
        raise ConceptChessError(f"{path}: {'; '.join(twice)}; a session takes one answer per puzzle: nothing stored")

    def work(s: Session) -> int:
        for sid, (line_num, r) in zip(sessions, rows, strict=True):
            where = f"{path}:{line_num}"
            add_answer(s, sid, r["puzzle"], r["move"], r["line"] or None, num(r["seconds"], float, where, "seconds"),
                       num(r["confidence"], int, where, "confidence"), r["comment"] or None, via="import", where=where)
        return len(rows)

    return _retrying(db, work)
