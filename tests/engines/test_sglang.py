"""SGLang: default mem_fraction_static, token pool vs real logs, OOM/negative-KV errors, CLI."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from vramplan.engines.sglang import (
    VERSIONS,
    default_max_running_requests,
    default_mem_fraction_static,
    max_total_tokens,
    predict_from_settings,
    predict_sglang,
    swa_split,
)
from vramplan.errors import InputError


def test_docs_notebook_log_token_count() -> None:
    """SGLang docs (~0.4.1, 80 GB GPU): 444,500 tokens, K 27.13 GB (GiB), 2049 running requests."""
    p = predict_sglang(
        ["--model-path", "meta-llama/Meta-Llama-3.1-8B-Instruct"],
        "A100-80GB",
        engine_version="0.4.1",
    )
    assert p.kv_cache_tokens == pytest.approx(444_500, rel=0.01)
    assert p.extra["k_size_gb"] == pytest.approx(27.13, abs=0.05)
    assert p.settings["max_running_requests"] == 2049
    assert p.extra["mem_fraction_static"] == 0.88


def test_tp_table_and_reserved_rule() -> None:
    old = VERSIONS.nearest_version("0.4.1").value
    assert default_mem_fraction_static(old, 81000, 8, 1, 8192, 160) == 0.81
    # 0.5.1-0.5.2 (server_args.py:366-393): reserved by tier, 9.5 + tp x pp / 2 GiB on an 80 GB GPU.
    tier = VERSIONS.nearest_version("0.5.2").value
    assert default_mem_fraction_static(tier, 81079, 1, 1, 8192, 160) == round(
        (81079 - 10 * 1024) / 81079, 3
    )
    new = VERSIONS.nearest_version("0.5.3").value
    # > 60 GiB: reserved is at least 10 GiB -> (81079 - 10240) / 81079
    # 512 + 1.5 x 8192 + 2 x 256 + 128 = 13,440 MB reserved (above the 10 GiB floor)
    assert default_mem_fraction_static(new, 81079, 1, 1, 8192, 256) == round(
        (81079 - 13440) / 81079, 3
    )
    assert default_mem_fraction_static(new, 81079, 1, 1, 2048, 8) == round(
        (81079 - 10240) / 81079, 3
    )
    small = default_mem_fraction_static(new, 24000, 1, 1, 2048, 24)
    assert small == round((24000 - (512 + 1.5 * 2048 + 48 + 128)) / 24000, 3)


def test_pure_helpers() -> None:
    assert max_total_tokens(10 * 131072 + 5, 131072, 1, None) == 10
    assert max_total_tokens(100 * 1000, 1000, 16, None) == 96
    assert max_total_tokens(100 * 1000, 1000, 1, 50) == 50
    full, swa = swa_split(1000, 1, 5, 0.8, 1)
    assert full * 1 + swa * 5 <= 1000 * 6 and swa == int(full * 0.8)
    assert default_max_running_requests(444500, 131072, 4096) == 2048


def test_mla_latent_is_not_split_by_tp() -> None:
    a = predict_sglang(["--model-path", "DeepSeek-V2-Lite", "--tp", "1"], "H100")
    b = predict_sglang(["--model-path", "DeepSeek-V2-Lite", "--tp", "2"], "H100")
    assert a.extra["cell_size_bytes"] == b.extra["cell_size_bytes"] == 27 * 576 * 2


def test_negative_profiled_value_does_not_start() -> None:
    """Like extra-sglang-7691: weights leave nothing under mem_fraction_static -> negative profiled value."""
    p = predict_sglang(
        ["--model-path", "Llama-3.1-70B", "--tp", "2", "--mem-fraction-static", "0.7"], "A100-80GB"
    )
    assert not p.starts
    assert p.extra["profiled_max_total_tokens"] < 0
    assert any("mem-fraction-static" in e for e in p.errors) and p.fixes


def test_small_remainder_flags_oom_risk() -> None:
    p = predict_sglang(
        [
            "--model-path",
            "Llama-3.1-8B",
            "--mem-fraction-static",
            "0.97",
            "--context-length",
            "131072",
        ],
        "H100",
        engine_version="0.4.9",
    )
    assert p.starts and p.extra["oom_risk"] and p.fixes


def test_max_total_tokens_cap_and_ignored_flags() -> None:
    p = predict_sglang(
        [
            "--model-path",
            "Llama-3.1-8B",
            "--max-total-tokens",
            "5000",
            "--page-size",
            "16",
            "--enable-torch-compile",
            "--log-level",
            "info",
        ],
        "H100",
    )
    assert p.kv_cache_tokens == 4992
    assert any("--enable-torch-compile" in a and "--log-level" in a for a in p.assumptions)


def test_from_log_settings() -> None:
    from pathlib import Path

    from vramplan.logs import parse_log

    log = parse_log(
        (Path(__file__).parents[1] / "data/logs/sglang-docs-llama31-8b-80gb.log").read_text()
    )
    settings = dict(log.settings)
    settings.setdefault("model_path", "Llama-3.1-8B")
    p = predict_from_settings(settings, "A100-80GB", engine_version="0.4.1")
    assert p.kv_cache_tokens == pytest.approx(444_500, rel=0.02)


def test_errors() -> None:
    with pytest.raises(InputError, match="model-path"):
        predict_sglang(["--tp", "2"], "H100")
    with pytest.raises(InputError, match="GPU"):
        predict_sglang(["--model-path", "Llama-3.1-8B"])
    with pytest.raises(InputError, match="between 0 and 1"):
        predict_sglang(["--model-path", "Llama-3.1-8B", "--mem-fraction-static", "1.5"], "H100")


def test_cli_json() -> None:
    from vramplan.cli import app

    r = CliRunner().invoke(
        app, ["sglang", "--model-path", "Llama-3.1-8B", "--tp-size", "1", "--gpu", "H100", "--json"]
    )
    assert r.exit_code == 0, r.output
    data = json.loads(r.output)
    for key in (
        "weights_gib",
        "kv_cache_tokens",
        "available_kv_cache_gib",
        "starts",
        "errors",
        "fixes",
    ):
        assert key in data
