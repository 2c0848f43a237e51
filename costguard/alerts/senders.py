"""HTTP senders for the two receiver kinds: Alertmanager's v2 API and signed webhooks."""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

import httpx

SIGNATURE_HEADER = "X-Costguard-Signature"


class DeliveryError(Exception):
    """A receiver did not accept a notification; it stays queued and is retried unless ``permanent``."""

    def __init__(self, message: str, *, permanent: bool = False) -> None:
        super().__init__(message)
        self.permanent = permanent


def sign(body: bytes, secret: str) -> str:
    """``sha256=HEX`` HMAC of the raw body, as receivers verify it."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def _post(
    client: httpx.Client, url: str, body: bytes, headers: dict[str, str], *, permanent_statuses: frozenset[int]
) -> None:
    try:
        response = client.post(url, content=body, headers={"Content-Type": "application/json", **headers})
    except httpx.HTTPError as exc:
        raise DeliveryError(f"{type(exc).__name__}: {exc}") from exc
    if response.status_code >= 300:
        raise DeliveryError(
            f"HTTP {response.status_code}: {response.text[:200]}",
            permanent=response.status_code in permanent_statuses,
        )


# Alertmanager answers 400 when some alerts of a batch are invalid; it has stored the valid ones, and
# the invalid ones will never be accepted. Retrying would only hold back the queue (and the re-sends).
ALERTMANAGER_PERMANENT = frozenset({400, 422})


def post_to_alertmanager(client: httpx.Client, base_url: str, alerts: list[dict[str, Any]]) -> None:
    url = base_url.rstrip("/") + "/api/v2/alerts"
    _post(client, url, json.dumps(alerts).encode(), {}, permanent_statuses=ALERTMANAGER_PERMANENT)


def post_webhook(client: httpx.Client, url: str, message: dict[str, Any], *, secret: str) -> None:
    body = json.dumps(message, separators=(",", ":")).encode()
    headers = {SIGNATURE_HEADER: sign(body, secret)} if secret else {}
    # A webhook's 4xx is usually configuration (a secret, a route) that gets fixed: keep retrying.
    _post(client, url, body, headers, permanent_statuses=frozenset())
