"""What the routes call: resolve a model without touching server files, then one library function.

Kept apart from the routes so the plans route (which recomputes a result when a client saves only a
scenario) and the estimate route go through the same code, and so the expensive parts are cached:
model resolution (config.json -> ModelSpec) per name, and whole estimate results per normalised
request, since ``estimate`` is a pure function of its inputs.
"""

from __future__ import annotations

import json
import threading
import time
from collections import OrderedDict
from dataclasses import replace
from functools import lru_cache
from typing import Any

from vramplan.errors import InputError, UnknownModelError
from vramplan.model.spec import ModelSpec
from vramplan.render import to_json
from vramplan.service.schemas import EstimateRequest, SimulateRequest
from vramplan.service.settings import Settings


class LRU:
    """A small thread-safe LRU map (estimate results rendered to JSON bytes)."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._data: OrderedDict[str, bytes] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: str) -> bytes | None:
        with self._lock:
            value = self._data.get(key)
            if value is not None:
                self._data.move_to_end(key)
            return value

    def put(self, key: str, value: bytes) -> None:
        if self.size <= 0:
            return
        with self._lock:
            self._data[key] = value
            self._data.move_to_end(key)
            while len(self._data) > self.size:
                self._data.popitem(last=False)


@lru_cache(maxsize=512)
def _catalogue_or_hub_spec(name: str, allow_hub: bool) -> ModelSpec:
    """A model by catalogue name, else by Hub id (config.json only). Never a path on this server.

    ``vramplan.model.load.load_model`` would treat "./x", "/etc/..." or "x.json" as files; a client
    must not make the server read files, so this resolver only asks the catalogue and the Hub.
    """
    from vramplan.model import catalog
    from vramplan.model.hf_config import spec_from_config

    repo_id = catalog.find(name)
    if repo_id is not None:
        return spec_from_config(catalog.catalogue()[repo_id], name=repo_id, source=f"catalogue:{repo_id}")
    from vramplan.model.load import _HUB_ID

    if allow_hub and _HUB_ID.match(name):
        from vramplan.model.hub import fetch_config

        return spec_from_config(fetch_config(name), name=name, source=f"hub:{name}")
    close = catalog.suggestions(name)
    hint = f" Closest catalogue names: {', '.join(close)}." if close else ""
    hub = " or a Hugging Face Hub id (org/name)" if allow_hub else ""
    raise UnknownModelError(
        f"unknown model {name!r}: not in the catalogue{' and not a Hub id' if allow_hub else ''}.{hint} "
        f"Use a name from GET /api/models{hub}, or upload the model's config.json."
    )


@lru_cache(maxsize=256)
def _uploaded_spec(config_json: str, name: str) -> ModelSpec:
    from vramplan.model.hf_config import spec_from_config

    return spec_from_config(json.loads(config_json), name=name, source="upload")


def resolve_model(model: str | None, config: dict[str, Any] | None, name: str | None, settings: Settings) -> ModelSpec | None:
    """The ModelSpec a request names (catalogue name, Hub id or uploaded config.json), or None."""
    if config is not None:
        return _uploaded_spec(json.dumps(config, sort_keys=True), name or "uploaded config.json")
    if model is None or not model.strip():
        return None
    if any(ord(c) < 32 for c in model):
        raise UnknownModelError("model name contains control characters: use a catalogue name or a Hub id")
    return _catalogue_or_hub_spec(model.strip(), settings.allow_hub)


def estimate_dict(req: EstimateRequest, settings: Settings) -> dict[str, Any]:
    """``vramplan estimate --json`` for this request: the same defaults, the same library call."""
    from vramplan.estimate import estimate

    method = req.method
    spec = resolve_model(req.model, req.config, req.name, settings)
    if spec is None and req.params is not None and method == "detailed":
        method = "rule-of-thumb"  # as the CLI does for a bare --params
    result = estimate(
        spec, params=req.params, bits=req.bits, dtype=req.dtype, quantization=req.quantization,
        kv_cache_dtype=req.kv_cache_dtype, context=req.context, users=req.users, batch_tokens=req.batch_tokens,
        gpu=req.gpu, gpu_memory=req.gpu_memory, tensor_parallel_size=req.tensor_parallel_size,
        pipeline_parallel_size=req.pipeline_parallel_size, method=method, block_size=req.block_size,
    )
    return result.to_dict()


def estimate_key(req: EstimateRequest) -> str:
    return req.model_dump_json()


def render(data: Any) -> bytes:
    """JSON bytes through the same renderer as the CLI's --json (NaN and inf become null)."""
    return to_json(data).encode()


@lru_cache(maxsize=1)
def model_rows() -> list[dict[str, Any]]:
    """Rows of `vramplan models --json` (kept equal to the CLI by tests/service/test_parity.py)."""
    from vramplan.model import catalog
    from vramplan.model.hf_config import spec_from_config
    from vramplan.model.params import count_params

    rows = []
    for repo_id, cfg in catalog.catalogue().items():
        spec = spec_from_config(cfg, name=repo_id)
        counts = count_params(spec)
        rows.append({"id": repo_id, "model_type": spec.model_type, "params": counts.total,
                     "active_params": counts.active_per_token, "layers": spec.num_layers,
                     "kv_heads": spec.num_kv_heads, "max_context": spec.max_position_embeddings,
                     "aliases": catalog.aliases(repo_id)})
    return rows


@lru_cache(maxsize=1)
def gpu_rows() -> list[dict[str, Any]]:
    """Rows of `vramplan gpus --json`."""
    from vramplan.hardware import list_gpus

    return [{"name": g.name, "aliases": list(g.aliases), "memory_bytes": g.memory_bytes,
             "memory_gib": round(g.memory_bytes / 2**30, 2),
             "memory_bandwidth_bytes_per_s": g.memory_bandwidth_bytes_per_s,
             "bf16_flops": g.flops.bf16, "price_per_hour_usd": g.price_per_hour_usd} for g in list_gpus()]


class _WallClockExceeded(Exception):
    pass


def simulate_dict(req: SimulateRequest, settings: Settings) -> dict[str, Any]:
    """`vramplan simulate --json` for this request, with the server's bounds on time and size.

    Same checks, budget and meta as the CLI (its helpers are reused, not copied); the model is
    resolved by catalogue or Hub id only, and the replay stops once the wall-time budget is spent.
    """
    from vramplan.cli_commands.simulate import _check_numbers, _workload, _workload_dict
    from vramplan.simulate import SchedulerConfig, SimulationConfig, make_trace, run_simulation
    from vramplan.simulate.adapter import kv_budget
    from vramplan.simulate.allocators import ALLOCATORS
    from vramplan.units import parse_size

    if req.duration > settings.simulate_max_duration_s:
        raise InputError(f"duration {req.duration:g} is above this server's limit of "
                         f"{settings.simulate_max_duration_s:g} simulated seconds: shorten it")
    if req.rate * req.duration > settings.simulate_max_requests:
        raise InputError(f"rate x duration = {req.rate * req.duration:,.0f} requests is above this server's limit of "
                         f"{settings.simulate_max_requests:,}: lower the rate or the duration")
    _check_numbers(req.rate, req.duration, req.block_size, req.max_model_len, req.max_num_seqs,
                   req.max_num_batched_tokens, req.n, req.beam_width, req.system_prompt_len,
                   req.system_prompt_share, req.preemption)
    model_id = _model_id(req.model, settings)
    names = list(ALLOCATORS) if req.allocator == "all" else [req.allocator]
    swap_bytes = 0 if req.swap_space.strip() in ("0", "0GiB", "0GB", "0B") else parse_size(req.swap_space)
    wl = _workload(req.workload, rate=req.rate, duration_s=req.duration, seed=req.seed, n=req.n,
                   beam_width=req.beam_width, system_prompt_len=req.system_prompt_len,
                   system_prompt_share=req.system_prompt_share, max_len=req.max_model_len)
    budget = kv_budget(model_id, req.gpu, dtype=req.dtype, quantization=req.quantization,
                       kv_cache_dtype=req.kv_cache_dtype, tensor_parallel_size=req.tensor_parallel_size,
                       gpu_memory_utilization=req.gpu_memory_utilization, max_model_len=req.max_model_len,
                       max_num_seqs=req.max_num_seqs, max_num_batched_tokens=req.max_num_batched_tokens,
                       kv_memory=req.kv_memory, enforce_eager=req.enforce_eager)
    sched = SchedulerConfig(max_num_batched_tokens=req.max_num_batched_tokens, max_num_seqs=req.max_num_seqs,
                            preemption=req.preemption, swap_space_bytes=swap_bytes, seed=req.seed)
    base = SimulationConfig(workload=wl, hardware=budget.hardware, allocator=names[0], block_size=req.block_size,
                            scheduler=sched)
    base.validate()
    deadline = time.monotonic() + settings.simulate_max_wall_s

    def progress(_done: int, _total: int) -> None:
        if time.monotonic() > deadline:
            raise _WallClockExceeded

    try:
        trace = make_trace(wl)
        results = {name: run_simulation(replace(base, allocator=name), progress, trace) for name in names}
    except _WallClockExceeded:
        raise InputError(f"the simulation needed more than this server's {settings.simulate_max_wall_s:g} s of "
                         "wall time: lower the rate or the duration, or run `vramplan simulate` locally") from None
    meta = {"kv_budget": budget.to_dict(), "workload": _workload_dict(req.workload, base)}
    dicts = {name: {**res.to_dict(), **meta} for name, res in results.items()}
    return dicts[names[0]] if len(names) == 1 else dicts


def _model_id(name: str, settings: Settings) -> str:
    """The canonical name of a catalogue model or Hub id, refusing anything the loader might read as a file.

    ``simulate.adapter.kv_budget`` takes a string and tries it as a path first; the resolver below
    only accepts catalogue names and Hub ids, and a name that happens to exist as a path on this
    server is refused rather than read.
    """
    from pathlib import Path

    spec = resolve_model(name, None, None, settings)
    assert spec is not None
    canonical = spec.name
    try:
        shadowed = Path(canonical).exists()
    except OSError:
        shadowed = True
    if shadowed or canonical.startswith((".", "/", "~")) or Path(canonical).suffix in (".json", ".gguf", ".safetensors"):
        raise InputError(f"model {name!r} cannot be simulated by this server: use a catalogue name")
    return canonical


def compute_result(kind: str, scenario: dict[str, Any], settings: Settings) -> dict[str, Any]:
    """The result of a scenario saved without one: the same function its route calls."""
    from pydantic import ValidationError

    try:
        if kind == "estimate":
            return estimate_dict(EstimateRequest.model_validate(scenario), settings)
        if kind == "simulate":
            return simulate_dict(SimulateRequest.model_validate(scenario), settings)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "scenario"
        raise InputError(f"scenario is not a valid {kind} request: {where}: {first['msg']}") from None
    raise InputError(f"a {kind!r} plan needs its result: send the response you got as 'result'")


_SAFE_NAME = __import__("re").compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,95}(/[A-Za-z0-9][A-Za-z0-9._-]{0,95})?$")


def check_model_name(name: str) -> None:
    """Refuse a model name that a library loader could take for a file on this server.

    ``engines.vllm.resolve_model_name`` (used by /api/vllm and /api/explain) tries names as paths
    when they start with '/' or '.', end in .json/.gguf/.safetensors, or exist on disk. The API only
    serves catalogue names and Hub-shaped ids, so anything else is rejected before it gets there.
    """
    from pathlib import Path

    ok = bool(_SAFE_NAME.match(name)) and not name.endswith((".json", ".gguf", ".safetensors"))
    if ok:
        try:
            ok = not any(Path(p).exists() for p in (name, name.split("/")[-1]))
        except OSError:
            ok = False
    if not ok:
        raise InputError(f"model {name[:100]!r} looks like a file path: this server reads no local files; "
                         "use a catalogue name (GET /api/models) or a Hub id, or run `vramplan` locally")


def vllm_dict(req: Any) -> dict[str, Any]:
    """`vramplan vllm ... --json` for this request."""
    import shlex

    from vramplan.engines.vllm import predict_vllm
    from vramplan.engines.vllm_args import parse_vllm_args

    if req.command is not None:
        try:
            args = shlex.split(req.command)
        except ValueError as exc:
            raise InputError(f"command is not a valid shell line ({exc})") from None
    else:
        args = list(req.args)
    model = parse_vllm_args(list(args)).settings.get("model")
    if model:
        check_model_name(str(model))
    pred = predict_vllm(args, gpu=req.gpu, gpu_memory=req.gpu_memory, engine_version=req.engine_version,
                        usage_context="offline" if req.offline else "api_server")
    data = pred.to_dict()
    extra = data.pop("extra", {})
    data["ignored_flags"] = extra.get("ignored_flags", [])
    return data


def explain_dict(text: str, gpu: str | None) -> dict[str, Any]:
    """`vramplan explain --json` for a log's text; a log naming a local path as its model is refused."""
    from vramplan.explain import explain_log
    from vramplan.logs import parse_log

    try:
        parsed = parse_log(text)
        settings = parsed.settings or {}
    except Exception:
        settings = {}
    for key in ("model", "served_model_name"):
        if settings.get(key):
            check_model_name(str(settings[key]).split(" (")[0].strip())
    return explain_log(text, gpu=gpu)


def train_dict(req: Any, settings: Settings) -> dict[str, Any]:
    """`vramplan train --json` for this request."""
    from vramplan.training import estimate_training

    spec = resolve_model(req.model, req.config, req.name, settings)
    result = estimate_training(
        spec, params=req.params, gpu=req.gpu, gpu_memory=req.gpu_memory, method=req.method, micro_batch=req.micro_batch,
        seq_len=req.seq_len, gpus=req.gpus, zero=req.zero, fsdp=req.fsdp, tensor_parallel=req.tensor_parallel_size,
        pipeline_parallel=req.pipeline_parallel_size, sequence_parallel=req.sequence_parallel, offload=req.offload,
        offload_params=req.offload_params, recompute=req.recompute, optimizer=req.optimizer, precision=req.precision,
        lora_rank=req.lora_rank, lora_targets=req.lora_targets, flash_attention=req.flash_attention,
    )
    return result.to_dict()


def plan_dict(req: Any, settings: Settings) -> dict[str, Any]:
    """`vramplan plan --json` for this request.

    A model name is passed on as the string the CLI would pass (so launch lines read the same), after
    the path guard; an uploaded config goes in as a ModelSpec.
    """
    from vramplan.planner import plan

    if req.config is not None:
        model: Any = resolve_model(None, req.config, req.name, settings)
    elif req.model:
        check_model_name(req.model.strip())
        resolve_model(req.model, None, None, settings)  # UnknownModelError (404) before the search starts
        model = req.model.strip()
    else:
        raise InputError("give a model (catalogue name or Hub id) or config (an uploaded config.json)")
    result = plan(model, req.context, req.users, rate=req.rate, ttft_ms=req.ttft_ms, tpot_ms=req.tpot_ms,
                  availability=req.availability, gpus=req.gpus, dtype=req.dtype, quantization=req.quantization,
                  engine=req.engine, criterion=req.criterion, kv_cache_dtype=req.kv_cache_dtype, limit=req.limit)
    return result.to_dict()
