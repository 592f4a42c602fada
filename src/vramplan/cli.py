"""vramplan's command line: parse, call one library function, render, translate errors.

Commands live in ``vramplan.cli_commands.<name>`` modules, each with ``register(app)``; heavy imports
happen inside the command bodies so `vramplan --help` stays fast.
"""

from __future__ import annotations

import importlib
import pkgutil
import sys
from typing import NoReturn

import typer

from vramplan.errors import VramplanError

app = typer.Typer(
    name="vramplan",
    help="How much GPU memory, which GPUs, and what it costs to serve or fine-tune an LLM.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def fail(message: str, code: int = 1) -> NoReturn:
    """One clear line on stderr and a non-zero exit; never a traceback for a domain error."""
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def _register_all() -> None:
    import vramplan.cli_commands as pkg

    for info in sorted(pkgutil.iter_modules(pkg.__path__), key=lambda m: m.name):
        module = importlib.import_module(f"vramplan.cli_commands.{info.name}")
        register = getattr(module, "register", None)
        if register is not None:
            register(app)


_register_all()


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point: maps every VramplanError to one line and exit code 1."""
    try:
        app(args=argv, standalone_mode=False)
    except VramplanError as exc:
        typer.echo(f"error: {exc}", err=True)
        sys.exit(1)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except typer.Abort:
        typer.echo("aborted", err=True)
        sys.exit(130)
    except Exception as exc:  # click usage errors and the like
        # typer may ship its own copy of click, so match the usage-error protocol, not the class.
        if hasattr(exc, "show") and isinstance(getattr(exc, "exit_code", None), int):
            message = exc.format_message() if hasattr(exc, "format_message") else str(exc)
            typer.echo(f"error: {message}", err=True)
            sys.exit(int(getattr(exc, "exit_code", 1)))
        if isinstance(exc, (ValueError, OSError)):
            typer.echo(f"error: {exc}", err=True)
            sys.exit(1)
        raise
