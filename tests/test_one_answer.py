"""One deployment, one answer: vllm, perf and simulate print the same integer KV pool, and every plan
reproduces itself through `vramplan vllm` (its launch line) and `vramplan perf` (its perf_argv)."""

from __future__ import annotations

import json
import shlex
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from vramplan.cli import app

MODEL, HUB_ID, GPU = "llama-3.1-8b", "meta-llama/Llama-3.1-8B", "A100-40GB"


def cli_json(*args: str) -> Any:
    result = CliRunner().invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


@pytest.mark.parametrize(
    "flags",
    [
        [],  # vLLM's defaults for the latest version on this GPU
        ["--engine-version", "0.25"],  # the issue's figures were made with vLLM 0.25's defaults
        ["--gpu-memory-utilization", "0.85", "--max-num-seqs", "64", "--engine-version", "0.11"],
    ],
)
def test_vllm_perf_simulate_give_the_same_kv_tokens(flags: list[str]) -> None:
    max_len = ["--max-model-len", "131072"]
    vllm = cli_json("vllm", HUB_ID, *max_len, *flags, "--gpu", GPU, "--json")
    perf = cli_json(
        "perf", MODEL, "--gpu", GPU, "--input-len", "1000", "--output-len", "200",
        *max_len, *flags, "--json",
    )  # fmt: skip
    sim = cli_json(
        "simulate", MODEL, "--gpu", GPU, "--rate", "1", "--duration", "5", *max_len, *flags,
        "--json",
    )  # fmt: skip
    tokens = vllm["kv_cache_tokens"]
    assert isinstance(tokens, int) and tokens > 100_000
    assert perf["kv_cache_tokens"] == sim["kv_cache_tokens"] == tokens
    assert sim["kv_budget"]["kv_slots"] == sim["capacity_slots"] == tokens
    if flags == ["--engine-version", "0.25"]:
        assert tokens == 160_832  # the issue's figure for `vramplan vllm` (vLLM 0.25 defaults)


def test_perf_takes_the_engines_defaults_for_its_version() -> None:
    from vramplan.engines.vllm import predict_vllm
    from vramplan.perf import build_setup

    for version in ("0.6", "0.11", None):
        s = build_setup(MODEL, "H100-80GB", engine_version=version, max_model_len=4096)
        pred = predict_vllm(
            [HUB_ID, "--max-model-len", "4096"], gpu="H100-80GB", engine_version=version
        )
        assert s.engine.max_num_seqs == pred.settings["max_num_seqs"]
        assert s.engine.max_num_batched_tokens == pred.settings["max_num_batched_tokens"]
        assert s.engine.gpu_memory_utilization == pred.settings["gpu_memory_utilization"]
        assert s.kv_capacity_tokens == pred.kv_cache_tokens


def _plans(*extra: str) -> list[dict[str, Any]]:
    d = cli_json(
        "plan", "llama-3.1-70b", "--context", "8192", "--users", "16",
        "--gpus", "H100-80GB,A100-80GB", "--limit", "3", *extra, "--json",
    )  # fmt: skip
    assert d["plans"]
    return d["plans"]  # type: ignore[no-any-return]


def test_each_plan_reproduces_itself_through_vllm_and_perf() -> None:
    for p in _plans():
        line = p["launch"]["vllm"]
        argv = shlex.split(line)
        assert argv[:3] == [
            "vllm",
            "serve",
            "meta-llama/Llama-3.1-70B",
        ]  # the Hub id, not the alias
        again = cli_json("vllm", *argv[2:], "--gpu", p["gpu"], "--json")
        assert again["kv_cache_tokens"] == p["kv_cache_tokens"] and again["starts"]
        assert p["max_users"] == p["kv_cache_tokens"] // 8192
        perf = cli_json("perf", *p["perf_argv"], "--json")
        assert perf["ttft_ms"] == p["ttft_ms"] and perf["tpot_ms"] == p["tpot_ms"]
        assert perf["kv_cache_tokens"] == p["kv_cache_tokens"]
        # the latency is perf's at the plan's own load: 16 users over the replicas
        assert p["load"] == {"concurrency": -(-16 // (p["replicas"]))} or p["replicas"] > 1


def test_plan_launches_the_engine_asked() -> None:
    for p in _plans("--engine", "sglang"):
        assert set(p["launch"]) == {"sglang"}
        argv = shlex.split(p["launch"]["sglang"])
        assert argv[:3] == ["python", "-m", "sglang.launch_server"]
        assert argv[argv.index("--model-path") + 1] == "meta-llama/Llama-3.1-70B"
        perf = cli_json("perf", *p["perf_argv"], "--json")
        assert perf["engine"] == "sglang" and perf["ttft_ms"] == p["ttft_ms"]


def test_run_is_what_the_cli_prints() -> None:
    from vramplan.run import run

    args = [MODEL, "--gpu", GPU, "--input-len", "512", "--output-len", "128"]
    values = {"gpu": GPU, "input_len": 512, "output_len": 128, "concurrency": 8}
    assert run("perf", {"model": MODEL, **values}) == cli_json(
        "perf", *args, "--concurrency", "8", "--json"
    )
    assert run("vllm", {"args": [HUB_ID], "gpu": GPU}) == cli_json(
        "vllm", HUB_ID, "--gpu", GPU, "--json"
    )


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    model=st.sampled_from(["llama-3.1-8b", "qwen2.5-7b", "opt-13b"]),
    gpu=st.sampled_from(["A100-40GB", "A100-80GB", "H100-80GB", "L40S"]),
    util=st.sampled_from([0.8, 0.85, 0.9, 0.95]),
    max_len=st.sampled_from([1024, 2048]),
    seqs=st.one_of(st.none(), st.integers(1, 512)),
    version=st.sampled_from([None, "0.6", "0.11", "0.19"]),
)
def test_one_pool_for_every_path(
    model: str, gpu: str, util: float, max_len: int, seqs: int | None, version: str | None
) -> None:
    """Invariant: the vLLM argv path, the Engine protocol, perf and simulate size the same pool."""
    from vramplan.engines.base import engine_model
    from vramplan.engines.vllm import predict_vllm
    from vramplan.errors import DoesNotFitError
    from vramplan.model.load import load_model
    from vramplan.perf import build_setup
    from vramplan.scenario import Scenario
    from vramplan.simulate.adapter import kv_budget

    spec = load_model(model).spec
    argv = [spec.name, "--max-model-len", str(max_len), "--gpu-memory-utilization", str(util)]
    argv += ["--max-num-seqs", str(seqs)] if seqs else []
    logged = predict_vllm(argv, gpu=gpu, engine_version=version, fixes=False)
    found = engine_model("vllm")
    assert found is not None
    values = {"gpu": gpu, "gpu_memory_utilization": util, "max_model_len": max_len}
    values.update({"max_num_seqs": seqs} if seqs else {})
    pool = found[0].kv_pool(Scenario.from_values(spec, engine_version=version, **values))
    assert pool.kv_cache_tokens == logged.kv_cache_tokens
    assert pool.kv_cache_bytes == logged.extra["kv_cache_bytes"]
    overrides = {"gpu_memory_utilization": util} | ({"max_num_seqs": seqs} if seqs else {})
    setup = build_setup(
        spec, gpu, engine_version=version, max_model_len=max_len, engine_overrides=overrides
    )
    assert setup.kv_capacity_tokens == logged.kv_cache_tokens
    assert setup.engine.max_num_seqs == logged.settings["max_num_seqs"]
    try:
        budget = kv_budget(
            spec, gpu, gpu_memory_utilization=util, max_model_len=max_len, max_num_seqs=seqs,
            engine_version=version,
        )  # fmt: skip
    except DoesNotFitError:
        assert logged.kv_cache_tokens < 16  # kv_budget refuses a pool under 16 tokens
        return
    assert budget.kv_cache_tokens == logged.kv_cache_tokens
