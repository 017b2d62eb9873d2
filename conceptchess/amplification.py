"""Amplification, the causal check: push a tap's activations along a concept and watch the move and the value.

For a :class:`~conceptchess.directions.ConceptDirection` v at its tap, each position's activations z at
that tap become

    z̃ = z + α · (‖z‖ / ‖v‖) · v          (norms per position, over the whole [C, 8, 8] tap)

and the network runs on from the tap (:meth:`conceptchess.lc0.model.Lc0Net.forward_from`). So α is the
size of the push relative to the activations themselves (α = 1 adds a vector as long as z). How v
becomes a [C, 8, 8] step:

- a direction over full activations (C·64 features) is reshaped to [C, 8, 8];
- a direction over mean-pooled activations (C features) is spread evenly over the squares: every square
  gets v, so the mean-pooled activations move exactly along v (and ‖v‖ above is that of the spread step,
  8·‖v‖);
- a standardised direction (``score = ((x − mean) / scale) · v``) steps along ``scale ⊙ v``: the raw step
  that moves its standardised activations along v (as :mod:`conceptchess.novelty` reads directions).

Two sets of positions: the concept's own **roots**, where the tracked move is the optimal rollout's
first move (a record's ``move``; from a rollouts dataset only the roots are kept: its optimal-line
records at ply 0), and **unrelated** positions, where it is the network's own top move. For each α the
change in that move's probability (softmax over the legal moves) and in the value (W − L, or the tanh
value, for the side to move) is measured per position, against a random direction of the concept's
norm and sparsity (:meth:`ConceptDirection.random_control`, seeded) pushed alike; each mean comes with
a percentile bootstrap interval over positions (the same draws for every α and both directions).

Only a ``.pb.gz`` network has the torch model this runs; an ONNX-only network is refused.

>>> a = amplify("maia-1100.pb.gz", direction, roots="rollouts/", unrelated="positions/", alphas=(0, 0.25, 0.5, 1))  # doctest: +SKIP
>>> [(e.alpha, round(e.move.mean, 3), round(e.move_control.mean, 3)) for e in a.roots.effects]               # doctest: +SKIP
[(0.0, 0.0, 0.0), (0.25, 0.041, 0.002), (0.5, 0.083, -0.001), (1.0, 0.12, 0.004)]
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass

import chess
import numpy as np

from conceptchess.bootstrap import draw_clusters
from conceptchess.datasets import iter_dataset
from conceptchess.directions import ConceptDirection
from conceptchess.engine import softmax_segments
from conceptchess.errors import ArgumentError, ConceptChessError
from conceptchess.lc0.encoder import encode
from conceptchess.lc0.legal import legal_moves_batch
from conceptchess.networks import Network, open_network
from conceptchess.positions import PositionSpec, histories_of
from conceptchess.progress import Progress
from conceptchess.taps import INPUT, check, network_taps

DEFAULT_ALPHAS = (0.0, 0.1, 0.25, 0.5, 1.0)
ROOTS, UNRELATED = "roots", "unrelated"


@dataclass(frozen=True)
class Interval:
    """A mean over positions and its bootstrap interval."""

    mean: float
    low: float
    high: float


@dataclass(frozen=True)
class AlphaEffect:
    """What one α did to one set of positions: mean changes, concept against control."""

    alpha: float
    move: Interval  # change in the tracked move's probability, pushed along the concept
    move_control: Interval  # the same along the random control
    value: Interval  # change in the value (W − L or tanh, side to move), along the concept
    value_control: Interval


@dataclass(frozen=True, eq=False)
class PositionsEffect:
    """Amplification on one set of positions (the concept's roots, or unrelated positions)."""

    kind: str  # ROOTS or UNRELATED
    ids: tuple  # position ids, in order (positions with no legal move are left out)
    moves: tuple[str, ...]  # UCI of the tracked move at each position
    probability: np.ndarray  # (positions,) float64: the tracked move's probability unamplified
    value: np.ndarray  # (positions,) float64: the value unamplified
    move_change: np.ndarray  # (2, alphas, positions) float64: [concept, control] change in the tracked move's probability
    value_change: np.ndarray  # (2, alphas, positions) float64: [concept, control] change in the value
    effects: tuple[AlphaEffect, ...]  # one per α, in the order of Amplification.alphas
    without_moves: int = 0  # positions left out: the game is over there


@dataclass(frozen=True, eq=False)
class Amplification:
    """The result of :func:`amplify`."""

    direction: str  # the concept's name
    direction_sha256: str
    control: str  # the random control's name
    control_sha256: str
    tap: str
    network_sha256: str
    spread: str  # "full" (a [C, 8, 8] direction) or "squares" (a pooled one, the same at every square)
    alphas: tuple[float, ...]
    roots: PositionsEffect | None
    unrelated: PositionsEffect | None
    resamples: int  # bootstrap resamples of the positions
    level: float  # the intervals' coverage
    seed: int  # of the random control and of the bootstrap


def _step(direction: ConceptDirection, channels: int, where: str) -> tuple[np.ndarray, str]:
    """The direction as a [C, 8, 8] raw-space step (float32) and how it was spread."""
    v = direction.vector.astype(np.float64)
    if direction.scale is not None:
        v = v * direction.scale.astype(np.float64)
    full, pooled = channels * 64, channels
    wanted = {"full": full, "mean": pooled}.get(direction.pooling or "")
    if (wanted is not None and v.size != wanted) or v.size not in (full, pooled):
        expect = f"{wanted}" if wanted is not None else f"{pooled} (mean-pooled) or {full} (full)"
        raise ConceptChessError(f"direction {direction.name!r} has {v.size} values; tap {direction.tap} of {where} needs {expect}")
    if v.size == full:
        return v.reshape(channels, 8, 8).astype(np.float32), "full"
    return np.repeat(v[:, None], 64, axis=1).reshape(channels, 8, 8).astype(np.float32), "squares"


def _specs(positions, kind: str) -> tuple[list[PositionSpec], str]:
    if isinstance(positions, (str, os.PathLike)):
        specs, where = list(iter_dataset(positions)), f"{positions}: "
    else:
        specs, where = list(positions), f"{kind}: "
    if kind == ROOTS and any("line" in s.meta and "ply" in s.meta for s in specs):  # a rollouts dataset: its roots only
        specs = [s for s in specs if s.meta.get("line") == "optimal" and s.meta.get("ply") == 0]
    if not specs:
        raise ConceptChessError(f"{where}no positions to amplify on")
    return specs, where


class _Runner:
    """The torch model at the tap, and the two steps (concept, control) pushed at every α."""

    def __init__(self, model, tap: str, steps: list[np.ndarray], alphas: tuple[float, ...]):
        import torch  # lazy: only the torch model's users (amplification, training) need it

        self.torch, self.model, self.tap, self.alphas = torch, model, tap, alphas
        self.steps = [torch.from_numpy(s) for s in steps]
        self.norms = [float(np.linalg.norm(s)) for s in steps]

    @staticmethod
    def _outputs(out) -> tuple[np.ndarray, np.ndarray]:
        """Policy logits (positions, 1858) and values (positions,), float64."""
        logits = out["policy"].double().numpy()
        if "wdl" in out:
            wdl = out["wdl"].double().numpy()
            return logits, wdl[:, 0] - wdl[:, 2]
        return logits, out["value"].double().numpy().reshape(-1)

    def run(self, planes: np.ndarray) -> tuple[tuple[np.ndarray, np.ndarray], list[list[tuple[np.ndarray, np.ndarray]]]]:
        """The outputs of a batch unamplified, and ``[direction][α]`` amplified (direction 0: the concept, 1: the control)."""
        torch = self.torch
        with torch.inference_mode():
            z = self.model.forward_to(self.tap, torch.from_numpy(planes))
            base = self._outputs(self.model.forward_from(self.tap, z))
            size = torch.linalg.vector_norm(z.flatten(1), dim=1)[:, None, None, None]  # ‖z‖ per position
            amplified = [[self._outputs(self.model.forward_from(self.tap, z + (alpha / norm) * size * step)) for alpha in self.alphas]
                         for step, norm in zip(self.steps, self.norms)]
        return base, amplified


def _interval(x: np.ndarray, draws: np.ndarray, level: float) -> Interval:
    means = x[draws].mean(axis=1)
    lo, hi = np.quantile(means, [(1 - level) / 2, (1 + level) / 2])
    return Interval(float(x.mean()), float(lo), float(hi))


class _Legal:
    """The legal moves of a batch of positions, one run of lc0 policy indices after another."""

    def __init__(self, legal: list):
        self.counts = np.fromiter((len(idx) for _, idx in legal), np.int64, len(legal))
        self.starts = np.cumsum(self.counts) - self.counts
        self.pos = np.repeat(np.arange(len(legal)), self.counts)
        self.flat = np.concatenate([idx for _, idx in legal])

    def probabilities(self, logits: np.ndarray) -> np.ndarray:
        """Softmax over each position's legal moves of policy logits (positions, 1858): one run of float64 a position."""
        return softmax_segments(logits[self.pos, self.flat], self.pos, self.starts, self.counts).astype(np.float64)


def _tracked(specs: list[PositionSpec], legal: list, kind: str, where: str) -> list[int | None]:
    """Each position's tracked move as an index into its legal moves: a root's ``move``; None for an unrelated
    position (its top move, known once the network has run)."""
    out: list[int | None] = []
    for spec, (moves, _) in zip(specs, legal):
        if kind != ROOTS:
            out.append(None)
            continue
        uci = spec.meta.get("move")
        if not isinstance(uci, str):
            raise ConceptChessError(f"{where}id={spec.id}: a root needs its move to track (the optimal rollout's first move)")
        try:
            out.append(moves.index(chess.Move.from_uci(uci)))
        except ValueError:
            raise ConceptChessError(f"{where}id={spec.id}: move {uci!r} is not legal there") from None
    return out


def _effect(runner: _Runner, positions, kind: str, batch_size: int, resamples: int, level: float, seed: int) -> PositionsEffect:
    specs, where = _specs(positions, kind)
    histories, boards = histories_of(specs, where=where)
    legal = legal_moves_batch(boards)
    keep = [i for i, (moves, _) in enumerate(legal) if moves]  # a finished game has no move to track
    if not keep:
        raise ConceptChessError(f"{where}every position is a finished game: no move to track")
    specs, legal, histories = [specs[i] for i in keep], [legal[i] for i in keep], histories[np.asarray(keep)]
    tracked = _tracked(specs, legal, kind, where)
    n, alphas = len(specs), runner.alphas
    prob, value = np.empty(n), np.empty(n)
    move_change, value_change = np.empty((2, len(alphas), n)), np.empty((2, len(alphas), n))
    for s in range(0, n, batch_size):
        part = _Legal(legal[s : s + batch_size])
        starts, counts = part.starts, part.counts
        (base_l, base_v), amplified = runner.run(encode(histories[s : s + batch_size]))
        p0 = part.probabilities(base_l)
        for j, (a, c) in enumerate(zip(starts.tolist(), counts.tolist())):
            if tracked[s + j] is None:
                tracked[s + j] = int(np.argmax(p0[a : a + c]))
        at = starts + np.asarray(tracked[s : s + batch_size])
        end = s + len(counts)
        prob[s:end], value[s:end] = p0[at], base_v
        for d, per_alpha in enumerate(amplified):
            for k, (logits, v) in enumerate(per_alpha):
                move_change[d, k, s:end] = part.probabilities(logits)[at] - p0[at]
                value_change[d, k, s:end] = v - base_v
    draws = draw_clusters(np.random.default_rng(seed), n, resamples)  # positions resampled; the same draws throughout
    effects = tuple(AlphaEffect(alpha, _interval(move_change[0, k], draws, level), _interval(move_change[1, k], draws, level),
                                _interval(value_change[0, k], draws, level), _interval(value_change[1, k], draws, level))
                    for k, alpha in enumerate(alphas))
    moves = tuple(m[j].uci() for (m, _), j in zip(legal, tracked))
    return PositionsEffect(kind, tuple(spec.id for spec in specs), moves, prob, value, move_change, value_change, effects,
                           len(boards) - n)


def amplify(network: str | os.PathLike | Network, direction: ConceptDirection,
            roots: Sequence[PositionSpec] | str | os.PathLike | None = None,
            unrelated: Sequence[PositionSpec] | str | os.PathLike | None = None, *,
            alphas: Sequence[float] = DEFAULT_ALPHAS, seed: int = 0, resamples: int = 1000, level: float = 0.95,
            batch_size: int = 64, progress: Progress | None = None) -> Amplification:
    """Amplify ``direction`` in ``network`` over ``alphas`` on the concept's ``roots`` and on ``unrelated`` positions
    (position specs or a positions dataset; at least one of the two), against its random control of seed ``seed``.

    Roots track their ``move`` (the optimal rollout's first move), unrelated positions the network's top move.
    Intervals: ``level`` percentile bootstrap over positions, ``resamples`` draws seeded by ``seed``. The network,
    tap and direction are checked before any position is read; torch runs ``batch_size`` positions at a time.
    ``progress(done, total)`` counts the sets of positions finished.
    """
    alphas = tuple(float(a) for a in alphas)
    if not alphas or not all(np.isfinite(alphas)):
        raise ArgumentError("{alphas} must be finite numbers (at least one)", alphas="alphas")
    if roots is None and unrelated is None:
        raise ArgumentError("give {roots} or {unrelated} (positions to amplify on)", roots="roots", unrelated="unrelated")
    if resamples < 1 or not 0 < level < 1:
        raise ArgumentError("{resamples} must be at least 1 and {level} in (0, 1)", resamples="resamples", level="level")
    if batch_size < 1:
        raise ArgumentError("{batch_size} must be at least 1", batch_size="batch_size")
    net = network if isinstance(network, Network) else open_network(network)
    if net.spec is None:
        raise ConceptChessError(f"{net.path}: amplification runs the torch model, and this network is ONNX only ({net.kind}); "
                                "give its .pb.gz weights")
    where = f"network {net.path}"
    check([direction.tap], network_taps(net.blocks), where)
    if direction.network_sha256 and direction.network_sha256 != net.sha256:
        raise ConceptChessError(f"direction {direction.name!r} reads network {direction.network_sha256[:12]}…, not {where} "
                                f"({net.sha256[:12]}…)")
    channels = 112 if direction.tap == INPUT else net.spec.filters
    control = direction.random_control(seed)
    (step, spread), (control_step, _) = _step(direction, channels, where), _step(control, channels, where)
    runner = _Runner(net.torch_model(), direction.tap, [step, control_step], alphas)
    sets = [(kind, p) for kind, p in ((ROOTS, roots), (UNRELATED, unrelated)) if p is not None]
    done: dict[str, PositionsEffect] = {}
    if progress is not None:
        progress(0, len(sets))
    for k, (kind, positions) in enumerate(sets):
        done[kind] = _effect(runner, positions, kind, batch_size, resamples, level, seed)
        if progress is not None:
            progress(k + 1, len(sets))
    return Amplification(direction.name, direction.sha256, control.name, control.sha256, direction.tap, net.sha256, spread, alphas,
                         done.get(ROOTS), done.get(UNRELATED), resamples, level, seed)
