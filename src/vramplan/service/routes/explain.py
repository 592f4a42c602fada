"""POST /api/explain: an engine startup log, term by term against our prediction."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from vramplan.explain import explain_log as _needs_explain  # noqa: F401 - fail at import if the library module is missing
from vramplan.service.app_errors import ERROR_RESPONSES
from vramplan.service.compute import explain_dict
from vramplan.service.execute import computed
from vramplan.service.schemas import ExplainRequest

router = APIRouter(prefix="/api", tags=["engines"])


@router.post(
    "/explain",
    response_model=dict[str, Any],
    responses=ERROR_RESPONSES,
    summary="Explain a startup log",
)
async def explain_route(body: ExplainRequest, request: Request) -> Response:
    """The JSON of `vramplan explain LOG --json`. The body limit here is the log-upload limit."""
    return await computed(
        request, "explain", body.model_dump_json(), explain_dict, body.log, body.gpu
    )
