"""runs.verdict: baselines, warnings and a one-line summary of a completed run (NULL: none)

Revision ID: 0010_verdict
Revises: 0009_jobs
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010_verdict"
down_revision: str | None = "0009_jobs"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Nullable with no default: runs from before verdicts existed have none, and say so.
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("verdict", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("verdict")
