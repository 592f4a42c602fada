"""A throw-away PostgreSQL server for store tests (skipped with a reason when the binaries are missing).

CI installs Debian's postgresql package; the fixture runs initdb/pg_ctl on a temp dir and a free port,
as the ``postgres`` user when the tests run as root (PostgreSQL refuses to run as root).
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass

import pytest


def _bin_dir() -> str | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if found:
        return os.path.dirname(found[-1])
    which = shutil.which("initdb")
    return os.path.dirname(which) if which else None


@dataclass
class PgServer:
    bin_dir: str
    data_dir: str
    port: int
    as_postgres: bool

    @property
    def url(self) -> str:
        return f"postgresql://vramplan@127.0.0.1:{self.port}/postgres"

    def ctl(self, *args: str) -> None:
        cmd = [f"{self.bin_dir}/pg_ctl", "-D", self.data_dir, *args]
        if self.as_postgres:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        subprocess.run(cmd, check=True, capture_output=True, timeout=60)

    def start(self) -> None:
        self.ctl(
            "-w",
            "-l",
            f"{self.data_dir}/log",
            "-o",
            f"-p {self.port} -k {self.data_dir} -c listen_addresses=127.0.0.1 -c fsync=on",
            "start",
        )

    def stop(self) -> None:
        self.ctl("-w", "-m", "fast", "stop")


@pytest.fixture(scope="session")
def postgres() -> Iterator[PgServer]:
    bin_dir = _bin_dir()
    if bin_dir is None:
        pytest.skip("PostgreSQL binaries not found (apt-get install -y postgresql)")
    pytest.importorskip(
        "psycopg", reason="the postgres extra is not installed (pip install 'vramplan[postgres]')"
    )
    as_postgres = os.geteuid() == 0
    if as_postgres and shutil.which("runuser") is None:
        pytest.skip("running as root without runuser: cannot start PostgreSQL as a non-root user")
    data_dir = tempfile.mkdtemp(prefix="vramplan-pg-")
    if as_postgres:
        shutil.chown(data_dir, "postgres", "postgres")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cmd = [f"{bin_dir}/initdb", "-D", data_dir, "-A", "trust", "-U", "vramplan", "--no-sync"]
    if as_postgres:
        cmd = ["runuser", "-u", "postgres", "--", *cmd]
    subprocess.run(cmd, check=True, capture_output=True, timeout=120)
    pg = PgServer(bin_dir, data_dir, port, as_postgres)
    pg.start()
    yield pg
    try:
        pg.stop()
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)
