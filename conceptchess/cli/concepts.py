"""`conceptchess concepts …`: list the human concepts and label positions with them."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import typer
from rich import box
from rich.padding import Padding
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table
from rich.text import Text

from conceptchess.cli.common import console, guarded, options_named
from conceptchess.concepts import CONCEPTS, is_available
from conceptchess.concepts.stockfish import ENV_VAR
from conceptchess.datasets import LABEL_CHUNK, label_dataset
from conceptchess.errors import ConceptChessError

app = typer.Typer(help="Human chess concepts: list them, label positions with them.", no_args_is_help=True)

SOURCE_NAMES = {"python-chess": "python-chess", "stockfish": "Stockfish 15.1 classical terms"}


@app.command("list")
@guarded
def list_(family: str | None = typer.Option(None, "--family", help="Only this family (e.g. pawns, stockfish)"),
          long: bool = typer.Option(False, "--long", "-l", help="Also each concept's frame, definition, categories and whether it "
                                                                 "can be computed here")):
    """Every concept: name, type and family (--long: with its frame, definition and availability)."""
    concepts = [c for c in CONCEPTS.values() if family is None or c.family == family]
    if not concepts:
        families = sorted({c.family for c in CONCEPTS.values()})
        raise ConceptChessError(f"unknown family {family!r} (families: {', '.join(families)})")
    by_source = Counter(c.source for c in concepts)
    parts = [f"{by_source[source]} {SOURCE_NAMES[source]}" for source in SOURCE_NAMES if by_source[source]]
    title = f"{len(concepts)} concepts: {', '.join(parts)}"
    console.print(title, highlight=False)
    if long:
        for c in concepts:
            available = "" if is_available(c) else ", [red]unavailable[/red]"
            console.print(f"\n[bold]{c.name}[/bold]  {c.type}, frame {c.frame}, {c.family}{available}", highlight=False)
            categories = f" [{', '.join(f'{i} {k}' for i, k in enumerate(c.categories))}]" if c.categories else ""
            console.print(Padding(Text(c.definition + categories), (0, 0, 0, 2)))
    else:
        t = Table(box=box.SIMPLE_HEAD)
        t.add_column("name", no_wrap=True)
        t.add_column("type", no_wrap=True)
        t.add_column("family", no_wrap=True)
        for c in concepts:
            t.add_row(c.name, c.type, c.family + ("" if is_available(c) else " [red](unavailable)[/red]"))
        console.print(t)
    missing = sum(not is_available(c) for c in concepts)
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
