"""The repository on SQLite (always) and PostgreSQL (when the binaries are installed)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

pytest.importorskip("sqlalchemy", reason="the store needs the web extra")

from vramplan.store import repository
from vramplan.store.repository import PlanNotFoundError, Store, StoreUnavailableError


def _roundtrip(store: Store) -> None:
    with store.session() as s:
        a = repository.save_plan(
            s, kind="estimate", name="a", scenario={"model": "x"}, result={"total_bytes": 1}
        )
        b = repository.save_plan(s, kind="simulate", name="b", scenario={}, result={"n": [1, 2]})
    with store.session() as s:
        assert repository.get_plan(s, plan_id=a.id) == a
        items, total = repository.list_plans(s)
        assert total >= 2 and [r.id for r in items][:2] == [b.id, a.id], "newest first"
        assert [r.id for r in repository.list_plans(s, kind="simulate")[0]] == [b.id]
        repository.delete_plan(s, plan_id=a.id)
        with pytest.raises(PlanNotFoundError, match="no saved plan"):
            repository.get_plan(s, plan_id=a.id)
        with pytest.raises(PlanNotFoundError, match="nothing deleted"):
            repository.delete_plan(s, plan_id=a.id)


def test_sqlite_roundtrip_wal_and_full_sync(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'sub' / 'plans.db'}")
    _roundtrip(store)
    store.ensure_ready()
    store._migrated = False
    store.ensure_ready()  # migrations are idempotent
    with store.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 2  # FULL
        assert conn.exec_driver_sql("SELECT version_num FROM alembic_version").scalar() == "0002"
    assert (
        sqlite3.connect(tmp_path / "sub" / "plans.db")
        .execute("select count(*) from plans")
        .fetchone()[0]
        == 1
    )


def test_unreachable_sqlite_is_store_unavailable(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    store = Store(f"sqlite:///{blocker / 'plans.db'}")
    with pytest.raises(StoreUnavailableError, match="plans database is unavailable"):
        with store.session():
            pass


def test_default_url_is_in_user_data_dir(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    assert repository.default_database_url().endswith("plans.db")
    assert repository.normalise_url("postgresql://u:p@h/d") == "postgresql+psycopg://u:p@h/d"
    assert "secret" not in repository.redact("postgresql://u:secret@h/d")


def test_postgres_roundtrip_outage_and_recovery(postgres) -> None:
    store = Store(postgres.url)
    _roundtrip(store)
    postgres.stop()
    try:
        with pytest.raises(StoreUnavailableError, match="plans database is unavailable"):
            with store.session() as s:
                repository.list_plans(s)
    finally:
        postgres.start()
    with store.session() as s:
        assert repository.list_plans(s)[1] >= 1
    store.dispose()


def test_cli_plans_use_the_same_repository(tmp_path: Path) -> None:
    import json

    from typer.testing import CliRunner

    from vramplan.cli import app

    url = f"sqlite:///{tmp_path / 'plans.db'}"
    scenario = tmp_path / "s.json"
    scenario.write_text(json.dumps({"model": "opt-125m", "context": 2048}))
    runner = CliRunner()
    saved = runner.invoke(
        app, ["plans", "save", str(scenario), "--name", "tiny", "--database-url", url]
    )
    assert saved.exit_code == 0, saved.output
    plan_id = saved.output.strip()
    shown = json.loads(runner.invoke(app, ["plans", "show", plan_id, "--database-url", url]).output)
    from vramplan.estimator import estimate

    assert shown["result"] == json.loads(json.dumps(estimate("opt-125m", context=2048).to_dict()))
    listed = json.loads(
        runner.invoke(app, ["plans", "list", "--json", "--database-url", url]).output
    )
    assert [p["id"] for p in listed] == [plan_id]
    assert runner.invoke(app, ["plans", "delete", plan_id, "--database-url", url]).exit_code == 0
    gone = runner.invoke(app, ["plans", "show", plan_id, "--database-url", url])
    assert gone.exit_code != 0
