"""POST /api/vllm: what vLLM will log at startup for a `vllm serve` command, and whether it starts."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from vramplan.engines.vllm import predict_vllm as _needs_engine  # noqa: F401 - fail at import if the library module is missing
from vramplan.service.app_errors import ERROR_RESPONSES
from vramplan.service.compute import vllm_dict
from vramplan.service.execute import computed
from vramplan.service.schemas import VllmRequest, VllmResponse

router = APIRouter(prefix="/api", tags=["engines"])


@router.post(
    "/vllm",
    response_model=VllmResponse,
    responses=ERROR_RESPONSES,
    summary="Predict vLLM's startup log",
)
async def vllm_route(body: VllmRequest, request: Request) -> Response:
    """The JSON of `vramplan vllm ARGS --gpu G --json`."""
    return await computed(request, "vllm", body.model_dump_json(), vllm_dict, body)
