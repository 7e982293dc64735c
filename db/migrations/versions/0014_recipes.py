"""recipes: a team's own training code registered on the server (issue 19, script runs); and
sweeps.dataset_id nullable, since a sweep over a recipe may use no Seedlab dataset.

Revision ID: 0014_recipes
Revises: 0013_api_tokens
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014_recipes"
down_revision: str | None = "0013_api_tokens"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "recipes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("path", sa.String(1000), nullable=False),
        sa.Column("entry", sa.String(500), nullable=False),
        sa.Column("python", sa.String(1000), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("owner", sa.String(100), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_recipes")),
        sa.UniqueConstraint("name", name=op.f("uq_recipes_name")),
    )
    with op.batch_alter_table("sweeps") as batch:
        batch.alter_column("dataset_id", existing_type=sa.Integer(), nullable=True)


def downgrade() -> None:
    op.execute("DELETE FROM sweeps WHERE dataset_id IS NULL")
    with op.batch_alter_table("sweeps") as batch:
        batch.alter_column("dataset_id", existing_type=sa.Integer(), nullable=False)
    op.drop_table("recipes")
