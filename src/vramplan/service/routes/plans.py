"""POST/GET/DELETE /api/plans[/{id}]: saved scenarios with their results, found by short id.

The server stores the request and the result it computed itself (a client's ``result`` is ignored):
a permalink never shows data a client chose. With ``--auth tokens`` a plan belongs to the token's
owner; others get 404 on read and delete, and lists show one's own. Sizes and counts are bounded.
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Query, Request, status
from fastapi.concurrency import run_in_threadpool

from vramplan.errors import InputError
from vramplan.service.app_errors import ERROR_RESPONSES
from vramplan.service.compute import compute_result
from vramplan.service.deps import MetricsDep, SessionDep, SettingsDep
from vramplan.service.execute import pool_of
from vramplan.service.schemas import PlanCreate, PlanList, PlanPublic, PlanSummary
from vramplan.store import repository
from vramplan.store.repository import PlanRecord

router = APIRouter(prefix="/api/plans", tags=["plans"])


class QuotaExceededError(InputError):
    """An owner has saved as many plans as the server allows."""


def owner_of(request: Request) -> str | None:
    """The authenticated owner (``--auth tokens``), or None on a server without auth."""
    return request.scope.get("state", {}).get("owner")


def _public(r: PlanRecord) -> PlanPublic:
    return PlanPublic(
        id=r.id,
        name=r.name,
        kind=r.kind,
        scenario=r.scenario,
        result=r.result,
        created_at=r.created_at,
        url=f"/?plan={r.id}",
    )


def _check_size(what: str, data: dict[str, Any], limit: int) -> None:
    size = len(json.dumps(data, separators=(",", ":")))
    if size > limit:
        raise InputError(
            f"the plan's {what} is {size:,} bytes of JSON; this server keeps plans up to {limit:,}: "
            "save a smaller scenario"
        )


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=PlanPublic,
    responses=ERROR_RESPONSES,
    summary="Save a scenario with the result this server computes for it",
)
async def create_plan(
    body: PlanCreate,
    session: SessionDep,
    settings: SettingsDep,
    metrics: MetricsDep,
    request: Request,
) -> PlanPublic:
    """Saved and committed before the response: a 201 means the plan survives a crash.

    ``result``, if sent, is ignored: the server computes it from ``scenario`` (in a worker, within
    the compute budget) so a saved plan never carries content a client made up.
    """
    owner = owner_of(request)
    _check_size("scenario", body.scenario, settings.max_plan_bytes)
    count = await run_in_threadpool(repository.count_owned, session, owner=owner)
    if count >= settings.max_plans_per_owner:
        raise QuotaExceededError(
            f"{owner or 'this server'} already keeps {count:,} plans, the most allowed "
            f"({settings.max_plans_per_owner:,}): delete some first"
        )
    result = await pool_of(request).call(compute_result, body.kind, body.scenario, settings)
    _check_size("result", result, settings.max_plan_bytes)
    record = await run_in_threadpool(
        lambda: repository.save_plan(
            session,
            kind=body.kind,
            name=body.name,
            scenario=body.scenario,
            result=result,
            owner=owner,
        )
    )
    metrics.plans_saved.labels(body.kind).inc()
    return _public(record)


@router.get(
    "", response_model=PlanList, responses=ERROR_RESPONSES, summary="List saved plans, newest first"
)
def list_plans(
    session: SessionDep,
    request: Request,
    limit: int = Query(50, ge=1, le=500),
    offset: int = Query(0, ge=0, le=10**9),
) -> PlanList:
    records, total = repository.list_plans(
        session, limit=limit, offset=offset, owner=owner_of(request)
    )
    return PlanList(
        items=[
            PlanSummary(
                id=r.id, name=r.name, kind=r.kind, created_at=r.created_at, url=f"/?plan={r.id}"
            )
            for r in records
        ],
        total=total,
        limit=limit,
        offset=offset,
    )


@router.get(
    "/{plan_id}", response_model=PlanPublic, responses=ERROR_RESPONSES, summary="One saved plan"
)
async def get_plan(
    plan_id: str, session: SessionDep, settings: SettingsDep, request: Request
) -> PlanPublic:
    """A plan saved before results were computed by the server gets its result recomputed here."""
    record = await run_in_threadpool(
        lambda: repository.get_plan(session, plan_id=plan_id, owner=owner_of(request))
    )
    if record.result_source != "server":
        result = await pool_of(request).call(compute_result, record.kind, record.scenario, settings)
        await run_in_threadpool(
            lambda: repository.replace_result(session, plan_id=record.id, result=result)
        )
        record = PlanRecord(**{**record.__dict__, "result": result, "result_source": "server"})
    return _public(record)


@router.delete(
    "/{plan_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=ERROR_RESPONSES,
    summary="Delete a saved plan",
)
def delete_plan(plan_id: str, session: SessionDep, request: Request) -> None:
    repository.delete_plan(session, plan_id=plan_id, owner=owner_of(request))
