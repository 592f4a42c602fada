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
    help=(
        "How much GPU memory, which GPUs, and what it costs to serve or fine-tune an LLM.\n\n"
        "Exit status: 0 done; 1 bad input (one line on stderr); 2 bad usage; 3 with --check when the "
        "model does not fit or the engine would not start."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _version(value: bool) -> None:
    if value:
        from importlib.metadata import PackageNotFoundError, version

        try:
            typer.echo(f"vramplan {version('vramplan')}")
        except PackageNotFoundError:  # run from a source tree that was never installed
            from vramplan import __version__

            typer.echo(f"vramplan {__version__}")
        raise typer.Exit(0)


@app.callback()
def _root(
    show_version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """Options that apply before any command."""


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
        code = app(args=argv, standalone_mode=False)
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
        usage_code = getattr(exc, "exit_code", None)
        if hasattr(exc, "show") and isinstance(usage_code, int):
            message = exc.format_message() if hasattr(exc, "format_message") else str(exc)
            typer.echo(f"error: {message}", err=True)
            sys.exit(usage_code)
        if isinstance(exc, (ValueError, OSError)):
            typer.echo(f"error: {exc}", err=True)
            sys.exit(1)
        raise
    # click returns (rather than raises) the code of typer.Exit when not in standalone mode
    if isinstance(code, int) and code != 0:
        sys.exit(code)
