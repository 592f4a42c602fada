"""One pure-ASGI middleware for the edge: auth, rate limit, body limit and read timeout, security
headers, metrics and the access log.

Pure ASGI (no BaseHTTPMiddleware) because it runs on every request and the estimate route must stay
well under a millisecond of framework time. The body is read here, whole, before the app sees it:
that is what lets an over-limit chunked upload get 413 (not the framework's 400) and a client that
dribbles its body get 408 instead of holding a connection forever.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import time
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from vramplan.service.metrics import Metrics
from vramplan.service.settings import Settings
from vramplan.service.shared import RateLimiter, TokenBucket

__all__ = ["SECURITY_HEADERS", "EdgeMiddleware", "TokenBucket", "error_body"]

access_logger = logging.getLogger("vramplan.access")

#: Sent with every response. Scripts and styles come only from this origin's files (the page and
#: /docs keep no inline script), nothing may frame the page, and types are never sniffed.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "font-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'none'; "
    "frame-ancestors 'none'; form-action 'self'"
)
SECURITY_HEADERS: list[tuple[bytes, bytes]] = [
    (b"content-security-policy", CONTENT_SECURITY_POLICY.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"cross-origin-opener-policy", b"same-origin"),
]
#: Paths that stay open with --auth tokens (probes and scrapers carry no token).
OPEN_PATHS = ("/healthz", "/metrics")
BODY_METHODS = ("POST", "PUT", "PATCH")


def error_body(kind: str, message: str) -> bytes:
    return json.dumps({"error": {"type": kind, "message": message}}).encode()


class EdgeMiddleware:
    """Refuses unauthenticated (401), over-eager (429), oversized (413) and slow (408) requests;
    adds the security headers; counts, times and logs every request."""

    def __init__(
        self,
        app: ASGIApp,
        settings: Settings,
        metrics: Metrics,
        limiter: RateLimiter | None,
        token_owners: dict[str, str],
    ) -> None:
        self.app, self.settings, self.metrics, self.limiter = app, settings, metrics, limiter
        self.tokens = token_owners
        self.auth_required = settings.auth == "tokens"

    def _limit_for(self, path: str) -> int:
        return (
            self.settings.max_log_bytes if path == "/api/explain" else self.settings.max_body_bytes
        )

    def _owner(self, scope: Scope) -> str | None:
        """The token's owner name when a valid bearer token is sent, else None."""
        if not self.tokens:
            return None
        for name, value in scope.get("headers", ()):
            if name == b"authorization":
                scheme, _, token = value.decode("latin-1").partition(" ")
                if scheme.lower() != "bearer":
                    return None
                token = token.strip()
                found = None
                for known, owner in self.tokens.items():  # constant time per known token
                    if hmac.compare_digest(known.encode(), token.encode()):
                        found = owner
                return found
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        path: str = scope["path"]
        status_holder = [500]
        client_addr = scope.get("client")
        client = client_addr[0] if client_addr else "unknown"

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start":
                status_holder[0] = message["status"]
                message = {**message, "headers": [*message.get("headers", ()), *SECURITY_HEADERS]}
            await send(message)

        try:
            await self._handle(scope, receive, send_wrapper, path, client)
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

    async def _handle(
        self, scope: Scope, receive: Receive, send: Send, path: str, client: str
    ) -> None:
        api = path.startswith("/api/")
        owner = self._owner(scope) if api else None
        scope.setdefault("state", {})["owner"] = owner
        if self.limiter is not None and api:
            ok, wait_s = await self.limiter.allow(f"owner:{owner}" if owner else f"ip:{client}")
            if not ok:
                self.metrics.rate_limited.inc()
                await _respond(
                    send,
                    429,
                    error_body(
                        "RateLimited",
                        f"too many requests from {owner or client}: at most "
                        f"{self.settings.rate_limit_per_s:g}/s (burst {self.settings.rate_limit_burst}); "
                        f"retry in {wait_s:.2f} s",
                    ),
                    [(b"retry-after", str(max(1, int(wait_s + 0.999))).encode())],
                )
                return
        if self.auth_required and api and owner is None:
            await _respond(
                send,
                401,
                error_body(
                    "Unauthorized",
                    "this server needs a token: send 'Authorization: Bearer <token>' "
                    "(ask its operator for one)",
                ),
                [(b"www-authenticate", b'Bearer realm="vramplan"')],
            )
            return
        if scope["method"] not in BODY_METHODS:
            await self.app(scope, receive, send)
            return
        limit = self._limit_for(path)
        declared = _content_length(scope)
        if declared is not None and declared > limit:
            await _respond(send, 413, _too_large(path, limit))
            return
        body = await self._read_body(receive, limit)
        if isinstance(body, int):
            if body == 413:
                await _respond(send, 413, _too_large(path, limit))
            elif body == 408:
                await _respond(
                    send,
                    408,
                    error_body(
                        "RequestTimeout",
                        f"the request body took longer than {self.settings.request_read_timeout_s:g} s "
                        "to arrive: send it at once",
                    ),
                    [(b"connection", b"close")],
                )
            return  # 0: the client went away
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()  # waits for the disconnect, as the framework expects

        await self.app(scope, replay, send)

    async def _read_body(self, receive: Receive, limit: int) -> bytes | int:
        """The whole body, or 413 (too large), 408 (too slow) or 0 (client disconnected)."""
        chunks: list[bytes] = []
        size = 0
        deadline = time.monotonic() + self.settings.request_read_timeout_s
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return 408
            try:
                message = await asyncio.wait_for(receive(), left)
            except asyncio.TimeoutError:
                return 408
            if message["type"] == "http.disconnect":
                return 0
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                return 413
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)


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
