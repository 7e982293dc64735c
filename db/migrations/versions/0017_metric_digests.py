"""metric_digests: a finished run's series at a fixed resolution, what the charts draw of it

Revision ID: 0017_metric_digests
Revises: 0016_sweep_dataset_version
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0017_metric_digests"
down_revision: str | None = "0016_sweep_dataset_version"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Empty at first: existing runs get theirs the first time a chart reads them.
    op.create_table(
        "metric_digests",
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=250), nullable=False),
        sa.Column("resolution", sa.Integer(), nullable=False),
        sa.Column("last_step", sa.Integer(), nullable=False),
        sa.Column("last_value", sa.Float(), nullable=False),
        sa.Column("min_value", sa.Float(), nullable=False),
        sa.Column("max_value", sa.Float(), nullable=False),
        sa.Column("points", sa.Integer(), nullable=False),
        sa.Column("first_step", sa.Integer(), nullable=False),
        sa.Column("final_step", sa.Integer(), nullable=False),
        sa.Column("step_bytes", sa.LargeBinary(), nullable=False),
        sa.Column("value_bytes", sa.LargeBinary(), nullable=False),
        sa.Column("wall_time_bytes", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(
            ["run_id"],
            ["runs.id"],
            name=op.f("fk_metric_digests_run_id_runs"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("run_id", "key", name=op.f("pk_metric_digests")),
    )


def downgrade() -> None:
    op.drop_table("metric_digests")
