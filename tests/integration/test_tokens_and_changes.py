"""Tokens from the command line, the first admin token, and budgets changed mid-period."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import select

from costguard.auth.models import ApiToken
from costguard.db import transaction
from costguard.evaluation.jobs import run_evaluation_cycle
from tests.helpers.app import add_budget, make_api, usage


def test_token_secret_is_printed_once_on_the_last_line_and_only_its_hash_is_stored(db, cli):
    result = cli("tokens", "create", "--role", "finance", "--tenant", "acme", "--name", "alice")
    assert result.exit_code == 0, result.output
    secret = result.stdout.strip().splitlines()[-1]
    assert secret.startswith("cg_")
    with transaction(db.factory) as session:
        [row] = session.scalars(select(ApiToken)).all()
    assert (row.name, row.role, row.tenant) == ("alice", "finance", "acme")
    assert secret not in (row.secret_hash, row.id)
    listed = cli("tokens", "list")
    assert "alice" in listed.stdout and secret not in listed.stdout


def test_revoked_token_stops_working_at_once(db, cli):
    api = make_api(db)
    secret = cli("tokens", "create", "--role", "viewer").stdout.strip().splitlines()[-1]
    headers = {"Authorization": f"Bearer {secret}"}
    assert api.client.get("/v1/budgets", headers=headers).status_code == 200
    from costguard.auth.service import authenticate

    with transaction(db.factory) as session:
        own_id = authenticate(session, secret).token_id
    assert cli("tokens", "revoke", own_id).exit_code == 0
    assert api.client.get("/v1/budgets", headers=headers).status_code == 401


def test_unknown_role_is_refused_with_the_list_of_roles(cli):
    result = cli("tokens", "create", "--role", "owner")
    assert result.exit_code == 1
    assert "admin, finance, viewer, ingest" in result.output


def test_first_admin_token_is_created_once(db):
    from costguard.cli import _first_admin_token
    from costguard.runtime import Runtime

    runtime = Runtime(db.settings(), db.engine, db.factory)
    _first_admin_token(runtime)
    _first_admin_token(runtime)
    with transaction(db.factory) as session:
        assert [t.role for t in session.scalars(select(ApiToken))] == ["admin"]


def test_changing_a_budget_mid_period_keeps_the_spend_already_counted(db):
    api = make_api(db)
    add_budget(db, {"id": "acme", "tenant": "acme", "amount": "100", "thresholds": [0.8]})
    api.post_usage([usage("a", "90")])
    at = datetime(2026, 12, 10, tzinfo=UTC)
    run_evaluation_cycle(db.factory, api.settings, at=at)
    etag = api.client.get("/v1/budgets/acme", headers=api.headers("finance")).headers["etag"]
    changed = api.client.put(
        "/v1/budgets/acme",
        json={"id": "acme", "tenant": "acme", "amount": "200"},
        headers=api.headers("finance", **{"If-Match": etag}),
    )
    assert changed.status_code == 200
    [before] = api.client.get("/v1/status", headers=api.headers("viewer")).json()
    assert (before["amount"], before["state"]) == ("100", "approaching")  # not yet re-evaluated
    run_evaluation_cycle(db.factory, api.settings, at=at.replace(hour=1))
    [after] = api.client.get("/v1/status", headers=api.headers("viewer")).json()
    assert (after["amount"], after["spend"], after["state"]) == ("200", "90", "ok")
