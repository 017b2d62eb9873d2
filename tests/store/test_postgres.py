"""The whole schema and the evaluation flow against a real PostgreSQL server.

Set ``$CONCEPTCHESS_TEST_PG_URL`` (e.g. ``postgresql+psycopg://conceptchess:conceptchess@127.0.0.1/conceptchess_test``);
without it, or when the server is unreachable, these tests skip and say why — unless
``$CONCEPTCHESS_REQUIRE_PG=1`` (set by ``.ci/run``), where they fail instead, so CI cannot pass
without ever reaching PostgreSQL. Each test works in a fresh schema of its own (dropped afterwards),
so runs never see each other's rows.
"""

from __future__ import annotations

import os
import uuid

import pytest

from tests.store.test_puzzles import check_database_refuses_duplicates, check_downgrade_and_upgrade, check_schema_matches_models
from tests.study.test_study import check_concurrent_entry, check_sessions_and_answers

ENV = "CONCEPTCHESS_TEST_PG_URL"
REQUIRE = "CONCEPTCHESS_REQUIRE_PG"


def unavailable(reason: str):
    """Skip with ``reason``; fail with it when ``$CONCEPTCHESS_REQUIRE_PG=1``."""
    if os.environ.get(REQUIRE) == "1":
        pytest.fail(f"${REQUIRE}=1 but {reason}", pytrace=False)
    pytest.skip(reason)


@pytest.fixture
def pg_url():
    url = os.environ.get(ENV)
    if not url:
        unavailable(f"${ENV} is not set (e.g. postgresql+psycopg://conceptchess:conceptchess@127.0.0.1/conceptchess_test)")
    try:
        import psycopg  # noqa: F401
    except ImportError:
        unavailable("psycopg is not installed (pip install 'psycopg[binary]')")
    from sqlalchemy import create_engine, make_url, text
    from sqlalchemy.exc import SQLAlchemyError

    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    schema = f"cc_test_{uuid.uuid4().hex[:12]}"
    try:
        with admin.connect() as c:
            c.execute(text(f'CREATE SCHEMA "{schema}"'))
    except SQLAlchemyError as e:
        admin.dispose()
        unavailable(f"PostgreSQL at ${ENV} is unreachable or refuses us ({type(e.orig or e).__name__}: {str(e.orig or e).splitlines()[0]})")
    scoped = make_url(url).update_query_dict({"options": f"-csearch_path={schema}"})
    try:
        yield scoped.render_as_string(hide_password=False)
    finally:
        with admin.connect() as c:
            c.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def test_missing_postgres_skips_unless_required(monkeypatch):
    monkeypatch.delenv(REQUIRE, raising=False)
    with pytest.raises(pytest.skip.Exception, match="unreachable"):
        unavailable("PostgreSQL is unreachable")
    monkeypatch.setenv(REQUIRE, "1")
    with pytest.raises(pytest.fail.Exception, match=f"{REQUIRE}=1 but PostgreSQL is unreachable"):
        unavailable("PostgreSQL is unreachable")


def test_schema_matches_models(pg_url):
    check_schema_matches_models(pg_url)


def test_database_refuses_duplicates(pg_url):
    check_database_refuses_duplicates(pg_url)


def test_downgrade_and_upgrade(pg_url):
    check_downgrade_and_upgrade(pg_url)


def test_sessions_and_answers(pg_url):
    check_sessions_and_answers(pg_url)


def test_concurrent_entry(pg_url, tmp_path):
    check_concurrent_entry(pg_url, tmp_path)


def test_import_verify_export_on_postgres(pg_url, tmp_path):
    from conceptchess.export import export_collection, read_pgn_puzzles
    from conceptchess.puzzles.lichess import import_lichess
    from conceptchess.store import connect
    from tests.puzzles.test_common import LICHESS_CSV

    db = connect(pg_url)
    assert import_lichess(db, LICHESS_CSV, "lichess") == (7, 0)
    assert import_lichess(db, LICHESS_CSV, "lichess") == (0, 7)
    games = read_pgn_puzzles(export_collection(db, "lichess", tmp_path / "l.pgn").path)
    assert [g.headers["PuzzleId"] for g in games][:2] == ["cc0Bk", "cc0Fk"]
