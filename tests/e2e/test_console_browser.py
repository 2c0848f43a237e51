"""The console in Debian's Chromium, driven by Playwright, against a real `costguard serve` process."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from costguard.auth.service import create_token
from costguard.config import Settings
from costguard.db import make_engine, make_session_factory, transaction, utcnow
from costguard.demo import load_demo
from costguard.evaluation.jobs import run_evaluation_cycle
from costguard.schema import upgrade_to_head
from tests.conftest import IN_CI
from tests.helpers.processes import VENV_BIN, free_port, process, wait_http

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "tests" / "artifacts"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
LAPTOP = {"width": 1280, "height": 800}
TABLET = {"width": 820, "height": 1180}


@dataclass
class Console:
    base: str
    tokens: dict[str, str]


def _require_chromium() -> None:
    if os.path.exists(CHROMIUM) and shutil.which("chromium"):
        return
    if IN_CI:
        pytest.fail(f"CI=true but {CHROMIUM} is missing; .ci/run installs Debian's chromium")
    pytest.skip(f"{CHROMIUM} is not installed (apt-get install chromium) and CI is not set")


@pytest.fixture(scope="module")
def console(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Console]:
    """A migrated database with budgets-as-code, a demo month of usage, tokens, and `costguard serve` on it."""
    _require_chromium()
    folder = tmp_path_factory.mktemp("console")
    url = f"sqlite:///{folder / 'console.db'}"
    port = free_port()
    env = {
        "COSTGUARD_DATABASE_URL": url,
        "COSTGUARD_PORT": str(port),
        "COSTGUARD_EVALUATION_INTERVAL_SECONDS": "2",
        "COSTGUARD_EXTERNAL_URL": f"http://127.0.0.1:{port}",
    }
    upgrade_to_head(url)
    subprocess.run(
        [str(VENV_BIN / "costguard"), "budgets", "apply", str(ROOT / "budgets")],
        cwd=folder,
        env={**os.environ, **env},
        check=True,
        capture_output=True,
    )
    settings = Settings(database_url=url)
    engine = make_engine(url)
    factory = make_session_factory(engine)
    load_demo(factory, settings)
    run_evaluation_cycle(factory, settings)
    with transaction(factory) as session:
        tokens = {
            role: create_token(session, role=role, name=f"e2e-{role}", tenant=None, now=utcnow()).secret
            for role in ("admin", "finance", "viewer")
        }
    engine.dispose()
    base = f"http://127.0.0.1:{port}"
    with process([str(VENV_BIN / "costguard"), "serve"], env=env, cwd=folder, log=folder / "serve.log"):
        wait_http(f"{base}/healthz")
        yield Console(base, tokens)


@pytest.fixture(scope="module")
def browser(console: Console) -> Iterator[object]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def page(browser: object) -> Iterator[object]:
    context = browser.new_context(viewport=LAPTOP, bypass_csp=True)  # type: ignore[attr-defined]
    try:
        yield context.new_page()
    finally:
        context.close()


def sign_in(page: object, console: Console, role: str) -> None:
    page.goto(f"{console.base}/")  # type: ignore[attr-defined]
    assert page.url.startswith(f"{console.base}/login")  # type: ignore[attr-defined]
    page.get_by_label("Token", exact=True).fill(console.tokens[role])  # type: ignore[attr-defined]
    page.get_by_role("button", name="Sign in").click()  # type: ignore[attr-defined]
    page.wait_for_url(f"{console.base}/")  # type: ignore[attr-defined]


def api_headers(console: Console, **extra: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {console.tokens['admin']}", **extra}


def test_finance_creates_sees_edits_and_finds_the_change_in_the_history(console, page):
    from playwright.sync_api import expect

    sign_in(page, console, "finance")
    page.get_by_role("link", name="New budget").click()
    page.get_by_label("Id", exact=True).fill("initech-browser")
    page.get_by_label("Tenant", exact=True).fill("initech")
    page.get_by_label("Amount", exact=True).fill("400")
    page.get_by_label("Approaching thresholds", exact=True).fill("0.5, 0.9")
    page.get_by_label("Labels", exact=True).fill("team=finance")
    page.get_by_role("button", name="Create budget").click()
    expect(page.get_by_role("status")).to_have_text("Budget created.")
    page.get_by_role("link", name="Overview").click()
    page.get_by_label("Tenant", exact=True).select_option("initech")
    page.get_by_role("button", name="Apply").click()
    expect(page.get_by_role("link", name="initech-browser")).to_be_visible()
    page.get_by_role("link", name="initech-browser").click()
    page.get_by_role("link", name="Edit budget").click()
    page.get_by_label("Amount", exact=True).fill("450")
    page.get_by_role("button", name="Save changes").click()
    expect(page.get_by_role("status")).to_have_text("Budget updated.")
    history = page.locator("section", has=page.get_by_role("heading", name="Change history"))
    expect(history.locator("tbody tr").first).to_contain_text("update")
    expect(history.locator("tbody tr").first).to_contain_text("e2e-finance")
    expect(history.locator("tbody tr").first.locator("del")).to_have_text("400")
    expect(history.locator("tbody tr").first.locator("ins")).to_have_text("450")
    stored = httpx.get(f"{console.base}/v1/budgets/initech-browser", headers=api_headers(console)).json()
    assert stored["amount"] == "450"


def test_invalid_amount_is_reported_at_the_field_in_the_browser(console, page):
    from playwright.sync_api import expect

    sign_in(page, console, "finance")
    page.goto(f"{console.base}/new-budget")
    page.get_by_label("Id", exact=True).fill("hooli-bad")
    page.get_by_label("Tenant", exact=True).fill("hooli")
    page.get_by_label("Amount", exact=True).fill("-5")
    page.get_by_role("button", name="Create budget").click()
    expect(page.locator("#amount-error")).to_have_text("must be greater than zero")
    expect(page.get_by_label("Amount", exact=True)).to_have_attribute("aria-invalid", "true")


def test_viewer_sees_no_edit_controls_and_a_forged_post_is_refused(console, page):
    from playwright.sync_api import expect

    sign_in(page, console, "viewer")
    expect(page.get_by_role("link", name="New budget")).to_have_count(0)
    page.goto(f"{console.base}/budgets/acme-monthly")
    expect(page.get_by_role("heading", name="Budget acme-monthly")).to_be_visible()
    expect(page.get_by_role("link", name="Edit budget")).to_have_count(0)
    expect(page.get_by_role("button", name="Delete budget")).to_have_count(0)
    before = httpx.get(f"{console.base}/v1/budgets/daily-gpt4o-guard", headers=api_headers(console)).json()
    # The viewer builds the form the console would never show them, with their own valid CSRF token.
    with page.expect_navigation() as navigation:
        page.evaluate(
            """() => {
                const form = document.createElement('form');
                form.method = 'post';
                form.action = '/new-budget';
                const add = (name, value) => {
                    const input = document.createElement('input');
                    input.type = 'hidden'; input.name = name; input.value = value; form.appendChild(input);
                };
                add('csrf', document.querySelector('input[name=csrf]').value);
                add('id', 'forged'); add('tenant', 'acme'); add('amount', '1'); add('period', 'monthly');
                add('currency', 'USD');
                document.body.appendChild(form);
                form.submit();
            }"""
        )
    assert navigation.value.status == 403
    expect(page.get_by_role("alert")).to_contain_text("this needs the finance role")
    assert httpx.get(f"{console.base}/v1/budgets/forged", headers=api_headers(console)).status_code == 404
    after = httpx.get(f"{console.base}/v1/budgets/daily-gpt4o-guard", headers=api_headers(console)).json()
    assert after == before


def test_stale_edit_shows_the_conflict_page_and_saves_after_asking_again(console, page):
    from playwright.sync_api import expect

    created = httpx.post(
        f"{console.base}/v1/budgets",
        headers=api_headers(console),
        json={"id": "globex-race", "tenant": "globex", "amount": "100"},
    )
    assert created.status_code == 201
    sign_in(page, console, "finance")
    page.goto(f"{console.base}/budgets/globex-race/edit")
    page.get_by_label("Amount", exact=True).fill("120")
    # Someone else saves first, through the API.
    etag = created.headers["etag"]
    raced = httpx.put(
        f"{console.base}/v1/budgets/globex-race",
        headers=api_headers(console, **{"If-Match": etag}),
        json={"tenant": "globex", "amount": "300"},
    )
    assert raced.status_code == 200
    page.get_by_role("button", name="Save changes").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Someone changed globex-race")
    row = page.locator("table.conflict tbody tr", has=page.get_by_role("rowheader", name="amount"))
    expect(row.locator("td").nth(0)).to_have_text("300")
    expect(row.locator("td").nth(1)).to_have_text("120")
    assert httpx.get(f"{console.base}/v1/budgets/globex-race", headers=api_headers(console)).json()["amount"] == "300"
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "console-conflict.png"))
    page.get_by_role("button", name="Save my version").click()
    expect(page.get_by_role("status")).to_have_text("Budget updated.")
    assert httpx.get(f"{console.base}/v1/budgets/globex-race", headers=api_headers(console)).json()["amount"] == "120"


def test_screenshots_of_the_overview_and_a_budget_page(console, page):
    """Artefacts for people: tests/artifacts/console-*.png at 1280x800 (and the overview at tablet width)."""
    from playwright.sync_api import expect

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    sign_in(page, console, "finance")
    expect(page.locator("table.budgets tbody tr").first).to_be_visible()
    page.screenshot(path=str(ARTIFACTS / "console-overview.png"))
    page.goto(f"{console.base}/budgets/acme-monthly")
    expect(page.locator("svg.chart")).to_be_visible()
    page.locator("svg.chart").scroll_into_view_if_needed()
    page.screenshot(path=str(ARTIFACTS / "console-budget.png"))
    page.screenshot(path=str(ARTIFACTS / "console-budget-full.png"), full_page=True)
    page.set_viewport_size(TABLET)
    page.goto(f"{console.base}/")
    page.screenshot(path=str(ARTIFACTS / "console-overview-tablet.png"))
    # Usable at tablet width: the page itself never scrolls sideways (wide tables scroll in their own box).
    assert page.evaluate("document.documentElement.scrollWidth <= document.documentElement.clientWidth")


def test_keyboard_alone_signs_in_and_reaches_the_skip_link(console, page):
    from playwright.sync_api import expect

    page.goto(f"{console.base}/login")
    expect(page.get_by_label("Token", exact=True)).to_be_focused()
    page.keyboard.type(console.tokens["viewer"])
    page.keyboard.press("Enter")
    page.wait_for_url(f"{console.base}/")
    expect(page.get_by_role("heading", name="Budgets this period")).to_be_visible()
    page.keyboard.press("Tab")
    expect(page.get_by_role("link", name="Skip to content")).to_be_focused()
