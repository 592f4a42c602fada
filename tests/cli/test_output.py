"""What a user sees: every command at 80 columns, --version, --check, --csv, no None, units everywhere."""

from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from vramplan.cli import app
from vramplan.render import CHECK_FAILED_EXIT

LOGS = Path(__file__).resolve().parents[1] / "data" / "logs"
SGLANG_LOG = LOGS / "sglang-docs-llama31-8b-80gb.log"
TGI_LOG = LOGS / "tgi-2744-llama31-70b-2xa100.log"
VLLM_LOG = LOGS / "llmdplanner-google-gemma-3-27b-it-tp1pp1dp1--8192.log"
LLAMACPP_LOG = LOGS / "extra-llamacpp-llamafile552-trilm-rtx4080.log"

#: (argv, full names that must appear, units that must appear)
COMMANDS: list[tuple[list[str], list[str], list[str]]] = [
    (
        ["estimate", "llama-3.1-8b", "--gpu", "H100-80GB", "--users", "1"],
        ["meta-llama/Llama-3.1-8B", "H100-80GB-SXM"],
        ["GiB", "1 user x 4,096 tokens"],
    ),
    (["models"], ["meta-llama/Llama-4-Scout-17B-16E-Instruct", "mistral-7b"], ["B"]),
    (["gpus"], ["A100-80GB-PCIe", "H100-80GB-SXM"], ["GiB", "TB/s"]),
    (
        ["vllm", "meta-llama/Llama-3.1-8B-Instruct", "--gpu", "L4"],
        ["meta-llama/Llama-3.1-8B"],
        ["GiB", "tokens"],
    ),
    (
        ["sglang", "--model-path", "Qwen/Qwen3-8B", "--gpu", "H100-80GB"],
        ["Qwen/Qwen3-8B", "--mem-fraction-static"],
        ["GiB", "tokens", "KiB/token"],
    ),
    (
        ["tgi", "--model-id", "Qwen/Qwen3-8B", "--gpu", "H100-80GB"],
        ["Qwen/Qwen3-8B", "max batch total tokens (warm-up)"],
        ["GiB", "tokens"],
    ),
    (
        ["llamacpp", "-m", "Llama-3.1-8B-Q4_K_M", "-c", "4096", "-ngl", "99", "--gpu", "RTX-4090"],
        ["Llama-3.1-8B-Q4_K_M", "compute buffer CUDA0"],
        ["GiB", "tokens"],
    ),
    (["hf", "qwen3-8b", "--gpu", "L4"], ["Qwen/Qwen3-8B"], ["GiB", "tokens"]),
    (
        ["perf", "llama-3.1-8b", "--gpu", "H100-80GB", "--input-len", "1024"]
        + ["--output-len", "256", "--concurrency", "32"],
        ["llama-3.1-8b"],
        ["ms", "tokens/s", "requests/s"],
    ),
    (
        ["plan", "llama-3.1-8b", "--context", "8192", "--users", "16", "--rate", "4"]
        + ["--gpus", "MI300X,A100-40GB-PCIe,RTX-4090", "--limit", "5"],
        ["meta-llama/Llama-3.1-8B", "A100-40GB-PCIe"],
        ["ms", "$", "output 256 tokens"],
    ),
    (
        ["simulate", "opt-13b", "--gpu", "A100-40GB", "--duration", "30", "--allocator", "all"],
        ["facebook/opt-13b", "A100-40GB-SXM", "TTFT p99 ms", "radix"],
        ["GiB", "%"],
    ),
    (
        ["train", "llama-3.1-8b", "--method", "qlora", "--micro-batch", "4", "--gpu", "RTX-4090"],
        ["meta-llama/Llama-3.1-8B"],
        ["GiB", "4 sequences x 2,048 tokens"],
    ),
    (["explain", str(SGLANG_LOG)], ["meta-llama/Meta-Llama-3.1-8B-Instruct"], ["GiB", "tokens"]),
    (["explain", str(VLLM_LOG)], ["google/gemma-3-27b-it"], ["GiB", "tokens"]),
]


def run(argv: list[str], columns: int = 80) -> tuple[int, str]:
    """Run like the console script: a VramplanError is one 'error:' line and exit status 1."""
    from vramplan.errors import VramplanError

    r = CliRunner().invoke(app, argv, env={"COLUMNS": str(columns), "HF_HUB_OFFLINE": "1"})
    if isinstance(r.exception, VramplanError):
        return 1, f"{r.output}error: {r.exception}\n"
    if r.exception and not isinstance(r.exception, SystemExit):
        raise r.exception
    return r.exit_code, r.output


@pytest.mark.parametrize(("argv", "names", "units"), COMMANDS, ids=lambda v: " ".join(v[:2]))
def test_80_columns_full_names_units_no_none(
    argv: list[str], names: list[str], units: list[str]
) -> None:
    code, out = run(argv)
    assert code == 0, out
    too_wide = [line for line in out.splitlines() if len(line) > 80]
    assert not too_wide, too_wide
    flat = re.sub(r"\s+", " ", out)  # a name may wrap inside a cell only at a space
    for name in names:
        assert name in out or name in flat, name
    for unit in units:
        assert unit in flat, unit
    assert "…" not in out
    assert not re.search(r"\bNone\b", out)
    assert not re.search(r"\d\.\d{5,}", out), "unrounded float"


def test_models_lists_every_id_and_alias_in_full() -> None:
    from vramplan.catalogue_rows import model_rows

    _, out = run(["models"])
    for row in model_rows():
        assert row["id"] in out
        for alias in row["aliases"]:
            assert alias in out


def test_narrow_terminal_turns_vertical_without_cutting() -> None:
    code, out = run(["gpus"], columns=40)
    assert code == 0
    assert "┃" not in out  # no table at 40 columns
    assert "A100-80GB-PCIe" in out and "memory (CUDA): 79.15 GiB" in out
    assert max(len(line) for line in out.splitlines()) <= 40


def test_plan_shows_its_output_length_assumption() -> None:
    _, out = run(["plan", "llama-3.1-8b", "--context", "8192", "--users", "16", "--gpus", "L40S"])
    assert "prompt 7,936 + output 256 tokens per request" in out
    _, out = run(
        ["plan", "llama-3.1-8b", "--context", "8192", "--users", "16", "--gpus", "L40S"]
        + ["--output-len", "1000"]
    )
    assert "output 1,000 tokens" in out


def test_version() -> None:
    import vramplan

    code, out = run(["--version"])
    assert code == 0 and out.strip() == f"vramplan {vramplan.__version__}"


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["estimate", "llama-3.1-8b", "--gpu", "H100-80GB"], 0),
        (["estimate", "llama-3.1-70b", "--gpu", "L4", "--tensor-parallel-size", "1"], 3),
        (["vllm", "meta-llama/Llama-3.1-8B-Instruct", "--gpu", "H100-80GB"], 0),
        (["vllm", "meta-llama/Llama-3.1-8B-Instruct", "--gpu", "L4"], 3),
        (["sglang", "--model-path", "Qwen/Qwen3-8B", "--gpu", "H100-80GB"], 0),
        (["sglang", "--model-path", "Qwen/Qwen3-32B", "--gpu", "L4"], 3),
        (["tgi", "--model-id", "Qwen/Qwen3-8B", "--gpu", "H100-80GB"], 0),
        (["tgi", "--model-id", "meta-llama/Llama-3.1-70B", "--gpu", "L4"], 3),
        (["llamacpp", "-m", "Llama-3.1-8B-Q4_K_M", "-c", "4096", "--gpu", "RTX-4090"], 0),
        (["llamacpp", "-m", "Llama-3.1-70B-Q4_K_M", "-ngl", "99", "--gpu", "RTX-4090"], 3),
        (["hf", "qwen3-8b", "--gpu", "L4"], 0),
        (["hf", "qwen3-32b", "--gpu", "L4"], 3),
        (["train", "llama-3.1-8b", "--method", "qlora", "--gpu", "A100-80GB"], 0),
        (["train", "llama-3.1-70b", "--gpu", "RTX-4090"], 3),
    ],
)
def test_check_exit_codes(argv: list[str], expected: int) -> None:
    code, out = run([*argv, "--check"])
    assert code == expected, out
    assert CHECK_FAILED_EXIT == 3
    code_plain, _ = run(argv)  # without --check the answer is printed and the exit is 0
    assert code_plain == 0


def test_check_without_a_gpu_is_an_input_error() -> None:
    code, out = run(["estimate", "llama-3.1-8b", "--check"])
    assert code == 1 and out.startswith("error: --check needs a GPU")  # nothing printed before it


def test_exit_statuses_are_documented() -> None:
    _, out = run(["--help"], columns=200)
    assert "3 with --check" in out
    for command in ("estimate", "sglang", "tgi", "llamacpp", "hf", "train"):
        _, out = run([command, "--help"], columns=200)
        assert "--check" in out and "3 when it does not" in out, command
    _, out = run(["vllm", "--help"], columns=200)
    assert "--check" in out


@pytest.mark.parametrize(
    ("argv", "header"),
    [
        (["estimate", "llama-3.1-8b"], ["component", "per GPU", "1 GPU"]),
        (["models"], ["model", "aliases", "type", "params", "active", "layers", "KV heads"]),
        (["gpus"], ["GPU", "memory (CUDA)", "bandwidth", "bf16 dense", "$/h (ref.)"]),
        (["vllm", "meta-llama/Llama-3.1-8B-Instruct", "--gpu", "L4"], ["figure", "value"]),
        (["sglang", "--model-path", "Qwen/Qwen3-8B", "--gpu", "H100-80GB"], ["figure", "value"]),
        (["hf", "qwen3-8b", "--gpu", "L4"], ["figure", "value"]),
        (
            ["perf", "llama-3.1-8b", "--gpu", "L4", "--input-len", "512", "--output-len", "64"],
            ["figure", "value"],
        ),
        (
            ["plan", "llama-3.1-8b", "--context", "4096", "--users", "4", "--gpus", "L40S"],
            ["replicas x GPU", "weights", "batch", "TTFT", "TPOT"],
        ),
        (
            ["simulate", "opt-13b", "--gpu", "A100-40GB", "--duration", "20", "--allocator", "all"],
            ["metric", "max", "pow2", "oracle", "paged", "radix", "tgi"],
        ),
        (["train", "llama-3.1-8b", "--method", "lora"], ["component", "per GPU"]),
        (["explain", str(SGLANG_LOG)], ["figure", "logged", "predicted", "diff"]),
    ],
)
def test_csv_parses(argv: list[str], header: list[str]) -> None:
    code, out = run([*argv, "--csv"])
    assert code == 0, out
    rows = list(csv.reader(io.StringIO(out)))
    assert rows[0][: len(header)] == header
    assert len(rows) > 1 and all(len(r) == len(rows[0]) for r in rows)
    assert not any(cell == "None" for r in rows for cell in r)


def test_json_and_csv_together_are_refused() -> None:
    code, out = run(["models", "--json", "--csv"])
    assert code == 1 and "not both" in out


@pytest.mark.parametrize("log", sorted(LOGS.glob("*.log")), ids=lambda p: p.name)
def test_explain_text_never_shows_none(log: Path) -> None:
    from vramplan.explain import explain_log, render_text

    text = render_text(explain_log(log.read_text(errors="replace")))
    assert not re.search(r"\bNone\b", text)


def test_explain_sglang_uses_sglang_terms() -> None:
    _, out = run(["explain", str(SGLANG_LOG)], columns=200)
    assert "SGLang" in out and "--mem-fraction-static 0.88" in out
    assert "--enforce-eager" not in out and "max_num_seqs" not in out
    assert "gpu_memory_utilization" not in out


def test_explain_takes_model_gpu_version_and_engine_flags() -> None:
    argv = ["explain", str(TGI_LOG), "--model", "llama-3.1-70b", "--gpu", "A100-80GB"]
    code, out = run([*argv, "--num-shard", "2", "--engine-version", "2.4", "--json"])
    assert code == 0, out
    d = json.loads(out)
    assert d["engine_version"] == "2.4"
    assert d["predicted"]["settings"]["num_shard"] == 2
    assert abs(d["terms"]["kv_cache_tokens"]["relative_difference"]) < 0.05


def test_explain_notes_name_only_flags_it_accepts() -> None:
    from vramplan.explain import explain_log

    for log in (TGI_LOG, LLAMACPP_LOG):
        notes = " ".join(explain_log(log.read_text())["notes"])
        assert "--model" in notes
        assert not re.search(r"--model-path|--model-id|-m FILE", notes), notes
    _, out = run(["explain", str(LLAMACPP_LOG), "--model", "Llama-3.1-8B-Q4_K_M", "--bogus", "1"])
    assert "flags not read for llama.cpp (not modelled): --bogus" in re.sub(r"\s+", " ", out)


def test_explain_refuses_a_non_log_in_one_line(tmp_path: Path) -> None:
    readme = tmp_path / "README.md"
    readme.write_text(
        "# my notes\nRun `vllm serve meta-llama/Llama-3.1-8B [args]` and read the log.\n"
    )
    code, out = run(["explain", str(readme)])
    assert code == 1
    assert len(out.strip().splitlines()) == 1 and "does not look like" in out


def test_offline_hub_id_fails_once_in_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """An unreachable Hub (a closed local port): one connect attempt, then one error line."""
    import socket

    from vramplan.cli import main
    from vramplan.model import hub

    hub.clear_probe_cache()
    attempts: list[object] = []

    def refuse(address: object, *args: object, **kwargs: object) -> object:
        attempts.append(address)
        raise ConnectionRefusedError(111, "Connection refused")

    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_OFFLINE", False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")
    try:
        for _ in range(2):  # a second model in the same process does not probe again
            with pytest.raises(SystemExit) as exc:
                main(["estimate", "some-org/not-cached-model"])
            assert exc.value.code == 1
    finally:
        hub.clear_probe_cache()
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 2 and all(
        line.startswith(
            "error: cannot reach the Hugging Face Hub (127.0.0.1:9: Connection refused)"
        )
        for line in lines
    )
    assert captured.out == ""
    assert attempts == [("127.0.0.1", 9)]


def test_missing_extra_names_the_install_line() -> None:
    import subprocess
    import sys

    code = (
        "import sys; sys.modules['sqlalchemy'] = None\n"
        "from vramplan.cli import main; main(['plans', 'list'])"
    )
    r = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )
    assert r.returncode == 1
    assert r.stderr.strip() == (
        "error: saved plans needs the web extra (sqlalchemy is not installed): "
        'pip install "vramplan[web]"'
    )


def test_plans_list_renders_and_parses(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'plans.db'}"
    code, out = run(["plans", "list", "--database-url", url])
    assert code == 0 and "no saved plans yet" in out
    code, out = run(["plans", "list", "--database-url", url, "--csv"])
    assert code == 0 and next(csv.reader(io.StringIO(out))) == [
        "id",
        "kind",
        "name",
        "created (UTC)",
    ]
