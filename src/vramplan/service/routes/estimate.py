"""POST /api/estimate, GET /api/models, GET /api/gpus: the same objects as the CLI's --json."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from vramplan.service.app_errors import ERROR_RESPONSES
from vramplan.service.compute import estimate_dict, gpu_rows, model_rows, render
from vramplan.service.deps import SettingsDep
from vramplan.service.execute import computed
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
    body: EstimateRequest, settings: SettingsDep, request: Request
) -> Response:
    """What `vramplan estimate --json` prints for the same options.

    Results are cached per normalised request (the estimate is a pure function), so a repeated
    scenario costs a lookup; a miss runs in a worker thread, or in a worker process with its time
    budget when the client uploaded a config.json (its numbers are the client's to choose).
    """
    return await computed(
        request,
        "estimate",
        body.model_dump_json(),
        estimate_dict,
        body,
        settings,
        in_process=body.config is None,
    )


@router.get("/models", response_model=list[ModelRow], summary="The bundled model catalogue")
async def models_route() -> Response:
    """The rows of `vramplan models --json`."""
    return Response(render(model_rows()), media_type=JSON)


@router.get("/gpus", response_model=list[GPURow], summary="The GPU catalogue")
async def gpus_route() -> Response:
    """The rows of `vramplan gpus --json`."""
    return Response(render(gpu_rows()), media_type=JSON)
