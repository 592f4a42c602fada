"""Save, fetch, list and delete plans: the only module that writes SQL.

The API (one session per request) and the CLI (`vramplan plans ...`) both call these functions with
keyword-only arguments. Database failures become :class:`StoreUnavailableError` here, at one
boundary, so no SQLAlchemy or driver exception reaches a route or a command.

SQLite is the default (a file in the user's data directory, WAL journal, ``synchronous=FULL`` so a
commit that returned survives a crash of the process or the machine); PostgreSQL is used when the
URL points at one. The schema comes from the Alembic migrations, applied by :func:`migrate`.
"""

from __future__ import annotations

import logging
import os
import secrets
import shutil
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, delete, event, func, select, update
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import NullPool

# Defined in vramplan.errors with the rest of the tree; re-exported here because callers (and the
# store tests) have always imported them from the repository, the module that raises them.
from vramplan.errors import PlanNotFoundError, StoreUnavailableError
from vramplan.store.tables import HealthProbe, PlanRow

logger = logging.getLogger("vramplan.store")

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
    owner: str | None = None
    result_source: str = "server"


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
        self.sqlite_path = _sqlite_path(self.url)

    def ensure_ready(self) -> None:
        """Apply pending migrations once; raise StoreUnavailableError while the database is away.

        A SQLite file deleted under a running server is noticed here and created afresh, so the
        server recovers without a restart (it used to answer 503 until then).
        """
        if self._migrated and self.sqlite_path and not os.path.exists(self.sqlite_path):
            self._migrated = False
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
        """One round trip to the database."""
        from sqlalchemy import text

        with _translated(), self.engine.connect() as conn:
            conn.execute(text("SELECT 1"))

    def probe(self, min_free_bytes: int = 0) -> None:
        """The health check: schema present, a committed write, and (SQLite) free disk space.

        A missing table (a file replaced under us) resets the migration flag, so the next call
        recreates the schema instead of failing until a restart.
        """
        try:
            self.ensure_ready()
            with _translated(), self.sessions() as s:
                s.execute(select(PlanRow.id).limit(1)).first()
                row = s.get(HealthProbe, 1)
                if row is None:
                    s.add(HealthProbe(id=1, checked_at=datetime.now(timezone.utc)))
                else:
                    row.checked_at = datetime.now(timezone.utc)
                s.commit()
        except StoreUnavailableError:
            self._migrated = False
            raise
        if self.sqlite_path and min_free_bytes:
            folder = os.path.dirname(self.sqlite_path) or "."
            try:
                free = shutil.disk_usage(folder).free
            except OSError:
                free = 0
            if free < min_free_bytes:
                raise StoreUnavailableError(
                    f"the plans database's disk has {free / 2**20:.0f} MiB free (below "
                    f"{min_free_bytes / 2**20:.0f} MiB): free space, then retry"
                )

    def dispose(self) -> None:
        self.engine.dispose()


def _sqlite_path(url: str) -> str | None:
    if url.startswith("sqlite") and "///" in url:
        path = url.split("///", 1)[1].split("?", 1)[0]
        return path if path and path != ":memory:" else None
    return None


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


#: What a client is told about a store failure, by words found in the driver's message. The driver's
#: own text (host, port, file path, SQL) is logged for the operator and never sent to a client.
_FAILURE_KINDS = (
    (("disk", "full", "no space"), "its disk is full"),
    (("no such table", "does not exist", "undefinedtable"), "its schema is missing"),
    (("locked", "busy"), "it is busy"),
    (("malformed", "not a database", "corrupt"), "its file is damaged"),
    (("read-only", "readonly", "permission"), "it cannot be written"),
    (("unable to open",), "its file cannot be opened"),
)


@contextmanager
def _translated() -> Iterator[None]:
    """SQLAlchemy/driver errors become StoreUnavailableError with a message that says what to check."""
    try:
        yield
    except SQLAlchemyError as exc:
        detail = str(getattr(exc, "orig", None) or exc).strip()
        logger.warning("plans store error: %s", detail.splitlines()[0][:500] if detail else exc)
        low = detail.lower()
        why = next(
            (text for words, text in _FAILURE_KINDS if any(w in low for w in words)),
            "it cannot be reached",
        )
        raise StoreUnavailableError(
            f"the plans database is unavailable ({why}); the operator should check that it is "
            "running, reachable and writable (--database-url / DATABASE_URL); retry later"
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
        owner=row.owner,
        result_source=row.result_source or "client",
    )


def new_id() -> str:
    return "".join(secrets.choice(ID_ALPHABET) for _ in range(ID_LENGTH))


def save_plan(
    session: Session,
    *,
    kind: str,
    scenario: dict[str, Any],
    result: dict[str, Any],
    name: str = "",
    owner: str | None = None,
) -> PlanRecord:
    """Insert a plan and commit before returning: a returned record is durable.

    ``result`` must be what this code computed (the API never stores a client's result).
    """
    for _ in range(5):
        row = PlanRow(
            id=new_id(),
            name=name,
            kind=kind,
            scenario=scenario,
            result=result,
            created_at=datetime.now(timezone.utc),
            owner=owner,
            result_source="server",
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


def _owned(stmt: Any, owner: str | None) -> Any:
    """Restrict to one owner's rows; None means no restriction (the CLI, servers without auth)."""
    return stmt if owner is None else stmt.where(PlanRow.owner == owner)


def get_plan(session: Session, *, plan_id: str, owner: str | None = None) -> PlanRecord:
    """The plan, or PlanNotFoundError (also when it belongs to another owner: no existence leak)."""
    with _translated():
        row = session.scalars(_owned(select(PlanRow).where(PlanRow.id == plan_id), owner)).first()
    if row is None:
        raise PlanNotFoundError(
            f"no saved plan with id {plan_id!r}: list them with GET /api/plans or `vramplan plans list`"
        )
    return _record(row)


def list_plans(
    session: Session,
    *,
    limit: int = 50,
    offset: int = 0,
    kind: str | None = None,
    owner: str | None = None,
) -> tuple[list[PlanRecord], int]:
    """Newest first, one page, and the total count (for paging); ``owner`` restricts to theirs."""
    stmt = _owned(
        select(PlanRow).order_by(PlanRow.created_at.desc(), PlanRow.id).limit(limit).offset(offset),
        owner,
    )
    count = _owned(select(func.count()).select_from(PlanRow), owner)
    if kind is not None:
        stmt = stmt.where(PlanRow.kind == kind)
        count = count.where(PlanRow.kind == kind)
    with _translated():
        rows = session.scalars(stmt).all()
        total = session.scalar(count) or 0
    return [_record(r) for r in rows], int(total)


def count_owned(session: Session, *, owner: str | None) -> int:
    """Plans saved by ``owner`` (None: by clients of a server without auth), for quotas."""
    cond = PlanRow.owner.is_(None) if owner is None else PlanRow.owner == owner
    with _translated():
        return int(session.scalar(select(func.count()).select_from(PlanRow).where(cond)) or 0)


def replace_result(session: Session, *, plan_id: str, result: dict[str, Any]) -> None:
    """Store a result computed here in place of a client's (rows saved before results were)."""
    with _translated():
        session.execute(
            update(PlanRow)
            .where(PlanRow.id == plan_id)
            .values(result=result, result_source="server")
        )
        session.commit()


def delete_plan(session: Session, *, plan_id: str, owner: str | None = None) -> None:
    with _translated():
        stmt = _owned(delete(PlanRow).where(PlanRow.id == plan_id), owner)
        deleted = session.execute(stmt).rowcount  # type: ignore[attr-defined]
        session.commit()
    if not deleted:
        raise PlanNotFoundError(f"no saved plan with id {plan_id!r}: nothing deleted")
