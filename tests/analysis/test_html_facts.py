"""analyze_page / decode_body on crafted bytes: every fact key and each definition's edges."""

from __future__ import annotations

import json

import pytest

from analysis.html_facts import SECURITY_HEADERS, analyze_page, decode_body
from analysis.parse_budget import truncate_for_parser

URL = "https://example.com/"
FACT_KEYS = {
    "security_headers", "title", "meta_description", "canonical", "lang", "has_viewport", "h1",
    "h2_count", "word_count", "internal_links", "external_links", "images",
    "images_missing_alt", "open_graph", "jsonld_types", "technologies", "emails",
    "social_profiles", "links", "links_total",
}


def facts(html: str | bytes, url: str = URL, headers: list[tuple[str, str]] | None = None):
    body = html.encode("utf-8") if isinstance(html, str) else html
    return analyze_page(body, url, headers or [])


def page(head: str = "", body: str = "") -> str:
    return f"<!doctype html><html><head>{head}</head><body>{body}</body></html>"


# --- shape -----------------------------------------------------------------------------------


def test_keys_and_json_serialisable():
    result = facts(page("<title>x</title>", "<p>hi</p>"))
    assert set(result) == FACT_KEYS
    assert json.loads(json.dumps(result)) == result


def test_empty_body_gives_empty_facts():
    result = analyze_page(b"", URL, [])
    assert result["title"] is None
    assert result["meta_description"] is None
    assert result["canonical"] is None
    assert result["lang"] is None
    assert result["has_viewport"] is False
    assert result["h1"] == [] and result["h2_count"] == 0 and result["word_count"] == 0
    assert result["internal_links"] == result["external_links"] == 0
    assert result["images"] == result["images_missing_alt"] == 0
    assert result["open_graph"] == {} and result["jsonld_types"] == []
    assert result["technologies"] == [] and result["emails"] == []
    assert result["social_profiles"] == {} and result["links"] == []


# --- security headers ------------------------------------------------------------------------


def test_security_headers_exact_keys_case_insensitive():
    headers = [
        ("Strict-Transport-Security", "max-age=1"),
        ("X-FRAME-OPTIONS", "DENY"),
        ("referrer-policy", "no-referrer"),
        ("X-XSS-Protection", "1"),
    ]
    result = facts(page(), url="http://example.com/", headers=headers)["security_headers"]
    assert list(result) == list(SECURITY_HEADERS)
    assert result == {
        "strict-transport-security": True,  # presence counts over plain HTTP too
        "content-security-policy": False,
        "x-frame-options": True,
        "x-content-type-options": False,
        "referrer-policy": True,
        "permissions-policy": False,
    }


def test_meta_http_equiv_is_not_a_header():
    html = page('<meta http-equiv="Content-Security-Policy" content="default-src \'self\'">')
    assert facts(html)["security_headers"]["content-security-policy"] is False


# --- decoding --------------------------------------------------------------------------------


def test_latin1_charset_from_header():
    body = page("<title>Caf\xe9</title>", "<p>na\xefve r\xe9sum\xe9</p>").encode("latin-1")
    result = analyze_page(body, URL, [("Content-Type", "text/html; charset=ISO-8859-1")])
    assert result["title"] == "Café"
    assert result["word_count"] == 2


def test_latin1_charset_from_meta():
    body = page('<meta charset="iso-8859-1"><title>Caf\xe9 cr\xe8me</title>').encode("latin-1")
    assert analyze_page(body, URL, [("Content-Type", "text/html")])["title"] == "Café crème"


def test_meta_http_equiv_content_type_charset():
    head = '<meta http-equiv="Content-Type" content="text/html; charset=windows-1252">'
    body = page(head + "<title>\u201cquoted\u201d</title>").encode("cp1252")
    assert analyze_page(body, URL, [])["title"] == "\u201cquoted\u201d"


def test_meta_charset_beyond_1024_bytes_is_ignored():
    body = ("<!--" + "x" * 1100 + '--><meta charset="iso-8859-1"><title>Caf\xe9</title>')
    raw = body.encode("latin-1")
    assert decode_body(raw, None).endswith("Caf\ufffd</title>")


def test_header_charset_wins_over_meta():
    body = page('<meta charset="iso-8859-1"><title>Café</title>').encode("utf-8")
    result = analyze_page(body, URL, [("content-type", 'text/html; charset="utf-8"')])
    assert result["title"] == "Café"


def test_utf8_bom_detected_and_stripped():
    body = b"\xef\xbb\xbf" + page("<title>Caf\xc3\xa9</title>").encode("latin-1")
    assert decode_body(body, "text/html").startswith("<!doctype")
    assert analyze_page(body, URL, [])["title"] == "Café"


def test_bom_wins_over_meta_charset():
    text = page('<meta charset="iso-8859-1"><title>Ünïcode</title>')
    assert decode_body(b"\xef\xbb\xbf" + text.encode("utf-8"), None) == text


def test_utf16_bom():
    text = page("<title>Grüße</title>")
    body = b"\xff\xfe" + text.encode("utf-16-le")
    assert analyze_page(body, URL, [])["title"] == "Grüße"


def test_header_charset_wins_over_bom_and_bom_char_never_kept():
    body = b"\xef\xbb\xbf" + b"<title>ok</title>"
    assert decode_body(body, "text/html; charset=utf-8") == "<title>ok</title>"


def test_unknown_or_refused_header_charset_falls_through():
    body = page('<meta charset="latin1"><title>Caf\xe9</title>').encode("latin-1")
    bogus = [("Content-Type", "text/html; charset=bogus")]
    assert analyze_page(body, URL, bogus)["title"] == "Café"
    assert "Caf\xe9" in decode_body(body, "text/html; charset=utf-7")


def test_default_utf8_with_replacement():
    assert decode_body(b"<p>a\xffb</p>", None) == "<p>a\ufffdb</p>"
    assert facts(b"<title>a\xffb</title>")["title"] == "a\ufffdb"


# --- title, description, canonical, lang, viewport --------------------------------------------


def test_title_entities_decoded_and_whitespace_collapsed():
    html = page("<title>\n  Tom &amp; Jerry&#39;s\t&lt;Shop&gt;   &eacute;  </title>")
    assert facts(html)["title"] == "Tom & Jerry's <Shop> é"


@pytest.mark.parametrize("head", ["<title></title>", "<title>  \n </title>", ""])
def test_empty_or_absent_title_is_null(head):
    assert facts(page(head))["title"] is None


def test_first_title_wins_and_svg_title_is_not_the_document_title():
    html = page("<title>Real</title><title>Second</title>", "<svg><title>icon</title></svg>")
    assert facts(html)["title"] == "Real"
    assert facts(page("", "<svg><title>icon</title></svg>"))["title"] is None


def test_meta_description_rules():
    assert facts(page('<meta name="Description" content=" A  &amp; B ">'))[
        "meta_description"
    ] == "A & B"
    assert facts(page('<meta name="description" content="   ">'))["meta_description"] is None
    assert facts(page('<meta name="description">'))["meta_description"] is None
    assert facts(page('<meta property="description" content="x">'))["meta_description"] is None
    two = '<meta name="description" content="first"><meta name="description" content="second">'
    assert facts(page(two))["meta_description"] == "first"


def test_canonical_resolved_first_wins_null_without_href():
    head = '<link rel="canonical" href="/page?a=1"><link rel="canonical" href="/other">'
    assert facts(page(head), url="https://example.com/dir/x")["canonical"] == (
        "https://example.com/page?a=1"
    )
    assert facts(page('<link rel="Alternate Canonical" href="b">'), url="https://e.com/d/x")[
        "canonical"
    ] == "https://e.com/d/b"
    assert facts(page('<link rel="canonical">'))["canonical"] is None
    first_has_no_href = '<link rel="canonical"><link rel="canonical" href="/x">'
    assert facts(page(first_has_no_href))["canonical"] is None
    assert facts(page())["canonical"] is None


def test_canonical_resolves_against_base_href():
    head = '<base href="https://cdn.example.org/sub/"><link rel="canonical" href="p">'
    assert facts(page(head))["canonical"] == "https://cdn.example.org/sub/p"


def test_lang_as_written_or_null():
    assert facts('<html lang="en-GB"><title>x</title></html>')["lang"] == "en-GB"
    assert facts('<html LANG="De"><p>x</p></html>')["lang"] == "De"
    assert facts("<html><p>x</p></html>")["lang"] is None
    assert facts("<p>x</p>")["lang"] is None


def test_viewport():
    assert facts(page('<meta name="viewport" content="width=device-width">'))["has_viewport"]
    assert facts(page('<meta name="Viewport">'))["has_viewport"] is True
    assert facts(page('<meta name="description" content="viewport">'))["has_viewport"] is False


# --- headings and words -----------------------------------------------------------------------


def test_h1_texts_in_order_and_h2_count():
    body = "<h1>First <em>one</em></h1><h2>a</h2><h1></h1><h2>b</h2><h2></h2><h1> Third\n x</h1>"
    result = facts(page("", body))
    assert result["h1"] == ["First one", "", "Third x"]
    assert result["h2_count"] == 3


def test_word_count_ignores_script_style_noscript_template():
    body = (
        "<p>one two</p><script>var three = four;</script><style>p { five: six }</style>"
        "<noscript>seven eight</noscript><template><p>nine ten</p></template>"
        "<div hidden>eleven</div><p>twelve &mdash; - !! 13</p>"
    )
    # hidden elements count (no CSS is evaluated); tokens without a letter/digit do not
    assert facts(page("<title>not body text</title>", body))["word_count"] == 5


def test_word_count_joins_text_nodes_with_a_space():
    assert facts(page("", "<p>wo<b>rd</b></p>"))["word_count"] == 2
    assert facts(page("", "<p>a<!-- c -->b</p>"))["word_count"] == 2


# --- links ------------------------------------------------------------------------------------


def test_link_classification():
    body = """
      <a href="/a">1</a><a href="/a">dup</a><a href="#top">frag</a><a href="">self</a>
      <a href="https://EXAMPLE.com:443/b#x">same</a><a href="sub/page">rel</a>
      <a href="https://other.org/">ext</a><a href="//cdn.other.org/x">ext2</a>
      <a href="http://example.com/">other scheme port 80</a>
      <a href="https://example.com:8443/">same host other port</a>
      <a href="mailto:a@example.com">m</a><a href="tel:+1">t</a>
      <a href="javascript:void(0)">j</a><a href="data:text/html,hi">d</a>
      <a href="ftp://example.com/">ftp</a><a>no href</a><link href="/not-a-link">
    """
    result = facts(page("", body), url="https://example.com/dir/")
    assert result["internal_links"] == 6
    assert result["external_links"] == 4
    assert result["links"] == [
        "https://example.com/a",
        "https://example.com/dir/",
        "https://example.com/b",
        "https://example.com/dir/sub/page",
    ]


def test_fragment_only_href_is_internal_even_with_foreign_base():
    head = '<base href="https://elsewhere.net/">'
    result = facts(page(head, '<a href="#x">x</a><a href="p">p</a>'))
    assert result["internal_links"] == 1
    assert result["external_links"] == 1
    assert result["links"] == ["https://example.com/"]


def test_base_href_resolution_for_links():
    head = '<base href="/shop/">'
    body = '<a href="item?id=1#reviews">i</a><a href="../about">a</a>'
    result = facts(page(head, body), url="https://example.com/x/y")
    assert result["links"] == ["https://example.com/shop/item?id=1", "https://example.com/about"]
    assert result["internal_links"] == 2


def test_port_matters_for_internal():
    html = page("", '<a href="http://127.0.0.1:8001/">a</a><a href="http://127.0.0.1:8002/p">b</a>')
    result = facts(html, url="http://127.0.0.1:8001/")
    assert (result["internal_links"], result["external_links"]) == (1, 1)
    assert result["links"] == ["http://127.0.0.1:8001/"]


def test_href_whitespace_and_backslashes_cleaned():
    body = (
        '<a href="  /a\n\tb c  ">x</a><a href="\\\\evil.example/x">y</a>'
        '<a href="/caf\u00e9?q=a b">z</a>'
    )
    result = facts(page("", body))
    assert result["links"] == ["https://example.com/ab%20c", "https://example.com/caf%C3%A9?q=a%20b"]
    assert result["external_links"] == 1


def test_broken_href_values_do_not_count():
    body = '<a href="http://[::1">bad</a><a href="https://example.com:99999/">bad port</a>'
    result = facts(page("", body))
    assert result["internal_links"] == 0 and result["external_links"] == 0


# --- images -----------------------------------------------------------------------------------


def test_images_alt_empty_is_not_missing_and_noscript_counts():
    body = (
        '<img src="a" alt=""><img src="b"><img src="c" alt="C"><img src="d" alt>'
        '<noscript><img src="e"></noscript><picture><img src="f"></picture>'
    )
    result = facts(page("<noscript><img src=g></noscript>", body))
    assert result["images"] == 7
    assert result["images_missing_alt"] == 4


# --- open graph, json-ld ----------------------------------------------------------------------


def test_open_graph_first_occurrence_wins():
    head = (
        '<meta property="og:title" content="First"><meta property="og:title" content="Second">'
        '<meta property="OG:Image" content="/i.png"><meta property="twitter:card" content="x">'
        '<meta name="og:type" content="named not property"><meta property="og:" content="z">'
        '<meta property="og:description">'
    )
    assert facts(page(head))["open_graph"] == {
        "og:title": "First",
        "og:image": "/i.png",
        "og:description": "",
    }


def test_jsonld_graph_list_types_invalid_skipped():
    blocks = [
        '{"@context": "https://schema.org", "@type": "Organization", "name": "A"}',
        '{"@context": "https://schema.org", "@graph": [{"@type": "WebSite"},'
        ' {"@type": ["Product", "Thing"]}, "junk", {"no": "type"}]}',
        '[{"@type": "BreadcrumbList"}, {"@type": "Organization"}]',
        '{"@type": "Event",}',  # trailing comma: not strict JSON
        '{"@type": "Broken"',
        '{"@type": "NotANumber", "v": NaN}',
        '<!-- {"@type": "Commented"} -->',
        '{"@type": "Nested", "author": {"@type": "Person"}}',
        '{"@type": 42}',
    ]
    head = "".join(f'<script type="application/ld+json">{b}</script>' for b in blocks)
    head += '<script type="application/json">{"@type": "NotLd"}</script>'
    head += '<script type="Application/LD+JSON; charset=utf-8">{"@type": "Place"}</script>'
    assert facts(page(head))["jsonld_types"] == [
        "BreadcrumbList", "Nested", "Organization", "Place", "Product", "Thing", "WebSite",
    ]


# --- contacts on a page -----------------------------------------------------------------------


def test_emails_on_page_mailto_and_visible_text():
    body = (
        '<a href="mailto:Sales%40Example.com?subject=Hello%20there">write</a>'
        '<a href="MAILTO:a@example.com,b@example.com">both</a>'
        "<p>Support: HELP@example.com. Retina: logo@2x.png icon@3x.webp</p>"
        "<script>var hidden = 'script@example.com';</script>"
        "<noscript>noscript@example.com</noscript>"
    )
    assert facts(page("", body))["emails"] == [
        "a@example.com", "b@example.com", "help@example.com", "sales@example.com",
    ]


def test_social_profiles_on_page():
    body = (
        '<a href="https://twitter.com/intent/tweet?text=hi">share</a>'
        '<a href="https://www.facebook.com/sharer/sharer.php?u=x">share</a>'
        '<a href="https://www.linkedin.com/shareArticle?mini=true">share</a>'
        '<a href="https://x.com/acme">x</a><a href="https://twitter.com/other">later</a>'
        '<a href="https://www.linkedin.com/company/acme/">li</a>'
    )
    assert facts(page("", body))["social_profiles"] == {
        "twitter": "https://x.com/acme",
        "linkedin": "https://www.linkedin.com/company/acme/",
    }


def test_technologies_from_page():
    head = '<meta name="generator" content="WordPress 6.4.2">'
    result = facts(page(head), headers=[("Server", "nginx/1.25.3")])
    assert result["technologies"] == ["WordPress", "nginx"]


# --- parser work bound ------------------------------------------------------------------------


def test_ordinary_pages_are_never_cut():
    body = (
        "<div><ul>" + "<li><a href='/x'>x</a><p>text<br><img src=i>" * 5000 + "</ul></div>"
        "<svg>" + "<path d='M0'/><rect/>" * 5000 + "</svg>"
        + "<section><div></div></section>" * 5000
    )
    ordinary = page("<title>t</title>", body)
    assert truncate_for_parser(ordinary, budget=5_000_000) == ordinary


def test_pathologically_deep_document_is_cut_before_parsing():
    hostile = "<p>start words</p>" + "<div>" * 60_000 + "deep" + "</div>" * 60_000
    cut = truncate_for_parser(hostile, budget=10_000_000)
    assert hostile.startswith(cut) and len(cut) < len(hostile) // 2
    sneaky = "<x-a/>" * 20_000 + "<div></div>" * 20_000  # "/>" does not close HTML elements
    assert len(truncate_for_parser(sneaky, budget=10_000_000)) < len(sneaky)
    # the facts of what precedes the cut survive
    assert facts(hostile)["word_count"] >= 2


def test_link_list_is_capped_but_counts_stay_exact():
    body = "".join(f"<a href='/p{i}'>p</a>" for i in range(3000)) + "<a href='/p1'>again</a>"
    result = facts(page("", body))
    assert len(result["links"]) == 1000 and result["links"][0] == URL.rstrip("/") + "/p0"
    assert result["links_total"] == 3000
    assert result["internal_links"] == 3001
