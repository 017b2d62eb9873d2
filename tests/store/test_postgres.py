"""PostgreSQL: the gate that keeps CI honest, and a collection imported and exported on a real server.

The schema, sessions and answers, and the concurrent entry run on PostgreSQL as well as SQLite (the
``database_url`` fixture of conftest.py, parametrized by backend). Set ``$CONCEPTCHESS_TEST_PG_URL``
(e.g. ``postgresql+psycopg://conceptchess:conceptchess@127.0.0.1/conceptchess_test``); without it, or
when the server is unreachable, the PostgreSQL tests skip and say why — unless ``$CONCEPTCHESS_REQUIRE_PG=1``
(set by ``.ci/run``), where they fail instead, so CI cannot pass without ever reaching PostgreSQL. Each
test works in a fresh schema of its own (dropped afterwards), so runs never see each other's rows.
"""

from __future__ import annotations

import pytest

from conceptchess.export import export_collection, read_pgn_puzzles
from conceptchess.puzzles.lichess import import_lichess
from conceptchess.store import connect
from tests.helpers import LICHESS_CSV, REQUIRE_PG, pg_unavailable


def test_missing_postgres_skips_unless_required(monkeypatch):
    monkeypatch.delenv(REQUIRE_PG, raising=False)
    with pytest.raises(pytest.skip.Exception, match="unreachable"):
        pg_unavailable("PostgreSQL is unreachable")
    monkeypatch.setenv(REQUIRE_PG, "1")
    with pytest.raises(pytest.fail.Exception, match=f"{REQUIRE_PG}=1 but PostgreSQL is unreachable"):
        pg_unavailable("PostgreSQL is unreachable")


def test_import_verify_export_on_postgres(pg_url, tmp_path):
    db = connect(pg_url)
    assert import_lichess(db, LICHESS_CSV, "lichess") == (7, 0)
    assert import_lichess(db, LICHESS_CSV, "lichess") == (0, 7)
    games = read_pgn_puzzles(export_collection(db, "lichess", tmp_path / "l.pgn").path)
    assert [g.headers["PuzzleId"] for g in games][:2] == ["cc0Bk", "cc0Fk"]
