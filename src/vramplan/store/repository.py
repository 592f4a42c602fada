"""Save, fetch, list and delete plans: the only module that writes SQL.

The API (one session per request) and the CLI (`vramplan plans ...`) both call these functions with
keyword-only arguments. Database failures become :class:`StoreUnavailableError` here, at one
boundary, so no SQLAlchemy or driver exception reaches a route or a command.

SQLite is the default (a file in the user's data directory, WAL journal, ``synchronous=FULL`` so a
commit that returned survives a crash of the process or the machine); PostgreSQL is used when the
URL points at one. The schema comes from the Alembic migrations, applied by :func:`migrate`.
"""

from __future__ import annotations

import os
import secrets
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, delete, event, func, select
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import NullPool

# Defined in vramplan.errors with the rest of the tree; re-exported here because callers (and the
# store tests) have always imported them from the repository, the module that raises them.
from vramplan.errors import PlanNotFoundError, StoreUnavailableError
from vramplan.store.tables import PlanRow

ID_ALPHABET = "abcdefghijkmnpqrstuvwxyz23456789"  # no 0/o, 1/l: ids get read aloud and typed
ID_LENGTH = 10  # 32^10 = 1.1e15 ids: collisions are retried, not expected


@dataclass(frozen=True)
class PlanRecord:
    """A saved plan as the interfaces see it: plain data, detached from any session."""

    id: str
    name: str
    kind: str
    scenario: dict[str, Any]
    result: dict[str, Any]
    created_at: datetime


def default_database_url() -> str:
    """``sqlite:///<user data dir>/vramplan/plans.db`` (platformdirs when installed, else XDG)."""
    try:
        from platformdirs import user_data_dir

        folder = Path(user_data_dir("vramplan", appauthor=False))
    except ImportError:
        base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
        folder = Path(base) / "vramplan"
    return f"sqlite:///{folder / 'plans.db'}"


def normalise_url(url: str) -> str:
    """Plain ``postgres://``/``postgresql://`` URLs use psycopg 3 (the ``postgres`` extra)."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def redact(url: str) -> str:
    """The URL with its password replaced, for logs and error messages."""
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # an unparsable URL is reported as such, not echoed
        return "<unparsable database URL>"


class Store:
    """An engine, its session factory and whether the migrations have run on it yet.

    Migrations are retried lazily: a server that starts while its database is down comes up anyway
    (answering 503 for plans) and migrates on the first request after the database returns.
    """

    def __init__(self, url: str | None = None) -> None:
        self.url = normalise_url(url or default_database_url())
        self.engine = _make_engine(self.url)
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)
        self._migrated = False
        self._lock = threading.Lock()

    def ensure_ready(self) -> None:
        """Apply pending migrations once; raise StoreUnavailableError while the database is away."""
        if self._migrated:
            return
        with self._lock:
            if not self._migrated:
                migrate(self.engine)
                self._migrated = True

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session that is closed afterwards; repository functions commit their own writes."""
        self.ensure_ready()
        with _translated(), self.sessions() as s:
            yield s

    def ping(self) -> None:
        """One round trip to the database (health checks)."""
        from sqlalchemy import text

        with _translated(), self.engine.connect() as conn:
            conn.execute(text("SELECT 1"))

    def dispose(self) -> None:
        self.engine.dispose()


def _make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        path = url.split("///", 1)[1] if "///" in url else ""
        if path and path != ":memory:":
            try:
                Path(path).parent.mkdir(parents=True, exist_ok=True)
            except OSError:
                pass  # reported as 503 on first use, with the path
        # NullPool: every session opens the file afresh, so a database that disappears and comes back
        # (a moved file, an unmounted volume) is noticed and recovered without restarting the server.
        engine = create_engine(
            url, poolclass=NullPool, connect_args={"timeout": 10, "check_same_thread": False}
        )

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")  # readers never block the writer
            cur.execute(
                "PRAGMA synchronous=FULL"
            )  # fsync the WAL on every commit: saves survive a crash
            cur.execute("PRAGMA busy_timeout=10000")
            cur.close()

        return engine
    connect_args = {"connect_timeout": 3} if url.startswith("postgresql") else {}
    return create_engine(
        url,
        pool_pre_ping=True,
        pool_size=5,
        max_overflow=10,
        pool_timeout=5,
        connect_args=connect_args,
    )


@contextmanager
def _translated() -> Iterator[None]:
    """SQLAlchemy/driver errors become StoreUnavailableError with a message that says what to check."""
    try:
        yield
    except SQLAlchemyError as exc:
        detail = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0][:300]
        raise StoreUnavailableError(
            f"the plans database is unavailable ({detail}); check that it is running and reachable "
            "(--database-url / DATABASE_URL), then retry"
        ) from None


def migrate(engine: Engine) -> None:
    """Bring the schema to the newest Alembic revision (idempotent; safe on every start)."""
    from alembic import command
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(Path(__file__).with_name("migrations")))
    with _translated(), engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")


def _record(row: PlanRow) -> PlanRecord:
    created = (
        row.created_at if row.created_at.tzinfo else row.created_at.replace(tzinfo=timezone.utc)
    )
    return PlanRecord(
        id=row.id,
        name=row.name,
        kind=row.kind,
        scenario=row.scenario,
        result=row.result,
        created_at=created,
    )


def new_id() -> str:
    return "".join(secrets.choice(ID_ALPHABET) for _ in range(ID_LENGTH))


def save_plan(
    session: Session, *, kind: str, scenario: dict[str, Any], result: dict[str, Any], name: str = ""
) -> PlanRecord:
    """Insert a plan and commit before returning: a returned record is durable."""
    for _ in range(5):
        row = PlanRow(
            id=new_id(),
            name=name,
            kind=kind,
            scenario=scenario,
            result=result,
            created_at=datetime.now(timezone.utc),
        )
        with _translated():
            try:
                session.add(row)
                session.commit()
            except IntegrityError:  # an id collision: draw another
                session.rollback()
                continue
            return _record(row)
    raise StoreUnavailableError("could not allocate a unique plan id after 5 tries; retry")


def get_plan(session: Session, *, plan_id: str) -> PlanRecord:
    with _translated():
        row = session.get(PlanRow, plan_id)
    if row is None:
        raise PlanNotFoundError(
            f"no saved plan with id {plan_id!r}: list them with GET /api/plans or `vramplan plans list`"
        )
    return _record(row)


def list_plans(
    session: Session, *, limit: int = 50, offset: int = 0, kind: str | None = None
) -> tuple[list[PlanRecord], int]:
    """Newest first, one page, and the total count (for paging)."""
    stmt = (
        select(PlanRow).order_by(PlanRow.created_at.desc(), PlanRow.id).limit(limit).offset(offset)
    )
    count = select(func.count()).select_from(PlanRow)
    if kind is not None:
        stmt = stmt.where(PlanRow.kind == kind)
        count = count.where(PlanRow.kind == kind)
    with _translated():
        rows = session.scalars(stmt).all()
        total = session.scalar(count) or 0
    return [_record(r) for r in rows], int(total)


def delete_plan(session: Session, *, plan_id: str) -> None:
    with _translated():
        deleted = session.execute(delete(PlanRow).where(PlanRow.id == plan_id)).rowcount  # type: ignore[attr-defined]
        session.commit()
    if not deleted:
        raise PlanNotFoundError(f"no saved plan with id {plan_id!r}: nothing deleted")
