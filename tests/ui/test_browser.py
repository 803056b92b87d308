"""The web UI in a real browser: Playwright driving Debian's Chromium against a real server.

One server (``shipyard serve``'s app, the UI mounted under ``/ui``) and one logged-in page
serve the whole module; the tests run in order, as a person would: log in, open a model,
follow a version to its card and report, try a tabular and a text model, promote a version
and read the audit log, watch the monitoring charts. Every request the browser makes is
recorded by route interception, and the last test checks none left the server. Each page is
screenshotted (into a temporary folder, or ``SHIPYARD_UI_SCREENSHOTS`` when set).
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.routing import Mount

from shipyard import datasets
from shipyard.config import ServingConfig
from shipyard.registry.store import Registry
from shipyard.serving import build_app, running_server
from shipyard.serving.keys import KeyStore
from shipyard.training.export import frame_to_records
from shipyard.ui import UISettings, ui_routes
from shipyard.ui.session import read_or_create_secret

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="needs Debian's chromium package (.ci/run installs it)"
)
sync_api = pytest.importorskip("playwright.sync_api")


@dataclass
class Site:
    base: str
    key: str
    registry: Registry
    shots: Path
    seen: list[str] = field(default_factory=list)


@pytest.fixture(scope="module")
def site(ui_registry: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    home = ui_registry.copy(tmp_path_factory.mktemp("browser") / "home").home
    registry = Registry(f"sqlite:///{home / 'registry.db'}", home / "artifacts")
    keys = KeyStore(home / "api-keys.json")
    _, key = keys.create("browser tests")
    ui = Mount(
        "/ui",
        routes=ui_routes(registry, keys, read_or_create_secret(home), UISettings(window_size=50)),
    )
    settings = ServingConfig(poll_seconds=0)
    app = build_app(registry, "adult", settings, keys, own_auth_mounts=[ui])
    shots = Path(os.environ.get("SHIPYARD_UI_SCREENSHOTS") or tmp_path_factory.mktemp("shots"))
    shots.mkdir(parents=True, exist_ok=True)
    with running_server(app) as base:
        yield Site(base, key, registry, shots)
    registry.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with sync_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"]
        )
        yield launched
        launched.close()


def _recording_context(browser: Any, site: Site, **options: Any) -> Any:
    """A browser context whose every request is recorded; any not for the server fails."""
    options.setdefault("viewport", {"width": 1280, "height": 900})
    context = browser.new_context(**options)

    def check(route: Any) -> None:
        url = route.request.url
        site.seen.append(url)
        if url.startswith(f"{site.base}/") or url.startswith("data:"):
            route.continue_()
        else:
            route.abort()

    context.route("**/*", check)
    return context


@pytest.fixture(scope="module")
def page(browser: Any, site: Site) -> Iterator[Any]:
    context = _recording_context(browser, site)
    opened = context.new_page()
    yield opened
    context.close()


def shot(site: Site, page: Any, name: str, full_page: bool = True) -> None:
    page.screenshot(path=str(site.shots / f"{name}.png"), full_page=full_page)


def test_a_page_without_the_session_cookie_is_refused(browser: Any, site: Site):
    context = _recording_context(browser, site)
    anonymous = context.new_page()
    answer = anonymous.request.get(f"{site.base}/ui/models/adult", max_redirects=0)
    assert answer.status == 303
    assert answer.headers["location"].startswith("/ui/login")
    anonymous.goto(f"{site.base}/ui/models/adult/versions/1")
    assert "/ui/login" in anonymous.url
    assert anonymous.get_by_role("heading", name="Log in").is_visible()
    assert "Test metrics" not in anonymous.content()
    # An action without a session changes nothing.
    refused = anonymous.request.post(
        f"{site.base}/ui/models/adult/promote",
        form={"version": "2", "reason": "no session", "confirmed": "yes"},
    )
    assert refused.status == 403
    assert site.registry.resolve("adult").version == 1
    context.close()


def test_a_wrong_key_is_refused_and_a_valid_one_logs_in(page: Any, site: Site):
    page.goto(f"{site.base}/ui/")
    page.get_by_label("API key").fill("sy_0000_not-a-key")
    page.get_by_role("button", name="Log in").click()
    assert page.get_by_role("alert").inner_text().startswith("That API key is not valid")
    shot(site, page, "login")
    page.get_by_label("API key").fill(site.key)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(f"{site.base}/ui/")
    cookie = next(c for c in page.context.cookies() if c["name"] == "shipyard_ui")
    assert cookie["httpOnly"]
    assert cookie["secure"]
    assert cookie["sameSite"] == "Strict"
    assert page.evaluate("document.cookie") == ""  # no script can read it
    assert page.get_by_role("link", name="adult").is_visible()
    shot(site, page, "models")


def test_a_model_opens_with_its_versions_and_leaderboard(page: Any, site: Site):
    page.get_by_role("link", name="adult", exact=True).first.click()
    page.wait_for_url(f"{site.base}/ui/models/adult")
    versions = page.get_by_role("table").first.inner_text()
    assert "v1" in versions
    assert "v2" in versions
    assert "champion" in versions
    assert re.search(r"0\.\d{4} \[0\.\d{4}, 0\.\d{4}\]", versions)  # a metric with its CI
    assert "gate passed" in versions or "gate failed" in versions
    assert "lightgbm" in page.get_by_role("region", name="Leaderboard of v1").inner_text()
    shot(site, page, "model")


def test_a_version_shows_its_card_lineage_and_report(page: Any, site: Site):
    page.get_by_role("link", name="v1", exact=True).click()
    page.wait_for_url(f"{site.base}/ui/models/adult/versions/1")
    assert page.get_by_role("heading", name="Model card").is_visible()
    assert page.get_by_role("heading", name="Test metrics").is_visible()
    lineage = page.get_by_role("region", name="Lineage").inner_text()
    fingerprint = site.registry.get("adult", 1).data_fingerprint
    assert fingerprint
    assert fingerprint in lineage
    shot(site, page, "version", full_page=False)  # the card runs long
    page.get_by_role("link", name="Evaluation report").click()
    page.wait_for_url(f"{site.base}/ui/models/adult/versions/1/report")
    assert "adult" in page.title()
    assert page.locator("img").count() >= 3  # the report's plots, inline
    shot(site, page, "report", full_page=False)


def _adult_record() -> dict[str, Any]:
    test = datasets.load("adult").test
    row = test[test["occupation"].notna() & test["workclass"].notna()].iloc[0]
    return frame_to_records(row.to_frame().T.drop(columns=["income"]))[0]


def test_the_tabular_try_it_form_answers_with_an_explanation(page: Any, site: Site):
    page.goto(f"{site.base}/ui/models/adult/versions/1/try")
    record = _adult_record()
    form = page.locator("form[hx-post]")
    for name, value in record.items():
        field = form.locator(f'[name="{name}"]')
        if value is None or not field.count():
            continue
        if field.evaluate("element => element.tagName") == "SELECT":
            field.select_option(str(value))
        else:
            field.fill(str(value))
    form.get_by_role("button", name="Predict").click()
    page.wait_for_selector("[data-testid=prediction]")
    expected = site.registry.load_predictor("adult:1").predict_records([record])[0]
    assert page.get_by_test_id("prediction").inner_text() == str(expected["prediction"])
    probabilities = page.locator("table.probabilities").inner_text()
    for label, value in expected["probabilities"].items():
        assert label in probabilities
        assert f"{value:.4f}" in probabilities
    assert "Contribution of each column" in page.locator("table.explanation").inner_text()
    assert page.locator("table.explanation tbody tr").count() >= 5
    shot(site, page, "try-tabular")


def test_the_text_try_it_form_answers(page: Any, site: Site):
    page.goto(f"{site.base}/ui/models/spam/versions/1/try")
    box = page.get_by_role("textbox").first
    box.fill("WINNER!! You have won a free prize. Call now to claim your cash reward")
    page.get_by_role("button", name="Classify").click()
    page.wait_for_selector("[data-testid=prediction]")
    assert page.get_by_test_id("prediction").inner_text() in ("spam", "ham")
    assert "Probabilities" in page.locator("#answer").inner_text()
    shot(site, page, "try-text")
    # A bad value gets its message where the answer would be, and no answer.
    box.fill("")
    box.evaluate("element => element.removeAttribute('required')")
    page.get_by_role("button", name="Classify").click()
    page.wait_for_selector("#answer .error")
    assert "is required" in page.locator("#answer .error").inner_text()


def test_an_action_without_the_csrf_token_is_refused(page: Any, site: Site):
    answer = page.request.post(
        f"{site.base}/ui/models/adult/promote",
        form={"version": "2", "reason": "forged", "confirmed": "yes"},
    )
    assert answer.status == 403
    assert "CSRF" in answer.text()
    assert site.registry.resolve("adult").version == 1
    assert not any(e["detail"].get("reason") == "forged" for e in site.registry.events("adult"))


def test_a_promotion_asks_for_confirmation_and_lands_in_the_audit_log(page: Any, site: Site):
    page.goto(f"{site.base}/ui/models/adult")
    promote = page.get_by_role("form", name="Promote")
    promote.get_by_label("Version").select_option("2")
    promote.get_by_label("Reason (for the audit log)").fill("same model, checked by hand")
    promote.get_by_role("button", name="Promote…").click()
    assert page.get_by_role("heading", name="Confirm the move").is_visible()
    assert site.registry.resolve("adult").version == 1  # nothing moved yet
    shot(site, page, "confirm")
    page.get_by_role("button", name="Yes, promote").click()
    page.wait_for_url(re.compile(r".*/ui/models/adult\?notice=.*"))
    assert "champion promoted to adult:2" in page.get_by_role("status").inner_text()
    assert site.registry.resolve("adult").version == 2
    event = site.registry.events("adult")[-1]
    assert event["action"] == "promote"
    assert event["version"] == 2
    assert event["detail"]["reason"].startswith("same model, checked by hand (web UI, key ")
    page.get_by_role("link", name="Audit log", exact=True).click()
    log = page.get_by_role("table").inner_text()
    assert "same model, checked by hand" in log.splitlines()[1]  # the newest entry first
    shot(site, page, "events")


def test_compare_shows_two_versions_side_by_side(page: Any, site: Site):
    page.goto(f"{site.base}/ui/models/adult/compare?first=1&second=2")
    text = page.get_by_role("main").inner_text()
    assert "v1 against v2" in text
    assert "not distinguishable" in text  # the same model: overlapping intervals
    shot(site, page, "compare")


def test_monitoring_draws_the_served_traffic(page: Any, site: Site):
    records = frame_to_records(datasets.load("adult").test.head(60).drop(columns=["income"]))
    with httpx.Client(base_url=site.base, headers={"X-API-Key": site.key}) as client:
        for record in records:
            assert client.post("/v1/models/adult/predict", json=record).status_code in (200, 422)
        # The model's API still wants its key: the UI's exemption covers /ui only.
        assert (
            httpx.post(f"{site.base}/v1/models/adult/predict", json=records[0]).status_code == 401
        )
    # The server answers with the version it started with (no hot swap here): v1.
    page.goto(f"{site.base}/ui/models/adult/monitoring?version=1")
    page.wait_for_selector('[data-chart="requests-data"][data-drawn="true"] canvas')
    assert page.locator("[data-drawn=true]").count() >= 3  # drift, requests, version share
    shot(site, page, "monitoring")


def test_dark_mode_and_a_phone_screen(browser: Any, site: Site, page: Any):
    cookies = page.context.cookies()
    context = _recording_context(
        browser, site, color_scheme="dark", viewport={"width": 390, "height": 844}
    )
    context.add_cookies(cookies)
    phone = context.new_page()
    phone.goto(f"{site.base}/ui/models/adult")
    background = phone.evaluate("getComputedStyle(document.body).backgroundColor")
    assert background == "rgb(21, 23, 27)"
    # No sideways scrolling of the page itself (wide tables scroll inside their box).
    assert phone.evaluate("document.documentElement.scrollWidth") <= 390
    shot(site, phone, "model-dark-phone")
    # The keyboard reaches the skip link first, then the main content.
    phone.keyboard.press("Tab")
    assert phone.evaluate("document.activeElement.textContent") == "Skip to content"
    context.close()


def test_no_request_left_the_server(site: Site):
    assert any(url.endswith("/ui/static/uPlot.iife.min.js") for url in site.seen)
    assert any(url.endswith("/ui/static/htmx.min.js") for url in site.seen)
    outside = [
        u for u in site.seen if not (u.startswith(f"{site.base}/") or u.startswith("data:"))
    ]
    assert outside == []
    assert site.base.startswith("http://127.0.0.1:")
