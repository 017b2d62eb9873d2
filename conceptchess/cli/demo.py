"""`conceptchess demo`: the job `make demo` runs on the embedded default networks."""

from __future__ import annotations

from rich.table import Table

from conceptchess.cli.common import console, guarded, stage_bar, stage_callback


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


DEMO_PROBE_CONCEPTS = ("in_check", "material_diff", "us_mobility", "them_mobility", "us_has_mate_in_1", "them_threatens_mate",
                       "us_hanging_pieces", "them_hanging_pieces", "us_forks_available", "us_bishop_pair", "us_king_castled", "game_phase")


def _probe_series(positions, out_dir) -> None:
    """Probe the default checkpoint series (what-when-where with controls) and draw the atlas."""
    from conceptchess.plots import plot_run
    from conceptchess.probing import SweepRequest, plan_sweep, run_sweep
    from conceptchess.store import connect

    names = list(DEMO_PROBE_CONCEPTS)
    # Per-channel means: the demo's few thousand positions are far too few for probes of the full 8×8×C
    # activations (material from the 7,168 input features needs ~6,000 training positions before its test
    # R² leaves 0), and they keep the demo to a few minutes. `conceptchess probe run` defaults to full.
    plan = plan_sweep(SweepRequest(dataset=positions, nets=None, concepts=names, taps=None, controls=True, seed=0, threads=1,
                                   pool="mean"))
    console.print(f"probing {len(names)} concepts × {len(next(iter(plan.taps.values())))} taps × {len(plan.networks)} checkpoints on {plan.positions} positions "
                  "(per-channel mean activations), controls on (input planes, random init = step 0, shuffled labels)", highlight=False)
    with stage_bar() as bar:
        run_id = run_sweep(plan, progress=stage_callback(bar))
    files = plot_run(connect(), run_id, out_dir)
    index = next((f for f in files if f.name == "index.html"), out_dir)
    console.print(f"probe run {run_id}: atlas in {index}")


@guarded
def demo():
    """Evaluate a few positions, probe the default checkpoint series, mine puzzles → puzzles/demo.pgn."""
    from conceptchess.demo import find_demo_network
    from conceptchess.puzzles.demo import WORK_DIR, demo_positions, demo_puzzles
    from conceptchess.store import ROOT

    path, why = find_demo_network()
    console.rule("1. the network on a few positions")
    _evaluate_demo_positions(path, why)
    console.rule("2. what-when-where: probing the checkpoint series")
    with console.status("collecting demo positions"):
        positions = demo_positions(path, WORK_DIR, 3000, seed=0)
    _probe_series(positions, ROOT / "results" / "demo-atlas")
    console.rule("3. puzzles for concept directions of the network")
    with console.status("mining and verifying puzzles (Stockfish, 2 processes)"):
        pgn = demo_puzzles(network=path)
    console.print(f"wrote {pgn}")
