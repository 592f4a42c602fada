"""POST /api/train: fine-tuning / training memory per GPU."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from vramplan.service.app_errors import ERROR_RESPONSES
from vramplan.service.compute import train_dict
from vramplan.service.deps import SettingsDep
from vramplan.service.execute import computed
from vramplan.service.schemas import TrainRequest
from vramplan.training import estimate_training as _needs_training  # noqa: F401 - fail at import if the library module is missing

router = APIRouter(prefix="/api", tags=["train"])


@router.post(
    "/train",
    response_model=dict[str, Any],
    responses=ERROR_RESPONSES,
    summary="Training memory per GPU",
)
async def train_route(body: TrainRequest, settings: SettingsDep, request: Request) -> Response:
    """The JSON of `vramplan train ... --json`."""
    return await computed(request, "train", body.model_dump_json(), train_dict, body, settings)
