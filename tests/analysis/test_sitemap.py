"""Sitemaps against a real server: indexes, gzip, self-references, limits, hostile XML."""

from __future__ import annotations

import gzip

from analysis.sitemap import SitemapLimits, collect_sitemaps, parse_sitemap
from tests.analysis.conftest import Reply

NS = 'xmlns="http://www.sitemaps.org/schemas/sitemap/0.9"'


def urlset(locs: list[str]) -> bytes:
    items = "".join(f"<url><loc>{loc}</loc><priority>0.5</priority></url>" for loc in locs)
    return f'<?xml version="1.0" encoding="UTF-8"?><urlset {NS}>{items}</urlset>'.encode()


def index(locs: list[str]) -> bytes:
    items = "".join(f"<sitemap><loc>{loc}</loc></sitemap>" for loc in locs)
    return f'<?xml version="1.0"?><sitemapindex {NS}>{items}</sitemapindex>'.encode()


def xml(body: bytes) -> Reply:
    return Reply(body=body, content_type="application/xml")


def test_index_with_gzipped_child_and_self_reference(servers, fetcher):
    routes: dict = {}
    site = servers.serve(routes)  # routes are filled in once the port is known
    base = site.origin
    routes.update({
        "/sitemap_index.xml": xml(index([
            f"{base}/sitemap_index.xml",  # lists itself
            f"{base}/pages.xml.gz",
            f"{base}/posts.xml",
            f"{base}/posts.xml",  # listed twice
        ])),
        "/pages.xml.gz": Reply(
            body=gzip.compress(urlset([f"{base}/", f"{base}/a", f"{base}/b", f"{base}/a"])),
            content_type="application/x-gzip",
        ),
        "/posts.xml": xml(urlset([f"{base}/b", f"{base}/c", f" {base}/d "])),
    })
    result = collect_sitemaps([site.url("/sitemap_index.xml")], fetcher)
    assert result == {"found": True, "url_count": 5}  # /, a, b, c, d
    assert sorted(site.paths()) == ["/pages.xml.gz", "/posts.xml", "/sitemap_index.xml"]


def test_content_encoding_gzip_sitemap(servers, fetcher):
    routes: dict = {}
    site = servers.serve(routes)
    routes["/sitemap.xml"] = Reply(
        body=gzip.compress(urlset([site.url("/x"), site.url("/y")])),
        headers={"Content-Encoding": "gzip"}, content_type="application/xml",
    )
    assert collect_sitemaps([site.url("/sitemap.xml")], fetcher) == {"found": True, "url_count": 2}


def test_indexes_that_list_each_other_are_each_read_once(servers, fetcher):
    routes: dict = {}
    site = servers.serve(routes)
    routes["/a.xml"] = xml(index([site.url("/b.xml")]))
    routes["/b.xml"] = xml(index([site.url("/a.xml"), site.url("/pages.xml")]))
    routes["/pages.xml"] = xml(urlset([site.url("/p1")]))
    assert collect_sitemaps([site.url("/a.xml")], fetcher) == {"found": True, "url_count": 1}
    assert sorted(site.paths()) == ["/a.xml", "/b.xml", "/pages.xml"]


def test_index_depth_is_bounded(servers, fetcher):
    routes: dict = {}
    site = servers.serve(routes)
    for depth in range(6):
        routes[f"/level{depth}.xml"] = xml(index([site.url(f"/level{depth + 1}.xml")]))
    routes["/level6.xml"] = xml(urlset([site.url("/deep")]))
    result = collect_sitemaps(
        [site.url("/level0.xml")], fetcher, limits=SitemapLimits(max_depth=2)
    )
    assert result == {"found": True, "url_count": 0}
    assert site.paths() == ["/level0.xml", "/level1.xml", "/level2.xml"]


def test_file_count_is_bounded(servers, fetcher):
    routes: dict = {}
    site = servers.serve(routes)
    routes["/index.xml"] = xml(index([site.url(f"/s{i}.xml") for i in range(20)]))
    for i in range(20):
        routes[f"/s{i}.xml"] = xml(urlset([site.url(f"/page{i}")]))
    result = collect_sitemaps([site.url("/index.xml")], fetcher, limits=SitemapLimits(max_files=5))
    assert result == {"found": True, "url_count": 4}
    assert len(site.paths()) == 5


def test_gzip_bomb_sitemap_is_skipped(servers, fetcher):
    routes: dict = {}
    site = servers.serve(routes)
    bomb = gzip.compress(b"<urlset>" + b" " * (30 * 1024 * 1024) + b"</urlset>", 9)
    routes["/bomb.xml.gz"] = Reply(body=bomb, content_type="application/x-gzip")
    result = collect_sitemaps(
        [site.url("/bomb.xml.gz")], fetcher, limits=SitemapLimits(max_bytes=1024 * 1024)
    )
    assert result == {"found": False, "url_count": 0}


def test_missing_or_html_sitemap_is_not_found(servers, fetcher):
    routes: dict = {"/soft404.xml": Reply(body="<html><body>Not here</body></html>")}
    site = servers.serve(routes)
    result = collect_sitemaps([site.url("/sitemap.xml"), site.url("/soft404.xml")], fetcher)
    assert result == {"found": False, "url_count": 0}


def test_empty_urlset_is_found_with_zero_urls(servers, fetcher):
    site = servers.serve({"/sitemap.xml": xml(urlset([]))})
    assert collect_sitemaps([site.url("/sitemap.xml")], fetcher) == {"found": True, "url_count": 0}


def test_text_sitemap():
    parsed = parse_sitemap(b"https://example.com/a\nhttps://example.com/b\n\n")
    assert parsed.kind == "text"
    assert parsed.locs == ["https://example.com/a", "https://example.com/b"]
    assert parse_sitemap(b"hello world").kind == "invalid"


def test_entities_are_not_expanded():
    hostile = b"""<?xml version="1.0"?>
<!DOCTYPE urlset [<!ENTITY x SYSTEM "file:///etc/passwd">]>
<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">
<url><loc>https://example.com/&x;</loc></url></urlset>"""
    parsed = parse_sitemap(hostile)
    assert parsed.kind == "urlset"
    assert all("root:" not in loc for loc in parsed.locs)


def test_namespace_prefixes_and_missing_namespace_are_accepted():
    prefixed = (b'<s:urlset xmlns:s="http://www.sitemaps.org/schemas/sitemap/0.9">'
                b"<s:url><s:loc>https://e.com/1</s:loc></s:url></s:urlset>")
    assert parse_sitemap(prefixed).locs == ["https://e.com/1"]
    bare = b"<urlset><url><loc>https://e.com/2</loc></url></urlset>"
    assert parse_sitemap(bare).locs == ["https://e.com/2"]
