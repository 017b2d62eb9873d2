"""`conceptchess puzzles …`: mine, import, verify, export and list puzzle collections."""

from __future__ import annotations

from collections import Counter
from dataclasses import replace
from pathlib import Path

import typer
from rich.table import Table

from conceptchess.activations import ActivationFiles
from conceptchess.cli.common import DB_HELP, console, fail, guarded, options_named, stage_bar, stage_callback
from conceptchess.directions import ConceptDirection
from conceptchess.export import export_collection
from conceptchess.puzzles.acceptance import AcceptanceReport, acceptance_report
from conceptchess.puzzles.discovered import discovered_direction, parse_discovered, random_control
from conceptchess.puzzles.filters import MineFilters
from conceptchess.puzzles.lichess import import_lichess
from conceptchess.puzzles.mine import HumanConcept, mine_many
from conceptchess.puzzles.records import collection_puzzles, collection_sizes
from conceptchess.puzzles.verdicts import verify_collection, write_verdicts_csv
from conceptchess.puzzles.verify import MIN_ADVANTAGE_CP, VerifySettings
from conceptchess.store import connect
from conceptchess.store.directions import ProbeRef, probe_direction

app = typer.Typer(help="Puzzles: mine them from concepts, import Lichess puzzles, verify, export PGN.", no_args_is_help=True)

MIN_ADVANTAGE_HELP = ("Every solver move must keep at least this many centipawns for the solver, unless it mates "
                      "(lichess-puzzler: 200; 0 turns it off)")
FILTERS = MineFilters()  # the defaults of the filter options
# the library's arguments as this group's options, in the messages that name them
OPTIONS = {"seed": "--seed", "blind": "--blind"}


@app.command("import")
@guarded
def import_(csv_file: Path = typer.Argument(..., help="Lichess puzzle CSV (or .csv.zst) with a header row"),
            collection: str = typer.Option(..., "--collection", "-c", help="Collection to add the puzzles to (made if missing)"),
            limit: int | None = typer.Option(None, "--limit", help="Read at most this many puzzles"),
            db: str | None = typer.Option(None, "--db", help=DB_HELP)):
    """Import Lichess puzzles (PuzzleId, FEN, Moves, Rating, …; the first move is the opponent's)."""
    added, already = import_lichess(connect(db), csv_file, collection, limit)
    console.print(f"{added} puzzle(s) added to collection [bold]{collection}[/bold]" + (f", {already} already there" if already else ""))


@app.command()
@guarded
def verify(collection: str = typer.Option(..., "--collection", "-c", help="Collection to verify"),
           nodes: int = typer.Option(1_000_000, "--nodes", min=1, help="Stockfish nodes per check of a solver move (lichess-puzzler: 25,000,000)"),
           workers: int = typer.Option(2, "--workers", min=1, help="Stockfish processes (one thread each)"),
           output: Path | None = typer.Option(None, "--output", "-o", help="Also write puzzle_id,accepted,reason to this CSV"),
           network: Path | None = typer.Option(None, "--network", help="Also require this network's move to be an accepted first move"),
           weak_network: Path | None = typer.Option(None, "--weak-network", help="Checkpoint for the difficulty estimate"),
           min_advantage: int = typer.Option(MIN_ADVANTAGE_CP, "--min-advantage", min=0, metavar="CP", help=MIN_ADVANTAGE_HELP),
           db: str | None = typer.Option(None, "--db", help=DB_HELP)):
    """Check that each puzzle's solution is the only good line (Stockfish MultiPV 2, lichess-puzzler's criterion)
    and keeps the solver winning."""
    database = connect(db)
    with stage_bar(transient=False) as progress:
        rows = verify_collection(database, collection, VerifySettings(nodes=nodes, min_advantage_cp=min_advantage), workers=workers,
                                 network=network, weak_network=weak_network, progress=stage_callback(progress)(f"verifying {collection}"))
    t = Table("puzzle", "verdict", "reason", title=f"{collection}: Stockfish {nodes:,} nodes per check, {_floor(min_advantage)}")
    for r in rows:
        t.add_row(r.puzzle_id, "[green]accepted[/green]" if r.accepted else "[red]rejected[/red]", r.reason)
    console.print(t)
    ok = sum(r.accepted for r in rows)
    why = Counter(r.category for r in rows if not r.accepted)
    console.print(f"{ok} accepted, {len(rows) - ok} rejected of {len(rows)}" + (f" ({', '.join(f'{k} {v}' for k, v in why.items())})" if why else ""))
    if output is not None:
        console.print(f"wrote {write_verdicts_csv(rows, output)}")


@app.command()
@guarded
def mine(direction: str = typer.Option(..., "--direction",
                                       help="Concept direction: a stored probe RUN:CONCEPT:TAP (a probe run's id or key prefix), a "
                                            "discovered concept discovered:ID (its id in discover list), a direction saved as .npz, or a "
                                            ".npy vector over the tap's flattened activations (with --tap)"),
         tap: str | None = typer.Option(None, "--tap", help="Tap a bare vector reads (e.g. block3); stored probes and saved directions know theirs"),
         activations: Path = typer.Option(..., "--activations", help="Activation folder holding that tap"),
         dataset: Path = typer.Option(..., "--dataset", help="The positions dataset the activations were extracted from"),
         collection: str = typer.Option(..., "--collection", "-c", help="Collection to add the puzzles to"),
         name: str | None = typer.Option(None, "--name",
                                         help="Concept name (default: the direction file's name, CONCEPT-probe-TAP, or discovered-ID)"),
         mean: Path | None = typer.Option(None, "--mean", help="Standardisation mean (.npy) of a bare vector"),
         scale: Path | None = typer.Option(None, "--scale", help="Standardisation scale (.npy) of a bare vector"),
         top: float = typer.Option(0.025, "--top", help="Fraction of positions kept as prototypes"),
         max_puzzles: int | None = typer.Option(None, "--max", help="Stop after this many puzzles per concept or control"),
         controls: list[str] = typer.Option([], "--control", help="'random' (matched sparsity) or 'human:CONCEPT'; repeatable"),
         seed: int = typer.Option(0, "--seed", help="Seed for ties and random controls"),
         nodes: int = typer.Option(1_000_000, "--nodes", min=1, help="Stockfish nodes per check"),
         workers: int = typer.Option(2, "--workers", min=1, help="Stockfish processes (one thread each)"),
         network: Path | None = typer.Option(None, "--network", help="Network file (default: the activation folder's)"),
         weak_network: Path | None = typer.Option(None, "--weak-network",
                                                  help="Checkpoint for difficulty and the weak-network filter (default: the series' weakest)"),
         min_advantage: int = typer.Option(MIN_ADVANTAGE_CP, "--min-advantage", min=0, metavar="CP", help=MIN_ADVANTAGE_HELP),
         keep_recaptures: bool = typer.Option(False, "--keep-recaptures", help="Keep network moves that take back on the last capture's square"),
         check_evasion_max: int = typer.Option(FILTERS.check_evasion_max_legal, "--check-evasion-max", min=0, metavar="N",
                                               help="Drop check evasions with at most N legal moves (0: keep them)"),
         weak_max_prob: float = typer.Option(FILTERS.weak_max_prob, "--weak-max-prob", min=0.0, max=1.0, metavar="P",
                                             help="Drop first moves the weak network plays with probability >= P (0: keep them)"),
         min_difficulty: float = typer.Option(FILTERS.min_difficulty, "--min-difficulty", min=0.0, max=1.0, metavar="D",
                                              help="Drop puzzles whose difficulty estimate is below D (0: keep them)"),
         decided_cp: int = typer.Option(FILTERS.decided_cp, "--decided-cp", min=0, metavar="CP",
                                        help="Drop positions decided before the move: won or lost by CP whatever is played, or the solver "
                                             "already CP ahead before the opponent's last move (0: keep them)"),
         db: str | None = typer.Option(None, "--db", help=DB_HELP)):
    """Rank positions by concept score, keep the top 2.5% and turn those with a unique, winning network move into puzzles.

    Trivial puzzles are dropped (each filter has an option that turns it off) and every rejected prototype is counted
    by reason, concepts and controls side by side. A discovered concept (--direction discovered:ID) needs activations
    of its discovery run's network at its tap; its puzzles, named discovered-ID, and those of its random control
    carry the discovery run, root, variant, held-out satisfaction, teachability and novelty (shown by puzzles export
    without --blind)."""
    database = connect(db)
    files = ActivationFiles(activations)
    concept = _direction(database, direction, tap, name, mean, scale, files)
    extra = []
    for c in controls:
        if c == "random":
            extra.append(random_control(concept, seed))
        elif c.startswith("human:"):
            extra.append(HumanConcept(c.split(":", 1)[1]))
        else:
            raise typer.BadParameter(f"unknown control {c!r}: use 'random' or 'human:CONCEPT'", param_hint="--control")
    filters = MineFilters(recaptures=not keep_recaptures, check_evasion_max_legal=check_evasion_max, weak_max_prob=weak_max_prob,
                          min_difficulty=min_difficulty, decided_cp=decided_cp)
    with stage_bar(transient=False) as progress:
        results = mine_many(database, collection, [concept, *extra], files, dataset, network=network, top=top,
                            max_puzzles=max_puzzles, settings=VerifySettings(nodes=nodes, min_advantage_cp=min_advantage),
                            workers=workers, weak_network=weak_network or True, seed=seed, filters=filters,
                            progress_for=stage_callback(progress))
    show_acceptance(acceptance_report(results),
                    f"{collection}: prototypes by outcome, Stockfish {nodes:,} nodes per check, {_floor(min_advantage)}")


def show_acceptance(report: AcceptanceReport, title: str) -> None:
    """Concepts and controls side by side: prototypes by outcome, puzzles, acceptance, and what cannot be compared."""
    t = Table("", *(f"{name}\n({kind})" for name, kind in report.columns), title=title)
    for label, cells in report.rows:
        t.add_row(label, *cells, style="bold" if label in ("puzzles", "acceptance") else None)
    console.print(t)
    for note in report.notes:
        console.print(f"[yellow]{note}[/yellow]")


def _direction(database, text: str, tap: str | None, name: str | None, mean: Path | None, scale: Path | None,
               files: ActivationFiles):
    """The direction ``--direction`` names: a discovered concept discovered:ID, a file, else a stored probe
    RUN:CONCEPT:TAP of the activations' network; options that contradict it are refused (``--name`` renames)."""
    concept_id = parse_discovered(text)
    ref = None if concept_id is not None or Path(text).exists() else ProbeRef.parse(text)
    if concept_id is None and ref is None:
        if not Path(text).exists():
            fail(f"--direction {text}: no such file, and no stored probe RUN:CONCEPT:TAP")
        return ConceptDirection.load(text, tap, name, mean, scale)
    what = "a discovered concept" if ref is None else "a stored probe"
    given = [opt for opt, value in (("--mean", mean), ("--scale", scale)) if value is not None]
    if given:
        fail(f"{' and '.join(given)} cannot go with {what} (--direction {text}): it carries its own standardisation")
    if ref is not None and tap is not None and tap != ref.tap:
        fail(f"--tap {tap} contradicts --direction {text}, a probe at {ref.tap}")
    with database.session() as s:
        if ref is None:
            d = discovered_direction(s, concept_id, files)
        else:
            d = probe_direction(s, ref.run, ref.concept, ref.tap, network=files.manifest.get("net_sha256"))
    if ref is None and tap is not None and tap != d.tap:
        fail(f"--tap {tap} contradicts --direction {text}, a concept at {d.tap}")
    return replace(d, name=name) if name else d


def _floor(min_advantage: int) -> str:
    return f"solver kept at {min_advantage / 100:+.2f} or mating" if min_advantage else "no advantage floor"


@app.command()
@guarded
@options_named(OPTIONS)
def export(collection: str = typer.Option(..., "--collection", "-c", help="Collection to export"),
           blind: bool = typer.Option(False, "--blind", help="Expert sheet: shuffled, no concept/solution tags"),
           seed: int | None = typer.Option(None, "--seed", help="Order seed of a blinded export (drawn and printed if not given)"),
           output: Path | None = typer.Option(None, "--output", "-o", help="PGN file (default: puzzles/<collection>.pgn)"),
           verified_only: bool = typer.Option(False, "--verified-only", help="Leave out puzzles whose last verification rejected them"),
           db: str | None = typer.Option(None, "--db", help=DB_HELP)):
    """Write a collection as PGN: one game per puzzle, the solution as the main line."""
    res = export_collection(connect(db), collection, output, blind=blind, seed=seed, verified_only=verified_only)
    what = f"blinded, order seed {res.seed}" if res.blind else "with solutions"
    console.print(f"wrote {res.puzzles} puzzle(s) ({what}) to {res.path}")


@app.command("list")
@guarded
def list_(collection: str | None = typer.Option(None, "--collection", "-c", help="List this collection's puzzles"),
          db: str | None = typer.Option(None, "--db", help=DB_HELP)):
    """List collections, or the puzzles of one."""
    database = connect(db)
    with database.session() as s:
        if collection is None:
            t = Table("collection", "puzzles", "created")
            for name, n, created in collection_sizes(s):
                t.add_row(name, str(n), f"{created:%Y-%m-%d %H:%M}")
        else:
            t = Table("id", "kind", "concept", "to play", "solution", "themes", "verified", "difficulty", title=collection)
            for p in collection_puzzles(s, collection):
                t.add_row(p.id, p.kind, p.concept or "", p.side_to_solve, " ".join(p.solution), " ".join(p.themes),
                          {True: "yes", False: "no", None: "–"}[p.verified], "–" if p.difficulty is None else f"{p.difficulty:.2f}")
    console.print(t)


if __name__ == "__main__":
    app()
