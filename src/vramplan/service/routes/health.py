"""GET /healthz (liveness plus store reachability) and GET /metrics (Prometheus)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, Response

from vramplan.errors import StoreUnavailableError
from vramplan.service.app_errors import version
from vramplan.service.deps import MetricsDep, StoreDep
from vramplan.service.metrics import CONTENT_TYPE_LATEST
from vramplan.service.schemas import Health

router = APIRouter(tags=["health"])


@router.get(
    "/healthz",
    response_model=Health,
    responses={503: {"model": Health}},
    summary="Liveness and store status",
)
async def healthz(store: StoreDep) -> JSONResponse:
    """200 when the plans store answers; 503 ("degraded") while it does not, estimates still work."""
    try:
        await run_in_threadpool(store.ensure_ready)
        await run_in_threadpool(store.ping)
    except StoreUnavailableError as exc:
        body = Health(
            status="degraded", version=version(), database="unavailable", database_message=str(exc)
        )
        return JSONResponse(body.model_dump(), status_code=503)
    return JSONResponse(Health(status="ok", version=version(), database="ok").model_dump())


@router.get(
    "/metrics",
    response_class=Response,
    summary="Prometheus metrics",
    responses={200: {"content": {"text/plain": {}}}},
)
def metrics_route(metrics: MetricsDep) -> Response:
    """Requests by route and status, latency histogram, estimates computed, plans saved."""
    return Response(metrics.render(), media_type=CONTENT_TYPE_LATEST)
