"""artifact sizes over 2 GiB: artifacts.bytes becomes a 64-bit integer

Revision ID: 0008_bigbytes
Revises: 0007_scale
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008_bigbytes"
down_revision: str | None = "0007_scale"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # PostgreSQL's INTEGER is 32-bit: a checkpoint over 2 GiB could not be recorded there.
    # SQLite's INTEGER already holds 64 bits; batch mode rebuilds its table to the same effect.
    with op.batch_alter_table("artifacts") as batch:
        batch.alter_column(
            "bytes", existing_type=sa.Integer(), type_=sa.BigInteger(), existing_nullable=False
        )


def downgrade() -> None:
    with op.batch_alter_table("artifacts") as batch:
        batch.alter_column(
            "bytes", existing_type=sa.BigInteger(), type_=sa.Integer(), existing_nullable=False
        )
