"""How a route computes: through the shared result cache, then in a worker process (or, for the
microsecond estimate of a catalogue model, in this process).

One helper so every route gets the same bounds: a byte-bounded (or Redis-shared) cache keyed by a
hash of the normalised request, and the worker pool's hard time and memory budget.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response

from vramplan.service.shared import ResultCache, cache_key
from vramplan.service.tasks import rendered
from vramplan.service.worker import WorkerPool

JSON = "application/json"


def pool_of(request: Request) -> WorkerPool:
    return request.app.state.pool


def cache_of(request: Request) -> ResultCache:
    return request.app.state.result_cache


async def computed(
    request: Request,
    kind: str,
    key_json: str | None,
    fn: Callable[..., Any],
    *args: Any,
    in_process: bool = False,
) -> Response:
    """``fn(*args)`` rendered to JSON, from the cache when ``key_json`` was computed before."""
    cache = cache_of(request)
    key = cache_key(kind, key_json) if key_json is not None else None
    body = await cache.get(key) if key is not None else None
    hit = body is not None
    if body is None:
        if in_process:
            body = await run_in_threadpool(rendered, fn, *args)
        else:
            body = await pool_of(request).call(rendered, fn, *args)
        if key is not None:
            await cache.put(key, body)
    if kind == "estimate":
        request.app.state.metrics.estimates.labels("true" if hit else "false").inc()
    return Response(body, media_type=JSON)
