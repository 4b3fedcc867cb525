"""Crawl one site: robots.txt, the homepage, sitemaps, then internal pages breadth-first.

The crawl is resumable: records passed as ``done`` are never fetched again; their links
rebuild the frontier, so a redelivered task continues where the last run stopped and visits
pages in the same order. Each new record is handed to ``on_record`` as soon as it is ready.
"""

from __future__ import annotations

import logging
import re
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TypeVar
from urllib.parse import urlsplit, urlunsplit

from analysis.fetcher import Fetcher, FetchResult, is_html_type
from analysis.page_budget import AnalysisAborted, ParseBudgetExceeded, analyse_page_budgeted
from analysis.politeness import Politeness
from analysis.robots import RobotsPolicy, fetch_robots
from analysis.sitemap import SitemapLimits, collect_sitemaps
from analysis.urls import DEFAULT_PORTS, canonical_url, origin_of

log = logging.getLogger(__name__)

PRIORITY_PAGES = re.compile(
    r"contact|about|impressum|imprint|kontakt|ueber-uns|uber-uns|uberuns", re.IGNORECASE
)
SKIPPED_EXTENSIONS = (
    ".jpg", ".jpeg", ".png", ".gif", ".webp", ".avif", ".svg", ".ico", ".bmp", ".tif",
    ".pdf", ".zip", ".gz", ".tgz", ".rar", ".7z", ".tar", ".dmg", ".exe", ".msi", ".apk",
    ".mp3", ".mp4", ".m4a", ".wav", ".avi", ".mov", ".webm", ".mkv",
    ".css", ".js", ".mjs", ".json", ".xml", ".rss", ".atom", ".txt", ".csv",
    ".woff", ".woff2", ".ttf", ".otf", ".eot",
    ".doc", ".docx", ".xls", ".xlsx", ".ppt", ".pptx", ".odt",
)
MAX_LINK_LENGTH = 2048
ROBOTS_BLOCKED = "blocked by robots.txt"
# An https homepage that cannot connect (refused, or the port does not speak TLS) is tried
# once over http://, as browsers do for an address typed without a scheme.
NO_HTTPS = re.compile(r"Connection refused|Errno 111|SSL|TLS|WRONG_VERSION|wrong version|"
                      r"handshake|EOF occurred", re.IGNORECASE)


def http_fallback_url(url: str) -> str | None:
    """The http:// twin of an https:// URL (an explicit port is kept), else None."""
    parts = urlsplit(url)
    if parts.scheme != "https" or not parts.hostname:
        return None
    netloc = parts.netloc.rsplit("@", 1)[-1]
    if netloc.endswith(":443"):
        netloc = netloc[:-4]
    return urlunsplit(("http", netloc, parts.path or "/", parts.query, ""))

EventSink = Callable[[str, dict], None]
T = TypeVar("T")


class SiteFailed(Exception):
    """The site cannot be analysed (its homepage failed); ``reason`` names the cause."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass
class CrawlResult:
    """Everything a crawl produced. ``records`` are in crawl order, resumed ones included."""

    records: list[dict] = field(default_factory=list)
    robots: dict = field(default_factory=dict)
    sitemap: dict = field(default_factory=lambda: {"found": False, "url_count": 0})
    stopped: bool = False


def page_record(url: str, result: FetchResult, *, is_homepage: bool) -> dict:
    """A PageRecord (see the analysis contract) for a fetch, not yet analysed."""
    return {
        "url": url,
        "final_url": result.final_url,
        "status_code": result.status_code,
        "content_type": result.content_type,
        "response_time_ms": result.response_time_ms,
        "page_bytes": result.page_bytes,
        "redirect_chain": list(result.redirect_chain),
        "is_homepage": is_homepage,
        "analysed": False,
        "error": result.error,
        "facts": None,
    }


def blocked_record(url: str) -> dict:
    """The record of a page robots.txt did not let us fetch."""
    return {
        "url": url,
        "final_url": url,
        "status_code": None,
        "content_type": None,
        "response_time_ms": 0,
        "page_bytes": 0,
        "redirect_chain": [],
        "is_homepage": False,
        "analysed": False,
        "error": ROBOTS_BLOCKED,
        "facts": None,
    }


def _host_port(url: str) -> tuple[str, int] | None:
    try:
        scheme, host, port = origin_of(url)
    except ValueError:
        return None
    if scheme not in DEFAULT_PORTS or not host:
        return None
    return host, port


def _followable(url: str, site: tuple[str, int] | None) -> bool:
    if not isinstance(url, str) or len(url) > MAX_LINK_LENGTH:
        return False
    if _host_port(url) != site:
        return False
    path = urlsplit(url).path.lower()
    return not path.endswith(SKIPPED_EXTENSIONS)


def prioritise(urls: Iterable[str]) -> list[str]:
    """Contact/about/impressum pages first, otherwise document order (stable)."""
    urls = list(urls)
    first = [u for u in urls if PRIORITY_PAGES.search(urlsplit(u).path)]
    return first + [u for u in urls if not PRIORITY_PAGES.search(urlsplit(u).path)]


class _Crawl:
    """State of one crawl; see :func:`crawl_site` for the contract."""

    def __init__(
        self,
        start: str,
        *,
        max_pages: int,
        fetcher: Fetcher,
        politeness: Politeness,
        done: Iterable[dict],
        on_record: Callable[[dict], None],
        should_stop: Callable[[], bool],
        on_event: EventSink,
        sitemap_limits: SitemapLimits | None,
        max_other_records: int | None,
        http_fallback: bool = True,
        parallel: int = 1,
    ) -> None:
        self.start = start
        self.http_fallback = http_fallback
        self.parallel = max(1, parallel)
        self.fetching = threading.BoundedSemaphore(self.parallel)
        self.max_pages = max(1, max_pages)
        self.max_other = max_other_records if max_other_records is not None else max(
            20, 2 * self.max_pages
        )
        self.fetcher = fetcher
        self.politeness = politeness
        self.on_record = on_record
        self.should_stop = should_stop
        self.on_event = on_event
        self.sitemap_limits = sitemap_limits
        self.done: dict[str, dict] = {}
        for record in done:
            self.done.setdefault(record["url"], record)
        self.replayed: set[str] = set()
        self.result = CrawlResult()
        self.seen: set[str] = set()
        self.linked_from: dict[str, str] = {}  # link -> the first page that links to it
        self.page_finals: set[str] = set()
        self.analysed = 0
        self.others = 0
        self.site: tuple[str, int] | None = None

    # -- budget ---------------------------------------------------------------------------

    def _pending_done_pages(self) -> int:
        return sum(
            1 for url, r in self.done.items() if r.get("analysed") and url not in self.replayed
        )

    def _budget_left(self, uncertain: int = 0) -> bool:
        """Room for one more record, whatever the ``uncertain`` records in flight turn out
        to be (pages or not)."""
        if self.analysed + self._pending_done_pages() + uncertain >= self.max_pages:
            return False
        return self.others + uncertain < self.max_other

    def _stop_requested(self) -> bool:
        if self.should_stop():
            self.result.stopped = True
            return True
        return False

    # -- steps ----------------------------------------------------------------------------

    def _robots(self, url: str) -> RobotsPolicy:
        policy = fetch_robots(url, self.fetcher, self.politeness)
        if policy.crawl_delay is not None:
            self.politeness.set_crawl_delay(url, policy.crawl_delay)
        return policy

    def _fetch(self, url: str) -> FetchResult:
        return self.fetcher.fetch(url, politeness=self.politeness, want_body=is_html_type)

    def _analyse(self, record: dict, result: FetchResult) -> None:
        """Fill facts/analysed/error of a record from a successful fetch."""
        if record["error"] is not None:
            return
        if result.body_skipped or not result.is_html:
            record["error"] = f"not HTML ({(result.content_type or '').split(';')[0].strip()})"
            return
        try:  # in a child process, killed when over its time budget
            record["facts"] = analyse_page_budgeted(result.body, result.final_url, result.headers)
        except ParseBudgetExceeded as exc:
            record["error"] = str(exc)  # starts with the issue code "parse_budget_exceeded"
            return
        except AnalysisAborted:
            raise
        except Exception as exc:  # a page we cannot analyse must not end the crawl
            log.exception("analysis failed for %s", result.final_url)
            record["error"] = f"analysis failed: {type(exc).__name__}"
            return
        record["analysed"] = True

    def _emit(self, record: dict) -> None:
        if record["error"] == ROBOTS_BLOCKED:
            self.on_event("robots_blocked", {"url": record["url"]})
        elif record["status_code"] is None or not record["analysed"]:
            self.on_event(
                "fetch_failed",
                {"url": record["url"], "status_code": record["status_code"],
                 "error": record["error"]},
            )
        else:
            self.on_event(
                "page_fetched",
                {"url": record["url"], "status_code": record["status_code"],
                 "response_time_ms": record["response_time_ms"]},
            )

    def _keep(self, record: dict, *, new: bool) -> None:
        self.result.records.append(record)
        self.seen.add(record["final_url"])
        if record["analysed"]:
            self.analysed += 1
            self.page_finals.add(record["final_url"])
        else:
            self.others += 1
        if new:
            self.on_record(record)
            self._emit(record)

    def homepage(self) -> dict:
        """Fetch (or replay) the homepage; raises SiteFailed if it cannot be analysed."""
        replay = next((r for r in self.done.values() if r.get("is_homepage")), None)
        if replay is not None:
            self.replayed.add(replay["url"])
            if not replay.get("analysed"):
                raise SiteFailed(replay.get("error") or "homepage could not be analysed")
            self.seen.add(replay["url"])
            self._keep(replay, new=False)
            return replay
        result = self._fetch(self.start)
        record = page_record(self.start, result, is_homepage=True)
        self._analyse(record, result)
        fallback = http_fallback_url(self.start) if self.http_fallback else None
        if not record["analysed"] and fallback and NO_HTTPS.search(record["error"] or ""):
            reason = record["error"]
            retry = self._fetch(fallback)
            second = page_record(fallback, retry, is_homepage=True)
            self._analyse(second, retry)
            if second["analysed"]:
                second["scheme_fallback"] = {"from": self.start, "to": fallback,
                                             "reason": reason}
                self.on_event("scheme_fallback", second["scheme_fallback"])
                record = second
        if not record["analysed"]:
            self._emit(record)
            raise SiteFailed(record["error"] or "homepage could not be analysed")
        self.seen.add(record["url"])
        self._keep(record, new=True)
        return record

    def _replay(self, url: str) -> dict:
        record = self.done[url]
        self.replayed.add(url)
        self._keep(record, new=False)
        return record

    def _fetch_page(self, url: str) -> tuple[dict, bool]:
        """Fetch and analyse one internal URL. Safe in a helper thread: of the crawl's state
        it reads only ``site`` and the URL's ``linked_from`` entry, both set before it was
        submitted. Also says whether the answer came from another URL, so :meth:`_settle`
        can tell a page already seen under its final URL."""
        with self.fetching:  # ``parallel`` requests at most; the other helper analyses
            result = self._fetch(url)
        record = page_record(url, result, is_homepage=False)
        record["linked_from"] = self.linked_from.get(url)
        redirected = record["error"] is None and result.final_url != url
        if record["error"] is None and _host_port(result.final_url) != self.site:
            record["error"] = f"redirected off-site to {result.final_url}"
            redirected = False
        self._analyse(record, result)
        return record, redirected

    def _settle(self, url: str, outcome: Future) -> dict | None:
        """Keep a fetched (or robots-blocked) record, in crawl order; None when an earlier
        page turned out to be this one (what a one-at-a-time crawl would not have fetched)."""
        record, redirected = outcome.result()
        if url in self.page_finals:
            return None
        if redirected and record["final_url"] in self.page_finals:
            record.update(error=f"same page as {record['final_url']}", facts=None,
                          analysed=False)
        self._keep(record, new=True)
        return record

    def _visit_level(self, urls: list[str], robots: RobotsPolicy,
                     submit: Callable[..., Future], width: int) -> Iterator[dict | None]:
        """Records of one breadth-first level, in order, with up to ``width`` fetches in
        flight. Every decision (fetch or not, budget, stop) is the one a crawl fetching one
        page at a time takes: a URL is sent only once its place in the budget is certain
        whatever the pages before it turn out to be, and records are kept in level order,
        so what is stored does not depend on which answer came back first."""
        window: deque[tuple[str, Future]] = deque()
        try:
            for url in urls:
                if url in self.done:
                    while window:
                        yield self._settle(*window.popleft())
                    yield self._replay(url)
                    continue
                while window and (len(window) >= width
                                  or not self._budget_left(uncertain=len(window))):
                    yield self._settle(*window.popleft())
                if self._stop_requested():
                    return
                if not self._budget_left() or url in self.page_finals:
                    continue  # only resumed records can still be replayed
                if robots.can_fetch(url):
                    window.append((url, submit(self._fetch_page, url)))
                else:  # no request: its record still takes its place in the order
                    window.append((url, _run_now(_blocked, url)))
            while window:
                yield self._settle(*window.popleft())
        finally:
            for _, outcome in window:  # stopped or failed: answers still due are dropped
                outcome.cancel()

    def _links(self, record: dict) -> list[str]:
        facts = record.get("facts") or {}
        fresh = []
        for link in facts.get("links") or []:
            if link not in self.seen and _followable(link, self.site):
                self.seen.add(link)
                self.linked_from[link] = record.get("final_url") or record.get("url")
                fresh.append(link)
        return fresh

    def pages(self, home: dict, robots: RobotsPolicy) -> None:
        """Breadth-first over internal links, within the page and record budgets; up to
        ``parallel`` requests in flight (the politeness gate holds them to its own cap),
        one page at a time when robots.txt sets a Crawl-delay."""
        # One page more than the requests allowed in flight: the next request goes out (when
        # the gate lets it) while the last answer is analysed and stored.
        width = 1 if robots.crawl_delay is not None else self.parallel + 1
        pool = (ThreadPoolExecutor(width, thread_name_prefix="crawl-fetch")
                if width > 1 else None)
        submit = pool.submit if pool is not None else _run_now
        try:
            level = self._links(home) if not robots.homepage_only else []
            while level and not self.result.stopped:
                next_level: list[str] = []
                for record in self._visit_level(prioritise(level), robots, submit, width):
                    if record is not None and record["analysed"]:
                        next_level.extend(self._links(record))
                level = next_level
        finally:
            if pool is not None:
                pool.shutdown(wait=True, cancel_futures=True)

    def sitemaps(self, robots: RobotsPolicy, site_url: str) -> dict:
        if robots.homepage_only:
            return {"found": False, "url_count": 0}
        urls = list(robots.facts["sitemaps"])
        if not urls:
            parts = urlsplit(site_url)
            fallback = urlunsplit((parts.scheme, parts.netloc, "/sitemap.xml", "", ""))
            if robots.can_fetch(fallback):
                urls = [fallback]
        return collect_sitemaps(
            urls, self.fetcher, self.politeness,
            limits=self.sitemap_limits, should_stop=self.should_stop,
        )

    def run(self) -> CrawlResult:
        if self._stop_requested():
            return self.result
        robots = self._robots(self.start)
        home = self.homepage()
        final = home["final_url"]
        self.site = _host_port(final)
        if origin_of(final) != origin_of(self.start):
            robots = self._robots(final)
        self.result.robots = robots.facts
        if robots.homepage_only:
            self.on_event("robots_blocked", {"url": None, "reason": robots.reason})
        if not self._stop_requested():
            self.result.sitemap = self.sitemaps(robots, final)
        if not self.result.stopped:
            self.pages(home, robots)
        for url, record in self.done.items():
            if url not in self.replayed:
                self.replayed.add(url)
                self.result.records.append(record)
        return self.result


def _blocked(url: str) -> tuple[dict, bool]:
    """A robots-blocked URL's outcome, shaped like ``_Crawl._fetch_page``'s."""
    return blocked_record(url), False


def _run_now(function: Callable[..., T], *args: object) -> Future:
    """``function(*args)`` run in this thread, as a finished Future (its error kept in it)."""
    outcome: Future = Future()
    try:
        outcome.set_result(function(*args))
    except BaseException as error:  # noqa: BLE001 - re-raised by outcome.result()
        outcome.set_exception(error)
    return outcome


def crawl_site(
    start_url: str,
    *,
    max_pages: int,
    fetcher: Fetcher,
    politeness: Politeness,
    done: Iterable[dict] = (),
    on_record: Callable[[dict], None] = lambda record: None,
    should_stop: Callable[[], bool] = lambda: False,
    on_event: EventSink = lambda kind, data: None,
    sitemap_limits: SitemapLimits | None = None,
    max_other_records: int | None = None,
    http_fallback: bool = True,
    parallel: int = 1,
) -> CrawlResult:
    """Crawl ``start_url``'s site: at most ``max_pages`` analysed pages, homepage included.

    Raises SiteFailed when the homepage cannot be analysed (4xx/5xx, too large, timeout,
    redirect loop, refused address, network error, not HTML, analysis over its time budget).
    Each page is analysed under the budget of :mod:`analysis.page_budget`; a page over it is
    recorded with the error ``parse_budget_exceeded: ...``. ``should_stop`` is polled before
    each request; when it answers True the crawl ends early with ``stopped=True``. Records
    that did not yield a page (4xx/5xx, robots-blocked, not HTML) are capped at
    ``max_other_records`` (default ``max(20, 2 * max_pages)``).

    The homepage is always fetched (it is what the user asked for); robots.txt governs the
    other pages. When the homepage redirects to another origin, that origin's robots.txt
    applies to the crawl and is the one reported.

    ``http_fallback``: an https:// homepage that cannot connect (refused, or no TLS on that
    port) is tried once as http://; when that works, the homepage record carries
    ``scheme_fallback`` {from, to, reason} (the report shows it) and the crawl goes on over
    http. URLs typed without a scheme are stored as https://, so this is how they reach a
    site that only speaks http, as in a browser.

    ``parallel``: internal pages are fetched up to this many at a time, and one more page
    is analysed meanwhile (so even ``parallel=1`` overlaps the next request with the last
    page's analysis and storage); the politeness gate still caps requests in flight per
    server, and a robots.txt Crawl-delay makes the crawl one page at a time. The crawl stays
    breadth-first and stores the same records, in the same order, as one fetching a page at
    a time: a level's records are kept in order, and a page is sent only once it is certain
    that such a crawl would send it too. A request is wasted only when the crawl stops
    (answers still due are dropped) or when a page sent just before it redirected to it.
    ``on_record``, ``on_event`` and ``should_stop`` run in the calling thread only; fetches
    and analyses run in helper threads.

    ``on_event(kind, data)`` kinds: ``"page_fetched"`` {url, status_code, response_time_ms};
    ``"fetch_failed"`` {url, status_code, error}; ``"robots_blocked"`` {url} for one page, or
    {url: None, reason} when robots.txt was unreachable and only the homepage is crawled.
    """
    try:
        start = canonical_url(start_url)
    except ValueError as exc:  # InvalidURL, or urllib's own complaint about brackets
        raise SiteFailed(f"invalid URL: {exc}") from None
    crawl = _Crawl(
        start,
        max_pages=max_pages,
        fetcher=fetcher,
        politeness=politeness,
        done=done,
        on_record=on_record,
        should_stop=should_stop,
        on_event=on_event,
        sitemap_limits=sitemap_limits,
        max_other_records=max_other_records,
        http_fallback=http_fallback,
        parallel=parallel,
    )
    try:
        return crawl.run()
    except AnalysisAborted:  # the worker is shutting down: stop as if asked to
        crawl.result.stopped = True
        return crawl.result
