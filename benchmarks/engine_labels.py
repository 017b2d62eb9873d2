"""Engine-label throughput: `positions label-engine` against Stockfish's raw speed, measured in the same run.

Labels the first positions of the shared Lichess games (one Stockfish process, then ``--workers``
processes) at ``--nodes`` / ``--multipv`` and prints positions/s and the nodes/s Stockfish searched
while labelling. Baseline: Stockfish's own nodes/s on this machine, one thread, from a fixed-time
search (``go movetime``) of positions of the same games, so the ratio says how much of the engine's
time the labelling keeps (the rest: Python parsing the lines, restarts of iterations, hash clearing).

    python benchmarks/engine_labels.py [--positions 600] [--nodes 3000] [--multipv 5] [--workers 2]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import chess.engine
from _common import GAMES, machine_load, need

from conceptchess.concepts.stockfish import require_stockfish
from conceptchess.enginelabels import LabelSettings, label_engine_dataset
from conceptchess.games import Sampling, pgn_dataset
from conceptchess.positions import PositionSpec


def raw_nps(path: str, boards: list[chess.Board], seconds: float) -> float:
    eng = chess.engine.SimpleEngine.popen_uci(path)
    eng.configure({"Threads": 1, "Hash": 16})
    nodes = spent = 0.0
    try:
        for b in boards:
            t0 = time.perf_counter()
            info = eng.analyse(b, chess.engine.Limit(time=seconds / len(boards)))
            spent += time.perf_counter() - t0
            nodes += info.get("nodes", 0)
    finally:
        eng.quit()
    return nodes / spent


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--positions", type=int, default=600)
    ap.add_argument("--nodes", type=int, default=3000)
    ap.add_argument("--multipv", type=int, default=5)
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args()
    path = require_stockfish()
    with tempfile.TemporaryDirectory() as tmp:
        ds = Path(tmp) / "positions"
        pgn_dataset([need(GAMES)], ds, sampling=Sampling(max_positions=args.positions))
        rows = []
        for workers in sorted({1, args.workers}):
            out = Path(tmp) / f"labelled-{workers}"
            t0 = time.perf_counter()
            label_engine_dataset(ds, out, LabelSettings(nodes=args.nodes, multipv=args.multipv, workers=workers))
            wall = time.perf_counter() - t0
            labels = [json.loads(line)["engine"] for line in (out / "positions.jsonl").read_text().splitlines()]
            nodes = sum(lab["nodes"] for lab in labels if lab)
            rows.append((workers, args.positions / wall, nodes / wall / workers))
        boards = []
        for line in (ds / "positions.jsonl").read_text().splitlines()[:: max(1, args.positions // 20)]:
            b = PositionSpec.from_dict(json.loads(line)).board()
            if not b.is_game_over():
                boards.append(b)
        base = raw_nps(path, boards, 5.0)
    print(f"Stockfish {path} | nodes {args.nodes} | MultiPV {args.multipv} | {args.positions} positions | {machine_load()}")
    for workers, pos_s, nps in rows:
        print(f"label-engine, {workers} process(es): {pos_s:7.1f} positions/s, {nps:9,.0f} nodes/s per process")
    print(f"baseline: Stockfish raw search, 1 thread (go movetime): {base:9,.0f} nodes/s")
    for workers, _, nps in rows:
        print(f"ratio, {workers} process(es): labelling nodes/s per process / raw nodes/s = {nps / base:.2f}")


if __name__ == "__main__":
    main()
