"""outbox: queued Bot Connector calls and the shared rate-limit log

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23 15:00:00.000000
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('outbox',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('kind', sa.String(length=20), nullable=False),
    sa.Column('dedup_key', sa.String(length=300), nullable=False),
    sa.Column('thread_key', sa.String(length=300), nullable=False),
    sa.Column('tenant_id', sa.String(length=64), nullable=False),
    sa.Column('coalesce_key', sa.String(length=700), nullable=True),
    sa.Column('parent_key', sa.String(length=300), nullable=True),
    sa.Column('target', sa.Text(), nullable=False),
    sa.Column('payload', sa.Text(), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('due_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('claimed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('lease_until', sa.DateTime(timezone=True), nullable=True),
    sa.Column('worker_id', sa.String(length=200), nullable=True),
    sa.Column('sending_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.Column('result', sa.Text(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('dedup_key')
    )
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.create_index('ix_outbox_coalesce', ['coalesce_key', 'state'], unique=False)
        batch_op.create_index('ix_outbox_state_due', ['state', 'due_at'], unique=False)
        batch_op.create_index('ix_outbox_thread_state_id', ['thread_key', 'state', 'id'], unique=False)

    op.create_table('outbox_sends',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('bucket', sa.String(length=300), nullable=False),
    sa.Column('at_us', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('outbox_sends', schema=None) as batch_op:
        batch_op.create_index('ix_outbox_sends_bucket_at', ['bucket', 'at_us'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('outbox_sends', schema=None) as batch_op:
        batch_op.drop_index('ix_outbox_sends_bucket_at')

    op.drop_table('outbox_sends')
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.drop_index('ix_outbox_thread_state_id')
        batch_op.drop_index('ix_outbox_state_due')
        batch_op.drop_index('ix_outbox_coalesce')

    op.drop_table('outbox')
