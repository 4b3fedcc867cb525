"""The pure change diff: kinds, noise rules and property tests (hypothesis)."""

from __future__ import annotations

import copy
import json

from hypothesis import given, settings
from hypothesis import strategies as st

from analysis.changes import KINDS, Change, diff, mirrored

HEADERS = ("strict-transport-security", "content-security-policy", "x-frame-options",
           "x-content-type-options", "referrer-policy", "permissions-policy")
TECHS = ("WordPress", "nginx", "React", "jQuery", "Cloudflare", "Shopify")
text = st.text(alphabet="abcXYZ é-", min_size=1, max_size=12).filter(lambda s: s.strip())


@st.composite
def reports(draw) -> dict:
    """A complete report with random content."""
    return {
        "final_url": "https://example.test/", "status_code": 200, "redirect_chain": [],
        "response_time_ms": draw(st.integers(1, 5000)), "page_bytes": 100, "https": True,
        "security_headers": {h: draw(st.booleans()) for h in HEADERS},
        "title": draw(st.none() | text), "meta_description": draw(st.none() | text),
        "canonical": draw(st.none() | st.just("https://example.test/")),
        "lang": draw(st.sampled_from([None, "en", "de"])),
        "has_viewport": True, "h1": draw(st.lists(text, max_size=3)), "h2_count": 0,
        "word_count": draw(st.integers(0, 3000)),
        "internal_links": 0, "external_links": 0, "images": 0, "images_missing_alt": 0,
        "open_graph": draw(st.dictionaries(st.sampled_from(["og:title", "og:type"]), text)),
        "jsonld_types": [],
        "technologies": sorted(draw(st.sets(st.sampled_from(TECHS)))),
        "robots": {"found": draw(st.booleans()), "disallow_count": draw(st.integers(0, 3)),
                   "crawl_delay": None, "sitemaps": []},
        "sitemap": {"found": True, "url_count": draw(st.integers(0, 20))},
        "emails": sorted(draw(st.sets(st.sampled_from(["a@x.test", "b@x.test"])))),
        "social_profiles": draw(st.dictionaries(
            st.sampled_from(["twitter", "github"]),
            st.sampled_from(["https://x.com/a", "https://github.com/b"]))),
        "pages_crawled": 1, "issues": [],
    }


scores = st.fixed_dictionaries({k: st.integers(0, 100) for k in (
    "seo", "performance", "security", "content", "overall")})
pages = st.sets(st.sampled_from([f"https://example.test/p{i}" for i in range(8)]))


def _key(change: Change) -> str:
    return json.dumps(change.as_dict(), sort_keys=True)


@settings(max_examples=150, deadline=None)
@given(reports(), scores, pages)
def test_self_diff_is_empty(report, score, urls):
    assert diff(report, copy.deepcopy(report), before_scores=score, after_scores=score,
                before_pages=urls, after_pages=set(urls)) == []


@settings(max_examples=150, deadline=None)
@given(st.none() | reports(), st.none() | reports(), scores, scores, pages, pages)
def test_a_to_b_mirrors_b_to_a(a, b, sa, sb, pa, pb):
    forward = diff(a, b, before_scores=sa, after_scores=sb, before_pages=pa, after_pages=pb)
    backward = diff(b, a, before_scores=sb, after_scores=sa, before_pages=pb, after_pages=pa)
    assert sorted(map(_key, map(mirrored, forward))) == sorted(map(_key, backward))
    assert all(change.kind in KINDS for change in forward)


def _one_field_edits(report: dict) -> list[tuple[str, dict]]:
    """(expected kind, edited copy) for one change in one field."""
    edits = []

    def edit(kind, fn):
        clone = copy.deepcopy(report)
        fn(clone)
        edits.append((kind, clone))

    edit("title", lambda r: r.update(title=(r["title"] or "") + " new"))
    edit("meta_description", lambda r: r.update(meta_description="Other words entirely"))
    edit("canonical", lambda r: r.update(canonical="https://example.test/other"))
    edit("lang", lambda r: r.update(lang="fr"))
    edit("h1", lambda r: r.update(h1=[*r["h1"], "Brand new heading"]))
    edit("open_graph", lambda r: r["open_graph"].update({"og:image": "https://i.test/a.png"}))
    missing = [t for t in TECHS if t not in r_techs(report)]
    if missing:
        edit("technology_added", lambda r: r.update(technologies=[*r["technologies"],
                                                                  missing[0]]))
    if report["technologies"]:
        edit("technology_removed", lambda r: r.update(technologies=r["technologies"][1:]))
    edit("email_added", lambda r: r.update(emails=[*r["emails"], "new@x.test"]))
    edit("social_added", lambda r: r["social_profiles"].update(
        {"linkedin": "https://linkedin.com/company/z"}))
    header = HEADERS[0]
    kind = "security_header_lost" if report["security_headers"][header] else \
        "security_header_gained"
    edit(kind, lambda r: r["security_headers"].update(
        {header: not r["security_headers"][header]}))
    edit("robots_changed", lambda r: r["robots"].update(
        disallow_count=r["robots"]["disallow_count"] + 1))
    edit("sitemap_changed", lambda r: r["sitemap"].update(url_count=r["sitemap"]["url_count"]
                                                          + 1))
    return edits


def r_techs(report: dict) -> list[str]:
    return report["technologies"]


@settings(max_examples=60, deadline=None)
@given(reports())
def test_a_single_field_change_gives_exactly_one_record(report):
    for kind, edited in _one_field_edits(report):
        changes = diff(report, edited)
        assert [c.kind for c in changes] == [kind], (kind, changes)


@settings(max_examples=60, deadline=None)
@given(reports(), scores, st.sampled_from(["seo", "performance", "security", "content",
                                           "overall"]), st.integers(5, 40))
def test_one_score_moving_by_five_or_more_is_one_record(report, score, key, delta):
    moved = dict(score, **{key: score[key] + delta if score[key] + delta <= 100
                           else score[key] - delta})
    changes = diff(report, report, before_scores=score, after_scores=moved)
    assert [(c.kind, c.after["score"]) for c in changes] == [("score_changed", key)]


def test_noise_is_not_a_change():
    from tests.routes.api_support import sample_report

    a = sample_report("Acme  Corp", h1=["One", "Two"], technologies=["nginx", "React"],
                      emails=["b@x.test", "a@x.test"], word_count=1000, response_time_ms=100)
    b = sample_report(" Acme Corp\n", h1=["Two", "One"], technologies=["React", "nginx"],
                      emails=["a@x.test", "b@x.test"], word_count=1090, response_time_ms=4000)
    assert diff(a, b, before_scores={"seo": 50}, after_scores={"seo": 54}) == []
    assert [c.kind for c in diff(a, dict(b, word_count=1200))] == ["word_count"]


def test_site_down_and_up_and_pages():
    from tests.routes.api_support import sample_report

    report = sample_report()
    assert diff(report, None) == [Change("site_down", report["final_url"], None)]
    assert diff(None, report) == [Change("site_up", None, report["final_url"])]
    many = {f"https://e.test/n{i}" for i in range(70)}
    changes = diff(report, report, before_pages={"https://e.test/"},
                   after_pages={"https://e.test/"} | many)
    assert len(changes) == 1 and changes[0].kind == "pages_added"
    assert changes[0].after["count"] == 70 and len(changes[0].after["urls"]) == 50
