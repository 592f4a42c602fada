"""What the routes call: resolve a model without touching server files, then one library function.

Kept apart from the routes so the plans route (which recomputes a result when a client saves only a
scenario) and the estimate route go through the same code, and so the expensive parts are cached:
model resolution (config.json -> ModelSpec) per catalogue name or Hub id, and whole results per
normalised request (``service.shared``, bounded in bytes), since ``estimate`` is a pure function.
"""

from __future__ import annotations

import time
from functools import lru_cache
from typing import Any

from vramplan.errors import InputError, UnknownModelError
from vramplan.model.spec import ModelSpec
from vramplan.render import to_json
from vramplan.service.schemas import EstimateRequest, SimulateRequest
from vramplan.service.settings import Settings


@lru_cache(maxsize=512)
def _catalogue_or_hub_spec(
    name: str, allow_hub: bool, hub_token: bool = False, hub_failure_ttl_s: float = 300.0
) -> ModelSpec:
    """A model by catalogue name, else by Hub id (config.json only). Never a path on this server.

    ``vramplan.model.load.load_model`` would treat "./x", "/etc/..." or "x.json" as files; a client
    must not make the server read files, so this resolver only asks the catalogue and the Hub.
    """
    from vramplan.model import catalog
    from vramplan.model.hf_config import spec_from_config

    repo_id = catalog.find(name)
    if repo_id is not None:
        return spec_from_config(
            catalog.catalogue()[repo_id], name=repo_id, source=f"catalogue:{repo_id}"
        )
    from vramplan.model.load import _HUB_ID

    if allow_hub and _HUB_ID.match(name):
        from vramplan.service.hub_gate import gate

        config = gate(hub_failure_ttl_s).fetch_config(name, token=hub_token)
        return spec_from_config(config, name=name, source=f"hub:{name}")
    close = catalog.suggestions(name)
    hint = f" Closest catalogue names: {', '.join(close)}." if close else ""
    hub = " or a Hugging Face Hub id (org/name)" if allow_hub else ""
    raise UnknownModelError(
        f"unknown model {name!r}: not in the catalogue{' and not a Hub id' if allow_hub else ''}.{hint} "
        f"Use a name from GET /api/models{hub}, or upload the model's config.json."
    )


#: Largest integer an uploaded config.json may hold. Real configs stay far below (vocabularies of
#: 2^18, contexts of 2^24, rope thetas of 1e9 as floats); 1e30-sized widths only make the arithmetic
#: return absurd numbers (or overflow), so they are refused with the field's name.
MAX_CONFIG_INT = 1 << 40


def check_config_numbers(config: Any, where: str = "config") -> None:
    """InputError for the first integer above MAX_CONFIG_INT or non-finite float in a config."""
    import math

    stack: list[tuple[str, Any]] = [(where, config)]
    while stack:
        path, value = stack.pop()
        if isinstance(value, dict):
            stack.extend((f"{path}.{k}", v) for k, v in value.items())
        elif isinstance(value, list):
            stack.extend((f"{path}[{i}]", v) for i, v in enumerate(value))
        elif isinstance(value, bool):
            continue
        elif isinstance(value, int) and abs(value) > MAX_CONFIG_INT:
            raise InputError(
                f"{path[:200]} is {str(value)[:30]}{'...' if len(str(value)) > 30 else ''}, beyond any "
                f"real model (at most {MAX_CONFIG_INT:,}): upload the model's real config.json"
            )
        elif isinstance(value, float) and not math.isfinite(value):
            raise InputError(f"{path[:200]} is {value}: upload the model's real config.json")


def _uploaded_spec(config: dict[str, Any], name: str) -> ModelSpec:
    """Not cached: keys would be whole configs (1 MB each); whole results are cached instead."""
    from vramplan.model.hf_config import spec_from_config

    check_config_numbers(config)
    return spec_from_config(config, name=name, source="upload")


def resolve_model(
    model: str | None, config: dict[str, Any] | None, name: str | None, settings: Settings
) -> ModelSpec | None:
    """The ModelSpec a request names (catalogue name, Hub id or uploaded config.json), or None."""
    if config is not None:
        return _uploaded_spec(config, name or "uploaded config.json")
    if model is None or not model.strip():
        return None
    if any(ord(c) < 32 for c in model):
        raise UnknownModelError(
            "model name contains control characters: use a catalogue name or a Hub id"
        )
    # The operator's Hub token only for authenticated clients, and only when the operator said so.
    hub_token = settings.hub_use_token and settings.auth == "tokens"
    return _catalogue_or_hub_spec(
        model.strip(), settings.allow_hub, hub_token, settings.hub_failure_ttl_s
    )


def estimate_dict(req: EstimateRequest, settings: Settings) -> dict[str, Any]:
    """``vramplan estimate --json`` for this request: the same library call (``vramplan.run``)."""
    from vramplan.run import run

    spec = resolve_model(req.model, req.config, req.name, settings)
    values = req.model_dump(exclude={"model", "config", "name"})
    if "context" not in req.model_fields_set:
        values["context"] = (
            None  # the table's default, shortened to the model's maximum (as the CLI)
        )
    return run("estimate", values, model=spec)


def estimate_key(req: EstimateRequest) -> str:
    """A fixed-size key (SHA-256 of the normalised request), whatever config.json it carries."""
    from vramplan.service.shared import cache_key

    # An unset context means "the default, shortened to the model's maximum": not the same request
    # as an explicit 4096 for a model of 2,048 positions.
    unset = "" if "context" in req.model_fields_set else "|context=default"
    return cache_key("estimate", req.model_dump_json() + unset)


def render(data: Any) -> bytes:
    """JSON bytes through the same renderer as the CLI's --json (NaN and inf become null)."""
    return to_json(data).encode()


@lru_cache(maxsize=1)
def model_rows() -> list[dict[str, Any]]:
    """``vramplan.catalogue_rows.model_rows()`` (what `vramplan models --json` prints), built once per process."""
    from vramplan import catalogue_rows

    return catalogue_rows.model_rows()


@lru_cache(maxsize=1)
def gpu_rows() -> list[dict[str, Any]]:
    """``vramplan.catalogue_rows.gpu_rows()`` (what `vramplan gpus --json` prints), built once per process."""
    from vramplan import catalogue_rows

    return catalogue_rows.gpu_rows()


class _WallClockExceeded(Exception):
    pass


def simulate_dict(req: SimulateRequest, settings: Settings) -> dict[str, Any]:
    """`vramplan simulate --json` for this request, with the server's bounds on time and size.

    The same ``vramplan.run`` call as the CLI; the model is resolved by catalogue or Hub id only
    (never a path), no sample file is read, and the replay stops once the wall-time budget is spent.
    """
    from vramplan.run import run

    if req.duration > settings.simulate_max_duration_s:
        raise InputError(
            f"duration {req.duration:g} is above this server's limit of "
            f"{settings.simulate_max_duration_s:g} simulated seconds: shorten it"
        )
    if req.rate * req.duration > settings.simulate_max_requests:
        raise InputError(
            f"rate x duration = {req.rate * req.duration:,.0f} requests is above this server's limit of "
            f"{settings.simulate_max_requests:,}: lower the rate or the duration"
        )
    spec = resolve_model(req.model, None, None, settings)
    assert spec is not None
    deadline = time.monotonic() + settings.simulate_max_wall_s

    def progress(_done: int, _total: int) -> None:
        if time.monotonic() > deadline:
            raise _WallClockExceeded

    try:
        result = run(
            "simulate",
            req.model_dump(exclude={"model"}),
            model=spec,
            progress=progress,
            allow_files=False,
        )
    except _WallClockExceeded:
        raise InputError(
            f"the simulation needed more than this server's {settings.simulate_max_wall_s:g} s of "
            "wall time: lower the rate or the duration, or run `vramplan simulate` locally"
        ) from None
    return result


def compute_result(kind: str, scenario: dict[str, Any], settings: Settings) -> dict[str, Any]:
    """The result of a saved scenario: the same function its route calls (a client's result is
    never stored, so a permalink shows only what this server computed)."""
    from pydantic import ValidationError

    from vramplan.service import schemas
    from vramplan.service.routes.sglang import SglangRequest, sglang_dict

    routes: dict[str, tuple[Any, Any]] = {
        "estimate": (EstimateRequest, lambda r: estimate_dict(r, settings)),
        "simulate": (SimulateRequest, lambda r: simulate_dict(r, settings)),
        "plan": (schemas.PlanRequest, lambda r: plan_dict(r, settings)),
        "train": (schemas.TrainRequest, lambda r: train_dict(r, settings)),
        "vllm": (schemas.VllmRequest, vllm_dict),
        "explain": (schemas.ExplainRequest, lambda r: explain_dict(r.log, r.gpu)),
        "perf": (schemas.PerfRequest, lambda r: perf_dict(r, settings)),
        "sglang": (SglangRequest, sglang_dict),
    }
    if kind not in routes:
        raise InputError(f"unknown plan kind {kind!r}: use one of {', '.join(routes)}")
    model, run = routes[kind]
    try:
        request = model.model_validate(scenario)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "scenario"
        raise InputError(
            f"scenario is not a valid {kind} request: {where}: {first['msg']}"
        ) from None
    return run(request)


_SAFE_NAME = __import__("re").compile(
    r"^[A-Za-z0-9][A-Za-z0-9._-]{0,95}(/[A-Za-z0-9][A-Za-z0-9._-]{0,95})?$"
)


def check_model_name(name: str) -> None:
    """Refuse a model name that a library loader could take for a file on this server.

    ``engines.vllm.resolve_model_name`` (used by /api/vllm and /api/explain) tries names as paths
    when they start with '/' or '.', end in .json/.gguf/.safetensors, or exist on disk. The API only
    serves catalogue names and Hub-shaped ids, so anything else is rejected before it gets there,
    without a stat (the answer would reveal what exists); relative names cannot reach anything
    either, as the workers run in an empty directory.
    """
    ok = bool(_SAFE_NAME.match(name)) and not name.endswith((".json", ".gguf", ".safetensors"))
    if not ok:
        raise InputError(
            f"model {name[:100]!r} looks like a file path: this server reads no local files; "
            "use a catalogue name (GET /api/models) or a Hub id, or run `vramplan` locally"
        )


def vllm_dict(req: Any) -> dict[str, Any]:
    """`vramplan vllm ... --json` for this request (after the path guard on the model name)."""
    import shlex

    from vramplan.engines.vllm_args import parse_vllm_args
    from vramplan.run import run

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
    return run("vllm", {**req.model_dump(exclude={"command"}), "args": args})


def perf_dict(req: Any, settings: Settings) -> dict[str, Any]:
    """`vramplan perf ... --json` for this request (catalogue name or Hub id only)."""
    from vramplan.run import run

    spec = resolve_model(req.model, req.config, req.name, settings)
    if spec is None:
        raise InputError(
            "give a model (catalogue name or Hub id) or config (an uploaded config.json)"
        )
    return run(
        "perf", req.model_dump(exclude={"model", "config", "name"}), model=spec, allow_files=False
    )


def explain_dict(text: str, gpu: str | None) -> dict[str, Any]:
    """`vramplan explain --json` for a pasted log, which never makes the server touch a file."""
    from vramplan.service.explain_guard import explain_untrusted

    return explain_untrusted(text, gpu)


def train_dict(req: Any, settings: Settings) -> dict[str, Any]:
    """`vramplan train --json` for this request."""
    from vramplan.run import run

    spec = resolve_model(req.model, req.config, req.name, settings)
    return run("train", req.model_dump(exclude={"model", "config", "name"}), model=spec)


def plan_dict(req: Any, settings: Settings) -> dict[str, Any]:
    """`vramplan plan --json` for this request.

    A model name is passed on as the string the CLI would pass (so launch lines read the same), after
    the path guard; an uploaded config goes in as a ModelSpec.
    """
    from vramplan.run import run

    if req.config is not None:
        model: Any = resolve_model(None, req.config, req.name, settings)
    elif req.model:
        check_model_name(req.model.strip())
        resolve_model(
            req.model, None, None, settings
        )  # UnknownModelError (404) before the search starts
        model = req.model.strip()
    else:
        raise InputError(
            "give a model (catalogue name or Hub id) or config (an uploaded config.json)"
        )
    return run("plan", req.model_dump(exclude={"model", "config", "name"}), model=model)
