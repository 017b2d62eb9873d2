"""Expert evaluation on SQLite: sessions, answers (refusals store nothing), CSV import, interactive
entry (kill -9 loses no answer given), two processes entering at once, and the report.

The ``check_*`` functions take a database URL and are reused by test_postgres.py.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import chess
import numpy as np
import pytest
from sqlalchemy import func, select
from test_puzzles_common import LICHESS_CSV, ROOT, invoke, run_cli
from test_puzzles_export import mined

from conceptchess.errors import ConceptChessError
from conceptchess.evaluation import bootstrap_delta, grade, import_answers, interactive, new_session, pending, record_answer, report
from conceptchess.export import export_collection, read_pgn_puzzles
from conceptchess.puzzles.lichess import import_lichess
from conceptchess.puzzles.records import add_to_collection, blind_order, collection_puzzles
from conceptchess.store import connect
from conceptchess.store.puzzles import Answer, Puzzle


def populate(url: str):
    """The Lichess fixture as collection 'lichess' and, with concept and control puzzles, 'study'."""
    db = connect(url)
    import_lichess(db, LICHESS_CSV, "lichess")
    import_lichess(db, LICHESS_CSV, "study")
    with db.begin() as s:
        add_to_collection(s, "study", [mined(0), mined(1), mined(2, "control-random", "random-fork-dir-seed0"),
                                       mined(3, "control-human", "us_forks_available")])
    return db


def count(db) -> int:
    with db.session() as s:
        return s.scalar(select(func.count()).select_from(Answer))


def wrong_move(p: Puzzle) -> str:
    b = chess.Board(p.fen)
    ok = {p.solution[0], *(p.accepted_moves[0] if p.accepted_moves else [])}
    for m in b.legal_moves:
        b.push(m)
        mate = b.is_checkmate()
        b.pop()
        if m.uci() not in ok and not mate:
            return m.uci()
    raise AssertionError("no wrong move")


# -- checks shared with PostgreSQL ---------------------------------------------------------------------
def check_sessions_and_answers(url: str) -> None:
    db = populate(url)
    s1 = new_session(db, "Alice", "before", "lichess")
    with db.session() as s:
        ids = [p.id for p in collection_puzzles(s, "lichess")]
    assert s1.puzzle_order == ids and not s1.blinded and s1.order_seed is None
    s2 = new_session(db, "Alice", "after", "lichess", blind=True, seed=4)
    assert s2.puzzle_order == blind_order(ids, 4) and s2.order_seed == 4 and s2.expert_id == s1.expert_id
    a = record_answer(db, s1.id, "cc0Fk", "Nc7+", line="Nc7+ Kd7 Nxa8", seconds=12.5, confidence=4, comment="fork")
    assert (a.first_move_correct, a.line_correct, a.moves) == (True, True, ["b5c7", "e8d7", "c7a8"])
    b = record_answer(db, s1.id, "cc0Bk", "a1a8")  # UCI works too; a one-move puzzle's line is its move
    assert (b.first_move_correct, b.line_correct) == (True, True)
    c = record_answer(db, s1.id, "cc0M2", "e2e8")  # right first move, no line given for a 2-mover
    assert (c.first_move_correct, c.line_correct) == (True, None)
    d = record_answer(db, s2.id, "cc0M2", "Rxe8+", line="Qxe8 Re1e8")  # the line without its first move
    assert (d.first_move_correct, d.line_correct, d.moves) == (True, True, ["e2e8", "d8e8", "e1e8"])
    e = record_answer(db, s2.id, "cc0Fk", "Nc7+", line="Nc7+ Kd7 Nd5")
    assert (e.first_move_correct, e.line_correct) == (True, False)
    n = count(db)
    bad = [
        (dict(session_id=s1.id, puzzle_id="cc0Sm", move="Qa1"), "illegal move 'Qa1'"),
        (dict(session_id=s1.id, puzzle_id="cc0Sm", move="Qz9"), "malformed move 'Qz9'"),
        (dict(session_id=s1.id, puzzle_id="cc0Sm", move="e2e5"), "illegal move 'e2e5'"),
        (dict(session_id=999, puzzle_id="cc0Sm", move="Qxf7"), "no evaluation session 999"),
        (dict(session_id=s1.id, puzzle_id="zzzzz", move="Qxf7"), "no puzzle 'zzzzz'"),
        (dict(session_id=s1.id, puzzle_id=mined(0).id, move="Nc7+"), "is not in session"),
        (dict(session_id=s1.id, puzzle_id="cc0Fk", move="Nc7+"), "already has an answer for puzzle cc0Fk"),
        (dict(session_id=s1.id, puzzle_id="cc0Sm", move="Qxf7", confidence=6), "confidence must be 1–5"),
        (dict(session_id=s1.id, puzzle_id="cc0Sm", move="Qxf7", seconds=-1), "seconds must be"),
        (dict(session_id=s1.id, puzzle_id="cc0Sm", move="Qxf7", line="Qxf7 Ke7"), "illegal move 'Ke7'"),
        (dict(session_id=s1.id, puzzle_id="cc0Sm", move="Qxf7", line="Bxf7"), "--line starts with Bxf7"),
    ]
    for kwargs, message in bad:
        with pytest.raises(ConceptChessError, match=message) as err:
            record_answer(db, **kwargs)
        assert "\n" not in str(err.value)
        assert count(db) == n  # nothing stored
    with pytest.raises(ConceptChessError, match="phase must be one of before, study, after"):
        new_session(db, "Alice", "during", "lichess")
    with pytest.raises(ConceptChessError, match="no collection named 'nope'"):
        new_session(db, "Alice", "before", "nope")


def check_concurrent_entry(url: str, tmp_path: Path) -> None:
    """Two processes enter answers at the same moment, racing for the same puzzles: every answer is
    stored exactly once and every loser is told so."""
    db = populate(url)
    sessions = [new_session(db, name, "before", "study").id for name in ("Ann", "Bob")]
    with db.session() as s:
        puzzles = collection_puzzles(s, "study")
    pairs = [(sid, p.id, p.solution[0]) for sid in sessions for p in puzzles]
    start_at = time.time() + 4.0
    code = """
import json, sys, time
from conceptchess.errors import ConceptChessError
from conceptchess.evaluation import record_answer
from conceptchess.store import connect
url, start_at, pairs = sys.argv[1], float(sys.argv[2]), json.loads(sys.argv[3])
db = connect(url)
time.sleep(max(0.0, start_at - time.time()))
ok = dup = 0
for sid, pid, move in pairs:
    try:
        record_answer(db, sid, pid, move, seconds=1.0)
        ok += 1
    except ConceptChessError as e:
        assert "already has an answer" in str(e), str(e)
        dup += 1
print(json.dumps({"ok": ok, "dup": dup}))
"""
    procs = [subprocess.Popen([sys.executable, "-c", code, url, str(start_at), json.dumps(order)], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, cwd=ROOT) for order in (pairs, pairs[::-1])]
    outs = [p.communicate(timeout=120) for p in procs]
    for p, (_, err) in zip(procs, outs, strict=True):
        assert p.returncode == 0, err
    res = [json.loads(out) for out, _ in outs]
    assert sum(r["ok"] for r in res) == len(pairs) and sum(r["dup"] for r in res) == len(pairs)
    with db.session() as s:
        got = s.execute(select(Answer.session_id, Answer.puzzle_id)).all()
    assert sorted(got) == sorted((sid, pid) for sid, pid, _ in pairs)


# -- SQLite ---------------------------------------------------------------------------------------------
@pytest.fixture
def url(tmp_path):
    return f"sqlite:///{tmp_path / 'eval.sqlite'}"


def test_sessions_and_answers(url):
    check_sessions_and_answers(url)


def test_concurrent_entry(url, tmp_path):
    check_concurrent_entry(url, tmp_path)


def test_grading_of_mates_and_alternatives(url):
    db = populate(url)
    with db.session() as s:
        p = next(p for p in collection_puzzles(s, "study") if p.fen.startswith("7k/3pp1pp"))
        lichess_mate = s.get(Puzzle, "cc0Bk")
    for uci in ("a1a8", "b1b8"):  # either mate in one
        assert grade(p, [chess.Move.from_uci(uci)]) == (True, True)
    assert grade(p, [chess.Move.from_uci("g1f1")]) == (False, False)
    assert grade(lichess_mate, [chess.Move.from_uci("a1a8")]) == (True, True)


def test_blind_session_matches_blind_export(url, tmp_path):
    db = populate(url)
    sess = new_session(db, "Cleo", "before", "study", blind=True, seed=21)
    sheet = export_collection(db, "study", tmp_path / "sheet.pgn", blind=True, seed=21)
    assert [g.headers["PuzzleId"] for g in read_pgn_puzzles(sheet.path)] == sess.puzzle_order
    drawn = new_session(db, "Cleo", "after", "study", blind=True)
    assert drawn.order_seed is not None and drawn.puzzle_order == blind_order(_ids(db), drawn.order_seed)


def _ids(db):
    with db.session() as s:
        return [p.id for p in collection_puzzles(s, "study")]


def test_import_answers_all_or_nothing(url, tmp_path):
    db = populate(url)
    sid = new_session(db, "Dan", "before", "lichess").id
    good = tmp_path / "good.csv"
    good.write_text(f"session,puzzle,move,line,seconds,confidence,comment\n{sid},cc0Bk,Ra8#,,30,5,easy\n"
                    f"{sid},cc0Fk,b5c7,Nc7+ Kd7 Nxa8,61.5,3,\n")
    assert import_answers(db, good) == 2
    bad = tmp_path / "bad.csv"
    bad.write_text(f"session_id,puzzle_id,move\n{sid},cc0Hq,Nxd4\n{sid},cc0Sm,Qa1\n")
    with pytest.raises(ConceptChessError, match=r"bad.csv:3: puzzle cc0Sm: illegal move 'Qa1'"):
        import_answers(db, bad)
    dup = tmp_path / "dup.csv"
    dup.write_text(f"session,puzzle,move\n{sid},cc0Hq,Nxd4\n{sid},cc0Hq,Nxd4\n")
    with pytest.raises(ConceptChessError, match=r"dup.csv:3: session \d+ already has an answer for puzzle cc0Hq"):
        import_answers(db, dup)
    assert count(db) == 2
    with pytest.raises(ConceptChessError, match="the header must name move"):
        (tmp_path / "h.csv").write_text("session,puzzle\n1,x\n")
        import_answers(db, tmp_path / "h.csv")


def test_interactive_in_process(url):
    db = populate(url)
    sid = new_session(db, "Eve", "study", "lichess").id
    inputs = iter(["Ra9", "Kh2", "Ra8", "4", "", "Nc7+", "Nxa8", "", "good", "skip", "quit"])
    shown = []
    ticks = iter(range(0, 1000, 7))
    n = interactive(db, sid, ask=lambda _: next(inputs), show=shown.append, clock=lambda: float(next(ticks)))
    assert n == 2
    text = "\n".join(shown)
    assert "malformed move 'Ra9'" in text and "illegal move 'Kh2'" in text and "Black replies Kd7." in text
    assert "solution: 31. Ra8#" in text and "♔" in text
    with db.session() as s:
        got = {a.puzzle_id: a for a in s.scalars(select(Answer))}
    assert got["cc0Bk"].moves == ["a1a8"] and got["cc0Bk"].confidence == 4 and got["cc0Bk"].seconds == 7.0
    assert got["cc0Fk"].moves == ["b5c7", "e8d7", "c7a8"] and got["cc0Fk"].line_correct and got["cc0Fk"].comment == "good"
    assert got["cc0Bk"].entered_via == "interactive"
    _, todo, total = pending(db, sid)
    assert total == 7 and [p.id for p in todo][0] == "cc0Hq" and len(todo) == 5  # cc0Hq was skipped: still to do


def test_kill_during_interactive_entry_loses_no_given_answer(url):
    db = populate(url)
    sid = new_session(db, "Finn", "before", "lichess").id
    proc = subprocess.Popen([sys.executable, "-m", "conceptchess.cli.evaluation", "interactive", "--session", str(sid), "--db", url],
                            stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        proc.stdin.write("Ra8\n5\nquick\n")
        proc.stdin.flush()
        deadline = time.time() + 60
        while count(db) < 1 and time.time() < deadline and proc.poll() is None:
            time.sleep(0.1)
        assert count(db) == 1, proc.stderr.read() if proc.poll() is not None else "no answer stored in time"
        proc.stdin.write("Nc7+\n")  # half-way through the next puzzle
        proc.stdin.flush()
        time.sleep(0.5)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == -signal.SIGKILL
    with db.session() as s:
        (a,) = s.scalars(select(Answer)).all()
    assert (a.puzzle_id, a.moves, a.confidence, a.comment, a.first_move_correct) == ("cc0Bk", ["a1a8"], 5, "quick", True)
    r = run_cli("evaluation", "interactive", "--session", str(sid), "--db", url, input="quit\n")
    assert r.returncode == 0 and "6 of 7 puzzles to go" in r.stdout


def test_cli_entry(url):
    populate(url)
    r = invoke("evaluation", "session", "new", "--expert", "Gus", "--phase", "before", "--collection", "lichess", "--blind",
                "--seed", "9", "--db", url)
    assert r.exit_code == 0, r.stderr
    sid = r.stdout.strip().splitlines()[-1]
    assert sid.isdigit()
    r = invoke("evaluation", "answer", "--session", sid, "--puzzle", "cc0Sm", "--move", "Qxf7#", "--seconds", "45", "--db", url)
    assert r.exit_code == 0, r.stderr
    for args, message in [(["--puzzle", "cc0Sm", "--move", "Qxf7"], "already has an answer"),
                          (["--puzzle", "cc0Bk", "--move", "Ra9"], "malformed move"),
                          (["--puzzle", "cc0Bk", "--move", "Kh2"], "illegal move"),
                          (["--puzzle", "nope", "--move", "e4"], "no puzzle 'nope'")]:
        r = invoke("evaluation", "answer", "--session", sid, *args, "--db", url)
        assert r.exit_code == 2 and r.stderr.startswith("error: ") and message in r.stderr
        assert len(r.stderr.strip().splitlines()) == 1
    r = invoke("evaluation", "answer", "--session", "77", "--puzzle", "cc0Sm", "--move", "Qxf7", "--db", url)
    assert r.exit_code == 2 and r.stderr.strip() == "error: no evaluation session 77"
    assert count(connect(url)) == 1
    r = invoke("evaluation", "session", "list", "--db", url)
    assert r.exit_code == 0 and "Gus" in r.stdout and "1/7" in r.stdout


def _answer_all(db, sid: int, correct: set[str]) -> None:
    with db.session() as s:
        sess_puzzles = collection_puzzles(s, "study")
    for p in sess_puzzles:
        record_answer(db, sid, p.id, p.solution[0] if p.id in correct else wrong_move(p), seconds=10.0, confidence=3)


def test_report(url, tmp_path):
    db = populate(url)
    with db.session() as s:
        ps = collection_puzzles(s, "study")
    concept = {p.id for p in ps if p.kind == "concept"}
    controls = [p.id for p in ps if p.kind.startswith("control")]
    lichess = [p.id for p in ps if p.kind == "imported"]
    for expert in ("Hal", "Ida"):
        before = new_session(db, expert, "before", "study").id
        after = new_session(db, expert, "after", "study", blind=True, seed=1).id
        _answer_all(db, before, {controls[0], *lichess[:3]})
        _answer_all(db, after, concept | {controls[0], *lichess[:4]})
    rep = report(db, seed=5, resamples=500, output=tmp_path / "rep")
    again = report(db, seed=5, resamples=500, output=None)
    assert rep.changes == again.changes and rep.controls == again.controls  # seeded
    rates = {(r["expert"], r["group"], r["phase"]): r for r in rep.rates}
    assert rates[("Hal", "fork-dir", "before")]["rate"] == 0 and rates[("Hal", "fork-dir", "after")]["rate"] == 1
    assert rates[("Hal", "lichess", "after")]["n"] == 7 and rates[("Hal", "lichess", "after")]["solved"] == 4
    ch = {(c["expert"], c["group"]): c for c in rep.changes}
    assert ch[("Ida", "fork-dir")]["delta"] == 1 and ch[("Ida", "fork-dir")]["lo"] == ch[("Ida", "fork-dir")]["hi"] == 1
    assert ch[("Ida", "control: random direction")]["delta"] == 0
    ctrl = {c["comparison"]: c for c in rep.controls}
    assert ctrl["concept"]["delta"] == 1 and ctrl["control"]["delta"] == 0 and ctrl["concept − control"]["delta"] == 1
    assert ctrl["imported"]["delta"] == pytest.approx(1 / 7)
    assert rep.png.stat().st_size > 10_000 and rep.png.read_bytes()[:4] == b"\x89PNG"
    assert "Before → after" in rep.html.read_text()
    r = invoke("evaluation", "report", "--db", url, "--output", str(tmp_path / "cli"))
    assert r.exit_code == 0, r.stderr
    assert "concept − control" in r.stdout and (tmp_path / "cli.png").exists()


def test_report_needs_answers(url):
    with pytest.raises(ConceptChessError, match="no answers recorded yet"):
        report(populate(url), output=None)


def test_bootstrap_interval_covers_the_difference():
    rng = np.random.default_rng(0)
    b = (rng.random(60) < 0.3).astype(float)
    a = (rng.random(60) < 0.7).astype(float)
    d, lo, hi = bootstrap_delta(b, a, np.random.default_rng(1), 2000)
    assert lo < d < hi and d == pytest.approx(a.mean() - b.mean()) and lo > 0
