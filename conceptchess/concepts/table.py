"""Write a concept table (``id`` column, then one column per concept) to CSV or Parquet atomically.

>>> import numpy as np
>>> write_table("labels.csv", ["a", "b"], {"in_check": np.array([0, 1], dtype="int8")})   # doctest: +SKIP
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from conceptchess.errors import ConceptChessError
from conceptchess.files import atomic_path

FORMATS = {".csv": "csv", ".parquet": "parquet"}


def table_format(path: str | os.PathLike) -> str:
    """``csv`` or ``parquet`` from the file name, or a one-line error."""
    suffix = Path(path).suffix.lower()
    if suffix not in FORMATS:
        raise ConceptChessError(f"{path}: output must end in .csv or .parquet")
    return FORMATS[suffix]


def _id_array(ids: list) -> "object":
    import pyarrow as pa  # lazy: only writing a table needs it (~0.5 s to import)

    if ids and all(isinstance(i, int) and not isinstance(i, bool) for i in ids):
        return pa.array(ids, type=pa.int64())
    return pa.array([str(i) for i in ids], type=pa.string())


def write_table(path: str | os.PathLike, ids: list, columns: dict[str, np.ndarray]) -> None:
    """Write ``id`` + ``columns`` to ``path`` (.csv or .parquet) via a temporary file and a rename."""
    import pyarrow as pa  # lazy: see _id_array

    fmt = table_format(path)
    if "id" in columns:
        raise ConceptChessError("a concept column cannot be named 'id'")
    table = pa.table({"id": _id_array(list(ids)), **{k: pa.array(v) for k, v in columns.items()}})
    with atomic_path(path) as tmp:
        if fmt == "csv":
            import pyarrow.csv as pacsv  # lazy: see _id_array

            pacsv.write_csv(table, str(tmp))
        else:
            import pyarrow.parquet as pq  # lazy: see _id_array

            pq.write_table(table, str(tmp))
