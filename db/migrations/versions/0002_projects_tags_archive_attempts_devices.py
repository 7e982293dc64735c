"""projects, run tags as rows, archive flag, resume attempts, worker devices

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23 11:05:20.411255
"""

import json
from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision: str = '0002'
down_revision: str | None = '0001'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    projects = op.create_table('projects',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_projects')),
    sa.UniqueConstraint('name', name=op.f('uq_projects_name'))
    )
    # Every existing and future run without a project belongs to "Default" (id 1).
    op.bulk_insert(projects, [{
        'id': 1, 'name': 'Default', 'description': '',
        'created_at': datetime.now(UTC).replace(tzinfo=None),
    }])
    if op.get_bind().dialect.name == 'postgresql':
        # The explicit id bypassed the serial sequence: move it on, or the next project gets 1 too.
        op.execute("SELECT setval(pg_get_serial_sequence('projects', 'id'), 1)")
    run_tags = op.create_table('run_tags',
    sa.Column('run_id', sa.Integer(), nullable=False),
    sa.Column('tag', sa.String(length=100), nullable=False),
    sa.ForeignKeyConstraint(['run_id'], ['runs.id'], name=op.f('fk_run_tags_run_id_runs'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('run_id', 'tag', name=op.f('pk_run_tags'))
    )
    with op.batch_alter_table('run_tags', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_run_tags_tag'), ['tag'], unique=False)

    # Carry tags from the JSON column over to rows before the column goes.
    conn = op.get_bind()
    moved = []
    for run_id, tags in conn.execute(sa.text("SELECT id, tags FROM runs")).all():
        values = json.loads(tags) if isinstance(tags, str) else (tags or [])
        moved += [{'run_id': run_id, 'tag': str(t)[:100]} for t in dict.fromkeys(values)]
    if moved:
        op.bulk_insert(run_tags, moved)

    with op.batch_alter_table('runs', schema=None) as batch_op:
        batch_op.add_column(sa.Column('project_id', sa.Integer(), nullable=False, server_default='1'))
        batch_op.add_column(sa.Column('archived', sa.Boolean(), nullable=False, server_default=sa.false()))
        batch_op.add_column(sa.Column('attempts', sa.Integer(), nullable=False, server_default='0'))
        batch_op.create_index('ix_runs_project_id_archived_created_at', ['project_id', 'archived', 'created_at'], unique=False)
        batch_op.create_foreign_key(batch_op.f('fk_runs_project_id_projects'), 'projects', ['project_id'], ['id'], ondelete='RESTRICT')
        batch_op.drop_column('tags')
    # The server defaults only filled existing rows; the models set the values from now on.
    with op.batch_alter_table('runs', schema=None) as batch_op:
        batch_op.alter_column('project_id', server_default=None)
        batch_op.alter_column('archived', server_default=None)
        batch_op.alter_column('attempts', server_default=None)

    with op.batch_alter_table('workers', schema=None) as batch_op:
        batch_op.add_column(sa.Column('devices', sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('workers', schema=None) as batch_op:
        batch_op.drop_column('devices')

    with op.batch_alter_table('runs', schema=None) as batch_op:
        batch_op.add_column(sa.Column('tags', sa.JSON(), nullable=False, server_default='[]'))
        batch_op.drop_constraint(batch_op.f('fk_runs_project_id_projects'), type_='foreignkey')
        batch_op.drop_index('ix_runs_project_id_archived_created_at')
        batch_op.drop_column('attempts')
        batch_op.drop_column('archived')
        batch_op.drop_column('project_id')

    with op.batch_alter_table('run_tags', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_run_tags_tag'))

    op.drop_table('run_tags')
    op.drop_table('projects')
