"""One table of fields: CLI options, API request schemas and library defaults cannot drift apart."""

from __future__ import annotations

import inspect
from dataclasses import fields
from typing import Any

import pytest
import typer

from vramplan.cli import app
from vramplan.errors import InputError
from vramplan.scenario import EngineSettings, Hardware, Precision, Scenario, Workload
from vramplan.scenario_fields import FIELDS, check, to_argv

COMMANDS = ("estimate", "perf", "simulate", "plan")


def _commands() -> dict[str, Any]:
    group: Any = typer.main.get_command(app)
    return {name: group.commands[name] for name in COMMANDS}


def _cli_params() -> list[tuple[str, Any]]:
    """(command, click option) for every option of a table field."""
    return [
        (cmd, p)
        for cmd, c in _commands().items()
        for p in c.params
        if p.param_type_name == "option" and p.name in FIELDS
    ]


def test_every_shared_field_is_in_some_command() -> None:
    seen = {p.name for _, p in _cli_params()}
    missing = set(FIELDS) - seen - {"model"}  # the model is an argument
    assert not missing, missing


@pytest.mark.parametrize("cmd, param", _cli_params(), ids=lambda x: getattr(x, "name", x))
def test_cli_option_is_the_table(cmd: str, param: Any) -> None:
    spec = FIELDS[param.name]
    assert spec.flag in param.opts
    if spec.short:
        assert spec.short in param.opts
    assert param.help is not None and param.help.endswith(spec.description)
    if not param.required:
        assert param.default == spec.default, (cmd, param.name)


def test_api_request_fields_are_the_table() -> None:
    from pydantic_core import PydanticUndefined

    from vramplan.service import schemas

    models = (
        schemas.EstimateRequest,
        schemas.SimulateRequest,
        schemas.PlanRequest,
        schemas.PerfRequest,
        schemas.VllmRequest,
    )
    checked = 0
    for model in models:
        for name, info in model.model_fields.items():
            if name not in FIELDS or (name == "model" and model is not schemas.SimulateRequest):
                continue  # ModelSource.model documents the API's own resolver
            spec = FIELDS[name]
            assert info.description == spec.description, (model.__name__, name)
            if info.default is not PydanticUndefined:
                assert info.default == spec.default, (model.__name__, name)
            bounds = {
                k: getattr(m, k)
                for m in info.metadata
                for k in ("ge", "gt", "le", "lt")
                if hasattr(m, k)
            }
            want = {
                k: getattr(spec, k)
                for k in ("ge", "gt", "le", "lt")
                if getattr(spec, k) is not None
            }
            assert bounds == want, (model.__name__, name)
            checked += 1
    assert checked >= 40


def test_library_defaults_are_the_table() -> None:
    for group in (Workload, Precision, Hardware, EngineSettings):
        for f in fields(group):
            if f.name in FIELDS:
                assert f.default == FIELDS[f.name].default, (group.__name__, f.name)
    from vramplan.estimator import estimate
    from vramplan.perf import perf

    for fn in (estimate, perf):
        for name, p in inspect.signature(fn).parameters.items():
            if name in FIELDS and p.default is not inspect.Parameter.empty and name != "engine":
                # engine settings default to None = "the engine's own default"; never a typed number
                assert p.default in (FIELDS[name].default, None), (fn.__name__, name)


def test_limits_are_declared_once_and_enforced() -> None:
    assert FIELDS["block_size"].le == 1024 and FIELDS["tensor_parallel_size"].le == 1024
    with pytest.raises(InputError, match="--block-size"):
        check("block_size", 4097)
    with pytest.raises(InputError, match="must be positive"):
        Workload(context=0)
    with pytest.raises(InputError, match="absurdly large"):
        Hardware(tensor_parallel_size=10**6)
    with pytest.raises(InputError, match="gpu-memory-utilization"):
        EngineSettings(gpu_memory_utilization=1.5)


def test_scenario_round_trip_and_argv() -> None:
    s = Scenario.from_values("llama-3.1-8b", context=8192, gpu="H100-80GB", max_num_seqs=64)
    assert s.workload.context == 8192 and s.hardware.gpu == "H100-80GB"
    assert s.engine.max_num_seqs == 64 and s.values()["context"] == 8192
    with pytest.raises(InputError, match="unknown scenario field"):
        Scenario.from_values("x", contxt=1)
    argv = to_argv({"max_num_seqs": 64, "enforce_eager": True, "engine": "vllm", "dtype": None})
    assert argv == ["--max-num-seqs", "64", "--enforce-eager"]
