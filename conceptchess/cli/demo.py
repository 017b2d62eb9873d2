"""`conceptchess demo`: the job `make demo` runs on the embedded default networks — evaluation, a probe
sweep over the checkpoint series (the atlas), then puzzles mined with the sweep's own probe vectors.

The stages are :mod:`conceptchess.demo`'s; this command prints what each found.
"""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from conceptchess import demo as stages
from conceptchess.cli.common import console, guarded, stage_bar, stage_callback
from conceptchess.cli.puzzles import show_acceptance
from conceptchess.paths import RESULTS_DIR
from conceptchess.puzzles.acceptance import acceptance_report
from conceptchess.store import connect


def _show_evaluation(found: stages.DemoEvaluation, why: str) -> None:
    console.print(f"[bold]network[/bold] {found.path} — {why}; sha256 {found.sha256[:16]}…; {found.description}; "
                  f"provider {found.provider}")
    t = Table("position", "top moves (probability)", "W / D / L or value")
    for row in found.positions:
        tops = ", ".join(f"{san} {p:.2f}" for san, p in row.top_moves)
        wdl = f"{row.wdl[0]:.2f} / {row.wdl[1]:.2f} / {row.wdl[2]:.2f}" if row.wdl is not None else f"{row.value:+.2f}"
        t.add_row(row.name, tops, wdl)
    console.print(t)


def _probe_series(positions: Path, out_dir: Path) -> int:
    """Probe the default checkpoint series (what-when-where with controls) and draw the atlas."""
    plan = stages.plan_demo_sweep(positions, stages.demo_checkpoints())
    full = [t.name for t in plan.targets if plan.pool_of(t) == "full"]
    console.print(f"probing {len(stages.PROBED_CONCEPTS)} concepts × {len(next(iter(plan.taps.values())))} taps × "
                  f"{len(plan.networks)} checkpoints (of the series in engines/: step 0, the last and evenly spaced between) on {plan.positions} positions ({', '.join(full)} on the full 8×8 activations, "
                  "the others on per-channel means), controls on (input planes, random init = step 0, shuffled labels)", highlight=False)
    with stage_bar() as bar:
        run_id, index = stages.demo_atlas(plan, out_dir, progress_for=stage_callback(bar))
    console.print(f"probe run {run_id}: atlas in {index}")
    return run_id


def _mine_puzzles(run_id: int, pool: Path, nodes: int, max_puzzles: int, workers: int) -> None:
    """Mine held-out positions with the sweep's probe vectors and the two controls; print both."""
    with console.status("reading the sweep's probe vectors"):
        found = stages.probe_directions(connect(), run_id, stages.MINED_CONCEPTS, pool)
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
        report = stages.demo_puzzles(run_id, directions=found, nodes=nodes, max_puzzles=max_puzzles, workers=workers,
                                     progress_for=stage_callback(bar))
    show_acceptance(acceptance_report(report.results),
                    f"demo: prototypes by outcome, Stockfish {nodes:,} nodes per check, solver moves ≥ +2.00 or mate")
    console.print(f"wrote {report.path}")


@guarded
def demo(
    positions: int = typer.Option(stages.DEMO_PROBE_POSITIONS, "--positions", help="Positions to probe"),
    mine_positions: int = typer.Option(12_000, "--mine-positions",
                                       help="Positions drawn for mining (as the probed ones are drawn, more of them); those of "
                                            "the sweep's training and validation games are left out"),
    nodes: int = typer.Option(100_000, "--nodes", help="Stockfish nodes per puzzle check"),
    max_puzzles: int = typer.Option(5, "--max-puzzles", help="Puzzles per concept and per control at most"),
    workers: int = typer.Option(2, "--workers", help="Stockfish processes"),
):
    """Evaluate a few positions, probe the default checkpoint series, mine puzzles with its probe vectors → puzzles/demo.pgn."""
    path, why = stages.find_demo_network()
    console.rule("1. the network on a few positions")
    _show_evaluation(stages.evaluate_demo_positions(path), why)
    console.rule("2. what-when-where: probing the checkpoint series")
    with console.status("collecting demo positions"):
        dataset = stages.demo_positions(path, stages.WORK_DIR, positions, seed=0)
    run_id = _probe_series(dataset, RESULTS_DIR / "demo-atlas")
    console.rule("3. puzzles for the probe vectors of the sweep")
    with console.status("collecting positions to mine"):
        pool = stages.demo_positions(path, stages.WORK_DIR, max(mine_positions, positions), seed=0)
    _mine_puzzles(run_id, pool, nodes, max_puzzles, workers)
