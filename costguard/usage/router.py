"""``POST /v1/usage``: a batch is stored whole or not at all."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool

from costguard.api.deps import AppContext, context, requires
from costguard.auth.service import Principal
from costguard.db import transaction, utcnow
from costguard.errors import CostguardError, Forbidden, PayloadTooLarge
from costguard.metrics import USAGE_REJECTED
from costguard.usage.batches import Limits, decompress, fast_records, raw_records, validate_records
from costguard.usage.service import IngestResult, ingest_batch

router = APIRouter(tags=["usage"])
REASONS = {400: "invalid", 422: "invalid", 409: "conflict", 413: "too_large", 403: "forbidden"}


def _ingest(
    ctx: AppContext, who: Principal, body: bytes, content_type: str | None, encoding: str | None
) -> IngestResult:
    settings = ctx.settings
    limits = Limits(settings.max_batch_records, settings.max_batch_bytes)
    rejected = 1
    try:
        data = decompress(body, encoding, limits)
        records = fast_records(data, content_type, currency=settings.currency, limits=limits)
        if records is None:  # something is wrong or unusual: the slow path finds and explains it
            raws = raw_records(data, content_type)
            rejected = max(len(raws), 1)
            records = validate_records(raws, currency=settings.currency, limits=limits)
        rejected = max(len(records), 1)
        if who.tenant is not None:
            foreign = sorted({r.tenant for r in records if r.tenant != who.tenant})
            if foreign:
                raise Forbidden(
                    f"tenant: the token {who.name!r} may only post usage of tenant {who.tenant!r}, not {foreign[0]!r}"
                )
        with transaction(ctx.factory) as session:
            return ingest_batch(session, records, now=utcnow())
    except CostguardError as exc:
        USAGE_REJECTED.labels(REASONS.get(exc.status_code, "invalid")).inc(rejected)
        raise


# gzip never shrinks data by less than this, so a compressed body this much over the limit is
# refused before it is even inflated (and a chunked body of unknown length cannot exhaust memory).
GZIP_HEADROOM = 64 * 1024


async def _read_capped(request: Request, limit: int) -> bytes:
    cap = limit + GZIP_HEADROOM if request.headers.get("content-encoding") else limit
    parts: list[bytes] = []
    size = 0
    async for part in request.stream():
        size += len(part)
        if size > cap:
            USAGE_REJECTED.labels("too_large").inc()
            raise PayloadTooLarge(f"the batch is larger than {limit} bytes; split it into smaller batches")
        parts.append(part)
    return b"".join(parts)


@router.post("/v1/usage", summary="Ingest a batch of usage records (JSON array or NDJSON, optionally gzip)")
async def post_usage(
    request: Request, who: Principal = Depends(requires("ingest")), ctx: AppContext = Depends(context)
) -> dict[str, Any]:
    limits = ctx.settings.max_batch_bytes
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limits and not request.headers.get("content-encoding"):
        USAGE_REJECTED.labels("too_large").inc()
        raise PayloadTooLarge(f"the batch is larger than {limits} bytes; split it into smaller batches")
    body = await _read_capped(request, limits)
    result = await run_in_threadpool(
        _ingest, ctx, who, body, request.headers.get("content-type"), request.headers.get("content-encoding")
    )
    return {"accepted": result.accepted, "duplicates": result.duplicates}
