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
from collections.abc import Callable
from dataclasses import dataclass, field
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


def bootstrap_delta(before: np.ndarray, after: np.ndarray, rng: np.random.Generator, resamples: int = 2000,
                    base_before: np.ndarray | None = None, base_after: np.ndarray | None = None) -> tuple[float, float, float]:
    """``after.mean() - before.mean()`` (minus the same for a baseline pair when given) and its 95%
    percentile bootstrap interval, each group resampled on its own."""

    def means(x: np.ndarray) -> np.ndarray:
        return x[rng.integers(0, len(x), size=(resamples, len(x)))].mean(axis=1)

    point = after.mean() - before.mean()
    boot = means(after) - means(before)
    if base_before is not None:
        point -= base_after.mean() - base_before.mean()
        boot = boot - (means(base_after) - means(base_before))
    lo, hi = np.percentile(boot, [2.5, 97.5])
    return float(point), float(lo), float(hi)


@dataclass
class Report:
    rates: list[dict] = field(default_factory=list)
    changes: list[dict] = field(default_factory=list)
    controls: list[dict] = field(default_factory=list)
    seed: int = 0
    resamples: int = 2000
    png: Path | None = None
    html: Path | None = None


def _answers(db) -> list[dict]:
    with db.session() as s:
        q = (select(Answer, EvalSession, Expert, Puzzle).join(EvalSession, Answer.session_id == EvalSession.id)
             .join(Expert, EvalSession.expert_id == Expert.id).join(Puzzle, Answer.puzzle_id == Puzzle.id))
        return [{"expert": e.name, "phase": sess.phase, "group": group_of(p), "kind": p.kind,
                 "first": bool(a.first_move_correct), "line": a.line_correct, "seconds": a.seconds, "confidence": a.confidence}
                for a, sess, e, p in s.execute(q)]


def report(db, *, seed: int = 0, resamples: int = 2000, output: str | os.PathLike | None = REPORT_PREFIX) -> Report:
    """Solve rates per expert × concept × phase, before → after changes with seeded bootstrap CIs,
    and concept puzzles against control puzzles; writes ``<output>.png`` and ``<output>.html``
    unless ``output`` is None."""
    rows = _answers(db)
    if not rows:
        raise ConceptChessError("no answers recorded yet")
    rng = np.random.default_rng(seed)
    rep = Report(seed=seed, resamples=resamples)
    cells: dict[tuple, list[dict]] = defaultdict(list)
    for r in rows:
        cells[(r["expert"], r["group"], r["phase"])].append(r)
    phase_rank = {p: i for i, p in enumerate(PHASES)}
    for (expert, group, phase), rs in sorted(cells.items(), key=lambda kv: (kv[0][0], kv[0][1], phase_rank[kv[0][2]])):
        lines = [r["line"] for r in rs if r["line"] is not None]
        secs = [r["seconds"] for r in rs if r["seconds"] is not None]
        conf = [r["confidence"] for r in rs if r["confidence"] is not None]
        rep.rates.append({"expert": expert, "group": group, "phase": phase, "n": len(rs), "solved": sum(r["first"] for r in rs),
                          "rate": float(np.mean([r["first"] for r in rs])),
                          "line_rate": float(np.mean(lines)) if lines else None,
                          "seconds": float(np.median(secs)) if secs else None,
                          "confidence": float(np.mean(conf)) if conf else None})
    experts = sorted({r["expert"] for r in rows})
    groups = sorted({r["group"] for r in rows})
    for expert in experts:
        for group in groups:
            b = np.array([r["first"] for r in cells.get((expert, group, "before"), [])], float)
            a = np.array([r["first"] for r in cells.get((expert, group, "after"), [])], float)
            if len(b) and len(a):
                d, lo, hi = bootstrap_delta(b, a, rng, resamples)
                rep.changes.append({"expert": expert, "group": group, "before": float(b.mean()), "after": float(a.mean()),
                                    "delta": d, "lo": lo, "hi": hi, "n_before": len(b), "n_after": len(a)})
    by_kind: dict[tuple, list[float]] = defaultdict(list)
    for r in rows:
        kind = "concept" if r["kind"] == "concept" else "control" if r["kind"].startswith("control") else r["kind"]
        by_kind[(kind, r["phase"])].append(float(r["first"]))
        if r["kind"].startswith("control"):
            by_kind[(r["kind"], r["phase"])].append(float(r["first"]))
    arr = {k: np.array(v) for k, v in by_kind.items()}
    for kind in ("concept", "control", "control-random", "control-human", "imported"):
        b, a = arr.get((kind, "before")), arr.get((kind, "after"))
        if b is None or a is None:
            continue
        d, lo, hi = bootstrap_delta(b, a, rng, resamples)
        rep.controls.append({"comparison": kind, "before": float(b.mean()), "after": float(a.mean()), "delta": d, "lo": lo,
                             "hi": hi, "n_before": len(b), "n_after": len(a)})
    cb, ca, kb, ka = (arr.get(k) for k in (("concept", "before"), ("concept", "after"), ("control", "before"), ("control", "after")))
    if all(x is not None for x in (cb, ca, kb, ka)):
        d, lo, hi = bootstrap_delta(cb, ca, rng, resamples, kb, ka)
        rep.controls.append({"comparison": "concept − control", "before": float(cb.mean() - kb.mean()),
                             "after": float(ca.mean() - ka.mean()), "delta": d, "lo": lo, "hi": hi,
                             "n_before": len(cb) + len(kb), "n_after": len(ca) + len(ka)})
    if output is not None:
        rep.png = plot_report(rep, Path(str(output) + ".png"))
        rep.html = write_report_html(rep, Path(str(output) + ".html"))
    return rep


def _atomic(path: Path, write: Callable[[Path], None]) -> Path:
    with atomic_path(path) as tmp:
        write(tmp)
    return path


def plot_report(rep: Report, path: Path) -> Path:
    """Solve rate by group and phase (left) and before → after change with 95% CIs (right)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    groups = sorted({r["group"] for r in rep.rates})
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(13, max(3.5, 0.5 * len(groups) + 2)))
    width = 0.8 / len(PHASES)
    for j, phase in enumerate(PHASES):
        vals = []
        for g in groups:
            rs = [r for r in rep.rates if r["group"] == g and r["phase"] == phase]
            n = sum(r["n"] for r in rs)
            vals.append(sum(r["solved"] for r in rs) / n if n else np.nan)
        ax1.barh(np.arange(len(groups)) + (j - 1) * width, vals, height=width, label=phase)
    ax1.set_yticks(np.arange(len(groups)), groups)
    ax1.set_xlim(0, 1)
    ax1.set_xlabel("first move solved (all experts)")
    ax1.legend(loc="lower right")
    ax1.set_title("Solve rate by concept and phase")
    labels, deltas, los, his = [], [], [], []
    for c in rep.changes:
        labels.append(f"{c['expert']} · {c['group']}")
        deltas.append(c["delta"]), los.append(c["lo"]), his.append(c["hi"])
    for c in rep.controls:
        labels.append(f"all · {c['comparison']}")
        deltas.append(c["delta"]), los.append(c["lo"]), his.append(c["hi"])
    if labels:
        y = np.arange(len(labels))
        d = np.array(deltas)
        ax2.errorbar(d, y, xerr=[d - np.array(los), np.array(his) - d], fmt="o", capsize=3)
        ax2.axvline(0, color="grey", lw=1)
        ax2.set_yticks(y, labels)
    else:
        ax2.text(0.5, 0.5, "no expert has both a before and an after session", ha="center", va="center", transform=ax2.transAxes)
    ax2.set_xlabel(f"after − before solve rate (95% bootstrap CI, seed {rep.seed}, {rep.resamples} resamples)")
    ax2.set_title("Change after studying, concept vs control")
    fig.tight_layout()
    _atomic(path, lambda p: fig.savefig(p, dpi=110, format="png"))
    plt.close(fig)
    return path


def _pct(x: float | None) -> str:
    return "–" if x is None else f"{100 * x:.0f}%"


def write_report_html(rep: Report, path: Path) -> Path:
    def table(title: str, head: list[str], rows: list[list[str]]) -> str:
        h = "".join(f"<th>{html.escape(c)}</th>" for c in head)
        body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in r) + "</tr>" for r in rows)
        return f"<h2>{html.escape(title)}</h2><table><tr>{h}</tr>{body}</table>"

    parts = [table("Solve rates", ["expert", "concept", "phase", "n", "solved", "rate", "line", "median s", "confidence"],
                   [[r["expert"], r["group"], r["phase"], r["n"], r["solved"], _pct(r["rate"]), _pct(r["line_rate"]),
                     "–" if r["seconds"] is None else f"{r['seconds']:.0f}",
                     "–" if r["confidence"] is None else f"{r['confidence']:.1f}"] for r in rep.rates]),
             table("Before → after", ["expert", "concept", "before", "after", "change", "95% CI"],
                   [[c["expert"], c["group"], _pct(c["before"]), _pct(c["after"]), f"{100 * c['delta']:+.0f} pts",
                     f"[{100 * c['lo']:+.0f}, {100 * c['hi']:+.0f}]"] for c in rep.changes]),
             table("Concept puzzles vs controls", ["comparison", "before", "after", "change", "95% CI"],
                   [[c["comparison"], _pct(c["before"]), _pct(c["after"]), f"{100 * c['delta']:+.0f} pts",
                     f"[{100 * c['lo']:+.0f}, {100 * c['hi']:+.0f}]"] for c in rep.controls])]
    doc = ("<!doctype html><meta charset='utf-8'><title>conceptchess expert evaluation</title>"
           "<style>table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:2px 6px}</style>"
           f"<h1>Expert evaluation</h1><p>bootstrap seed {rep.seed}, {rep.resamples} resamples</p>" + "".join(parts) +
           (f"<p><img src='{html.escape(rep.png.name)}'></p>" if rep.png else ""))
    return _atomic(path, lambda p: p.write_text(doc, encoding="utf-8"))
