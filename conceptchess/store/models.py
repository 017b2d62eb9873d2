"""Core tables shared by every stage: networks, datasets, concepts (migration 0001_core).

Later stages add their own modules and migrations (probing: ``probes.py``; puzzles: ``puzzles.py``).
Big arrays never go in here: only metadata, file paths, hashes and summary metrics.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, DateTime, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from conceptchess.store.base import Base, utcnow


class NetworkRow(Base):
    """A network, identified by the sha256 of its weights file; a checkpoint series by (run, step)."""

    __tablename__ = "networks"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    sha256: Mapped[str] = mapped_column(String(64), unique=True, nullable=False)
    kind: Mapped[str] = mapped_column(String(32), nullable=False)  # lc0-weights | lc0-onnx
    architecture: Mapped[str | None] = mapped_column(Text)  # e.g. "6x32 SE(8), convolution policy, ..."
    blocks: Mapped[int | None] = mapped_column(Integer)
    filters: Mapped[int | None] = mapped_column(Integer)
    run: Mapped[str | None] = mapped_column(String(200), index=True)
    step: Mapped[int | None] = mapped_column(Integer)
    path: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, nullable=False)


class Dataset(Base):
    """A positions dataset, identified by the sha256 of its positions file."""

    __tablename__ = "datasets"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    sha256: Mapped[str] = mapped_column(String(64), unique=True, nullable=False)
    path: Mapped[str | None] = mapped_column(Text)
    source: Mapped[str | None] = mapped_column(String(32))  # human | machine
    positions: Mapped[int | None] = mapped_column(Integer)
    manifest: Mapped[dict | None] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, nullable=False)


class ConceptRow(Base):
    """A human concept of the library (or a discovered direction, later), by unique name."""

    __tablename__ = "concepts"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True, nullable=False)
    definition: Mapped[str | None] = mapped_column(Text)
    type: Mapped[str | None] = mapped_column(String(32))  # binary | scalar | categorical
    frame: Mapped[str | None] = mapped_column(String(32))  # us_/them_/white_/black_ ...
    family: Mapped[str | None] = mapped_column(String(64))
