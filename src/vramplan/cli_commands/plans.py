"""`vramplan plans save|list|show|delete`: the saved-plans store, through the same repository as the API."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from vramplan.render import CSV_HELP, View, emit, to_json

plans_app = typer.Typer(
    help="Save, list, show and delete plans (the store the web page uses).", no_args_is_help=True
)

DB_OPTION = typer.Option(
    "--database-url",
    envvar=["VRAMPLAN_DATABASE_URL", "DATABASE_URL"],
    help="Plans store URL (default: SQLite in your data directory).",
)


def register(app: typer.Typer) -> None:
    app.add_typer(plans_app, name="plans")


def _store(database_url: str | None) -> Any:
    return _repository().Store(database_url)


def _repository() -> Any:
    """The store module (SQLAlchemy), or one line naming the web extra when it is not installed."""
    from vramplan.extras import optional_import

    return optional_import("vramplan.store.repository", "saved plans")


@plans_app.command("save")
def save_command(
    scenario_file: Annotated[
        Path,
        typer.Argument(
            help="JSON file with the scenario (the API request body), or - for stdin.",
            allow_dash=True,
        ),
    ],
    name: Annotated[str, typer.Option("--name", help="A label shown in listings.")] = "",
    kind: Annotated[
        str,
        typer.Option(
            "--kind",
            help="estimate, vllm, perf, simulate, plan or train (computed here), or explain/sglang with --result.",
        ),
    ] = "estimate",
    result_file: Annotated[
        Path | None,
        typer.Option("--result", help="JSON file with the result; default: compute it."),
    ] = None,
    database_url: Annotated[str | None, DB_OPTION] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Save SCENARIO_FILE and its result; prints the plan id (open it at /?plan=<id>)."""
    from vramplan.errors import FileFormatError, InputError
    from vramplan.run import KINDS, run

    repository = _repository()

    def read(path: Path) -> Any:
        text = (
            typer.get_text_stream("stdin").read()
            if str(path) == "-"
            else path.read_text(encoding="utf-8")
        )
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            raise FileFormatError(
                f"{path} is not JSON ({exc}): pass the request body of the matching API route"
            ) from None

    if len(name) > 200:
        raise InputError(f"--name is {len(name)} characters long: give at most 200")
    if kind not in (*KINDS, "explain", "sglang") or (kind not in KINDS and result_file is None):
        raise InputError(
            f"unknown --kind {kind!r}: use {', '.join(KINDS)} (computed here), or explain/sglang "
            "with --result"
        )
    scenario = read(scenario_file)
    if not isinstance(scenario, dict):
        raise FileFormatError(f"{scenario_file} must hold a JSON object (an API request body)")
    # The library computes it, as the API would (vramplan.run): the CLI never imports the web layer.
    result = read(result_file) if result_file else run(kind, scenario)
    if not isinstance(result, dict):
        raise FileFormatError("the result must be a JSON object")
    store = _store(database_url)
    with store.session() as session:
        record = repository.save_plan(
            session, kind=kind, name=name, scenario=scenario, result=result
        )
    if json_out:
        typer.echo(to_json(_as_dict(record)))
    else:
        typer.echo(record.id)


@plans_app.command("list")
def list_command(
    limit: Annotated[int, typer.Option("--limit", help="How many, newest first.")] = 50,
    database_url: Annotated[str | None, DB_OPTION] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    csv_out: Annotated[bool, typer.Option("--csv", help=CSV_HELP)] = False,
) -> None:
    """List saved plans, newest first."""
    repository = _repository()

    with _store(database_url).session() as session:
        records, total = repository.list_plans(session, limit=limit)
    rows = [
        {"id": r.id, "name": r.name, "kind": r.kind, "created_at": r.created_at.isoformat()}
        for r in records
    ]
    from vramplan.render import plural

    view = View(
        f"saved plans ({plural(total, 'plan')}, newest first)",
        ["id", "kind", "name", "created (UTC)"],
        [(r["id"], r["kind"], r["name"] or "-", r["created_at"][:19]) for r in rows],
        [] if rows else ["no saved plans yet: save one with `vramplan plans save SCENARIO.json`"],
    )
    emit(view, rows, json_out=json_out, csv_out=csv_out)


@plans_app.command("show")
def show_command(
    plan_id: Annotated[str, typer.Argument(help="The plan id.")],
    database_url: Annotated[str | None, DB_OPTION] = None,
) -> None:
    """Print one saved plan (scenario and result) as JSON."""
    repository = _repository()

    with _store(database_url).session() as session:
        record = repository.get_plan(session, plan_id=plan_id)
    typer.echo(to_json(_as_dict(record)))


@plans_app.command("delete")
def delete_command(
    plan_id: Annotated[str, typer.Argument(help="The plan id.")],
    database_url: Annotated[str | None, DB_OPTION] = None,
) -> None:
    """Delete a saved plan."""
    repository = _repository()

    with _store(database_url).session() as session:
        repository.delete_plan(session, plan_id=plan_id)
    typer.echo(f"deleted {plan_id}")


def _as_dict(record: Any) -> dict[str, Any]:
    return {
        "id": record.id,
        "name": record.name,
        "kind": record.kind,
        "created_at": record.created_at.isoformat(),
        "url": f"/?plan={record.id}",
        "scenario": record.scenario,
        "result": record.result,
    }
