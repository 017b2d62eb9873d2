"""`conceptchess probe …`: sparse linear concept probes over taps and checkpoints, their atlas, and one concept's results."""

from __future__ import annotations

import shlex
import time
from pathlib import Path

import typer
from rich import box
from rich.cells import cell_len
from rich.table import Table

from conceptchess.cli.common import DB_HELP, console, guarded, options_named, stage_bar, stage_callback
from conceptchess.errors import ConceptChessError
from conceptchess.plots import plot_run
from conceptchess.probing import ProbeSettings, SweepRequest, plan_sweep, run_sweep
from conceptchess.probing.cell import NO_FIT_REASON
from conceptchess.probing.results import METRIC_NAMES, MiningHandoff, concept_rows, latest_run_id, mining_handoffs, too_few_note
from conceptchess.store import Database, db_url

app = typer.Typer(help="Sparse linear concept probes: what a network knows, where and when (with controls).",
                  no_args_is_help=True)
# the library's arguments as this command's options, in the messages that name them
RUN_OPTIONS = {"nets": "--net", "max_positions": "--max-positions", "jobs": "--jobs"}


@app.command()
@guarded
@options_named(RUN_OPTIONS)
def run(
    net: list[Path] | None = typer.Option(None, "--net", help="Network file, or a folder = checkpoint series (repeat for several); default: the series in engines/"),
    positions: Path = typer.Option(..., "--positions", help="Positions dataset folder (or .jsonl file)"),
    concepts: str | None = typer.Option(None, "--concepts", help="Comma-separated concepts (categorical: name or name=category); default: every python-chess concept"),
    taps: str | None = typer.Option(None, "--taps", help="Comma-separated taps (input, block0, …); default: all"),
    controls: bool = typer.Option(True, "--controls/--no-controls", help="Input-plane, random-init and shuffled-label controls"),
    seed: int = typer.Option(0, "--seed", help="Seed of the split, the shuffled labels, the bootstrap and the random-init network"),
    db: str | None = typer.Option(None, "--db", help=DB_HELP),
    max_positions: int | None = typer.Option(None, "--max-positions", help="Use the first N positions of the dataset"),
    labels: Path | None = typer.Option(None, "--labels", help="Take labels only from this table (.csv/.parquet from `concepts label`) instead of computing them"),
    results: Path | None = typer.Option(None, "--results", help="Folder for probe vectors, labels, activations (default: results/probes)"),
    activations: list[Path] | None = typer.Option(None, "--activations", "--store", help="Extra folder with activation folders to read (repeatable)"),
    pool: str = typer.Option("full", "--pool", help="Activations per position: full [C,8,8] or mean [C]"),
    bootstrap: int = typer.Option(1000, "--bootstrap", help="Bootstrap resamples (of test games) for the confidence interval"),
    threads: int | None = typer.Option(None, "--threads", help="ONNX Runtime threads for any extraction"),
    jobs: int | None = typer.Option(None, "--jobs", help="Worker processes solving cells in parallel (default: one per core, at most 4; 1 below 5,000 positions)"),
    executor: str | None = typer.Option(None, "--executor", envvar="CONCEPTCHESS_EXECUTOR",
                                        help="inline, process or ray (default: worker processes when --jobs > 1); ray needs the extra: "
                                             "pip install 'conceptchess[ray]'"),
    ray_address: str | None = typer.Option(None, "--ray-address", envvar="CONCEPTCHESS_RAY_ADDRESS",
                                           help="The ray executor's cluster: auto or HOST:PORT (default: a local one started here)"),
    keep_activations: bool = typer.Option(True, "--keep-activations/--no-keep-activations",
                                          help="Keep the activation folders it extracts (under RESULTS/activations; `puzzles mine` reads them), "
                                               "or remove each once its cells are probed"),
):
    """Probe concepts × taps × networks; resumable: the same command completes an interrupted run.

    Scalar concepts: L1 linear regression, test R². Binary: L1 logistic regression, test balanced
    accuracy. Categorical: one-vs-rest per category. λ is chosen on validation games; rows carry
    their controls and selectivity (score − shuffled-label control), and the positives/negatives (or
    label variance) of their training and test games. Says the size of the activations before
    extracting them (float16; full 8×8 taps take filters × 128 bytes per position and tap). Where the
    output is no terminal, prints a progress line per stage every 30 s ($CONCEPTCHESS_PROGRESS_EVERY).
    """
    req = SweepRequest(dataset=positions, nets=list(net) if net else None, concepts=concepts, taps=taps, controls=controls,
                       seed=seed, max_positions=max_positions, pool=pool, labels=labels, results=results,
                       activation_folders=list(activations or []), settings=ProbeSettings(n_boot=bootstrap, shuffled=controls), threads=threads,
                       jobs=jobs, keep_activations=keep_activations, executor=executor, ray_address=ray_address)
    plan = plan_sweep(req)  # validates everything before anything is written
    start = time.perf_counter()
    with stage_bar() as bar:
        run_id = run_sweep(plan, db_url=db, progress_for=stage_callback(bar),
                           announce=lambda estimate: bar.console.print(str(estimate), highlight=False, soft_wrap=True))
    n_nets = len(plan.networks)
    console.print(f"probe run {run_id}: {len(plan.targets)} targets × {n_nets} network{'s' if n_nets > 1 else ''} "
                  f"on {plan.positions} positions ({plan.split_kind}; train/val/test {'/'.join(map(str, plan.split.sizes()))}) "
                  f"in {time.perf_counter() - start:.1f} s — `conceptchess probe plot {run_id} -o DIR` draws the atlas, "
                  f"`conceptchess probe show --run {run_id} --concept NAME` shows a concept and how to mine puzzles with it",
                  highlight=False)


@app.command()
@guarded
def plot(
    run_id: int | None = typer.Argument(None, help="Probe run id (default: the latest)"),
    output: Path = typer.Option(..., "-o", "--output", help="Folder for the PNGs and index.html"),
    db: str | None = typer.Option(None, "--db", help=DB_HELP),
    r2_threshold: float = typer.Option(0.5, "--r2-threshold", help="R² at which a scalar concept counts as present"),
    ba_threshold: float = typer.Option(0.8, "--ba-threshold", help="Balanced accuracy at which a binary concept counts as present"),
):
    """Draw a run's atlas: a what-when-where heatmap per concept, concepts × taps per network, and a sortable index.html."""
    database = _open_db(db)
    rid = latest_run_id(database) if run_id is None else run_id
    with stage_bar() as bar:
        task = bar.add_task("plotting", total=None)
        files = plot_run(database, rid, output, {"r2": r2_threshold, "balanced_accuracy": ba_threshold},
                         progress=lambda d, t: bar.update(task, completed=d, total=t))
    console.print(f"run {rid}: {len(files)} files → {output / 'index.html'}", highlight=False)


def _open_db(url: str | None):
    """An existing database (reading commands never create one)."""
    u = db_url(url)
    if u.startswith("sqlite:///") and not u.startswith("sqlite:///:memory:") and not Path(u[len("sqlite:///"):]).exists():
        raise ConceptChessError(f"no database at {u[len('sqlite:///'):]} (run `conceptchess probe run` first, or pass --db)")
    return Database(u)


def _fmt(v, digits: int = 3) -> str:
    return "–" if v is None else f"{v:.{digits}f}"


#: probe show's columns: (header, justify); the first leads every part of a table too wide for the terminal.
SHOW_COLUMNS = [("tap", "left"), ("score", "right"), ("95% CI", "right"), ("input", "right"), ("random", "right"),
                ("shuffled", "right"), ("select.", "right"), ("nonzero", "right"), ("train", "right"), ("test", "right"),
                ("note", "left")]


def _tables(title: str, rows: list[list[str]]) -> list[Table]:
    """``rows`` under :data:`SHOW_COLUMNS`, in as many tables as the console's width needs: a number is
    never cut; the columns that do not fit go to the next table, led by the tap again."""

    def width(k: int) -> int:  # what column k needs: all of each number, the longest word of a note
        cells = [SHOW_COLUMNS[k][0]] + [row[k] for row in rows]
        if SHOW_COLUMNS[k][0] == "note":
            return max(cell_len(w) for c in cells for w in c.split() or [""])
        return max(cell_len(c) for c in cells)

    def table(cols: list[int], part_title: str) -> Table:
        t = Table(title=part_title, box=box.SIMPLE_HEAD, title_justify="left", padding=(0, 1), pad_edge=False)
        for k in cols:
            name, justify = SHOW_COLUMNS[k]
            t.add_column(name, justify=justify, no_wrap=name != "note")  # a note wraps at its spaces
        for row in rows:
            t.add_row(*(row[k] for k in cols))
        return t

    parts: list[list[int]] = [[0]]
    for k in range(1, len(SHOW_COLUMNS)):
        cols = parts[-1] + [k]
        # SIMPLE_HEAD with padding (0, 1) and no edge padding: one space at each edge, three between columns
        if sum(width(c) for c in cols) + 3 * (len(cols) - 1) + 2 > console.width and len(parts[-1]) > 1:
            parts.append([0])
        parts[-1].append(k)
    return [table(cols, title if i == 0 else f"{title} (continued)") for i, cols in enumerate(parts)]


def _mining_lines(h: MiningHandoff, db: str | None) -> list[str]:
    """The commands that mine puzzles with ``h``'s probe: an extraction first when its activation folder is gone."""
    q = shlex.quote
    lines = []
    folder = h.activations
    if folder is None:
        folder = h.extract_to
        lines.append(f"conceptchess activations extract --net {q(str(h.network_path))} --positions {q(h.dataset)} --taps {h.tap} "
                     f"--pool {h.pool} -o {q(str(folder))}")
    lines.append(f"conceptchess puzzles mine --direction {q(h.direction)} --activations {q(str(folder))} --dataset {q(h.dataset)} "
                 f"-c {q(h.concept)}" + (f" --db {q(db)}" if db else ""))
    return lines


@app.command()
@guarded
def show(
    concept: str = typer.Option(..., "--concept", help="Concept name (categorical: name=category)"),
    run_id: int | None = typer.Option(None, "--run", help="Only this probe run"),
    db: str | None = typer.Option(None, "--db", help=DB_HELP),
):
    """One concept's probe results: score with its interval, controls and selectivity, per network and tap,
    and the command that mines puzzles with its best probe.

    train / test: positive/negative positions of the training and test games (scalar concepts: the label
    variance); a binary probe with fewer than 30 test positives (or negatives) is noted "too few
    positives". A score marked × is a no-fit probe: it ended at all-zero weights, so it scores a constant
    prediction. The mining command names the probe RUN:CONCEPT:TAP (`puzzles mine --direction`), with
    the activation folder and dataset of the run; the stored vector is in raw activation space, so no
    --mean/--scale. Tables wider than the terminal continue below, never cut.
    """
    database = _open_db(db)
    rows = concept_rows(database, concept, run_id)
    if not rows:
        where = f"run {run_id}" if run_id is not None else "any run"
        raise ConceptChessError(f"no probe results for concept {concept!r} in {where}")
    metric = rows[0][2].metric
    console.print(f"{concept} — test {METRIC_NAMES.get(metric, metric)} with its controls "
                  "(input planes, random-init network, shuffled labels) and selectivity = score − shuffled; "
                  "train/test: " + ("positives+/negatives− of" if metric == "balanced_accuracy" else "label variance in")
                  + " the training and test games", highlight=False)
    groups: dict[tuple[int, str], list] = {}
    for rid, label, r in rows:
        groups.setdefault((rid, label), []).append(r)
    no_fit, few = None, {}
    for (rid, label), rs in groups.items():
        table_rows = []
        for r in rs:
            counts = [str(r.labels("train")), str(r.labels("test"))]
            if r.score is None:
                table_rows.append([r.tap, "skipped", *[""] * 6, *counts, r.reason or ""])
                continue
            ci = "–" if r.ci_low is None else f"{r.ci_low:.3f}–{r.ci_high:.3f}"
            nz = "–" if r.nonzero is None else f"{r.nonzero}/{r.features}"
            notes = []
            if r.no_fit:
                no_fit = r.reason or NO_FIT_REASON
                notes.append("no fit: all weights zero")
            if r.too_few:
                few.setdefault(r.too_few, r.labels("test"))
                notes.append(r.too_few)
            table_rows.append([r.tap, _fmt(r.score) + (" ×" if r.no_fit else ""), ci, _fmt(r.control_input), _fmt(r.control_random),
                               _fmt(r.control_shuffled), _fmt(r.selectivity), nz, *counts, "; ".join(notes)])
        for t in _tables(f"run {rid} · {label}", table_rows):
            console.print(t)
    if no_fit:
        console.print(f"× no fit: {no_fit} (a probe that found nothing, not evidence that the tap holds nothing)",
                      highlight=False)
    for flag, test in few.items():
        console.print(too_few_note(flag, test), highlight=False)
    for h in mining_handoffs(database, concept, run_id):
        flag = f"; {h.too_few}" if h.too_few else ""
        console.print(f"Puzzles from run {h.run}'s best probe ({h.network}, {h.tap}, test {METRIC_NAMES.get(h.metric, h.metric)} "
                      f"{h.score:.3f}{flag}); its vector is in raw activation space, so no --mean/--scale:", highlight=False)
        for line in _mining_lines(h, db):
            console.print(f"  {line}", highlight=False, soft_wrap=True, markup=False)
