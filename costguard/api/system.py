"""Unauthenticated endpoints: metrics, liveness, readiness and runbook pages."""

from __future__ import annotations

import html
import re
from datetime import timedelta

from fastapi import APIRouter, Depends
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST
from sqlalchemy import text

from costguard.api.deps import AppContext, context
from costguard.db import transaction, utcnow
from costguard.errors import NotFound
from costguard.evaluation.repository import evaluation_state
from costguard.metrics import exposition
from costguard.schema import PROJECT_ROOT

router = APIRouter(tags=["system"])
RUNBOOKS = PROJECT_ROOT / "runbooks"
ALERTNAME = re.compile(r"^[A-Za-z][A-Za-z0-9]*$")


@router.get("/metrics", summary="Prometheus metrics", response_class=PlainTextResponse)
def metrics(ctx: AppContext = Depends(context)) -> Response:
    return Response(exposition(ctx.factory, ctx.settings, ctx.registry), media_type=CONTENT_TYPE_LATEST)


@router.get("/healthz", summary="Liveness: the process answers")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz", summary="Readiness: the database answers and evaluation is fresh")
def readyz(ctx: AppContext = Depends(context)) -> JSONResponse:
    try:
        with transaction(ctx.factory) as session:
            session.execute(text("SELECT 1"))
            state = evaluation_state(session)
    except Exception as exc:
        return JSONResponse({"status": "unavailable", "reason": f"database unreachable: {type(exc).__name__}"}, 503)
    limit = timedelta(seconds=3 * ctx.settings.evaluation_interval_seconds + 30)
    if state is None:
        return JSONResponse({"status": "unavailable", "reason": "no evaluation cycle has finished yet"}, 503)
    age = utcnow() - state.last_finished_at
    if age > limit:
        return JSONResponse(
            {"status": "unavailable", "reason": f"last evaluation finished {int(age.total_seconds())}s ago"}, 503
        )
    return JSONResponse({"status": "ok", "last_evaluation": state.last_finished_at.isoformat()})


@router.get("/runbooks", summary="Index of runbooks", response_class=HTMLResponse)
def runbook_index() -> HTMLResponse:
    names = sorted(p.stem for p in RUNBOOKS.glob("*.md") if p.stem != "README")
    items = "".join(f'<li><a href="/runbooks/{n}">{n}</a></li>' for n in names)
    return HTMLResponse(_page("Runbooks", f"<h1>Runbooks</h1><ul>{items}</ul>"))


@router.get("/runbooks/{alertname}", summary="The runbook of one alert", response_class=HTMLResponse)
def runbook(alertname: str) -> HTMLResponse:
    path = RUNBOOKS / f"{alertname}.md"
    if not ALERTNAME.match(alertname) or not path.is_file():
        raise NotFound(f"no runbook named {alertname!r}; see /runbooks for the list")
    body = path.read_text(encoding="utf-8")
    return HTMLResponse(_page(alertname, f'<article class="runbook">{html.escape(body)}</article>'))


def _page(title: str, content: str) -> str:
    return (
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        "<meta name=viewport content='width=device-width, initial-scale=1'>"
        f"<title>{html.escape(title)} — costguard</title>"
        "<style>body{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;color:#1b1b1b}"
        ".runbook{white-space:pre-wrap;font-family:ui-monospace,monospace;line-height:1.5}</style></head>"
        f"<body>{content}</body></html>"
    )
