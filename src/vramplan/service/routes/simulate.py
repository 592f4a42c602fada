"""POST /api/simulate: one bounded KV-cache replay."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response

from vramplan.service.app_errors import ERROR_RESPONSES
from vramplan.service.compute import render, simulate_dict
from vramplan.service.deps import SettingsDep
from vramplan.service.schemas import SimulateRequest, SimulateResponse

router = APIRouter(prefix="/api", tags=["simulate"])


@router.post(
    "/simulate",
    response_model=SimulateResponse | dict[str, SimulateResponse],
    responses=ERROR_RESPONSES,
    summary="Replay a workload through a KV-cache allocator",
)
def simulate_route(body: SimulateRequest, settings: SettingsDep) -> Response:
    """Memory shares, batch size, throughput and latencies of one replay, with a memory timeseries.

    Simulated time, generated requests and wall time are bounded by the server's settings; a sync
    route, so the replay runs in a worker thread and never blocks other requests.
    """
    return Response(render(simulate_dict(body, settings)), media_type="application/json")
