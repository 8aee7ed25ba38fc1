"""forums: bindings, secretariats, admins, people, case threads, co-authors, reminders

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23 16:20:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('forum_bindings',
    sa.Column('forum_id', sa.String(length=64), nullable=False),
    sa.Column('team_id', sa.String(length=200), nullable=False),
    sa.Column('channel_id', sa.String(length=200), nullable=False),
    sa.Column('bound_by', sa.String(length=128), nullable=False),
    sa.Column('bound_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('forum_id')
    )
    op.create_index('ix_forum_bindings_channel_id', 'forum_bindings', ['channel_id'], unique=False)
    op.create_table('forum_members',
    sa.Column('forum_id', sa.String(length=64), nullable=False),
    sa.Column('user_id', sa.String(length=128), nullable=False),
    sa.Column('added_by', sa.String(length=128), nullable=False),
    sa.Column('added_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('forum_id', 'user_id')
    )
    op.create_table('bot_admins',
    sa.Column('user_id', sa.String(length=128), nullable=False),
    sa.Column('added_by', sa.String(length=128), nullable=False),
    sa.Column('added_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('user_id')
    )
    op.create_table('people',
    sa.Column('user_id', sa.String(length=128), nullable=False),
    sa.Column('mri', sa.String(length=200), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('upn', sa.String(length=300), nullable=False),
    sa.Column('tenant_id', sa.String(length=64), nullable=False),
    sa.Column('service_url', sa.String(length=2048), nullable=False),
    sa.Column('conversation_id', sa.String(length=300), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('user_id')
    )
    op.create_table('case_threads',
    sa.Column('case_id', sa.Integer(), nullable=False),
    sa.Column('forum_id', sa.String(length=64), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('parent_key', sa.String(length=300), nullable=False),
    sa.Column('team_id', sa.String(length=200), nullable=False),
    sa.Column('channel_id', sa.String(length=200), nullable=False),
    sa.Column('service_url', sa.String(length=2048), nullable=False),
    sa.Column('tenant_id', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('case_id', 'forum_id')
    )
    op.create_index('ix_case_threads_forum_state', 'case_threads', ['forum_id', 'state'], unique=False)
    op.create_table('case_participants',
    sa.Column('case_id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.String(length=128), nullable=False),
    sa.Column('role', sa.String(length=16), nullable=False),
    sa.Column('added_by', sa.String(length=128), nullable=False),
    sa.Column('added_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('case_id', 'user_id')
    )
    op.create_index('ix_case_participants_user_id', 'case_participants', ['user_id'], unique=False)
    op.create_table('reminders',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('case_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('due_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('sent_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('sent_by', sa.String(length=200), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('ix_reminders_case_id', 'reminders', ['case_id'], unique=False)
    op.create_index('ix_reminders_state_due', 'reminders', ['state', 'due_at'], unique=False)
    op.add_column('teams', sa.Column('bot_id', sa.String(length=200), nullable=True))
    # Cases submitted before forums existed: they are with the forum of their route.
    op.execute("UPDATE cases SET phase = 'psg' WHERE phase = 'indsendt' AND route = 'psg'")
    op.execute("UPDATE cases SET phase = 'samarbejdsforum' WHERE phase = 'indsendt'")


def downgrade() -> None:
    op.execute("UPDATE cases SET phase = 'indsendt' WHERE phase IN ('psg', 'samarbejdsforum')")
    with op.batch_alter_table('teams', schema=None) as batch_op:
        batch_op.drop_column('bot_id')
    op.drop_index('ix_reminders_state_due', table_name='reminders')
    op.drop_index('ix_reminders_case_id', table_name='reminders')
    op.drop_table('reminders')
    op.drop_index('ix_case_participants_user_id', table_name='case_participants')
    op.drop_table('case_participants')
    op.drop_index('ix_case_threads_forum_state', table_name='case_threads')
    op.drop_table('case_threads')
    op.drop_table('people')
    op.drop_table('bot_admins')
    op.drop_table('forum_members')
    op.drop_index('ix_forum_bindings_channel_id', table_name='forum_bindings')
    op.drop_table('forum_bindings')
