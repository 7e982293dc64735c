"""dataset_versions (immutable versions: base data + one cumulative patch) and
runs.dataset_version; every existing dataset becomes version 1 and its runs point at it

Revision ID: 0015_dataset_versions
Revises: 0014_recipes
"""

import hashlib
import json
from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision: str = "0015_dataset_versions"
down_revision: str | None = "0014_recipes"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

EMPTY_PATCH = {"excluded": [], "labels": {}}


def _digest(base_digest: str, patch: dict) -> str:
    # Frozen copy of db.writes.dataset_versions.version_digest (migrations never import ours).
    canonical = json.dumps(patch, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(f"{base_digest}\n{canonical}".encode()).hexdigest()


def upgrade() -> None:
    op.create_table(
        "dataset_versions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("dataset_id", sa.Integer(), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("parent_number", sa.Integer(), nullable=True),
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("created_by", sa.String(length=100), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("n_rows", sa.Integer(), nullable=False),
        sa.Column("class_counts", sa.JSON(), nullable=False),
        sa.Column("diff", sa.JSON(), nullable=False),
        sa.Column("base_path", sa.String(length=1000), nullable=False),
        sa.Column("patch", sa.JSON(), nullable=False),
        sa.Column("base_schema", sa.JSON(none_as_null=True), nullable=True),
        sa.Column("base_sha256", sa.String(length=64), nullable=True),
        sa.ForeignKeyConstraint(
            ["dataset_id"],
            ["datasets.id"],
            name=op.f("fk_dataset_versions_dataset_id_datasets"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_dataset_versions")),
        sa.UniqueConstraint(
            "dataset_id", "number", name=op.f("uq_dataset_versions_dataset_id_number")
        ),
    )
    op.add_column("runs", sa.Column("dataset_version", sa.Integer(), nullable=True))

    conn = op.get_bind()
    datasets = sa.table(
        "datasets",
        sa.column("id", sa.Integer),
        sa.column("sha256", sa.String),
        sa.column("path", sa.String),
        sa.column("n_rows", sa.Integer),
        sa.column("schema", sa.JSON),
        sa.column("owner", sa.String),
        sa.column("created_at", sa.DateTime),
    )
    versions = sa.table(
        "dataset_versions",
        *(
            sa.column(c)
            for c in ("dataset_id", "number", "parent_number", "digest", "note", "created_by")
        ),
        sa.column("created_at", sa.DateTime),
        sa.column("n_rows", sa.Integer),
        sa.column("class_counts", sa.JSON),
        sa.column("diff", sa.JSON),
        sa.column("base_path", sa.String),
        sa.column("patch", sa.JSON),
    )
    rows = []
    for d in conn.execute(sa.select(datasets)).all():
        schema = d.schema or {}
        counts = schema.get("class_counts") if isinstance(schema, dict) else None
        rows.append(
            {
                "dataset_id": d.id,
                "number": 1,
                "parent_number": None,
                "digest": _digest(d.sha256 or "", EMPTY_PATCH),
                "note": "",
                "created_by": d.owner,
                "created_at": d.created_at or datetime.now(UTC).replace(tzinfo=None),
                "n_rows": d.n_rows,
                "class_counts": counts or {},
                "diff": {"added": d.n_rows, "removed": 0, "relabelled": 0},
                "base_path": d.path,
                "patch": EMPTY_PATCH,
            }
        )
    if rows:
        conn.execute(sa.insert(versions), rows)
    runs = sa.table(
        "runs", sa.column("dataset_id", sa.Integer), sa.column("dataset_version", sa.Integer)
    )
    conn.execute(sa.update(runs).where(runs.c.dataset_id.is_not(None)).values(dataset_version=1))


def downgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("dataset_version")
    op.drop_table("dataset_versions")
