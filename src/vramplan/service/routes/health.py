"""GET /healthz (the store by a committed write probe, its disk, Redis when configured) and GET
/metrics (Prometheus)."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, Response

from vramplan.errors import StoreUnavailableError
from vramplan.service.app_errors import version
from vramplan.service.deps import MetricsDep, SettingsDep, StoreDep
from vramplan.service.metrics import CONTENT_TYPE_LATEST
from vramplan.service.schemas import Health

router = APIRouter(tags=["health"])


@router.get(
    "/healthz",
    response_model=Health,
    responses={503: {"model": Health}},
    summary="Liveness and store status",
)
async def healthz(store: StoreDep, settings: SettingsDep, request: Request) -> JSONResponse:
    """200 when the store takes a committed write (schema present, disk not full) and Redis (if
    configured) answers; 503 ("degraded") otherwise. Estimates keep working either way."""
    body = Health(status="ok", version=version(), database="ok").model_dump()
    try:
        await run_in_threadpool(store.probe, settings.min_free_disk_bytes)
    except StoreUnavailableError as exc:
        body.update(status="degraded", database="unavailable", database_message=str(exc))
    redis = request.app.state.redis
    body["redis"] = "off"
    if redis is not None:
        try:
            await asyncio.wait_for(redis.ping(), 2.0)
            body["redis"] = "ok"
        except Exception:
            body.update(status="degraded", redis="unavailable")
    return JSONResponse(body, status_code=200 if body["status"] == "ok" else 503)


@router.get(
    "/metrics",
    response_class=Response,
    summary="Prometheus metrics",
    responses={200: {"content": {"text/plain": {}}}},
)
def metrics_route(metrics: MetricsDep) -> Response:
    """Requests by route and status, latency histogram, estimates computed, plans saved."""
    return Response(metrics.render(), media_type=CONTENT_TYPE_LATEST)
