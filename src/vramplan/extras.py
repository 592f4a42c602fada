"""Optional dependencies: import them through ``optional_import`` so a missing one is one clear line.

Why one helper: every optional feature (the web service and plans store, plots, PostgreSQL) must
fail the same way, with the exact ``pip install "vramplan[extra]"`` line, never a ModuleNotFoundError.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from vramplan.errors import MissingExtraError

#: Which extra (pyproject.toml [project.optional-dependencies]) provides a top-level module.
EXTRA_OF_MODULE = {
    "fastapi": "web",
    "uvicorn": "web",
    "platformdirs": "web",
    "pydantic_settings": "web",
    "sqlalchemy": "web",
    "alembic": "web",
    "prometheus_client": "web",
    "multipart": "web",
    "psycopg": "postgres",
    "matplotlib": "plot",
}


def install_line(extra: str) -> str:
    return f'pip install "vramplan[{extra}]"'


def missing_extra(exc: ImportError, what: str, extra: str | None = None) -> MissingExtraError:
    """The error for an ImportError raised while loading ``what`` (e.g. "saved plans")."""
    missing = (exc.name or "").split(".")[0]
    extra = extra or EXTRA_OF_MODULE.get(missing, "web")
    module = f" ({missing} is not installed)" if missing else ""
    return MissingExtraError(f"{what} needs the {extra} extra{module}: {install_line(extra)}")


def optional_import(module: str, what: str, extra: str | None = None) -> ModuleType:
    """``importlib.import_module(module)``, or MissingExtraError naming the extra to install."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise missing_extra(exc, what, extra) from None
