"""The puzzle schema: migration 0002_puzzles matches the models, downgrades cleanly, and the database
itself refuses a second answer or an out-of-range confidence — on SQLite and on PostgreSQL."""

from __future__ import annotations

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, inspect
from sqlalchemy.exc import IntegrityError

import conceptchess.store.models  # noqa: F401  (core tables on the metadata)
from conceptchess.store import Base, alembic_config, connect, upgrade
from conceptchess.store.base import utcnow
from conceptchess.store.puzzles import Answer, Collection, CollectionPuzzle, EvalSession, Expert, Puzzle

TABLES = {"puzzles", "collections", "collection_puzzles", "experts", "eval_sessions", "answers"}


def test_schema_matches_models(database_url):
    db = connect(database_url)
    assert TABLES | {"networks", "datasets", "concepts"} <= set(inspect(db.engine).get_table_names())
    with db.engine.connect() as c:
        diffs = compare_metadata(MigrationContext.configure(c, opts={"compare_type": True}), Base.metadata)

    def table_of(d) -> str:
        if isinstance(d, list):  # modify_* entries: (op, schema, table, column, ...)
            return d[0][2]
        if d[0] in ("add_table", "remove_table"):
            return d[1].name
        if d[0] in ("add_column", "remove_column"):
            return d[2]
        return d[1].table.name  # indexes and constraints

    ours = [d for d in diffs if table_of(d) in TABLES]
    assert ours == []


def test_database_refuses_duplicates(database_url):
    db = connect(database_url)
    with db.begin() as s:
        s.add(Puzzle(id="p1", fen="8/8/8/8/8/8/8/K1k5 w - - 0 1", leading_moves=[], solution=["a1a2"], side_to_solve="white",
                     kind="imported", themes=[]))
        s.add(Collection(name="c"))
        s.add(Expert(name="e"))
        s.flush()
        c = s.query(Collection).one()
        s.add(CollectionPuzzle(collection_id=c.id, puzzle_id="p1", position=0))
        sess = EvalSession(expert_id=s.query(Expert).one().id, phase="before", collection_id=c.id, blinded=False, puzzle_order=["p1"])
        s.add(sess)
        s.flush()
        sid = sess.id
    answer = dict(session_id=sid, puzzle_id="p1", moves=["a1a2"], first_move_correct=True, entered_at=utcnow())
    with db.begin() as s:
        s.add(Answer(**answer))
    for extra in ({}, {"confidence": 7}):
        with pytest.raises(IntegrityError):
            with db.begin() as s:
                s.add(Answer(**{**answer, **extra}))
    with pytest.raises(IntegrityError):
        with db.begin() as s:
            s.add(EvalSession(expert_id=1, phase="during", collection_id=c.id, blinded=False, puzzle_order=[]))
    with db.session() as s:
        assert s.query(Answer).count() == 1


def test_downgrade_and_upgrade(database_url):
    connect(database_url)
    command.downgrade(alembic_config(database_url), "0001_core")
    assert not TABLES & set(inspect(create_engine(database_url)).get_table_names())  # create_engine: no migration
    upgrade(database_url)
    assert TABLES <= set(inspect(create_engine(database_url)).get_table_names())
