"""The database: migrations build exactly the schema the models declare; transactions roll back."""

import importlib
import pkgutil

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, inspect

import conceptchess.store as store
from conceptchess.errors import ConceptChessError
from conceptchess.store import Base, connect, upgrade
from conceptchess.store.models import NetworkRow


def _import_all_models():
    for mod in pkgutil.iter_modules(store.__path__):
        importlib.import_module(f"conceptchess.store.{mod.name}")


def test_migrations_match_the_models(tmp_path):
    _import_all_models()
    url = f"sqlite:///{tmp_path / 'm.sqlite'}"
    upgrade(url)
    engine = create_engine(url)
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert diff == [], diff
    assert {"networks", "datasets", "concepts"} <= set(inspect(engine).get_table_names())


def test_upgrade_is_idempotent_and_downgrade_works(tmp_path):
    from alembic import command

    url = f"sqlite:///{tmp_path / 'd.sqlite'}"
    upgrade(url)
    upgrade(url)
    command.downgrade(store.alembic_config(url), "base")
    assert set(inspect(create_engine(url)).get_table_names()) <= {"alembic_version"}


def test_transaction_rolls_back_on_error(tmp_path):
    db = connect(f"sqlite:///{tmp_path / 't.sqlite'}")
    with pytest.raises(RuntimeError):
        with db.begin() as s:
            s.add(NetworkRow(sha256="a" * 64, kind="lc0-weights"))
            s.flush()
            raise RuntimeError("boom")
    with db.session() as s:
        assert s.query(NetworkRow).count() == 0


def test_unreachable_database_is_one_line_error():
    with pytest.raises(ConceptChessError, match="cannot apply migrations"):
        upgrade("postgresql+psycopg://nobody@127.0.0.1:1/none")


def test_a_value_without_scheme_is_a_sqlite_path(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert store.db_url("some/file.sqlite") == f"sqlite:///{tmp_path / 'some' / 'file.sqlite'}"
    assert store.db_url("postgresql+psycopg://u@h/db") == "postgresql+psycopg://u@h/db"
    monkeypatch.setenv(store.ENV_DB, "env.sqlite")
    assert store.db_url() == f"sqlite:///{tmp_path / 'env.sqlite'}"


def test_db_option_takes_a_plain_path(tmp_path, monkeypatch):
    """What a user met: `--db some/file.sqlite` was an SQLAlchemy URL parse error."""
    from tests.helpers import cli

    monkeypatch.chdir(tmp_path)
    r = cli("puzzles", "list", "--db", "some/file.sqlite")
    assert r.exit_code == 0, r.output
    with connect(str(tmp_path / "some" / "file.sqlite")).session() as s:
        assert s.query(NetworkRow).count() == 0
    for args in (["puzzles", "list"], ["probe", "run"], ["probe", "show"], ["eval", "report"]):
        assert "SQLite file path" in " ".join(cli(*args, "--help").stdout.split()), args
