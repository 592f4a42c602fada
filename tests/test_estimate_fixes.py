"""The estimate's fixes are data (field, value, why), and the two it computes are exact: applying the
``context`` or the ``users`` fix makes the deployment fit, and one more token or user does not."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from vramplan import estimate
from vramplan.cli import app
from vramplan.scenario import Fix

MODEL = "meta-llama/Llama-3.1-8B"
TOO_BIG = dict(gpu="L4", context=32768, users=8, tensor_parallel_size=1)


def _fixes() -> dict[str, Fix]:
    b = estimate(MODEL, **TOO_BIG)  # type: ignore[arg-type]
    assert b.fits is False and b.shortfall_bytes == b.per_gpu_bytes - (b.gpu_memory_bytes or 0) > 0
    assert all(isinstance(f, Fix) for f in b.fixes)
    return {f.flag: f for f in b.fixes}


def test_context_and_users_fixes_are_the_largest_that_fit() -> None:
    fixes = _fixes()
    for field in ("context", "users"):
        value = fixes[field].value
        assert estimate(MODEL, **{**TOO_BIG, field: value}).fits  # type: ignore[arg-type]
        assert not estimate(MODEL, **{**TOO_BIG, field: value + 1}).fits  # type: ignore[arg-type]


def test_other_fixes_name_real_settings_and_each_helps() -> None:
    fixes = _fixes()
    before = estimate(MODEL, **TOO_BIG).per_gpu_bytes  # type: ignore[arg-type]
    for field in ("kv_cache_dtype", "tensor_parallel_size", "quantization"):
        after = estimate(MODEL, **{**TOO_BIG, field: fixes[field].value})  # type: ignore[arg-type]
        assert after.per_gpu_bytes < before, field


def test_json_carries_fields_and_the_cli_renders_flags() -> None:
    args = ["estimate", MODEL, "--gpu", "L4", "--context", "32768", "--users", "8"]
    args += ["--tensor-parallel-size", "1"]
    data = json.loads(CliRunner().invoke(app, [*args, "--json"]).stdout)
    assert {"field": "context", "value": _fixes()["context"].value, "why": "fits 8 users"} in data[
        "fixes"
    ]
    text = CliRunner().invoke(app, args, env={"COLUMNS": "200"}).stdout
    assert f"fix: --context {_fixes()['context'].value} (fits 8 users)" in text
    assert "more per GPU than the" in text
