"""run list at scale: summary metric by (key, value), for sort and threshold filters

Revision ID: 0004_compare
Revises: 0003
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0004_compare"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Sorting the run list by one metric, or filtering it by a threshold on one metric, reads
    # run_summaries rows of a single key: (key, last_value) makes that a range scan, where the
    # primary key (run_id, key) would need one lookup per run.
    op.create_index(
        "ix_run_summaries_key_last_value",
        "run_summaries",
        ["key", "last_value", "run_id"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index("ix_run_summaries_key_last_value", table_name="run_summaries")
