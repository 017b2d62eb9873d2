"""discovery tables: erasers, discovery runs, discovered concepts, novelty scores, amplification results

Revision ID: 0004_discovery
Revises: 0002_probes
Create Date: 2026-11-29
"""

import sqlalchemy as sa
from alembic import op

revision = "0004_discovery"
down_revision = "0002_probes"
branch_labels = None
depends_on = None


def _fk(table: str, column: str, target: str, ondelete: str | None = None) -> sa.ForeignKey:
    return sa.ForeignKey(f"{target}.id", ondelete=ondelete, name=f"fk_{table}_{column}_{target}")


def upgrade() -> None:
    op.create_table(
        "erasers",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("network_id", sa.Integer, _fk("erasers", "network_id", "networks"), nullable=False),
        sa.Column("dataset_id", sa.Integer, _fk("erasers", "dataset_id", "datasets"), nullable=False),
        sa.Column("tap", sa.String(32), nullable=False),
        sa.Column("pool", sa.String(16), nullable=False),
        sa.Column("concepts", sa.JSON, nullable=False),
        sa.Column("rank", sa.Integer, nullable=False),
        sa.Column("path", sa.Text, nullable=False),
        sa.Column("report", sa.JSON),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_erasers"),
        sa.UniqueConstraint("sha256", name="uq_erasers_sha256"),
    )
    op.create_table(
        "discovery_runs",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("key", sa.String(64), nullable=False),
        sa.Column("network_id", sa.Integer, _fk("discovery_runs", "network_id", "networks"), nullable=False),
        sa.Column("dataset_id", sa.Integer, _fk("discovery_runs", "dataset_id", "datasets"), nullable=False),
        sa.Column("eraser_id", sa.Integer, _fk("discovery_runs", "eraser_id", "erasers")),
        sa.Column("tap", sa.String(32), nullable=False),
        sa.Column("pool", sa.String(16), nullable=False),
        sa.Column("activations", sa.Text, nullable=False),
        sa.Column("results_dir", sa.Text, nullable=False),
        sa.Column("seed", sa.Integer, nullable=False),
        sa.Column("settings", sa.JSON, nullable=False),
        sa.Column("versions", sa.JSON, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True)),
        sa.PrimaryKeyConstraint("id", name="pk_discovery_runs"),
        sa.UniqueConstraint("key", name="uq_discovery_runs_key"),
    )
    op.create_table(
        "discovered_concepts",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("run_id", sa.Integer, _fk("discovered_concepts", "run_id", "discovery_runs", "CASCADE"), nullable=False),
        sa.Column("root", sa.String(200), nullable=False),
        sa.Column("variant", sa.String(16), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("reason", sa.Text),
        sa.Column("margin", sa.Float, nullable=False),
        sa.Column("solver", sa.String(32), nullable=False),
        sa.Column("constraints", sa.Integer),
        sa.Column("nonzero", sa.Integer),
        sa.Column("features", sa.Integer),
        sa.Column("heldout_same_root", sa.Float),
        sa.Column("heldout_other_roots", sa.Float),
        sa.Column("swapped_control", sa.Float),
        sa.Column("vector_path", sa.Text),
        sa.Column("vector_sha256", sa.String(64)),
        sa.Column("details", sa.JSON),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_discovered_concepts"),
        sa.UniqueConstraint("run_id", "root", "variant", name="uq_discovered_concepts_root"),
    )
    op.create_table(
        "novelty_scores",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("concept_id", sa.Integer, _fk("novelty_scores", "concept_id", "discovered_concepts", "CASCADE"), nullable=False),
        sa.Column("human_dataset_id", sa.Integer, _fk("novelty_scores", "human_dataset_id", "datasets"), nullable=False),
        sa.Column("machine_dataset_id", sa.Integer, _fk("novelty_scores", "machine_dataset_id", "datasets"), nullable=False),
        sa.Column("novel", sa.Boolean, nullable=False),
        sa.Column("scores", sa.JSON, nullable=False),
        sa.Column("human_rank", sa.Integer),
        sa.Column("machine_rank", sa.Integer),
        sa.Column("control", sa.JSON),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_novelty_scores"),
    )
    op.create_table(
        "amplification_results",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("concept_id", sa.Integer, _fk("amplification_results", "concept_id", "discovered_concepts", "CASCADE"), nullable=False),
        sa.Column("positions", sa.String(16), nullable=False),
        sa.Column("n_positions", sa.Integer, nullable=False),
        sa.Column("alphas", sa.JSON, nullable=False),
        sa.Column("effect", sa.Float),
        sa.Column("control_effect", sa.Float),
        sa.Column("above_control", sa.Boolean),
        sa.Column("curves", sa.JSON, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_amplification_results"),
    )


def downgrade() -> None:
    for table in ("amplification_results", "novelty_scores", "discovered_concepts", "discovery_runs", "erasers"):
        op.drop_table(table)
