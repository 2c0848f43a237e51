"""The FastAPI application: routers, error handling, and the in-process scheduler for ``serve``."""

from __future__ import annotations

import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.orm import Session, sessionmaker

from costguard import __version__
from costguard.alerts.router import router as alerts_router
from costguard.api.deps import AppContext
from costguard.api.system import router as system_router
from costguard.budgets.router import router as budgets_router
from costguard.config import Settings
from costguard.errors import CostguardError
from costguard.evaluation.router import router as status_router
from costguard.metrics import build_registry
from costguard.ui.router import router as console_router
from costguard.usage.router import router as usage_router

log = logging.getLogger(__name__)


def create_app(settings: Settings, factory: sessionmaker[Session], *, run_scheduler: bool = False) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        scheduler = None
        if run_scheduler:
            from costguard.worker import background

            scheduler = background(factory, settings)
            scheduler.start()
        # The application is built: its long-lived objects (modules, routes, the engine) are left
        # out of the collections that every request's short-lived objects trigger.
        gc.freeze()
        try:
            yield
        finally:
            if scheduler is not None:
                scheduler.shutdown(wait=True)

    app = FastAPI(
        title="costguard",
        version=__version__,
        description="Per-tenant cost budgets, Prometheus metrics and Alertmanager alerts for LLM platforms.",
        lifespan=lifespan,
    )
    app.state.ctx = AppContext(settings=settings, factory=factory, registry=build_registry(factory, settings))
    for router in (usage_router, budgets_router, status_router, alerts_router, system_router):
        app.include_router(router)
    app.include_router(console_router)  # the admin console (HTML)
    _install_error_handlers(app)
    return app


def create_app_from_environment() -> FastAPI:
    """For ``serve`` with several worker processes: settings from the environment, schema already checked."""
    from costguard.config import get_settings
    from costguard.logs import configure
    from costguard.runtime import open_runtime

    configure()
    settings = get_settings()
    runtime = open_runtime(settings, application_name="costguard-serve", check_schema=False)
    return create_app(settings, runtime.factory, run_scheduler=settings.serve_scheduler)


def _error(status: int, message: str, details: Any = None, headers: dict[str, str] | None = None) -> JSONResponse:
    body: dict[str, Any] = {"error": message}
    if details is not None:
        body["details"] = details
    return JSONResponse(body, status_code=status, headers=headers)


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(CostguardError)
    async def expected(_request: Request, exc: CostguardError) -> JSONResponse:
        headers = {"WWW-Authenticate": "Bearer"} if exc.status_code == 401 else None
        return _error(exc.status_code, exc.message, exc.details, headers)

    @app.exception_handler(RequestValidationError)
    async def invalid(_request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = [f"{'.'.join(str(p) for p in e['loc'] if p != 'query')}: {e['msg']}" for e in exc.errors()]
        return _error(422, "; ".join(problems), problems)
