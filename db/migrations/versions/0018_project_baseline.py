"""projects.baseline_run_id: the run a project pins as its baseline

The Runs page shows it at the top and Compare draws it in every chart. No foreign key (runs
already point at projects): deleting the run clears it (db/writes/run_edits.delete_run_row).
Existing projects start with none.

Revision ID: 0018_project_baseline
Revises: 0017_metric_digests
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0018_project_baseline"
down_revision: str | None = "0017_metric_digests"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("projects") as batch:
        batch.add_column(sa.Column("baseline_run_id", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("projects") as batch:
        batch.drop_column("baseline_run_id")
