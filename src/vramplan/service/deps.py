"""Annotated dependency aliases: settings, metrics, the store and a session per request."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.orm import Session

from vramplan.service.compute import LRU
from vramplan.service.metrics import Metrics
from vramplan.service.settings import Settings, get_settings
from vramplan.store.repository import Store


def get_store(request: Request) -> Store:
    return request.app.state.store


def get_metrics(request: Request) -> Metrics:
    return request.app.state.metrics


def get_estimate_cache(request: Request) -> LRU:
    return request.app.state.estimate_cache


def get_session(store: Annotated[Store, Depends(get_store)]) -> Iterator[Session]:
    """One session per request, closed when the response is sent; StoreUnavailableError -> 503."""
    with store.session() as session:
        yield session


SettingsDep = Annotated[Settings, Depends(get_settings)]
MetricsDep = Annotated[Metrics, Depends(get_metrics)]
StoreDep = Annotated[Store, Depends(get_store)]
SessionDep = Annotated[Session, Depends(get_session)]
EstimateCacheDep = Annotated[LRU, Depends(get_estimate_cache)]
