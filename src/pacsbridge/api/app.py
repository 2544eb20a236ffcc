"""The FastAPI application: routes, errors as HTTP answers, and the request log.

Errors of our hierarchy become answers with their sentence as ``detail``; the
request log records method, route, status and time, never a query string or a
raw path (both may carry patient data).
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

from fastapi import Depends, FastAPI, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST
from sqlalchemy import text
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from pacsbridge import __version__
from pacsbridge.api.auth import KeyRing, authenticator
from pacsbridge.api.jobs import jobs_router
from pacsbridge.api.metrics import exposition, registry_for
from pacsbridge.api.peers import peers_router
from pacsbridge.api.uploads import UploadError, UploadLimits
from pacsbridge.config import Settings
from pacsbridge.errors import (
    ConfigError,
    ContextError,
    DeliveryError,
    InputRejected,
    LookupFailed,
    PacsBridgeError,
    QueryError,
)
from pacsbridge.jobs.store import JobNotFound, JobStore

logger = logging.getLogger(__name__)

_DESCRIPTION = (
    "Post clinical photos and videos with their patient context; PacsBridge makes "
    "them DICOM objects and delivers them to the configured destinations. Every "
    "route but `/healthz` needs `Authorization: Bearer <key>`."
)
# The HTTP answer to each of our errors; the most specific class wins.
_STATUS: dict[type[PacsBridgeError], int] = {
    JobNotFound: 404,
    ContextError: 422,
    QueryError: 422,
    ConfigError: 400,
    LookupFailed: 502,
    DeliveryError: 502,
    PacsBridgeError: 500,
}


def create_app(
    settings: Settings,
    store: JobStore,
    *,
    limits: UploadLimits | None = None,
    uploads_dir: Path | None = None,
) -> FastAPI:
    """The REST API of DESIGN.md over ``store``; OpenAPI at ``/api/docs``.

    Uploads are saved under ``uploads_dir`` (default: ``data_dir/uploads/api``)
    within ``limits`` (default: from ``[api]``).
    """
    app = FastAPI(
        title="PacsBridge",
        version=__version__,
        description=_DESCRIPTION,
        docs_url="/api/docs",
        openapi_url="/api/openapi.json",
        redoc_url=None,
    )
    keys = KeyRing(settings.api.keys)
    if not keys:
        logger.warning("no [api] keys are configured: the API refuses every request")
    authenticated = authenticator(keys)
    app.include_router(
        jobs_router(
            settings, store, authenticated,
            limits or UploadLimits.from_settings(settings.api),
            uploads_dir or settings.local.data_dir / "uploads" / "api",
        )
    )  # fmt: skip
    app.include_router(peers_router(settings, authenticated))
    registry = registry_for(store)

    @app.get("/metrics", tags=["service"], dependencies=[Depends(authenticated)])
    def metrics() -> Response:
        """Jobs, deliveries and bytes sent, in the Prometheus text format."""
        return Response(exposition(registry), media_type=CONTENT_TYPE_LATEST)

    @app.get("/healthz", tags=["service"])
    def healthz() -> JSONResponse:
        """200 while the job store answers; no key needed."""
        try:
            with store.engine.connect() as connection:
                connection.execute(text("SELECT 1"))
        except Exception as exc:
            logger.warning("health check: the job store does not answer (%s)",
                           type(exc).__name__)  # fmt: skip
            return JSONResponse({"status": "the job store does not answer"}, 503)
        return JSONResponse({"status": "ok"})

    _answer_errors(app)
    app.add_middleware(_RequestLog)
    return app


def _answer_errors(app: FastAPI) -> None:
    async def our_error(_: Request, exc: Exception) -> JSONResponse:
        status = next(code for kind, code in _STATUS.items() if isinstance(exc, kind))
        if status == 500:
            # The type only: a message may quote a value, and values are
            # patient data.
            logger.error("unexpected %s", type(exc).__name__)
        return JSONResponse({"detail": str(exc)}, status)

    async def rejected(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, InputRejected)
        detail = [{"file": str(r.path), "problem": r.problem} for r in exc.rejected]
        return JSONResponse({"detail": detail}, 422)

    async def upload_error(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, UploadError)
        # The rest of the body may not have been read: the connection cannot
        # carry another request after this answer.
        headers = {"Connection": "close"} if exc.status in (400, 413, 415) else {}
        return JSONResponse({"detail": str(exc)}, exc.status, headers=headers)

    for kind in _STATUS:
        app.add_exception_handler(kind, our_error)
    app.add_exception_handler(InputRejected, rejected)
    app.add_exception_handler(UploadError, upload_error)


class _RequestLog:
    """One line per request: method, route template, status, milliseconds."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        answered: dict[str, Any] = {"status": 500}

        async def sending(message: Message) -> None:
            if message["type"] == "http.response.start":
                answered["status"] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            # A route's template, never a raw path: an unknown path may be anything.
            route = getattr(scope.get("route"), "path", None)
            if route is None:
                route = scope["path"] if answered["status"] < 400 else "(no route)"
            logger.info(
                "%s %s %d %.0f ms", scope["method"], route, answered["status"],
                (time.perf_counter() - started) * 1000,
            )  # fmt: skip
