"""`conceptchess positions …`: build positions datasets from recorded games or from self-play."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.progress import BarColumn, DownloadColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from conceptchess.cli.common import console, err_console, guarded, options_named, stage_bar, stage_callback
from conceptchess.datasets import merge_datasets
from conceptchess.disagreement import DisagreeSettings, disagreement_dataset
from conceptchess.enginegames import EngineGameSettings, engine_games_dataset
from conceptchess.enginelabels import LabelSettings, label_engine_dataset
from conceptchess.errors import ConceptChessError
from conceptchess.games import GameFilter, Sampling, pgn_dataset
from conceptchess.names import split_names
from conceptchess.rollouts import RolloutSettings, rollouts_dataset
from conceptchess.search import SearchSettings
from conceptchess.selfplay import selfplay_dataset

app = typer.Typer(help="Build positions datasets (JSONL + manifest) from games or from self-play.", no_args_is_help=True)

_MAX_WARNINGS = 20
FROM_PGN_OPTIONS = {"min_rating": "--min-rating", "max_rating": "--max-rating", "skip_plies": "--skip-plies", "every": "--every",
                    "max_positions": "--max-positions", "overwrite": "--overwrite"}
SELFPLAY_OPTIONS = {"games": "--games", "temperature": "--temperature", "max_plies": "--max-plies", "batch_size": "--batch-size",
                    "overwrite": "--overwrite"}


@app.command("from-pgn")
@guarded
@options_named(FROM_PGN_OPTIONS)
def from_pgn(
    games: list[Path] = typer.Argument(..., help="PGN files: .pgn, .pgn.gz or .pgn.zst (Lichess open-database format)"),
    output: Path = typer.Option(..., "-o", "--output", help="Dataset folder to write"),
    min_rating: int | None = typer.Option(None, "--min-rating", help="Keep games whose players are both rated at least this"),
    max_rating: int | None = typer.Option(None, "--max-rating", help="Keep games whose players are both rated at most this"),
    time_control: list[str] | None = typer.Option(
        None, "--time-control",
        help="Keep these speeds (ultrabullet, bullet, blitz, rapid, classical, correspondence: base + 40 × increment, as "
             "Lichess) and/or raw TimeControl values like 180+2; repeat or comma-separate"),
    skip_plies: int = typer.Option(0, "--skip-plies", help="Skip the first N plies of each game"),
    every: int = typer.Option(1, "--every", help="Keep every K-th position of a game, from a seeded offset below K"),
    max_positions: int | None = typer.Option(
        None, "--max-positions",
        help="Stop after writing this many positions; the files are read one after another, so the first ones fill it "
             "first (--interleave: from every file)"),
    interleave: bool = typer.Option(False, "--interleave", help="Read the files in turn, one game from each while it lasts "
                                                                "(game numbers follow that order)"),
    dedup: bool = typer.Option(False, "--dedup", help="Drop positions (pieces, side to move, castling, en passant) already written"),
    seed: int = typer.Option(0, "--seed", help="Seed of every random choice (the --every offsets)"),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing dataset"),
):
    """Positions of recorded games, final positions included (their move is null).

    Reads the files as a stream (constant memory), one after another unless --interleave. Skips Chess960
    and other variants, and games with errors: an illegal move, or text that is not PGN (counted by
    reason in the manifest; games with tag pairs warned). A file where every game has errors is refused.
    """
    filt = GameFilter(min_rating, max_rating, tuple(split_names(time_control)))
    sampling = Sampling(skip_plies, every, max_positions, dedup, seed)
    warned = 0

    def warn(message: str) -> None:
        nonlocal warned
        warned += 1
        if warned <= _MAX_WARNINGS:
            err_console.print(f"warning: {message}", markup=False, highlight=False, soft_wrap=True)
        elif warned == _MAX_WARNINGS + 1:
            err_console.print("warning: more games with errors skipped (counted in the manifest)", highlight=False)

    with Progress(TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TimeElapsedColumn(), TimeRemainingColumn(),
                  console=err_console, transient=True, disable=not err_console.is_terminal) as bar:
        task = bar.add_task("reading", total=None)
        manifest = pgn_dataset(games, output, filter=filt, sampling=sampling, overwrite=overwrite, warn=warn, interleave=interleave,
                               progress=lambda done, total: bar.update(task, completed=done, total=total))
    c = manifest["counts"]
    skipped = ", ".join(f"{k} {v}" for k, v in c["games_skipped"].items()) or "none"
    console.print(f"wrote {c['positions_written']} positions from {c['games_kept']} of {c['games_read']} games "
                  f"(skipped: {skipped}) → {output}", highlight=False)


@app.command()
@guarded
@options_named(SELFPLAY_OPTIONS)
def selfplay(
    net: Path = typer.Option(..., "--net", help="Network playing both sides (.pb.gz or lc0 .onnx)"),
    games: int = typer.Option(..., "--games", help="How many games to play"),
    output: Path = typer.Option(..., "-o", "--output", help="Dataset folder to write"),
    temperature: float = typer.Option(1.0, "--temperature", help="Sample moves from softmax(logits / T); 0 plays the top move"),
    seed: int = typer.Option(0, "--seed", help="Seed of the move sampling (game i uses (seed, i))"),
    openings: Path | None = typer.Option(None, "--openings", help="JSONL positions to start from (default: built-in common openings)"),
    max_plies: int = typer.Option(400, "--max-plies", help="Stop a game after this many plies (result \"*\")"),
    batch_size: int = typer.Option(256, "--batch-size", help="Games played (and evaluated) at once"),
    threads: int | None = typer.Option(None, "--threads", help="ONNX Runtime intra-op threads"),
    device: str = typer.Option("auto", "--device", help="auto, cuda or cpu"),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing dataset"),
):
    """Positions of games a network plays against itself, from opening positions, game i from opening i mod n.

    Games end by the rules (mate, stalemate, insufficient material, 75-move, fivefold; threefold and
    50-move draws are claimed) or at --max-plies (result "*"). Records start after the opening moves and
    include final positions (move null).
    """
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), TimeRemainingColumn(),
                  console=err_console, transient=True, disable=not err_console.is_terminal) as bar:
        task = bar.add_task("self-play", total=games)
        manifest = selfplay_dataset(
            net, output, games=games, temperature=temperature, seed=seed, openings=openings, max_plies=max_plies,
            batch_size=batch_size, threads=threads, device=device, overwrite=overwrite,
            progress=lambda finished, total: bar.update(task, completed=finished, total=total),
        )
    c = manifest["counts"]
    results = ", ".join(f"{k} {v}" for k, v in c["results"].items())
    console.print(f"wrote {c['positions_written']} positions from {c['games']} games ({results}) → {output}", highlight=False)


LABEL_ENGINE_OPTIONS = {"nodes": "--nodes", "multipv": "--multipv", "hash_mb": "--hash", "workers": "--workers",
                        "overwrite": "--overwrite"}


@app.command("label-engine")
@guarded
@options_named(LABEL_ENGINE_OPTIONS)
def label_engine(
    input: Path = typer.Option(..., "--input", help="Positions dataset to label (folder or .jsonl)"),
    output: Path = typer.Option(..., "-o", "--output", help="Dataset folder to write: the same records, each with its engine label"),
    nodes: int = typer.Option(LabelSettings.nodes, "--nodes", help="Stockfish's node limit per position (all MultiPV lines together)"),
    multipv: int = typer.Option(LabelSettings.multipv, "--multipv", help="Lines (best moves) Stockfish scores per position"),
    hash_mb: int = typer.Option(LabelSettings.hash_mb, "--hash", help="Stockfish hash per process, MB"),
    workers: int = typer.Option(LabelSettings.workers, "--workers", help="Stockfish processes run in parallel (one thread each)"),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing output dataset"),
):
    """Label every position with Stockfish 15.1: MultiPV scores, its WDL and depth (for `train --targets engine`).

    Resumable: a killed run continues from its last chunk when started again with the same input and
    settings (the work folder is OUTPUT.labelling until the end).
    """
    settings = LabelSettings(nodes=nodes, multipv=multipv, hash_mb=hash_mb, workers=workers)
    with stage_bar() as bar:
        manifest = label_engine_dataset(input, output, settings, overwrite=overwrite, progress=stage_callback(bar)("labelling"))
    lab = manifest["engine_labels"]
    console.print(f"labelled {lab['labelled']} positions ({lab['without_legal_moves']} without a legal move) with "
                  f"{lab['stockfish']} at {nodes} nodes, MultiPV {multipv} → {output}", highlight=False)


ENGINE_GAMES_OPTIONS = {"games": "--games", "nodes": "--nodes", "opening_plies": "--opening-plies", "random_plies": "--random-plies",
                        "blunder_rate": "--blunder-rate", "max_plies": "--max-plies", "hash_mb": "--hash", "workers": "--workers",
                        "overwrite": "--overwrite"}


@app.command("engine-games")
@guarded
@options_named(ENGINE_GAMES_OPTIONS)
def engine_games(
    pgns: list[Path] = typer.Argument(..., help="PGN files whose games' openings the engine games start from"),
    output: Path = typer.Option(..., "-o", "--output", help="Dataset folder to write"),
    games: int = typer.Option(EngineGameSettings.games, "--games", help="How many games to play"),
    nodes: int = typer.Option(EngineGameSettings.nodes, "--nodes", help="Stockfish's node limit per move"),
    opening_plies: int = typer.Option(EngineGameSettings.opening_plies, "--opening-plies",
                                      help="Take up to this many plies (uniformly drawn) of a random given game"),
    random_plies: int = typer.Option(EngineGameSettings.random_plies, "--random-plies", help="Then play this many random legal moves"),
    blunder_rate: float = typer.Option(EngineGameSettings.blunder_rate, "--blunder-rate",
                                       help="Chance that a Stockfish move is replaced by a random legal move"),
    max_plies: int = typer.Option(EngineGameSettings.max_plies, "--max-plies", help="Stop a game after this many plies (result \"*\")"),
    seed: int = typer.Option(0, "--seed", help="Seed of every random choice (game i uses (seed, i))"),
    hash_mb: int = typer.Option(EngineGameSettings.hash_mb, "--hash", help="Stockfish hash per process, MB"),
    workers: int = typer.Option(EngineGameSettings.workers, "--workers", help="Stockfish processes playing in parallel"),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing dataset"),
):
    """Positions of games Stockfish plays against itself at a low node count, from human openings with random early moves."""
    settings = EngineGameSettings(games=games, nodes=nodes, opening_plies=opening_plies, random_plies=random_plies,
                                  blunder_rate=blunder_rate, max_plies=max_plies, seed=seed, hash_mb=hash_mb, workers=workers)
    with stage_bar() as bar:
        manifest = engine_games_dataset(pgns, output, settings, overwrite=overwrite, progress=stage_callback(bar)("engine games"))
    c = manifest["counts"]
    results = ", ".join(f"{k} {v}" for k, v in c["results"].items())
    console.print(f"wrote {c['positions_written']} positions from {c['games']} games ({results}) → {output}", highlight=False)


@app.command()
@guarded
@options_named({"inputs": "INPUTS", "overwrite": "--overwrite"})
def merge(
    inputs: list[Path] = typer.Argument(..., help="Datasets to merge, in order (their names prefix ids and games)"),
    output: Path = typer.Option(..., "-o", "--output", help="Dataset folder to write"),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing dataset"),
):
    """One dataset of the records of several (e.g. human games and engine games, both engine-labelled)."""
    manifest = merge_datasets(inputs, output, overwrite=overwrite)
    parts = ", ".join(f"{s['records']} from {s['dataset']}" for s in manifest["inputs"])
    console.print(f"wrote {manifest['positions']} positions ({parts}) → {output}", highlight=False)


ROLLOUTS_OPTIONS = {"nodes": "--nodes", "depth": "--depth", "value_gap": "--value-gap", "visit_share": "--visit-share",
                    "lines_per_ply": "--lines-per-ply", "branch_plies": "--branch-plies", "extend_nodes": "--extend-nodes",
                    "batch_size": "--batch-size", "limit": "--limit", "overwrite": "--overwrite"}


@app.command()
@guarded
@options_named(ROLLOUTS_OPTIONS)
def rollouts(
    net: Path = typer.Option(..., "--net", help="Network whose search makes the rollouts (.pb.gz or lc0 .onnx, with a value head)"),
    input: Path = typer.Option(..., "--input", help="Roots: a positions dataset (folder or .jsonl)"),
    output: Path = typer.Option(..., "-o", "--output", help="Dataset folder to write"),
    nodes: int = typer.Option(RolloutSettings.nodes, "--nodes", help="Playouts of the search from each root"),
    depth: int = typer.Option(RolloutSettings.depth, "--depth", help="Plies every rollout follows (T; 5 by default, 10 for longer plans)"),
    value_gap: float = typer.Option(RolloutSettings.value_gap, "--value-gap",
                                    help="A sub-optimal move's Q is at least this far below the chosen move's ..."),
    visit_share: float = typer.Option(RolloutSettings.visit_share, "--visit-share",
                                      help="... or its visits are under this share of the chosen move's"),
    lines_per_ply: int = typer.Option(RolloutSettings.lines_per_ply, "--lines-per-ply", help="Sub-optimal lines started at each branch ply (most visited first)"),
    branch_plies: str | None = typer.Option(None, "--branch-plies", help="Plies of the optimal line where sub-optimal lines branch, e.g. 0,2,4 (default: every ply below --depth)"),
    extend_nodes: int = typer.Option(RolloutSettings.extend_nodes, "--extend-nodes",
                                     help="Playouts searched from a line's position whose moves the search never visited"),
    batch_size: int = typer.Option(SearchSettings.batch_size, "--batch-size", help="Leaves evaluated per network call"),
    limit: int | None = typer.Option(None, "--limit", help="Only the first N roots of the input"),
    seed: int = typer.Option(0, "--seed", help="Seed recorded with the run (and of the search's noise, which is off)"),
    threads: int | None = typer.Option(None, "--threads", help="ONNX Runtime intra-op threads"),
    device: str = typer.Option("auto", "--device", help="auto, cuda or cpu"),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing dataset"),
):
    """Optimal and sub-optimal rollouts of a network's search from every root (Schut et al.'s dynamic-concept data).

    The output is a positions dataset (every position with its history, so `activations extract` works
    on it) with pairing fields: root, line, line_index, ply, branch_ply, root_to_move, q, visits.
    Resumable: a killed run continues from its last whole root (work folder OUTPUT.rollouts).
    """
    try:
        plies = None if branch_plies is None else tuple(int(x) for x in branch_plies.replace(",", " ").split())
    except ValueError:
        raise ConceptChessError(f"--branch-plies {branch_plies!r}: expected plies like 0,2,4") from None
    settings = RolloutSettings(nodes=nodes, depth=depth, value_gap=value_gap, visit_share=visit_share, lines_per_ply=lines_per_ply,
                               branch_plies=plies, extend_nodes=extend_nodes,
                               search=SearchSettings(batch_size=batch_size, seed=seed))
    with stage_bar() as bar:
        manifest = rollouts_dataset(net, input, output, settings, limit=limit, threads=threads, device=device, overwrite=overwrite,
                                    progress=stage_callback(bar)("rollouts (roots)"))
    c = manifest["counts"]
    console.print(f"wrote {c['records']} positions: {c['optimal_lines']} optimal and {c['suboptimal_lines']} sub-optimal lines from "
                  f"{c['roots']} roots ({c['evaluations']} network evaluations, {c['extensions']} line extensions) → {output}",
                  highlight=False)


@app.command()
@guarded
@options_named({"nodes": "--nodes", "batch_size": "--batch-size", "overwrite": "--overwrite"})
def disagree(
    nets: list[Path] = typer.Option(..., "--net", help="The two networks: --net A --net B"),
    input: Path = typer.Option(..., "--input", help="Positions dataset (folder or .jsonl)"),
    output: Path = typer.Option(..., "-o", "--output", help="Dataset folder to write"),
    nodes: int | None = typer.Option(None, "--nodes", help="Compare the best moves of searches of this many playouts (default: raw policies)"),
    batch_size: int = typer.Option(256, "--batch-size", help="Positions per network call (raw policies)"),
    threads: int | None = typer.Option(None, "--threads", help="ONNX Runtime intra-op threads"),
    device: str = typer.Option("auto", "--device", help="auto, cuda or cpu"),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing dataset"),
):
    """Positions whose top moves differ between two networks (the roots for concept discovery)."""
    if len(nets) != 2:
        raise ConceptChessError(f"--net: give exactly two networks (got {len(nets)})")
    settings = DisagreeSettings(nodes=nodes, batch_size=batch_size)
    with stage_bar() as bar:
        manifest = disagreement_dataset(nets[0], nets[1], input, output, settings, threads=threads, device=device,
                                        overwrite=overwrite, progress=stage_callback(bar)("comparing"))
    c = manifest["counts"]
    console.print(f"{c['disagree']} of {c['positions'] - c['without_legal_moves']} positions ({100 * c['rate']:.1f}%) have different "
                  f"top moves ({manifest['choice']}) → {output}", highlight=False)
