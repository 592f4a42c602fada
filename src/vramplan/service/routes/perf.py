"""POST /api/perf: latency and throughput of one deployment at one load (`vramplan perf`)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response

from vramplan.service.app_errors import ERROR_RESPONSES
from vramplan.service.compute import perf_dict, render
from vramplan.service.deps import SettingsDep
from vramplan.service.schemas import PerfRequest, PerfResponse

router = APIRouter(prefix="/api", tags=["perf"])


@router.post(
    "/perf",
    response_model=PerfResponse,
    responses=ERROR_RESPONSES,
    summary="Predict TTFT, TPOT and throughput",
)
def perf_route(body: PerfRequest, settings: SettingsDep) -> Response:
    """The JSON of `vramplan perf MODEL --gpu G --input-len I --output-len O ... --json`."""
    return Response(render(perf_dict(body, settings)), media_type="application/json")
