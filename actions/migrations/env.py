"""Alembic's entry point: runs the migrations on the connection ``actions.db.migrate`` hands it.

Run by the action server at start-up; an operator can also run ``python -m actions.catalog_db
migrate``. New migrations go in ``versions/``, one file each, revision ids in order (0003_...).
"""

from alembic import context

connection = context.config.attributes.get("connection")
if connection is None:
    raise SystemExit("run migrations through actions.db.migrate (python -m actions.catalog_db migrate)")
context.configure(connection=connection, target_metadata=None, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
