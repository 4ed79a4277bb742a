"""The catalog: one row a product (knowledge/catalog.csv's columns) and where it was loaded from.

Revision ID: 0002_products
"""

import sqlalchemy as sa
from alembic import op

revision = "0002_products"
down_revision = "0001_orders"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "products",
        sa.Column("sku", sa.String(16), primary_key=True),
        sa.Column("name", sa.String(120), nullable=False),
        sa.Column("brand", sa.String(60), nullable=False),
        sa.Column("category", sa.String(40), nullable=False, index=True),
        sa.Column("price_gbp", sa.Numeric(10, 2), nullable=False),
        sa.Column("price_eur", sa.Numeric(10, 2), nullable=False),
        sa.Column("weight_g", sa.Integer(), nullable=True),
        sa.Column("capacity_persons", sa.Integer(), nullable=True),
        sa.Column("temp_comfort_c", sa.Float(), nullable=True),
        sa.Column("waterproof_mm", sa.Integer(), nullable=True),
        sa.Column("volume_l", sa.Float(), nullable=True),
        sa.Column("in_stock", sa.Boolean(), nullable=False),
        sa.Column("url", sa.String(300), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
    )
    op.create_table(
        "catalog_loads",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("source", sa.String(300), nullable=False),
        sa.Column("checksum", sa.String(64), nullable=False),
        sa.Column("products", sa.Integer(), nullable=False),
        sa.Column("loaded_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("catalog_loads")
    op.drop_table("products")
