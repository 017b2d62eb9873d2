"""probe tables: probe runs, their networks, probe results

Revision ID: 0002_probes
Revises: 0001_core
Create Date: 2026-11-26
"""

import sqlalchemy as sa
from alembic import op

revision = "0002_probes"
down_revision = "0001_core"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "probe_runs",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("key", sa.String(64), nullable=False),
        sa.Column("dataset_id", sa.Integer, sa.ForeignKey("datasets.id", name="fk_probe_runs_dataset_id_datasets"), nullable=False),
        sa.Column("seed", sa.Integer, nullable=False),
        sa.Column("settings", sa.JSON, nullable=False),
        sa.Column("versions", sa.JSON, nullable=False),
        sa.Column("results_dir", sa.Text),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True)),
        sa.PrimaryKeyConstraint("id", name="pk_probe_runs"),
        sa.UniqueConstraint("key", name="uq_probe_runs_key"),
    )
    op.create_table(
        "probe_run_networks",
        sa.Column("run_id", sa.Integer,
                  sa.ForeignKey("probe_runs.id", ondelete="CASCADE", name="fk_probe_run_networks_run_id_probe_runs"), nullable=False),
        sa.Column("network_id", sa.Integer, sa.ForeignKey("networks.id", name="fk_probe_run_networks_network_id_networks"), nullable=False),
        sa.Column("position", sa.Integer, nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("label", sa.String(200), nullable=False),
        sa.PrimaryKeyConstraint("run_id", "network_id", name="pk_probe_run_networks"),
    )
    op.create_table(
        "probe_results",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("run_id", sa.Integer,
                  sa.ForeignKey("probe_runs.id", ondelete="CASCADE", name="fk_probe_results_run_id_probe_runs"), nullable=False),
        sa.Column("network_id", sa.Integer, sa.ForeignKey("networks.id", name="fk_probe_results_network_id_networks"), nullable=False),
        sa.Column("tap", sa.String(32), nullable=False),
        sa.Column("concept", sa.String(200), nullable=False),
        sa.Column("concept_id", sa.Integer, sa.ForeignKey("concepts.id", name="fk_probe_results_concept_id_concepts")),
        sa.Column("metric", sa.String(32), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("reason", sa.Text),
        sa.Column("score", sa.Float),
        sa.Column("ci_low", sa.Float),
        sa.Column("ci_high", sa.Float),
        sa.Column("control_input", sa.Float),
        sa.Column("control_random", sa.Float),
        sa.Column("control_shuffled", sa.Float),
        sa.Column("selectivity", sa.Float),
        sa.Column("nonzero", sa.Integer),
        sa.Column("features", sa.Integer),
        sa.Column("alpha", sa.Float),
        sa.Column("intercept", sa.Float),
        sa.Column("vector_path", sa.Text),
        sa.Column("n_train", sa.Integer),
        sa.Column("n_val", sa.Integer),
        sa.Column("n_test", sa.Integer),
        sa.Column("details", sa.JSON),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_probe_results"),
        sa.UniqueConstraint("run_id", "network_id", "tap", "concept", name="uq_probe_results_cell"),
    )
    op.create_index("ix_probe_results_concept", "probe_results", ["concept"])


def downgrade() -> None:
    op.drop_index("ix_probe_results_concept", table_name="probe_results")
    op.drop_table("probe_results")
    op.drop_table("probe_run_networks")
    op.drop_table("probe_runs")
