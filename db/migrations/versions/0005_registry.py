"""model registry: named, versioned models from completed runs, with stages

Revision ID: 0005_registry
Revises: 0004_compare
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005_registry"
down_revision: str | None = "0004_compare"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ONE_PRODUCTION = sa.text("stage = 'production'")


def upgrade() -> None:
    op.create_table(
        "model_versions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("stage", sa.String(length=20), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("stage_changed_at", sa.DateTime(), nullable=False),
        sa.CheckConstraint(
            "stage IN ('none', 'staging', 'production', 'archived')",
            name=op.f("ck_model_versions_stage"),
        ),
        sa.ForeignKeyConstraint(
            ["run_id"],
            ["runs.id"],
            name=op.f("fk_model_versions_run_id_runs"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_model_versions")),
        sa.UniqueConstraint("name", "version", name=op.f("uq_model_versions_name_version")),
    )
    op.create_index("ix_model_versions_run_id", "model_versions", ["run_id"], unique=False)
    # At most one production version per name, whoever writes: a partial unique index.
    op.create_index(
        "ux_model_versions_one_production",
        "model_versions",
        ["name"],
        unique=True,
        sqlite_where=ONE_PRODUCTION,
        postgresql_where=ONE_PRODUCTION,
    )


def downgrade() -> None:
    op.drop_index("ux_model_versions_one_production", table_name="model_versions")
    op.drop_index("ix_model_versions_run_id", table_name="model_versions")
    op.drop_table("model_versions")
