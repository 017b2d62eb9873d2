"""`conceptchess concepts …`: list the human concepts and label positions with them."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from conceptchess.cli.common import console, guarded, options_named
from conceptchess.concepts import CONCEPTS, is_available
from conceptchess.concepts.stockfish import ENV_VAR
from conceptchess.datasets import LABEL_CHUNK, label_dataset
from conceptchess.errors import ConceptChessError

app = typer.Typer(help="Human chess concepts: list them, label positions with them.", no_args_is_help=True)


@app.command("list")
@guarded
def list_(family: str | None = typer.Option(None, "--family", help="Only this family (e.g. pawns, stockfish)")):
    """Every concept: name, type, frame, family, definition and whether it can be computed here."""
    concepts = [c for c in CONCEPTS.values() if family is None or c.family == family]
    if not concepts:
        families = sorted({c.family for c in CONCEPTS.values()})
        raise ConceptChessError(f"unknown family {family!r} (families: {', '.join(families)})")
    missing = 0
    t = Table(title=f"{len(concepts)} concepts")
    t.add_column("name", no_wrap=True, min_width=max(len(c.name) for c in concepts))
    t.add_column("type", no_wrap=True)
    t.add_column("frame", no_wrap=True)
    t.add_column("family", no_wrap=True)
    t.add_column("definition", overflow="fold")
    t.add_column("available")
    for c in concepts:
        definition = c.definition + (f" [{', '.join(f'{i} {k}' for i, k in enumerate(c.categories))}]" if c.categories else "")
        ok = is_available(c)
        missing += not ok
        t.add_row(c.name, c.type, c.frame, c.family, definition, "yes" if ok else "[red]no[/red]")
    console.print(t)
    if missing:
        console.print(f"{missing} concepts unavailable: the stockfish binary was not found "
                      f"(${ENV_VAR}, `stockfish` on PATH, /usr/games/stockfish)")


@app.command()
@guarded
@options_named({"stockfish": "--no-stockfish"})
def label(
    input: Path = typer.Option(..., "--input", "-i", help="Positions: a dataset folder or a JSONL positions file"),
    output: Path = typer.Option(..., "--output", "-o", help="Output table: .csv or .parquet (id column, then one column per concept)"),
    concepts: str | None = typer.Option(None, "--concepts", "-c", help="Comma-separated concept names (default: all python-chess concepts)"),
    stockfish: bool | None = typer.Option(None, "--stockfish/--no-stockfish",
                                          help="Also label every Stockfish 15.1 term (--no-stockfish: refuse them); "
                                               "default: only the Stockfish terms named in --concepts"),
):
    """Label every position with concepts: one row per position id, one column per concept."""
    columns = [TextColumn("labelling"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn()]
    with Progress(*columns, console=console, transient=True) as bar:
        task = bar.add_task("labelling", total=None, visible=False)

        def progress(done: int, total: int | None) -> None:
            bar.update(task, completed=done, total=total, visible=total is not None and total >= LABEL_CHUNK)

        table = label_dataset(input, output, concepts, stockfish=stockfish, progress=progress)
    console.print(f"labelled {table.positions} positions with {len(table.concepts)} concepts → {output}")
