"""Issue 13 item 9, the store: /healthz tells the truth (write probe, disk, schema), a deleted SQLite
file is recreated without a restart, and store errors never show the database's host or port."""

from __future__ import annotations

import sqlite3

import httpx

from ._attack import attack, free_port

PLAN = {"kind": "estimate", "scenario": {"model": "opt-125m"}}


def test_deleted_sqlite_file_recovers_without_restart(spawn, tmp_path) -> None:
    srv = spawn(folder=tmp_path)
    assert httpx.post(f"{srv.url}/api/plans", json=PLAN).status_code == 201
    for suffix in ("", "-wal", "-shm"):
        (tmp_path / f"plans.db{suffix}").unlink(missing_ok=True)
    out = attack(srv, "SQLite file deleted", "POST", "/api/plans", json=PLAN)
    assert out.status == 201, out.text
    assert httpx.get(f"{srv.url}/healthz").status_code == 200


def test_missing_table_is_not_ok(spawn, tmp_path) -> None:
    srv = spawn(folder=tmp_path)
    with sqlite3.connect(tmp_path / "plans.db") as db:
        db.execute("DROP TABLE plans")
    out = attack(srv, "plans table dropped: /healthz", "GET", "/healthz")
    assert out.status == 503 and out.json()["database"] == "unavailable"


def test_corrupt_file_is_not_ok(spawn, tmp_path) -> None:
    srv = spawn(folder=tmp_path)
    for suffix in ("-wal", "-shm"):
        (tmp_path / f"plans.db{suffix}").unlink(missing_ok=True)
    (tmp_path / "plans.db").write_bytes(b"this is not a database" * 1000)
    out = attack(srv, "corrupt SQLite file: /healthz", "GET", "/healthz")
    assert out.status == 503
    assert str(tmp_path) not in out.text


def test_full_disk_is_not_ok(spawn, tmp_path) -> None:
    # The disk check compares free space with a floor; a floor above any disk is a full disk.
    srv = spawn(folder=tmp_path, VRAMPLAN_MIN_FREE_DISK_BYTES=str(1 << 62))
    out = attack(srv, "disk full: /healthz", "GET", "/healthz")
    assert out.status == 503 and "free" in out.json()["database_message"]


def test_store_errors_hide_host_and_port(spawn, tmp_path) -> None:
    port = free_port()
    srv = spawn(
        folder=tmp_path,
        VRAMPLAN_DATABASE_URL=f"postgresql://vramplan:s3cret@127.0.0.1:{port}/plans",
    )
    for out in (
        attack(srv, "PostgreSQL down: save", "POST", "/api/plans", json=PLAN),
        attack(srv, "PostgreSQL down: /healthz", "GET", "/healthz"),
    ):
        assert out.status == 503
        assert (
            str(port) not in out.text and "127.0.0.1" not in out.text and "s3cret" not in out.text
        )
