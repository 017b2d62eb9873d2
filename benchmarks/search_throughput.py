"""Search throughput on maia-1100: PUCT playouts per second against the engine alone, and a rollouts run.

(a) search: a fresh :class:`~conceptchess.search.SearchTree` per root (positions of real games, with
their history) searched for ``--nodes`` playouts, leaves evaluated in batches of ``--batch-size``;
counted as playouts (visits) and as network evaluations (a playout that ends on a decided position
needs none). (b) baseline: the same engine evaluating as many positions of the same games with
``Engine.evaluate`` at the same batch size (which pipelines its own Python work with ONNX Runtime in a
thread). (a) and (b) alternate root by root (see ``measure`` in engine_throughput.py), so both see the
same host; the script prints (a)/(b). Target: ≥ 0.7.

Then (c): ``positions rollouts`` from ``--rollout-roots`` roots (default 200) at ``--nodes`` playouts
and depth 5, timed end to end: positions written per second and network evaluations per second.

    python benchmarks/search_throughput.py [--threads 1] [--batch-size 32] [--nodes 800] [--roots 24] [--rollout-roots 200]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import chess
from _common import MAIA1100, machine_load, need, read_games

from conceptchess.engine import Engine
from conceptchess.lc0.encoder import Histories, game_histories
from conceptchess.rollouts import RolloutSettings, rollouts_dataset
from conceptchess.search import SearchSettings, SearchTree


def roots_of_games(count: int, every: int = 9, skip: int = 8) -> list[dict]:
    """``count`` positions of the shared games (every ``every``-th ply after ``skip``), each as its game's moves."""
    out = []
    for gi, game in enumerate(read_games()):
        moves = [m.uci() for m in game.mainline_moves()]
        for ply in range(skip, len(moves), every):
            out.append({"id": f"g{gi}-p{ply}", "moves": moves[:ply]})
            if len(out) == count:
                return out
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--nodes", type=int, default=800)
    ap.add_argument("--roots", type=int, default=24, help="roots searched for (a), each followed by (b)")
    ap.add_argument("--rollout-roots", type=int, default=200, help="roots of the rollouts run (c); 0 skips it")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--net", type=Path, default=MAIA1100)
    args = ap.parse_args()
    need(args.net, f"the network {args.net.name}")

    roots = roots_of_games(args.roots)
    parts, boards = [], []
    for game in read_games():
        h, bs = game_histories(game.board(), list(game.mainline_moves()), keep_boards=True)
        parts.append(h)
        boards += bs
        if len(boards) >= 4096:
            break
    hist = Histories.concat(parts)
    engine = Engine(args.net, device=args.device, threads=args.threads, batch_size=args.batch_size)
    settings = SearchSettings(batch_size=args.batch_size)
    print(f"net {args.net} | provider {engine.provider} | ORT threads {args.threads} | batch {args.batch_size} | "
          f"{args.nodes} playouts per root | {len(roots)} roots | {machine_load()}")

    def tree_of(rec):
        return SearchTree(engine, chess.Board(), [chess.Move.from_uci(u) for u in rec["moves"]], settings)

    tree_of(roots[0]).search(64)  # warm up
    engine.evaluate(hist[:256], boards[:256])
    t_search = t_engine = 0.0
    visits = evals = collisions = 0
    offset = 0
    ratios = []
    for rec in roots:
        tree = tree_of(rec)
        t0 = time.perf_counter()
        r = tree.search(args.nodes)
        ts = time.perf_counter() - t0
        n = r.evaluations
        if offset + n > len(boards):
            offset = 0
        t0 = time.perf_counter()
        engine.evaluate(hist[offset : offset + n], boards[offset : offset + n])
        te = time.perf_counter() - t0
        offset += n
        t_search += ts
        t_engine += te
        visits += r.visits
        evals += n
        collisions += r.collisions
        ratios.append((n / ts) / (n / te))
    search_rate, eval_rate, engine_rate = visits / t_search, evals / t_search, evals / t_engine
    print(f"(a) search:  {search_rate:,.0f} playouts/s, {eval_rate:,.0f} network evaluations/s "
          f"({evals:,} evaluations for {visits:,} playouts; {collisions:,} collisions)")
    print(f"(b) engine:  {engine_rate:,.0f} positions/s (Engine.evaluate, batch {args.batch_size})")
    print(f"(a)/(b):     {eval_rate / engine_rate:.2f} on evaluations, {search_rate / engine_rate:.2f} on playouts "
          f"(per root {min(ratios):.2f}–{max(ratios):.2f}); target ≥ 0.70")

    if args.rollout_roots:
        recs = roots_of_games(args.rollout_roots, every=7, skip=10)
        with tempfile.TemporaryDirectory() as tmp:
            src = Path(tmp) / "roots.jsonl"
            src.write_text("".join(json.dumps(r) + "\n" for r in recs))
            t0 = time.perf_counter()
            m = rollouts_dataset(args.net, src, Path(tmp) / "rollouts", RolloutSettings(nodes=args.nodes, depth=5, search=settings),
                                 threads=args.threads, device=args.device)
            dt = time.perf_counter() - t0
        c = m["counts"]
        print(f"(c) rollouts: {len(recs)} roots × {args.nodes} playouts, depth 5: {dt:,.1f} s; {c['records']:,} positions written "
              f"({c['records'] / dt:,.1f} positions/s, {c['optimal_lines']} optimal + {c['suboptimal_lines']} sub-optimal lines); "
              f"{c['evaluations']:,} network evaluations ({c['evaluations'] / dt:,.0f}/s, {c['extensions']} line extensions)")


if __name__ == "__main__":
    main()
