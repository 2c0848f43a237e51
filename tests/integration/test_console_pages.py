"""The console through real HTTP requests against the real app and database (SQLite and PostgreSQL)."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from costguard.budgets.service import Actor, create_budget, parse_spec
from costguard.db import transaction, utcnow
from costguard.evaluation.jobs import run_evaluation_cycle
from costguard.ui.session import SESSION_COOKIE
from tests.helpers.app import Api, add_budget, make_api, token, usage

CSRF = re.compile(r'name="csrf" value="([^"]+)"')


def sign_in(api: Api, secret: str) -> str:
    """Sign in through the form; returns the session's CSRF token as the pages carry it."""
    api.client.cookies.clear()
    page = api.client.get("/login")
    login_csrf = CSRF.search(page.text).group(1)  # type: ignore[union-attr]
    response = api.client.post(
        "/login", data={"token": secret, "csrf": login_csrf, "next": "/"}, follow_redirects=False
    )
    assert response.status_code == 303, response.text
    return CSRF.search(api.client.get("/").text).group(1)  # type: ignore[union-attr]


def budget_form(**fields: str) -> dict[str, str]:
    base = {
        "id": "acme-ui",
        "tenant": "acme",
        "pipeline": "*",
        "model": "*",
        "period": "monthly",
        "timezone": "",
        "amount": "250.00",
        "currency": "USD",
        "thresholds": "0.5, 0.8",
        "labels": "team=finance",
        "runbook_url": "",
        "description": "made in the console",
    }
    return {**base, **fields}


def test_pages_redirect_to_sign_in_without_a_session(db):
    api = make_api(db)
    for path in ("/", "/budgets/x", "/alerts", "/audit", "/new-budget"):
        response = api.client.get(path, follow_redirects=False)
        assert response.status_code == 303
        assert response.headers["location"].startswith("/login?next=")


def test_sign_in_sets_a_strict_httponly_session_that_does_not_hold_the_token(db):
    api = make_api(db)
    sign_in(api, api.tokens["finance"])
    raw = api.client.get("/login", follow_redirects=False)
    assert raw.status_code == 303  # already signed in
    cookie_header = ""
    api.client.cookies.clear()
    page = api.client.get("/login")
    response = api.client.post(
        "/login",
        data={"token": api.tokens["finance"], "csrf": CSRF.search(page.text).group(1)},  # type: ignore[union-attr]
        follow_redirects=False,
    )
    cookie_header = response.headers["set-cookie"]
    assert f"{SESSION_COOKIE}=" in cookie_header
    assert "HttpOnly" in cookie_header
    assert "SameSite=strict" in cookie_header or "SameSite=Strict" in cookie_header
    assert api.tokens["finance"] not in cookie_header
    assert api.tokens["finance"].removeprefix("cg_") not in cookie_header


def test_unknown_token_and_ingest_token_cannot_sign_in(db):
    api = make_api(db)
    page = api.client.get("/login")
    csrf = CSRF.search(page.text).group(1)  # type: ignore[union-attr]
    bad = api.client.post("/login", data={"token": "cg_nope", "csrf": csrf})
    assert bad.status_code == 401
    assert "token: unknown or revoked" in bad.text
    ingest = api.client.post("/login", data={"token": api.tokens["ingest"], "csrf": csrf})
    assert ingest.status_code == 403
    assert api.client.get("/", follow_redirects=False).status_code == 303


def test_sign_in_without_the_forms_csrf_token_is_refused(db):
    api = make_api(db)
    response = api.client.post("/login", data={"token": api.tokens["admin"]}, follow_redirects=False)
    assert response.status_code == 403
    assert SESSION_COOKIE not in response.headers.get("set-cookie", "")


def test_finance_creates_a_budget_recorded_with_source_ui(db):
    api = make_api(db)
    csrf = sign_in(api, api.tokens["finance"])
    response = api.client.post("/new-budget", data={**budget_form(), "csrf": csrf}, follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == "/budgets/acme-ui?done=created"
    stored = api.client.get("/v1/budgets/acme-ui", headers=api.headers("viewer")).json()
    assert stored["amount"] == "250"  # the API's exact normal form of 250.00
    assert stored["thresholds"] == [0.5, 0.8]
    assert stored["labels"] == {"team": "finance"}
    history = api.client.get("/v1/budgets/acme-ui/history", headers=api.headers("viewer")).json()
    assert [(h["action"], h["source"], h["actor"]) for h in history] == [("create", "ui", "test-finance")]
    assert "acme-ui" in api.client.get("/").text


def test_invalid_form_shows_the_apis_messages_next_to_the_fields(db):
    api = make_api(db)
    csrf = sign_in(api, api.tokens["finance"])
    form = budget_form(id="Bad Id", amount="-3", thresholds="0.5, 1.5", timezone="Mars/Base", labels="oops")
    response = api.client.post("/new-budget", data={**form, "csrf": csrf})
    assert response.status_code == 422
    amount_error = re.search(r'id="amount-error">([^<]+)<', response.text)
    assert amount_error and amount_error.group(1) == "must be greater than zero"
    for name in ("id", "thresholds", "timezone", "labels"):
        assert f'id="{name}-error"' in response.text
    assert 'aria-invalid="true"' in response.text
    assert 'value="Bad Id"' in response.text  # what the user typed is kept
    assert api.client.get("/v1/budgets", headers=api.headers("viewer")).json() == []


def test_duplicate_id_is_a_field_error_on_the_id(db):
    api = make_api(db)
    add_budget(db, {"id": "acme-ui", "tenant": "acme", "amount": "10"})
    csrf = sign_in(api, api.tokens["finance"])
    response = api.client.post("/new-budget", data={**budget_form(), "csrf": csrf})
    assert response.status_code == 409
    assert "already exists" in re.search(r'id="id-error">([^<]+)<', response.text).group(1)  # type: ignore[union-attr]


def test_edit_changes_the_budget_and_the_history_shows_before_and_after(db):
    api = make_api(db)
    add_budget(db, {"id": "acme-ui", "tenant": "acme", "amount": "100"})
    csrf = sign_in(api, api.tokens["finance"])
    form_page = api.client.get("/budgets/acme-ui/edit").text
    version = re.search(r'name="version" value="(\d+)"', form_page).group(1)  # type: ignore[union-attr]
    response = api.client.post(
        "/budgets/acme-ui/edit",
        data={**budget_form(amount="175.50"), "version": version, "csrf": csrf},
        follow_redirects=False,
    )
    assert response.status_code == 303
    page = api.client.get("/budgets/acme-ui").text
    assert "<del>100</del> → <ins>175.5</ins>" in page
    assert api.client.get("/v1/budgets/acme-ui", headers=api.headers("viewer")).json()["amount"] == "175.5"


def test_stale_edit_shows_both_versions_and_saves_nothing(db):
    api = make_api(db)
    add_budget(db, {"id": "acme-ui", "tenant": "acme", "amount": "100"})
    csrf = sign_in(api, api.tokens["finance"])
    etag = api.client.get("/v1/budgets/acme-ui", headers=api.headers("admin")).headers["etag"]
    api.client.put(
        "/v1/budgets/acme-ui",
        json={"tenant": "acme", "amount": "300"},
        headers=api.headers("admin", **{"If-Match": etag}),
    )
    response = api.client.post(
        "/budgets/acme-ui/edit", data={**budget_form(amount="120"), "version": "1", "csrf": csrf}
    )
    assert response.status_code == 412
    assert re.search(r"<th scope=\"row\">amount</th><td>300</td><td>120</td>", response.text)
    assert 'name="version" value="2"' in response.text  # asks again against the current version
    assert api.client.get("/v1/budgets/acme-ui", headers=api.headers("viewer")).json()["amount"] == "300"


def test_viewer_sees_no_edit_controls_and_a_forged_post_is_refused(db):
    api = make_api(db)
    add_budget(db, {"id": "acme-ui", "tenant": "acme", "amount": "100"})
    csrf = sign_in(api, api.tokens["viewer"])
    for path in ("/", "/budgets/acme-ui"):
        page = api.client.get(path).text
        assert "/new-budget" not in page
        assert "/edit" not in page
        assert "/delete" not in page
    assert api.client.get("/new-budget").status_code == 403
    forged = api.client.post("/budgets/acme-ui/edit", data={**budget_form(amount="1"), "version": "1", "csrf": csrf})
    assert forged.status_code == 403
    assert api.client.post("/new-budget", data={**budget_form(id="x"), "csrf": csrf}).status_code == 403
    assert api.client.post("/budgets/acme-ui/delete", data={"version": "1", "csrf": csrf}).status_code == 403
    assert api.client.get("/v1/budgets/acme-ui", headers=api.headers("viewer")).json()["amount"] == "100"


def test_post_without_the_sessions_csrf_token_is_refused_even_for_finance(db):
    api = make_api(db)
    sign_in(api, api.tokens["finance"])
    response = api.client.post("/new-budget", data=budget_form())
    assert response.status_code == 403
    wrong = api.client.post("/new-budget", data={**budget_form(), "csrf": "0" * 64})
    assert wrong.status_code == 403
    assert api.client.get("/v1/budgets", headers=api.headers("viewer")).json() == []


def test_revoking_the_token_ends_the_console_session(db):
    from costguard.auth.service import list_tokens, revoke_token

    api = make_api(db)
    sign_in(api, api.tokens["finance"])
    with transaction(db.factory) as session:
        row = next(t for t in list_tokens(session) if t.name == "test-finance")
        revoke_token(session, row.id, now=utcnow())
    assert api.client.get("/", follow_redirects=False).status_code == 303


def test_file_managed_budget_is_read_only_in_the_console(db):
    api = make_api(db)
    with transaction(db.factory) as session:
        spec = parse_spec({"id": "acme-file", "tenant": "acme", "amount": "10"}, currency="USD")
        create_budget(session, spec, actor=Actor("files", "file"), now=utcnow(), managed_by_file="budgets/acme.yaml")
    csrf = sign_in(api, api.tokens["finance"])
    page = api.client.get("/budgets/acme-file").text
    assert "budgets/acme.yaml" in page
    assert "/budgets/acme-file/edit" not in page
    assert api.client.get("/budgets/acme-file/edit").status_code == 409
    refused = api.client.post(
        "/budgets/acme-file/edit", data={**budget_form(id="acme-file"), "version": "1", "csrf": csrf}
    )
    assert refused.status_code == 409
    assert "managed by the file budgets/acme.yaml" in refused.text


def test_tenant_bound_viewer_sees_only_its_tenant(db):
    api = make_api(db)
    add_budget(db, {"id": "acme-b", "tenant": "acme", "amount": "10"})
    add_budget(db, {"id": "globex-b", "tenant": "globex", "amount": "10"})
    sign_in(api, token(db, "viewer", tenant="acme"))
    page = api.client.get("/").text
    assert "acme-b" in page
    assert "globex-b" not in page
    assert api.client.get("/budgets/globex-b").status_code == 404


def test_overview_paginates_filters_and_sorts_by_utilization(db):
    api = make_api(db)
    now = datetime.now(UTC)
    with transaction(db.factory) as session:
        for i in range(120):
            spec = parse_spec({"id": f"t{i:03d}", "tenant": f"tenant{i % 3}", "amount": str(10 + i)}, currency="USD")
            create_budget(session, spec, actor=Actor("test", "api"), now=now)
    records = [usage(f"e{i}", "9", tenant=f"tenant{i % 3}", timestamp=now.isoformat()) for i in range(3)]
    assert api.post_usage(records).status_code == 200
    run_evaluation_cycle(db.factory, api.settings)
    sign_in(api, api.tokens["viewer"])
    rows = re.compile(r'<th scope="row"><a href="/budgets/(t\d+)')
    first = rows.findall(api.client.get("/").text)
    assert len(first) == 50
    assert first[:3] == ["t000", "t001", "t002"]  # each tenant spent 9: the smallest amounts are most used
    assert len(rows.findall(api.client.get("/?page=3").text)) == 20
    assert rows.findall(api.client.get("/?page=abc").text) == first
    by_tenant = rows.findall(api.client.get("/?tenant=tenant1&sort=budget").text)
    assert by_tenant[:2] == ["t001", "t004"]
    assert len(by_tenant) == 40
    assert rows.findall(api.client.get("/?state=exceeded").text) == []
    assert rows.findall(api.client.get("/?state=approaching").text) == ["t000", "t001"]  # 9/10 and 9/11 >= 0.8
    assert len(rows.findall(api.client.get("/?state=ok&page=3").text)) == 18


def test_budget_page_draws_spend_with_breakdown_and_alerts(db):
    api = make_api(db)
    add_budget(db, {"id": "acme-b", "tenant": "acme", "amount": "20", "thresholds": [0.5], "forecast": True})
    now = datetime.now(UTC)
    start = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    records = [
        usage("a1", "6", timestamp=start.isoformat(), pipeline="chat", model="gpt-4o"),
        usage("a2", "5", timestamp=start.isoformat(), pipeline="search", model="small"),
        usage("a3", "1.25", timestamp=start.isoformat(), pipeline="chat", model="gpt-4o"),
    ]
    assert api.post_usage(records).status_code == 200
    run_evaluation_cycle(db.factory, api.settings)
    sign_in(api, api.tokens["viewer"])
    page = api.client.get("/budgets/acme-b").text
    assert '<svg class="chart"' in page
    assert 'class="budget"' in page and 'class="threshold"' in page and 'class="spend"' in page
    assert "Cumulative spend 12.25 USD of a 20.00 USD budget" in page
    assert re.search(r"<td>chat</td><td>gpt-4o</td><td class=\"num\"><span title=\"7\.25", page)
    assert "CostBudgetApproaching" in page
    alerts = api.client.get("/alerts").text
    assert "/runbooks/CostBudgetApproaching" in alerts
    assert 'href="/budgets/acme-b"' in alerts


def test_security_headers_forbid_scripts_and_framing(db):
    api = make_api(db)
    response = api.client.get("/login")
    policy = response.headers["content-security-policy"]
    assert "default-src 'none'" in policy
    assert "script-src" not in policy
    assert "frame-ancestors 'none'" in policy


def test_delete_needs_the_version_read_and_records_the_deletion(db):
    api = make_api(db)
    add_budget(db, {"id": "acme-ui", "tenant": "acme", "amount": "100"})
    csrf = sign_in(api, api.tokens["finance"])
    page = api.client.get("/budgets/acme-ui").text
    assert 'action="/budgets/acme-ui/delete"' in page
    etag = api.client.get("/v1/budgets/acme-ui", headers=api.headers("admin")).headers["etag"]
    api.client.put(
        "/v1/budgets/acme-ui",
        json={"tenant": "acme", "amount": "101"},
        headers=api.headers("admin", **{"If-Match": etag}),
    )
    stale = api.client.post("/budgets/acme-ui/delete", data={"version": "1", "csrf": csrf})
    assert stale.status_code == 412
    assert api.client.get("/v1/budgets/acme-ui", headers=api.headers("viewer")).status_code == 200
    done = api.client.post("/budgets/acme-ui/delete", data={"version": "2", "csrf": csrf}, follow_redirects=False)
    assert done.status_code == 303
    assert api.client.get("/v1/budgets/acme-ui", headers=api.headers("viewer")).status_code == 404
    audit = api.client.get("/audit").text
    assert re.search(r"<td>delete</td>\s*<td>test-finance</td>\s*<td>ui</td>", audit)


def test_sign_out_needs_the_csrf_token_and_clears_the_session(db):
    api = make_api(db)
    csrf = sign_in(api, api.tokens["viewer"])
    assert api.client.post("/logout", data={}).status_code == 403
    assert api.client.get("/", follow_redirects=False).status_code == 200
    response = api.client.post("/logout", data={"csrf": csrf}, follow_redirects=False)
    assert response.status_code == 303
    assert f'{SESSION_COOKIE}=""' in response.headers["set-cookie"] or "Max-Age=0" in response.headers["set-cookie"]
    assert api.client.get("/", follow_redirects=False).status_code == 303
