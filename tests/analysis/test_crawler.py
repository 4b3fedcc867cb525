"""The crawler end to end against real sites served on 127.0.0.1."""

from __future__ import annotations

import gzip
import json

import pytest

from analysis.crawler import SiteFailed, crawl_site, prioritise
from analysis.politeness import Politeness
from tests.analysis.conftest import Reply, html, make_fetcher, redirect

ROBOTS_404 = Reply(status=404, body="none", content_type="text/plain")


def crawl(site_url: str, fetcher, **kwargs):
    kwargs.setdefault("max_pages", 10)
    kwargs.setdefault("politeness", Politeness(default_delay=0.0))
    return crawl_site(site_url, fetcher=fetcher, **kwargs)


def page_paths(result, site) -> list[str]:
    prefix = site.origin
    return [r["url"][len(prefix):] for r in result.records]


def test_homepage_then_internal_pages_breadth_first(servers, fetcher):
    site = servers.serve({
        "/robots.txt": ROBOTS_404,
        "/": html("Home", ["/a", "/b", "http://example.invalid/external", "/a#again"]),
        "/a": html("A", ["/a1", "/"]),
        "/b": html("B", ["/b1"]),
        "/a1": html("A1"),
        "/b1": html("B1"),
    })
    seen = []
    events = []
    result = crawl(site.url("/"), fetcher, on_record=seen.append,
                   on_event=lambda kind, data: events.append(kind))
    assert page_paths(result, site) == ["/", "/a", "/b", "/a1", "/b1"]
    assert [r["url"] for r in seen] == [r["url"] for r in result.records]
    home = result.records[0]
    assert home["is_homepage"] and home["analysed"] and home["facts"]["title"] == "Home"
    assert all(r["analysed"] and not r["is_homepage"] for r in result.records[1:])
    assert events.count("page_fetched") == 5
    assert "example.invalid" not in " ".join(site.paths())
    assert json.loads(json.dumps(result.records)) == result.records  # JSON-serialisable
    assert result.robots == {"found": False, "disallow_count": 0, "crawl_delay": None,
                             "sitemaps": []}
    assert site.count("/a") == 1  # fragment variants are one page


def test_contact_and_about_pages_come_first_in_each_level(servers, fetcher):
    site = servers.serve({
        "/robots.txt": ROBOTS_404,
        "/": html("Home", ["/products", "/blog", "/about-us", "/de/impressum", "/Kontakt"]),
        "/blog": html("Blog", ["/blog/post", "/contact"]),
    }, fallback=html("Any"))
    result = crawl(site.url("/"), fetcher)
    paths = page_paths(result, site)
    assert paths[:6] == ["/", "/about-us", "/de/impressum", "/Kontakt", "/products", "/blog"]
    assert paths[6:] == ["/contact", "/blog/post"]


def test_prioritise_is_stable():
    urls = ["https://e.com/x", "https://e.com/contact", "https://e.com/y", "https://e.com/about"]
    assert prioritise(urls) == [
        "https://e.com/contact", "https://e.com/about", "https://e.com/x", "https://e.com/y"]


def test_homepage_redirect_chain_is_recorded_and_links_are_relative_to_final_url(servers, fetcher):
    site = servers.serve({
        "/robots.txt": ROBOTS_404,
        "/": redirect("/start", 301),
        "/start": redirect("/en/", 302),
        "/en/": html("Welcome", ["page"]),
        "/en/page": html("Page"),
    })
    result = crawl(site.url("/"), fetcher)
    home = result.records[0]
    assert home["url"] == site.url("/")
    assert home["final_url"] == site.url("/en/")
    assert home["redirect_chain"] == [
        {"url": site.url("/"), "status": 301}, {"url": site.url("/start"), "status": 302}]
    assert page_paths(result, site) == ["/", "/en/page"]


@pytest.mark.parametrize(
    ("routes", "reason"),
    [
        ({"/": Reply(status=500, body="down")}, "HTTP 500"),
        ({"/": Reply(status=404, body="gone")}, "HTTP 404"),
        ({"/": redirect("/x"), "/x": redirect("/")}, "redirect loop"),
        ({"/": Reply(body=b"x" * 200_000)}, "body exceeds 100000 bytes"),
        ({"/": Reply(body=b"%PDF-1.4", content_type="application/pdf")}, "not HTML"),
    ],
)
def test_homepage_failure_fails_the_site_with_the_reason(servers, routes, reason):
    site = servers.serve({"/robots.txt": ROBOTS_404, **routes})
    stored = []
    with make_fetcher(max_body_bytes=100_000) as f:
        with pytest.raises(SiteFailed) as failed:
            crawl(site.url("/"), f, on_record=stored.append)
    assert failed.value.reason.startswith(reason)
    assert stored == []


def test_homepage_refused_by_ssrf_guard_fails_the_site(servers):
    site = servers.serve({"/": html("Hidden")})
    with make_fetcher(allow_networks=()) as f:
        with pytest.raises(SiteFailed, match="blocked address 127.0.0.1"):
            crawl(site.url("/"), f)
    assert site.paths() == []


@pytest.mark.parametrize("bad", ["http://[::1/", "http://exa mple.com:99999/"])
def test_invalid_start_url_fails_the_site(fetcher, bad):
    with pytest.raises(SiteFailed, match="invalid URL"):
        crawl(bad, fetcher)


def test_homepage_timeout_fails_the_site(servers):
    def slow(h):
        import time

        time.sleep(3)

    site = servers.serve({"/robots.txt": ROBOTS_404, "/": slow})
    with make_fetcher(read_timeout=0.5, total_timeout=1.0) as f:
        with pytest.raises(SiteFailed, match="timeout"):
            crawl(site.url("/"), f)


def test_internal_404_is_recorded_not_analysed(servers, fetcher):
    site = servers.serve({
        "/robots.txt": ROBOTS_404,
        "/": html("Home", ["/missing", "/ok"]),
        "/ok": html("OK"),
    })
    events = []
    result = crawl(site.url("/"), fetcher, on_event=lambda kind, data: events.append((kind, data)))
    missing = next(r for r in result.records if r["url"] == site.url("/missing"))
    assert missing["status_code"] == 404
    assert missing["analysed"] is False
    assert missing["error"] == "HTTP 404"
    assert missing["facts"] is None
    assert missing["linked_from"] == site.url("/")  # the page that links to the broken one
    assert ("fetch_failed", {"url": site.url("/missing"), "status_code": 404,
                             "error": "HTTP 404"}) in events
    assert sum(r["analysed"] for r in result.records) == 2


def test_robots_disallow_and_crawl_delay(servers, fetcher):
    site = servers.serve({
        "/robots.txt": Reply(
            body="User-agent: *\nDisallow: /private\nCrawl-delay: 0.3\n", content_type="text/plain"
        ),
        "/": html("Home", ["/private/x", "/one", "/two"]),
        "/one": html("One"),
        "/two": html("Two"),
    })
    events = []
    politeness = Politeness(default_delay=0.0, max_delay=5.0)
    result = crawl(site.url("/"), fetcher, politeness=politeness,
                   on_event=lambda kind, data: events.append((kind, data)))
    assert "/private/x" not in site.paths()
    blocked = next(r for r in result.records if r["url"] == site.url("/private/x"))
    assert blocked["error"] == "blocked by robots.txt" and blocked["status_code"] is None
    assert ("robots_blocked", {"url": site.url("/private/x")}) in events
    assert result.robots["disallow_count"] == 1
    assert result.robots["crawl_delay"] == 0.3
    times = site.times()
    assert len(times) >= 4  # robots.txt, /, sitemap.xml, /one, /two
    gaps = [b - a for a, b in zip(times, times[1:], strict=False)]
    assert all(gap >= 0.3 for gap in gaps), gaps  # from the robots.txt request on


def test_robots_5xx_means_only_the_homepage(servers, fetcher):
    site = servers.serve({
        "/robots.txt": Reply(status=500, body="oops"),
        "/": html("Home", ["/a", "/b"]),
    }, fallback=html("Any"))
    events = []
    result = crawl(site.url("/"), fetcher, on_event=lambda kind, data: events.append(kind))
    assert page_paths(result, site) == ["/"]
    assert site.paths() == ["/robots.txt", "/"]
    assert "robots_blocked" in events
    assert result.sitemap == {"found": False, "url_count": 0}


def test_five_hundred_page_site_is_capped_at_max_pages(servers, fetcher):
    def numbered(n: int) -> list[str]:
        return [f"/p{i}" for i in range(n * 5 + 1, n * 5 + 6) if i < 500]

    routes = {"/robots.txt": ROBOTS_404, "/": html("Home", numbered(0))}
    for i in range(1, 500):
        routes[f"/p{i}"] = html(f"P{i}", numbered(i))
    site = servers.serve(routes)
    result = crawl(site.url("/"), fetcher, max_pages=25)
    analysed = [r for r in result.records if r["analysed"]]
    assert len(analysed) == 25
    assert len(result.records) == 25
    page_hits = [p for p in site.paths() if p not in ("/robots.txt", "/sitemap.xml")]
    assert len(page_hits) == 25
    assert len(set(page_hits)) == 25


def test_sitemap_from_robots_index_gzip_and_self_reference(servers, fetcher):
    routes: dict = {}
    site = servers.serve(routes)
    base = site.origin
    urlset = (
        '<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">'
        + "".join(f"<url><loc>{base}/item{i}</loc></url>" for i in range(7))
        + f"<url><loc>{base}/item1</loc></url></urlset>"
    )
    routes.update({
        "/robots.txt": Reply(body=f"Sitemap: {base}/index.xml\n", content_type="text/plain"),
        "/index.xml": Reply(
            body=(
                '<sitemapindex xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">'
                f"<sitemap><loc>{base}/index.xml</loc></sitemap>"
                f"<sitemap><loc>{base}/items.xml.gz</loc></sitemap></sitemapindex>"
            ),
            content_type="application/xml",
        ),
        "/items.xml.gz": Reply(
            body=gzip.compress(urlset.encode()), content_type="application/gzip"
        ),
        "/": html("Home"),
    })
    result = crawl(site.url("/"), fetcher)
    assert result.sitemap == {"found": True, "url_count": 7}
    assert site.count("/index.xml") == 1 and site.count("/items.xml.gz") == 1
    assert site.count("/sitemap.xml") == 0
    assert result.robots["sitemaps"] == [f"{base}/index.xml"]


def test_homepage_on_another_origin_uses_that_origins_robots(servers, fetcher):
    target = servers.serve({
        "/robots.txt": Reply(body="User-agent: *\nDisallow: /secret\n", content_type="text/plain"),
        "/home": html("Moved", ["/secret", "/open"]),
        "/open": html("Open"),
    })
    start = servers.serve({"/robots.txt": ROBOTS_404, "/": redirect(target.url("/home"), 301)})
    result = crawl(start.url("/"), fetcher)
    assert result.records[0]["final_url"] == target.url("/home")
    assert result.robots["found"] and result.robots["disallow_count"] == 1
    assert "/secret" not in target.paths()
    assert target.count("/open") == 1
    assert [r["analysed"] for r in result.records] == [True, False, True]


def test_fallback_sitemap_xml(servers, fetcher):
    routes: dict = {"/robots.txt": ROBOTS_404, "/": html("Home")}
    site = servers.serve(routes)
    routes["/sitemap.xml"] = Reply(
        body=f"<urlset><url><loc>{site.url('/x')}</loc></url></urlset>",
        content_type="text/xml",
    )
    result = crawl(site.url("/"), fetcher)
    assert result.sitemap == {"found": True, "url_count": 1}


def test_resume_never_refetches_done_records(servers):
    def build():
        return {
            "/robots.txt": ROBOTS_404,
            "/": html("Home", ["/a", "/b", "/c"]),
            "/a": html("A", ["/a1", "/gone"]),
            "/b": html("B", ["/b1"]),
            "/c": html("C"),
            "/a1": html("A1"),
            "/b1": html("B1"),
            "/gone": Reply(status=404, body="x"),
        }

    first_site = servers.serve(build())
    with make_fetcher() as f:
        full = crawl(first_site.url("/"), f, max_pages=10)
    assert page_paths(full, first_site) == ["/", "/a", "/b", "/c", "/a1", "/gone", "/b1"]

    # A first run stored the homepage and at least /a and /b, then the worker died.
    site = servers.serve(build())
    first_stored = []
    with make_fetcher() as f:
        partial = crawl(site.url("/"), f, max_pages=10, on_record=first_stored.append,
                        should_stop=lambda: len(first_stored) >= 3)
    done = partial.records
    assert partial.stopped
    done_paths = [r["url"][len(site.origin):] for r in done]
    everything = ["/", "/a", "/b", "/c", "/a1", "/gone", "/b1"]
    assert 3 <= len(done_paths) < len(everything)
    assert done_paths == everything[: len(done_paths)]  # a prefix of the crawl order
    before = site.paths().copy()

    stored = []
    with make_fetcher() as f:
        resumed = crawl(site.url("/"), f, max_pages=10, done=done, on_record=stored.append)
    after = site.paths()[len(before):]
    assert page_paths(resumed, site) == everything
    assert sorted(p for p in after if p not in ("/robots.txt", "/sitemap.xml")) == sorted(
        everything[len(done_paths):])  # nothing in done was fetched again
    assert [r["url"][len(site.origin):] for r in stored] == everything[len(done_paths):]
    assert resumed.records[: len(done)] == done


def test_resume_counts_done_pages_against_max_pages(servers, fetcher):
    routes = {"/robots.txt": ROBOTS_404, "/": html("Home", ["/a", "/b", "/c"])}
    site = servers.serve(routes, fallback=html("Any"))
    first = crawl(site.url("/"), fetcher, max_pages=2)
    assert sum(r["analysed"] for r in first.records) == 2
    hits_before = len(site.paths())
    again = crawl(site.url("/"), fetcher, max_pages=2, done=first.records)
    new_hits = [p for p in site.paths()[hits_before:] if p not in ("/robots.txt", "/sitemap.xml")]
    assert new_hits == []
    assert again.records == first.records


def test_should_stop_ends_the_crawl_early(servers, fetcher):
    site = servers.serve({"/robots.txt": ROBOTS_404, "/": html("Home", ["/a", "/b"])},
                         fallback=html("Any"))
    calls = {"n": 0}

    def stop():
        calls["n"] += 1
        return calls["n"] > 1

    result = crawl(site.url("/"), fetcher, should_stop=stop)
    assert result.stopped
    assert page_paths(result, site) == ["/"]


def test_redirect_to_an_already_crawled_page_is_not_a_second_page(servers, fetcher):
    site = servers.serve({
        "/robots.txt": ROBOTS_404,
        "/": html("Home", ["/old", "/new"]),
        "/old": redirect("/new", 301),
        "/new": html("New"),
        "/other": html("Other"),
    })
    result = crawl(site.url("/"), fetcher)
    analysed = [r["final_url"] for r in result.records if r["analysed"]]
    assert analysed == [site.url("/"), site.url("/new")]
    # /new may have been asked for while /old's answer (a redirect to it) was analysed, the
    # one request an overlapping crawl can waste; it is kept as a page once all the same
    assert site.count("/new") in (1, 2)
    assert [r["url"] for r in result.records].count(site.url("/new")) == 0


def test_off_site_redirect_and_assets_are_not_pages(servers, fetcher):
    other = servers.serve({"/": html("Elsewhere")})
    site = servers.serve({
        "/robots.txt": ROBOTS_404,
        "/": html("Home", ["/away", "/doc.pdf", "/image.PNG", "/data"]),
        "/away": redirect(other.url("/")),
        "/data": Reply(body=b"{}", content_type="application/json"),
    })
    result = crawl(site.url("/"), fetcher)
    by_path = {r["url"][len(site.origin):]: r for r in result.records}
    assert by_path["/away"]["error"].startswith("redirected off-site")
    assert not by_path["/away"]["analysed"]
    assert by_path["/data"]["error"] == "not HTML (application/json)"
    assert "/doc.pdf" not in site.paths() and "/image.PNG" not in site.paths()


def test_failed_pages_are_capped(servers, fetcher):
    links = [f"/missing{i}" for i in range(50)]
    site = servers.serve({"/robots.txt": ROBOTS_404, "/": html("Home", links)})
    result = crawl(site.url("/"), fetcher, max_pages=5, max_other_records=7)
    assert len([r for r in result.records if not r["analysed"]]) == 7


def test_https_that_cannot_connect_falls_back_to_http_and_says_so(servers, fetcher):
    from analysis.report import build_report

    site = servers.serve({"/robots.txt": ROBOTS_404, "/": html("Home", ["/a"]),
                          "/a": html("A")})
    start = site.url("/").replace("http://", "https://")  # that port speaks no TLS
    result = crawl(start, fetcher)
    home = result.records[0]
    assert home["is_homepage"] and home["analysed"] and home["url"] == site.url("/")
    fallback = home["scheme_fallback"]
    assert fallback["from"] == start and fallback["to"] == site.url("/")
    assert fallback["reason"].startswith("network error")
    assert page_paths(result, site) == ["/", "/a"]
    report = build_report(result.records, result.robots, result.sitemap)
    assert report["scheme_fallback"] == fallback and report["https"] is False
    assert "scheme_fallback" not in build_report(result.records[1:], None, None)


def test_no_fallback_when_disabled(servers, fetcher):
    site = servers.serve({"/robots.txt": ROBOTS_404, "/": html("Home")})
    start = site.url("/").replace("http://", "https://")
    with pytest.raises(SiteFailed):
        crawl(start, fetcher, http_fallback=False)
    from analysis.crawler import http_fallback_url

    assert http_fallback_url("https://a.example:443/x?q=1") == "http://a.example/x?q=1"
    assert http_fallback_url("https://a.example:8443/") == "http://a.example:8443/"
    assert http_fallback_url("http://a.example/") is None
