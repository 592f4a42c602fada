"""POST /api/estimate, GET /api/models, GET /api/gpus: the same objects as the CLI's --json."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response

from vramplan.service.app_errors import ERROR_RESPONSES
from vramplan.service.compute import estimate_dict, estimate_key, gpu_rows, model_rows, render
from vramplan.service.deps import EstimateCacheDep, MetricsDep, SettingsDep
from vramplan.service.schemas import EstimateRequest, EstimateResponse, GPURow, ModelRow

router = APIRouter(prefix="/api", tags=["estimate"])
JSON = "application/json"


@router.post(
    "/estimate",
    response_model=EstimateResponse,
    responses=ERROR_RESPONSES,
    summary="Serving memory for a model, precision, workload and GPU",
)
async def estimate_route(
    body: EstimateRequest, settings: SettingsDep, cache: EstimateCacheDep, metrics: MetricsDep
) -> Response:
    """What `vramplan estimate --json` prints for the same options.

    Results are cached per normalised request (the estimate is a pure function), so a repeated
    scenario costs a dictionary lookup; a miss runs in a worker thread (it may fetch a Hub config).
    """
    key = estimate_key(body)
    cached = cache.get(key)
    if cached is None:
        cached = render(await run_in_threadpool(estimate_dict, body, settings))
        cache.put(key, cached)
        metrics.estimates.labels("false").inc()
    else:
        metrics.estimates.labels("true").inc()
    return Response(cached, media_type=JSON)


@router.get("/models", response_model=list[ModelRow], summary="The bundled model catalogue")
async def models_route() -> Response:
    """The rows of `vramplan models --json`."""
    return Response(render(model_rows()), media_type=JSON)


@router.get("/gpus", response_model=list[GPURow], summary="The GPU catalogue")
async def gpus_route() -> Response:
    """The rows of `vramplan gpus --json`."""
    return Response(render(gpu_rows()), media_type=JSON)
