"""Alembic migration environment for the plans store (run by ``repository.migrate`` at start-up)."""
