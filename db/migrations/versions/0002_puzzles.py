"""puzzles, collections, experts, evaluation sessions, answers

Revision ID: 0002_puzzles
Revises: 0001_core
Create Date: 2026-11-26
"""

import sqlalchemy as sa
from alembic import op

revision = "0002_puzzles"
down_revision = "0001_core"
branch_labels = None
depends_on = None


def _tz():
    return sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "puzzles",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("fen", sa.Text, nullable=False),
        sa.Column("start_fen", sa.Text),
        sa.Column("leading_moves", sa.JSON, nullable=False),
        sa.Column("solution", sa.JSON, nullable=False),
        sa.Column("side_to_solve", sa.String(5), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("source", sa.String(16)),
        sa.Column("source_game", sa.Text),
        sa.Column("source_position", sa.Text),
        sa.Column("dataset_sha256", sa.String(64)),
        sa.Column("network_sha256", sa.String(64)),
        sa.Column("checkpoint", sa.String(200)),
        sa.Column("tap", sa.String(32)),
        sa.Column("concept", sa.String(200)),
        sa.Column("direction_sha256", sa.String(64)),
        sa.Column("concept_score", sa.Float),
        sa.Column("concept_rank", sa.Integer),
        sa.Column("network_move", sa.String(5)),
        sa.Column("network_policy", sa.Float),
        sa.Column("seed", sa.Integer),
        sa.Column("verified", sa.Boolean),
        sa.Column("verify_reason", sa.Text),
        sa.Column("verify_engine", sa.String(100)),
        sa.Column("verify_settings", sa.JSON),
        sa.Column("best_move", sa.String(5)),
        sa.Column("best_cp", sa.Integer),
        sa.Column("best_mate", sa.Integer),
        sa.Column("second_move", sa.String(5)),
        sa.Column("second_cp", sa.Integer),
        sa.Column("second_mate", sa.Integer),
        sa.Column("win_chance_gap", sa.Float),
        sa.Column("accepted_moves", sa.JSON),
        sa.Column("verified_at", _tz()),
        sa.Column("themes", sa.JSON, nullable=False),
        sa.Column("source_themes", sa.JSON),
        sa.Column("difficulty", sa.Float),
        sa.Column("difficulty_detail", sa.JSON),
        sa.Column("rating", sa.Integer),
        sa.Column("rating_deviation", sa.Integer),
        sa.Column("popularity", sa.Integer),
        sa.Column("nb_plays", sa.Integer),
        sa.Column("opening_tags", sa.JSON),
        sa.Column("generator_version", sa.String(64)),
        sa.Column("created_at", _tz(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_puzzles"),
        sa.CheckConstraint("side_to_solve IN ('white', 'black')", name="ck_puzzles_side_to_solve"),
        sa.CheckConstraint("kind IN ('concept', 'control-random', 'control-human', 'imported')", name="ck_puzzles_kind"),
    )
    op.create_index("ix_puzzles_network_sha256", "puzzles", ["network_sha256"])
    op.create_index("ix_puzzles_concept", "puzzles", ["concept"])
    op.create_table(
        "collections",
        sa.Column("id", sa.Integer, nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("description", sa.Text),
        sa.Column("created_at", _tz(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_collections"),
        sa.UniqueConstraint("name", name="uq_collections_name"),
    )
    op.create_table(
        "collection_puzzles",
        sa.Column("collection_id", sa.Integer, nullable=False),
        sa.Column("puzzle_id", sa.String(32), nullable=False),
        sa.Column("position", sa.Integer, nullable=False),
        sa.PrimaryKeyConstraint("collection_id", "puzzle_id", name="pk_collection_puzzles"),
        sa.ForeignKeyConstraint(["collection_id"], ["collections.id"], name="fk_collection_puzzles_collection_id_collections"),
        sa.ForeignKeyConstraint(["puzzle_id"], ["puzzles.id"], name="fk_collection_puzzles_puzzle_id_puzzles"),
        sa.UniqueConstraint("collection_id", "position", name="uq_collection_puzzles_position"),
    )
    op.create_table(
        "experts",
        sa.Column("id", sa.Integer, nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("title", sa.String(16)),
        sa.Column("rating", sa.Integer),
        sa.Column("created_at", _tz(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_experts"),
        sa.UniqueConstraint("name", name="uq_experts_name"),
    )
    op.create_table(
        "eval_sessions",
        sa.Column("id", sa.Integer, nullable=False),
        sa.Column("expert_id", sa.Integer, nullable=False),
        sa.Column("phase", sa.String(8), nullable=False),
        sa.Column("collection_id", sa.Integer, nullable=False),
        sa.Column("blinded", sa.Boolean, nullable=False),
        sa.Column("order_seed", sa.Integer),
        sa.Column("puzzle_order", sa.JSON, nullable=False),
        sa.Column("created_at", _tz(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_eval_sessions"),
        sa.ForeignKeyConstraint(["expert_id"], ["experts.id"], name="fk_eval_sessions_expert_id_experts"),
        sa.ForeignKeyConstraint(["collection_id"], ["collections.id"], name="fk_eval_sessions_collection_id_collections"),
        sa.CheckConstraint("phase IN ('before', 'study', 'after')", name="ck_eval_sessions_phase"),
    )
    op.create_index("ix_eval_sessions_expert_id", "eval_sessions", ["expert_id"])
    op.create_table(
        "answers",
        sa.Column("id", sa.Integer, nullable=False),
        sa.Column("session_id", sa.Integer, nullable=False),
        sa.Column("puzzle_id", sa.String(32), nullable=False),
        sa.Column("moves", sa.JSON, nullable=False),
        sa.Column("first_move_correct", sa.Boolean, nullable=False),
        sa.Column("line_correct", sa.Boolean),
        sa.Column("seconds", sa.Float),
        sa.Column("confidence", sa.Integer),
        sa.Column("comment", sa.Text),
        sa.Column("entered_via", sa.String(16)),
        sa.Column("entered_at", _tz(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_answers"),
        sa.ForeignKeyConstraint(["session_id"], ["eval_sessions.id"], name="fk_answers_session_id_eval_sessions"),
        sa.ForeignKeyConstraint(["puzzle_id"], ["puzzles.id"], name="fk_answers_puzzle_id_puzzles"),
        sa.UniqueConstraint("session_id", "puzzle_id", name="uq_answers_session_puzzle"),
        sa.CheckConstraint("confidence IS NULL OR (confidence >= 1 AND confidence <= 5)", name="ck_answers_confidence"),
        sa.CheckConstraint("seconds IS NULL OR seconds >= 0", name="ck_answers_seconds"),
    )
    op.create_index("ix_answers_session_id", "answers", ["session_id"])


def downgrade() -> None:
    op.drop_index("ix_answers_session_id", table_name="answers")
    op.drop_table("answers")
    op.drop_index("ix_eval_sessions_expert_id", table_name="eval_sessions")
    op.drop_table("eval_sessions")
    op.drop_table("experts")
    op.drop_table("collection_puzzles")
    op.drop_table("collections")
    op.drop_index("ix_puzzles_concept", table_name="puzzles")
    op.drop_index("ix_puzzles_network_sha256", table_name="puzzles")
    op.drop_table("puzzles")
