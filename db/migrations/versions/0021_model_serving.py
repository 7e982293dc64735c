"""served_models (a registered name answering predictions over HTTP behind its own token, kept
as a hash) and serve_requests (the request log of served models, pruned per model)

New tables only: an upgrade of a database holding data changes nothing that is there.

Revision ID: 0021_model_serving
Revises: 0020_alerts
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0021_model_serving"
down_revision: str | None = "0020_alerts"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "served_models",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("token_prefix", sa.String(length=20), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("created_by", sa.String(length=100), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("token_created_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_served_models")),
        sa.UniqueConstraint("name", name=op.f("uq_served_models_name")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_served_models_token_hash")),
    )
    op.create_table(
        "serve_requests",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("model", sa.String(length=200), nullable=False),
        sa.Column("version", sa.Integer(), nullable=True),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.Column("status", sa.Integer(), nullable=False),
        sa.Column("latency_ms", sa.Float(), nullable=False),
        sa.Column("items", sa.Integer(), nullable=False),
        sa.Column("client", sa.String(length=100), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_serve_requests")),
    )
    op.create_index("ix_serve_requests_model_id", "serve_requests", ["model", "id"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_serve_requests_model_id", table_name="serve_requests")
    op.drop_table("serve_requests")
    op.drop_table("served_models")
