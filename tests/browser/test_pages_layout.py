"""Every page in real Chromium at 390 px (a phone) and 1280 px: the page never scrolls
sideways (``document.documentElement.scrollWidth <= window.innerWidth``), axe-core (the npm
package, loaded into the page by Playwright) finds no serious or critical violation, and a
screenshot of each page at each width is saved in the output folder (``browser/layout``)."""

from __future__ import annotations

import shutil
import subprocess
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from models import BatchEvent, ProcessSnapshot, Site, SystemLog
from models.base import utcnow
from tests.factories import DEFAULT_PASSWORD, BatchFactory, PageFactory, SiteFactory, UserFactory
from tests.routes.api_support import finished_batch, sample_report
from utils.db_operations import UserOps

HERE = Path(__file__).parent
AXE = HERE / "node_modules" / "axe-core" / "axe.min.js"
WIDTHS = {"phone": {"width": 390, "height": 844}, "desktop": {"width": 1280, "height": 900}}
LONG = "https://www.a-very-long-competitor-domain-name-for-testing.example/" + "segment/" * 12
AXE_RUN = """async () => {
  const result = await axe.run(document, {resultTypes: ["violations"]});
  return result.violations.filter(v => ["serious", "critical"].includes(v.impact))
    .map(v => ({id: v.id, impact: v.impact, help: v.help,
                nodes: v.nodes.slice(0, 4).map(n => n.target.join(" "))}));
}"""


@pytest.fixture(scope="session")
def axe_source() -> str:
    """axe-core from npm (tests/browser/package.json), installed on first use."""
    if not AXE.exists():
        npm = shutil.which("npm")
        if npm is None:
            pytest.fail("npm is needed to install axe-core (tests/browser/package.json)")
        subprocess.run([npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=HERE,
                       check=True, timeout=300)
    return AXE.read_text(encoding="utf-8")


def check_page(page, name: str, axe_source: str, folder: Path, problems: list[str]) -> None:
    """Overflow and axe at both widths, with a screenshot of each."""
    for width_name, size in WIDTHS.items():
        page.set_viewport_size(size)
        page.wait_for_timeout(50)
        fits = page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
        if not fits:
            wide = page.evaluate("""() => [...document.querySelectorAll('body *')]
                .filter(e => e.getBoundingClientRect().right > window.innerWidth + 1
                        && !e.closest('.table-wrap, .charts figure'))
                .slice(0, 5).map(e => e.tagName + '.' + e.className)""")
            problems.append(f"{name} @ {width_name}: scrolls sideways ({wide})")
        page.evaluate(axe_source)
        for violation in page.evaluate(AXE_RUN):
            problems.append(f"{name} @ {width_name}: axe {violation}")
        page.screenshot(path=str(folder / f"{name}-{width_name}.png"), full_page=True)


def sign_in(page, email: str) -> None:
    page.goto("/login")
    page.get_by_label("E-mail").fill(email)
    page.get_by_label("Password").fill(DEFAULT_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(lambda url: not url.endswith("/login"))


def make_data(session) -> dict:
    """A finished batch with your site, a failed site with a long URL, broken links, a
    running batch; an admin user."""
    user = UserFactory(email="layout@example.test")
    admin = UserFactory(email="admin@example.test", is_admin=True)
    session.commit()
    batch = finished_batch(session, user, [
        sample_report("Summit Gear | Outdoor", word_count=900, https=True,
                      issues=[{"code": "broken_link", "count": 1},
                              {"code": "missing_description", "count": 2}]),
        sample_report("Trail Peak - Shoes", https=False, word_count=200,
                      social_profiles={"linkedin": "https://linkedin.com/company/t"}),
        sample_report("My shop", word_count=400, final_url=LONG),
        None], name="Outdoor shops, autumn review")
    sites = session.scalars(sa.select(Site).where(Site.batch_id == batch.id)
                            .order_by(Site.position)).all()
    sites[2].is_own = True
    sites[3].url = LONG
    sites[3].error = "network error: [SSL: WRONG_VERSION_NUMBER] wrong version number (_ssl.c:1000)"
    PageFactory(site_id=sites[0].id, url=LONG + "missing-page-with-a-long-name", status_code=404,
                analysed=False, is_homepage=False, record={
                    "url": LONG + "missing-page-with-a-long-name", "status_code": 404,
                    "analysed": False, "is_homepage": False, "error": "HTTP 404",
                    "linked_from": LONG})
    session.add(BatchEvent(batch_id=batch.id, site_id=sites[3].id, kind="site_failed",
                           message="Failed", data={"reason": sites[3].error}))
    UserOps.issue_token(session, user, timedelta(hours=1), name="reporting-script-" + "x" * 40)
    session.add(SystemLog(level="ERROR", logger="celery.app.trace", role="worker", pid=4242,
                          message="Task pipeline.analyze_site raised: ValueError('boom')\n"
                                  "Traceback (most recent call last):\n"
                                  '  File "/srv/rivalscope/tasks/analysis_tasks.py", line 165, '
                                  "in analyze_site " + "x" * 200 + "\nValueError: boom"))
    session.add(SystemLog(level="WARNING", logger="kombu", role="beat", pid=7,
                          message="No hostname was supplied. Reverting to default 'localhost'"))
    session.add(ProcessSnapshot(hostname="worker-host", pid=31337, role="worker",
                                updated_at=utcnow() - timedelta(hours=2), data={}))
    running = BatchFactory(owner=user, name="Still running", status="running", total_urls=2)
    SiteFactory(batch=running, status="completed", url="https://done.example/")
    SiteFactory(batch=running, status="running", url=LONG)
    session.commit()
    return {"batch": batch.id, "sites": [s.id for s in sites], "running": running.id,
            "user": user.email, "admin": admin.email}


@pytest.mark.timeout(240)
def test_every_page_fits_a_phone_and_passes_axe(watched_page, committed, screenshots,
                                                axe_source):
    page, watch = watched_page
    folder = screenshots / "layout"
    folder.mkdir(exist_ok=True)
    data = make_data(committed)
    problems: list[str] = []

    page.goto("/")
    check_page(page, "home-signed-out", axe_source, folder, problems)
    for path, name in (("/login", "login"), ("/signup", "signup"),
                       ("/no/such/page", "error-404")):
        page.goto(path)
        check_page(page, name, axe_source, folder, problems)

    sign_in(page, data["user"])
    batch, sites = data["batch"], data["sites"]
    pages = [
        ("/", "dashboard"), ("/batches/new", "new-batch"), (f"/batches/{batch}", "batch"),
        (f"/batches/{data['running']}", "batch-running"),
        (f"/batches/{batch}/comparison", "comparison"), (f"/sites/{sites[0]}", "site"),
        (f"/sites/{sites[2]}", "site-own"), (f"/sites/{sites[3]}", "site-failed"),
        (f"/batches/{batch}/delete", "delete-confirm"), ("/account", "account"),
        ("/admin", "error-403"), ("/batches/999999", "error-404-signed-in"),
    ]
    for path, name in pages:
        response = page.goto(path)
        assert response is not None and response.status < 500, (path, response.status)
        check_page(page, name, axe_source, folder, problems)
        if name == "account":  # the Revoke button is on screen at phone width
            page.set_viewport_size(WIDTHS["phone"])
            box = page.get_by_role("button", name="Revoke").first.bounding_box()
            assert box is not None and box["x"] + box["width"] <= 390, box

    # 405 and 400 pages, in the layout too
    page.goto("/batches/new")
    page.evaluate("""() => { const f = document.querySelector('form.batch-form');
        f.setAttribute('action', '/logout'); f.setAttribute('method', 'get'); }""")
    page.get_by_role("button", name="Start analysis").click()
    page.wait_for_load_state()
    assert "405" in page.title()
    check_page(page, "error-405", axe_source, folder, problems)
    page.goto(f"/batches/{batch}/delete")
    page.evaluate("document.querySelector('form.actions input[name=csrf_token]').value = 'forged'")
    page.locator("#confirm-delete").click()
    page.wait_for_load_state()
    assert "400" in page.title() and page.locator(".site-header").count() == 1
    check_page(page, "error-400", axe_source, folder, problems)

    # Delete asks first, then deletes.
    page.goto(f"/batches/{batch}")
    page.locator("#delete-button").click()
    page.wait_for_url(f"**/batches/{batch}/delete")
    assert page.get_by_text("cannot be undone").is_visible()

    page.context.clear_cookies()
    sign_in(page, data["admin"])
    page.goto("/admin")
    stale = page.locator('#process-health li[data-pid="31337"]')
    assert stale.get_attribute("data-ok") == "false"
    assert "stopped reporting" in stale.inner_text() and "2 hours ago" in stale.inner_text()
    assert page.locator('#counts [data-count="users"]').inner_text() == "2"
    page.goto("/admin/logs")
    cell = page.locator("#logs tbody tr").first.locator("td.message-col")
    assert cell.evaluate("el => getComputedStyle(el).textAlign") in ("left", "start")
    assert not page.locator("#logs details.traceback pre").first.is_visible()
    page.locator("#logs details.traceback summary").first.click()
    assert page.locator("#logs details.traceback pre").first.is_visible()
    for path, name in (("/admin", "admin"), ("/admin/db", "admin-db"),
                       ("/admin/errors", "admin-errors"), ("/admin/logs", "admin-logs"),
                       ("/admin/maintenance", "admin-maintenance")):
        page.goto(path)
        check_page(page, name, axe_source, folder, problems)

    assert problems == [], "\n".join(problems)
    assert watch.dialogs == []
    assert [e for e in watch.errors if "status of 40" not in e] == []
