"""Engine throughput on maia-1100: (a) encoding, (b) ONNX Runtime on pre-encoded planes, (c) end to end.

(c) = encode + evaluate + every block tap + softmax over the legal moves; the script prints (c)/(b).
(b) and (c) both let the engine batch internally at the given batch size; (c) pipelines the Python
work (encoding, legal moves) with ONNX Runtime in a worker thread, so with one ORT thread it uses a
second core for that work. (b) and (c) are timed back to back on the same chunk of positions, chunk
after chunk, so that both see the same host conditions (see ``measure``); the rates are totals over
the whole measuring time; beside them, encoding in the least disturbed round and the per-round
spread of (c)/(b). Before the table: legal-move generation (with lc0 policy indices) batched in
tasks as (c) does it, against python-chess one board at a time.
Targets: encoding ≥ 50,000 positions/s on one core; (c)/(b) ≥ 0.8. Baseline for scale: lc0
v0.32.1 `backendbench` on the same net and machine, one thread: ~1.7–2.1k/s at batch 1,
~1.9–2.4k at batch 32, ~1.4–1.6k at batch 256 (from ../shared/data/README.md).

    python benchmarks/engine_throughput.py [--threads 1] [--positions 4096] [--seconds 20] [--device auto]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from _common import MAIA1100, need, read_games

from conceptchess.engine import Engine
from conceptchess.lc0.encoder import Histories, encode, game_histories
from conceptchess.lc0.legal import legal_moves_batch
from conceptchess.lc0.policy_map import legal_move_indices


def measure(stream, pair: list, chunks: int, seconds: float) -> list[list[float]]:
    """Seconds per round for ``stream`` and each fn of ``pair`` (a round = every chunk once).

    The host is shared and its speed drifts by tens of percent within seconds. The two fns of
    ``pair`` ((b) and (c)) are timed back to back on every chunk, in alternating order, so that
    their ratio sees the same conditions and measures the code, not the drift. ``stream`` ((a),
    encoding) runs over every chunk in one go at the start of each round, as a stream of batches
    would be encoded. Each fn takes a chunk index.
    """
    clock = time.perf_counter
    for f in (stream, *pair):  # warm up
        f(0)
    rounds: list[list[float]] = []
    t_end = clock() + seconds
    while clock() < t_end or not rounds:
        t0 = clock()
        for c in range(chunks):
            stream(c)
        times = [clock() - t0, 0.0, 0.0]
        for c in range(chunks):
            for i in ((0, 1) if c % 2 == 0 else (1, 0)):
                t0 = clock()
                pair[i](c)
                times[1 + i] += clock() - t0
        rounds.append(times)
    return rounds


def legal_rates(boards: list, task: int = Engine.TASK_POSITIONS, seconds: float = 5.0) -> None:
    """Legal moves with policy indices, as (c) needs them: batched in tasks vs python-chess per board,
    timed back to back on each task's positions (see ``measure``)."""
    tasks = min(len(boards), 1024) // task

    def batched(c):
        legal_moves_batch(boards[c * task : (c + 1) * task])

    def per_board(c):
        for b in boards[c * task : (c + 1) * task]:
            legal_move_indices(b)

    rounds = measure(lambda c: None, [batched, per_board], tasks, seconds)
    rate = [len(rounds) * tasks * task / sum(r[i] for r in rounds) for i in (1, 2)]
    print(f"legal moves + policy indices: batched in tasks of {task} {rate[0]:,.0f} positions/s; "
          f"python-chess per board (baseline) {rate[1]:,.0f} positions/s; {rate[0] / rate[1]:.1f}×")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--positions", type=int, default=4096)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--net", type=Path, default=MAIA1100)
    ap.add_argument("--seconds", type=float, default=20.0, help="measuring time per batch size (at least one round)")
    args = ap.parse_args()
    need(args.net, f"the network {args.net.name}")

    parts, boards = [], []
    t0 = time.perf_counter()
    for game in read_games():
        moves = list(game.mainline_moves())
        h, bs = game_histories(game.board(), moves, keep_boards=True)
        parts.append(h)
        boards += bs
        if len(boards) >= args.positions:
            break
    replay_s = time.perf_counter() - t0
    hist = Histories.concat(parts)[: args.positions]
    boards = boards[: args.positions]
    n = len(boards)
    engine = Engine(args.net, device=args.device, threads=args.threads)
    print(f"net {args.net} | provider {engine.provider} | ORT threads {args.threads} | {n} positions from real games")
    print(f"game replay → bitboard histories (python-chess, once per game): {n / replay_s:,.0f} positions/s")
    legal_rates(boards)
    print(f"{'batch':>6} {'(a) encode':>12} {'(b) ORT':>10} {'(c) end-to-end':>15} {'(c)/(b)':>8}  {'(a) best':>10}  (c)/(b) per round")
    for bs in (1, 32, 256):
        engine.batch_size = bs
        size = min(n, 4 * max(bs, Engine.TASK_POSITIONS))  # positions per chunk: several pipelined tasks of (c)
        used = min(n, 512) if bs == 1 else n  # batch 1 is slow: fewer positions, more rounds
        starts = list(range(0, used - size + 1, size))
        planes = encode(hist[: starts[-1] + size])

        def enc(c, bs=bs, size=size):
            s0 = starts[c]
            for s in range(s0, s0 + size, bs):
                encode(hist[s : s + bs])

        def ort_only(c, size=size):
            engine.run_planes(planes[starts[c] : starts[c] + size])

        def end_to_end(c, size=size):
            s0 = starts[c]
            engine.evaluate(hist[s0 : s0 + size], boards[s0 : s0 + size], engine.taps)

        rounds = measure(enc, [ort_only, end_to_end], len(starts), args.seconds)
        per_round = len(starts) * size
        enc_r, ort_r, e2e_r = (len(rounds) * per_round / sum(r[i] for r in rounds) for i in range(3))
        enc_best = per_round / min(r[0] for r in rounds)
        ratios = [r[1] / r[2] for r in rounds]
        print(f"{bs:>6} {enc_r:>12,.0f} {ort_r:>10,.0f} {e2e_r:>15,.0f} {e2e_r / ort_r:>8.2f}"
              f"  {enc_best:>10,.0f}  {min(ratios):.2f}–{max(ratios):.2f} over {len(rounds)} rounds")

if __name__ == "__main__":
    main()
