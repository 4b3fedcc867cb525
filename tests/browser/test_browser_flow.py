"""The product in real Chromium: sign up, submit a batch against local sites, watch the
progress bar reach 100% without a reload, read the comparison and charts, download exports,
and see a hostile page title shown as text."""

from __future__ import annotations

import csv
import io
import json
import re
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from models import Site
from tests.browser.conftest import DESKTOP
from tests.sites import LocalSite, SiteSpec

XSS_TITLE = "<script>alert(1)</script>"
PHONE = {"width": 375, "height": 740}
FINISH_TIMEOUT_S = 120


def sign_up(page, email: str) -> None:
    page.goto("/signup")
    page.get_by_label("E-mail").fill(email)
    page.get_by_label("Password", exact=True).fill("browser-pass-1")
    page.get_by_label("Repeat the password").fill("browser-pass-1")
    page.get_by_role("button", name="Sign up").click()
    # Sign-up never signs in (it must not tell whether the address was taken): sign in.
    page.wait_for_url(re.compile(r"/login\?next="))
    page.get_by_label("E-mail").fill(email)
    page.get_by_label("Password", exact=True).fill("browser-pass-1")
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url("**/batches/new")


def watch_progress(page, shots: Path) -> list[int]:
    """Progress values seen while the batch runs (polling updates the page in place)."""
    seen: list[int] = []
    deadline = time.monotonic() + FINISH_TIMEOUT_S
    while time.monotonic() < deadline:
        value = int(page.eval_on_selector("#batch-progress", "el => el.value"))
        if not seen or seen[-1] != value:
            seen.append(value)
            if 0 < value < 100 and not (shots / "batch-running.png").exists():
                page.screenshot(path=str(shots / "batch-running.png"), full_page=True)
        if value == 100 and page.locator("#finished-actions").is_visible():
            return seen
        time.sleep(0.2)
    pytest.fail(f"the progress bar never reached 100%: {seen}")


def no_horizontal_overflow(page) -> bool:
    return page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")


@pytest.mark.timeout(240)
def test_sign_up_batch_live_progress_comparison_exports_and_escaping(
        watched_page, pipeline_worker, committed, screenshots):
    page, watch = watched_page
    with LocalSite(SiteSpec(title="Alpha Outfitters", pages=3, delay=0.3)) as alpha, \
            LocalSite(SiteSpec(title="Beta Gear", pages=2, broken_link=True,
                               delay=0.15)) as beta, \
            LocalSite(SiteSpec(title=XSS_TITLE, pages=1, delay=0.15)) as hostile:
        sign_up(page, "browser@example.test")
        page.screenshot(path=str(screenshots / "new-batch.png"), full_page=True)

        # Inline validation keeps what was typed and names the bad line.
        typed = f"{alpha.url}\nftp://not-allowed.example"
        page.get_by_label("Competitor sites").fill(typed)
        page.get_by_role("button", name="Start analysis").click()
        assert page.locator("li[data-line='2']").inner_text().startswith("Line 2")
        assert page.get_by_label("Competitor sites").input_value() == typed
        page.screenshot(path=str(screenshots / "new-batch-errors.png"), full_page=True)

        page.get_by_label("Batch name (optional)").fill("Browser rivals")
        page.get_by_label("Competitor sites").fill(f"{alpha.url}, {beta.url}\n{hostile.url}")
        page.get_by_label("Pages to crawl per site").fill("4")
        page.get_by_role("button", name="Start analysis").click()
        page.wait_for_url("**/batches/*")
        assert page.title() == "Browser rivals · Rivalscope"

        page.evaluate("window.__notReloaded = true")
        seen = watch_progress(page, screenshots)
        assert seen[0] < 100 and seen[-1] == 100, seen
        assert page.evaluate("window.__notReloaded === true"), "the page was reloaded"
        assert page.locator("#batch-status [data-status]").get_attribute("data-status") \
            == "completed"
        assert page.locator("#running-actions").is_hidden()
        assert page.locator("#timeline li", has_text="Batch finished").count() == 1
        statuses = page.locator("#site-table .site-status [data-status]")
        assert [statuses.nth(i).get_attribute("data-status") for i in range(3)] == \
            ["completed"] * 3
        # Names replace hosts in place once the reports exist (no reload).
        assert page.locator("#site-table .site-name").first.inner_text() == "Alpha Outfitters"
        page.screenshot(path=str(screenshots / "batch-finished.png"), full_page=True)

        page.get_by_role("link", name="View comparison").click()
        page.wait_for_url("**/comparison")
        comparison_path = "/" + page.url.split("/", 3)[3]
        assert page.title() == "Comparison: Browser rivals · Rivalscope"
        grid = page.locator("#comparison-grid")
        assert grid.locator("thead th").count() == 4
        assert grid.locator("tbody tr").count() >= 20
        assert grid.locator("td.winner").count() >= 20
        assert page.locator("#overall-chart rect").count() == 3
        assert page.locator("#scores-chart rect").count() >= 15
        assert page.locator("#overall-chart").is_visible()
        assert page.locator("article.card").count() == 3
        page.screenshot(path=str(screenshots / "comparison.png"), full_page=True)

        with page.expect_download() as csv_download:
            page.locator("#export-csv").click()
        rows = list(csv.DictReader(io.StringIO(
            Path(csv_download.value.path()).read_text(encoding="utf-8"), newline="")))
        assert [r["title"] for r in rows] == ["Alpha Outfitters", "Beta Gear", XSS_TITLE]
        assert csv_download.value.suggested_filename.endswith(".csv")
        with page.expect_download() as json_download:
            page.locator("#export-json").click()
        exported = json.loads(Path(json_download.value.path()).read_text(encoding="utf-8"))
        assert exported["batch"]["status"] == "completed" and len(exported["sites"]) == 3

        # The hostile title is text on the report page; nothing runs.
        hostile_id = committed.scalar(sa.select(Site.id).where(Site.url == hostile.url))
        page.goto(f"/sites/{hostile_id}")
        assert page.locator("#fact-title").inner_text() == XSS_TITLE
        assert page.locator("#pages-table .page-title").first.inner_text() == XSS_TITLE
        page.screenshot(path=str(screenshots / "site-report.png"), full_page=True)

        page.goto("/")
        assert page.locator("table.batches progress").first.get_attribute("value") == "100"
        page.screenshot(path=str(screenshots / "dashboard.png"), full_page=True)

        # Readable at phone width: the page itself never scrolls sideways.
        page.set_viewport_size(PHONE)
        for path in (comparison_path, f"/sites/{hostile_id}", "/"):
            page.goto(path)
            assert no_horizontal_overflow(page), path
            if path == comparison_path:
                page.screenshot(path=str(screenshots / "comparison-phone.png"), full_page=True)
        page.screenshot(path=str(screenshots / "dashboard-phone.png"), full_page=True)
    assert watch.dialogs == [], watch.dialogs
    assert watch.errors == [], watch.errors


def test_accessible_forms_focus_and_csrf_in_the_browser(watched_page, committed, screenshots):
    page, watch = watched_page
    page.goto("/login")
    assert page.title() == "Sign in · Rivalscope"
    unlabelled = page.evaluate("""() => [...document.querySelectorAll(
        'input:not([type=hidden]), textarea, select')].filter(el => el.labels.length === 0)
        .map(el => el.name)""")
    assert unlabelled == []
    page.keyboard.press("Tab")
    focused = page.evaluate("document.activeElement.className")
    assert focused == "skip-link"
    outline = page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
    assert outline != "none"
    page.screenshot(path=str(screenshots / "login.png"))

    # The same form without its CSRF token is refused.
    page.evaluate("document.querySelector('input[name=csrf_token]').remove()")
    page.get_by_label("E-mail").fill("nobody@example.test")
    page.get_by_label("Password").fill("whatever-pass")
    with page.expect_response(lambda r: r.url.endswith("/login")) as answer:
        page.get_by_role("button", name="Sign in").click()
    assert answer.value.status == 400
    assert "CSRF" in page.content()
    page.set_viewport_size(DESKTOP)
    assert watch.dialogs == []
