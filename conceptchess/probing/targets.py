"""What a probe predicts: concept targets, and their labels over a dataset.

A :class:`Target` is one probe's label: a scalar concept (L1 linear regression, scored by R²), a
binary one (L1 logistic regression, scored by balanced accuracy), or one category of a categorical
concept. Categorical concepts are probed **one-vs-rest**: ``game_phase`` becomes the binary targets
``game_phase=opening``, ``game_phase=middlegame`` and ``game_phase=endgame`` (name one of them to
probe only it). One-vs-rest keeps every probe a single direction in activation space — the form
puzzle mining and erasure use — at the cost of not modelling the categories jointly.

Labels come from the concept library (computed from the positions and cached under the results
folder, one ``.npy`` per concept) or, with ``labels=TABLE``, only from a table written by
``conceptchess concepts label`` (an ``id`` column, one column per concept; CSV or Parquet); then a
requested concept the table lacks is an error, and columns that are not library concepts are
allowed (binary when every value is 0 or 1, scalar otherwise). Missing values (NaN) leave that
position out of that concept's probe.

>>> [t.name for t in resolve_targets(["in_check", "game_phase=endgame", "material_diff"])]
['in_check', 'game_phase=endgame', 'material_diff']
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from conceptchess.concepts import CONCEPTS, is_available, label
from conceptchess.concepts.registry import check_names
from conceptchess.errors import ConceptChessError
from conceptchess.files import atomic_open
from conceptchess.names import split_names, unique
from conceptchess.progress import Progress

METRICS = {"regression": "r2", "classification": "balanced_accuracy"}


@dataclass(frozen=True)
class Target:
    """One probe label: ``name`` (``concept`` or ``concept=category``), how it is probed, where it comes from."""

    name: str
    kind: str  # regression | classification
    concept: str  # the library concept (or labels-table column) it derives from
    category: int | None = None  # one-vs-rest: the category index
    source: str = "library"  # library | table

    @property
    def metric(self) -> str:
        return METRICS[self.kind]


def _concept_names(names) -> list[str] | None:
    """The names asked for, each once (None: not asked); asking for none is refused."""
    if names is None:
        return None
    out = unique(split_names(names))
    if not out:
        raise ConceptChessError("no concept names given")
    return out


def _library_targets(name: str, category: str | None, source: str = "library") -> list[Target]:
    c = CONCEPTS[name]
    if c.type == "categorical":
        if category is None:
            return [Target(f"{name}={cat}", "classification", name, i, source) for i, cat in enumerate(c.categories)]
        if category not in c.categories:
            raise ConceptChessError(f"concept {name!r} has no category {category!r} (categories: {', '.join(c.categories)})")
        return [Target(f"{name}={category}", "classification", name, c.categories.index(category), source)]
    if category is not None:
        raise ConceptChessError(f"concept {name!r} is {c.type}, not categorical: {name}={category} names nothing")
    return [Target(name, "classification" if c.type == "binary" else "regression", name, None, source)]


def resolve_targets(names=None, *, table_columns: dict[str, np.ndarray] | None = None, stockfish: bool | None = None) -> list[Target]:
    """Targets for concept ``names`` (a list or comma-separated string; None: every python-chess concept,
    or every column of the labels table when one is given).

    Raises a one-line error for an unknown concept, an unknown category, a Stockfish concept without
    the Stockfish binary, or (with a labels table) a concept the table has no column for.
    """
    names = _concept_names(names)
    if names is None:
        names = list(table_columns) if table_columns is not None else [c.name for c in CONCEPTS.values() if c.source == "python-chess"]
    if table_columns is None:  # every unknown name at once, each with the closest known ones
        check_names([full.partition("=")[0] for full in names])
    targets: list[Target] = []
    for full in names:
        name, _, category = full.partition("=")
        category = category or None
        if table_columns is not None:
            if name not in table_columns:
                raise ConceptChessError(f"the labels table has no labels for concept {name!r} (it has: {', '.join(table_columns) or 'none'})")
            if name in CONCEPTS:
                targets += _library_targets(name, category, "table")
            else:
                if category is not None:
                    raise ConceptChessError(f"labels-table column {name!r} is not categorical: {full} names nothing")
                v = np.asarray(table_columns[name], dtype=np.float64)
                binary = bool(np.isin(v[~np.isnan(v)], (0.0, 1.0)).all())
                targets.append(Target(name, "classification" if binary else "regression", name, None, "table"))
            continue
        if name not in CONCEPTS:
            raise ConceptChessError(f"unknown concept {name!r} (see `conceptchess concepts list`)")
        c = CONCEPTS[name]
        if c.source == "stockfish":
            if stockfish is False:
                raise ConceptChessError(f"concept {name!r} needs Stockfish, which was turned off")
            if not is_available(c):
                raise ConceptChessError(f"concept {name!r} needs the stockfish binary, which was not found (no labels for it)")
        targets += _library_targets(name, category)
    return unique(targets, key=lambda t: t.name)


# -- labels --------------------------------------------------------------------------------------------
def read_labels_table(path: str | os.PathLike) -> tuple[list, dict[str, np.ndarray]]:
    """``(ids, {column: float64 values})`` of a CSV or Parquet labels table with an ``id`` column."""
    path = Path(path)
    if not path.exists():
        raise ConceptChessError(f"{path}: no such labels table")
    suffix = path.suffix.lower()
    try:
        # lazy: pyarrow is heavy and only a labels table needs it
        if suffix == ".csv":
            import pyarrow.csv as pacsv

            table = pacsv.read_csv(path)
        elif suffix == ".parquet":
            import pyarrow.parquet as pq

            table = pq.read_table(path)
        else:
            raise ConceptChessError(f"{path}: a labels table must be .csv or .parquet")
    except ConceptChessError:
        raise
    except Exception as e:  # noqa: BLE001 - any parse error becomes one line
        raise ConceptChessError(f"{path}: unreadable labels table ({type(e).__name__}: {str(e).splitlines()[0]})") from None
    if "id" not in table.column_names:
        raise ConceptChessError(f"{path}: a labels table needs an 'id' column")
    ids = table.column("id").to_pylist()
    cols = {}
    for name in table.column_names:
        if name == "id":
            continue
        try:
            cols[name] = np.asarray(table.column(name).to_numpy(zero_copy_only=False), dtype=np.float64)
        except (TypeError, ValueError):
            raise ConceptChessError(f"{path}: column {name!r} is not numeric") from None
    return ids, cols


def _atomic_save(path: Path, array: np.ndarray) -> None:
    with atomic_open(path, "wb") as f:
        np.save(f, array)


def library_labels(concepts: list[str], boards: Callable[[], list], cache: Path | None,
                   progress: Progress | None = None) -> dict[str, np.ndarray]:
    """Library concept values (float64, NaN where undefined), from ``cache`` or computed and cached.

    ``boards()`` is called only when something must be computed.
    """
    out: dict[str, np.ndarray] = {}
    missing = []
    for c in concepts:
        f = cache / f"{c}.npy" if cache is not None else None
        if f is not None and f.exists():
            try:
                out[c] = np.load(f).astype(np.float64)
                continue
            except (OSError, ValueError):
                pass
        missing.append(c)
    if missing:
        bs = boards()
        n = len(bs)
        done = 0
        parts: dict[str, list[np.ndarray]] = {c: [] for c in missing}
        step = 2048
        for s in range(0, n, step):
            values = label(bs[s : s + step], missing)
            for c in missing:
                parts[c].append(np.asarray(values[c], dtype=np.float64))
            done = min(n, s + step)
            if progress:
                progress(done, n)
        for c in missing:
            out[c] = np.concatenate(parts[c]) if parts[c] else np.zeros(0)
            if cache is not None:
                _atomic_save(cache / f"{c}.npy", out[c])
    return {c: out[c] for c in concepts}


def target_values(targets: list[Target], concept_values: dict[str, np.ndarray]) -> np.ndarray:
    """``(n, T)`` float64 label matrix (NaN = missing); categories become 0/1 one-vs-rest."""
    cols = []
    for t in targets:
        v = np.asarray(concept_values[t.concept], dtype=np.float64)
        if t.category is not None:
            v = np.where(np.isnan(v), np.nan, (v == t.category).astype(np.float64))
        cols.append(v)
    return np.stack(cols, 1) if cols else np.zeros((0, 0))
