"""The interactive terminal mode: one puzzle at a time, each answer committed as soon as it is given.

Input and output only: the moves are read with :func:`~conceptchess.study.grading.parse_move`, the
solution's replies come from :func:`~conceptchess.study.grading.solution_reply`, and each answer is
stored (and graded) by :func:`~conceptchess.study.sessions.record_answer`, as every other answer is.

>>> interactive(db, session_id=3)                # doctest: +SKIP
Session 3: Alice, phase before, collection 'fork'; 12 of 12 puzzles to go.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import chess

from conceptchess.errors import ConceptChessError
from conceptchess.study.grading import parse_move, solution_reply
from conceptchess.study.sessions import pending, record_answer


def board_text(board: chess.Board, pov: chess.Color) -> str:
    return board.unicode(borders=True, empty_square="·", orientation=pov)


class _Stop(Exception):
    pass


def interactive(db, session_id: int, ask: Callable[[str], str] = input, show: Callable[[str], None] = print,
                clock: Callable[[], float] = time.monotonic) -> int:
    """Ask for the answers of a session one puzzle at a time; each is committed at once.

    Type a move in SAN or UCI (illegal ones are refused and asked again); ``skip`` leaves a puzzle
    for later, ``quit`` (or end of input) stops. Resumes with the puzzles not answered yet, each shown with
    its number on the session's sheet (its place in the session's order). Returns how many answers were stored.
    """
    sess, todo, total = pending(db, session_id)
    show(f"Session {sess.id}: {sess.expert}, phase {sess.phase}, collection {sess.collection!r}"
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
        for p in todo:
            board = chess.Board(p.key.fen)
            pov = board.turn
            side = "White" if pov == chess.WHITE else "Black"
            last = p.last_move()
            show(f"\nPuzzle {p.number}/{total} [{p.id}] — {side} to play.{f' Last move: {last}.' if last else ''}")
            show(board_text(board, pov))
            t0 = clock()
            moves: list[chess.Move] = []
            b = board.copy(stack=False)
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
                b.push(m)
                reply = solution_reply(p.key, moves)
                if reply is None:
                    break
                show(f"  {'Black' if pov == chess.WHITE else 'White'} replies {b.san(reply)}.")
                b.push(reply)
                moves.append(reply)
                show(board_text(b, pov))
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
                sol = chess.Board(p.key.fen).variation_san([chess.Move.from_uci(u) for u in p.key.solution])
                show(f"  {'correct' if a.first_move_correct else 'not the move'} — solution: {sol}")
            else:
                show(f"  recorded ({seconds:.0f} s).")
    except _Stop:
        pass
    show(f"{stored} answer(s) stored.")
    return stored
