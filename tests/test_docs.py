"""The README's commands and Python example work, and every CLI command has help text."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from vramplan.cli import app

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def _commands() -> dict[str, object]:
    group = typer.main.get_command(app)
    return dict(group.commands)  # type: ignore[attr-defined]


def test_every_command_has_help() -> None:
    for name, command in _commands().items():
        assert (command.help or "").strip(), f"`vramplan {name}` has no help text"  # type: ignore[attr-defined]
        res = CliRunner().invoke(app, [name, "--help"])
        assert res.exit_code == 0, (name, res.output)


def test_readme_names_only_real_commands() -> None:
    named = set(re.findall(r"`vramplan ([a-z]+)", README))
    assert named, "README names no commands"
    assert named <= set(_commands()), named - set(_commands())
    # and every command is documented
    assert set(_commands()) <= named | {"plans"}, set(_commands()) - named


def test_readme_first_command_runs() -> None:
    first = next(
        line
        for line in README.splitlines()
        if "vramplan estimate" in line and line.startswith("python3")
    )
    argv = shlex.split(first.split("&&")[-1])[1:]
    res = CliRunner().invoke(app, argv)
    assert res.exit_code == 0, res.output
    assert "GiB" in res.output


def test_readme_python_example_runs() -> None:
    block = re.search(r"```python\n(.*?)```", README, re.S)
    assert block
    log = (
        ROOT
        / "tests"
        / "data"
        / "logs"
        / "llmdplanner-meta-llama-llama-3-1-8b--tp1pp1dp1--8192.log"
    )
    code = block.group(1).replace('open("vllm.log").read()', f"open({str(log)!r}).read()")
    exec(compile(code, "README.md", "exec"), {})


@pytest.mark.parametrize(
    "line", [line for line in README.splitlines() if line.startswith("$ vramplan ")]
)
def test_readme_console_examples_run(line: str) -> None:
    res = CliRunner().invoke(app, shlex.split(line[2:])[1:])
    assert res.exit_code == 0, res.output
