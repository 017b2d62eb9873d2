"""`conceptchess demo`: the job `make demo` runs on the embedded default networks — evaluation, a probe
sweep over the checkpoint series (the atlas), puzzles mined with the sweep's own probe vectors, then concept
discovery on the final checkpoint with its filters, puzzles of the discovered concepts and the funnel page.

The stages are :mod:`conceptchess.demo`'s; this command prints what each found, and how long it took.
"""

from __future__ import annotations

import time
from pathlib import Path

import typer
from rich.table import Table

from conceptchess import demo as stages
from conceptchess.checkpoints import checkpoint_label
from conceptchess.cli.common import console, guarded, stage_bar, stage_callback
from conceptchess.cli.puzzles import show_acceptance
from conceptchess.discovery_filters import SCHUT
from conceptchess.paths import RESULTS_DIR
from conceptchess.puzzles.acceptance import acceptance_report
from conceptchess.store import connect
from conceptchess.teaching import MAX_AGREEMENT


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


class _Clock:
    """Seconds since the last lap, printed after each stage's counts."""

    def __init__(self):
        self.t = time.perf_counter()

    def lap(self) -> str:
        t, self.t = self.t, time.perf_counter()
        return f"[dim]({self.t - t:.0f} s)[/dim]"


def _share(part: int, whole: int) -> str:
    return f"{part / whole:.0%}" if whole else "–"


def _show_data(data: stages.DiscoveryData, lap: str) -> None:
    r, p = data.rollouts, data.pool
    console.print(f"roots: {data.disagree} of {data.compared} human positions ({_share(data.disagree, data.compared)}) where "
                  f"{checkpoint_label(data.network)} and {checkpoint_label(data.earlier)} choose different top moves (raw policies)",
                  highlight=False)
    console.print(f"rollouts: {r.roots} discovery roots × {r.nodes} playouts → {r.optimal_lines} optimal and {r.suboptimal_lines} "
                  f"sub-optimal lines ({r.positions} positions); prototype pool: {p.roots} roots × {p.nodes} playouts → "
                  f"{p.optimal_lines} optimal and {p.suboptimal_lines} sub-optimal lines ({p.positions} positions)", highlight=False)
    console.print(f"the teacher's own games: {data.selfplay_games} self-play games, {data.selfplay_positions} positions; activations at "
                  f"{data.tap} ({'full 8×8' if data.pooling == 'full' else 'channel means'}) of the human positions and both rollouts {lap}",
                  highlight=False)


def _show_erasure(er: stages.DemoErasure, lap: str) -> None:
    console.print(f"LEACE eraser of {len(er.concepts)} human concepts ({', '.join(er.concepts)}): rank {er.rank}; held-out checks "
                  f"{er.checks_passed} passed, {len(er.checks_failed)} failed {lap}", highlight=False)
    for f in er.checks_failed:
        console.print(f"  [yellow]failed[/yellow] {f}", highlight=False)


def _show_discovery(found: stages.DemoDiscovery, lap: str) -> None:
    def num(x):
        return "–" if x is None else f"{x:.3f}"

    t = Table("", "roots", "fitted", "soft margin", "failed", "held-out > control", "held-out", "swapped labels", "other roots",
              title=f"discovery run {found.run_id}: a dynamic concept per root (means of the fitted)")
    for f in (found.erased, found.unerased):
        t.add_row(f.variant + (" (control)" if f.variant == "unerased" else ""), *map(str, (f.roots, f.fitted, f.soft, f.failed, f.heldout)),
                  num(f.mean_heldout), num(f.mean_control), num(f.mean_other_roots))
    console.print(t)
    console.print(f"candidates: the {found.erased.heldout} erased concepts past the held-out check {lap}", highlight=False)


def _show_filters(f: stages.DemoFilters, budget: stages.DiscoveryBudget, lap: str) -> None:
    console.print(f"novelty: {f.novelty_scored} concepts scored against bases of {f.novelty_positions} human and {f.novelty_positions} "
                  f"self-play positions (numerical ranks {f.human_rank} and {f.machine_rank}); amplification: {f.amplified} concepts "
                  "pushed beside a random direction of the same norm", highlight=False)
    if f.prototypes:
        console.print(f"prototypes in the pool of {budget.prototype_roots} roots (≥ {budget.min_prototypes} kept): "
                      f"{sorted(f.prototypes, reverse=True)} per candidate taught; their random vectors: "
                      f"{sorted(f.control_prototypes, reverse=True)}", highlight=False)
    if f.students:
        console.print(f"students (the latest earlier checkpoint agreeing with the teacher on < {MAX_AGREEMENT:.0%} of the prototypes): "
                      + ", ".join(f"{name} ×{n}" for name, n in f.students), highlight=False)
    if f.funnel.untaught:
        console.print(f"[yellow]{f.funnel.untaught} candidates left untaught: the budget teaches the first {budget.teach_limit}[/yellow]",
                      highlight=False)
    stages_ = f.funnel.stages
    t = Table("stage", "concepts", "kept of the stage before", "Schut et al. kept", title="the funnel (erased activations)")
    for k, (name, n) in enumerate(stages_):
        removed = SCHUT.get(name.split()[0])
        t.add_row(name, str(n), _share(n, stages_[k - 1][1]) if k else "", f"{1 - removed:.1%}" if removed is not None else "")
    console.print(t)
    if f.funnel.controls:
        console.print("random-vector controls: " + ", ".join(f"{name} {n}" for name, n in f.funnel.controls), highlight=False)
    empty = next((name for name, n in stages_ if n == 0), None)
    if empty is not None:
        console.print(f"[yellow]no concept passed \"{empty}\"[/yellow]", highlight=False)
    console.print(lap)


def _show_puzzles(found: stages.DiscoveredPuzzles, nodes: int, lap: str) -> None:
    console.print(f"mined: {found.selection}" + (f" — concepts {', '.join(map(str, found.concept_ids))}" if found.concept_ids else ""),
                  highlight=False, style=None if found.survivors else "yellow")
    if found.results:
        show_acceptance(acceptance_report(found.results), f"discovered concepts: prototypes by outcome, Stockfish {nodes:,} nodes per check")
        console.print(f"{found.puzzles} puzzles of discovered concepts (with their discovery provenance)"
                      + (f" → {found.path}" if found.path else "") + f" {lap}", highlight=False)


def _discover(network: Path, human: Path, nodes: int, workers: int) -> None:
    """Stage 4: discovery on the final checkpoint, its filters, puzzles of what survives, the funnel page."""
    why = stages.discovery_skipped(network, human)
    if why is not None:
        console.print(f"[yellow]skipped: {why}[/yellow]", highlight=False)
        return
    budget, db, clock = stages.DISCOVERY_BUDGET, connect(), _Clock()
    with console.status("collecting root positions"):
        roots_from = stages.demo_positions(network, stages.WORK_DIR, budget.root_positions, seed=0)
    with stage_bar() as bar:
        data = stages.discovery_data(network, human, roots_from, budget, progress_for=stage_callback(bar))
    _show_data(data, clock.lap())
    with stage_bar() as bar:
        eraser = stages.demo_eraser(db, data, progress_for=stage_callback(bar))
    _show_erasure(eraser, clock.lap())
    with stage_bar() as bar:
        found = stages.demo_discovery(db, data, eraser, progress=stage_callback(bar)("discovering (roots × erased, unerased)"))
    _show_discovery(found, clock.lap())
    with stage_bar() as bar:
        filters = stages.demo_filters(db, found.run_id, data, budget, progress_for=stage_callback(bar))
    _show_filters(filters, budget, clock.lap())
    with stage_bar() as bar:
        mined = stages.discovered_puzzles(db, found.run_id, filters, data, budget=budget, nodes=nodes, workers=workers,
                                          progress_for=stage_callback(bar))
    _show_puzzles(mined, nodes, clock.lap())
    with stage_bar() as bar:
        page = stages.discovery_page(db, found.run_id, progress=stage_callback(bar)("figures"))
    console.print(f"the funnel page: {page} {clock.lap()}", highlight=False)


@guarded
def demo(
    positions: int = typer.Option(stages.DEMO_PROBE_POSITIONS, "--positions", help="Positions to probe"),
    mine_positions: int = typer.Option(12_000, "--mine-positions",
                                       help="Positions drawn for mining (as the probed ones are drawn, more of them); those of "
                                            "the sweep's training and validation games are left out"),
    nodes: int = typer.Option(100_000, "--nodes", help="Stockfish nodes per puzzle check"),
    max_puzzles: int = typer.Option(5, "--max-puzzles", help="Puzzles per concept and per control at most"),
    workers: int = typer.Option(2, "--workers", help="Stockfish processes"),
    discovery: bool = typer.Option(True, "--discovery/--no-discovery", help="Run stage 4: concept discovery and its filters"),
):
    """Evaluate a few positions, probe the default checkpoint series, mine puzzles with its probe vectors, discover concepts
    on the final checkpoint and filter them, mine puzzles of the survivors → puzzles/demo.pgn, results/demo-discovery/index.html."""
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
    if discovery:
        console.rule("4. discovery: what the final checkpoint knows beyond the human concepts")
        _discover(path, dataset, nodes, workers)
