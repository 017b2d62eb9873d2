"""Real-world sanity: how often each Maia net's top move is the move the human played.

Positions: every ply of the shared Lichess games after the first 10 plies of each game. Printed per
net: move-matching accuracy on all positions, and on positions whose mover is rated inside the net's
own band (e.g. 1100–1199 for maia-1100, where the Maia paper reports 50–53%), with the number of
positions in that band and a 95% binomial interval. Controls beside it: a uniformly random legal
move, and maia-1100's top move at step "no history" (history planes zeroed) to show what history
is worth.

    python benchmarks/move_matching.py [--max-positions N] [--threads 2]
"""

from __future__ import annotations

import argparse
import math
import re

import numpy as np
from _common import DATA, need, read_games

from conceptchess.engine import Engine
from conceptchess.lc0.encoder import Histories, game_histories

SKIP_PLIES = 10


def band_of(name: str) -> tuple[int, int]:
    lo = int(re.search(r"(\d{4})", name).group(1))
    return lo, lo + 99


def wilson(k: int, n: int) -> tuple[float, float]:
    if n == 0:
        return (float("nan"), float("nan"))
    p, z = k / n, 1.96
    c = (p + z * z / (2 * n)) / (1 + z * z / n)
    h = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return c - h, c + h


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--max-positions", type=int, default=None)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    nets = sorted((need(DATA / "weights")).glob("maia-*.pb.gz"))
    parts, boards, played, mover_elo = [], [], [], []
    for game in read_games():
        moves = list(game.mainline_moves())
        if len(moves) <= SKIP_PLIES:
            continue
        plies = list(range(SKIP_PLIES, len(moves)))
        h, bs = game_histories(game.board(), moves, plies=plies, keep_boards=True)
        parts.append(h)
        boards += bs
        played += [moves[t].uci() for t in plies]
        we, be = (int(game.headers.get(k, "0") or 0) for k in ("WhiteElo", "BlackElo"))
        mover_elo += [we if t % 2 == 0 else be for t in plies]
        if args.max_positions and len(boards) >= args.max_positions:
            break
    hist = Histories.concat(parts)
    n = args.max_positions or len(boards)
    hist, boards, played, mover_elo = hist[:n], boards[:n], played[:n], np.array(mover_elo[:n])
    print(f"{len(boards)} positions (plies > {SKIP_PLIES}) from the shared Lichess games")
    rng = np.random.default_rng(0)
    rand = np.mean([1 / b.legal_moves.count() for b in boards])
    print(f"control: uniformly random legal move → expected accuracy {rand:.3f}")
    print(f"{'net':<16} {'all':>7} {'own band':>14} {'n in band':>10} {'95% CI (band)':>16}")
    for path in nets:
        eng = Engine(path, threads=args.threads)
        evs = eng.evaluate(hist, boards)
        hit = np.array([ev.best_move().uci() == m for ev, m in zip(evs, played)])
        lo, hi = band_of(path.name)
        in_band = (mover_elo >= lo) & (mover_elo <= hi)
        k, nb = int(hit[in_band].sum()), int(in_band.sum())
        ci = wilson(k, nb)
        print(f"{path.name:<16} {hit.mean():>7.3f} {k / max(nb, 1):>14.3f} {nb:>10} {f'{ci[0]:.3f}–{ci[1]:.3f}':>16}", flush=True)
    # History ablation on the first net: zero the 7 earlier boards.
    eng = Engine(nets[0], threads=args.threads)
    h0 = Histories(hist.boards.copy(), hist.reps.copy(), hist.black, hist.castling, hist.rule50)
    h0.boards[:, 1:] = 0
    h0.reps[:, 1:] = 0
    hit0 = np.array([ev.best_move().uci() == m for ev, m in zip(eng.evaluate(h0, boards), played)])
    print(f"control: {nets[0].name} with history planes zeroed → {hit0.mean():.3f} on all positions")
    del rng


if __name__ == "__main__":
    main()
