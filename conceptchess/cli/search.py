"""`conceptchess search …`: run the PUCT search on positions."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.table import Table

from conceptchess.cli.common import console, guarded, options_named, stage_bar, stage_callback
from conceptchess.cli.net import MovesCommand, resolve_network
from conceptchess.errors import ConceptChessError, PositionError
from conceptchess.files import atomic_write_text
from conceptchess.search import SearchResult, SearchSettings, search_positions, settings_from

app = typer.Typer(help="Search positions with a network: lc0-style PUCT MCTS.", no_args_is_help=True)

SEARCH_OPTIONS = {"nodes": "--nodes", "batch_size": "--batch-size", "cpuct": "--cpuct", "cpuct_base": "--cpuct-base",
                  "cpuct_factor": "--cpuct-factor", "fpu_reduction": "--fpu-reduction",
                  "policy_temperature": "--policy-temperature", "noise_epsilon": "--noise-epsilon", "noise_alpha": "--noise-alpha",
                  "max_collisions": "--max-collisions"}


def _table(result: SearchResult, top: int) -> Table:
    t = Table("move", "san", "visits", "Q", "W", "D", "L", "prior", "note", title=f"{result.fen}")
    for c in result.children[:top]:
        w = c.wdl or (None, None, None)
        t.add_row(c.move.uci(), c.san, str(c.visits), "–" if c.q is None else f"{c.q:+.4f}",
                  *("–" if x is None else f"{x:.4f}" for x in w), f"{c.prior:.4f}", c.terminal or "")
    return t


@app.command("run", cls=MovesCommand)
@guarded
@options_named(SEARCH_OPTIONS)
def run(
    net: Path | None = typer.Option(None, "--net", help="Network file (default: $CONCEPTCHESS_NET or the last net in engines/)"),
    fen: str | None = typer.Option(None, "--fen", help="Root position as FEN (default: the start position)"),
    moves: list[str] | None = typer.Option(None, "--moves", help="UCI moves played from the FEN: --moves e2e4 e7e5"),
    input: Path | None = typer.Option(None, "--input", help="Search every position of this dataset (folder or .jsonl) instead"),
    nodes: int = typer.Option(800, "--nodes", help="Playouts per root"),
    json_out: Path | None = typer.Option(None, "--json", help="Write one JSON object per root (JSON lines) to this file"),
    top: int = typer.Option(10, "--top", help="Children shown per root"),
    batch_size: int = typer.Option(SearchSettings.batch_size, "--batch-size", help="Leaves evaluated per network call"),
    cpuct: float = typer.Option(SearchSettings.cpuct, "--cpuct", help="lc0's CPuct"),
    cpuct_base: float = typer.Option(SearchSettings.cpuct_base, "--cpuct-base", help="lc0's CPuctBase"),
    cpuct_factor: float = typer.Option(SearchSettings.cpuct_factor, "--cpuct-factor", help="lc0's CPuctFactor"),
    fpu_reduction: float = typer.Option(SearchSettings.fpu_reduction, "--fpu-reduction", help="lc0's FpuValue (strategy reduction)"),
    policy_temperature: float = typer.Option(SearchSettings.policy_temperature, "--policy-temperature", help="lc0's PolicyTemperature"),
    noise_epsilon: float = typer.Option(0.0, "--noise-epsilon", help="Dirichlet noise mixed into the root's priors (0: none)"),
    noise_alpha: float = typer.Option(SearchSettings.noise_alpha, "--noise-alpha", help="Dirichlet noise's alpha"),
    max_collisions: int = typer.Option(SearchSettings.max_collisions, "--max-collisions", help="lc0's MaxCollisionEvents per batch"),
    seed: int = typer.Option(0, "--seed", help="Seed of the noise (the only random choice)"),
    threads: int | None = typer.Option(None, "--threads", help="ONNX Runtime intra-op threads"),
    device: str = typer.Option("auto", "--device", help="auto, cuda or cpu"),
):
    """Search a position (or every position of a dataset): best move, principal variation, and each
    root move's visits, Q and WDL (for the side to move) and prior."""
    if input is not None and (fen is not None or moves):
        raise ConceptChessError("give either --input or --fen/--moves, not both")
    settings = settings_from(batch_size=batch_size, cpuct=cpuct, cpuct_base=cpuct_base, cpuct_factor=cpuct_factor,
                             fpu_reduction=fpu_reduction, policy_temperature=policy_temperature, noise_epsilon=noise_epsilon,
                             noise_alpha=noise_alpha, max_collisions=max_collisions, seed=seed)
    ms = [m for chunk in (moves or []) for m in chunk.split()]
    path = resolve_network(net)
    lines = []
    try:
        with stage_bar() as bar:
            results = search_positions(path, nodes, settings, input=input, fen=fen, moves=ms, threads=threads, device=device,
                                       progress=stage_callback(bar)("searching"))
            for id_, result in results:
                lines.append(json.dumps({"id": id_, **result.as_dict()}) + "\n")
                console.print(f"[bold]{id_}[/]: best {result.best_move.uci()}  Q {result.q:+.4f}  "
                                  f"WDL {result.wdl[0]:.3f} {result.wdl[1]:.3f} {result.wdl[2]:.3f}  visits {result.visits}  "
                                  f"evaluations {result.evaluations}" + (f"  proven {result.proven}" if result.proven else ""))
                console.print("PV " + " ".join(m.uci() for m in result.pv))
                console.print(_table(result, top))
    except PositionError as e:
        raise ConceptChessError(str(e).removeprefix("id=cli: ")) from None
    if json_out is not None:
        atomic_write_text(json_out, "".join(lines))
        console.print(f"wrote {len(lines)} searches → {json_out}")
