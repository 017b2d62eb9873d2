"""Where the project's folders are: one definition for every module, test and benchmark.

The project root is the folder that holds ``conceptchess/`` (an editable install, as ``make`` sets
up). Its folders: ``engines/`` (the shipped checkpoint series), ``results/`` (probe runs and
atlases), ``db/`` (migrations and the default SQLite file), ``puzzles/`` (exported PGN), ``build/``
(scratch work of the demo). The real test data lies beside the project in ``../shared/data`` unless
``$CONCEPTCHESS_TEST_DATA`` names another folder; it may be absent (tests skip, benchmarks stop).

>>> ENGINES_DIR.name, DB_DIR.name
('engines', 'db')
>>> test_data_dir({"CONCEPTCHESS_TEST_DATA": "/data/cc"})
PosixPath('/data/cc')
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ENGINES_DIR = ROOT / "engines"
RESULTS_DIR = ROOT / "results"
DB_DIR = ROOT / "db"
PUZZLES_DIR = ROOT / "puzzles"
BUILD_DIR = ROOT / "build"

ENV_TEST_DATA = "CONCEPTCHESS_TEST_DATA"


def test_data_dir(environ: Mapping[str, str] | None = None) -> Path:
    """The real test data: ``$CONCEPTCHESS_TEST_DATA``, else ``../shared/data`` beside the project (it may not exist)."""
    env = os.environ if environ is None else environ
    return Path(env.get(ENV_TEST_DATA) or ROOT.parent / "shared" / "data")


test_data_dir.__test__ = False  # a function named test_* is not a pytest test
