"""`conceptchess net …`: inspect, convert and evaluate networks."""

from __future__ import annotations

import json
import re
from pathlib import Path

import typer
from rich.progress import Progress
from rich.table import Table
from typer.core import TyperCommand

from conceptchess.chessfacts import mates_in_one
from conceptchess.cli.common import console, guarded, stage_bar, stage_callback
from conceptchess.engine import Engine, evaluate_file
from conceptchess.errors import ConceptChessError, PositionError
from conceptchess.files import atomic_write_bytes
from conceptchess.networks import default_network, open_network
from conceptchess.positions import PositionSpec, histories_of
from conceptchess.strength import held_out, mate_puzzles, network_strength, series_markdown, solve_mate_puzzles

app = typer.Typer(help="Inspect, convert and evaluate Leela networks (.pb.gz or lc0 .onnx).", no_args_is_help=True)

_UCI = re.compile(r"[a-h][1-8][a-h][1-8][qrbn]?|0000")


def spread_moves(args: list[str]) -> list[str]:
    """The command line with ``--moves e2e4 e7e5 …`` spelt ``--moves e2e4 --moves e7e5 …``: after its
    own value, ``--moves`` also takes the UCI moves that follow it, up to the first word that is not one.

    >>> spread_moves(["net.pb.gz", "--moves", "e2e4", "e7e5", "--top", "3"])
    ['net.pb.gz', '--moves', 'e2e4', '--moves', 'e7e5', '--top', '3']
    """
    out: list[str] = []
    i = 0
    while i < len(args):
        word = args[i]
        out.append(word)
        i += 1
        if word == "--":
            return out + args[i:]
        if word == "--moves" or word.startswith("--moves="):
            if word == "--moves" and i < len(args):
                out.append(args[i])
                i += 1
            while i < len(args) and _UCI.fullmatch(args[i]):
                out += ["--moves", args[i]]
                i += 1
    return out


class MovesCommand(TyperCommand):
    """A command whose ``--moves`` takes space-separated moves (:func:`spread_moves`)."""

    def parse_args(self, ctx, args):
        return super().parse_args(ctx, spread_moves(list(args)))


def resolve_network(file: Path | None) -> Path:
    if file is not None:
        return file
    found = default_network()
    if found is None:
        raise ConceptChessError("no network given and none found (set CONCEPTCHESS_NET or add one to engines/)")
    return found


@app.command()
@guarded
def info(file: Path = typer.Argument(..., help="Network file: lc0 .pb.gz, or a leela2onnx .onnx/.onnx.gz")):
    """Format, blocks × filters, heads, parameter count and sha256 of a network."""
    net = open_network(file)
    t = Table(show_header=False, box=None)
    t.add_column("field", no_wrap=True)
    t.add_column("value", overflow="fold")
    t.add_row("file", str(file))
    t.add_row("format", net.kind + (f" ({net.spec.input_format})" if net.spec else ""))
    if net.spec:
        s = net.spec
        t.add_row("body", f"{s.blocks} blocks × {s.filters} filters" + (f", SE {s.se_channels}" if s.se_channels else ", no SE") + f", {s.activation}")
        t.add_row("policy head", s.policy)
        t.add_row("value head", s.value)
        t.add_row("moves-left head", "yes" if s.moves_left else "no")
    else:
        t.add_row("body", net.describe())
    t.add_row("heads", ", ".join(net.heads))
    t.add_row("taps", f"block0 … block{net.blocks - 1}")
    t.add_row("parameters", f"{net.parameter_count():,}")
    if net.training_steps:
        t.add_row("training steps", str(net.training_steps))
    t.add_row("sha256", net.sha256)
    console.print(t)


@app.command()
@guarded
def convert(file: Path = typer.Argument(..., help="Network to convert (.pb.gz or lc0 .onnx)"),
            output: Path = typer.Option(..., "-o", "--output", help="Where to write the .onnx file")):
    """Write an ONNX model with outputs policy, wdl/value, mlh and a tap per block (block0 …)."""
    net = open_network(file)
    atomic_write_bytes(output, net.onnx_model.SerializeToString())
    console.print(f"wrote {output} (outputs: {', '.join(net.heads + net.taps)})")


@app.command("eval", cls=MovesCommand)
@guarded
def eval_(
    file: Path | None = typer.Argument(None, help="Network file (default: $CONCEPTCHESS_NET or the last net in engines/)"),
    fen: str | None = typer.Option(None, "--fen", help="Position as FEN (default: the start position)"),
    moves: list[str] | None = typer.Option(None, "--moves", help="UCI moves played from the FEN: --moves e2e4 e7e5 (or repeated, or quoted: \"e2e4 e7e5\")"),
    input: Path | None = typer.Option(None, "--input", help="Batch mode: JSONL positions file"),
    output: Path | None = typer.Option(None, "--output", help="Batch mode: JSONL results file"),
    top: int = typer.Option(5, "--top", help="How many moves to show"),
    batch_size: int = typer.Option(256, "--batch-size"),
    threads: int | None = typer.Option(None, "--threads", help="ONNX Runtime intra-op threads"),
    device: str = typer.Option("auto", "--device", help="auto, cuda or cpu"),
):
    """Evaluate one position (top moves and WDL) or a JSONL file of positions.

    One position: a forced mate in one is noted beside the network's value (which is the network's
    own estimate, mate or not).
    """
    if (input is None) != (output is None):
        raise ConceptChessError("batch mode needs both --input and --output")
    path = resolve_network(file)
    if input is not None:
        with Progress(console=console, transient=True) as bar:
            task = bar.add_task("evaluating", total=None)
            written = evaluate_file(path, input, output, batch_size=batch_size, threads=threads, device=device,
                                 progress=lambda n, total: bar.update(task, completed=n, total=total))
        console.print(f"evaluated {written.positions} positions with {path.name} on {written.provider} → {output}")
        return
    ms = [m for chunk in (moves or []) for m in chunk.split()]
    spec = PositionSpec("cli", fen, ms)
    try:
        hist, boards = histories_of([spec])
    except PositionError as e:  # its "id=cli: " names a position of a file; here --fen/--moves gave it
        raise ConceptChessError(str(e).removeprefix(f"id={spec.id}: ")) from None
    engine = Engine(path, threads=threads, device=device)
    ev = engine.evaluate(hist, boards)[0]
    board = boards[0]
    console.print(f"network {path} ({engine.provider})")
    console.print(f"position {board.fen()}")
    t = Table("move", "san", "probability", "logit")
    order = sorted(range(len(ev.moves)), key=lambda i: -ev.policy[i])[:top]
    for i in order:
        t.add_row(ev.moves[i].uci(), board.san(ev.moves[i]), f"{ev.policy[i]:.4f}", f"{ev.logits[i]:.3f}")
    console.print(t)
    if ev.wdl is not None:
        console.print(f"WDL {ev.wdl[0]:.4f} {ev.wdl[1]:.4f} {ev.wdl[2]:.4f} (side to move), Q {ev.value:+.4f}")
    else:
        console.print(f"value {ev.value:+.4f} (side to move)")
    mates = mates_in_one(board)
    if mates:
        console.print(f"note: {', '.join(board.san(m) for m in mates)} mates in one: the side to move wins, "
                      "whatever the network's value above says", highlight=False)
    if ev.mlh is not None:
        console.print(f"moves left {ev.mlh:.1f}")


@app.command()
@guarded
def strength(
    networks: list[Path] = typer.Argument(..., help="Networks to score (.pb.gz or lc0 .onnx), e.g. a checkpoint series"),
    labelled: Path | None = typer.Option(None, "--labelled", help="Engine-labelled dataset (positions label-engine): Stockfish "
                                         "agreement and human move matching on the games its trainer held out"),
    holdout: float = typer.Option(0.1, "--holdout", help="The trainer's --holdout (share of games held out)"),
    seed: int = typer.Option(0, "--seed", help="The trainer's --seed (which games are held out)"),
    puzzles: Path | None = typer.Option(None, "--puzzles", help="Lichess puzzle CSV: mate-in-1 and mate-in-2 rates"),
    json_out: Path | None = typer.Option(None, "--json", help="Also write every number to this JSON file"),
    markdown: Path | None = typer.Option(None, "--markdown", help="Also write a markdown table (with each checkpoint's sidecar: "
                                         "step, held-out losses, sha256) to this file"),
    search_nodes: int | None = typer.Option(None, "--search-nodes", help="Also solve the mate-in-2 and mate-in-3 puzzles "
                                            "(whole lines) by the raw policy and by a search of this many playouts per move"),
    threads: int | None = typer.Option(None, "--threads", help="ONNX Runtime intra-op threads"),
):
    """How well networks play: top-1 agreement with Stockfish, human move matching, mates found."""
    if search_nodes is not None and puzzles is None:
        raise ConceptChessError("--search-nodes solves the puzzles of --puzzles: give it")
    if search_nodes is not None and search_nodes < 1:
        raise ConceptChessError("--search-nodes must be at least 1")
    if labelled is None and puzzles is None:
        raise ConceptChessError("nothing to measure: give --labelled and/or --puzzles")
    for n in networks:
        if not n.exists():
            raise ConceptChessError(f"{n}: no such network")
    with console.status("reading held-out positions and puzzles"):
        held = held_out(labelled, holdout, seed) if labelled is not None else None
        mates = mate_puzzles(puzzles) if puzzles is not None else None
    t = Table("network", "Stockfish top-1", "human move", "mate in 1", "mate in 2 (first move)")
    rows, found = [], []
    for n in networks:
        s = network_strength(n, held, mates, threads=threads)
        found.append(s)
        rows.append(s.as_dict())
        t.add_row(s.network, *(str(x) if x is not None else "–" for x in (s.sf_agreement, s.human_matching, s.mate_in_1, s.mate_in_2)))
    console.print(t)
    if search_nodes is not None:
        t = Table("network", "mate in", "puzzles", "policy: first move", "policy: whole line", f"search {search_nodes}: first move",
                  f"search {search_nodes}: whole line", title="Mates by policy and by search (lc0-style PUCT)")
        for n, row in zip(networks, rows):
            with stage_bar() as bar:
                solved = solve_mate_puzzles(n, puzzles, nodes=search_nodes, threads=threads,
                                            progress=stage_callback(bar)(f"solving mates with {n.name}"))
            row["mates_by_search"] = [m.as_dict() for m in solved]
            for m in solved:
                t.add_row(n.name, str(m.mate_in), str(m.policy_line.total), str(m.policy_first), str(m.policy_line),
                          str(m.search_first), str(m.search_line))
        console.print(t)
    if json_out is not None:
        atomic_write_bytes(json_out, (json.dumps({"labelled": str(labelled) if labelled else None, "holdout": holdout, "seed": seed,
                                                  "puzzles": str(puzzles) if puzzles else None, "search_nodes": search_nodes,
                                                  "networks": rows}, indent=2) + "\n").encode())
    if markdown is not None:
        atomic_write_bytes(markdown, series_markdown(found, networks[0].parent).encode())
