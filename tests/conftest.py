"""Shared fixtures: the real test data beside the project (../shared/data or $CONCEPTCHESS_TEST_DATA),
and the databases (SQLite in a temporary folder; PostgreSQL at $CONCEPTCHESS_TEST_PG_URL). Plain helpers
are in helpers.py."""

from __future__ import annotations

import gzip
import os
import uuid
from pathlib import Path

import pytest
from sqlalchemy import create_engine, make_url, text
from sqlalchemy.exc import SQLAlchemyError

from tests.helpers import DATA, PG_URL, data_file, pg_unavailable


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not DATA.exists():
        pytest.skip(f"real test data not available: {DATA} (set CONCEPTCHESS_TEST_DATA or provide ../shared/data)")
    return DATA


@pytest.fixture(scope="session")
def maia1100() -> Path:
    return data_file("weights", "maia-1100.pb.gz")


@pytest.fixture(scope="session")
def maia1900() -> Path:
    return data_file("weights", "maia-1900.pb.gz")


@pytest.fixture(scope="session")
def meangirl() -> Path:
    return data_file("weights", "meangirl-8.pb.gz")


@pytest.fixture(scope="session")
def lichess_pgn() -> Path:
    return data_file("pgn", "lichess_2021-10_games_a.pgn")


@pytest.fixture(scope="session")
def lc0_onnx_dir(tmp_path_factory) -> Path:
    """lc0's own leela2onnx exports, gunzipped once per session."""
    out = tmp_path_factory.mktemp("lc0onnx")
    for name in ("maia-1100", "mean-girl-8"):
        src = data_file("onnx", f"{name}.onnx.gz")
        (out / f"{name}.onnx").write_bytes(gzip.decompress(src.read_bytes()))
    return out


@pytest.fixture
def pg_url():
    """A URL of the PostgreSQL server at ``$CONCEPTCHESS_TEST_PG_URL``, scoped to a fresh schema of its own
    (dropped afterwards), so runs never see each other's rows. Skips without a server — fails instead
    under ``$CONCEPTCHESS_REQUIRE_PG=1``."""
    url = os.environ.get(PG_URL)
    if not url:
        pg_unavailable(f"${PG_URL} is not set (e.g. postgresql+psycopg://conceptchess:conceptchess@127.0.0.1/conceptchess_test)")
    try:
        import psycopg  # noqa: F401
    except ImportError:
        pg_unavailable("psycopg is not installed (pip install 'psycopg[binary]')")

    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    schema = f"cc_test_{uuid.uuid4().hex[:12]}"
    try:
        with admin.connect() as c:
            c.execute(text(f'CREATE SCHEMA "{schema}"'))
    except SQLAlchemyError as e:
        admin.dispose()
        pg_unavailable(f"PostgreSQL at ${PG_URL} is unreachable or refuses us ({type(e.orig or e).__name__}: {str(e.orig or e).splitlines()[0]})")
    scoped = make_url(url).update_query_dict({"options": f"-csearch_path={schema}"})
    try:
        yield scoped.render_as_string(hide_password=False)
    finally:
        with admin.connect() as c:
            c.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request, tmp_path) -> str:
    """The same test on SQLite and on PostgreSQL (see :func:`pg_url`)."""
    if request.param == "postgresql":
        return request.getfixturevalue("pg_url")
    return f"sqlite:///{tmp_path / 'test.sqlite'}"
