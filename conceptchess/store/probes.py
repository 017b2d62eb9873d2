"""Probe tables: probe runs, the networks each run probed, and one result row per (run, network, tap, concept).

Migration ``0002_probes`` (on top of ``0001_core``). A run is identified by ``key`` — a hash of its
inputs and settings — so re-running the same command finds the same run and completes it; the
unique constraint on ``(run, network, tap, concept)`` keeps a result from being stored twice.
Big arrays stay out: a result stores the path of its probe vector (``.npy``), not the vector.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, DateTime, Float, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from conceptchess.store.base import Base, utcnow


class ProbeRun(Base):
    """One `conceptchess probe run`: a dataset, some networks, concepts × taps, settings and a seed."""

    __tablename__ = "probe_runs"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key: Mapped[str] = mapped_column(String(64), unique=True, nullable=False)
    dataset_id: Mapped[int] = mapped_column(ForeignKey("datasets.id"), nullable=False)
    seed: Mapped[int] = mapped_column(Integer, nullable=False)
    settings: Mapped[dict] = mapped_column(JSON, nullable=False)
    versions: Mapped[dict] = mapped_column(JSON, nullable=False)
    results_dir: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), nullable=False, default="running")  # running | complete
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, nullable=False)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class ProbeRunNetwork(Base):
    """A network of a run, in sweep order; ``role`` is ``probed`` or ``random-init`` (a control)."""

    __tablename__ = "probe_run_networks"
    run_id: Mapped[int] = mapped_column(ForeignKey("probe_runs.id", ondelete="CASCADE"), primary_key=True)
    network_id: Mapped[int] = mapped_column(ForeignKey("networks.id"), primary_key=True)
    position: Mapped[int] = mapped_column(Integer, nullable=False)
    role: Mapped[str] = mapped_column(String(16), nullable=False)
    label: Mapped[str] = mapped_column(String(200), nullable=False)


class ProbeResult(Base):
    """A probe of one concept at one tap of one network, with its controls.

    ``score`` is test R² (scalar concepts) or test balanced accuracy (binary ones, and each category
    of a categorical concept one-vs-rest, named ``concept=category``), with a game-level bootstrap
    confidence interval. Controls: the same probe on the ``input`` tap, on the random-initialised
    network at the same tap, and on shuffled labels; ``selectivity = score − control_shuffled``.
    ``status`` is ``ok``, ``no-fit`` (the probe ended at all-zero weights, so its score is that of a
    constant prediction; ``reason`` says so) or ``skipped`` (with ``reason``, e.g. a concept constant on
    this dataset). Rows written before ``no-fit`` existed say ``ok`` with ``nonzero = 0``.
    """

    __tablename__ = "probe_results"
    __table_args__ = (
        UniqueConstraint("run_id", "network_id", "tap", "concept", name="uq_probe_results_cell"),
        Index("ix_probe_results_concept", "concept"),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("probe_runs.id", ondelete="CASCADE"), nullable=False)
    network_id: Mapped[int] = mapped_column(ForeignKey("networks.id"), nullable=False)
    tap: Mapped[str] = mapped_column(String(32), nullable=False)
    concept: Mapped[str] = mapped_column(String(200), nullable=False)
    concept_id: Mapped[int | None] = mapped_column(ForeignKey("concepts.id"))
    metric: Mapped[str] = mapped_column(String(32), nullable=False)  # r2 | balanced_accuracy
    status: Mapped[str] = mapped_column(String(16), nullable=False)  # ok | no-fit | skipped
    reason: Mapped[str | None] = mapped_column(Text)
    score: Mapped[float | None] = mapped_column(Float)
    ci_low: Mapped[float | None] = mapped_column(Float)
    ci_high: Mapped[float | None] = mapped_column(Float)
    control_input: Mapped[float | None] = mapped_column(Float)
    control_random: Mapped[float | None] = mapped_column(Float)
    control_shuffled: Mapped[float | None] = mapped_column(Float)
    selectivity: Mapped[float | None] = mapped_column(Float)
    nonzero: Mapped[int | None] = mapped_column(Integer)
    features: Mapped[int | None] = mapped_column(Integer)
    alpha: Mapped[float | None] = mapped_column(Float)
    intercept: Mapped[float | None] = mapped_column(Float)
    vector_path: Mapped[str | None] = mapped_column(Text)
    n_train: Mapped[int | None] = mapped_column(Integer)
    n_val: Mapped[int | None] = mapped_column(Integer)
    n_test: Mapped[int | None] = mapped_column(Integer)
    details: Mapped[dict | None] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, nullable=False)
