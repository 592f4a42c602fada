"""Saved plans: SQLAlchemy tables, Alembic migrations and one repository module.

It lives outside ``service/`` because the CLI (`vramplan plans ...`) saves and lists plans too; both
go through :mod:`vramplan.store.repository`, the only module that writes SQL.
"""
