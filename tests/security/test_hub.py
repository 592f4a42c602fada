"""Issue 13 item 6: the Hub is off unless the operator enables it, the operator's HF_TOKEN is never
sent for anonymous clients, and an unreachable Hub fails fast, cached, without stalling routes.

The "Hub" is a local HTTP server (HF_ENDPOINT) that records what it is sent, or never answers."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from ._attack import attack

OPERATOR_TOKEN = "hf_operatorsecret0123456789"


class _Hub(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, delay_s: float) -> None:
        self.delay_s = delay_s
        self.seen: list[dict[str, str]] = []
        super().__init__(("127.0.0.1", 0), _Handler)


class _Handler(BaseHTTPRequestHandler):
    server: _Hub

    def _answer(self) -> None:
        self.server.seen.append({k.lower(): v for k, v in self.headers.items()})
        time.sleep(self.server.delay_s)
        try:
            self.send_response(404)
            self.send_header("X-Error-Code", "RepoNotFound")
            self.end_headers()
        except OSError:
            pass

    do_GET = do_HEAD = _answer

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(params=[0.0, 30.0], ids=["answering", "hanging"])
def hub(request):
    srv = _Hub(request.param)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    yield srv
    srv.shutdown()


def _env(hub: _Hub) -> dict[str, str]:
    return {
        "HF_ENDPOINT": f"http://127.0.0.1:{hub.server_address[1]}",
        "HF_HUB_OFFLINE": "0",
        "HF_TOKEN": OPERATOR_TOKEN,
        "HF_HOME": "/nonexistent-hf-home",
    }


def test_hub_off_by_default(spawn, hub) -> None:
    srv = spawn(**_env(hub))
    out = attack(
        srv, "Hub id, Hub off (default)", "POST", "/api/estimate", json={"model": "org/name"}
    )
    assert out.status == 404
    assert hub.seen == [], "the server called the Hub although it is off by default"


def test_hub_on_never_sends_operator_token_and_fails_fast(spawn, hub, tmp_path) -> None:
    srv = spawn("--allow-hub", **{**_env(hub), "HF_HOME": str(tmp_path / "hf")})
    first = attack(
        srv,
        f"Hub id, Hub {'hanging' if hub.delay_s else 'answering 404'}",
        "POST",
        "/api/estimate",
        json={"model": "org/first"},
    )
    assert first.status in (404, 503), first.text

    # One client made beforehand: 45 fresh httpx clients (SSL contexts) alone cost seconds of CPU.
    client = httpx.Client(timeout=30, limits=httpx.Limits(max_connections=64))

    def one(i: int) -> tuple[int, float]:
        start = time.perf_counter()
        r = client.post(f"{srv.url}/api/estimate", json={"model": f"org/m{i}"})
        return r.status_code, time.perf_counter() - start

    with client, ThreadPoolExecutor(45) as ex:
        results = list(ex.map(one, range(45)))
    assert all(code in (404, 503) for code, _ in results), results
    assert max(s for _, s in results) < 5.0, results
    assert httpx.get(f"{srv.url}/healthz", timeout=5).status_code == 200
    again = attack(
        srv,
        "same Hub id again (cached failure)",
        "POST",
        "/api/estimate",
        json={"model": "org/first"},
    )
    assert again.status == first.status and again.seconds < 1.0
    for headers in hub.seen:
        assert OPERATOR_TOKEN not in headers.get("authorization", ""), "operator token sent"
