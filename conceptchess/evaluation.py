"""Expert evaluation: sessions, answers and the before/after report.

A *session* is one expert solving one collection in one phase (``before``, ``study``, ``after``),
blinded or not; a blinded session shows the puzzles in the order of a recorded seed (the same order
as ``conceptchess puzzles export --blind --seed S``). An *answer* is the move (and optionally the
whole line) an expert gave for one puzzle of the session; a second answer for the same puzzle in
the same session is refused (and the database's unique constraint refuses it even when two
processes race). Each answer is committed on its own as soon as it is given, so an interrupted
interactive session loses nothing already answered and resumes where it stopped.

Grading: the first move is correct when it is the solution's move or one of the verified
alternatives, or when it gives checkmate. The line is correct when every solver move of the given
line is (the opponent's moves in it are not judged); a line that stops early is not correct; with
no line given it is unknown for puzzles longer than one move.

>>> sid = new_session(db, "Alice", "before", "fork", blind=True, seed=3).id    # doctest: +SKIP
>>> record_answer(db, sid, "a1b2c3d4e5", "Nc7+", seconds=40, confidence=4)    # doctest: +SKIP
>>> report(db, seed=0).changes                                               # doctest: +SKIP
"""

from __future__ import annotations

import csv
import html
import os
import re
import secrets
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import chess
import numpy as np
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session

from conceptchess.errors import ConceptChessError
from conceptchess.files import atomic_path
from conceptchess.puzzles.records import blind_order, collection_puzzles, find_collection
from conceptchess.store import ROOT
from conceptchess.store.puzzles import PHASES, Answer, EvalSession, Expert, Puzzle

REPORT_PREFIX = ROOT / "puzzles" / "eval-report"
_MOVE_NUMBER = re.compile(r"^\d+\.+$")


# -- moves -------------------------------------------------------------------------------------------
def parse_move(board: chess.Board, text: str) -> chess.Move:
    """A legal move from SAN (``Nf3``, ``exd5``, ``O-O``) or UCI (``g1f3``); a one-line error otherwise."""
    t = (text or "").strip()
    side = "White" if board.turn == chess.WHITE else "Black"
    if not t:
        raise ConceptChessError(f"no move given ({side} to move)")
    if t in ("0000", "--", "Z0"):
        raise ConceptChessError("a null move is not an answer")
    try:
        return board.parse_uci(t.lower()) if re.fullmatch(r"[a-hA-H][1-8][a-hA-H][1-8][qrbnQRBN]?", t) else board.parse_san(t)
    except chess.IllegalMoveError:
        raise ConceptChessError(f"illegal move {t!r} in {board.fen()} ({side} to move)") from None
    except chess.AmbiguousMoveError:
        raise ConceptChessError(f"ambiguous move {t!r} in {board.fen()} (say which piece, e.g. Nbd2, or use UCI)") from None
    except (chess.InvalidMoveError, ValueError):
        raise ConceptChessError(f"malformed move {t!r} (use SAN like Nf3 or UCI like g1f3)") from None


def split_line(text: str | list[str] | None) -> list[str]:
    """Tokens of a line like ``"1. Nf3 Kg8 2. Qh7#"`` or ``"g1f3,g8h8"`` (move numbers dropped)."""
    if text is None:
        return []
    parts = text if isinstance(text, list) else re.split(r"[\s,;]+", text)
    out = []
    for tok in parts:
        tok = tok.strip()
        if not tok or _MOVE_NUMBER.match(tok):
            continue
        tok = re.sub(r"^\d+\.+", "", tok)
        if tok:
            out.append(tok)
    return out


def answer_moves(board: chess.Board, move: str, line: str | list[str] | None = None) -> list[chess.Move]:
    """The moves an answer gives: ``move``, then the rest of ``line`` (which may or may not repeat
    ``move`` as its first move), each legal in turn."""
    first = parse_move(board, move)
    tokens = split_line(line)
    if not tokens:
        return [first]
    b = board.copy(stack=False)
    try:
        line_first = parse_move(b, tokens[0])
    except ConceptChessError:
        line_first = None
    if line_first == first:
        tokens = tokens[1:]
    elif line_first is not None:
        raise ConceptChessError(f"--line starts with {tokens[0]} but the move given is {board.san(first)}")
    out = [first]
    b.push(first)
    for tok in tokens:
        m = parse_move(b, tok)
        out.append(m)
        b.push(m)
    return out


def _accepted(p: Puzzle, k: int) -> set[str]:
    alts = p.accepted_moves[k] if p.accepted_moves and k < len(p.accepted_moves) else []
    return {p.solution[2 * k], *alts} if 2 * k < len(p.solution) else set()


def _mates(board: chess.Board, move: chess.Move) -> bool:
    board.push(move)
    try:
        return board.is_checkmate()
    finally:
        board.pop()


def grade(p: Puzzle, moves: list[chess.Move]) -> tuple[bool, bool | None]:
    """``(first move correct, full line correct)`` of the moves given for puzzle ``p`` (see module docs)."""
    board = chess.Board(p.fen)
    first = moves[0].uci() in _accepted(p, 0) or _mates(board, moves[0])
    n = (len(p.solution) + 1) // 2
    if n == 1:
        return first, first
    if len(moves) == 1:
        return first, None
    b = board.copy(stack=False)
    for k in range(n):
        if 2 * k >= len(moves):
            return first, False
        m = moves[2 * k]
        if _mates(b, m):
            return first, True
        if m.uci() not in _accepted(p, k):
            return first, False
        b.push(m)
        if 2 * k + 1 < len(moves):
            b.push(moves[2 * k + 1])
    return first, True


# -- sessions ---------------------------------------------------------------------------------------
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


def check_phase(phase: str) -> str:
    if phase not in PHASES:
        raise ConceptChessError(f"phase must be one of {', '.join(PHASES)}, not {phase!r}")
    return phase


def new_session(db, expert: str, phase: str, collection: str, blind: bool = False, seed: int | None = None) -> EvalSession:
    """Start a session (the expert is created on first use). Blinded: the order is the collection's
    shuffled by ``seed`` (drawn when not given); otherwise the collection's own order."""
    check_phase(phase)
    expert = (expert or "").strip()
    if not expert or len(expert) > 200:
        raise ConceptChessError("expert name must be 1–200 characters")
    if seed is not None and not blind:
        raise ConceptChessError("--seed orders a blinded session; add --blind")

    def work(s: Session) -> EvalSession:
        ids = [p.id for p in collection_puzzles(s, collection)]
        if not ids:
            raise ConceptChessError(f"collection {collection!r} has no puzzles")
        c = find_collection(s, collection)
        e = s.scalar(select(Expert).where(Expert.name == expert))
        if e is None:
            e = Expert(name=expert)
            s.add(e)
            s.flush()
        order_seed = (secrets.randbelow(2**31) if seed is None else int(seed)) if blind else None
        order = blind_order(ids, order_seed) if blind else ids
        sess = EvalSession(expert_id=e.id, phase=phase, collection_id=c.id, blinded=bool(blind), order_seed=order_seed,
                           puzzle_order=order)
        s.add(sess)
        s.flush()
        return sess

    return _retrying(db, work)


def get_session(s: Session, session_id: int) -> EvalSession:
    sess = s.get(EvalSession, int(session_id))
    if sess is None:
        raise ConceptChessError(f"no evaluation session {session_id}")
    return sess


def _check_numbers(seconds: float | None, confidence: int | None, where: str = "") -> None:
    pre = f"{where}: " if where else ""
    if seconds is not None and not (seconds >= 0 and np.isfinite(seconds)):
        raise ConceptChessError(f"{pre}seconds must be a number ≥ 0, not {seconds}")
    if confidence is not None and confidence not in (1, 2, 3, 4, 5):
        raise ConceptChessError(f"{pre}confidence must be 1–5, not {confidence}")


def add_answer(s: Session, session_id: int, puzzle_id: str, move: str, line: str | list[str] | None = None,
               seconds: float | None = None, confidence: int | None = None, comment: str | None = None,
               via: str = "cli", where: str = "") -> Answer:
    """Validate and add one answer inside the caller's transaction (see :func:`record_answer`)."""
    pre = f"{where}: " if where else ""
    _check_numbers(seconds, confidence, where)
    sess = s.get(EvalSession, int(session_id))
    if sess is None:
        raise ConceptChessError(f"{pre}no evaluation session {session_id}")
    puzzle = s.get(Puzzle, str(puzzle_id))
    if puzzle is None:
        raise ConceptChessError(f"{pre}no puzzle {puzzle_id!r}")
    if puzzle.id not in sess.puzzle_order:
        raise ConceptChessError(f"{pre}puzzle {puzzle_id} is not in session {session_id} (collection {sess.collection.name!r})")
    try:
        moves = answer_moves(chess.Board(puzzle.fen), move, line)
    except ConceptChessError as e:
        raise ConceptChessError(f"{pre}puzzle {puzzle_id}: {e}") from None
    old = s.scalar(select(Answer).where(Answer.session_id == sess.id, Answer.puzzle_id == puzzle.id))
    if old is not None:
        raise ConceptChessError(f"{pre}session {session_id} already has an answer for puzzle {puzzle_id} "
                                f"(entered {old.entered_at:%Y-%m-%d %H:%M}); nothing stored")
    first, line_ok = grade(puzzle, moves)
    a = Answer(session_id=sess.id, puzzle_id=puzzle.id, moves=[m.uci() for m in moves], first_move_correct=first,
               line_correct=line_ok, seconds=None if seconds is None else float(seconds), confidence=confidence,
               comment=(comment or None), entered_via=via)
    s.add(a)
    try:
        s.flush()
    except IntegrityError:
        raise ConceptChessError(f"{pre}session {session_id} already has an answer for puzzle {puzzle_id}; nothing stored") from None
    return a


def record_answer(db, session_id: int, puzzle_id: str, move: str, line: str | list[str] | None = None,
                  seconds: float | None = None, confidence: int | None = None, comment: str | None = None,
                  via: str = "cli") -> Answer:
    """Store one answer in its own transaction. Refused with a one-line message (nothing stored) for an
    unknown session or puzzle, a puzzle outside the session's collection, an illegal or malformed
    move, a confidence outside 1–5, or a second answer to the same puzzle in the same session."""
    try:
        return _retrying(db, lambda s: add_answer(s, session_id, puzzle_id, move, line, seconds, confidence, comment, via))
    except IntegrityError:
        raise ConceptChessError(f"session {session_id} already has an answer for puzzle {puzzle_id}; nothing stored") from None


ANSWER_COLUMNS = {"session": ("session", "session_id"), "puzzle": ("puzzle", "puzzle_id", "PuzzleId"), "move": ("move",),
                  "line": ("line",), "seconds": ("seconds",), "confidence": ("confidence",), "comment": ("comment",)}


def import_answers(db, path: str | os.PathLike) -> int:
    """Answers from a CSV (columns ``session, puzzle, move`` and optionally ``line, seconds,
    confidence, comment``), all or nothing: one bad row stores none. Returns the number stored."""
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

    def work(s: Session) -> int:
        for line_num, r in rows:
            where = f"{path}:{line_num}"
            sid = num(r["session"], int, where, "session")
            if sid is None:
                raise ConceptChessError(f"{where}: no session id")
            add_answer(s, sid, r["puzzle"], r["move"], r["line"] or None, num(r["seconds"], float, where, "seconds"),
                       num(r["confidence"], int, where, "confidence"), r["comment"] or None, via="import", where=where)
        return len(rows)

    return _retrying(db, work)


def pending(db, session_id: int) -> tuple[EvalSession, list[Puzzle], int]:
    """The session, its puzzles not answered yet (in session order), and how many it has in all."""
    with db.session() as s:
        sess = get_session(s, session_id)
        done = set(s.scalars(select(Answer.puzzle_id).where(Answer.session_id == sess.id)))
        order = list(sess.puzzle_order)
        puzzles = {p.id: p for p in s.scalars(select(Puzzle).where(Puzzle.id.in_(order)))}
        _ = sess.collection.name, sess.expert.name
        return sess, [puzzles[i] for i in order if i not in done and i in puzzles], len(order)


# -- interactive entry ----------------------------------------------------------------------------------
def board_text(board: chess.Board, pov: chess.Color) -> str:
    return board.unicode(borders=True, empty_square="·", orientation=pov)


def _last_move(p: Puzzle) -> str:
    if not (p.start_fen and p.leading_moves):
        return ""
    b = chess.Board(p.start_fen)
    for u in p.leading_moves[:-1]:
        b.push_uci(u)
    last = b.parse_uci(p.leading_moves[-1])
    num = f"{b.fullmove_number}." if b.turn == chess.WHITE else f"{b.fullmove_number}..."
    return f" Last move: {num}{b.san(last)}."


class _Stop(Exception):
    pass


def interactive(db, session_id: int, ask: Callable[[str], str] = input, show: Callable[[str], None] = print,
                clock: Callable[[], float] = time.monotonic) -> int:
    """Ask for the answers of a session one puzzle at a time; each is committed at once.

    Type a move in SAN or UCI (illegal ones are refused and asked again); ``skip`` leaves a puzzle
    for later, ``quit`` (or end of input) stops. Resumes with the puzzles not answered yet.
    Returns how many answers were stored.
    """
    sess, todo, total = pending(db, session_id)
    show(f"Session {sess.id}: {sess.expert.name}, phase {sess.phase}, collection {sess.collection.name!r}"
         f"{' (blinded)' if sess.blinded else ''}; {len(todo)} of {total} puzzles to go.")
    stored = 0

    def prompt(text: str) -> str:
        try:
            reply = ask(text)
        except EOFError:
            raise _Stop() from None
        if reply.strip().lower() in ("quit", "exit", "q"):
            raise _Stop()
        return reply.strip()

    try:
        for n, p in enumerate(todo, start=total - len(todo) + 1):
            board = chess.Board(p.fen)
            pov = board.turn
            side = "White" if pov == chess.WHITE else "Black"
            show(f"\nPuzzle {n}/{total} [{p.id}] — {side} to play.{_last_move(p)}")
            show(board_text(board, pov))
            t0 = clock()
            moves: list[chess.Move] = []
            b = board.copy(stack=False)
            k = 0
            skipped = False
            while True:
                text = prompt(f"{side} move (SAN or UCI, 'skip', 'quit'): ")
                if text.lower() == "skip":
                    skipped = True
                    break
                try:
                    m = parse_move(b, text)
                except ConceptChessError as e:
                    show(f"  {e}")
                    continue
                moves.append(m)
                ok = m.uci() in _accepted(p, k) or _mates(b, m)
                b.push(m)
                reply_ply = 2 * k + 1
                if not ok or b.is_game_over() or reply_ply >= len(p.solution) or m.uci() != p.solution[2 * k]:
                    break
                reply = chess.Move.from_uci(p.solution[reply_ply])
                show(f"  {'Black' if pov == chess.WHITE else 'White'} replies {b.san(reply)}.")
                b.push(reply)
                moves.append(reply)
                show(board_text(b, pov))
                k += 1
            if skipped:
                continue
            seconds = round(clock() - t0, 1)
            while True:
                c = prompt("confidence 1–5 (Enter to skip): ")
                if c == "" or c in "12345" and len(c) == 1:
                    confidence = int(c) if c else None
                    break
                show("  confidence must be 1, 2, 3, 4 or 5")
            comment = prompt("comment (Enter to skip): ") or None
            a = record_answer(db, sess.id, p.id, moves[0].uci(), [m.uci() for m in moves], seconds, confidence, comment,
                              via="interactive")
            stored += 1
            if sess.phase == "study":
                sol = chess.Board(p.fen).variation_san([chess.Move.from_uci(u) for u in p.solution])
                show(f"  {'correct' if a.first_move_correct else 'not the move'} — solution: {sol}")
            else:
                show(f"  recorded ({seconds:.0f} s).")
    except _Stop:
        pass
    show(f"{stored} answer(s) stored.")
    return stored


# -- report -----------------------------------------------------------------------------------------
def group_of(p: Puzzle) -> str:
    """The row label of a puzzle in the report: its concept, or the control it belongs to."""
    if p.kind == "concept":
        return p.concept or "concept"
    if p.kind == "control-random":
        return "control: random direction"
    if p.kind == "control-human":
        return f"control: human {p.concept}" if p.concept else "control: human concept"
    return "lichess" if p.source == "lichess" else p.kind


# the sign of each cell's solve rate in an expert's change: before, after, then (difference-in-differences)
# the baseline's before and after
_SIGNS = (-1.0, 1.0, 1.0, -1.0)


def expert_delta(cells: Sequence[np.ndarray]) -> float:
    """One expert's change: ``after − before`` solve rate of ``(before, after)``, or the difference-in-differences
    ``(after − before) − (base_after − base_before)`` of ``(before, after, base_before, base_after)``.

    >>> expert_delta((np.array([0., 1.]), np.array([1., 1.]), np.array([0., 0.]), np.array([0., 1.])))
    0.0
    """
    return float(sum(s * np.mean(c) for s, c in zip(_SIGNS, cells)))


def bootstrap_delta(experts: Sequence[Sequence[np.ndarray]], rng: np.random.Generator,
                    resamples: int = 2000) -> tuple[float, float, float]:
    """The mean over ``experts`` of each one's :func:`expert_delta` (its cells: 1.0 solved, 0.0 not), and its
    95% percentile interval from a two-level bootstrap: the experts are drawn with replacement, then each
    drawn expert's answers in each cell are drawn with replacement (afresh for every draw of that expert).

    With one expert this is the bootstrap of that expert's answers alone.

    >>> bootstrap_delta([(np.zeros(3), np.ones(3))] * 2, np.random.default_rng(0), 100)
    (1.0, 1.0, 1.0)
    """
    cells = [tuple(np.asarray(c, dtype=float) for c in e) for e in experts]
    if not cells:
        raise ConceptChessError("a change needs at least one expert")
    for e in cells:
        if len(e) not in (2, 4) or any(c.ndim != 1 or not len(c) for c in e):
            raise ConceptChessError("each expert needs answers in each of (before, after) or (before, after, base_before, base_after)")
    n = len(cells)
    point = float(np.mean([expert_delta(e) for e in cells]))
    drawn = rng.integers(0, n, size=(resamples, n))
    deltas = np.zeros((resamples, n))
    for i, e in enumerate(cells):
        slots = drawn == i
        k = int(slots.sum())
        if k:
            d = np.zeros(k)
            for sign, c in zip(_SIGNS, e):
                d += sign * c[rng.integers(0, len(c), size=(k, len(c)))].mean(axis=1)
            deltas[slots] = d
    lo, hi = np.percentile(deltas.mean(axis=1), [2.5, 97.5])
    return point, float(lo), float(hi)


@dataclass(frozen=True)
class Rate:
    """One expert's answers to one group's puzzles in one phase."""

    expert: str
    group: str  # group_of the puzzles: a concept, a control, lichess
    phase: str
    n: int  # answers
    solved: int  # first move correct
    rate: float  # solved / n
    line_rate: float | None  # correct lines among the answers whose line is known
    seconds: float | None  # median time
    confidence: float | None  # mean, 1–5


@dataclass(frozen=True)
class Change:
    """One expert's before → after change on one group's puzzles; the interval resamples that expert's answers
    (None when a phase has a single answer: resampling one answer gives a point, not an interval)."""

    expert: str
    group: str
    n_before: int  # answers before
    n_after: int  # answers after
    before: float  # solve rate
    after: float
    delta: float  # after − before
    ci_low: float | None  # 95% bootstrap interval of delta
    ci_high: float | None

    @property
    def n_answers(self) -> int:
        return self.n_before + self.n_after


@dataclass(frozen=True)
class Comparison:
    """A before → after change across experts, one puzzle kind (or concept − control) at a time.

    It rests only on the experts who have both phases (for ``concept − control``: both phases of both
    kinds): ``delta`` is the mean of their own changes (for ``concept − control`` the mean of their
    differences-in-differences), ``before``/``after`` the means of their own rates (of their concept − control
    differences); the interval resamples experts, then each one's answers (:func:`bootstrap_delta`).
    With fewer than 2 such experts there is no estimate: the numbers are None and ``refused_reason``
    says why.
    """

    group: str  # concept, control, control-random, control-human, imported, or concept − control
    n_experts: int  # experts the row rests on
    n_answers: int  # their answers in the cells compared
    before: float | None
    after: float | None
    delta: float | None
    ci_low: float | None  # 95% bootstrap interval of delta
    ci_high: float | None
    excluded: tuple[str, ...] = ()  # experts with answers here but a phase missing
    refused_reason: str | None = None


@dataclass(frozen=True)
class Report:
    """What :func:`report` found: rates, each expert's changes, the comparisons across experts, and the files."""

    rates: tuple[Rate, ...] = ()  # per expert × group × phase
    changes: tuple[Change, ...] = ()  # per expert × group with both phases
    comparisons: tuple[Comparison, ...] = ()  # across experts: concept, controls, imported, concept − control
    seed: int = 0
    resamples: int = 2000
    png: Path | None = None
    html: Path | None = None


@dataclass(frozen=True)
class _Graded:
    expert: str
    phase: str
    group: str
    kind: str
    first: bool
    line: bool | None
    seconds: float | None
    confidence: int | None


def _answers(db) -> list[_Graded]:
    with db.session() as s:
        q = (select(Answer, EvalSession, Expert, Puzzle).join(EvalSession, Answer.session_id == EvalSession.id)
             .join(Expert, EvalSession.expert_id == Expert.id).join(Puzzle, Answer.puzzle_id == Puzzle.id))
        return [_Graded(e.name, sess.phase, group_of(p), p.kind, bool(a.first_move_correct), a.line_correct, a.seconds,
                        a.confidence) for a, sess, e, p in s.execute(q)]


COMPARED_KINDS = ("concept", "control", "control-random", "control-human", "imported")
CONCEPT_MINUS_CONTROL = "concept − control"
MIN_EXPERTS = 2


def _kinds_of(kind: str) -> tuple[str, ...]:
    """The comparisons a puzzle of ``kind`` counts in (a control counts as ``control`` and as itself)."""
    return ("control", kind) if kind.startswith("control") else (kind,)


def _comparison(group: str, parts: tuple[str, ...], cells: dict[tuple[str, str, str], list[float]], rng: np.random.Generator,
                resamples: int) -> Comparison | None:
    """The row of the kinds ``parts`` (one kind, or concept and control for a difference-in-differences);
    None when no expert answered puzzles of one of them before or after."""
    keys = [(kind, phase) for kind in parts for phase in ("before", "after")]
    seen = [{e for (k, e, _) in cells if k == kind} for kind in parts]
    if not all(seen):
        return None
    experts = sorted(set().union(*seen))
    both = [e for e in experts if all((k, e, ph) in cells for k, ph in keys)]
    excluded = tuple(e for e in experts if e not in both)
    n_answers = sum(len(cells[(k, e, ph)]) for e in both for k, ph in keys)
    if len(both) < MIN_EXPERTS:
        what = " and ".join(parts) + (" puzzles each" if len(parts) > 1 else " puzzles")
        return Comparison(group, len(both), n_answers, None, None, None, None, None, excluded,
                          f"fewer than {MIN_EXPERTS} experts have both phases of {what} ({len(both)} of {len(experts)} do)")
    # per expert: (before, after) or, for concept − control, (before, after, base_before, base_after)
    per_expert = [tuple(np.array(cells[(k, e, ph)]) for k, ph in keys) for e in both]
    delta, lo, hi = bootstrap_delta(per_expert, rng, resamples)
    before = float(np.mean([x[0].mean() - (x[2].mean() if len(x) == 4 else 0.0) for x in per_expert]))
    after = float(np.mean([x[1].mean() - (x[3].mean() if len(x) == 4 else 0.0) for x in per_expert]))
    return Comparison(group, len(both), n_answers, before, after, delta, lo, hi, excluded)


def report(db, *, seed: int = 0, resamples: int = 2000, output: str | os.PathLike | None = REPORT_PREFIX) -> Report:
    """Solve rates per expert × concept × phase, each expert's before → after changes, and the changes
    across experts (:class:`Comparison`: concept puzzles, controls, imported, concept − control), with
    seeded bootstrap CIs; writes ``<output>.png`` and ``<output>.html`` unless ``output`` is None."""
    rows = _answers(db)
    if not rows:
        raise ConceptChessError("no answers recorded yet")
    rng = np.random.default_rng(seed)
    by_cell: dict[tuple, list[_Graded]] = defaultdict(list)
    for r in rows:
        by_cell[(r.expert, r.group, r.phase)].append(r)
    phase_rank = {p: i for i, p in enumerate(PHASES)}
    rates = []
    for (expert, group, phase), rs in sorted(by_cell.items(), key=lambda kv: (kv[0][0], kv[0][1], phase_rank[kv[0][2]])):
        lines = [r.line for r in rs if r.line is not None]
        secs = [r.seconds for r in rs if r.seconds is not None]
        conf = [r.confidence for r in rs if r.confidence is not None]
        rates.append(Rate(expert, group, phase, len(rs), sum(r.first for r in rs), float(np.mean([r.first for r in rs])),
                          float(np.mean(lines)) if lines else None, float(np.median(secs)) if secs else None,
                          float(np.mean(conf)) if conf else None))
    changes = []
    for expert in sorted({r.expert for r in rows}):
        for group in sorted({r.group for r in rows}):
            b = np.array([r.first for r in by_cell.get((expert, group, "before"), [])], float)
            a = np.array([r.first for r in by_cell.get((expert, group, "after"), [])], float)
            if not (len(b) and len(a)):
                continue
            d, lo, hi = bootstrap_delta([(b, a)], rng, resamples) if min(len(b), len(a)) > 1 else (expert_delta((b, a)), None, None)
            changes.append(Change(expert, group, len(b), len(a), float(b.mean()), float(a.mean()), d, lo, hi))
    cells: dict[tuple[str, str, str], list[float]] = defaultdict(list)  # (kind, expert, phase) → 1.0 solved / 0.0 not
    for r in rows:
        if r.phase in ("before", "after"):
            for kind in _kinds_of(r.kind):
                cells[(kind, r.expert, r.phase)].append(float(r.first))
    comparisons = [_comparison(kind, (kind,), cells, rng, resamples) for kind in COMPARED_KINDS]
    comparisons.append(_comparison(CONCEPT_MINUS_CONTROL, ("concept", "control"), cells, rng, resamples))
    rep = Report(tuple(rates), tuple(changes), tuple(c for c in comparisons if c is not None), seed, resamples)
    if output is not None:
        rep = replace(rep, png=plot_report(rep, Path(str(output) + ".png")))
        rep = replace(rep, html=write_report_html(rep, Path(str(output) + ".html")))
    return rep


def _atomic(path: Path, write: Callable[[Path], None]) -> Path:
    with atomic_path(path) as tmp:
        write(tmp)
    return path


def _pct(x: float | None) -> str:
    return "–" if x is None else f"{100 * x:.0f}%"


def _pts(delta: float | None, lo: float | None, hi: float | None) -> tuple[str, str]:
    if delta is None:
        return "–", "–"
    return f"{100 * delta:+.0f} pts", "–" if lo is None else f"[{100 * lo:+.0f}, {100 * hi:+.0f}]"


# the report's tables as text, shared by the HTML page and the terminal
RATE_HEAD = ("expert", "concept", "phase", "n", "solved", "rate", "line", "median s", "confidence")
CHANGE_HEAD = ("expert", "concept", "answers", "before", "after", "change", "95% CI")
COMPARISON_HEAD = ("comparison", "experts", "answers", "before", "after", "change", "95% CI", "note")


def rate_cells(r: Rate) -> list[str]:
    return [r.expert, r.group, r.phase, str(r.n), str(r.solved), _pct(r.rate), _pct(r.line_rate),
            "–" if r.seconds is None else f"{r.seconds:.0f}", "–" if r.confidence is None else f"{r.confidence:.1f}"]


def change_cells(c: Change) -> list[str]:
    return [c.expert, c.group, f"{c.n_before} + {c.n_after}", _pct(c.before), _pct(c.after), *_pts(c.delta, c.ci_low, c.ci_high)]


def comparison_note(c: Comparison) -> str:
    """Why a row is refused, and who it leaves out."""
    out = [f"refused: {c.refused_reason}"] if c.refused_reason else []
    if c.excluded:
        out.append(f"left out (a phase missing): {', '.join(c.excluded)}")
    return "; ".join(out)


def comparison_cells(c: Comparison) -> list[str]:
    # concept − control's before and after are differences of rates
    rate = (lambda x: "–" if x is None else f"{100 * x:+.0f} pts") if c.group == CONCEPT_MINUS_CONTROL else _pct
    return [c.group, str(c.n_experts), str(c.n_answers), rate(c.before), rate(c.after), *_pts(c.delta, c.ci_low, c.ci_high),
            comparison_note(c)]


CHANGE_METHOD = "answers: before + after; 95% interval: the expert's answers resampled (none from a single answer in a phase)"
COMPARISON_TITLE = "Concept puzzles vs controls (across experts)"
COMPARISON_METHOD = (f"each row: the mean of each expert's own after − before change (concept − control: of each one's "
                     f"difference-in-differences) over the experts with both phases; 95% interval: experts resampled with "
                     f"replacement, then each one's answers; refused with fewer than {MIN_EXPERTS} such experts")


def plot_report(rep: Report, path: Path) -> Path:
    """Solve rate by group and phase, the mean over experts (left), and before → after changes with 95% CIs,
    per expert and across experts with their numbers of experts and answers (right)."""
    import matplotlib  # lazy: matplotlib is heavy and only the report draws

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    groups = sorted({r.group for r in rep.rates})
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(14, max(3.5, 0.5 * max(len(groups), len(rep.changes) + len(rep.comparisons)) + 2)))
    width = 0.8 / len(PHASES)
    for j, phase in enumerate(PHASES):
        vals = []
        for g in groups:
            rs = [r.rate for r in rep.rates if r.group == g and r.phase == phase]
            vals.append(np.mean(rs) if rs else np.nan)
        ax1.barh(np.arange(len(groups)) + (j - 1) * width, vals, height=width, label=phase)
    ax1.set_yticks(np.arange(len(groups)), groups)
    ax1.set_xlim(0, 1)
    ax1.set_xlabel("first move solved (mean over the experts who answered in that phase)")
    ax1.legend(loc="lower right")
    ax1.set_title("Solve rate by concept and phase")
    labels, deltas, los, his, refused = [], [], [], [], []
    for c in rep.changes:
        labels.append(f"{c.expert} · {c.group} ({c.n_answers} answers)")
        deltas.append(c.delta), los.append(np.nan if c.ci_low is None else c.ci_low), his.append(np.nan if c.ci_high is None else c.ci_high)
    for c in rep.comparisons:
        labels.append(f"all · {c.group} ({c.n_experts} experts, {c.n_answers} answers)")
        if c.delta is None:
            refused.append((len(labels) - 1, f"refused: {c.n_experts} experts with both phases, {MIN_EXPERTS} needed"))
            deltas.append(np.nan), los.append(np.nan), his.append(np.nan)
        else:
            deltas.append(c.delta), los.append(c.ci_low), his.append(c.ci_high)
    if labels:
        y = np.arange(len(labels))
        d = np.array(deltas, float)
        lo, hi = np.array(los, float), np.array(his, float)
        point = ~np.isnan(d) & np.isnan(lo)
        ax2.errorbar(np.where(point, np.nan, d), y, xerr=[d - lo, hi - d], fmt="o", capsize=3)
        if point.any():
            ax2.scatter(d[point], y[point], marker="x", color="black", zorder=3, label="no interval (a single answer in a phase)")
            ax2.legend(loc="lower right", fontsize=8)
        for k, reason in refused:
            ax2.text(-1.0, k, reason, va="center", fontsize=8, color="dimgrey", bbox={"color": "white"})
        ax2.axvline(0, color="grey", lw=1)
        ax2.set_xlim(-1.05, 1.05)
        ax2.set_ylim(-0.6, len(labels) - 0.4)
        ax2.set_yticks(y, labels)
    else:
        ax2.text(0.5, 0.5, "no expert has both a before and an after session", ha="center", va="center", transform=ax2.transAxes)
    ax2.set_xlabel(f"after − before solve rate, 95% bootstrap CI\n(seed {rep.seed}, {rep.resamples} resamples; across experts:\n"
                   "experts resampled, then their answers)")
    ax2.set_title("Change after studying, concept vs control")
    fig.tight_layout()
    _atomic(path, lambda p: fig.savefig(p, dpi=110, format="png"))
    plt.close(fig)
    return path


def write_report_html(rep: Report, path: Path) -> Path:
    def table(title: str, head: Sequence[str], rows: list[list[str]], note: str = "") -> str:
        h = "".join(f"<th>{html.escape(c)}</th>" for c in head)
        body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in r) + "</tr>" for r in rows)
        return f"<h2>{html.escape(title)}</h2>" + (f"<p>{html.escape(note)}</p>" if note else "") + f"<table><tr>{h}</tr>{body}</table>"

    parts = [table("Solve rates", RATE_HEAD, [rate_cells(r) for r in rep.rates]),
             table("Before → after, per expert", CHANGE_HEAD, [change_cells(c) for c in rep.changes], CHANGE_METHOD),
             table(COMPARISON_TITLE, COMPARISON_HEAD, [comparison_cells(c) for c in rep.comparisons], COMPARISON_METHOD)]
    doc = ("<!doctype html><meta charset='utf-8'><title>conceptchess expert evaluation</title>"
           "<style>table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:2px 6px}</style>"
           f"<h1>Expert evaluation</h1><p>bootstrap seed {rep.seed}, {rep.resamples} resamples</p>" + "".join(parts) +
           (f"<p><img src='{html.escape(rep.png.name)}'></p>" if rep.png else ""))
    return _atomic(path, lambda p: p.write_text(doc, encoding="utf-8"))
