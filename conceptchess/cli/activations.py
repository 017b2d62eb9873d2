"""`conceptchess activations …`: extract a network's taps over a positions dataset into a store, inspect it."""

from __future__ import annotations

import time
from pathlib import Path

import typer
from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeRemainingColumn
from rich.table import Table

from conceptchess.activations import DEFAULT_CHUNK_SIZE, ActivationFiles, ExtractionSize, extract_activations
from conceptchess.cli.common import Bars, console, guarded
from conceptchess.errors import ConceptChessError
from conceptchess.networks import default_network

app = typer.Typer(help="Extract network activations (taps) over positions into chunked stores.", no_args_is_help=True)


@app.command()
@guarded
def extract(
    net: Path | None = typer.Option(None, "--net", help="Network file (default: $CONCEPTCHESS_NET or the last net in engines/)"),
    positions: Path = typer.Option(..., "--positions", help="Positions dataset folder or .jsonl file"),
    output: Path = typer.Option(..., "-o", "--output", help="Store folder (created; an interrupted one is resumed)"),
    taps: str | None = typer.Option(None, "--taps", help="Comma-separated taps, e.g. input,block0,block3 (default: input and every block)"),
    pool: str = typer.Option("full", "--pool", help="full: [C, 8, 8] per position; mean: per-channel mean over squares, [C]"),
    dtype: str = typer.Option("float16", "--dtype", help="float16 or float32"),
    chunk_size: int = typer.Option(DEFAULT_CHUNK_SIZE, "--chunk-size", help="Positions per chunk file"),
    batch_size: int = typer.Option(256, "--batch-size", help="Positions per inference batch"),
    threads: int | None = typer.Option(None, "--threads", help="ONNX Runtime intra-op threads"),
    device: str = typer.Option("auto", "--device", help="auto, cuda or cpu"),
):
    """Write the chosen taps of a network over every position of a dataset into a store folder.

    Says the folder's size before writing it (full 8×8 taps take C×64×2 bytes per position and tap in
    float16). Re-running the same command after an interruption keeps the finished chunks and does the rest.
    """
    if net is None:
        net = default_network()
        if net is None:
            raise ConceptChessError("no network given and none found (pass --net, set CONCEPTCHESS_NET or add one to engines/)")
    start = time.perf_counter()
    first_done: list[int] = []
    with Bars(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[rate]}"),
              TimeRemainingColumn(), console=console, transient=True) as bar:
        task = bar.add_task("extracting", total=None, rate="")

        def progress(done: int, total: int) -> None:
            if not first_done:
                first_done.append(done)
            spent = time.perf_counter() - start
            rate = (done - first_done[0]) / spent if spent > 0 else 0.0
            bar.update(task, completed=done, total=total, rate=f"{rate:,.0f} pos/s" if rate else "")

        def announce(size: ExtractionSize) -> None:
            bar.console.print(f"{output}: {size}", highlight=False, soft_wrap=True)

        store = extract_activations(net, positions, output, taps, pool=pool, dtype=dtype, chunk_size=chunk_size,
                                    batch_size=batch_size, device=device, threads=threads, progress=progress, announce=announce)
    already = first_done[0] if first_done else 0
    resumed = "" if not already else " (already complete)" if already == len(store) else f" ({already} were already there)"
    console.print(f"{output}: {len(store)} positions{resumed}, taps {', '.join(store.taps)} "
                  f"({store.pool}, {store.dtype.name}) with {Path(net).name} on {store.manifest['provider']}")


@app.command()
@guarded
def info(store: Path = typer.Argument(..., help="Activation folder")):
    """What a store holds: inputs, taps and shapes, positions, and whether it is complete."""
    s = ActivationFiles(store, allow_partial=True)
    m = s.manifest
    t = Table(show_header=False, box=None)
    t.add_column("field", no_wrap=True)
    t.add_column("value", overflow="fold")
    t.add_row("store", str(store))
    t.add_row("complete", "yes" if s.complete else f"no ({len(s)} of {m['positions']} positions finished)")
    t.add_row("positions", str(m["positions"]))
    t.add_row("network", f"{m['net_path']} (sha256 {m['net_sha256']})")
    t.add_row("dataset", f"{m['dataset_path']} (sha256 {m['dataset_sha256']})")
    t.add_row("pool, dtype", f"{s.pool}, {s.dtype.name}")
    t.add_row("chunks", f"{m['chunks']} of {m['chunk_size']} positions")
    for tap in s.taps:
        t.add_row(tap, "[" + ", ".join(str(d) for d in s.shape(tap)) + "]")
    t.add_row("provider", m["provider"])
    t.add_row("versions", ", ".join(f"{k} {v}" for k, v in m["versions"].items()))
    console.print(t)
