"""SQLAlchemy rows for saved plans. The schema itself is created by the Alembic migrations."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, DateTime, String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    """Declarative base; ``Base.metadata`` is what the migrations are checked against."""


class PlanRow(Base):
    """One saved scenario with the result it produced, found by a short URL-safe id.

    ``scenario`` is the request body exactly as the client sent it and ``result`` the response it got,
    so a permalink (``/?plan=<id>``) can refill the form and redraw the charts without recomputing.
    """

    __tablename__ = "plans"

    id: Mapped[str] = mapped_column(String(16), primary_key=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    kind: Mapped[str] = mapped_column(String(32), index=True)
    scenario: Mapped[dict[str, Any]] = mapped_column(JSON)
    result: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
