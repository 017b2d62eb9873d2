"""Puzzle verification: our node budget against lichess-puzzler's, both measured on the same puzzles.

Verifies the first ``--puzzles`` puzzles of a Lichess-format CSV (default: the project's own sample,
tests/data/lichess_puzzles.csv; ``--csv`` for others, e.g. the shared
``$CONCEPTCHESS_TEST_DATA/puzzles/lichess_puzzles_1499.csv``) with ``check_line`` — lichess-puzzler's
criterion, one Stockfish 15.1 MultiPV-2 search per solver move — twice in the same run: at our default
node budget (``VerifySettings().nodes``, or ``--nodes``) and at lichess-puzzler's own budget (25M nodes
per check, its ``pair_limit``), on ``--workers`` single-threaded Stockfish processes (default one).

    python benchmarks/puzzle_verify.py [--puzzles 4] [--nodes N] [--workers 1] [--csv FILE]

Prints, for both budgets: acceptance (accepted/total), seconds, puzzles/min, checks and seconds per
check, the effective nodes/s of one process; then the puzzles the two judge differently, and the
speed ratio — at equal acceptance when both accept the same puzzles, and otherwise said to be not at
equal acceptance, with the ratio over the puzzles both judge alike beside it. At 25M nodes a check
takes about half a minute on an idle core: the default four puzzles (five checks) take a few minutes.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import chess
from _common import machine_load, need

from conceptchess.errors import ConceptChessError
from conceptchess.paths import ROOT
from conceptchess.puzzles.engine_pool import StockfishPool
from conceptchess.puzzles.lichess import read_lichess_csv
from conceptchess.puzzles.verify import LICHESS_NODES, Verdict, VerifySettings, check_line


@dataclass
class Timed:
    verdict: Verdict
    seconds: float  # wall time of this puzzle's checks on its worker


@dataclass
class Run:
    """One budget over all the puzzles."""

    nodes: int
    results: list[Timed]
    wall: float
    workers: int

    @property
    def accepted(self) -> int:
        return sum(r.verdict.accepted for r in self.results)

    @property
    def checks(self) -> int:
        return sum(len(r.verdict.steps) for r in self.results)

    @property
    def puzzles_per_min(self) -> float:
        return 60 * len(self.results) / self.wall

    def row(self, name: str) -> str:
        searched = sum(s.nodes for r in self.results for s in r.verdict.steps)
        busy = self.wall * self.workers
        return (f"{name:<26} {self.nodes:>12,} {f'{self.accepted}/{len(self.results)}':>9} {self.wall:>8.1f} "
                f"{self.puzzles_per_min:>12.2f} {self.checks:>7} {busy / max(self.checks, 1):>8.2f} {searched / busy:>12,.0f}")


def verify(puzzles, nodes: int, workers: int, hash_mb: int) -> Run:
    settings = VerifySettings(nodes=nodes)

    def one(sf, p) -> Timed:
        t = time.perf_counter()
        v = check_line(sf, chess.Board(p.fen), p.solution, settings)
        return Timed(v, time.perf_counter() - t)

    with StockfishPool(workers, hash_mb=hash_mb) as pool:
        t = time.perf_counter()
        results = list(pool.map(one, puzzles))
        wall = time.perf_counter() - t
    return Run(nodes, results, wall, workers)


def compare(puzzles, ours: Run, theirs: Run) -> None:
    differ = [(p, a.verdict, b.verdict) for p, a, b in zip(puzzles, ours.results, theirs.results, strict=True)
              if a.verdict.accepted != b.verdict.accepted]
    for p, a, b in differ:
        print(f"  {p.id}: ours {'accepts' if a.accepted else 'rejects'} ({a.reason}); "
              f"lichess-puzzler's budget {'accepts' if b.accepted else 'rejects'} ({b.reason})")
    ratio = ours.puzzles_per_min / theirs.puzzles_per_min
    if not differ:
        print(f"at equal acceptance ({ours.accepted}/{len(puzzles)} accepted by both, the same puzzles): {ours.nodes:,} nodes per check "
              f"verifies {ratio:.1f}× as many puzzles per minute as lichess-puzzler's {theirs.nodes:,}")
        return
    print(f"acceptance DIFFERS: ours {ours.accepted}/{len(puzzles)}, lichess-puzzler's budget {theirs.accepted}/{len(puzzles)} "
          f"({len(differ)} puzzle(s) judged differently, listed above): the overall {ratio:.1f}× as many puzzles per minute is NOT "
          "a comparison at equal acceptance")
    same = [i for i, (a, b) in enumerate(zip(ours.results, theirs.results)) if a.verdict.accepted == b.verdict.accepted]
    if same:
        mine = sum(ours.results[i].seconds for i in same)
        theirs_s = sum(theirs.results[i].seconds for i in same)
        print(f"on the {len(same)} puzzle(s) both judge alike: {60 * len(same) / mine:.2f} against {60 * len(same) / theirs_s:.2f} "
              f"puzzles per minute of one process, {theirs_s / mine:.1f}×")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--puzzles", type=int, default=4, help="how many puzzles (the first of the file)")
    ap.add_argument("--nodes", type=int, default=VerifySettings().nodes, help="our nodes per check (default: VerifySettings' default)")
    ap.add_argument("--lichess-nodes", type=int, default=LICHESS_NODES, help="lichess-puzzler's nodes per check (its pair_limit)")
    ap.add_argument("--workers", type=int, default=1, help="Stockfish processes (Threads=1 each)")
    ap.add_argument("--hash-mb", type=int, default=16, help="Stockfish hash per process, the same for both budgets")
    ap.add_argument("--csv", type=Path, default=ROOT / "tests" / "data" / "lichess_puzzles.csv")
    args = ap.parse_args()
    try:
        puzzles = read_lichess_csv(need(args.csv, f"the puzzle file {args.csv.name}"), limit=args.puzzles)
        if not puzzles:
            raise ConceptChessError(f"{args.csv}: no puzzles")
        print(f"{len(puzzles)} puzzles from {args.csv.name} ({', '.join(p.id for p in puzzles)}; "
              f"{sum((len(p.solution) + 1) // 2 for p in puzzles)} solver moves); {args.workers} Stockfish process(es), Threads=1, "
              f"Hash {args.hash_mb} MB; {machine_load()}")
        ours = verify(puzzles, args.nodes, args.workers, args.hash_mb)
        theirs = verify(puzzles, args.lichess_nodes, args.workers, args.hash_mb)
    except ConceptChessError as e:  # no Stockfish, a bad file: say so, and fail
        print(f"error: {e}; nothing was measured", file=sys.stderr)
        return 1
    print(f"{'':<26} {'nodes/check':>12} {'accepted':>9} {'seconds':>8} {'puzzles/min':>12} {'checks':>7} {'s/check':>8} {'nps/process':>12}")
    print(ours.row("ours (default budget)"))
    print(theirs.row("lichess-puzzler's budget"))
    compare(puzzles, ours, theirs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
