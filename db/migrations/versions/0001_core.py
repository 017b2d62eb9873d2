"""core tables: networks, datasets, concepts

Revision ID: 0001_core
Revises:
Create Date: 2026-11-26
"""

import sqlalchemy as sa
from alembic import op

revision = "0001_core"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "networks",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("architecture", sa.Text),
        sa.Column("blocks", sa.Integer),
        sa.Column("filters", sa.Integer),
        sa.Column("run", sa.String(200)),
        sa.Column("step", sa.Integer),
        sa.Column("path", sa.Text),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_networks"),
        sa.UniqueConstraint("sha256", name="uq_networks_sha256"),
    )
    op.create_index("ix_networks_run", "networks", ["run"])
    op.create_table(
        "datasets",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("path", sa.Text),
        sa.Column("source", sa.String(32)),
        sa.Column("positions", sa.Integer),
        sa.Column("manifest", sa.JSON),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_datasets"),
        sa.UniqueConstraint("sha256", name="uq_datasets_sha256"),
    )
    op.create_table(
        "concepts",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("definition", sa.Text),
        sa.Column("type", sa.String(32)),
        sa.Column("frame", sa.String(32)),
        sa.Column("family", sa.String(64)),
        sa.PrimaryKeyConstraint("id", name="pk_concepts"),
        sa.UniqueConstraint("name", name="uq_concepts_name"),
    )


def downgrade() -> None:
    op.drop_table("concepts")
    op.drop_table("datasets")
    op.drop_index("ix_networks_run", table_name="networks")
    op.drop_table("networks")
