"""The CLI is a thin edge over the library: no command module imports the web layer.

``serve`` is the one exception by definition (it starts the web service).
"""

from __future__ import annotations

import ast
from pathlib import Path

import vramplan

PACKAGE = Path(vramplan.__file__).resolve().parent
CLI_MODULES = [PACKAGE / "cli.py", *sorted((PACKAGE / "cli_commands").glob("*.py"))]


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
    return names


def test_cli_modules_import_no_web_code() -> None:
    offenders = {
        path.name: sorted(m for m in _imports(path) if m.startswith("vramplan.service"))
        for path in CLI_MODULES
        if path.name != "serve.py"
    }
    assert {k: v for k, v in offenders.items() if v} == {}
    assert len(CLI_MODULES) > 10  # the scan really saw the command modules
