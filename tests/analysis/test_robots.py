"""robots.txt: parsing into report facts, and the RFC 9309 status rules against a real server."""

from __future__ import annotations

from analysis.robots import disallow_count, fetch_robots, parse_robots, robots_url_for
from tests.analysis.conftest import Reply, redirect

ROBOTS = """\
# comment
User-agent: *
Disallow: /private/
Disallow: /tmp/   # trailing comment
Disallow:
Allow: /private/open
Crawl-delay: 2

User-agent: OtherBot
Disallow: /
Crawl-delay: 30

Sitemap: /sitemap.xml
Sitemap: https://cdn.example.com/maps/index.xml.gz
"""


def test_facts_for_the_star_group():
    policy = parse_robots(ROBOTS, "https://example.com/robots.txt", "Rivalscope")
    assert policy.facts == {
        "found": True,
        "disallow_count": 2,
        "crawl_delay": 2.0,
        "sitemaps": ["https://example.com/sitemap.xml", "https://cdn.example.com/maps/index.xml.gz"],
    }
    assert not policy.can_fetch("https://example.com/private/x")
    assert policy.can_fetch("https://example.com/private/open")
    assert policy.can_fetch("https://example.com/public")


def test_our_own_group_wins_over_star_and_merges_repeated_groups():
    text = """\
User-agent: *
Disallow: /a
Disallow: /b
Disallow: /c

User-agent: rivalscope
Disallow: /only-for-us
Crawl-delay: 5

User-agent: somebot
User-agent: Rivalscope
Disallow: /shared
"""
    policy = parse_robots(text, "http://example.com/robots.txt", "Rivalscope")
    assert policy.facts["disallow_count"] == 2
    assert policy.facts["crawl_delay"] == 5.0
    assert not policy.can_fetch("http://example.com/only-for-us")
    assert not policy.can_fetch("http://example.com/shared")
    assert policy.can_fetch("http://example.com/a")


def test_no_matching_group_means_nothing_disallowed():
    text = "User-agent: OtherBot\nDisallow: /\n"
    assert disallow_count(text, "Rivalscope") == 0
    policy = parse_robots(text, "http://example.com/robots.txt", "Rivalscope")
    assert policy.facts["crawl_delay"] is None
    assert policy.can_fetch("http://example.com/anything")


def test_robots_url_is_at_the_origin_root():
    assert robots_url_for("https://example.com:8443/a/b?c#d") == "https://example.com:8443/robots.txt"


def test_fetch_2xx_is_parsed(servers, fetcher):
    site = servers.serve({"/robots.txt": Reply(body=ROBOTS, content_type="text/plain")})
    policy = fetch_robots(site.url("/some/page"), fetcher)
    assert policy.facts["found"] is True
    assert policy.facts["sitemaps"][0] == site.url("/sitemap.xml")
    assert not policy.homepage_only
    assert site.paths() == ["/robots.txt"]


def test_fetch_follows_redirects(servers, fetcher):
    site = servers.serve(
        {"/robots.txt": redirect("/real-robots"),
         "/real-robots": Reply(body="User-agent: *\nDisallow: /x\n", content_type="text/plain")}
    )
    policy = fetch_robots(site.url("/"), fetcher)
    assert policy.facts["disallow_count"] == 1


def test_fetch_4xx_allows_everything(servers, fetcher):
    site = servers.serve({"/robots.txt": Reply(status=404, body="nope")})
    policy = fetch_robots(site.url("/"), fetcher)
    assert policy.facts == {"found": False, "disallow_count": 0, "crawl_delay": None,
                            "sitemaps": []}
    assert not policy.homepage_only
    assert policy.can_fetch(site.url("/anything"))


def test_fetch_5xx_means_homepage_only(servers, fetcher):
    site = servers.serve({"/robots.txt": Reply(status=503, body="down")})
    policy = fetch_robots(site.url("/"), fetcher)
    assert policy.facts["found"] is False
    assert policy.homepage_only
    assert not policy.can_fetch(site.url("/anything"))


def test_fetch_unreachable_means_homepage_only(counting_listener, fetcher):
    listener = counting_listener("127.0.0.1")
    port = listener.port
    listener.close()
    policy = fetch_robots(f"http://127.0.0.1:{port}/", fetcher)
    assert policy.homepage_only
    assert policy.reason is not None and "network error" in policy.reason


def test_oversized_robots_is_read_up_to_the_limit(servers, fetcher):
    body = "User-agent: *\nDisallow: /early\n" + ("# padding\n" * 100_000) + "Disallow: /late\n"
    site = servers.serve({"/robots.txt": Reply(body=body, content_type="text/plain")})
    policy = fetch_robots(site.url("/"), fetcher)
    assert policy.facts["found"] is True
    assert not policy.can_fetch(site.url("/early"))
    assert policy.can_fetch(site.url("/late"))
