"""score_report: bounded integers, documented extremes, and monotone sanity."""

from __future__ import annotations

import copy

import pytest

from analysis.html_facts import SECURITY_HEADERS
from analysis.report import build_report
from analysis.scoring import CATEGORIES, RULES, SCORE_KEYS, breakdown, score_report


def best_report() -> dict:
    return {
        "final_url": "https://a.example/",
        "status_code": 200,
        "redirect_chain": [],
        "response_time_ms": 150,
        "page_bytes": 50_000,
        "https": True,
        "security_headers": dict.fromkeys(SECURITY_HEADERS, True),
        "title": "A good title for a page",
        "meta_description": "A meta description that is long enough to be shown in results.",
        "canonical": "https://a.example/",
        "lang": "en",
        "has_viewport": True,
        "h1": ["Welcome"],
        "h2_count": 4,
        "word_count": 900,
        "internal_links": 30,
        "external_links": 3,
        "images": 4,
        "images_missing_alt": 0,
        "open_graph": {"og:title": "A"},
        "jsonld_types": ["Organization"],
        "technologies": [],
        "robots": {"found": True, "disallow_count": 0, "crawl_delay": None, "sitemaps": []},
        "sitemap": {"found": True, "url_count": 20},
        "emails": ["hi@a.example"],
        "social_profiles": {"twitter": "https://x.com/a"},
        "pages_crawled": 10,
        "issues": [],
    }


def worst_report() -> dict:
    return build_report([], None, None)


def test_best_and_worst():
    assert score_report(best_report()) == dict.fromkeys(SCORE_KEYS, 100)
    worst = score_report(worst_report())
    assert set(worst) == set(SCORE_KEYS)
    assert worst["security"] == 0 and worst["seo"] == 5  # no broken links is the only point
    assert all(isinstance(v, int) and 0 <= v <= 100 for v in worst.values())


def test_scores_bounded_on_absurd_values():
    report = best_report()
    report.update(response_time_ms=-5, page_bytes=-1, word_count=10**9, images=3,
                  images_missing_alt=7, h2_count=-4, pages_crawled=-2)
    report["issues"] = [{"code": "slow_page", "count": 99}]
    for value in score_report(report).values():
        assert isinstance(value, int) and 0 <= value <= 100
    assert score_report({})["overall"] >= 0
    assert score_report(None) == score_report({})  # type: ignore[arg-type]


def test_adding_hsts_raises_security():
    report = best_report()
    report["security_headers"]["strict-transport-security"] = False
    before = score_report(report)["security"]
    report["security_headers"]["strict-transport-security"] = True
    assert score_report(report)["security"] == before + 10


@pytest.mark.parametrize(
    ("score", "change"),
    [
        ("security", lambda r: r.update(https=False)),
        ("seo", lambda r: r.update(meta_description=None)),
        ("seo", lambda r: r.update(h1=["a", "b"])),
        ("seo", lambda r: r.update(issues=[{"code": "broken_link", "count": 1}])),
        ("performance", lambda r: r.update(response_time_ms=2000)),
        ("performance", lambda r: r.update(page_bytes=2_000_000)),
        ("performance", lambda r: r.update(redirect_chain=[{"url": "x", "status": 301}])),
        ("performance", lambda r: r.update(issues=[{"code": "slow_page", "count": 5}])),
        ("content", lambda r: r.update(word_count=100)),
        ("content", lambda r: r.update(images_missing_alt=2)),
        ("content", lambda r: r.update(emails=[])),
    ],
)
def test_losing_something_lowers_its_score(score, change):
    report = best_report()
    worse = copy.deepcopy(report)
    change(worse)
    assert score_report(worse)[score] < score_report(report)[score]
    assert score_report(worse)["overall"] <= score_report(report)["overall"]


def test_faster_is_never_worse():
    report = best_report()
    previous = -1
    for elapsed in (5000, 3000, 2000, 1200, 800, 400, 200, 0):
        report["response_time_ms"] = elapsed
        current = score_report(report)["performance"]
        assert current >= previous
        previous = current


def test_overall_is_rounded_mean():
    report = best_report()
    report["https"] = False  # security 50: no https, and HSTS is ignored over http
    scores = score_report(report)
    assert scores["security"] == 50
    assert scores["overall"] == 88  # (100 + 100 + 50 + 100) / 4 = 87.5


def test_missing_values_earn_nothing_rather_than_failing():
    report = best_report()
    report.update(response_time_ms=None, page_bytes=None, redirect_chain=None)
    assert score_report(report)["performance"] == 15


def test_hsts_counts_only_over_https():
    report = best_report()
    report["https"] = False
    with_hsts = score_report(report)["security"]
    report["security_headers"]["strict-transport-security"] = False
    assert score_report(report)["security"] == with_hsts  # ignored over plain HTTP
    row = next(r for r in breakdown(best_report() | {"https": False})
               if r["key"] == "security.strict-transport-security")
    assert row["points"] == 0 and "plain HTTP" in row["measured"]


@pytest.mark.parametrize("make", [best_report, worst_report, lambda: {}])
def test_breakdown_adds_up_to_the_score(make):
    report = make()
    rows = breakdown(report)
    scores = score_report(report)
    assert [r["key"] for r in rows] == [rule.key for rule in RULES]
    for category in CATEGORIES:
        mine = [r for r in rows if r["category"] == category]
        assert sum(r["max_points"] for r in mine) == 100
        total = sum(r["points"] for r in mine)
        assert abs(total - scores[category]) <= 1
        for row in mine:
            assert row["points"] + row["missed"] == pytest.approx(row["max_points"], abs=0.11)
            assert isinstance(row["measured"], str) and row["measured"]
            assert bool(row["advice"]) == (row["missed"] > 0.05)


def test_breakdown_explains_what_was_missed():
    report = best_report()
    report.update(meta_description=None, response_time_ms=1600)
    rows = {r["key"]: r for r in breakdown(report)}
    assert rows["seo.description"]["missed"] == 20
    assert rows["seo.description"]["measured"] == "no description"
    assert "meta description" in rows["seo.description"]["advice"]
    assert rows["performance.response"]["points"] == 25
    assert rows["performance.response"]["measured"] == "1,600 ms"
    assert rows["seo.title"]["advice"] == ""


def test_readme_holds_the_same_scoring_text():
    import analysis.scoring
    from config import BASE_DIR

    readme = (BASE_DIR / "README.md").read_text(encoding="utf-8")
    doc = analysis.scoring.__doc__ or ""
    start = doc.index("Every score is a sum")
    end = doc.index("Overall: the mean of the four scores, rounded half up.")
    assert doc[start:end] in readme
