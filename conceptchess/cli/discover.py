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
from conceptchess.discovery_filters import SCHUT, filter_run, teach_concepts
from conceptchess.discovery_report import plot_discoveries
from conceptchess.erasure import fit_eraser_from_files
from conceptchess.errors import ConceptChessError
from conceptchess.names import split_names
from conceptchess.novelty import NoveltyBases, build_novelty_bases
from conceptchess.store import connect
from conceptchess.store.discovery import (
    CONCEPT,
    RANDOM_CONTROL,
    all_concepts,
    amplification_of,
    concepts_of_run,
    discovered_concept,
    latest_novelty,
    teaching_of,
)
from conceptchess.teachability import TeachSettings

app = typer.Typer(help="Concept discovery: LEACE erasure, convex dynamic concepts on rollouts, novelty, amplification, "
                       "teachability and the funnel.",
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


@app.command()
@guarded
@options_named({"epochs": "--epochs", "lr": "--lr", "batch_size": "--batch-size", "heldout": "--held-out", "seeds": "--seeds",
                "margin": "--margin", "resamples": "--resamples", "confidence": "--confidence", "min_prototypes": "--min-prototypes",
                "max_agreement": "--max-agreement", "teacher": "--teacher", "limit": "--limit"})
def teach(
    run_id: int = typer.Option(..., "--run", help="Discovery run"),
    random_positions: Path = typer.Option(..., "--random-positions",
                                          help="Positions of the teacher's own games (positions selfplay): the control's training set"),
    students: list[Path] = typer.Option([], "--student", help="Candidate student network, in the order walked; repeatable "
                                                               "(default: the teacher's earlier checkpoints, latest first)"),
    teacher: Path | None = typer.Option(None, "--teacher", help="Teacher network (default: the run's)"),
    prototype_rollouts: Path | None = typer.Option(None, "--prototype-rollouts",
                                                   help="Rollouts dataset searched for prototypes (default: the run's own)"),
    prototype_activations: Path | None = typer.Option(None, "--prototype-activations",
                                                      help="Its activation folder at the run's tap (default: the run's)"),
    concepts: list[int] = typer.Option([], "--concept", help="Only this concept id; repeatable (default: every concept past the held-out check)"),
    limit: int | None = typer.Option(None, "--limit", help="Only the first N candidates, in id order (a budget; the funnel says how many were left)"),
    variant: str = typer.Option("erased", "--variant", help="erased (default) or unerased concepts"),
    min_prototypes: int = typer.Option(20, "--min-prototypes", help="Fewer prototypes, and the concept is dropped (Schut: 20)"),
    max_agreement: float = typer.Option(0.2, "--max-agreement", help="The student's top-1 agreement with the teacher on the prototypes must be below this"),
    epochs: int = typer.Option(5, "--epochs", help="Passes over the training prototypes"),
    lr: float = typer.Option(1e-4, "--lr", help="Adam learning rate"),
    batch_size: int = typer.Option(32, "--batch-size", help="Positions per step"),
    held_out: float = typer.Option(0.2, "--held-out", help="Share of prototype roots held out"),
    seeds: str = typer.Option("0,1,2", "--seeds", help="Seeds (split and training order): at least 3"),
    margin: float = typer.Option(0.05, "--margin", help="Teachable: concept-trained beats random-trained by this much on held-out prototypes"),
    resamples: int = typer.Option(2000, "--resamples", help="Bootstrap resamples of the held-out roots"),
    threads: int | None = typer.Option(None, "--threads", help="ONNX Runtime intra-op threads"),
    db: str | None = typer.Option(None, "--db", help=DB_HELP),
):
    """Teach each candidate concept to a student that does not know it (KL to the teacher's policy on 80 % of its
    prototype roots), beside the same student trained on random positions of the teacher's games (a 2 × 2 table)
    and a random vector pushed through the same pipeline; several seeds, a bootstrap interval over roots.
    Resumable: the same command goes on where a killed one stopped."""
    try:
        seed_list = tuple(int(x) for x in seeds.replace(",", " ").split())
    except ValueError:
        raise ConceptChessError(f"--seeds {seeds!r}: expected integers like 0,1,2") from None
    settings = TeachSettings(epochs=epochs, lr=lr, batch_size=batch_size, heldout=held_out, seeds=seed_list, margin=margin,
                             resamples=resamples)
    database = connect(db)
    with stage_bar() as bar:
        key = teach_concepts(database, run_id, random_positions=random_positions, students=students or None, teacher=teacher,
                             prototype_rollouts=prototype_rollouts, prototype_activations=prototype_activations, variant=variant,
                             concept_ids=concepts or None, settings=settings, min_prototypes=min_prototypes,
                             max_agreement=max_agreement, limit=limit, threads=threads, progress_for=stage_callback(bar))
    _print_teaching(database, run_id, key, variant)


def _cell(result: dict | None, train: str, evaluate: str) -> str:
    c = (result or {}).get("table", {}).get(f"{train} on {evaluate}")
    return "–" if c is None else f"{c['mean']:.3f} ± {c['std']:.3f}"


def _print_teaching(database, run_id: int, key: str, variant: str) -> None:
    t = Table("concept", "role", "prototypes", "student (agreement)", "concept→concept", "random→concept", "concept→random",
              "random→random", "untrained", "taught − random [interval]", "teachable",
              title=f"discovery run {run_id}: top-1 agreement with the teacher (train → evaluate, held-out; mean ± sd over seeds)")
    with database.session() as s:
        if not any(teaching_of(s, c.id, CONCEPT, key) for c in concepts_of_run(s, run_id)):
            console.print(f"discovery run {run_id}: no {variant} concept past the held-out check, nothing to teach", highlight=False)
            return
        for c in concepts_of_run(s, run_id):
            for role in (CONCEPT, RANDOM_CONTROL):
                r = teaching_of(s, c.id, role, key)
                if r is None:
                    continue
                res = r.result or {}
                choice = f"{r.student} ({r.student_choice['agreement']:.2f})" if r.student_choice else "–"
                diff = "–" if r.difference is None else f"{r.difference:+.3f} [{r.interval_low:+.3f}, {r.interval_high:+.3f}]"
                t.add_row(str(c.id), role, str(r.prototypes), choice, _cell(res, "concept", "concept"), _cell(res, "random", "concept"),
                          _cell(res, "concept", "random"), _cell(res, "random", "random"),
                          f"{_cell(res, 'none', 'concept')} / {_cell(res, 'none', 'random')}",
                          diff, "–" if r.teachable is None else ("yes" if r.teachable else "no"))
    console.print(t)


@app.command("filter")
@guarded
def filter_(
    run_id: int = typer.Option(..., "--run", help="Discovery run"),
    variant: str = typer.Option("erased", "--variant", help="erased (default) or unerased concepts"),
    output: Path | None = typer.Option(None, "-o", "--output", help="Also write the run's figures and index (with the funnel) here"),
    db: str | None = typer.Option(None, "--db", help=DB_HELP),
):
    """Count the run's funnel — candidates → enough prototypes → teachable → novel → amplified above control — store it,
    and print it beside the random-vector controls and Schut et al.'s shares."""
    database = connect(db)
    f = filter_run(database, run_id, variant=variant)
    t = Table("stage", "concepts", "kept of the previous stage", "Schut et al. kept", "random-vector controls",
              title=f"discovery run {run_id} ({variant}): the funnel (teaching {(f.teaching_key or 'none')[:12]})")
    ctrl = dict(f.controls)
    ctrl["candidates"] = ctrl.pop("random vectors")
    for name, n in f.stages:
        share = f.kept_share(name)
        schut = SCHUT.get(name.split()[0])
        t.add_row(name, str(n), "–" if share is None else f"{share:.1%}", "–" if schut is None else f"{1 - schut:.1%}",
                  str(ctrl[name]) if name in ctrl else "–")
    console.print(t)
    if f.untaught:
        console.print(f"[yellow]{f.untaught} more candidates past the held-out check were not taught (discover teach --limit, "
                      "or a command not finished): the funnel counts the taught ones[/yellow]")
    if output is not None:
        with stage_bar() as bar:
            files = plot_discoveries(database, output, run_id, progress=stage_callback(bar)("figures"))
        console.print(f"wrote {len(files)} files → {output / 'index.html'}", highlight=False)


@app.command("list")
@guarded
def list_(db: str | None = typer.Option(None, "--db", help=DB_HELP)):
    """Every discovered concept with its checks."""
    database = connect(db)
    t = Table("id", "run", "root", "activations", "status", "constraints", "non-zero", "held-out", "other roots", "swapped control",
              "passes", "prototypes", "teachable (taught − random)", "novel", "Δp amplified", "Δp random")
    with database.session() as s:
        for c in all_concepts(s):
            nov = latest_novelty(s, c.id)
            amp = next((a for a in amplification_of(s, c.id) if a.positions == "roots"), None)
            taught = teaching_of(s, c.id, CONCEPT)

            def num(x, fmt="{:.3f}"):
                return "–" if x is None else fmt.format(x)

            t.add_row(str(c.id), str(c.run_id), c.root, c.variant, c.status, num(c.constraints, "{}"), num(c.nonzero, "{}"),
                      num(c.heldout_same_root), num(c.heldout_other_roots), num(c.swapped_control), "yes" if passes_heldout(c) else "no",
                      "–" if taught is None else str(taught.prototypes),
                      "–" if taught is None else (taught.status if taught.teachable is None else
                                                  f"{'yes' if taught.teachable else 'no'} ({taught.difference:+.3f})"),
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
