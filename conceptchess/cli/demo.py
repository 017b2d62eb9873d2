"""`conceptchess demo`: the job `make demo` runs on the embedded default networks."""

from __future__ import annotations

from rich.table import Table

from conceptchess.cli.common import console, guarded


def _evaluate_demo_positions(path, why: str) -> None:
    from conceptchess.demo import DEMO_POSITIONS
    from conceptchess.engine import Engine
    from conceptchess.positions import PositionSpec, histories_of

    engine = Engine(path)
    console.print(f"[bold]network[/bold] {path} — {why}; sha256 {engine.network.sha256[:16]}…; {engine.network.describe()}; provider {engine.provider}")
    specs = [PositionSpec(name, fen, moves) for name, fen, moves in DEMO_POSITIONS]
    hist, boards = histories_of(specs)
    t = Table("position", "top moves (probability)", "W / D / L or value")
    for spec, board, ev in zip(specs, boards, engine.evaluate(hist, boards)):
        tops = ", ".join(f"{board.san(board.parse_uci(m))} {p:.2f}" for m, p in ev.top(3))
        wdl = f"{ev.wdl[0]:.2f} / {ev.wdl[1]:.2f} / {ev.wdl[2]:.2f}" if ev.wdl is not None else f"{ev.value:+.2f}"
        t.add_row(str(spec.id), tops, wdl)
    console.print(t)


@guarded
def demo():
    """Evaluate a few positions, probe the default checkpoint series, mine puzzles → puzzles/demo.pgn."""
    from conceptchess.demo import find_demo_network
    from conceptchess.puzzles.demo import demo_puzzles

    path, why = find_demo_network()
    console.rule("1. the network on a few positions")
    _evaluate_demo_positions(path, why)
    console.rule("2. puzzles for concept directions of the network")
    with console.status("mining and verifying puzzles (Stockfish, 2 processes)"):
        pgn = demo_puzzles(network=path)
    console.print(f"wrote {pgn}")
