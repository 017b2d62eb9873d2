"""Puzzle verification throughput: puzzles verified per minute, next to lichess-puzzler's setting.

Verifies the Lichess-format sample (tests/data/lichess_puzzles.csv, 7 puzzles; repeated) with
``check_line`` — one Stockfish 15.1 MultiPV-2 search per solver move — on ``--workers``
single-threaded Stockfish processes, at each ``--nodes`` budget. lichess-puzzler searches 25M nodes
per check (its ``pair_limit``); its cost here is extrapolated from the measured nodes per second.

    python benchmarks/puzzle_verify.py [--nodes 100000 1000000] [--workers 2] [--repeat 3]

Prints, per node budget: puzzles/min, checks/min, seconds per check, the effective nodes/s of one
process (short searches and mates included), the load average (the machine is shared); then
Stockfish's own nodes/s on a long search and, from it, the lichess-puzzler line.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import chess

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from conceptchess.puzzles.engine_pool import StockfishPool  # noqa: E402
from conceptchess.puzzles.lichess import read_lichess_csv  # noqa: E402
from conceptchess.puzzles.verify import LICHESS_NODES, VerifySettings, check_line  # noqa: E402


def run(puzzles, nodes: int, workers: int) -> dict:
    settings = VerifySettings(nodes=nodes)
    with StockfishPool(workers) as pool:
        t = time.perf_counter()
        verdicts = list(pool.map(lambda sf, p: check_line(sf, chess.Board(p.fen), p.solution, settings), puzzles))
        wall = time.perf_counter() - t
    checks = sum(len(v.steps) for v in verdicts)
    searched = sum(s.nodes for v in verdicts for s in v.steps)
    return {"nodes": nodes, "puzzles": len(puzzles), "accepted": sum(v.accepted for v in verdicts), "checks": checks,
            "wall": wall, "puzzles_per_min": 60 * len(puzzles) / wall, "checks_per_min": 60 * checks / wall,
            "s_per_check": wall * workers / checks, "nps_per_process": searched / (wall * workers)}


def raw_nps(workers: int, nodes: int = 3_000_000) -> float:
    """Stockfish's own nodes/s for one long search per process, all processes at once (a middlegame)."""
    import chess.engine

    board = chess.Board("r1bq1rk1/pp2bppp/2n1pn2/3p4/2PP4/2N2N2/PP2BPPP/R2QKB1R w KQ - 0 9")
    with StockfishPool(workers) as pool:
        infos = list(pool.map(lambda sf, _: sf.analyse(board, chess.engine.Limit(nodes=nodes), game=object()), range(workers)))
    return sum(i.get("nps", 0) for i in infos) / len(infos)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--nodes", type=int, nargs="+", default=[100_000, 1_000_000])
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=3, help="verify the sample this many times")
    ap.add_argument("--csv", type=Path, default=ROOT / "tests" / "data" / "lichess_puzzles.csv")
    args = ap.parse_args()
    try:
        sample = read_lichess_csv(args.csv)
        StockfishPool(1).close()
    except Exception as e:  # noqa: BLE001 - no Stockfish or no sample: say so and stop
        print(f"skipped: {e}")
        return
    puzzles = sample * args.repeat
    print(f"{len(puzzles)} puzzles ({len(sample)} distinct, {sum((len(p.solution) + 1) // 2 for p in sample)} solver moves), "
          f"{args.workers} Stockfish process(es), Threads=1 each; load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    print(f"{'nodes/check':>12} {'puzzles/min':>12} {'checks/min':>11} {'s/check':>8} {'nps/process':>12} accepted")
    last = None
    for n in args.nodes:
        r = run(puzzles, n, args.workers)
        last = r
        print(f"{n:>12,} {r['puzzles_per_min']:>12.1f} {r['checks_per_min']:>11.1f} {r['s_per_check']:>8.3f} "
              f"{r['nps_per_process']:>12,.0f} {r['accepted']}/{r['puzzles']}")
    nps = raw_nps(args.workers)
    print(f"Stockfish's own speed, {args.workers} processes searching at once: {nps:,.0f} nodes/s per process")
    s_check = LICHESS_NODES / nps
    per_puzzle = last["checks"] / last["puzzles"]
    ppm = 60 * args.workers / (s_check * per_puzzle)
    print(f"{LICHESS_NODES:>12,} {ppm:>12.2f} {60 * args.workers / s_check:>11.2f} {s_check:>8.1f} "
          f"{'(extrapolated)':>12} lichess-puzzler's setting: {LICHESS_NODES:,} nodes per check ≈ {s_check:.0f} s per check here")
    print(f"ratio: at {last['nodes']:,} nodes/check we verify {last['puzzles_per_min'] / ppm:.0f}× more puzzles per minute "
          f"than at lichess-puzzler's {LICHESS_NODES:,}")


if __name__ == "__main__":
    main()
