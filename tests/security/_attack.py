"""Real servers to attack: `vramplan serve` subprocesses on free ports, a real Redis for the shared
limit (Debian's redis-server, started here), and a probe that measures each attack.

Every attack goes through :func:`attack`, which times the request, samples the resident memory of
the server's whole process tree (server + compute workers) while it runs, and checks the issue-13
bound: an answer within 5 s, under 1 GiB, never a 500. With ``VRAMPLAN_SECURITY_REPORT=path`` the
measurements are appended there as JSON lines (the README's reliability table is built from them).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("fastapi", reason="the security tests need the web extra")
import httpx

#: The issue's bound for every request, whatever it asks.
MAX_SECONDS = 5.0
MAX_TREE_BYTES = 1 << 30


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def tree_rss_bytes(pid: int) -> int:
    """Resident bytes of ``pid`` and all its descendants (Linux /proc)."""
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        try:
            with open(f"/proc/{p}/status") as fh:
                for line in fh:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1]) * 1024
            for task in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{task}/children") as fh:
                    todo.extend(int(c) for c in fh.read().split())
        except (OSError, ValueError):
            continue
    return total


@dataclass
class Server:
    proc: subprocess.Popen[bytes]
    url: str
    log: Path
    env: dict[str, str] = field(default_factory=dict)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")


def start_server(folder: Path, *args: str, **env_overrides: str) -> Server:
    port = free_port()
    env = {
        **os.environ,
        "VRAMPLAN_DATABASE_URL": f"sqlite:///{folder / 'plans.db'}",
        "HF_HUB_OFFLINE": "1",
        "VRAMPLAN_RATE_LIMIT_PER_S": "0",
        "VRAMPLAN_REQUEST_READ_TIMEOUT_S": "2",
        **env_overrides,
    }
    for name in ("DATABASE_URL", "VRAMPLAN_ALLOW_HUB", "VRAMPLAN_AUTH", "VRAMPLAN_REDIS_URL"):
        if name not in env_overrides:
            env.pop(name, None)
    log = folder / f"server-{port}.log"
    with open(log, "wb") as fh:
        proc = subprocess.Popen(
            [sys.executable, "-m", "vramplan", "serve", "--port", str(port), *args],
            env=env,
            stdout=fh,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited early:\n{log.read_text()}")
        try:
            if httpx.get(f"{url}/healthz", timeout=2).status_code in (200, 503):
                return Server(proc, url, log, env)
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    proc.kill()
    raise RuntimeError(f"server did not answer /healthz within 60 s:\n{log.read_text()}")


@dataclass
class Outcome:
    status: int
    seconds: float
    peak_bytes: int
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def text(self) -> str:
        return self.body.decode(errors="replace")


def attack(
    server: Server,
    name: str,
    method: str,
    path: str,
    *,
    max_seconds: float = MAX_SECONDS,
    **kwargs: Any,
) -> Outcome:
    """One hostile request, measured; asserts the bound (time, memory, no 500) and records it."""
    peak = [tree_rss_bytes(server.proc.pid)]
    done = threading.Event()

    def sample() -> None:
        while not done.wait(0.01):
            peak[0] = max(peak[0], tree_rss_bytes(server.proc.pid))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    kwargs.setdefault("timeout", 60)
    start = time.perf_counter()
    try:
        r = httpx.request(method, server.url + path, **kwargs)
        status, body = r.status_code, r.content
    finally:
        seconds = time.perf_counter() - start
        done.set()
        sampler.join()
    out = Outcome(status, seconds, peak[0], body)
    report = os.environ.get("VRAMPLAN_SECURITY_REPORT")
    if report:
        with open(report, "a") as fh:
            fh.write(
                json.dumps(
                    {
                        "attack": name,
                        "status": status,
                        "seconds": round(seconds, 3),
                        "peak_mib": round(peak[0] / 2**20),
                    }
                )
                + "\n"
            )
    assert status < 500 or status == 503, f"{name}: {status} {out.text[:300]}"
    assert seconds < max_seconds, f"{name}: took {seconds:.1f} s"
    assert peak[0] < MAX_TREE_BYTES, f"{name}: server tree reached {peak[0] / 2**20:.0f} MiB"
    return out


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One server with the defaults an operator gets (Hub off, no auth), rate limit off."""
    srv = start_server(tmp_path_factory.mktemp("sec"))
    yield srv
    srv.stop()


@pytest.fixture
def spawn(tmp_path: Path) -> Iterator[Callable[..., Server]]:
    started: list[Server] = []

    def run(*args: str, folder: Path | None = None, **env: str) -> Server:
        srv = start_server(folder or tmp_path, *args, **env)
        started.append(srv)
        return srv

    yield run
    for s in started:
        s.stop()


@dataclass
class Redis:
    proc: subprocess.Popen[bytes]
    url: str


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Redis]:
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("redis-server not installed (apt-get install -y redis-server)")
    pytest.importorskip("redis", reason="the redis client is part of the web extra")
    port = free_port()
    folder = tmp_path_factory.mktemp("redis")
    proc = subprocess.Popen(
        [
            binary,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(folder),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5) as s:
                s.sendall(b"PING\r\n")
                if s.recv(16).startswith(b"+PONG"):
                    break
        except OSError:
            time.sleep(0.1)
    else:
        proc.kill()
        pytest.fail("redis-server did not start")
    yield Redis(proc, f"redis://127.0.0.1:{port}/0")
    proc.terminate()
    proc.wait(10)
