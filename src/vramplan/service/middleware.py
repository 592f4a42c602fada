"""One pure-ASGI middleware for the edge concerns: body limit, rate limit, metrics, access log.

Pure ASGI (no BaseHTTPMiddleware) because it runs on every request and the estimate route must stay
well under a millisecond of framework time.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from vramplan.service.metrics import Metrics
from vramplan.service.settings import Settings

access_logger = logging.getLogger("vramplan.access")


class TokenBucket:
    """Per-client token buckets: ``rate`` tokens per second up to ``burst``; one token per request."""

    def __init__(self, rate: float, burst: int, max_clients: int = 100_000) -> None:
        self.rate, self.burst, self.max_clients = rate, float(burst), max_clients
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def allow(self, client: str, now: float | None = None) -> tuple[bool, float]:
        """(allowed, seconds until a token is available)."""
        now = time.monotonic() if now is None else now
        with self._lock:
            tokens, last = self._buckets.get(client, (self.burst, now))
            tokens = min(self.burst, tokens + (now - last) * self.rate)
            if len(self._buckets) >= self.max_clients and client not in self._buckets:
                self._buckets.clear()  # bounded memory under address spraying; everyone starts full
            if tokens >= 1.0:
                self._buckets[client] = (tokens - 1.0, now)
                return True, 0.0
            self._buckets[client] = (tokens, now)
            return False, (1.0 - tokens) / self.rate


def error_body(kind: str, message: str) -> bytes:
    return json.dumps({"error": {"type": kind, "message": message}}).encode()


class _BodyTooLarge(Exception):
    pass


class EdgeMiddleware:
    """Refuses oversized bodies (413) and over-eager clients (429); counts, times and logs requests."""

    def __init__(self, app: ASGIApp, settings: Settings, metrics: Metrics) -> None:
        self.app, self.settings, self.metrics = app, settings, metrics
        self.bucket = (
            TokenBucket(settings.rate_limit_per_s, settings.rate_limit_burst)
            if settings.rate_limit_per_s > 0
            else None
        )

    def _client(self, scope: Scope) -> str:
        if self.settings.trust_forwarded_for:
            for name, value in scope.get("headers", ()):
                if name == b"x-forwarded-for":
                    return value.decode("latin-1").split(",")[0].strip()
        client = scope.get("client")
        return client[0] if client else "unknown"

    def _limit_for(self, path: str) -> int:
        return (
            self.settings.max_log_bytes if path == "/api/explain" else self.settings.max_body_bytes
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        path: str = scope["path"]
        status_holder = [500]
        client = self._client(scope)

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start":
                status_holder[0] = message["status"]
            await send(message)

        try:
            if self.bucket is not None and path.startswith("/api/"):
                ok, wait_s = self.bucket.allow(client)
                if not ok:
                    self.metrics.rate_limited.inc()
                    await _respond(
                        send_wrapper,
                        429,
                        error_body(
                            "RateLimited",
                            f"too many requests from {client}: at most {self.settings.rate_limit_per_s:g}/s "
                            f"(burst {self.settings.rate_limit_burst}); retry in {wait_s:.2f} s",
                        ),
                        [(b"retry-after", str(max(1, int(wait_s + 0.999))).encode())],
                    )
                    return
            limit = self._limit_for(path)
            declared = _content_length(scope)
            if declared is not None and declared > limit:
                await _respond(send_wrapper, 413, _too_large(path, limit))
                return
            received = 0

            async def limited_receive() -> Message:
                nonlocal received
                message = await receive()
                if message["type"] == "http.request":
                    received += len(message.get("body", b""))
                    if received > limit:
                        raise _BodyTooLarge
                return message

            try:
                await self.app(scope, limited_receive, send_wrapper)
            except _BodyTooLarge:
                await _respond(send_wrapper, 413, _too_large(path, limit))
        finally:
            elapsed = time.perf_counter() - start
            route = scope.get("route")
            template = getattr(route, "path", None) or (
                "/static" if path.startswith("/static/") else "unmatched"
            )
            self.metrics.observe(template, scope["method"], status_holder[0], elapsed)
            if self.settings.access_log and access_logger.isEnabledFor(logging.INFO):
                # No query string, headers or bodies: they may carry tokens or private configs.
                access_logger.info(
                    json.dumps(
                        {
                            "ts": round(time.time(), 3),
                            "client": client,
                            "method": scope["method"],
                            "path": path,
                            "route": template,
                            "status": status_holder[0],
                            "duration_ms": round(elapsed * 1e3, 3),
                        }
                    )
                )


def _too_large(path: str, limit: int) -> bytes:
    what = "log upload" if path == "/api/explain" else "request body"
    return error_body(
        "PayloadTooLarge",
        f"{what} is larger than this server's limit of {limit:,} bytes: send a smaller one",
    )


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


async def _respond(
    send: Any, status: int, body: bytes, headers: list[tuple[bytes, bytes]] | None = None
) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                *(headers or []),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
