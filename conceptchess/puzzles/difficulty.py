"""A difficulty estimate made before any human solves a puzzle.

Three signals, each scaled to [0, 1] (higher = harder):

- ``weak``: how unlikely the solution's first move is for a weak network — ``1 - p`` where ``p`` is
  its policy probability under the weakest trained checkpoint of a series (by default
  :func:`conceptchess.checkpoints.weakest_checkpoint`, the first checkpoint after step 0 in the
  network's folder: step 0 is the random initialisation, a control, not a weak player); plus its rank
  among the legal moves, ``log(rank) / log(legal moves)``.
- ``depth``: the Stockfish depth from which the move stays Stockfish's best (from the
  verification search), ``min(depth, 20) / 20``.
- ``length``: solver moves beyond the first, ``min(n - 1, 3) / 3``.

``difficulty = 0.4·(1 - p) + 0.1·rank + 0.35·depth + 0.15·length`` (weights renormalised over the
signals present). A prior, to be refitted against Lichess ratings or measured solve rates.

Mining drops a puzzle that teaches nothing (:class:`~conceptchess.puzzles.mine.MineFilters`): the weak
network already plays its first move with probability ≥ :data:`TRIVIAL_WEAK_PROB` (0.5), or the estimate
is under :data:`MIN_DIFFICULTY` (0.1) — e.g. a one-move puzzle that Stockfish finds from depth 2
with no weak network to ask ((0.35·0.1) / 0.5 = 0.07), or one the weak network plays at p = 0.9 and
Stockfish from depth 1 (0.04 + 0 + 0.0175 = 0.0575).

>>> round(estimate(weak_prob=0.5, weak_rank=2, legal=30, depth_found=10, solver_moves=2)[0], 3)
0.445
"""

from __future__ import annotations

import math

WEIGHTS = {"weak_prob": 0.4, "weak_rank": 0.1, "depth": 0.35, "length": 0.15}
MAX_DEPTH = 20
TRIVIAL_WEAK_PROB = 0.5  # the weak network's probability of the first move from which a puzzle is trivial
MIN_DIFFICULTY = 0.1  # estimates below this are trivial puzzles


def estimate(*, weak_prob: float | None = None, weak_rank: int | None = None, legal: int | None = None,
             depth_found: int | None = None, solver_moves: int = 1) -> tuple[float, dict]:
    """``(difficulty in [0, 1], the signals and inputs)``."""
    parts: dict[str, float] = {}
    if weak_prob is not None:
        parts["weak_prob"] = 1.0 - float(weak_prob)
    if weak_rank is not None and legal and legal > 1:
        parts["weak_rank"] = math.log(max(1, weak_rank)) / math.log(legal)
    parts["depth"] = min(depth_found if depth_found is not None else MAX_DEPTH, MAX_DEPTH) / MAX_DEPTH
    parts["length"] = min(max(solver_moves - 1, 0), 3) / 3
    total = sum(WEIGHTS[k] for k in parts)
    value = sum(WEIGHTS[k] * v for k, v in parts.items()) / total
    detail = {"signals": {k: round(v, 4) for k, v in parts.items()}, "weak_prob": weak_prob, "weak_rank": weak_rank,
              "legal_moves": legal, "depth_found": depth_found, "solver_moves": solver_moves, "weights": WEIGHTS}
    return value, detail


def policy_rank(moves: list, policy, move) -> tuple[float, int, int]:
    """``(probability, rank from 1, legal moves)`` of ``move`` in an evaluation's policy."""
    idx = moves.index(move)
    p = float(policy[idx])
    rank = 1 + sum(1 for q in policy if q > p)
    return p, rank, len(moves)
