"""POST /api/train: fine-tuning / training memory per GPU."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import Response

from vramplan.service.app_errors import ERROR_RESPONSES
from vramplan.service.compute import render, train_dict
from vramplan.service.deps import SettingsDep
from vramplan.service.schemas import TrainRequest
from vramplan.training import estimate_training as _needs_training  # noqa: F401 - fail at import if the library module is missing

router = APIRouter(prefix="/api", tags=["train"])


@router.post(
    "/train",
    response_model=dict[str, Any],
    responses=ERROR_RESPONSES,
    summary="Training memory per GPU",
)
def train_route(body: TrainRequest, settings: SettingsDep) -> Response:
    """The JSON of `vramplan train ... --json`."""
    return Response(render(train_dict(body, settings)), media_type="application/json")
