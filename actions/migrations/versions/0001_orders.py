"""The orders table (as the action server created it before migrations existed).

Revision ID: 0001_orders
"""

import sqlalchemy as sa
from alembic import op

revision = "0001_orders"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A database from before migrations already has this table: keep it and its rows.
    if sa.inspect(op.get_bind()).has_table("orders"):
        return
    op.create_table(
        "orders",
        sa.Column("order_id", sa.String(16), primary_key=True),
        sa.Column("email", sa.String(254), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("placed_on", sa.Date(), nullable=False),
        sa.Column("shipped_on", sa.Date(), nullable=True),
        sa.Column("expected_on", sa.Date(), nullable=True),
        sa.Column("delivered_on", sa.Date(), nullable=True),
        sa.Column("carrier", sa.String(40), nullable=True),
        sa.Column("items", sa.String(500), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("orders")
