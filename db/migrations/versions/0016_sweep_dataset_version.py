"""sweeps.dataset_version: every trial of a sweep trains on the one dataset version it began on

Existing sweeps take the version their first trial trained on; a sweep without trials yet, the
dataset's latest version (what its next trial would have read). A recipe sweep without a
dataset keeps NULL.

Revision ID: 0016_sweep_dataset_version
Revises: 0015_dataset_versions
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0016_sweep_dataset_version"
down_revision: str | None = "0015_dataset_versions"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("sweeps") as batch:
        batch.add_column(sa.Column("dataset_version", sa.Integer(), nullable=True))
    op.execute(
        """
        UPDATE sweeps SET dataset_version = COALESCE(
            (SELECT r.dataset_version FROM runs r WHERE r.sweep_id = sweeps.id
             ORDER BY r.id LIMIT 1),
            (SELECT MAX(v.number) FROM dataset_versions v WHERE v.dataset_id = sweeps.dataset_id)
        )
        WHERE dataset_id IS NOT NULL
        """
    )


def downgrade() -> None:
    with op.batch_alter_table("sweeps") as batch:
        batch.drop_column("dataset_version")
