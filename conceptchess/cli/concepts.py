"""`conceptchess concepts …`: list the human concepts and label positions with them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from conceptchess.cli.common import console, guarded

app = typer.Typer(help="Human chess concepts: list them, label positions with them.", no_args_is_help=True)

CHUNK = 2048  # positions replayed and labelled at a time


@app.command("list")
@guarded
def list_(family: str | None = typer.Option(None, "--family", help="Only this family (e.g. pawns, stockfish)")):
    """Every concept: name, type, frame, family, definition and whether it can be computed here."""
    from conceptchess.concepts import CONCEPTS, is_available
    from conceptchess.errors import ConceptChessError

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
        from conceptchess.concepts.stockfish import ENV_VAR

        console.print(f"{missing} concepts unavailable: the stockfish binary was not found "
                      f"(${ENV_VAR}, `stockfish` on PATH, /usr/games/stockfish)")


@app.command()
@guarded
def label(
    input: Path = typer.Option(..., "--input", "-i", help="Positions: a dataset folder or a JSONL positions file"),
    output: Path = typer.Option(..., "--output", "-o", help="Output table: .csv or .parquet (id column, then one column per concept)"),
    concepts: str | None = typer.Option(None, "--concepts", "-c", help="Comma-separated concept names (default: all python-chess concepts)"),
    stockfish: bool | None = typer.Option(None, "--stockfish/--no-stockfish",
                                          help="Also label every Stockfish 15.1 term (--no-stockfish: refuse them); "
                                               "default: only the Stockfish terms named in --concepts"),
):
    """Label every position with concepts: one row per position id, one column per concept."""
    from conceptchess.concepts import select
    from conceptchess.concepts.labeling import check_board, label_selection
    from conceptchess.concepts.stockfish import StockfishEval, require_stockfish
    from conceptchess.concepts.table import table_format, write_table
    from conceptchess.datasets import iter_dataset, positions_path
    from conceptchess.lc0.replay import replay

    table_format(output)  # validate everything cheap before any work
    names = [n.strip() for n in concepts.split(",") if n.strip()] if concepts is not None else None
    sel = select(names, stockfish=stockfish)
    if sel.stockfish:
        require_stockfish()
    source = positions_path(input)
    specs = list(iter_dataset(input))
    ids = [s.id for s in specs]
    parts: list[dict[str, np.ndarray]] = []
    engine = StockfishEval() if sel.stockfish else None
    try:
        columns = [TextColumn("labelling"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn()]
        with Progress(*columns, console=console, transient=True, disable=len(specs) < CHUNK) as bar:
            task = bar.add_task("labelling", total=len(specs))
            for s in range(0, len(specs), CHUNK):
                chunk = specs[s : s + CHUNK]
                boards = replay([(spec.fen, spec.moves) for spec in chunk], histories=False).boards  # None: declined
                for i, spec in enumerate(chunk):
                    where = f"{source}: id={spec.id}"
                    if boards[i] is None:  # python-chess replays it alone, for its exact error
                        boards[i] = spec.board(where)
                    check_board(boards[i], where)
                parts.append(label_selection(boards, sel, engine=engine))
                bar.advance(task, len(chunk))
    finally:
        if engine is not None:
            engine.close()
    table = {n: np.concatenate([p[n] for p in parts]) if parts else np.array([], dtype=_dtype(n)) for n in sel.names}
    write_table(output, ids, table)
    console.print(f"labelled {len(specs)} positions with {len(sel.names)} concepts → {output}")


def _dtype(name: str) -> str:
    from conceptchess.concepts import CONCEPTS

    return CONCEPTS[name].dtype
