"""`explain`: logged vs predicted per term, failure logs, garbage input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from vramplan.cli import app
from vramplan.errors import FileFormatError
from vramplan.explain import explain_log

LOGS = Path(__file__).resolve().parent / "data" / "logs"


def test_explain_v019_gemma() -> None:
    r = explain_log((LOGS / "llmdplanner-google-gemma-3-27b-it-tp1pp1dp1--8192.log").read_text())
    assert r["engine"] == "vllm" and r["predicted"] is not None
    t = r["terms"]
    assert abs(t["kv_cache_tokens"]["relative_difference"]) < 0.05
    assert "logits" in t["activation_peak_gib"]["likely_cause"]
    assert "--max-num-seqs 256" in t["activation_peak_gib"]["likely_cause"]
    for key in ("engine", "engine_version", "settings", "logged", "predicted", "terms"):
        assert key in r


def test_explain_maxlen_failure_log() -> None:
    r = explain_log((LOGS / "extra-vllm-25350-v1-maxlen-kv-error.log").read_text())
    assert r["log_errors"]
    assert any("122080" in n and "max-model-len" in n for n in r["notes"])
    assert r["terms"]["kv_cache_tokens"]["logged"] == 230528


def test_explain_model_not_in_catalogue_still_reports() -> None:
    # A real log whose model name is replaced by one no catalogue holds: logged figures only
    text = (LOGS / "llmdplanner-meta-llama-llama-4-scout-tp4pp1dp1--8192.log").read_text()
    text = text.replace(
        "meta-llama/Llama-4-Scout-17B-16E-Instruct", "acme-labs/Unreleased-Model-9B"
    )
    r = explain_log(text)
    assert r["predicted"] is None and "not in the catalogue" in " ".join(r["notes"])
    assert r["terms"]["kv_cache_tokens"]["logged"] == 365968


def test_garbage(tmp_path: Path) -> None:
    with pytest.raises(FileFormatError):
        explain_log("hello\nthis is not a log\n")
    bad = tmp_path / "x.log"
    bad.write_bytes(b"\x00\xff garbage")
    r = CliRunner().invoke(app, ["explain", str(bad)])
    assert r.exit_code != 0


def test_cli_json() -> None:
    r = CliRunner().invoke(
        app,
        [
            "explain",
            str(LOGS / "llmdplanner-meta-llama-llama-3-1-8b--tp1pp1dp1--8192.log"),
            "--json",
        ],
    )
    assert r.exit_code == 0, r.output
    d = json.loads(r.output)
    assert abs(d["terms"]["kv_cache_tokens"]["relative_difference"]) < 0.01
