"""Technology detection from the project's fingerprints: each named product, sorted, no versions."""

from __future__ import annotations

import json

import pytest
from selectolax.lexbor import LexborHTMLParser

from analysis.html_facts import analyze_page
from analysis.technologies import FINGERPRINTS_PATH, load_fingerprints

URL = "https://shop.example/"
REQUIRED = [
    "WordPress", "Shopify", "Next.js", "React", "Vue", "Angular", "jQuery", "Bootstrap",
    "Google Analytics", "Google Tag Manager", "Cloudflare", "nginx", "Apache", "Drupal",
    "Joomla", "Wix", "Squarespace", "Webflow", "Magento", "HubSpot",
]


def techs(head: str = "", body: str = "", headers=None, html_attrs: str = "") -> list[str]:
    html = f"<!doctype html><html {html_attrs}><head>{head}</head><body>{body}</body></html>"
    return analyze_page(html.encode(), URL, headers or [])["technologies"]


def test_fingerprint_file_names_every_required_product():
    data = json.loads(FINGERPRINTS_PATH.read_text(encoding="utf-8"))
    assert set(REQUIRED) <= set(data["technologies"])


def test_every_fingerprint_compiles_and_its_selectors_run():
    tree = LexborHTMLParser("<html><body><div id=x></div></body></html>")
    for fp in load_fingerprints():
        for selector in fp.dom:
            assert tree.css_first(selector) is None, (fp.name, selector)
        for implied in fp.implies:
            assert implied in {f.name for f in load_fingerprints()}


CASES = [
    # (expected name, head, body, headers, html attributes)
    ("WordPress", '<meta name="generator" content="WordPress 6.5">', "", [], ""),
    ("WordPress", '<link rel="stylesheet" href="/wp-content/themes/t/style.css?ver=6.5">', "",
     [], ""),
    ("Shopify", '<script src="//cdn.shopify.com/s/files/1/theme.js"></script>', "", [], ""),
    ("Shopify", "", "", [("X-ShopId", "123")], ""),
    ("Next.js", "", '<div id="__next"></div><script id="__NEXT_DATA__" type="application/json">'
     "{}</script>", [], ""),
    ("Next.js", "", "", [("X-Powered-By", "Next.js")], ""),
    ("React", "", '<div data-reactroot=""></div>', [], ""),
    ("React", '<script src="https://unpkg.com/react-dom@18.2.0/umd/react-dom.production.min.js">'
     "</script>", "", [], ""),
    ("Vue", "", '<div id="app" data-v-app=""></div>', [], ""),
    ("Vue", '<script src="/js/vue.global.prod.js"></script>', "", [], ""),
    ("Angular", "", '<app-root ng-version="17.1.0"></app-root>', [], ""),
    ("jQuery", '<script src="https://code.jquery.com/jquery-3.7.1.min.js"></script>', "", [], ""),
    ("jQuery", '<script src="/wp-includes/js/jquery/jquery.js?ver=3.7.1"></script>', "", [], ""),
    ("Bootstrap", '<link rel="stylesheet" href="/css/bootstrap.min.css">', "", [], ""),
    ("Bootstrap", '<script src="/js/bootstrap.bundle.min.js"></script>', "", [], ""),
    ("Google Analytics", '<script async src="https://www.googletagmanager.com/gtag/js?id=G-ABC123">'
     "</script>", "", [], ""),
    ("Google Analytics", "<script>(function(i,s,o,g,r,a,m){i['GoogleAnalyticsObject']=r;})"
     "</script>", "", [], ""),
    ("Google Tag Manager", "<script>(function(w,d,s,l,i){j.src='https://www.googletagmanager.com/"
     "gtm.js?id='+i;})(window,document,'script','dataLayer','GTM-ABCD12');</script>", "", [], ""),
    ("Cloudflare", "", "", [("Server", "cloudflare"), ("CF-RAY", "8a-LHR")], ""),
    ("Cloudflare", "", "", [("Set-Cookie", "__cf_bm=abc; path=/")], ""),
    ("nginx", "", "", [("Server", "nginx/1.25.3")], ""),
    ("Apache", "", "", [("Server", "Apache/2.4.58 (Ubuntu)")], ""),
    ("Apache", "", "", [("Server", "Apache")], ""),
    ("Drupal", '<meta name="Generator" content="Drupal 10 (https://www.drupal.org)">', "", [],
     ""),
    ("Drupal", "", "", [("X-Drupal-Cache", "HIT")], ""),
    ("Joomla", '<meta name="generator" content="Joomla! - Open Source Content Management">', "",
     [], ""),
    ("Wix", '<meta name="generator" content="Wix.com Website Builder">', "", [], ""),
    ("Wix", "", "", [("x-wix-request-id", "1")], ""),
    ("Squarespace", '<script src="https://static1.squarespace.com/static/vta/x.js"></script>', "",
     [], ""),
    ("Webflow", "", "", [], 'data-wf-site="5f0c" data-wf-page="5f0d"'),
    ("Webflow", '<meta content="Webflow" name="generator">', "", [], ""),
    ("Magento", '<script type="text/x-magento-init">{"*": {}}</script>', "", [], ""),
    ("Magento", "", "", [("Set-Cookie", "X-Magento-Vary=abc; path=/")], ""),
    ("HubSpot", '<script id="hs-script-loader" src="//js.hs-scripts.com/123.js"></script>', "",
     [], ""),
    ("HubSpot", "", "", [("Set-Cookie", "hubspotutk=1")], ""),
]


@pytest.mark.parametrize(("name", "head", "body", "headers", "attrs"), CASES)
def test_each_named_product_detected(name, head, body, headers, attrs):
    assert name in techs(head, body, headers, attrs)


def test_every_required_product_has_a_case():
    assert {case[0] for case in CASES} == set(REQUIRED)


def test_plain_page_has_no_technologies():
    assert techs("<title>x</title>", "<p>Hello</p>", [("Content-Type", "text/html")]) == []


def test_anchor_to_another_sites_asset_is_no_evidence():
    body = (
        '<a href="https://x.com/jquery.min.js">jq</a>'
        '<a href="https://cdn.shopify.com/s/files/theme.js">shop</a>'
        '<a href="/wp-content/uploads/report.pdf">wp</a>'
        '<a href="https://getbootstrap.com/dist/css/bootstrap.min.css">bs</a>'
        "<p>We love jQuery, React, WordPress and nginx.</p>"
    )
    assert techs("", body) == []


def test_sorted_without_versions_and_implied():
    head = (
        '<meta name="generator" content="WordPress 6.4.2">'
        '<script src="/wp-includes/js/jquery/jquery.min.js?ver=3.7.1"></script>'
        '<script src="/_next/static/chunks/main-abc.js"></script>'
    )
    result = techs(head, headers=[("Server", "nginx/1.25.3"), ("CF-Cache-Status", "HIT")])
    assert result == sorted(result)
    assert result == ["Cloudflare", "Next.js", "React", "WordPress", "jQuery", "nginx"]
    assert not any(ch.isdigit() for name in result for ch in name)


def test_apache_coyote_is_not_apache():
    assert "Apache" not in techs(headers=[("Server", "Apache-Coyote/1.1")])


def test_jquery_plugins_are_not_jquery():
    head = (
        '<script src="/js/jquery-ui.min.js"></script>'
        '<script src="/js/jquery.cookie.js"></script>'
    )
    assert "jQuery" not in techs(head)
