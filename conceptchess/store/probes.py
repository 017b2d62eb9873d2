"""Probe tables: probe runs, the networks each run probed, and one result row per (run, network, tap, concept).

Migration ``0002_probes`` (on top of ``0001_core``). A run is identified by ``key`` — a hash of its
inputs and settings — so re-running the same command finds the same run and completes it; the
unique constraint on ``(run, network, tap, concept)`` keeps a result from being stored twice.
Big arrays stay out: a result stores the path of its probe vector (``.npy``), not the vector.

The query functions below are the only ORM statements of probing (the sweep's writer, the result
views): each takes an open session, so the caller decides the transaction.

>>> with db.begin() as s:                                          # doctest: +SKIP
...     rid = run_id_by_key(s, key)
...     done = result_scores(s, rid)
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, DateTime, Float, ForeignKey, Index, Integer, String, Text, UniqueConstraint, func, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from conceptchess.store.base import Base, utcnow
from conceptchess.store.models import ConceptRow, Dataset, NetworkRow


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


def result_pool(settings: dict | None, concept: str) -> str | None:
    """The pooling (``full`` or ``mean``) of the activations a run with ``settings`` probed ``concept`` (a
    target name) on: its own in the run's ``pools``, else the run's ``pool``; None where neither is recorded.

    >>> result_pool({"pool": "mean", "pools": {"in_check": "full"}}, "in_check"), result_pool({"pool": "mean"}, "in_check")
    ('full', 'mean')
    """
    settings = settings or {}
    return (settings.get("pools") or {}).get(concept, settings.get("pool"))


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
    this dataset). Rows written before ``no-fit`` existed say ``ok`` with ``nonzero = 0``. ``details``
    (JSON) holds the solver's particulars (validation score, path steps, a binary probe's threshold)
    and the labels each split side had (:func:`conceptchess.probing.cell.label_counts`:
    ``train_positives``/``train_negatives``… or ``train_variance``…; absent from rows written before).
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


# -- queries (every ORM statement about probes lives here; callers hold the session and its transaction) -------
def _id_of(s: Session, model, key: str, value, fields: dict) -> int:
    """The id of the ``model`` row whose ``key`` column is ``value``, added with ``fields`` if there is none."""
    row = s.execute(select(model).where(getattr(model, key) == value)).scalar_one_or_none()
    if row is None:
        row = model(**{key: value}, **fields)
        s.add(row)
        s.flush()
    return row.id


def network_id(s: Session, *, sha256: str, **fields) -> int:
    """The id of the network with ``sha256``, added with ``fields`` (kind, architecture, …) if new."""
    return _id_of(s, NetworkRow, "sha256", sha256, fields)


def dataset_id(s: Session, *, sha256: str, **fields) -> int:
    """The id of the dataset with ``sha256``, added with ``fields`` (path, source, positions, manifest) if new."""
    return _id_of(s, Dataset, "sha256", sha256, fields)


def concept_id(s: Session, *, name: str, **fields) -> int:
    """The id of the concept ``name``, added with ``fields`` (definition, type, frame, family) if new."""
    return _id_of(s, ConceptRow, "name", name, fields)


def run_id_by_key(s: Session, key: str) -> int | None:
    return s.execute(select(ProbeRun.id).where(ProbeRun.key == key)).scalar_one_or_none()


def add_run(s: Session, *, networks: list[tuple[int, str, str]], **fields) -> int:
    """A new run (status ``running``) with its networks ``(network id, role, label)`` in sweep order; its id."""
    run = ProbeRun(status="running", **fields)
    s.add(run)
    s.flush()
    for pos, (nid, role, label) in enumerate(networks):
        s.add(ProbeRunNetwork(run_id=run.id, network_id=nid, position=pos, role=role, label=label))
    return run.id


def finish_run(s: Session, run_id: int) -> None:
    run = s.get(ProbeRun, run_id)
    run.status, run.finished_at = "complete", utcnow()


def result_scores(s: Session, run_id: int) -> list:
    """``(network_id, tap, concept, score)`` of every result stored for a run."""
    return s.execute(select(ProbeResult.network_id, ProbeResult.tap, ProbeResult.concept, ProbeResult.score)
                     .where(ProbeResult.run_id == run_id)).all()


def add_result(s: Session, **fields) -> None:
    s.add(ProbeResult(**fields))


def run_with_dataset(s: Session, run_id: int) -> tuple[ProbeRun, Dataset | None] | None:
    run = s.get(ProbeRun, int(run_id))
    return None if run is None else (run, s.get(Dataset, run.dataset_id))


def run_networks(s: Session, run_id: int) -> list[tuple[ProbeRunNetwork, NetworkRow]]:
    """A run's networks in sweep order."""
    return [tuple(r) for r in s.execute(select(ProbeRunNetwork, NetworkRow).join(NetworkRow, NetworkRow.id == ProbeRunNetwork.network_id)
                                        .where(ProbeRunNetwork.run_id == run_id).order_by(ProbeRunNetwork.position)).all()]


def run_results(s: Session, run_id: int) -> list[ProbeResult]:
    return list(s.execute(select(ProbeResult).where(ProbeResult.run_id == run_id)).scalars().all())


def latest_run_id(s: Session) -> int | None:
    return s.execute(select(func.max(ProbeRun.id))).scalar()


def concept_results(s: Session, concept: str, run_id: int | None = None) -> list[tuple[ProbeResult, str, int]]:
    """``(result, network label, network position in its run)`` of every stored result of ``concept`` (one run, or all)."""
    q = (select(ProbeResult, ProbeRunNetwork.label, ProbeRunNetwork.position)
         .join(ProbeRunNetwork, (ProbeRunNetwork.run_id == ProbeResult.run_id) & (ProbeRunNetwork.network_id == ProbeResult.network_id))
         .where(ProbeResult.concept == concept))
    if run_id is not None:
        q = q.where(ProbeResult.run_id == int(run_id))
    return [tuple(r) for r in s.execute(q).all()]
