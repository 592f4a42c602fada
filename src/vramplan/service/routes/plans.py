"""POST/GET/DELETE /api/plans[/{id}]: saved scenarios with their results, found by short id."""

from __future__ import annotations

from fastapi import APIRouter, Query, status
from fastapi.concurrency import run_in_threadpool

from vramplan.service.app_errors import ERROR_RESPONSES
from vramplan.service.compute import compute_result
from vramplan.service.deps import MetricsDep, SessionDep, SettingsDep
from vramplan.service.schemas import PlanCreate, PlanList, PlanPublic, PlanSummary
from vramplan.store import repository
from vramplan.store.repository import PlanRecord

router = APIRouter(prefix="/api/plans", tags=["plans"])

_PLAN_ID = {"pattern": r"^[a-z0-9]{1,16}$", "description": "The plan's short id."}


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


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=PlanPublic,
    responses=ERROR_RESPONSES,
    summary="Save a scenario and its result",
)
async def create_plan(
    body: PlanCreate, session: SessionDep, settings: SettingsDep, metrics: MetricsDep
) -> PlanPublic:
    """Saved and committed before the response: a 201 means the plan survives a crash."""
    result = (
        body.result
        if body.result is not None
        else await run_in_threadpool(compute_result, body.kind, body.scenario, settings)
    )
    record = await run_in_threadpool(
        lambda: repository.save_plan(
            session, kind=body.kind, name=body.name, scenario=body.scenario, result=result
        )
    )
    metrics.plans_saved.labels(body.kind).inc()
    return _public(record)


@router.get(
    "", response_model=PlanList, responses=ERROR_RESPONSES, summary="List saved plans, newest first"
)
def list_plans(
    session: SessionDep,
    limit: int = Query(50, ge=1, le=500),
    offset: int = Query(0, ge=0, le=10**9),
) -> PlanList:
    records, total = repository.list_plans(session, limit=limit, offset=offset)
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
def get_plan(plan_id: str, session: SessionDep) -> PlanPublic:
    return _public(repository.get_plan(session, plan_id=plan_id))


@router.delete(
    "/{plan_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=ERROR_RESPONSES,
    summary="Delete a saved plan",
)
def delete_plan(plan_id: str, session: SessionDep) -> None:
    repository.delete_plan(session, plan_id=plan_id)
