"""puzzles.filters: the trivial-puzzle filters a mined puzzle passed, and its numbers

Revision ID: 0003_puzzle_filters
Revises: 0002_puzzles
Create Date: 2026-11-29
"""

import sqlalchemy as sa
from alembic import op

revision = "0003_puzzle_filters"
down_revision = "0002_puzzles"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("puzzles") as batch:
        batch.add_column(sa.Column("filters", sa.JSON))


def downgrade() -> None:
    with op.batch_alter_table("puzzles") as batch:
        batch.drop_column("filters")
