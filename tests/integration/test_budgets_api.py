"""Budgets through the API: optimistic concurrency, file-managed budgets, audit, validation messages."""

from __future__ import annotations

from tests.helpers.app import make_api

BUDGET = {"id": "acme-monthly", "tenant": "acme", "amount": "5000.00", "currency": "USD", "thresholds": [0.5, 0.8]}


def test_create_read_update_delete_with_etags(db):
    api = make_api(db)
    created = api.client.post("/v1/budgets", json=BUDGET, headers=api.headers("finance"))
    assert created.status_code == 201, created.text
    read = api.client.get("/v1/budgets/acme-monthly", headers=api.headers("viewer"))
    etag = read.headers["etag"]
    assert read.json()["amount"] == "5000"
    updated = api.client.put(
        "/v1/budgets/acme-monthly",
        json={**BUDGET, "amount": "6000"},
        headers=api.headers("finance", **{"If-Match": etag}),
    )
    assert updated.status_code == 200, updated.text
    assert updated.headers["etag"] != etag
    gone = api.client.delete("/v1/budgets/acme-monthly", headers=api.headers("finance", **{"If-Match": etag}))
    assert gone.status_code == 412
    gone = api.client.delete(
        "/v1/budgets/acme-monthly", headers=api.headers("finance", **{"If-Match": updated.headers["etag"]})
    )
    assert gone.status_code == 204
    assert api.client.get("/v1/budgets/acme-monthly", headers=api.headers("viewer")).status_code == 404
    history = api.client.get("/v1/budgets/acme-monthly/history", headers=api.headers("viewer")).json()
    assert [h["action"] for h in history] == ["delete", "update", "create"]
    assert history[1]["before"]["amount"] == "5000" and history[1]["after"]["amount"] == "6000"
    assert history[0]["actor"] == "test-finance" and history[0]["source"] == "api"


def test_two_admins_editing_the_same_budget_second_gets_412_and_nothing_is_lost(db):
    api = make_api(db)
    api.client.post("/v1/budgets", json=BUDGET, headers=api.headers("admin"))
    etag = api.client.get("/v1/budgets/acme-monthly", headers=api.headers("admin")).headers["etag"]
    first = api.client.put(
        "/v1/budgets/acme-monthly",
        json={**BUDGET, "amount": "7000"},
        headers=api.headers("admin", **{"If-Match": etag}),
    )
    second = api.client.put(
        "/v1/budgets/acme-monthly",
        json={**BUDGET, "thresholds": [0.9]},
        headers=api.headers("finance", **{"If-Match": etag}),
    )
    assert first.status_code == 200
    assert second.status_code == 412
    assert "changed by someone else" in second.json()["error"]
    current = api.client.get("/v1/budgets/acme-monthly", headers=api.headers("viewer")).json()
    assert current["amount"] == "7000" and current["thresholds"] == [0.5, 0.8]


def test_put_without_if_match_is_428_and_existing_id_is_409(db):
    api = make_api(db)
    api.client.post("/v1/budgets", json=BUDGET, headers=api.headers("finance"))
    assert api.client.post("/v1/budgets", json=BUDGET, headers=api.headers("finance")).status_code == 409
    response = api.client.put("/v1/budgets/acme-monthly", json=BUDGET, headers=api.headers("finance"))
    assert response.status_code == 428
    assert "If-Match" in response.json()["error"]


def test_invalid_budget_gets_one_sentence_per_problem(db):
    api = make_api(db)
    bad = {
        **BUDGET,
        "amount": "-1",
        "thresholds": [1.5],
        "labels": {"tenant": "x", "bad-name": "y"},
        "period": "fortnightly",
        "timezone": "Mars/Olympus",
        "colour": "red",
    }
    response = api.client.post("/v1/budgets", json=bad, headers=api.headers("finance"))
    assert response.status_code == 422
    details = response.json()["details"]
    fields = {d.split(":")[0] for d in details}
    assert fields == {"amount", "thresholds", "labels", "period", "timezone", "colour"}
    assert any("greater than zero" in d for d in details)


def test_budget_in_another_currency_is_refused_by_name(db):
    api = make_api(db)
    response = api.client.post("/v1/budgets", json={**BUDGET, "currency": "EUR"}, headers=api.headers("finance"))
    assert response.status_code == 422
    assert response.json()["error"].startswith("currency: EUR differs")


def test_file_managed_budget_is_read_only_unless_taken_over(db, tmp_path):
    from costguard.budgets.files import apply, load_dir
    from costguard.budgets.service import Actor
    from costguard.db import transaction, utcnow

    (tmp_path / "acme.yaml").write_text("id: acme-monthly\ntenant: acme\namount: 100\n")
    with transaction(db.factory) as session:
        apply(session, load_dir(tmp_path, currency="USD").budgets, actor=Actor("ci", "file"), now=utcnow())
    api = make_api(db)
    etag = api.client.get("/v1/budgets/acme-monthly", headers=api.headers("finance")).headers["etag"]
    refused = api.client.put(
        "/v1/budgets/acme-monthly",
        json={**BUDGET, "amount": "200"},
        headers=api.headers("finance", **{"If-Match": etag}),
    )
    assert refused.status_code == 409
    assert "acme.yaml" in refused.json()["error"]
    taken = api.client.put(
        "/v1/budgets/acme-monthly?take_over=true",
        json={**BUDGET, "amount": "200"},
        headers=api.headers("finance", **{"If-Match": etag}),
    )
    assert taken.status_code == 200
    assert taken.json()["managed_by_file"] is None
    audit = api.client.get("/v1/audit", headers=api.headers("viewer")).json()
    assert [(a["action"], a["source"]) for a in audit] == [("update", "api"), ("create", "file")]
