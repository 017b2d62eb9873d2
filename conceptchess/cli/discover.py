"""`conceptchess discover …`: erase human concepts, discover dynamic concepts on rollouts, score novelty, amplify, report."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.table import Table

from conceptchess.activations import ActivationFiles
from conceptchess.cli.common import DB_HELP, console, guarded, options_named, stage_bar, stage_callback
from conceptchess.directions import ConceptDirection
from conceptchess.discoveries import (
    DiscoverySettings,
    amplify_concepts,
    funnel,
    passes_heldout,
    record_eraser,
    run_discovery,
    score_novelty,
)
from conceptchess.discovery_report import plot_discoveries
from conceptchess.erasure import fit_eraser_from_files
from conceptchess.errors import ConceptChessError
from conceptchess.names import split_names
from conceptchess.novelty import NoveltyBases, build_novelty_bases
from conceptchess.store import connect
from conceptchess.store.discovery import (
    all_concepts,
    amplification_of,
    discovered_concept,
    latest_novelty,
)

app = typer.Typer(help="Concept discovery: LEACE erasure, convex dynamic concepts on rollouts, novelty, amplification.",
                  no_args_is_help=True)


@app.command()
@guarded
@options_named({"dataset": "--dataset", "network": "--net", "top_move_check": "--no-top-move-check"})
def erase(
    activations: Path = typer.Option(..., "--activations", help="Activation folder of human games (activations extract)"),
    tap: str = typer.Option(..., "--tap", help="Tap to erase at, e.g. block5"),
    output: Path = typer.Option(..., "-o", "--output", help="Eraser file to write (.npz)"),
    concepts: str | None = typer.Option(None, "--concepts", help="Concepts to erase (default: every python-chess concept)"),
    labels: Path | None = typer.Option(None, "--labels", help="Concept labels table of the same positions (concepts label)"),
    dataset: Path | None = typer.Option(None, "--dataset", help="The positions the folder was extracted from (default: as recorded)"),
    network: Path | None = typer.Option(None, "--net", help="The network the folder was extracted with (default: as recorded)"),
    top_move_check: bool = typer.Option(True, "--top-move-check/--no-top-move-check", help="Check the erased activations still predict the network's top move"),
    seed: int = typer.Option(0, "--seed", help="Seed of the split by game and of the random-subspace control"),
    threads: int | None = typer.Option(None, "--threads", help="ONNX Runtime intra-op threads"),
    db: str | None = typer.Option(None, "--db", help=DB_HELP),
):
    """Fit a LEACE eraser of human concepts at one tap and report, on held-out games, the probes before and
    after erasure beside a random subspace of the same rank; the eraser is saved and recorded."""
    if output.exists():
        raise ConceptChessError(f"{output}: already exists")
    with stage_bar() as bar:
        fitted = fit_eraser_from_files(activations, tap, labels=labels, dataset=dataset, concepts=split_names(concepts) or None,
                                       network=network, top_move_check=top_move_check, seed=seed, threads=threads,
                                       progress_for=stage_callback(bar))
    database = connect(db)
    path = fitted.eraser.save(output)
    recorded = ActivationFiles(activations).manifest
    net = network if network is not None else recorded.get("net_path")
    with database.begin() as s:
        record_eraser(s, fitted.eraser, path, net, dataset if dataset is not None else recorded.get("dataset_path"), fitted.report.to_dict())
    console.print(str(fitted.report), highlight=False)
    console.print(f"eraser of rank {fitted.eraser.rank_} → {path}", highlight=False)


@app.command()
@guarded
@options_named({"margin": "--margin", "held_out": "--held-out", "plies": "--plies", "limit": "--limit", "C": "--C"})
def run(
    net: Path = typer.Option(..., "--net", help="The network the rollouts and activations come from"),
    rollouts: Path = typer.Option(..., "--rollouts", help="Rollouts dataset (positions rollouts)"),
    activations: Path = typer.Option(..., "--activations", help="Its activation folder (activations extract)"),
    tap: str = typer.Option(..., "--tap", help="Tap, e.g. block5"),
    eraser: Path | None = typer.Option(None, "--eraser", help="Eraser (discover erase): fit on erased activations, unerased beside as control"),
    margin: float = typer.Option(1.0, "--margin", help="Margin m of v·z⁺ ≥ v·z⁻ + m (standardised activations)"),
    C: float = typer.Option(1.0, "--C", help="Hinge penalty of the soft-margin fallback"),
    plies: str = typer.Option("root", "--plies", help="root: the root side's own plies (single-player concepts); all: every ply"),
    held_out: float = typer.Option(0.3, "--held-out", help="Share of a root's sub-optimal lines held out"),
    limit: int | None = typer.Option(None, "--limit", help="Only the first N roots"),
    results: Path = typer.Option(Path("results/discovery"), "--results", help="Folder for the concept vectors"),
    seed: int = typer.Option(0, "--seed", help="Seed of the held-out split and of the swapped-label control"),
    db: str | None = typer.Option(None, "--db", help=DB_HELP),
):
    """A dynamic concept per root (min ‖v‖₁ s.t. the optimal line scores above every sub-optimal line by a
    margin at each ply), checked on held-out lines, on other roots and beside the swapped-label control.
    Resumable: the same command completes a killed run."""
    database = connect(db)
    settings = DiscoverySettings(margin=margin, C=C, plies=plies, held_out=held_out, seed=seed)
    with stage_bar() as bar:
        run_id = run_discovery(database, net, rollouts, activations, tap, eraser=eraser, results_dir=results, settings=settings,
                               limit=limit, progress=stage_callback(bar)("discovering (roots × variants)"))
    _print_funnel(database, run_id)


def _print_funnel(database, run_id: int) -> None:
    t = Table("activations", "roots", "fitted (hard margin)", "soft margin", "failed", "held-out > control", "novelty scored", "novel",
              "amplified", "amplified > random", "mean held-out", "mean control", "mean other roots", title=f"discovery run {run_id}")
    for variant in ("erased", "unerased"):
        f = funnel(database, run_id, variant)
        if not f.roots:
            continue

        def num(x):
            return "–" if x is None else f"{x:.3f}"

        t.add_row(variant, *map(str, (f.roots, f.fitted, f.soft, f.failed, f.heldout, f.novelty_scored, f.novel, f.amplified,
                                       f.amplification_above_control)), num(f.mean_heldout), num(f.mean_control), num(f.mean_other_roots))
    console.print(t)


@app.command()
@guarded
def novelty(
    run_id: int = typer.Option(..., "--run", help="Discovery run"),
    net: Path = typer.Option(..., "--net", help="The run's network"),
    human: Path = typer.Option(..., "--human", help="Positions of human games (origin human-games)"),
    machine: Path = typer.Option(..., "--machine", help="Positions of the network's own games (origin machine-games)"),
    tap: str = typer.Option(..., "--tap", help="The run's tap"),
    pool: str = typer.Option("full", "--pool", help="The run's pooling"),
    max_positions: int = typer.Option(4096, "--max-positions", help="Positions of each kind (equal counts)"),
    bases_file: Path | None = typer.Option(None, "--bases", help="Save (or reuse, when it exists) the SVD bases here"),
    controls: int = typer.Option(100, "--controls", help="Random sparse directions scored as the control"),
    seed: int = typer.Option(0, "--seed"),
    threads: int | None = typer.Option(None, "--threads", help="ONNX Runtime intra-op threads"),
    db: str | None = typer.Option(None, "--db", help=DB_HELP),
):
    """Score every concept of a run against human and machine activation bases (novel: positive at every k)."""
    database = connect(db)
    with stage_bar() as bar:
        if bases_file is not None and bases_file.exists():
            bases = NoveltyBases.load(bases_file)
        else:
            bases = build_novelty_bases(net, human, machine, tap, pooling=pool, max_positions=max_positions, seed=seed, threads=threads,
                                        progress=stage_callback(bar)("activations"))
            if bases_file is not None:
                bases.save(bases_file)
        n = score_novelty(database, run_id, bases, human, machine, controls=controls, seed=seed, progress=stage_callback(bar)("scoring"))
    console.print(f"scored {n} concepts: human rank {bases.human_rank}, machine rank {bases.machine_rank} "
                  f"({bases.human_count} positions each)", highlight=False)
    _print_funnel(database, run_id)


@app.command()
@guarded
def amplify(
    run_id: int = typer.Option(..., "--run", help="Discovery run"),
    net: Path = typer.Option(..., "--net", help="The run's network (.pb.gz)"),
    unrelated: Path = typer.Option(..., "--unrelated", help="Positions unrelated to the concepts (e.g. human games)"),
    alphas: str = typer.Option("0,0.25,0.5,1,2", "--alphas", help="α grid"),
    all_concepts_: bool = typer.Option(False, "--all", help="Every fitted concept, not only those past the held-out check"),
    count: int = typer.Option(64, "--count", help="Unrelated positions"),
    seed: int = typer.Option(0, "--seed"),
    db: str | None = typer.Option(None, "--db", help=DB_HELP),
):
    """Push each concept into the network from its tap (z + α·‖z‖/‖v‖·v) on its root's positions and on unrelated
    ones, beside a random direction of the same norm and sparsity."""
    try:
        grid = tuple(float(a) for a in alphas.replace(",", " ").split())
    except ValueError:
        raise ConceptChessError(f"--alphas {alphas!r}: expected numbers like 0,0.5,1") from None
    database = connect(db)
    with stage_bar() as bar:
        n = amplify_concepts(database, run_id, net, unrelated, alphas=grid, only_passing=not all_concepts_, unrelated_count=count,
                             seed=seed, progress=stage_callback(bar)("amplifying"))
    console.print(f"amplified {n} concepts", highlight=False)
    _print_funnel(database, run_id)


@app.command("list")
@guarded
def list_(db: str | None = typer.Option(None, "--db", help=DB_HELP)):
    """Every discovered concept with its checks."""
    database = connect(db)
    t = Table("id", "run", "root", "activations", "status", "constraints", "non-zero", "held-out", "other roots", "swapped control",
              "passes", "novel", "Δp amplified", "Δp random")
    with database.session() as s:
        for c in all_concepts(s):
            nov = latest_novelty(s, c.id)
            amp = next((a for a in amplification_of(s, c.id) if a.positions == "roots"), None)

            def num(x, fmt="{:.3f}"):
                return "–" if x is None else fmt.format(x)

            t.add_row(str(c.id), str(c.run_id), c.root, c.variant, c.status, num(c.constraints, "{}"), num(c.nonzero, "{}"),
                      num(c.heldout_same_root), num(c.heldout_other_roots), num(c.swapped_control), "yes" if passes_heldout(c) else "no",
                      "–" if nov is None else ("yes" if nov.novel else "no"), num(amp and amp.effect, "{:+.4f}"),
                      num(amp and amp.control_effect, "{:+.4f}"))
    console.print(t)


@app.command()
@guarded
def show(concept_id: int = typer.Argument(..., help="Concept id (discover list)"), db: str | None = typer.Option(None, "--db", help=DB_HELP)):
    """One concept: its checks, its vector file, and the command that mines puzzles for it."""
    database = connect(db)
    with database.session() as s:
        c = discovered_concept(s, concept_id)
        if c is None:
            raise ConceptChessError(f"no discovered concept {concept_id} (see discover list)")
        nov = latest_novelty(s, c.id)
        amps = amplification_of(s, c.id)
        console.print(f"concept {c.id}: run {c.run_id}, root {c.root}, {c.variant} activations, status {c.status}"
                      + (f" ({c.reason})" if c.reason else ""), highlight=False)
        if c.vector_path:
            d = ConceptDirection.load(c.vector_path)
            console.print(f"vector {c.vector_path} (tap {d.tap}, {c.nonzero} of {c.features} non-zero in the fitted space, "
                          f"{d.nonzeros} in raw activations)", highlight=False)
        console.print(json.dumps({"held_out_same_root": c.heldout_same_root, "other_roots": c.heldout_other_roots,
                                  "swapped_control": c.swapped_control, "constraints": c.constraints, "details": c.details}, indent=1))
        if nov is not None:
            console.print(f"novelty: {'novel' if nov.novel else 'not novel'}; scores {nov.scores}; control {nov.control}", highlight=False)
        for a in amps:
            console.print(f"amplification on {a.n_positions} {a.positions} positions: Δp {a.effect:+.4f} vs random {a.control_effect:+.4f} "
                          f"at α={a.alphas[-1]} (above control: {a.above_control})", highlight=False)


@app.command()
@guarded
def plot(
    output: Path = typer.Option(..., "-o", "--output", help="Folder for index.html and a PNG per concept"),
    run_id: int | None = typer.Option(None, "--run", help="Only this run"),
    db: str | None = typer.Option(None, "--db", help=DB_HELP),
):
    """A figure per discovered concept (board and lines, held-out satisfaction, novelty, amplification) and an index."""
    database = connect(db)
    with stage_bar() as bar:
        files = plot_discoveries(database, output, run_id, progress=stage_callback(bar)("figures"))
    console.print(f"wrote {len(files)} files → {output / 'index.html'}", highlight=False)
