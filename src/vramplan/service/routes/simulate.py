"""POST /api/simulate: one bounded KV-cache replay."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from vramplan.service.app_errors import ERROR_RESPONSES
from vramplan.service.compute import simulate_dict
from vramplan.service.deps import SettingsDep
from vramplan.service.execute import computed
from vramplan.service.schemas import SimulateRequest, SimulateResponse

router = APIRouter(prefix="/api", tags=["simulate"])


@router.post(
    "/simulate",
    response_model=SimulateResponse | dict[str, SimulateResponse],
    responses=ERROR_RESPONSES,
    summary="Replay a workload through a KV-cache allocator",
)
async def simulate_route(
    body: SimulateRequest, settings: SettingsDep, request: Request
) -> Response:
    """Memory shares, batch size, throughput and latencies of one replay, with a memory timeseries.

    Simulated time, generated requests, the block pool and wall time are bounded by the server's
    settings; the replay runs in a worker process that is killed past the compute budget.
    """
    return await computed(
        request, "simulate", body.model_dump_json(), simulate_dict, body, settings
    )
