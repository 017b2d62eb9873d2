"""`conceptchess train`: supervised training of an lc0 SE-ResNet with a checkpoint series."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeRemainingColumn
from rich.table import Table

from conceptchess.cli.common import Bars, console, err_console, guarded, options_named
from conceptchess.enginelabels import TargetSettings
from conceptchess.errors import ConceptChessError
from conceptchess.training import DEFAULT_ARCH, TrainConfig, Trainer

TRAIN_OPTIONS = {"targets": "--targets", "mix": "--mix", "temperature": "--target-temperature", "floor": "--target-floor",
                 "teacher": "--teacher"}


@guarded
@options_named(TRAIN_OPTIONS)
def train(
    positions: Path = typer.Option(..., "--positions", help="Positions dataset (folder or .jsonl) with played moves and results"),
    output: Path = typer.Option(..., "-o", "--output", help="Folder for the checkpoints (.pb.gz + .json) and resume state"),
    run: str = typer.Option("run", "--run", help="Run name: checkpoints are RUN-stepNNNNNN.pb.gz"),
    blocks: int = typer.Option(DEFAULT_ARCH["blocks"], "--blocks", min=1),
    filters: int = typer.Option(DEFAULT_ARCH["filters"], "--filters", min=8),
    se_channels: int = typer.Option(DEFAULT_ARCH["se_channels"], "--se-channels", min=0, help="0 for a classical ResNet"),
    moves_left: bool = typer.Option(False, "--moves-left/--no-moves-left", help="Train a moves-left head too"),
    steps: int = typer.Option(2000, "--steps", min=1),
    batch_size: int = typer.Option(256, "--batch-size", min=1),
    lr: float = typer.Option(2e-3, "--lr"),
    weight_decay: float = typer.Option(1e-4, "--weight-decay", help="AdamW decoupled weight decay"),
    value_weight: float = typer.Option(1.0, "--value-weight", help="Weight of the WDL loss (small datasets: < 1 keeps the value head from memorising game results)"),
    checkpoints: int = typer.Option(10, "--checkpoints", min=2, help="Number of checkpoints including step 0 (log-spaced)"),
    holdout: float = typer.Option(0.1, "--holdout", min=0.0, max=0.9, help="Share of games held out"),
    seed: int = typer.Option(0, "--seed"),
    teacher: Path | None = typer.Option(None, "--teacher", help="Distil from this network's policy and WDL instead of the game"),
    targets: str = typer.Option("played", "--targets", help="played: the move played and the result; engine: Stockfish's labels "
                                "(positions label-engine): win-chance softmax policy and its WDL; mix: --mix × engine + the rest played"),
    mix: float = typer.Option(0.5, "--mix", help="Weight of the engine targets with --targets mix"),
    target_temperature: float = typer.Option(TargetSettings.temperature, "--target-temperature",
                                             help="Temperature of the engine policy target, in win-chance units"),
    target_floor: float = typer.Option(TargetSettings.floor, "--target-floor",
                                       help="Probability of the engine policy target spread uniformly over the legal moves"),
    max_positions: int | None = typer.Option(None, "--max-positions"),
    resume: bool = typer.Option(True, "--resume/--restart", help="Continue a killed run from its last checkpoint"),
    threads: int | None = typer.Option(None, "--threads", help="torch threads (1 makes runs bit-reproducible across machines with different core counts)"),
):
    """Train AlphaZero-style (policy + WDL) from positions, writing lc0 .pb.gz checkpoints from step 0.

    With --targets engine the loss is the KL divergence to Stockfish's policy target plus the WDL
    cross-entropy; the held-out accuracy is then agreement with the target's top move.
    """
    if teacher is not None and not teacher.exists():
        raise ConceptChessError(f"{teacher}: no such teacher network")
    cfg = TrainConfig(run=run, blocks=blocks, filters=filters, se_channels=se_channels, moves_left=moves_left, steps=steps,
                      batch_size=batch_size, lr=lr, weight_decay=weight_decay, value_weight=value_weight, checkpoints=checkpoints, holdout=holdout, seed=seed,
                      teacher=str(teacher) if teacher else None, targets=targets, mix=mix, target_temperature=target_temperature,
                      target_floor=target_floor, max_positions=max_positions, threads=threads)
    with console.status("reading and encoding positions"):
        trainer = Trainer(cfg, positions, output)
    console.print(f"{len(trainer.train_idx)} training / {len(trainer.held_idx)} held-out positions; "
                  f"{cfg.spec().describe()}; checkpoints at steps {trainer.schedule}")
    with Bars(TextColumn("training"), BarColumn(), MofNCompleteColumn(), TextColumn("loss {task.fields[loss]:.3f}"),
                  TimeRemainingColumn(), console=err_console, transient=True) as bar:
        task = bar.add_task("train", total=steps, loss=float("nan"))
        trainer.progress = lambda step, total: bar.update(task, completed=step, total=total, loss=trainer.last_loss)
        history = trainer.run(resume=resume)
    t = Table("step", "file", "held-out loss", "held-out accuracy", "sha256")
    for m in history:
        acc = m["heldout_accuracy"]
        t.add_row(str(m["step"]), m["file"], f"{m['heldout_loss']:.4f}" if m["heldout_loss"] is not None else "-",
                  f"{acc:.3f}" if acc is not None else "-", m["sha256"][:16])
    console.print(t)
