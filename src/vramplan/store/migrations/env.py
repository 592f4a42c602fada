"""Alembic environment: always runs online, on the connection ``repository.migrate`` hands over.

There is no alembic.ini: the store builds the Alembic Config in code so a pip-installed vramplan can
migrate without any file outside the package.
"""

from __future__ import annotations

from alembic import context

from vramplan.store.tables import Base

config = context.config
connection = config.attributes.get("connection")
if connection is None:  # pragma: no cover - only when someone runs the alembic CLI by hand
    raise RuntimeError("run migrations through vramplan.store.repository.migrate(engine)")

context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=connection.dialect.name == "sqlite",
)
with context.begin_transaction():
    context.run_migrations()
