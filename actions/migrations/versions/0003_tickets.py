"""Tickets: a visitor's request for a person (action_open_ticket), until the team closes it.

Revision ID: 0003_tickets
"""

import sqlalchemy as sa
from alembic import op

revision = "0003_tickets"
down_revision = "0002_products"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "tickets",
        sa.Column("id", sa.Integer(), primary_key=True),
        # "T-" and six digits, what the visitor is told and the team quotes (review close T-123456)
        sa.Column("number", sa.String(8), nullable=False, unique=True),
        # the conversation (Rasa's sender id): review forget deletes its tickets with it
        sa.Column("sender_id", sa.String(255), nullable=False, index=True),
        sa.Column("channel", sa.String(40), nullable=False),
        # the visitor's message that asked for a person
        sa.Column("reason", sa.Text(), nullable=False),
        # the email the visitor gave for the answer; NULL: they declined
        sa.Column("contact", sa.String(254), nullable=True),
        # the conversation's last turns, personal data masked (ridgeline.privacy)
        sa.Column("turns", sa.Text(), nullable=False),
        sa.Column("status", sa.String(8), nullable=False, index=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("status IN ('open', 'closed')", name="ck_tickets_status"),
    )


def downgrade() -> None:
    op.drop_table("tickets")
