"""POST /api/sglang: what SGLang allocates at startup for a `sglang.launch_server` command line."""

from __future__ import annotations

import shlex
from typing import Any

from fastapi import APIRouter
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field

from vramplan.engines.sglang import predict_sglang as _needs_engine  # noqa: F401 - fail at import if the library module is missing
from vramplan.errors import InputError
from vramplan.service.app_errors import ERROR_RESPONSES
from vramplan.service.compute import check_model_name, render

router = APIRouter(prefix="/api", tags=["engines"])


class SglangRequest(BaseModel):
    """Body of POST /api/sglang: SGLang launch flags plus our own options (`vramplan sglang`)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "args": ["--model-path", "llama-3.1-8b", "--context-length", "8192"],
                    "gpu": "H100-80GB",
                }
            ]
        },
    )

    args: list[str] = Field(
        default_factory=list,
        max_length=200,
        description="`sglang.launch_server` flags, --model-path NAME among them (no file paths).",
    )
    command: str | None = Field(
        default=None,
        max_length=8000,
        description="The same as one shell line ('python -m sglang.launch_server --model-path M ...').",
    )
    gpu: str | None = Field(default=None, max_length=64)
    gpu_memory: str | None = Field(default=None, max_length=32)
    engine_version: str | None = Field(
        default=None, max_length=32, description="SGLang version, e.g. 0.5.2."
    )


_LAUNCHER = ("python", "python3", "-m", "sglang.launch_server", "sglang", "serve")


def sglang_args(req: SglangRequest) -> list[str]:
    """The flags of the request: ``args``, or ``command`` split as a shell would, launcher words dropped."""
    if req.command is None:
        return list(req.args)
    try:
        words = shlex.split(req.command)
    except ValueError as exc:
        raise InputError(f"command is not a valid shell line ({exc})") from None
    while words and words[0] in _LAUNCHER:
        words.pop(0)
    return words


def sglang_dict(req: SglangRequest) -> dict[str, Any]:
    """`vramplan sglang ... --json` for this request; a model that looks like a server path is refused."""
    from vramplan.engines.sglang import _INT_KEYS, BOOL_FLAGS, FLAGS, parse_argv, predict_sglang

    args = sglang_args(req)
    parsed = parse_argv(args, FLAGS, BOOL_FLAGS, _INT_KEYS)[0]
    for key in ("model_path", "speculative_draft_model_path"):  # names only: never a server path
        if parsed.get(key):
            check_model_name(str(parsed[key]))
    pred = predict_sglang(
        args, req.gpu, gpu_memory=req.gpu_memory, engine_version=req.engine_version
    )
    return pred.to_dict()


@router.post(
    "/sglang",
    response_model=dict[str, Any],
    responses=ERROR_RESPONSES,
    summary="Predict SGLang's startup memory",
)
def sglang_route(body: SglangRequest) -> Response:
    """The JSON of `vramplan sglang --model-path M ... --gpu G --json`."""
    return Response(render(sglang_dict(body)), media_type="application/json")
