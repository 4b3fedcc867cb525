"""build_report over several page records: homepage facts, pages, contacts and issue counts."""

from __future__ import annotations

import json

from analysis.html_facts import analyze_page
from analysis.report import REPORT_KEYS, build_report

SITE = "https://acme.example"


def record(
    path: str,
    html: str | None,
    *,
    status: int = 200,
    home: bool = False,
    ms: int = 100,
    final: str | None = None,
    headers=None,
    chain=None,
) -> dict:
    url = SITE + path
    final_url = final or url
    analysed = html is not None and 200 <= status < 300
    body = (html or "").encode()
    return {
        "url": url,
        "final_url": final_url,
        "status_code": status,
        "content_type": "text/html; charset=utf-8",
        "response_time_ms": ms,
        "page_bytes": len(body),
        "redirect_chain": chain or [],
        "is_homepage": home,
        "analysed": analysed,
        "error": None if analysed else f"HTTP {status}",
        "facts": analyze_page(body, final_url, headers or []) if analysed else None,
    }


def doc(title: str | None = None, desc: str | None = None, body: str = "") -> str:
    head = f"<title>{title}</title>" if title is not None else ""
    if desc is not None:
        head += f'<meta name="description" content="{desc}">'
    return f"<html lang=en><head>{head}</head><body>{body}</body></html>"


ROBOTS = {"found": True, "disallow_count": 2, "crawl_delay": 1.5,
          "sitemaps": ["https://acme.example/sitemap.xml"]}
SITEMAP = {"found": True, "url_count": 12}


def crawl() -> list[dict]:
    home_body = (
        "<h1>Acme</h1><h2>News</h2><p>Welcome to Acme, write hello@acme.example</p>"
        '<a href="/about">About</a><a href="/missing">Gone</a>'
        '<a href="https://twitter.com/intent/tweet?text=x">share</a>'
        '<a href="https://x.com/acme_home">X</a><img src="a.png">'
    )
    return [
        record("/", doc("Acme", "Home page", home_body), home=True, ms=250,
               final=SITE + "/en/", chain=[{"url": SITE + "/", "status": 301}],
               headers=[("Strict-Transport-Security", "max-age=60"), ("Server", "nginx")]),
        record("/about", doc("About", None,
               '<h1>About</h1><h1>Us</h1><a href="https://twitter.com/acme_about">t</a>'
               '<a href="https://www.linkedin.com/company/acme/">in</a>'
               '<a href="mailto:Sales@Acme.example?subject=hi">m</a>'), ms=1500),
        record("/missing", None, status=404),
        record("/contact", doc("Acme", "Contact", "<p>zed@acme.example</p><img><img alt=''>")),
        record("/broken", None, status=500),
        record("/missing", None, status=404),  # the same target fetched again
        record("/tmp", None, status=None),  # network error: not a broken link
        record("/nothing", doc(None, "No title", "<h1>x</h1>"), ms=1001),
        record("/redirected", doc("About", None, "<h1>dup</h1>"), final=SITE + "/about"),
    ]


def test_report_keys_exact_and_json():
    report = build_report(crawl(), ROBOTS, SITEMAP)
    assert list(report) == list(REPORT_KEYS)
    assert json.loads(json.dumps(report)) == report


def test_homepage_facts_from_final_response():
    report = build_report(crawl(), ROBOTS, SITEMAP)
    assert report["final_url"] == SITE + "/en/"
    assert report["status_code"] == 200
    assert report["redirect_chain"] == [{"url": SITE + "/", "status": 301}]
    assert report["response_time_ms"] == 250
    assert report["https"] is True
    assert report["security_headers"]["strict-transport-security"] is True
    assert report["security_headers"]["content-security-policy"] is False
    assert report["title"] == "Acme" and report["meta_description"] == "Home page"
    assert report["lang"] == "en" and report["h1"] == ["Acme"] and report["h2_count"] == 1
    assert report["internal_links"] == 2 and report["external_links"] == 2
    assert report["images"] == 1 and report["images_missing_alt"] == 1
    assert report["technologies"] == ["nginx"]
    assert report["robots"] == ROBOTS
    assert report["sitemap"] == SITEMAP


def test_pages_crawled_counts_distinct_analysed_pages():
    # /, /about, /contact, /nothing; /redirected ends on /about (already counted); 4xx/5xx not
    assert build_report(crawl(), ROBOTS, SITEMAP)["pages_crawled"] == 4


def test_emails_unique_sorted_over_pages():
    assert build_report(crawl(), ROBOTS, SITEMAP)["emails"] == [
        "hello@acme.example",
        "sales@acme.example",
        "zed@acme.example",
    ]


def test_first_social_profile_in_crawl_order():
    assert build_report(crawl(), ROBOTS, SITEMAP)["social_profiles"] == {
        "twitter": "https://x.com/acme_home",
        "linkedin": "https://www.linkedin.com/company/acme/",
    }


def test_issue_codes_and_counts():
    issues = build_report(crawl(), ROBOTS, SITEMAP)["issues"]
    assert issues == [
        {"code": "missing_title", "count": 1},  # /nothing
        {"code": "missing_description", "count": 1},  # /about
        {"code": "duplicate_title", "count": 2},  # / and /contact share "Acme"
        {"code": "missing_h1", "count": 1},  # /contact
        {"code": "multiple_h1", "count": 1},  # /about
        {"code": "images_missing_alt", "count": 2},  # one on /, one on /contact
        {"code": "broken_link", "count": 2},  # /missing (twice) and /broken
        {"code": "slow_page", "count": 2},  # /about 1500 ms, /nothing 1001 ms
    ]


def test_clean_site_has_no_issues_and_defaults_for_missing_robots_sitemap():
    body = "<h1>Hi</h1><img src=x alt=''>"
    records = [record("/", doc("Home", "Desc", body), home=True)]
    report = build_report(records, None, None)
    assert report["issues"] == []
    assert report["pages_crawled"] == 1
    assert report["robots"] == {"found": False, "disallow_count": 0, "crawl_delay": None,
                                "sitemaps": []}
    assert report["sitemap"] == {"found": False, "url_count": 0}
    assert report["emails"] == [] and report["social_profiles"] == {}


def test_redirect_to_404_counts_as_broken_and_homepage_error_does_not():
    records = [
        record("/", doc("Home", "Desc", "<h1>x</h1>"), home=True),
        record("/old", None, status=404, final=SITE + "/gone"),
        record("/ok", doc("Ok", "Desc", "<h1>y</h1>")),
    ]
    issues = build_report(records, ROBOTS, SITEMAP)["issues"]
    assert issues == [{"code": "broken_link", "count": 1}]


def test_no_records_gives_empty_report_with_all_keys():
    report = build_report([], None, None)
    assert list(report) == list(REPORT_KEYS)
    assert report["final_url"] is None and report["https"] is False
    assert report["pages_crawled"] == 0 and report["issues"] == []


def test_display_name_prefers_site_name_then_title_then_host():
    from analysis.report import display_name

    url = "https://www.trailpeak.example/"
    assert display_name({"open_graph": {"og:site_name": " Trail  Peak "}, "title": "x"},
                        url) == "Trail Peak"
    assert display_name({"title": "Summit Gear | Outdoor shop"}, url) == "Summit Gear"
    assert display_name({"title": "Basecamp - Tents – and more"}, url) == "Basecamp"
    assert display_name({"title": "Basecamp – Tents | more"}, url) == "Basecamp"
    assert display_name({"title": "| only separator"}, url) == "| only separator"
    assert display_name({"title": None}, url) == "trailpeak.example"
    assert display_name(None, "http://127.0.0.1:8080/") == "127.0.0.1:8080"
    assert len(display_name({"title": "x" * 500}, url)) == 80
