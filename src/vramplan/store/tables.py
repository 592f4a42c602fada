"""SQLAlchemy rows for saved plans. The schema itself is created by the Alembic migrations."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, DateTime, Integer, String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    """Declarative base; ``Base.metadata`` is what the migrations are checked against."""


class PlanRow(Base):
    """One saved scenario with the result it produced, found by a short URL-safe id.

    ``scenario`` is the request body exactly as the client sent it and ``result`` the response the
    server computed for it (never what a client sent), so a permalink (``/?plan=<id>``) can refill
    the form and redraw the charts without recomputing.
    """

    __tablename__ = "plans"

    id: Mapped[str] = mapped_column(String(16), primary_key=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    kind: Mapped[str] = mapped_column(String(32), index=True)
    scenario: Mapped[dict[str, Any]] = mapped_column(JSON)
    result: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    #: The token name that saved it (``--auth tokens``); None on servers without auth.
    owner: Mapped[str | None] = mapped_column(String(64), nullable=True, default=None)
    #: "server" when ``result`` was computed here; "client" for rows saved before that (recomputed).
    result_source: Mapped[str] = mapped_column(String(16), default="client")


class HealthProbe(Base):
    """One row rewritten by every /healthz: proves the store accepts a committed write."""

    __tablename__ = "health_probe"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    checked_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
