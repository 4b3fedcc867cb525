"""Hypothesis fuzz: random and mutated HTML never makes the analysers raise; types are kept."""

from __future__ import annotations

import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from analysis.comparison import compare
from analysis.html_facts import SECURITY_HEADERS, analyze_page, decode_body
from analysis.report import REPORT_KEYS, build_report
from analysis.scoring import SCORE_KEYS, score_report

FUZZ = settings(
    max_examples=200, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow]
)
URL = "https://fuzz.example/dir/page"

SEED = """<!doctype html><html lang="en"><head><meta charset="utf-8">
<title> Fuzz &amp; Co </title><meta name="description" content="Seed page">
<meta name="viewport" content="width=device-width"><base href="/base/">
<link rel="canonical" href="/canonical"><meta property="og:title" content="Seed">
<meta name="generator" content="WordPress 6.0"><link rel="stylesheet" href="/bootstrap.min.css">
<script src="/jquery.min.js"></script><script>gtag('config', 'G-XYZ');</script>
<script type="application/ld+json">{"@graph": [{"@type": ["Organization", "Thing"]}]}</script>
</head><body><noscript><img src="n.gif"></noscript><template><p>t</p></template>
<h1>Heading</h1><h2>Sub</h2><p>Write to info@fuzz.example or logo@2x.png</p>
<a href="#top">top</a><a href="other">rel</a><a href="https://ext.example:8080/">ext</a>
<a href="mailto:a%40fuzz.example?subject=x">m</a><a href="javascript:void(0)">j</a>
<a href="https://twitter.com/intent/tweet">s</a><a href="https://x.com/fuzz">x</a>
<img src="a.png" alt=""><img src="b.png"><svg><title>s</title><a href="/svg">v</a></svg>
</body></html>"""
SEED_BYTES = [
    SEED.encode("utf-8"),
    b"\xef\xbb\xbf" + SEED.encode("utf-8"),
    SEED.replace('charset="utf-8"', 'charset="iso-8859-1"').encode("latin-1", "replace"),
    b"\xff\xfe" + SEED.encode("utf-16-le"),
]
TOKENS = [
    "<", ">", "</", "/>", "<!--", "-->", "<![CDATA[", "]]>", "<html>", "<head>", "<body>",
    "<title>", "</title>", "<h1>", "</h1>", "<h2>", "<a href=", "<a href='#'>", "</a>",
    "<img", "<img alt>", " alt=''", "<noscript>", "</noscript>", "<script>", "</script>",
    "<style>", "</style>", "<template>", "</template>", "<svg>", "<math>", "<table>", "<td>",
    "<base href='//x.example/'>", "<meta charset=latin1>", "<meta name=description content=",
    "<link rel=canonical href=", "<meta property=og:x content=", '"', "'", "=", "&amp;",
    "&#0;", "&#x110000;", "&", "#", "?", "mailto:", "tel:", "http://", "https://[",
    "javascript:", "data:", "\\\\", "%", "%zz", "@", "a@b.co", "x@2x.png", ":99999", "\x00",
    "\ufeff", "\ud7ff", "é", "日本", "\u202e", "\n", "\t", " ", "{", "}", "[", "]", '"@type"',
    '"@graph"', ":", ",", "NaN", "<script type=application/ld+json>", "[[[[[[[[[[",
]

header_names = st.sampled_from(
    [*SECURITY_HEADERS, "Content-Type", "Server", "Set-Cookie", "X-Powered-By", "CF-RAY",
     "content-type", "X-Drupal-Cache", "Link"]
)
header_values = st.one_of(
    st.text(max_size=40),
    st.sampled_from(["text/html; charset=utf-8", "text/html; charset=bogus", "charset=utf-7",
                     "charset=", "text/html; charset=\"iso-8859-1\"", "nginx", "cloudflare",
                     "__cf_bm=1", "charset=unicode_escape", "charset=undefined", "charset=hex"]),
)
headers_strategy = st.lists(st.tuples(header_names, header_values), max_size=6)


@st.composite
def mutated_html(draw) -> bytes:
    """A seed document with a few random edits (delete, insert, duplicate, flip, truncate)."""
    data = bytearray(draw(st.sampled_from(SEED_BYTES)))
    for _ in range(draw(st.integers(1, 6))):
        op = draw(st.sampled_from(["delete", "insert", "token", "dup", "flip", "truncate"]))
        at = draw(st.integers(0, len(data)))
        if op == "delete":
            del data[at : at + draw(st.integers(1, 80))]
        elif op == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=40))
        elif op == "token":
            data[at:at] = draw(st.sampled_from(TOKENS)).encode("utf-8", "surrogatepass")
        elif op == "dup":
            data[at:at] = data[at : at + draw(st.integers(1, 200))]
        elif op == "flip" and data:
            index = min(at, len(data) - 1)
            data[index] ^= draw(st.integers(1, 255))
        elif op == "truncate":
            del data[at:]
    return bytes(data)


token_soup = st.lists(st.sampled_from(TOKENS) | st.text(max_size=8), max_size=60).map(
    lambda parts: "".join(parts).encode("utf-8", "surrogatepass")
)
any_html = st.one_of(st.binary(max_size=3000), mutated_html(), token_soup)


def assert_fact_types(facts: dict) -> None:
    assert set(facts) >= {"links", "security_headers", "word_count"}
    assert list(facts["security_headers"]) == list(SECURITY_HEADERS)
    assert all(isinstance(v, bool) for v in facts["security_headers"].values())
    for key in ("title", "meta_description", "canonical", "lang"):
        assert facts[key] is None or isinstance(facts[key], str), key
    assert facts["title"] != "" and facts["meta_description"] != ""
    assert isinstance(facts["has_viewport"], bool)
    assert isinstance(facts["h1"], list) and all(isinstance(h, str) for h in facts["h1"])
    for key in ("h2_count", "word_count", "internal_links", "external_links", "images",
                "images_missing_alt"):
        assert isinstance(facts[key], int) and facts[key] >= 0, key
    assert facts["images_missing_alt"] <= facts["images"]
    assert all(k.startswith("og:") and isinstance(v, str) for k, v in facts["open_graph"].items())
    for key in ("jsonld_types", "technologies", "emails"):
        assert isinstance(facts[key], list) and facts[key] == sorted(set(facts[key])), key
        assert all(isinstance(v, str) for v in facts[key])
    assert all(e == e.lower() and "@" in e for e in facts["emails"])
    assert all(isinstance(k, str) and isinstance(v, str)
               for k, v in facts["social_profiles"].items())
    assert all(isinstance(u, str) and u.startswith(("http://", "https://"))
               for u in facts["links"])
    assert len(facts["links"]) == len(set(facts["links"]))
    assert len(facts["links"]) <= facts["internal_links"]
    json.dumps(facts)  # JSON-serialisable (the app stores it)
    json.dumps(facts, ensure_ascii=False).encode("utf-8")  # no lone surrogates


@FUZZ
@given(body=any_html, headers=headers_strategy)
def test_analyze_page_never_raises(body, headers):
    assert_fact_types(analyze_page(body, URL, headers))


@FUZZ
@given(body=st.binary(max_size=2000), content_type=st.none() | st.text(max_size=60))
def test_decode_body_always_text(body, content_type):
    text = decode_body(body, content_type)
    assert isinstance(text, str)
    assert not text.startswith("\ufeff")


@FUZZ
@given(bodies=st.lists(any_html, min_size=1, max_size=4), statuses=st.lists(
    st.sampled_from([200, 200, 301, 404, 500, None]), min_size=4, max_size=4),
       times=st.lists(st.integers(0, 5000), min_size=4, max_size=4))
def test_build_score_compare_never_raise(bodies, statuses, times):
    records = []
    for index, body in enumerate(bodies):
        status = 200 if index == 0 else statuses[index]
        url = URL if index == 0 else f"https://fuzz.example/p{index}"
        analysed = status == 200
        records.append({
            "url": url, "final_url": url, "status_code": status, "content_type": "text/html",
            "response_time_ms": times[index], "page_bytes": len(body), "redirect_chain": [],
            "is_homepage": index == 0, "analysed": analysed,
            "error": None if analysed else "HTTP error",
            "facts": analyze_page(body, url, []) if analysed else None,
        })
    report = build_report(records, {"found": True, "sitemaps": ["x"]}, {"found": False})
    assert list(report) == list(REPORT_KEYS)
    assert isinstance(report["pages_crawled"], int) and report["pages_crawled"] >= 1
    assert all(isinstance(i["count"], int) and i["count"] > 0 for i in report["issues"])
    json.dumps(report)
    scores = score_report(report)
    assert set(scores) == set(SCORE_KEYS)
    assert all(isinstance(v, int) and 0 <= v <= 100 for v in scores.values())
    result = compare({"1": report, "2": None, "3": build_report(records[:1], None, None)})
    assert result["scores"]["2"] is None
    assert all("2" not in m["winners"] for m in result["metrics"])
    json.dumps(result)
