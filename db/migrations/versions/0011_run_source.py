"""runs.source (builtin | recipe | sdk) and runs.dataset_id nullable: a run logged by a team's
own code through the SDK may train on no Seedlab dataset.

Revision ID: 0011_run_source
Revises: 0010_verdict
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011_run_source"
down_revision: str | None = "0010_verdict"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Every run before this one was trained by Seedlab's own pipeline.
    with op.batch_alter_table("runs") as batch:
        batch.add_column(
            sa.Column("source", sa.String(20), nullable=False, server_default="builtin")
        )
        batch.alter_column("dataset_id", existing_type=sa.Integer(), nullable=True)


def downgrade() -> None:
    # A dataset-less run cannot go back to a schema that requires a dataset.
    op.execute("DELETE FROM runs WHERE dataset_id IS NULL")
    with op.batch_alter_table("runs") as batch:
        batch.alter_column("dataset_id", existing_type=sa.Integer(), nullable=False)
        batch.drop_column("source")
