"""The error tree holds: everything ``src/`` raises is ours, and the API gives each of ours a status.

1. Every ``raise X(...)`` / ``raise X`` in ``src/vramplan`` whose ``X`` is a class (or a factory
   function returning one) must derive from :class:`vramplan.errors.VramplanError`, unless it is
   listed in ``DELIBERATE`` with the reason (Python protocols, pydantic validators, internal control
   flow caught a few lines below). Re-raises of a caught exception (``raise first``,
   ``raise type(exc)(...)`` inside ``except VramplanError``) are ours by construction.
2. Every subclass of VramplanError, raised inside a route, comes back as ``{"error": ...}`` with the
   status ``STATUS_BY_ERROR`` gives it, never 500, and through a mapping more specific than the
   VramplanError catch-all.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import pkgutil
import textwrap
from pathlib import Path

import pytest

import vramplan
from vramplan import errors
from vramplan.errors import DoesNotFitError, VramplanError
from vramplan.scenario import Fix

SRC = Path(vramplan.__file__).resolve().parent

# (file relative to src/vramplan, raised name) -> why it is not a VramplanError.
DELIBERATE: dict[tuple[str, str], str] = {
    ("__init__.py", "AttributeError"): "module __getattr__ protocol (lazy public names)",
    ("memory/breakdown.py", "KeyError"): "mapping-style lookup of a component by name",
    (
        "simulate/allocators.py",
        "NotImplementedError",
    ): "abstract method of the allocator base class",
    (
        "engines/sglang_profiles.py",
        "AssertionError",
    ): "unreachable branch (the last memory tier is unbounded)",
    (
        "gpu_schema.py",
        "ValueError",
    ): "pydantic field validator: pydantic wraps it in a ValidationError "
    "that the catalogue loader reports as one of ours",
    ("service/schemas.py", "ValueError"): "pydantic model validator: FastAPI answers 422",
    ("store/migrations/env.py", "RuntimeError"): "only when someone runs the alembic CLI by hand",
    ("service/compute.py", "_WallClockExceeded"): "control flow, caught in the same function",
    ("cli.py", "typer.Exit"): "the CLI's exit code, not an error",
}


def _module_name(path: Path) -> str:
    rel = path.relative_to(SRC.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _raised_names(tree: ast.AST) -> list[tuple[int, str, ast.expr]]:
    """(line, dotted name, node) of each ``raise NAME(...)`` / ``raise NAME``; re-raises skipped."""
    out = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Raise) or node.exc is None:
            continue
        target = node.exc.func if isinstance(node.exc, ast.Call) else node.exc
        if (
            isinstance(target, ast.Call)
            and isinstance(target.func, ast.Name)
            and target.func.id == "type"
        ):
            continue  # raise type(exc)(...): the caught exception's own class, re-raised with a hint
        name = ast.unparse(target)
        if isinstance(target, ast.Name | ast.Attribute):
            out.append((node.lineno, name, target))
    return out


def _resolve(module: object, dotted: str) -> object | None:
    obj: object | None = module
    for part in dotted.split("."):
        obj = getattr(obj, part, None)
        if obj is None:
            return None
    return obj


def _factory_returns_ours(func: object) -> list[str]:
    """Problems with a function used as ``raise f(...)``: each ``return X(...)`` must be ours."""
    source = textwrap.dedent(inspect.getsource(func))  # type: ignore[arg-type]
    problems = []
    returns = [n for n in ast.walk(ast.parse(source)) if isinstance(n, ast.Return)]
    if not returns:
        return [f"{func.__name__} returns nothing"]  # type: ignore[attr-defined]
    for ret in returns:
        if not (isinstance(ret.value, ast.Call) and isinstance(ret.value.func, ast.Name)):
            problems.append(
                f"{func.__name__} returns {ast.unparse(ret.value) if ret.value else None}"
            )  # type: ignore[attr-defined]
            continue
        cls = func.__globals__.get(ret.value.func.id)  # type: ignore[attr-defined]
        if not (isinstance(cls, type) and issubclass(cls, VramplanError)):
            problems.append(f"{func.__name__} returns {ret.value.func.id}")  # type: ignore[attr-defined]
    return problems


def test_every_raised_class_is_ours() -> None:
    problems: list[str] = []
    used: set[tuple[str, str]] = set()
    checked = 0
    for path in sorted(SRC.rglob("*.py")):
        rel = path.relative_to(SRC).as_posix()
        tree = ast.parse(path.read_text(), filename=str(path))
        raised = _raised_names(tree)
        if not raised:
            continue
        module = None
        for line, name, _node in raised:
            if (rel, name) in DELIBERATE:
                used.add((rel, name))
                continue
            if module is None:
                module = importlib.import_module(_module_name(path))
            obj = _resolve(module, name)
            where = f"{rel}:{line} raise {name}"
            if obj is None:
                continue  # a local variable: re-raising an exception caught above (raise first)
            checked += 1
            if isinstance(obj, type):
                if not issubclass(obj, VramplanError):
                    problems.append(f"{where}: {obj.__name__} does not derive from VramplanError")
            elif inspect.isfunction(obj):
                problems += [f"{where}: {p}" for p in _factory_returns_ours(obj)]
            elif not isinstance(obj, VramplanError):
                problems.append(f"{where}: raises {type(obj).__name__}")
    assert checked > 100, "the AST walk found suspiciously few raises"
    assert not problems, "\n".join(problems)
    assert not set(DELIBERATE) - used, f"stale DELIBERATE entries: {sorted(set(DELIBERATE) - used)}"


def test_store_errors_live_in_the_tree() -> None:
    from vramplan.store import repository

    assert issubclass(errors.PlanNotFoundError, errors.InputError)
    assert issubclass(errors.StoreUnavailableError, VramplanError)
    assert not issubclass(errors.StoreUnavailableError, errors.InputError)
    # The repository re-exports the same classes (older imports keep working).
    assert repository.PlanNotFoundError is errors.PlanNotFoundError
    assert repository.StoreUnavailableError is errors.StoreUnavailableError


def test_docstring_draws_every_class() -> None:
    doc = errors.__doc__ or ""
    for name, obj in vars(errors).items():
        if isinstance(obj, type) and issubclass(obj, VramplanError):
            assert name in doc, f"{name} missing from the tree in vramplan.errors' docstring"


def _all_vramplan_errors() -> list[type[VramplanError]]:
    for info in pkgutil.walk_packages(vramplan.__path__, "vramplan."):
        if ".migrations" in info.name or info.name.endswith("__main__"):
            continue
        try:
            importlib.import_module(info.name)
        except ImportError:  # an optional extra that is not installed
            continue
    seen: list[type[VramplanError]] = []
    todo = [VramplanError]
    while todo:
        cls = todo.pop()
        if cls not in seen:
            seen.append(cls)
            todo += cls.__subclasses__()
    return sorted(
        (c for c in seen if c.__module__.startswith("vramplan")), key=lambda c: c.__name__
    )


def _instance(cls: type[VramplanError]) -> VramplanError:
    if issubclass(cls, DoesNotFitError):
        return cls("boom", [Fix("tensor_parallel_size", 2, "do this instead")], ["option: why"])
    return cls("boom")


@pytest.fixture(scope="module")
def raising_client(tmp_path_factory: pytest.TempPathFactory):
    pytest.importorskip("fastapi")
    from fastapi.testclient import TestClient

    from vramplan.service.app import create_app
    from vramplan.service.settings import Settings

    db = tmp_path_factory.mktemp("errors") / "plans.db"
    app = create_app(
        Settings(
            database_url=f"sqlite:///{db}",
            rate_limit_per_s=0,
            allow_hub=False,
            allowed_hosts=["testserver"],
        )
    )
    by_name = {cls.__name__: cls for cls in _all_vramplan_errors()}

    async def boom(name: str) -> None:
        raise _instance(by_name[name])

    app.add_api_route("/_test/raise/{name}", boom, methods=["GET"])
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client


@pytest.mark.parametrize("cls", _all_vramplan_errors(), ids=lambda c: c.__name__)
def test_service_maps_every_error(cls: type[VramplanError], raising_client) -> None:
    from vramplan.service.app_errors import STATUS_BY_ERROR, status_for

    specific = [
        code
        for klass, code in STATUS_BY_ERROR
        if klass is not VramplanError and issubclass(cls, klass)
    ]
    assert specific or cls is VramplanError, (
        f"{cls.__name__} falls through to the VramplanError catch-all"
    )
    r = raising_client.get(f"/_test/raise/{cls.__name__}")
    assert r.status_code != 500
    assert r.status_code == status_for(_instance(cls))
    assert r.json()["error"]["type"] == cls.__name__
    assert r.json()["error"]["message"] == "boom"
    if r.status_code == 503:
        assert r.headers.get("retry-after")
