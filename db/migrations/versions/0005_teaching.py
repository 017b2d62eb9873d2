"""teaching results, stored discovery funnels, and the discovered-concept provenance of mined puzzles

Revision ID: 0005_teaching
Revises: 0003_puzzle_filters, 0004_discovery
Create Date: 2026-11-30
"""

import sqlalchemy as sa
from alembic import op

revision = "0005_teaching"
down_revision = ("0003_puzzle_filters", "0004_discovery")
branch_labels = None
depends_on = None


def _fk(table: str, column: str, target: str, ondelete: str | None = None) -> sa.ForeignKey:
    return sa.ForeignKey(f"{target}.id", ondelete=ondelete, name=f"fk_{table}_{column}_{target}")


def upgrade() -> None:
    op.create_table(
        "teaching_results",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("key", sa.String(64), nullable=False),
        sa.Column("concept_id", sa.Integer, _fk("teaching_results", "concept_id", "discovered_concepts", "CASCADE"), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("teacher_id", sa.Integer, _fk("teaching_results", "teacher_id", "networks"), nullable=False),
        sa.Column("student_id", sa.Integer, _fk("teaching_results", "student_id", "networks")),
        sa.Column("student", sa.Text),
        sa.Column("prototypes_dataset_id", sa.Integer, _fk("teaching_results", "prototypes_dataset_id", "datasets"), nullable=False),
        sa.Column("random_dataset_id", sa.Integer, _fk("teaching_results", "random_dataset_id", "datasets")),
        sa.Column("status", sa.String(24), nullable=False),
        sa.Column("reason", sa.Text),
        sa.Column("prototypes", sa.Integer, nullable=False),
        sa.Column("prototype_roots", sa.JSON, nullable=False),
        sa.Column("difference", sa.Float),
        sa.Column("interval_low", sa.Float),
        sa.Column("interval_high", sa.Float),
        sa.Column("teachable", sa.Boolean),
        sa.Column("result", sa.JSON),
        sa.Column("student_choice", sa.JSON),
        sa.Column("settings", sa.JSON, nullable=False),
        sa.Column("versions", sa.JSON, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_teaching_results"),
        sa.UniqueConstraint("concept_id", "role", "key", name="uq_teaching_results_concept"),
    )
    op.create_table(
        "discovery_funnels",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("run_id", sa.Integer, _fk("discovery_funnels", "run_id", "discovery_runs", "CASCADE"), nullable=False),
        sa.Column("variant", sa.String(16), nullable=False),
        sa.Column("teaching_key", sa.String(64)),
        sa.Column("stages", sa.JSON, nullable=False),
        sa.Column("controls", sa.JSON),
        sa.Column("settings", sa.JSON, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_discovery_funnels"),
    )
    with op.batch_alter_table("puzzles") as batch:
        batch.add_column(sa.Column("discovery", sa.JSON))


def downgrade() -> None:
    with op.batch_alter_table("puzzles") as batch:
        batch.drop_column("discovery")
    op.drop_table("discovery_funnels")
    op.drop_table("teaching_results")
