"""The `vramplan vllm` command: JSON keys, ignored flags, one-line errors."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from vramplan.cli import app, main

runner = CliRunner()


def test_json_keys() -> None:
    r = runner.invoke(
        app,
        [
            "vllm",
            "vllm",
            "serve",
            "meta-llama/Llama-3.1-8B-Instruct",
            "--max-model-len=8k",
            "--port",
            "8000",
            "--gpu",
            "H100-80GB",
            "--engine-version",
            "0.19",
            "--json",
        ],
    )
    assert r.exit_code == 0, r.output
    d = json.loads(r.output)
    for key in (
        "weights_gib",
        "non_torch_gib",
        "activation_peak_gib",
        "cuda_graph_gib",
        "available_kv_cache_gib",
        "kv_cache_tokens",
        "max_concurrency",
        "starts",
        "errors",
        "fixes",
        "settings",
        "ignored_flags",
        "assumptions",
        "engine_version",
    ):
        assert key in d
    assert d["ignored_flags"] == ["--port 8000"] and d["starts"] is True


def test_text_output_and_fixes() -> None:
    r = runner.invoke(app, ["vllm", "meta-llama/Llama-3.1-8B-Instruct", "--gpu=L4"])
    assert r.exit_code == 0
    assert "starts: NO" in r.output and "fix: --max-model-len " in r.output


def test_bad_input_one_line(capsys) -> None:
    try:
        main(
            [
                "vllm",
                "Qwen/Qwen2.5-7B-Instruct",
                "--gpu-memory-utilization",
                "1.5",
                "--gpu",
                "H100-80GB",
            ]
        )
    except SystemExit as e:
        assert e.code == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "gpu-memory-utilization" in err[0]
