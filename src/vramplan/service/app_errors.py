"""Every error becomes ``{"error": {"type", "message"}}`` with one status per class, mapped here once."""

from __future__ import annotations

import logging
from functools import cache
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from vramplan.errors import (
    DoesNotFitError,
    HubError,
    InputError,
    MissingExtraError,
    PlanNotFoundError,
    StoreUnavailableError,
    UnknownGPUError,
    UnknownModelError,
    UnsupportedModelError,
    VramplanError,
)
from vramplan.service.schemas import ErrorResponse
from vramplan.service.worker import ServerBusyError

logger = logging.getLogger("vramplan.service")

# Most specific first: the first class an error is an instance of gives its status.
STATUS_BY_ERROR: tuple[tuple[type[VramplanError], int], ...] = (
    (UnknownModelError, 404),
    (UnknownGPUError, 404),
    (PlanNotFoundError, 404),
    (InputError, 400),
    (UnsupportedModelError, 422),
    (DoesNotFitError, 422),
    (HubError, 503),
    (ServerBusyError, 503),
    (StoreUnavailableError, 503),
    (MissingExtraError, 501),  # the server lacks an optional dependency (e.g. plots)
    (VramplanError, 400),
)

ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorResponse, "description": why}
    for code, why in (
        (
            400,
            "Invalid input, or a request beyond the compute budget (message says what and how to fix it)",
        ),
        (401, "Missing or unknown bearer token (servers started with --auth tokens)"),
        (404, "Unknown model, GPU or plan"),
        (413, "Request body or log upload too large"),
        (422, "Body does not match the schema, unsupported architecture, or does not fit"),
        (429, "Rate limit exceeded (see Retry-After)"),
        (503, "Plans database or Hugging Face Hub unavailable, or every compute worker busy"),
    )
}


@cache
def version() -> str:
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as _v

    try:
        return _v("vramplan")
    except PackageNotFoundError:
        return "0+unknown"


def status_for(exc: VramplanError) -> int:
    for cls, code in STATUS_BY_ERROR:
        if isinstance(exc, cls):
            return code
    return 400


def _body(kind: str, message: str, **extra: Any) -> dict[str, Any]:
    return {
        "error": {
            "type": kind,
            "message": message,
            **{k: v for k, v in extra.items() if v is not None},
        }
    }


async def _vramplan_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, VramplanError)
    fixes = reasons = None
    if isinstance(exc, DoesNotFitError):
        fixes = [f.to_dict() for f in exc.fixes]
        reasons = exc.reasons or None
    headers = {"Retry-After": "5"} if status_for(exc) == 503 else None
    return JSONResponse(
        _body(type(exc).__name__, str(exc), fixes=fixes, reasons=reasons),
        status_code=status_for(exc),
        headers=headers,
    )


async def _validation_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = [
        {
            "loc": list(e.get("loc", ())),
            "msg": str(e.get("msg", "")),
            "type": str(e.get("type", "")),
        }
        for e in exc.errors()
    ][:20]
    first = errors[0] if errors else {"loc": [], "msg": "invalid request"}
    where = ".".join(str(p) for p in first["loc"] if p != "body") or "body"
    return JSONResponse(
        _body("ValidationError", f"{where}: {first['msg']}", errors=errors), status_code=422
    )


async def _http_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    kind = {404: "NotFound", 405: "MethodNotAllowed"}.get(exc.status_code, "HTTPError")
    return JSONResponse(
        _body(kind, str(exc.detail)),
        status_code=exc.status_code,
        headers=getattr(exc, "headers", None),
    )


async def _out_of_range(_request: Request, exc: Exception) -> JSONResponse:
    """Arithmetic on absurd numbers the library did not guard (1e308 GiB, 5,000-digit integers)."""
    logger.info("request refused, number out of range: %s", exc)
    return JSONResponse(
        _body(
            "InputError",
            f"a number in the request is out of any usable range ({type(exc).__name__}: "
            f"{str(exc)[:200]}): send realistic sizes and counts",
        ),
        status_code=400,
    )


async def _unexpected(_request: Request, exc: Exception) -> JSONResponse:
    logger.exception("unhandled error", exc_info=exc)
    return JSONResponse(
        _body("InternalError", "an unexpected error occurred; it has been logged"), status_code=500
    )


def install(app: FastAPI) -> None:
    app.add_exception_handler(VramplanError, _vramplan_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    for cls in (ArithmeticError, ValueError, RecursionError):
        app.add_exception_handler(cls, _out_of_range)
    app.add_exception_handler(Exception, _unexpected)
