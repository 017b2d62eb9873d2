"""Teachability (Schut et al.): teach a concept's prototypes to a student network and measure whether it learned.

A concept is **teachable** when a student fine-tuned to imitate the teacher on the concept's prototypes
imitates it better on *held-out* prototypes than the same student fine-tuned on as many ordinary positions
of the teacher's own games.

- **Positions** (:func:`prototype_positions`): of each prototype root of a rollouts dataset
  (:func:`~conceptchess.teaching.dynamic_prototypes`), the root position and the optimal line's positions
  where the root's side is to move (``line == "optimal"`` and ``root_to_move``: plies 0, 2, 4 …). There the
  teacher plays the plan the concept orders first; the opponent's replies and the sub-optimal lines are not
  the concept's moves. Every position is grouped by its root.
- **Teacher's policy** (:func:`teaching_set`): the teacher's raw policy (no search) over the legal moves,
  from :meth:`Engine.evaluate <conceptchess.engine.Engine.evaluate>` (``.pb.gz`` or ``.onnx``), dense over
  lc0's 1858 policy indices, legal masks from :func:`~conceptchess.training.legal_masks`. Positions without
  a legal move (mate, stalemate) teach nothing and are left out.
- **Teaching** (:func:`teach`), for each seed (at least 3; default 0, 1, 2): the prototype roots are split
  80/20 by root (:func:`split_groups`: no root on both sides); the student (a ``.pb.gz``,
  :func:`~conceptchess.training.load_trainable`) minimises KL(teacher ‖ student) over the legal moves on the
  training roots' positions (:func:`~conceptchess.training.finetune_student`: Adam, lr 1e-4, 5 epochs,
  batch norm frozen; the seed orders the batches), and is measured by top-1 agreement with the teacher on
  the held-out roots' positions.
- **Control (a)**, always run: the same student fine-tuned, with the same seed and settings, on as many
  positions drawn at random from the training games of a random set (positions of the teacher's own
  games, split 80/20 by game with the same seed). Both students are measured on the concept's held-out
  prototypes and on the random set's held-out games, beside the untrained student: the 2 × 2 table
  (trained on concept / random × evaluated on concept / random) plus the baseline, each cell a
  :class:`Cell` (mean, sample standard deviation, min and max over seeds).
- **Control (b)**, a random concept vector, is the caller's: :func:`random_direction` makes it, and it goes
  through the same prototypes and teaching.
- **Decision**: teachable when the difference (concept-trained − random-trained agreement on the concept's
  held-out prototypes, the mean over seeds of each seed's agreement over held-out positions) is at least
  ``margin`` (0.05) *and* the lower end of a 95 % bootstrap interval is above zero. The bootstrap resamples
  held-out **roots**: each root held out by at least one seed gets one difference, the concept-trained
  minus the random-trained agreement averaged over that root's positions, then averaged over the seeds
  that held it out (the split differs per seed, so the per-seed per-root differences are pooled by root);
  each of ``resamples`` (2000) resamples draws as many roots as there are, with replacement
  (:func:`~conceptchess.bootstrap.draw_clusters`, ``np.random.default_rng(list(seeds))``), and takes the
  mean of their differences; the interval is the percentile interval (:func:`root_bootstrap`). Roots weigh equally there, so the centre of
  the interval (:attr:`TeachResult.root_difference`) can differ a little from :attr:`TeachResult.difference`,
  which weighs positions and is the figure the margin applies to.

>>> specs, groups = prototype_positions(rollout_specs, protos.roots)                  # doctest: +SKIP
>>> concept = teaching_set("teacher.pb.gz", specs, groups, name="c17")               # doctest: +SKIP
>>> random = teaching_set("teacher.pb.gz", selfplay_specs, selfplay_games)           # doctest: +SKIP
>>> res = teach("teacher.pb.gz", "student.pb.gz", concept, random)                   # doctest: +SKIP
>>> res.concept_on_concept.mean, res.random_on_concept.mean, res.interval, res.teachable   # doctest: +SKIP
(0.62, 0.31, (0.19, 0.42), True)
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import chess
import numpy as np

from conceptchess.bootstrap import draw_clusters
from conceptchess.directions import ConceptDirection
from conceptchess.engine import Engine
from conceptchess.errors import ArgumentError, ConceptChessError
from conceptchess.lc0.encoder import Histories
from conceptchess.networks import Network, open_network
from conceptchess.positions import PositionSpec, histories_of
from conceptchess.progress import Progress
from conceptchess.training import finetune_student, legal_masks, load_trainable, policy_distributions

MIN_SEEDS = 3  # Schut et al. report a spread over seeds; fewer than three gives none worth reading
TRAINED_ON = ("concept", "random")  # rows of the 2 × 2 table: what the student was fine-tuned on
EVALUATED_ON = ("concept", "random")  # columns: whose held-out positions it is measured on


@dataclass(frozen=True)
class TeachSettings:
    """How :func:`teach` fine-tunes and decides (defaults: Schut et al.'s, with a 0.05 margin)."""

    epochs: int = 5
    lr: float = 1e-4  # Adam
    batch_size: int = 32
    heldout: float = 0.2  # share of roots (concept) and games (random set) held out
    seeds: tuple[int, ...] = (0, 1, 2)  # each drives the split and the order of the batches
    margin: float = 0.05  # the least mean difference in held-out agreement that counts
    resamples: int = 2000  # bootstrap resamples of held-out roots
    confidence: float = 0.95  # of the bootstrap interval

    def check(self) -> None:
        """Refuse settings no concept could be taught or judged with, before anything runs."""
        if self.epochs < 1:
            raise ArgumentError("{epochs} must be at least 1", epochs="epochs")
        if not self.lr > 0:
            raise ArgumentError("{lr} must be > 0", lr="lr")
        if self.batch_size < 1:
            raise ArgumentError("{batch_size} must be at least 1", batch_size="batch_size")
        if not 0 < self.heldout < 1:
            raise ArgumentError("{heldout} must lie in (0, 1)", heldout="heldout")
        if len(set(self.seeds)) != len(self.seeds) or len(self.seeds) < MIN_SEEDS or min(self.seeds) < 0:
            raise ArgumentError(f"{{seeds}} must be at least {MIN_SEEDS} different seeds, none negative, got {list(self.seeds)}",
                                seeds="seeds")
        if not 0 <= self.margin < 1:
            raise ArgumentError("{margin} must lie in [0, 1)", margin="margin")
        if self.resamples < 100:
            raise ArgumentError("{resamples} must be at least 100", resamples="resamples")
        if not 0 < self.confidence < 1:
            raise ArgumentError("{confidence} must lie in (0, 1)", confidence="confidence")

    def as_dict(self) -> dict:
        return {**asdict(self), "seeds": list(self.seeds)}


def random_direction(direction: ConceptDirection, seed: int) -> ConceptDirection:
    """Control (b): a Gaussian vector (every entry drawn) of ``direction``'s norm, with its tap, pooling,
    standardisation and networks — the random concept vector pushed through the same prototypes and teaching.
    (:meth:`ConceptDirection.random_control` matches the sparsity instead.)

    >>> d = ConceptDirection("fork", "block3", np.array([0.0, 3.0, 0.0, -4.0]))
    >>> r = random_direction(d, 7)
    >>> r.name, r.kind, r.nonzeros, round(float(np.linalg.norm(r.vector)), 4)
    ('fork-random7', 'random-control', 4, 5.0)
    """
    v = np.random.default_rng(seed).standard_normal(direction.vector.size)
    v *= np.linalg.norm(direction.vector.astype(np.float64)) / np.linalg.norm(v)
    return replace(direction, name=f"{direction.name}-random{seed}", vector=v.astype(np.float32), kind="random-control",
                   seed=seed, provenance={"control_of": direction.name, "control_of_sha256": direction.sha256,
                                          "control": "gaussian, the concept's norm"})


# ------------------------------------------------------------------------------------------ positions

ROLLOUT_FIELDS = ("root", "line", "root_to_move")


def _root_key(root) -> str:
    return str(tuple(root) if isinstance(root, list) else root)


def prototype_positions(records: Sequence[PositionSpec], roots: Sequence) -> tuple[list[PositionSpec], list[str]]:
    """The teaching positions of prototype ``roots`` in a rollouts dataset's ``records`` (dataset order): each
    root's position and the optimal line's positions where the root's side is to move (see the module
    docstring), with their groups (the root, as a string). Roots compare as strings (ids read back from JSON)."""
    wanted = {_root_key(r) for r in roots}
    positions, groups, found = [], [], set()
    for k, spec in enumerate(records):
        m = spec.meta
        missing = [f for f in ROLLOUT_FIELDS if f not in m]
        if missing:
            raise ConceptChessError(f"not a rollouts dataset: position {k} ({spec.id}) has no {', '.join(missing)} "
                                    f"(the pairing fields of conceptchess.rollouts)")
        root = _root_key(m["root"])
        if root in wanted and m["line"] == "optimal" and m["root_to_move"]:
            positions.append(spec)
            groups.append(root)
            found.add(root)
    absent = [r for r in dict.fromkeys(_root_key(r) for r in roots) if r not in found]
    if absent:
        shown = ", ".join(absent[:5]) + (f" and {len(absent) - 5} more" if len(absent) > 5 else "")
        raise ConceptChessError(f"{len(absent)} prototype root(s) have no optimal-line position in the rollouts: {shown}")
    return positions, groups


@dataclass(frozen=True, eq=False)
class TeachingSet:
    """Positions with the teacher's raw policy, grouped (by root for prototypes, by game for random positions)."""

    name: str  # the concept's name, or what the positions are ("random")
    ids: tuple  # (n,) position ids
    groups: tuple[str, ...]  # (n,) the root or game of each position
    hist: Histories  # n positions
    boards: list[chess.Board] = field(repr=False)  # (n,) without move stacks
    legal: np.ndarray = field(repr=False)  # (n, 1858) bool: legal moves as lc0 policy indices
    policy: np.ndarray = field(repr=False)  # (n, 1858) float32: the teacher's softmax over the legal moves, 0 elsewhere
    teacher_sha256: str = ""  # the network that made ``policy``
    dropped: int = 0  # positions left out for having no legal move

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def n_groups(self) -> int:
        return len(set(self.groups))

    def teacher_moves(self) -> np.ndarray:
        """(n,) the policy index of the teacher's top move in each position."""
        return self.policy.argmax(1)


def teaching_set(teacher: str | os.PathLike | Network, positions: Sequence[PositionSpec], groups: Sequence[str], *,
                 name: str = "random", threads: int | None = None, device: str = "cpu") -> TeachingSet:
    """``positions`` with the teacher's raw policy over their legal moves (ONNX Runtime, ``threads`` and
    ``device`` as :class:`~conceptchess.engine.Engine`); ``groups[i]`` is position i's root or game."""
    positions = list(positions)
    if len(groups) != len(positions):
        raise ConceptChessError(f"{len(positions)} positions but {len(groups)} groups")
    if not positions:
        raise ConceptChessError(f"{name}: no positions to teach")
    hist, boards = histories_of(positions)
    legal = legal_masks(boards)
    keep = np.flatnonzero(legal.any(1))
    if not len(keep):
        raise ConceptChessError(f"{name}: no position has a legal move")
    hist, boards, legal = hist[keep], [boards[i] for i in keep.tolist()], legal[keep]
    net = teacher if isinstance(teacher, Network) else open_network(teacher)
    evs = Engine(net, device=device, threads=threads).evaluate(hist, boards)
    policy = np.zeros(legal.shape, np.float32)
    # Engine lists each position's legal moves in policy-index order, the order a boolean mask fills a row in
    policy[legal] = np.concatenate([ev.policy for ev in evs])
    return TeachingSet(name, tuple(positions[i].id for i in keep.tolist()), tuple(str(groups[i]) for i in keep.tolist()),
                       hist, boards, legal, policy, net.sha256, len(positions) - len(keep))


def split_groups(groups: Sequence[str], heldout: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Train / held-out position indices, every group (root or game) wholly on one side: ``heldout`` of the
    groups (rounded; at least one, and at least one left to train on) drawn by ``seed``."""
    keys = sorted(set(groups))
    if len(keys) < 2:
        raise ConceptChessError(f"{len(keys)} group(s) (roots or games): at least 2 are needed, one to train on and one held out")
    if not 0 < heldout < 1:
        raise ArgumentError("{heldout} must lie in (0, 1)", heldout="heldout")
    k = min(max(1, int(round(heldout * len(keys)))), len(keys) - 1)
    held = {keys[i] for i in np.random.default_rng(seed).permutation(len(keys))[:k].tolist()}
    is_held = np.array([g in held for g in groups], bool)
    return np.flatnonzero(~is_held), np.flatnonzero(is_held)


# ------------------------------------------------------------------------------------------ results

@dataclass(frozen=True)
class Cell:
    """One figure over seeds: the mean, the sample standard deviation, the min and max, and each seed's value."""

    mean: float
    std: float
    low: float
    high: float
    per_seed: tuple[float, ...]

    @classmethod
    def of(cls, values: Sequence[float]) -> Cell:
        v = np.asarray(values, np.float64)
        return cls(float(v.mean()), float(v.std(ddof=1)) if len(v) > 1 else 0.0, float(v.min()), float(v.max()),
                   tuple(float(x) for x in v))


@dataclass(frozen=True, eq=False)
class SeedRun:
    """One seed of :func:`teach`: its split, what was trained on, and the agreements it measured."""

    seed: int
    train_roots: tuple[str, ...]
    heldout_roots: tuple[str, ...]
    concept_train: np.ndarray = field(repr=False)  # rows of the concept set trained on
    concept_heldout: np.ndarray = field(repr=False)  # rows of the concept set measured on
    random_train: np.ndarray = field(repr=False)  # rows of the random set trained on: as many as concept_train
    random_heldout: np.ndarray = field(repr=False)  # rows of the random set's held-out games
    agreement: Mapping[tuple[str, str], float]  # (trained on, evaluated on) → top-1 agreement; trained on "none": the baseline
    root_differences: tuple[tuple[str, float], ...]  # held-out root → concept-trained − random-trained agreement on its positions

    def as_dict(self) -> dict:
        return {"seed": self.seed, "train_roots": list(self.train_roots), "heldout_roots": list(self.heldout_roots),
                "concept_train_positions": len(self.concept_train), "concept_heldout_positions": len(self.concept_heldout),
                "random_train_positions": len(self.random_train), "random_heldout_positions": len(self.random_heldout),
                "agreement": {f"{t} on {e}": a for (t, e), a in self.agreement.items()},
                "root_differences": dict(self.root_differences)}


@dataclass(frozen=True)
class TeachResult:
    """What :func:`teach` found for one concept: the 2 × 2 table and baseline over seeds, and the decision."""

    concept: str
    teacher: str  # file name
    teacher_sha256: str
    student: str  # file name
    student_sha256: str
    settings: TeachSettings
    concept_positions: int
    concept_roots: int
    random_positions: int
    random_games: int
    concept_on_concept: Cell  # trained on the prototypes, measured on the held-out prototypes
    concept_on_random: Cell  # trained on the prototypes, measured on the random set's held-out games
    random_on_concept: Cell  # trained on random positions, measured on the held-out prototypes
    random_on_random: Cell
    baseline_concept: Cell  # the untrained student on the held-out prototypes
    baseline_random: Cell
    difference: float  # mean over seeds of concept_on_concept − random_on_concept
    root_difference: float  # mean over held-out roots of their seed-averaged difference (the bootstrap's statistic)
    interval: tuple[float, float]  # bootstrap interval of root_difference over held-out roots
    teachable: bool
    seeds: tuple[SeedRun, ...]

    def cell(self, trained_on: str, evaluated_on: str) -> Cell:
        """A cell of the table: ``trained_on`` concept, random or none (the baseline); ``evaluated_on`` concept or random."""
        if trained_on not in (*TRAINED_ON, "none") or evaluated_on not in EVALUATED_ON:
            raise ConceptChessError(f"no cell trained on {trained_on!r}, evaluated on {evaluated_on!r}")
        return getattr(self, f"baseline_{evaluated_on}" if trained_on == "none" else f"{trained_on}_on_{evaluated_on}")

    def as_dict(self) -> dict:
        """JSON-able: the table, the decision, counts, settings and each seed (roots and counts, not row indices)."""
        return {"concept": self.concept, "teacher": self.teacher, "teacher_sha256": self.teacher_sha256,
                "student": self.student, "student_sha256": self.student_sha256, "settings": self.settings.as_dict(),
                "concept_positions": self.concept_positions, "concept_roots": self.concept_roots,
                "random_positions": self.random_positions, "random_games": self.random_games,
                "table": {f"{t} on {e}": asdict(self.cell(t, e)) for t in (*TRAINED_ON, "none") for e in EVALUATED_ON},
                "difference": self.difference, "root_difference": self.root_difference, "interval": list(self.interval),
                "teachable": self.teachable, "seeds": [s.as_dict() for s in self.seeds]}


# ------------------------------------------------------------------------------------------ teaching

def _input_format(net: Network) -> str | None:
    return net.spec.input_format if net.spec is not None else None  # an ONNX file does not record it


def _agreement(net, data: TeachingSet, rows: np.ndarray) -> np.ndarray:
    """(len(rows),) bool: whether ``net``'s top move is the teacher's, per position."""
    p = policy_distributions(net, data.hist[rows], data.legal[rows])
    return p.argmax(1) == data.teacher_moves()[rows]


def root_bootstrap(per_seed: Sequence[Mapping[str, float]], resamples: int, confidence: float,
                   rng: np.random.Generator) -> tuple[float, tuple[float, float]]:
    """The mean over roots of each root's difference averaged over the seeds that held it out (``per_seed``:
    one root → difference mapping per seed), and its percentile interval over ``resamples`` resamples of roots."""
    pooled: dict[str, list[float]] = {}
    for diffs in per_seed:
        for root, d in diffs.items():
            pooled.setdefault(root, []).append(d)
    d = np.array([np.mean(v) for v in pooled.values()])
    stats = d[draw_clusters(rng, len(d), resamples)].mean(1)
    tail = (1 - confidence) / 2
    low, high = np.quantile(stats, [tail, 1 - tail])
    return float(d.mean()), (float(low), float(high))


def teach(teacher: str | os.PathLike | Network, student: str | os.PathLike | Network, concept_set: TeachingSet,
          random_set: TeachingSet, settings: TeachSettings = TeachSettings(), progress: Progress | None = None) -> TeachResult:
    """Teach ``concept_set`` (prototype positions grouped by root) to ``student``, beside control (a) on
    ``random_set`` (the teacher's own games, grouped by game), for every seed; see the module docstring.

    Per seed: both sets are split by :func:`split_groups` with the seed; the random training positions are
    drawn from the random set's training games by ``np.random.default_rng([seed, 1])``; the seed orders the
    fine-tuning batches. Both sets must hold ``teacher``'s policy. An ONNX teacher does not record its input
    format: it is taken to read the 112 classical planes the engine feeds it. Every refusal comes before any
    training; torch's thread count is the caller's. ``progress(done, total)`` counts fine-tunings (two per seed)."""
    settings.check()
    tnet = teacher if isinstance(teacher, Network) else open_network(teacher)
    snet = student if isinstance(student, Network) else open_network(student)
    if snet.spec is None:
        raise ConceptChessError(f"{snet.path}: the student must be a .pb.gz network (only those are fine-tuned), not {snet.kind}")
    t_fmt, s_fmt = _input_format(tnet), _input_format(snet)
    if t_fmt is not None and t_fmt != s_fmt:
        raise ConceptChessError(f"{snet.path}: input format {s_fmt} differs from the teacher's ({t_fmt})")
    for data in (concept_set, random_set):
        if data.teacher_sha256 != tnet.sha256:
            raise ConceptChessError(f"the {data.name} teaching set holds the policy of network {data.teacher_sha256[:12]}, "
                                    f"not of the teacher {tnet.path.name} ({tnet.sha256[:12]})")
    if concept_set.n_groups < 2:
        raise ConceptChessError(f"concept {concept_set.name}: {concept_set.n_groups} prototype root(s); teaching needs at least 2 "
                                f"(one to train on, one held out)")
    if random_set.n_groups < 2:
        raise ConceptChessError(f"the random set has {random_set.n_groups} game(s); control (a) needs at least 2 (one held out)")

    plans = []
    for seed in settings.seeds:
        c_train, c_held = split_groups(concept_set.groups, settings.heldout, seed)
        r_train, r_held = split_groups(random_set.groups, settings.heldout, seed)
        if len(r_train) < len(c_train):
            raise ConceptChessError(f"the random set's training games hold {len(r_train)} positions (seed {seed}), fewer than "
                                    f"the {len(c_train)} training positions of concept {concept_set.name}; give more random positions")
        pick = np.sort(np.random.default_rng([seed, 1]).choice(r_train, len(c_train), replace=False))
        plans.append((seed, c_train, c_held, pick, r_held))

    base = load_trainable(snet.path)
    runs, done = [], 0
    for seed, c_train, c_held, r_train, r_held in plans:
        agreement: dict[tuple[str, str], float] = {}
        per_position = {}
        for trained_on, data, rows in (("none", None, None), ("concept", concept_set, c_train), ("random", random_set, r_train)):
            net = base if data is None else finetune_student(
                base, data.hist[rows], data.legal[rows], data.policy[rows], lr=settings.lr, batch_size=settings.batch_size,
                seed=seed, epochs=settings.epochs)
            for evaluated_on, held_set, held in (("concept", concept_set, c_held), ("random", random_set, r_held)):
                hit = _agreement(net, held_set, held)
                agreement[(trained_on, evaluated_on)] = float(hit.mean())
                per_position[(trained_on, evaluated_on)] = hit
            if data is not None:
                done += 1
                if progress is not None:
                    progress(done, 2 * len(plans))
        diff = per_position[("concept", "concept")].astype(np.float64) - per_position[("random", "concept")]
        held_groups = np.array([concept_set.groups[i] for i in c_held.tolist()])
        roots = tuple(dict.fromkeys(held_groups.tolist()))
        runs.append(SeedRun(seed, tuple(sorted(set(concept_set.groups) - set(roots))), roots, c_train, c_held, r_train, r_held,
                            agreement, tuple((r, float(diff[held_groups == r].mean())) for r in roots)))

    def cell(trained_on: str, evaluated_on: str) -> Cell:
        return Cell.of([r.agreement[(trained_on, evaluated_on)] for r in runs])

    cc, rc = cell("concept", "concept"), cell("random", "concept")
    difference = float(np.mean(np.subtract(cc.per_seed, rc.per_seed)))
    root_difference, interval = root_bootstrap([dict(r.root_differences) for r in runs], settings.resamples, settings.confidence,
                                               np.random.default_rng(list(settings.seeds)))
    return TeachResult(concept_set.name, Path(tnet.path).name, tnet.sha256, Path(snet.path).name, snet.sha256, settings,
                       len(concept_set), concept_set.n_groups, len(random_set), random_set.n_groups,
                       cc, cell("concept", "random"), rc, cell("random", "random"), cell("none", "concept"), cell("none", "random"),
                       difference, root_difference, interval,
                       bool(difference >= settings.margin and interval[0] > 0), tuple(runs))
