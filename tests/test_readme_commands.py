"""Every command line the README documents runs: exit code 0 and no traceback.

Command lines come from the README itself: the ``bash``/``console`` fenced blocks (``$ `` prompts,
``&&`` chains) and the inline ``vramplan ...`` spans of the command table and the prose. Inline spans
that are templates (``MODEL``, ``...``) are filled from ``_TEMPLATE_FILL`` below, so a new README line
either runs here or has to be given a fill or a skip reason.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from vramplan.cli import main

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")
REAL_LOG = ROOT / "tests/data/logs/llmdplanner-meta-llama-llama-3-1-8b--tp1pp1dp1--8192.log"

#: Template spans and the concrete arguments that stand for their placeholders.
_TEMPLATE_FILL = {
    "vramplan estimate MODEL": "vramplan estimate llama-3.1-8b",
    "vramplan explain startup.log": f"vramplan explain {REAL_LOG}",
    "vramplan vllm [vllm serve args] --gpu H100": (
        "vramplan vllm meta-llama/Llama-3.1-8B-Instruct --max-model-len 32k --gpu H100"
    ),
    "vramplan sglang ...": "vramplan sglang --model-path llama-3.1-8b --gpu H100",
    "vramplan tgi ...": "vramplan tgi --model-id llama-3.1-8b --gpu H100",
    "vramplan llamacpp ...": "vramplan llamacpp -m Llama-3.1-8B-Q4_K_M --gpu L4",
    "vramplan hf MODEL ...": "vramplan hf llama-3.1-8b --gpu L4",
    "vramplan plans save/list/show/delete": "vramplan plans list",
}

#: What stands for ``MODEL`` in the remaining template spans.
_MODEL_FILL = "llama-3.1-8b"

#: Lines that are documented but not run here, and why.
_SKIP = {
    "vramplan serve": "long-running server; tests/service/ starts the app in process",
    "vramplan serve --port 8000": "long-running server; tests/service/ starts the app in process",
}
#: Long-running server lines (any options): tests/security/ and tests/service/ start them themselves.
_SERVE = re.compile(r"^vramplan serve\b")

#: Non-vramplan steps of the install chains: environment set-up, not vramplan behaviour.
_SETUP = re.compile(
    r"^(python3 -m venv|\. \.venv/bin/activate|pip install|python -m pytest|export [A-Z_]+=)"
)


def _fenced_lines() -> list[str]:
    lines: list[str] = []
    for lang, body in re.findall(r"```(bash|console|sh)\n(.*?)```", README, re.S):
        for raw in re.sub(r"\\\n\s*", " ", body).splitlines():  # join `\` continuations
            line = raw.strip()
            if lang == "console":
                if not line.startswith("$ "):
                    continue  # program output
                line = line[2:]
            if not line or line.startswith("#"):
                continue
            lines.extend(part.strip() for part in line.split("&&"))
    return lines


def _inline_lines() -> list[str]:
    return sorted(set(re.findall(r"`(vramplan [^`]+)`", README)))


def _documented() -> list[str]:
    """Every documented vramplan command line, templates filled, set-up steps dropped."""
    out: list[str] = []
    for line in _fenced_lines() + _inline_lines():
        if _SETUP.match(line):
            continue
        assert line.startswith("vramplan "), f"README command not understood here: {line!r}"
        line = re.sub(r"\bMODEL\b", _MODEL_FILL, _TEMPLATE_FILL.get(line, line))
        if line not in out:
            out.append(line)
    return out


def test_readme_documents_commands() -> None:
    lines = _documented()
    assert len(lines) >= 12, lines
    unfilled = [
        c
        for c in lines
        if c not in _SKIP and not _SERVE.match(c) and re.search(r"MODEL|\.\.\.|\[", c)
    ]
    assert not unfilled, f"give these README templates a fill in _TEMPLATE_FILL: {unfilled}"


@pytest.mark.parametrize("line", _documented())
def test_readme_command_runs(
    line: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    if line in _SKIP:
        pytest.skip(_SKIP[line])
    if _SERVE.match(line):
        pytest.skip("long-running server; tests/security/ starts replicas itself")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))  # `plans` uses a throw-away store
    monkeypatch.delenv("DATABASE_URL", raising=False)
    # `cmd --check || echo ...` documents the exit status: run the command, allow 3 (does not fit/start).
    command, _, _ = line.partition(" || ")
    argv = shlex.split(command)[1:]
    if len(argv) == 1 and argv[0] not in ("models", "gpus"):
        # a bare mention in the prose: the command exists and documents itself
        argv.append("--help")
    allowed = (0, 3) if "--check" in argv else (0,)
    try:
        main(argv)
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    out = capsys.readouterr()
    assert "Traceback" not in out.out + out.err, (line, out.err[-2000:])
    assert code in allowed, (line, out.err[-2000:])
    assert out.out.strip(), f"{line!r} printed nothing"


def test_readme_links_point_into_the_repository() -> None:
    """Design notes and other files the README links to ship with the repository (not ../shared)."""
    assert "../shared" not in README
    targets = re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", README)
    local = [t for t in targets if not t.startswith(("http://", "https://", "mailto:"))]
    assert local, "the README links no local file"
    missing = [t for t in local if not (ROOT / t).exists()]
    assert not missing, missing
