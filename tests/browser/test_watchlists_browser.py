"""Watchlists in real Chromium: create one through the form (CSRF on), read its timeline
and trend charts at 390 px without sideways scrolling, filter the timeline, run it now."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from analysis.scoring import score_report
from models import Batch, Change, Site, User, Watchlist, WatchlistRun
from tests.browser.conftest import DESKTOP
from tests.browser.test_browser_flow import no_horizontal_overflow, sign_up
from tests.routes.api_support import sample_report

PHONE_390 = {"width": 390, "height": 844}
WIDER_THAN_VIEWPORT = """[...document.querySelectorAll("body *")]
  .filter(e => e.getBoundingClientRect().right > window.innerWidth + 1)
  .map(e => e.tagName + "." + e.className).slice(0, 10)"""


def seed_runs(session, watchlist: Watchlist) -> None:
    """Three finished runs with scores, and changes in the last one."""
    start = datetime(2026, 6, 1, 6, tzinfo=UTC)
    for run in range(3):
        batch = Batch(user_id=watchlist.user_id, name=f"run {run}", status="completed",
                      max_pages=5, total_urls=2, finished_at=start + timedelta(days=run))
        session.add(batch)
        session.flush()
        for position, url in enumerate(watchlist.urls):
            report = sample_report(f"Site {position}", word_count=300 + 200 * run * position)
            session.add(Site(batch_id=batch.id, position=position, url=url, status="completed",
                             report=report, scores=score_report(report)))
        session.add(WatchlistRun(watchlist_id=watchlist.id, batch_id=batch.id,
                                 scheduled_for=start + timedelta(days=run)))
    session.add_all([
        Change(watchlist_id=watchlist.id, batch_id=batch.id, site_url=watchlist.urls[0],
               kind="title", before="Old positioning line",
               after="A much longer new positioning line that must wrap on a phone screen"),
        Change(watchlist_id=watchlist.id, batch_id=batch.id, site_url=watchlist.urls[1],
               kind="technology_added", before=None, after="WordPress"),
    ])
    session.commit()


def test_watchlist_pages_in_the_browser(watched_page, committed, screenshots):
    page, watch = watched_page
    sign_up(page, "watcher@example.test")
    page.goto("/watchlists/new")
    page.get_by_label("Name").fill("Phone rivals")
    page.get_by_label("Sites (2 or more, one per line)").fill(
        "alpha-outfitters.example\nbeta-gear-and-more.example")
    page.get_by_label("Schedule").select_option("week")
    page.get_by_label("Day (weekly)").select_option("Wednesday")
    page.get_by_label("Time zone (IANA, e.g. Europe/Berlin)").fill("Europe/Berlin")
    page.get_by_role("button", name="Create watchlist").click()
    page.wait_for_url("**/watchlists/*")
    user_id = committed.scalar(sa.select(User.id).where(User.email == "watcher@example.test"))
    watchlist = committed.scalar(sa.select(Watchlist).where(Watchlist.user_id == user_id))
    assert (watchlist.schedule_every, watchlist.schedule_weekday) == ("week", 2)
    seed_runs(committed, watchlist)

    page.goto("/")
    assert "2 changes" in page.locator(".since-last-visit").inner_text()
    page.set_viewport_size(PHONE_390)
    page.goto(f"/watchlists/{watchlist.id}")
    assert no_horizontal_overflow(page), page.evaluate(WIDER_THAN_VIEWPORT)
    charts = page.locator("svg.trend-chart")
    assert charts.count() == 5
    box = charts.first.bounding_box()
    assert box["width"] <= 390 and box["width"] >= 300
    tick_height = page.locator("svg.trend-chart text").first.bounding_box()["height"]
    assert tick_height >= 9  # legible tick labels at phone width
    assert page.locator("svg.trend-chart circle").count() == 5 * 2 * 3
    page.screenshot(path=str(screenshots / "watchlist-phone.png"), full_page=True)
    assert page.locator(".timeline > li").count() == 2
    page.get_by_label("Kind").select_option("technology_added")
    page.get_by_role("button", name="Filter").click()
    page.wait_for_url("**kind=technology_added**")
    assert page.locator(".timeline > li").count() == 1
    assert "WordPress" in page.locator(".timeline .after").inner_text()

    page.set_viewport_size(DESKTOP)
    page.get_by_role("button", name="Run now").click()
    page.wait_for_url("**/batches/*")
    assert committed.scalar(sa.select(sa.func.count()).select_from(WatchlistRun)
                            .where(WatchlistRun.watchlist_id == watchlist.id)) == 4
    assert watch.dialogs == [] and watch.errors == [], (watch.dialogs, watch.errors)
