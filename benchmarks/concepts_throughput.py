"""Concept labelling throughput: positions/s for the python-chess concepts, terms/s for Stockfish's.

Positions are every ply of the first games of /work/shared/data/pgn/lichess_2021-10_games_a.pgn
(override with ``--pgn``); the script skips with a message when that file is absent.

    python benchmarks/concepts_throughput.py [--positions 5000] [--sf-positions 1000] [--per-concept]

Prints positions/s on one core for the whole python-chess set (target: 2,000/s) by wall clock and
by process CPU time (they differ when the machine is shared; the load average is printed), with
``--per-concept`` where the time goes (shared stages, then each concept's own cost on top), and
Stockfish positions/s and terms/s.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import chess
import chess.pgn

from conceptchess.concepts import CONCEPTS, label
from conceptchess.concepts.context import PositionContext
from conceptchess.concepts.stockfish import StockfishEval, available, concept_names

DEFAULT_PGN = Path("/work/shared/data/pgn/lichess_2021-10_games_a.pgn")


def load_positions(pgn: Path, limit: int) -> list[chess.Board]:
    """Every position (after each ply, game end included) of the file's games, up to ``limit``."""
    boards: list[chess.Board] = []
    with open(pgn, encoding="utf-8", errors="replace") as f:
        while len(boards) < limit:
            game = chess.pgn.read_game(f)
            if game is None:
                break
            b = game.board()
            for move in game.mainline_moves():
                b.push(move)
                boards.append(b.copy(stack=False))
                if len(boards) >= limit:
                    break
    return boards


def bench_python_chess(boards: list[chess.Board], repeat: int) -> tuple[float, float]:
    """Best-of-``repeat`` positions/s by wall clock and by this process's CPU time."""
    wall = cpu = float("inf")
    for _ in range(repeat):
        t, c = time.perf_counter(), time.process_time()
        label(boards)
        wall, cpu = min(wall, time.perf_counter() - t), min(cpu, time.process_time() - c)
    return len(boards) / wall, len(boards) / cpu


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


def bench_stockfish(boards: list[chess.Board]) -> None:
    if not available():
        print("stockfish: binary not found, skipped")
        return
    with StockfishEval() as sf:
        sf.terms_many(boards[:64])  # warm up
        t = time.perf_counter()
        sf.terms_many(boards)
        dt = time.perf_counter() - t
        ident = sf.id
    n_terms = len(concept_names())
    print(f"stockfish ({ident}, one process, batches of 64): {len(boards) / dt:,.0f} positions/s = "
          f"{len(boards) * n_terms / dt:,.0f} terms/s ({n_terms} terms per position, {len(boards)} positions)")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pgn", type=Path, default=DEFAULT_PGN)
    ap.add_argument("--positions", type=int, default=5000)
    ap.add_argument("--sf-positions", type=int, default=1000)
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--per-concept", action="store_true", help="also time each concept alone and list the slowest")
    ap.add_argument("--top", type=int, default=12)
    args = ap.parse_args(argv)
    if not args.pgn.exists():
        print(f"skipped: {args.pgn} not found")
        return 0
    boards = load_positions(args.pgn, max(args.positions, args.sf_positions))
    pc = [c for c in CONCEPTS.values() if c.source == "python-chess"]
    rate, cpu_rate = bench_python_chess(boards[: args.positions], args.repeat)
    load = os.getloadavg()[0]
    print(f"python-chess concepts ({len(pc)} concepts, {min(len(boards), args.positions)} positions from {args.pgn.name}, one core): "
          f"{rate:,.0f} positions/s wall clock, {cpu_rate:,.0f} positions/s of process CPU time "
          f"(load average {load:.1f} on {os.cpu_count()} cores; target 2,000/s: {'met' if rate >= 2000 else 'met in CPU time only' if cpu_rate >= 2000 else 'NOT met'})")
    if args.per_concept:
        bench_per_concept(boards[: min(args.positions, 1000)], args.top)
    bench_stockfish(boards[: args.sf_positions])
    return 0


if __name__ == "__main__":
    sys.exit(main())
