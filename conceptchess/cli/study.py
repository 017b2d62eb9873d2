"""`conceptchess eval …`: expert study sessions, answers (one at a time, interactive, or from CSV), report.

The command keeps its name ``eval``; what it runs is an expert *study* (:mod:`conceptchess.study`).
"""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from conceptchess.cli.common import DB_HELP, console, err_console, guarded, options_named
from conceptchess.store import connect
from conceptchess.study import report as study_report
from conceptchess.study import sessions, terminal

app = typer.Typer(help="Expert studies: sessions, answers, before/after report.", no_args_is_help=True)
session_app = typer.Typer(help="Study sessions (an expert × a phase × a collection).", no_args_is_help=True)
app.add_typer(session_app, name="session")

# the library's arguments as this command's options, in the messages that name them
OPTIONS = {"line": "--line", "seed": "--seed", "blind": "--blind", "include_rejected": "--include-rejected", "again": "--again",
           "all_puzzles": "--all-puzzles"}


@session_app.command("new")
@guarded
@options_named(OPTIONS)
def session_new(expert: str = typer.Option(..., "--expert", help="Expert's name (created on first use)"),
                phase: str = typer.Option(..., "--phase", help="before, study or after"),
                collection: str = typer.Option(..., "--collection", "-c", help="Collection the expert solves"),
                blind: bool = typer.Option(False, "--blind", help="Blinded: shuffled by a recorded seed, no concept shown"),
                seed: int | None = typer.Option(None, "--seed", help="Order seed of a blinded session (drawn if not given)"),
                include_rejected: bool = typer.Option(False, "--include-rejected",
                                                      help="Also show the puzzles that `puzzles verify` rejected (left out by default)"),
                again: bool = typer.Option(False, "--again", help="Start another session of this expert, phase and collection"),
                db: str | None = typer.Option(None, "--db", help=DB_HELP)):
    """Start a session on the collection's puzzles that verification did not reject; prints its id as the last line."""
    sess = sessions.new_session(connect(db), expert, phase, collection, blind, seed, include_rejected=include_rejected, again=again)
    if sess.earlier:
        err_console.print(f"warning: {expert} already has {phase} session(s) {', '.join(map(str, sess.earlier))} on {collection!r}; "
                          "this one shows the same puzzles again (--again)", highlight=False)
    n = len(sess.puzzle_order)
    notes = []
    if sess.left_out:
        notes.append(f"{len(sess.left_out)} left out (rejected by `puzzles verify`; --include-rejected shows them)")
    if sess.rejected_kept:
        notes.append(f"{sess.rejected_kept} rejected by `puzzles verify`, shown anyway (--include-rejected)")
    if sess.unverified:
        notes.append(f"{sess.unverified} never verified, shown")
    sheet = f"conceptchess puzzles export -c {collection!r} --blind --seed {sess.order_seed}"
    sheet += " --verified-only" if sess.left_out else ""  # the session's puzzles, in its order
    extra = f", blinded, order seed {sess.order_seed} (sheet: {sheet})" if sess.blinded else ""
    console.print(f"session for {expert}, phase {phase}, collection {collection!r}: {n} puzzles"
                  f"{' (' + '; '.join(notes) + ')' if notes else ''}{extra}", highlight=False)
    print(sess.id)


@session_app.command("list")
@guarded
def session_list(db: str | None = typer.Option(None, "--db", help=DB_HELP)):
    """List sessions with how many answers each has."""
    t = Table("id", "expert", "phase", "collection", "blinded", "answers", "created")
    for sess in sessions.list_sessions(connect(db)):
        t.add_row(str(sess.id), sess.expert, sess.phase, sess.collection, "yes" if sess.blinded else "no",
                  f"{sess.answered}/{len(sess.puzzle_order)}", f"{sess.created_at:%Y-%m-%d %H:%M}")
    console.print(t)


@app.command()
@guarded
@options_named(OPTIONS)
def answer(session: int = typer.Option(..., "--session", "-s", help="Session id"),
           puzzle: str = typer.Option(..., "--puzzle", "-p", help="Puzzle id"),
           move: str = typer.Option(..., "--move", "-m", help="The first move, SAN (e4, Nxf7+) or UCI (e2e4)"),
           line: str | None = typer.Option(None, "--line", help="The whole line, e.g. 'Nf7+ Kg8 Nh6+' (with or without the first move)"),
           seconds: float | None = typer.Option(None, "--seconds", help="Time taken"),
           confidence: int | None = typer.Option(None, "--confidence", help="1 (guess) … 5 (sure)"),
           comment: str | None = typer.Option(None, "--comment"),
           db: str | None = typer.Option(None, "--db", help=DB_HELP)):
    """Record one answer (refused, with nothing stored, if illegal, unknown or already answered)."""
    a = sessions.record_answer(connect(db), session, puzzle, move, line, seconds, confidence, comment)
    console.print(f"answer {a.id} stored for puzzle {puzzle} in session {session}")


@app.command()
@guarded
def interactive(session: int = typer.Option(..., "--session", "-s", help="Session id"),
                db: str | None = typer.Option(None, "--db", help=DB_HELP)):
    """Show each unanswered puzzle, read the moves (SAN or UCI), time them and commit each answer at once."""
    def show(text: str) -> None:
        print(text, flush=True)

    terminal.interactive(connect(db), session, show=show)


@app.command("import")
@guarded
def import_(csv_file: Path = typer.Argument(..., help="CSV with session, puzzle, move[, line, seconds, confidence, comment]"),
            db: str | None = typer.Option(None, "--db", help=DB_HELP)):
    """Import answers from a CSV, all or nothing."""
    n = sessions.import_answers(connect(db), csv_file)
    console.print(f"{n} answer(s) stored")


@app.command()
@guarded
def report(output: Path | None = typer.Option(None, "--output", "-o", help="Prefix of the PNG and HTML (default: puzzles/eval-report)"),
           seed: int = typer.Option(0, "--seed", help="Bootstrap seed"),
           resamples: int = typer.Option(2000, "--resamples", min=100, help="Bootstrap resamples"),
           all_puzzles: bool = typer.Option(False, "--all-puzzles",
                                            help="Compare each expert's whole before and after sets (default: the puzzles in both)"),
           db: str | None = typer.Option(None, "--db", help=DB_HELP)):
    """Solve rates per expert × concept × phase, before → after with bootstrap CIs, concept vs control across experts.

    Each expert's change compares the puzzles that expert answered in both phases; where there are none (a blinded
    design with a different sheet after), the whole sets, as the report says."""
    rp = study_report
    rep = rp.report(connect(db), seed=seed, resamples=resamples, output=output or rp.REPORT_PREFIX, all_puzzles=all_puzzles)
    for title, head, rows, caption in [
            ("Solve rates", rp.RATE_HEAD, [rp.rate_cells(r) for r in rep.rates], rp.LINE_METHOD),
            (f"Before → after, per expert (bootstrap seed {seed})", rp.CHANGE_HEAD, [rp.change_cells(c) for c in rep.changes],
             rp.CHANGE_METHOD),
            (rp.COMPARISON_TITLE, rp.COMPARISON_HEAD, [rp.comparison_cells(c, rep.all_puzzles) for c in rep.comparisons],
             rp.COMPARISON_METHOD)]:
        t = Table(*head, title=title, caption=caption)
        for row in rows:
            t.add_row(*row)
        console.print(t)
    # the notes under the table: beside it they would wrap it past a terminal's width
    for c in rep.comparisons:
        if note := rp.comparison_note(c):
            console.print(f"{c.group}: {note}", highlight=False)
    console.print(rp.compared_sentence(rep) + ("" if all_puzzles else " (--all-puzzles compares the whole sets everywhere.)"),
                  highlight=False)
    console.print(f"wrote {rep.png} and {rep.html}")


if __name__ == "__main__":
    app()
