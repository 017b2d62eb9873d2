"""Concept labelling throughput: positions/s for the python-chess concepts, terms/s for Stockfish's.

Positions are every ply of the first games of the shared Lichess games
(``$CONCEPTCHESS_TEST_DATA/pgn/lichess_2021-10_games_a.pgn``, default ``../shared/data``; override
with ``--pgn``); without them the script stops with exit status 1 (nothing is measured).

    python benchmarks/concepts_throughput.py [--positions 5000] [--sf-positions 1000] [--per-concept]

Prints positions/s on one core for the whole python-chess set (target: 2,000/s) by wall clock and
by process CPU time (they differ when the machine is shared; the load average is printed), beside a
baseline measured in the same run on the same boards: python-chess's own ``is_check`` plus one
legal-move generation per board (what any concept needs at least), and how many such passes the
concept set costs. With ``--per-concept``: where the time goes (shared stages, then each concept's
own cost on top). Then Stockfish positions/s and terms/s (exit status 1 when Stockfish is missing).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import chess
from _common import GAMES, game_positions, machine_load, need

from conceptchess.concepts import CONCEPTS, label
from conceptchess.concepts.context import PositionContext
from conceptchess.concepts.stockfish import StockfishEval, available, concept_names


def check_and_moves(boards: list[chess.Board]) -> None:
    """The baseline: python-chess's own ``is_check`` and one legal-move generation per board."""
    for b in boards:
        b.is_check()
        for _ in b.legal_moves:
            pass


def bench_python_chess(boards: list[chess.Board], repeat: int) -> dict[str, tuple[float, float]]:
    """Best-of-``repeat`` positions/s by wall clock and by this process's CPU time, for the concept set
    and for the baseline, timed back to back in each round (both see the same host load)."""
    best = {"concepts": [float("inf")] * 2, "baseline": [float("inf")] * 2}
    for _ in range(repeat):
        for name, fn in (("baseline", check_and_moves), ("concepts", label)):
            t, c = time.perf_counter(), time.process_time()
            fn(boards)
            wall, cpu = time.perf_counter() - t, time.process_time() - c
            best[name] = [min(best[name][0], wall), min(best[name][1], cpu)]
    return {k: (len(boards) / w, len(boards) / c) for k, (w, c) in best.items()}


def bench_per_concept(boards: list[chess.Board], top: int) -> None:
    """Where the time goes: the shared stages, then each concept's own cost on top of them."""
    n = len(boards)

    def per_position(fn) -> float:
        t = time.process_time()
        fn()
        return (time.process_time() - t) / n * 1e6

    ctx_us = per_position(lambda: [PositionContext(b) for b in boards])
    side_us = per_position(lambda: [PositionContext(b).side(b.turn) for b in boards]) - ctx_us
    side_them = per_position(lambda: [PositionContext(b).side(not b.turn) for b in boards]) - ctx_us
    print(f"  shared stages (CPU µs/position): context (piece masks, attack maps) {ctx_us:.0f}, "
          f"side-to-move legal moves + checks/mates/forks {side_us:.0f}, the same for the opponent (null move) {side_them:.0f}")
    contexts = []
    for b in boards:
        ctx = PositionContext(b)
        ctx.side(ctx.us), ctx.side(ctx.them)
        contexts.append(ctx)
    rows = []
    for c in CONCEPTS.values():
        if c.source != "python-chess":
            continue
        f = c.function
        rows.append((per_position(lambda f=f: [f(ctx) for ctx in contexts]), c.name))
    rows.sort(reverse=True)
    print(f"  concept functions on top of the shared stages: {sum(r[0] for r in rows):.0f} µs/position in all; the slowest:")
    for us, name in rows[:top]:
        print(f"    {name:32s} {us:6.1f} µs")


def bench_stockfish(boards: list[chess.Board]) -> bool:
    if not available():
        print("error: the Stockfish binary was not found (install Stockfish 15.1 or put it on PATH): "
              "its terms/s were not measured", file=sys.stderr)
        return False
    with StockfishEval() as sf:
        sf.terms_many(boards[:64])  # warm up
        t = time.perf_counter()
        sf.terms_many(boards)
        dt = time.perf_counter() - t
        ident = sf.id
    n_terms = len(concept_names())
    print(f"stockfish ({ident}, one process, batches of 64): {len(boards) / dt:,.0f} positions/s = "
          f"{len(boards) * n_terms / dt:,.0f} terms/s ({n_terms} terms per position, {len(boards)} positions)")
    return True


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pgn", type=Path, default=GAMES, help="games to take positions from (default: the shared Lichess games)")
    ap.add_argument("--positions", type=int, default=5000)
    ap.add_argument("--sf-positions", type=int, default=1000)
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--per-concept", action="store_true", help="also time each concept alone and list the slowest")
    ap.add_argument("--top", type=int, default=12)
    args = ap.parse_args(argv)
    boards = game_positions(need(args.pgn, f"games to take positions from ({args.pgn.name})"), max(args.positions, args.sf_positions))
    pc = [c for c in CONCEPTS.values() if c.source == "python-chess"]
    rates = bench_python_chess(boards[: args.positions], args.repeat)
    (rate, cpu_rate), (base, base_cpu) = rates["concepts"], rates["baseline"]
    print(f"python-chess concepts ({len(pc)} concepts, {min(len(boards), args.positions)} positions from {args.pgn.name}, one core, "
          f"best of {args.repeat}): {rate:,.0f} positions/s wall clock, {cpu_rate:,.0f} positions/s of process CPU time "
          f"({machine_load()}; target 2,000/s: {'met' if rate >= 2000 else 'met in CPU time only' if cpu_rate >= 2000 else 'NOT met'})")
    print(f"baseline, same boards, same run: python-chess's is_check + one legal-move generation: {base:,.0f} positions/s wall clock, "
          f"{base_cpu:,.0f} of CPU time; the concept set costs {base_cpu / cpu_rate:.1f} such passes per position (CPU time)")
    if args.per_concept:
        bench_per_concept(boards[: min(args.positions, 1000)], args.top)
    return 0 if bench_stockfish(boards[: args.sf_positions]) else 1


if __name__ == "__main__":
    sys.exit(main())
