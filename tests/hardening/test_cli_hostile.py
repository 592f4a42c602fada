"""The CLI under hostile options and files: exit code 1, one `error:` line, never a traceback."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from vramplan.cli import main

CORPUS = Path(__file__).resolve().parents[1] / "data" / "hostile"
MANIFEST = json.loads((CORPUS / "MANIFEST.json").read_text())


def run_cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    with pytest.raises(SystemExit) as info:
        main(argv)
    out = capsys.readouterr()
    return int(info.value.code or 0), out.out + out.err


def assert_one_error_line(code: int, output: str) -> None:
    assert code == 1, output
    assert "Traceback" not in output
    errors = [line for line in output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, output
    assert len(errors[0]) > len("error: ") + 10


DOMAIN_ERRORS = [
    ["estimate", "llama-3.1-8b", "--context", "-1"],
    ["estimate", "llama-3.1-8b", "--context", "0"],
    ["estimate", "llama-3.1-8b", "--context", str(1 << 40)],
    ["estimate", "llama-3.1-8b", "--users", str(10**30)],
    ["estimate", "llama-3.1-8b", "--gpu-memory", "NaN"],
    ["estimate", "llama-3.1-8b", "--gpu-memory", "-80GB"],
    ["estimate", "llama-3.1-8b", "--gpu-memory", "Infinity"],
    ["estimate", "llama-3.1-8b", "--gpu", "H100\u202e"],
    ["estimate", "llama-3.1-8b", "--dtype", "\x1b[31m"],
    ["estimate", "llama-3.1-8b", "--quantization", "Q9_Z"],
    ["estimate", "llama-3.1-8b", "--kv-cache-dtype", "int3"],
    ["estimate", "llama-3.1-8b", "-tp", "3"],
    ["estimate", "llama-3.1-8b", "-pp", "1000"],
    ["estimate", "llama-3.1-8b", "--method", "magic"],
    ["estimate", "--params", "nan"],
    ["estimate", "--params", "1e30"],
    ["estimate", "--params", "70e9", "--bits", "nan"],
    ["estimate", "--params", "70e9", "--bits", "-4"],
    ["estimate", "../../etc/passwd"],
    ["estimate", "/etc"],
    ["estimate", "https://evil/x"],
    ["estimate", "a\x00b"],
    ["estimate", "ünïcødé-🦙"],
    ["estimate", "x" * 5000],
]


@pytest.mark.parametrize(
    "argv", DOMAIN_ERRORS, ids=lambda a: " ".join(a)[:60].encode("unicode_escape").decode()
)
def test_domain_errors(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert_one_error_line(*run_cli(argv, capsys))


@pytest.mark.parametrize("name", sorted(n for n, e in MANIFEST.items() if e["reader"] != "log"))
def test_hostile_model_files(name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / name
    target.write_bytes((CORPUS / name).read_bytes())
    if name.endswith(".safetensors"):
        (tmp_path / "config.json").write_text(
            json.dumps(
                {
                    "model_type": "llama",
                    "hidden_size": 64,
                    "num_attention_heads": 1,
                    "num_hidden_layers": 1,
                    "vocab_size": 10,
                }
            )
        )
    assert_one_error_line(*run_cli(["estimate", str(target)], capsys))


@pytest.mark.parametrize("name", sorted(n for n, e in MANIFEST.items() if e["reader"] == "log"))
def test_hostile_logs_through_explain(
    name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / name
    target.write_bytes((CORPUS / name).read_bytes())
    assert_one_error_line(*run_cli(["explain", str(target)], capsys))


def test_huge_sparse_config_through_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "config.json"
    with open(path, "wb") as fh:
        fh.write(b"{")
        fh.truncate(200 * 1024 * 1024)
    assert_one_error_line(*run_cli(["estimate", str(path)], capsys))


CLI_BUG = (
    "BUG cli.main: typer>=0.16 vendors click as typer._click, so `isinstance(exc, "
    "click.exceptions.ClickException)` is False for usage errors and they escape as a traceback. "
    "Fix: also catch typer's own ClickException, e.g. `from typer._click.exceptions import "
    "ClickException` when present (or duck-type `hasattr(exc, 'show') and hasattr(exc, 'exit_code')`),"
    " then print one `error:` line and exit 1 (or 2 for usage errors)"
)
USAGE_ERRORS = [
    ["estimate", "llama-3.1-8b", "--users", "1e30"],
    ["estimate", "llama-3.1-8b", "--context", "4096.5"],
    ["estimate", "llama-3.1-8b", "--context", "NaN"],
    ["estimate", "llama-3.1-8b", "--no-such-option"],
    ["estimate", "llama-3.1-8b", "--bits", "many"],
    ["no-such-command"],
]


@pytest.mark.parametrize("argv", USAGE_ERRORS, ids=lambda a: " ".join(a)[:60])
def test_usage_errors_have_no_traceback(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    try:
        code, output = run_cli(argv, capsys)
    except Exception as exc:  # what escapes today
        pytest.fail(f"{type(exc).__name__} escaped main(): {exc}")
    assert code in (1, 2) and "Traceback" not in output
    assert any(line.lower().startswith("error:") for line in output.splitlines()), output


def test_config_with_zero_kv_heads_through_cli(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "config.json"
    path.write_text(
        json.dumps(
            {
                "model_type": "llama",
                "hidden_size": 512,
                "num_attention_heads": 8,
                "num_hidden_layers": 2,
                "vocab_size": 100,
                "num_key_value_heads": 0,
            }
        )
    )
    try:
        code, output = run_cli(["estimate", str(path)], capsys)
    except Exception as exc:
        pytest.fail(f"{type(exc).__name__} escaped main(): {exc}")
    assert_one_error_line(code, output)


def test_console_script_usage_error_subprocess() -> None:
    """The installed entry point, as a user runs it."""
    proc = subprocess.run(
        [sys.executable, "-m", "vramplan", "estimate", "llama-3.1-8b", "--users", "1e30"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode in (1, 2)
    assert "Traceback" not in proc.stderr + proc.stdout


def test_console_script_domain_error_subprocess() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "vramplan", "estimate", "llama-3.1-8b", "--context", "-1"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr
    assert proc.stderr.strip().startswith("error:") and len(proc.stderr.strip().splitlines()) == 1
