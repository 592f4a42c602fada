"""Fixtures: a real `vramplan serve` process per module (free port, wait for /healthz, stop after), an
in-process app with its own settings, and isolated env vars."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

pytest.importorskip(
    "fastapi", reason="the service tests need the web extra: pip install 'vramplan[web]'"
)
import httpx


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Server:
    proc: subprocess.Popen[bytes]
    url: str
    log: Path

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)


def start_server(database_url: str, log_dir: Path, **env_overrides: str) -> Server:
    """A `vramplan serve` subprocess with isolated settings (no Hub, no rate limit unless asked)."""
    port = free_port()
    env = {
        **os.environ,
        "VRAMPLAN_DATABASE_URL": database_url,
        "VRAMPLAN_ALLOW_HUB": "false",
        "HF_HUB_OFFLINE": "1",
        "VRAMPLAN_RATE_LIMIT_PER_S": "0",
        **env_overrides,
    }
    env.pop("DATABASE_URL", None)
    log = log_dir / f"server-{port}.log"
    with open(log, "wb") as fh:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "vramplan",
                "serve",
                "--port",
                str(port),
                "--log-level",
                "warning",
            ],
            env=env,
            stdout=fh,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited early:\n{log.read_text()}")
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code in (200, 503):
                return Server(proc, url, log)
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    proc.kill()
    raise RuntimeError(f"server did not answer /healthz within 30 s:\n{log.read_text()}")


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (
        "DATABASE_URL",
        "VRAMPLAN_DATABASE_URL",
        "VRAMPLAN_RATE_LIMIT_PER_S",
        "VRAMPLAN_CORS_ORIGINS",
        "VRAMPLAN_REDIS_URL",
        "VRAMPLAN_AUTH",
        "VRAMPLAN_API_TOKENS",
        "VRAMPLAN_ALLOWED_HOSTS",
        "VRAMPLAN_TRUSTED_PROXIES",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    folder = tmp_path_factory.mktemp("server")
    srv = start_server(f"sqlite:///{folder / 'plans.db'}", folder)
    yield srv
    srv.stop()


@pytest.fixture
def make_client(tmp_path: Path):  # type: ignore[no-untyped-def]
    """An in-process TestClient for create_app(Settings(...)) with a temporary SQLite store."""
    from fastapi.testclient import TestClient

    from vramplan.service.app import create_app
    from vramplan.service.settings import Settings

    clients = []

    def make(**overrides: object) -> TestClient:
        settings = Settings(
            **{
                "database_url": f"sqlite:///{tmp_path / 'plans.db'}",
                "allow_hub": False,
                "rate_limit_per_s": 0,
                "allowed_hosts": ["testserver", "localhost", "127.0.0.1"],
                "compute_workers": 1,
                **overrides,
            }
        )
        client = TestClient(create_app(settings))
        client.__enter__()
        clients.append(client)
        return client

    yield make
    for c in clients:
        c.__exit__(None, None, None)


@pytest.fixture
def spawn(tmp_path: Path) -> Iterator[Callable[..., Server]]:
    """Start extra servers (stopped at the end of the test)."""
    started: list[Server] = []

    def run(database_url: str, **env: str) -> Server:
        srv = start_server(database_url, tmp_path, **env)
        started.append(srv)
        return srv

    yield run
    for s in started:
        s.stop(signal.SIGKILL)
