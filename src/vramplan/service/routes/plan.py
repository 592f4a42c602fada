"""POST /api/plan: ranked deployments (GPU kind x TP x PP x precision x replicas) for a workload."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from vramplan.planner import plan as _needs_planner  # noqa: F401 - fail at import if the library module is missing
from vramplan.service.app_errors import ERROR_RESPONSES
from vramplan.service.compute import plan_dict
from vramplan.service.deps import SettingsDep
from vramplan.service.execute import computed
from vramplan.service.schemas import PlanRequest

router = APIRouter(prefix="/api", tags=["plan"])


@router.post(
    "/plan",
    response_model=dict[str, Any],
    responses=ERROR_RESPONSES,
    summary="Rank deployments for a workload",
)
async def plan_route(body: PlanRequest, settings: SettingsDep, request: Request) -> Response:
    """The JSON of `vramplan plan MODEL --context C --users U ... --json`; DoesNotFitError is 422 with fixes."""
    return await computed(request, "plan", body.model_dump_json(), plan_dict, body, settings)
