"""Teachability, first steps (Schut et al.): a concept's prototypes, and the student that does not know it.

- **Prototypes** of a dynamic concept: the roots of a rollouts dataset whose optimal line the concept
  scores above every sub-optimal line at every paired ply (:func:`dynamic_prototypes`); of a static one,
  the top 2.5 % of positions by score (:func:`static_prototypes`). A concept with fewer than
  ``min_prototypes`` (20) is dropped, and counted (:class:`Prototypes` says how many it had).
- **Student selection** (:func:`select_student`): from candidate students ordered from the latest to the
  earliest (a teacher's own checkpoint series walked backwards, or named networks), the first whose top-1
  agreement with the teacher on the prototype positions is below ``max_agreement`` (0.2): a network that
  plays chess but does not play what the concept asks. With none, the refusal lists every agreement.

>>> protos = dynamic_prototypes(direction, X, meta)                           # doctest: +SKIP
>>> protos.roots[:3], protos.kept                                             # doctest: +SKIP
(('g3-p20', 'g7-p44', 'g9-p12'), True)
>>> select_student(agreements).name                                           # doctest: +SKIP
'cc-6x64-step000455.pb.gz'
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from conceptchess.checkpoints import read_sidecar, series_sidecars
from conceptchess.directions import ConceptDirection
from conceptchess.discovery import rollout_pairs
from conceptchess.engine import Engine
from conceptchess.errors import ArgumentError, ConceptChessError
from conceptchess.positions import PositionSpec, histories_of

MIN_PROTOTYPES = 20  # Schut et al.'s floor: fewer, and the concept is dropped
STATIC_SHARE = 0.025  # a static concept's prototypes: the top 2.5 % of positions by score
MAX_AGREEMENT = 0.2  # a student "does not know" the concept below this top-1 agreement with the teacher


def concept_scores(direction: ConceptDirection, X: np.ndarray) -> np.ndarray:
    """The concept's score of every row of ``X`` (activations at its tap, flattened): ((x − mean)/scale)·v."""
    X = np.asarray(X)
    if X.ndim != 2 or X.shape[1] != direction.vector.size:
        raise ConceptChessError(f"direction {direction.name!r} reads {direction.vector.size} values per position; the activations "
                                f"have {X.shape[1] if X.ndim == 2 else X.shape}")
    # ((x − mean)/scale)·v = x·(v/scale) − (mean/scale)·v: one product in X's own dtype (a prototype pool of 36,000
    # positions × 4,096 features is 0.6 GB in float32; a float64 copy per concept would double it and take seconds)
    v = direction.vector.astype(np.float64)
    w = v if direction.scale is None else v / direction.scale.astype(np.float64)
    offset = 0.0 if direction.mean is None else float(direction.mean.astype(np.float64) @ w)
    dtype = X.dtype if X.dtype in (np.float32, np.float64) else np.float64
    return (X.astype(dtype, copy=False) @ w.astype(dtype)).astype(np.float64) - offset


@dataclass(frozen=True)
class Prototypes:
    """A concept's prototypes: root ids (dynamic) or row indices (static), and whether there are enough."""

    concept: str
    kind: str  # "dynamic" or "static"
    roots: tuple  # dynamic: the prototype roots, in dataset order; static: ()
    rows: tuple[int, ...]  # static: the prototype rows, best first; dynamic: the rows of the prototype roots' root positions
    candidates: int  # roots (dynamic) or positions (static) examined
    min_prototypes: int

    @property
    def count(self) -> int:
        return len(self.roots) if self.kind == "dynamic" else len(self.rows)

    @property
    def kept(self) -> bool:
        """Whether the concept has enough prototypes to go on (else it is dropped, and counted)."""
        return self.count >= self.min_prototypes


def dynamic_prototypes(direction: ConceptDirection, X: np.ndarray, meta: Sequence[Mapping], *, plies: str = "root",
                       min_prototypes: int = MIN_PROTOTYPES) -> Prototypes:
    """The roots of a rollouts dataset (``X``: its activations at the concept's tap, rows in dataset order;
    ``meta``: its records) where the concept scores the optimal line above every sub-optimal line at every
    paired ply (``plies`` as :func:`~conceptchess.discovery.rollout_pairs`). A root without pairs is no prototype."""
    if min_prototypes < 1:
        raise ArgumentError("{min_prototypes} must be at least 1", min_prototypes="min_prototypes")
    if len(X) != len(meta):
        raise ConceptChessError(f"the activations have {len(X)} rows and the rollouts {len(meta)} records")
    s = concept_scores(direction, X)
    by_root = rollout_pairs(meta, plies)
    start = {m["root"]: k for k, m in enumerate(meta) if m["line"] == "optimal" and m["ply"] == 0}
    roots, rows = [], []
    for root, p in by_root.items():
        if len(p) and bool(np.all(s[p.pairs[:, 0]] > s[p.pairs[:, 1]])):
            roots.append(root)
            rows.append(start[root])
    return Prototypes(direction.name, "dynamic", tuple(roots), tuple(rows), len(by_root), min_prototypes)


def static_prototypes(direction: ConceptDirection, X: np.ndarray, *, share: float = STATIC_SHARE,
                      min_prototypes: int = MIN_PROTOTYPES) -> Prototypes:
    """The top ``share`` of the rows of ``X`` by the concept's score (at least one row), best first."""
    if not 0 < share <= 1:
        raise ArgumentError("{share} must lie in (0, 1]", share="share")
    s = concept_scores(direction, X)
    k = max(1, int(round(share * len(s))))
    order = np.argsort(-s, kind="stable")[:k]
    return Prototypes(direction.name, "static", (), tuple(int(i) for i in order), len(s), min_prototypes)


@dataclass(frozen=True)
class StudentChoice:
    """The student chosen for a concept, with every candidate's agreement with the teacher."""

    name: str  # the chosen student
    agreement: float  # its top-1 agreement with the teacher on the prototypes
    agreements: tuple[tuple[str, float], ...]  # (candidate, agreement) in the order walked (latest first)
    max_agreement: float


def top1_agreement(teacher_moves: Sequence, student_moves: Sequence) -> float:
    """The share of positions where the student's top move is the teacher's."""
    if len(teacher_moves) != len(student_moves):
        raise ConceptChessError(f"{len(teacher_moves)} teacher moves and {len(student_moves)} student moves")
    if not len(teacher_moves):
        raise ConceptChessError("no prototype positions to compare teacher and student on")
    return float(np.mean([a == b for a, b in zip(teacher_moves, student_moves)]))


def select_student(agreements: Sequence[tuple[str, float]], max_agreement: float = MAX_AGREEMENT) -> StudentChoice:
    """The latest student whose agreement with the teacher is below ``max_agreement``: ``agreements`` lists
    (student, top-1 agreement on the prototypes) from the latest candidate to the earliest.

    >>> select_student([("step3500", 0.61), ("step898", 0.34), ("step231", 0.15), ("step59", 0.07)]).name
    'step231'
    """
    if not 0 < max_agreement <= 1:
        raise ArgumentError("{max_agreement} must lie in (0, 1]", max_agreement="max_agreement")
    if not agreements:
        raise ConceptChessError("no candidate students")
    for name, a in agreements:
        if a < max_agreement:
            return StudentChoice(name, float(a), tuple((n, float(x)) for n, x in agreements), max_agreement)
    listed = ", ".join(f"{n} {x:.2f}" for n, x in agreements)
    raise ConceptChessError(f"no student's top-1 agreement with the teacher on the prototypes is below {max_agreement:g} "
                            f"(agreement: {listed})")


def earlier_checkpoints(teacher: str | os.PathLike) -> list[Path]:
    """The candidate students of a checkpoint: the earlier checkpoints of its series (by sidecar) in its folder,
    latest first, step 0 (the random initialisation: it does not play chess) left out."""
    teacher = Path(teacher)
    meta = read_sidecar(teacher)
    run, step = meta.get("run"), meta.get("step")
    if run is None or not isinstance(step, int):
        raise ConceptChessError(f"{teacher}: no checkpoint sidecar (run and step); name the students instead")
    earlier = [(s, f) for s, f, _ in series_sidecars(teacher.parent, run) if 0 < s < step and f.is_file()]
    return [f for _, f in sorted(earlier, reverse=True)]


def student_agreements(teacher: str | os.PathLike, students: Sequence[str | os.PathLike], positions: Sequence[PositionSpec], *,
                       threads: int | None = None, device: str = "cpu", engines: dict | None = None) -> list[tuple[str, float]]:
    """Each student's top-1 agreement with the teacher's raw policy on ``positions``, in the order given.
    A student whose input format differs from the teacher's is refused. ``engines``: a dict the caller keeps
    across calls, path → open :class:`~conceptchess.engine.Engine` (opening a network takes longer than
    evaluating a concept's few dozen prototypes)."""
    if not positions:
        raise ConceptChessError("no prototype positions to compare teacher and student on")
    hist, boards = histories_of(list(positions))
    keep = [i for i, b in enumerate(boards) if any(True for _ in b.generate_legal_moves())]
    hist, boards = hist[keep], [boards[i] for i in keep]
    engines = {} if engines is None else engines

    def engine(path) -> Engine:
        key = str(path)
        if key not in engines:
            engines[key] = Engine(path, device=device, threads=threads)
        return engines[key]

    def fmt(path) -> str | None:
        spec = engine(path).network.spec
        return spec.input_format if spec is not None else None  # an ONNX file does not record it

    def top(path) -> list:
        return [ev.best_move() for ev in engine(path).evaluate(hist, boards)]

    wanted, want_fmt = top(teacher), fmt(teacher)
    out = []
    for st in students:
        if None not in (want_fmt, fmt(st)) and fmt(st) != want_fmt:
            raise ConceptChessError(f"{st}: input format {fmt(st)} differs from the teacher's ({want_fmt})")
        out.append((Path(st).name, top1_agreement(wanted, top(st))))
    return out
