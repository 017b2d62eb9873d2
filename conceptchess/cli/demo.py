"""`conceptchess demo`: the job `make demo` runs on the embedded default networks — evaluation, a probe
sweep over the checkpoint series (the atlas), then puzzles mined with the sweep's own probe vectors."""

from __future__ import annotations

import typer
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


def _probe_series(positions, out_dir) -> int:
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
        run_id = run_sweep(plan, progress_for=stage_callback(bar))
    files = plot_run(connect(), run_id, out_dir)
    index = next((f for f in files if f.name == "index.html"), out_dir)
    console.print(f"probe run {run_id}: atlas in {index}")
    return run_id


def _mine_puzzles(run_id: int, pool, nodes: int, max_puzzles: int, workers: int) -> None:
    """Mine held-out positions with the sweep's probe vectors and the two controls; print both."""
    from conceptchess.puzzles.demo import DEMO_CONCEPTS, demo_puzzles, probe_directions
    from conceptchess.store import connect

    with console.status("reading the sweep's probe vectors"):
        found = probe_directions(connect(), run_id, DEMO_CONCEPTS, pool)
    first = found.directions[0]
    console.print(f"concept directions: the stored probe vectors of sweep run {first.run_id} at its final checkpoint "
                  f"({first.network}), each at the block tap where its probe scored best on the held-out test games. "
                  "They were fitted on the training games (λ chosen on the validation games), so puzzles are mined from "
                  f"held-out positions only: {found.held_out_positions} positions of games outside both, "
                  f"{found.held_out_test_positions} of them the run's test positions", highlight=False)
    for d in found.directions:
        console.print(f"  {d.describe()}", highlight=False)
    for concept, why in found.skipped.items():
        console.print(f"  {concept}: no direction ({why})", highlight=False)
    console.print(f"controls: a random direction of {first.direction.nonzeros} non-zeros (the sparsity of {first.concept}'s probe, "
                  f"in the same standardised space), and the human concept {first.concept} scored from the board", highlight=False)
    with stage_bar() as bar:
        report = demo_puzzles(run_id, directions=found, nodes=nodes, max_puzzles=max_puzzles, workers=workers,
                              progress_for=stage_callback(bar))
    t = Table("direction", "kind", "positions", "prototypes", "candidates", "puzzles", "rejected")
    for r in report.results:
        t.add_row(r.concept, r.kind, str(r.positions), str(r.prototypes), str(r.candidates), str(len(r.puzzles)), str(len(r.rejected)))
    console.print(t)
    console.print(f"wrote {report.path}")


@guarded
def demo(
    positions: int = typer.Option(3000, "--positions", help="Positions to probe"),
    mine_positions: int = typer.Option(12_000, "--mine-positions",
                                       help="Positions drawn for mining (as the probed ones are drawn, more of them); those of "
                                            "the sweep's training and validation games are left out"),
    nodes: int = typer.Option(100_000, "--nodes", help="Stockfish nodes per puzzle check"),
    max_puzzles: int = typer.Option(5, "--max-puzzles", help="Puzzles per concept and per control at most"),
    workers: int = typer.Option(2, "--workers", help="Stockfish processes"),
):
    """Evaluate a few positions, probe the default checkpoint series, mine puzzles with its probe vectors → puzzles/demo.pgn."""
    from conceptchess.demo import find_demo_network
    from conceptchess.paths import RESULTS_DIR
    from conceptchess.puzzles.demo import WORK_DIR, demo_positions

    path, why = find_demo_network()
    console.rule("1. the network on a few positions")
    _evaluate_demo_positions(path, why)
    console.rule("2. what-when-where: probing the checkpoint series")
    with console.status("collecting demo positions"):
        dataset = demo_positions(path, WORK_DIR, positions, seed=0)
    run_id = _probe_series(dataset, RESULTS_DIR / "demo-atlas")
    console.rule("3. puzzles for the probe vectors of the sweep")
    with console.status("collecting positions to mine"):
        pool = demo_positions(path, WORK_DIR, max(mine_positions, positions), seed=0)
    _mine_puzzles(run_id, pool, nodes, max_puzzles, workers)
