"""Discovery tables: erasers, discovery runs, discovered concepts, their novelty and amplification (migration
0004_discovery), their teaching results and each run's stored funnel (0005_teaching).

Big arrays stay out: an eraser and a concept vector live in ``.npz`` files whose paths (and sha256)
the rows keep. A discovery run is identified by ``key`` (a hash of its inputs and settings), so the
same command finds the same run and completes it; ``(run, root, variant)`` is unique, so a concept is
never stored twice. ``variant`` is ``erased`` (fitted on LEACE-erased activations, the default) or
``unerased`` (the same root fitted on raw activations: the control stored beside it).

The query functions below are the only ORM statements of discovery; each takes an open session, so
the caller decides the transaction.

>>> with db.begin() as s:                                              # doctest: +SKIP
...     rows = concepts_of_run(s, run_id)
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Boolean, DateTime, Float, ForeignKey, Integer, String, Text, UniqueConstraint, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from conceptchess.store.base import Base, utcnow

ERASED, UNERASED = "erased", "unerased"
CONCEPT, RANDOM_CONTROL = "concept", "random-control"  # a teaching result's role: the concept, or its random vector
TAUGHT, TOO_FEW, NO_STUDENT = "taught", "too-few-prototypes", "no-student"  # a teaching result's status


class EraserRow(Base):
    """A LEACE eraser of human concepts at one tap of one network, fitted on one dataset."""

    __tablename__ = "erasers"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    sha256: Mapped[str] = mapped_column(String(64), unique=True, nullable=False)  # of the .npz file
    network_id: Mapped[int] = mapped_column(ForeignKey("networks.id"), nullable=False)
    dataset_id: Mapped[int] = mapped_column(ForeignKey("datasets.id"), nullable=False)
    tap: Mapped[str] = mapped_column(String(32), nullable=False)
    pool: Mapped[str] = mapped_column(String(16), nullable=False)
    concepts: Mapped[list] = mapped_column(JSON, nullable=False)  # the concept columns erased
    rank: Mapped[int] = mapped_column(Integer, nullable=False)
    path: Mapped[str] = mapped_column(Text, nullable=False)
    report: Mapped[dict | None] = mapped_column(JSON)  # the held-out checks (probe scores before/after, control)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, nullable=False)


class DiscoveryRun(Base):
    """One `conceptchess discover run`: a network, a rollouts dataset and its activation files at one tap."""

    __tablename__ = "discovery_runs"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key: Mapped[str] = mapped_column(String(64), unique=True, nullable=False)
    network_id: Mapped[int] = mapped_column(ForeignKey("networks.id"), nullable=False)
    dataset_id: Mapped[int] = mapped_column(ForeignKey("datasets.id"), nullable=False)  # the rollouts
    eraser_id: Mapped[int | None] = mapped_column(ForeignKey("erasers.id"))
    tap: Mapped[str] = mapped_column(String(32), nullable=False)
    pool: Mapped[str] = mapped_column(String(16), nullable=False)
    activations: Mapped[str] = mapped_column(Text, nullable=False)
    results_dir: Mapped[str] = mapped_column(Text, nullable=False)
    seed: Mapped[int] = mapped_column(Integer, nullable=False)
    settings: Mapped[dict] = mapped_column(JSON, nullable=False)
    versions: Mapped[dict] = mapped_column(JSON, nullable=False)
    status: Mapped[str] = mapped_column(String(16), nullable=False, default="running")  # running | complete
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, nullable=False)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class DiscoveredConcept(Base):
    """A sparse concept vector of one root (dynamic: the optimal rollout against the sub-optimal ones).

    ``status``: ``ok`` (hard margin met), ``soft-margin`` (infeasible at the margin: fitted with slack),
    or ``failed`` (no usable vector; ``reason`` says why). Held-out satisfaction: the share of held-out
    constraints v·z⁺ > v·z⁻ on sub-optimal lines of the same root (``heldout_same_root``) and on other
    roots' rollouts (``heldout_other_roots``); ``swapped_control`` is the same on the same root's held-out
    lines for a vector fitted with optimal and sub-optimal labels swapped at random (it must be clearly
    worse). ``details`` holds the solver's particulars and counts.
    """

    __tablename__ = "discovered_concepts"
    __table_args__ = (UniqueConstraint("run_id", "root", "variant", name="uq_discovered_concepts_root"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("discovery_runs.id", ondelete="CASCADE"), nullable=False)
    root: Mapped[str] = mapped_column(String(200), nullable=False)
    variant: Mapped[str] = mapped_column(String(16), nullable=False)  # erased | unerased
    status: Mapped[str] = mapped_column(String(16), nullable=False)
    reason: Mapped[str | None] = mapped_column(Text)
    margin: Mapped[float] = mapped_column(Float, nullable=False)
    solver: Mapped[str] = mapped_column(String(32), nullable=False)
    constraints: Mapped[int | None] = mapped_column(Integer)
    nonzero: Mapped[int | None] = mapped_column(Integer)
    features: Mapped[int | None] = mapped_column(Integer)
    heldout_same_root: Mapped[float | None] = mapped_column(Float)
    heldout_other_roots: Mapped[float | None] = mapped_column(Float)
    swapped_control: Mapped[float | None] = mapped_column(Float)
    vector_path: Mapped[str | None] = mapped_column(Text)
    vector_sha256: Mapped[str | None] = mapped_column(String(64))
    details: Mapped[dict | None] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, nullable=False)


class NoveltyScore(Base):
    """A concept's novelty against human and machine activation bases (Schut's rule: positive at every k)."""

    __tablename__ = "novelty_scores"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    concept_id: Mapped[int] = mapped_column(ForeignKey("discovered_concepts.id", ondelete="CASCADE"), nullable=False)
    human_dataset_id: Mapped[int] = mapped_column(ForeignKey("datasets.id"), nullable=False)
    machine_dataset_id: Mapped[int] = mapped_column(ForeignKey("datasets.id"), nullable=False)
    novel: Mapped[bool] = mapped_column(Boolean, nullable=False)
    scores: Mapped[dict] = mapped_column(JSON, nullable=False)  # k → score
    human_rank: Mapped[int | None] = mapped_column(Integer)
    machine_rank: Mapped[int | None] = mapped_column(Integer)
    control: Mapped[dict | None] = mapped_column(JSON)  # random sparse directions: share novel, score quantiles
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, nullable=False)


class AmplificationResult(Base):
    """Pushing a concept into the network from its tap onward, against a random direction of the same norm and sparsity."""

    __tablename__ = "amplification_results"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    concept_id: Mapped[int] = mapped_column(ForeignKey("discovered_concepts.id", ondelete="CASCADE"), nullable=False)
    positions: Mapped[str] = mapped_column(String(16), nullable=False)  # roots | unrelated
    n_positions: Mapped[int] = mapped_column(Integer, nullable=False)
    alphas: Mapped[list] = mapped_column(JSON, nullable=False)
    effect: Mapped[float | None] = mapped_column(Float)  # change in the move's probability at the largest α
    control_effect: Mapped[float | None] = mapped_column(Float)
    above_control: Mapped[bool | None] = mapped_column(Boolean)
    curves: Mapped[dict] = mapped_column(JSON, nullable=False)  # per α: concept and control means and intervals
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, nullable=False)


class TeachingResult(Base):
    """Teaching one concept's prototypes to a student (Schut's teachability), or its random-vector control.

    ``role`` is ``concept`` or ``random-control`` (a Gaussian vector of the concept's norm pushed through the
    same prototype and teaching pipeline). ``status`` is ``taught``, ``too-few-prototypes`` (dropped before
    teaching, and counted) or ``no-student`` (no candidate student agreed with the teacher on its prototypes
    less than the rule allows; ``student_choice`` lists each agreement). ``difference``/``interval_*``: concept-trained minus random-trained top-1 agreement
    on the concept's held-out prototypes (mean over seeds, bootstrap over roots); ``result`` holds the 2 × 2
    table per seed with means and spreads. ``key`` hashes the settings, teacher, student and position sets, so
    the same command finds what it stored and goes on.
    """

    __tablename__ = "teaching_results"
    __table_args__ = (UniqueConstraint("concept_id", "role", "key", name="uq_teaching_results_concept"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key: Mapped[str] = mapped_column(String(64), nullable=False)
    concept_id: Mapped[int] = mapped_column(ForeignKey("discovered_concepts.id", ondelete="CASCADE"), nullable=False)
    role: Mapped[str] = mapped_column(String(16), nullable=False)
    teacher_id: Mapped[int] = mapped_column(ForeignKey("networks.id"), nullable=False)
    student_id: Mapped[int | None] = mapped_column(ForeignKey("networks.id"))
    student: Mapped[str | None] = mapped_column(Text)  # the student's file name
    prototypes_dataset_id: Mapped[int] = mapped_column(ForeignKey("datasets.id"), nullable=False)  # rollouts searched for prototypes
    random_dataset_id: Mapped[int | None] = mapped_column(ForeignKey("datasets.id"))  # the teacher's own games (control a)
    status: Mapped[str] = mapped_column(String(24), nullable=False)
    reason: Mapped[str | None] = mapped_column(Text)
    prototypes: Mapped[int] = mapped_column(Integer, nullable=False)
    prototype_roots: Mapped[list] = mapped_column(JSON, nullable=False)
    difference: Mapped[float | None] = mapped_column(Float)
    interval_low: Mapped[float | None] = mapped_column(Float)
    interval_high: Mapped[float | None] = mapped_column(Float)
    teachable: Mapped[bool | None] = mapped_column(Boolean)
    result: Mapped[dict | None] = mapped_column(JSON)
    student_choice: Mapped[dict | None] = mapped_column(JSON)  # every candidate's agreement, the rule's threshold
    settings: Mapped[dict] = mapped_column(JSON, nullable=False)
    versions: Mapped[dict] = mapped_column(JSON, nullable=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, nullable=False)


class DiscoveryFunnel(Base):
    """A run's funnel as `discover filter` counted it: candidates → prototypes → teachable → novel → amplified."""

    __tablename__ = "discovery_funnels"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("discovery_runs.id", ondelete="CASCADE"), nullable=False)
    variant: Mapped[str] = mapped_column(String(16), nullable=False)
    teaching_key: Mapped[str | None] = mapped_column(String(64))
    stages: Mapped[list] = mapped_column(JSON, nullable=False)  # [[stage, count], ...] in funnel order
    controls: Mapped[dict | None] = mapped_column(JSON)  # the random-vector controls' counts at the same stages
    settings: Mapped[dict] = mapped_column(JSON, nullable=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, nullable=False)


# -- queries ----------------------------------------------------------------------------------------------------
def discovery_run_by_key(s: Session, key: str) -> DiscoveryRun | None:
    return s.execute(select(DiscoveryRun).where(DiscoveryRun.key == key)).scalar_one_or_none()


def eraser_by_sha(s: Session, sha256: str) -> EraserRow | None:
    return s.execute(select(EraserRow).where(EraserRow.sha256 == sha256)).scalar_one_or_none()


def concepts_of_run(s: Session, run_id: int) -> list[DiscoveredConcept]:
    return list(s.execute(select(DiscoveredConcept).where(DiscoveredConcept.run_id == run_id).order_by(DiscoveredConcept.id)).scalars())


def roots_done(s: Session, run_id: int) -> set[tuple[str, str]]:
    """(root, variant) pairs a run has stored: what a resumed run skips."""
    return {(root, variant) for root, variant in s.execute(select(DiscoveredConcept.root, DiscoveredConcept.variant)
                                                            .where(DiscoveredConcept.run_id == run_id))}


def discovered_concept(s: Session, concept_id: int) -> DiscoveredConcept | None:
    return s.get(DiscoveredConcept, concept_id)


def all_concepts(s: Session) -> list[DiscoveredConcept]:
    return list(s.execute(select(DiscoveredConcept).order_by(DiscoveredConcept.id)).scalars())


def latest_novelty(s: Session, concept_id: int) -> NoveltyScore | None:
    return s.execute(select(NoveltyScore).where(NoveltyScore.concept_id == concept_id).order_by(NoveltyScore.id.desc())).scalars().first()


def amplification_of(s: Session, concept_id: int) -> list[AmplificationResult]:
    return list(s.execute(select(AmplificationResult).where(AmplificationResult.concept_id == concept_id)
                          .order_by(AmplificationResult.id)).scalars())


def teaching_of(s: Session, concept_id: int, role: str = CONCEPT, key: str | None = None) -> TeachingResult | None:
    """A concept's latest teaching result of ``role`` (with ``key``: the one stored under those settings)."""
    q = select(TeachingResult).where(TeachingResult.concept_id == concept_id, TeachingResult.role == role)
    if key is not None:
        q = q.where(TeachingResult.key == key)
    return s.execute(q.order_by(TeachingResult.id.desc())).scalars().first()


def latest_funnel(s: Session, run_id: int, variant: str = ERASED) -> DiscoveryFunnel | None:
    return s.execute(select(DiscoveryFunnel).where(DiscoveryFunnel.run_id == run_id, DiscoveryFunnel.variant == variant)
                     .order_by(DiscoveryFunnel.id.desc())).scalars().first()
