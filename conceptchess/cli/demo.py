"""`conceptchess demo`: the job `make demo` runs."""

from __future__ import annotations

from rich.table import Table

from conceptchess.cli.common import console, guarded


@guarded
def demo():
    """Evaluate a handful of positions with the default network and print top moves and WDL."""
    from conceptchess.demo import DEMO_POSITIONS, find_demo_network
    from conceptchess.engine import Engine
    from conceptchess.positions import PositionSpec, histories_of

    path, why = find_demo_network()
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
