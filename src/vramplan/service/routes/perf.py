"""POST /api/perf: latency and throughput of one model on one GPU layout (`vramplan perf --json`)."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter
from fastapi.responses import Response
from pydantic import ConfigDict, Field

from vramplan.errors import InputError
from vramplan.scenario import MAX_CONTEXT, MAX_USERS
from vramplan.service.app_errors import ERROR_RESPONSES
from vramplan.service.compute import render, resolve_model
from vramplan.service.deps import SettingsDep
from vramplan.service.schemas import ModelSource
from vramplan.service.settings import Settings

router = APIRouter(prefix="/api", tags=["perf"])


class PerfRequest(ModelSource):
    """Body of POST /api/perf: the options of `vramplan perf` (one load pattern at most)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "model": "llama-3.1-8b",
                    "gpu": "H100-80GB",
                    "input_len": 1024,
                    "output_len": 256,
                    "concurrency": 16,
                }
            ]
        },
    )

    gpu: str = Field(max_length=64, description="GPU name (H100-80GB, A100-80GB, L40S, ...).")
    input_len: int = Field(ge=1, le=MAX_CONTEXT, description="Prompt tokens per request.")
    output_len: int = Field(ge=1, le=MAX_CONTEXT, description="Generated tokens per request.")
    engine: Literal["vllm", "sglang", "trtllm", "llamacpp", "tgi"] = "vllm"
    tensor_parallel_size: int = Field(default=1, ge=1, le=64)
    pipeline_parallel_size: int = Field(default=1, ge=1, le=64)
    dtype: str | None = Field(default=None, max_length=32)
    quantization: str | None = Field(default=None, max_length=32)
    kv_cache_dtype: str | None = Field(default=None, max_length=32)
    batch_size: int | None = Field(
        default=None, ge=1, le=MAX_USERS, description="Static batch of B requests."
    )
    concurrency: int | None = Field(
        default=None, ge=1, le=MAX_USERS, description="Closed loop of C clients."
    )
    request_rate: float | None = Field(
        default=None, gt=0, le=1e6, description="Open loop, Poisson arrivals at R req/s."
    )
    max_throughput: bool = Field(
        default=False, description="Batch bounded by KV capacity and max_num_seqs."
    )


def perf_dict(req: PerfRequest, settings: Settings) -> dict[str, Any]:
    """`vramplan perf --json` for this request; the model by catalogue name, Hub id or upload only."""
    from vramplan.perf import perf

    if req.dtype and req.quantization:
        raise InputError("give dtype or quantization, not both")
    patterns = [
        req.batch_size is not None,
        req.concurrency is not None,
        req.request_rate is not None,
        req.max_throughput,
    ]
    if sum(patterns) > 1:
        raise InputError(
            "give one load pattern: batch_size, concurrency, request_rate or max_throughput"
        )
    spec = resolve_model(req.model, req.config, req.name, settings)
    if spec is None:
        raise InputError(
            "give a model (catalogue name or Hub id) or config (an uploaded config.json)"
        )
    result = perf(
        spec,
        req.gpu,
        input_len=req.input_len,
        output_len=req.output_len,
        engine=req.engine,
        tensor_parallel_size=req.tensor_parallel_size,
        pipeline_parallel_size=req.pipeline_parallel_size,
        dtype=req.dtype,
        quantization=req.quantization,
        kv_cache_dtype=req.kv_cache_dtype,
        batch_size=req.batch_size,
        concurrency=req.concurrency,
        request_rate=req.request_rate,
        max_throughput=req.max_throughput,
    )
    return result.to_dict()


@router.post(
    "/perf",
    response_model=dict[str, Any],
    responses=ERROR_RESPONSES,
    summary="Latency and throughput of a model on a GPU layout",
)
def perf_route(body: PerfRequest, settings: SettingsDep) -> Response:
    """The JSON of `vramplan perf MODEL --gpu G --input-len I --output-len O ... --json`."""
    return Response(render(perf_dict(body, settings)), media_type="application/json")
