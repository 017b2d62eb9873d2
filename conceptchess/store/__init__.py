"""The project's database: SQLAlchemy 2 models, sessions, and Alembic migrations (under ``db/``).

SQLite at ``db/conceptchess.sqlite`` by default; any SQLAlchemy URL (e.g. PostgreSQL) or a SQLite
file path (a value without ``://``) through ``--db`` or ``$CONCEPTCHESS_DB``. The schema is created and upgraded only by Alembic migrations
(``db/migrations/versions``): :func:`connect` runs ``upgrade head`` before handing out sessions.
Writes happen inside transactions (``with db.begin() as session: ...``).

>>> db = connect("sqlite:///:memory:")                      # doctest: +SKIP
>>> with db.begin() as s:                                    # doctest: +SKIP
...     s.add(NetworkRow(sha256="...", kind="lc0-weights"))
"""

from __future__ import annotations

import os
from pathlib import Path

from sqlalchemy import create_engine, event
from sqlalchemy.engine import Engine as SAEngine
from sqlalchemy.orm import sessionmaker

from conceptchess.errors import ConceptChessError
from conceptchess.paths import DB_DIR
from conceptchess.store.base import Base

ENV_DB = "CONCEPTCHESS_DB"
DEFAULT_SQLITE = DB_DIR / "conceptchess.sqlite"


def db_url(url: str | None = None) -> str:
    """The database URL: the given one, else $CONCEPTCHESS_DB, else SQLite in db/. A value without
    ``://`` is a SQLite file path (relative to the working folder, ``~`` expanded).

    >>> db_url("postgresql://u@host/cc")
    'postgresql://u@host/cc'
    >>> db_url("runs/cc.sqlite") == f"sqlite:///{Path('runs/cc.sqlite').resolve()}"
    True
    """
    url = url or os.environ.get(ENV_DB)
    if not url:
        return f"sqlite:///{DEFAULT_SQLITE}"
    if "://" not in url:
        return f"sqlite:///{Path(url).expanduser().resolve()}"
    return url


def _sqlite_pragmas(engine: SAEngine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn, _):
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA busy_timeout=30000")
        cur.close()


def alembic_config(url: str):
    from alembic.config import Config  # lazy: ~1.5 s to import, and only migrating needs it

    cfg = Config(str(DB_DIR / "alembic.ini"))
    cfg.set_main_option("script_location", str(DB_DIR / "migrations"))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def upgrade(url: str | None = None, revision: str = "heads") -> None:
    """Apply the Alembic migrations up to ``revision`` (default: every branch head)."""
    from alembic import command  # lazy: see alembic_config

    url = db_url(url)
    if url.startswith("sqlite:///") and not url.startswith("sqlite:///:memory:"):
        Path(url[len("sqlite:///"):]).parent.mkdir(parents=True, exist_ok=True)
    try:
        command.upgrade(alembic_config(url), revision)
    except Exception as e:  # noqa: BLE001 - any driver/connection error becomes one line
        raise ConceptChessError(f"database {url}: cannot apply migrations ({type(e).__name__}: {str(e).splitlines()[0]})") from None


class Database:
    """An engine plus a session factory for one URL, migrated to the latest schema."""

    def __init__(self, url: str | None = None, migrate: bool = True):
        self.url = db_url(url)
        if migrate:
            upgrade(self.url)
        try:
            self.engine = create_engine(self.url, future=True)
        except Exception as e:  # noqa: BLE001
            raise ConceptChessError(f"database {self.url}: {e}") from None
        if self.engine.dialect.name == "sqlite":
            _sqlite_pragmas(self.engine)
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)

    def begin(self):
        """A session inside one transaction: committed on success, rolled back on any error."""
        return self.sessions.begin()

    def session(self):
        return self.sessions()


def connect(url: str | None = None) -> Database:
    return Database(url)


__all__ = ["Base", "Database", "connect", "db_url", "upgrade", "ENV_DB"]
