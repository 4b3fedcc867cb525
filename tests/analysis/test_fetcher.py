"""Fetcher against real HTTP servers on 127.0.0.1 (allowed by an explicit allow-list)."""

from __future__ import annotations

import gzip
import threading
import time
import zlib

import pytest

from analysis.fetcher import FetchConfig, Fetcher, is_html_type
from analysis.politeness import Politeness
from tests.analysis.conftest import Reply, html, make_fetcher, redirect

MB = 1024 * 1024


def test_redirect_chain_is_recorded_in_order(servers, fetcher):
    site = servers.serve(
        {
            "/": redirect("/a", 301),
            "/a": redirect("/b#frag", 302),
            "/b": redirect("/final", 307),
            "/final": html("Final"),
        }
    )
    result = fetcher.fetch(site.url("/"))
    assert result.error is None
    assert result.status_code == 200
    assert result.final_url == site.url("/final")
    assert result.redirect_chain == [
        {"url": site.url("/"), "status": 301},
        {"url": site.url("/a"), "status": 302},
        {"url": site.url("/b"), "status": 307},
    ]
    assert b"Final" in result.body


def test_direct_answer_has_empty_chain_and_canonical_final_url(servers, fetcher):
    site = servers.serve({"/": html("Home")})
    result = fetcher.fetch(f"HTTP://127.0.0.1:{site.port}")
    assert result.error is None
    assert result.redirect_chain == []
    assert result.final_url == site.url("/")
    assert result.page_bytes == len(result.body) > 0


def test_redirect_loop_is_detected_and_named(servers, fetcher):
    site = servers.serve({"/": redirect("/a"), "/a": redirect("/b"), "/b": redirect("/a")})
    result = fetcher.fetch(site.url("/"))
    assert result.error is not None and result.error.startswith("redirect loop")
    assert site.url("/a") in result.error
    assert site.count("/a") == 1 and site.count("/b") == 1


def test_more_than_five_redirects_is_too_many(servers, fetcher):
    routes = {f"/{i}": redirect(f"/{i + 1}") for i in range(10)}
    site = servers.serve(routes)
    result = fetcher.fetch(site.url("/0"))
    assert result.error == "too many redirects (more than 5)"
    assert len(result.redirect_chain) == 6
    assert site.paths() == [f"/{i}" for i in range(6)]


def test_exactly_five_redirects_are_followed(servers, fetcher):
    routes = {f"/{i}": redirect(f"/{i + 1}") for i in range(5)}
    routes["/5"] = html("Five")
    site = servers.serve(routes)
    result = fetcher.fetch(site.url("/0"))
    assert result.error is None
    assert len(result.redirect_chain) == 5
    assert result.final_url == site.url("/5")


def test_server_error_is_reported_with_its_status(servers, fetcher):
    site = servers.serve({"/": Reply(status=500, body="boom")})
    result = fetcher.fetch(site.url("/"))
    assert result.status_code == 500
    assert result.error == "HTTP 500"
    assert result.body == b""


def test_redirect_to_unsupported_scheme_is_an_error(servers, fetcher):
    site = servers.serve({"/": redirect("ftp://example.com/file")})
    result = fetcher.fetch(site.url("/"))
    assert result.error is not None and "unsupported" in result.error


def _big_body(size: int, with_length: bool):
    def handler(h):
        h.send_response(200)
        h.send_header("Content-Type", "text/html")
        if with_length:
            h.send_header("Content-Length", str(size))
        h.end_headers()
        chunk = b"x" * 65536
        sent = 0
        while sent < size:
            h.wfile.write(chunk)
            sent += len(chunk)

    return handler


@pytest.mark.parametrize("with_length", [True, False])
def test_thirty_megabyte_body_is_refused(servers, with_length):
    site = servers.serve({"/": _big_body(30 * MB, with_length)})
    with make_fetcher(max_body_bytes=2 * MB) as f:
        result = f.fetch(site.url("/"))
    assert result.error == f"body exceeds {2 * MB} bytes"
    assert result.body == b""


def test_gzip_bomb_is_refused_by_the_decompressed_size(servers):
    bomb = gzip.compress(b"\0" * (30 * MB), compresslevel=9)
    assert len(bomb) < 100_000
    site = servers.serve(
        {"/": Reply(body=bomb, headers={"Content-Encoding": "gzip"})}
    )
    with make_fetcher(max_body_bytes=2 * MB) as f:
        result = f.fetch(site.url("/"))
    assert result.error == f"body exceeds {2 * MB} bytes"


def test_gzip_body_is_decoded_and_page_bytes_is_the_decoded_length(servers, fetcher):
    page = b"<html><title>Zipped</title>" + b"word " * 5000 + b"</html>"
    site = servers.serve(
        {"/": Reply(body=gzip.compress(page), headers={"Content-Encoding": "gzip"})}
    )
    result = fetcher.fetch(site.url("/"))
    assert result.error is None
    assert result.body == page
    assert result.page_bytes == len(page)
    assert site.hits[0].headers["Accept-Encoding"] == "gzip, deflate"


@pytest.mark.parametrize("raw", [False, True])
def test_deflate_body_zlib_wrapped_or_raw(servers, fetcher, raw):
    page = b"<html>" + b"deflated " * 1000 + b"</html>"
    if raw:
        packer = zlib.compressobj(wbits=-zlib.MAX_WBITS)
        data = packer.compress(page) + packer.flush()
    else:
        data = zlib.compress(page)
    site = servers.serve({"/": Reply(body=data, headers={"Content-Encoding": "deflate"})})
    result = fetcher.fetch(site.url("/"))
    assert result.error is None
    assert result.body == page


def test_corrupt_gzip_is_a_decoding_error(servers, fetcher):
    site = servers.serve(
        {"/": Reply(body=b"not gzip at all", headers={"Content-Encoding": "gzip"})}
    )
    result = fetcher.fetch(site.url("/"))
    assert result.error is not None and result.error.startswith("content decoding failed")


def test_unknown_content_encoding_is_an_error(servers, fetcher):
    site = servers.serve({"/": Reply(body=b"??", headers={"Content-Encoding": "br"})})
    result = fetcher.fetch(site.url("/"))
    assert result.error is not None and "unsupported content-encoding" in result.error


def test_slow_drip_is_ended_by_the_total_deadline(servers):
    def drip(h):
        h.send_response(200)
        h.send_header("Content-Type", "text/html")
        h.end_headers()
        for _ in range(60):  # one byte a second, for at most a minute
            h.wfile.write(b"x")
            h.wfile.flush()
            time.sleep(1.0)

    site = servers.serve({"/": drip})
    with make_fetcher(read_timeout=3.0, total_timeout=2.0) as f:
        started = time.monotonic()
        result = f.fetch(site.url("/"))
        elapsed = time.monotonic() - started
    assert result.error == "timeout: no complete response within 2 s"
    assert elapsed >= 2.0  # it waited for the deadline; the read timeout never fired
    assert elapsed < 30  # safety bound only


def test_slow_headers_are_ended_by_the_total_deadline(servers):
    def drip_status_line(h):
        for byte in b"HTTP/1.0 200 OK\r\nContent-Type: text/html\r\n\r\nhello":
            h.wfile.write(bytes([byte]))
            h.wfile.flush()
            time.sleep(0.5)

    site = servers.serve({"/": drip_status_line})
    with make_fetcher(read_timeout=3.0, total_timeout=1.5) as f:
        result = f.fetch(site.url("/"))
    assert result.error == "timeout: no complete response within 1.5 s"


def test_read_timeout_when_server_goes_silent(servers):
    release = threading.Event()

    def silent(h):
        release.wait(10)

    site = servers.serve({"/": silent})
    with make_fetcher(read_timeout=0.5, total_timeout=5.0) as f:
        result = f.fetch(site.url("/"))
    release.set()
    assert result.error == "timeout: no data for 0.5 s"


def test_connection_refused_is_a_network_error(counting_listener):
    listener = counting_listener("127.0.0.1")
    port = listener.port
    listener.close()
    with make_fetcher() as f:
        result = f.fetch(f"http://127.0.0.1:{port}/")
    assert result.status_code is None
    assert result.error is not None and result.error.startswith("network error")


def test_429_retry_after_is_honoured_then_succeeds(servers):
    state = {"n": 0}

    def limited(h):
        state["n"] += 1
        if state["n"] == 1:
            Reply(status=429, body="slow down", headers={"Retry-After": "1"}).send(h)
        else:
            html("OK").send(h)

    site = servers.serve({"/": limited})
    with make_fetcher(max_retry_after=2.0) as f:
        result = f.fetch(site.url("/"))
    assert result.error is None and result.status_code == 200
    first, second = site.times()
    assert second - first >= 1.0


def test_429_with_too_long_retry_after_gives_up_without_waiting(servers):
    site = servers.serve({"/": Reply(status=429, headers={"Retry-After": "3600"})})
    with make_fetcher(max_retry_after=2.0) as f:
        result = f.fetch(site.url("/"))
    assert result.error is not None and result.error.startswith("HTTP 429")
    assert site.count("/") == 1


def test_429_retries_are_bounded(servers):
    site = servers.serve({"/": Reply(status=429, headers={"Retry-After": "0"})})
    with make_fetcher(max_429_retries=2) as f:
        result = f.fetch(site.url("/"))
    assert result.error == "HTTP 429"
    assert site.count("/") == 3


def test_want_body_can_skip_non_html(servers, fetcher):
    site = servers.serve({"/file.pdf": Reply(body=b"%PDF" * 1000, content_type="application/pdf")})
    result = fetcher.fetch(site.url("/file.pdf"), want_body=is_html_type)
    assert result.error is None and result.body_skipped
    assert result.page_bytes == 0
    assert result.content_type == "application/pdf"


def test_truncate_keeps_the_first_bytes(servers, fetcher):
    site = servers.serve({"/robots.txt": Reply(body=b"a" * 5000, content_type="text/plain")})
    result = fetcher.fetch(site.url("/robots.txt"), max_bytes=1000, truncate=True)
    assert result.error is None
    assert result.body == b"a" * 1000


def test_headers_are_raw_pairs_with_repeats(servers, fetcher):
    def cookies(h):
        h.send_response(200)
        h.send_header("Content-Type", "text/html")
        h.send_header("Set-Cookie", "a=1")
        h.send_header("Set-Cookie", "b=2")
        h.send_header("X-Frame-Options", "DENY")
        h.end_headers()
        h.wfile.write(b"<html></html>")

    site = servers.serve({"/": cookies})
    result = fetcher.fetch(site.url("/"))
    cookie_values = [v for k, v in result.headers if k.lower() == "set-cookie"]
    assert cookie_values == ["a=1", "b=2"]
    assert ("X-Frame-Options", "DENY") in result.headers


def test_user_agent_names_rivalscope_with_a_url_and_no_cookies_are_replayed(servers, fetcher):
    site = servers.serve(
        {
            "/": Reply(body="<html></html>", headers={"Set-Cookie": "session=abc; Path=/"}),
            "/next": html("Next"),
        }
    )
    fetcher.fetch(site.url("/"))
    fetcher.fetch(site.url("/next"))
    first, second = site.hits
    assert "Rivalscope" in first.headers["User-Agent"]
    assert "+http" in first.headers["User-Agent"]
    assert "Cookie" not in second.headers


def test_environment_proxy_is_ignored(servers, monkeypatch):
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")
    monkeypatch.setenv("ALL_PROXY", "http://127.0.0.1:9")
    site = servers.serve({"/": html("Direct")})
    with make_fetcher() as f:
        result = f.fetch(site.url("/"))
    assert result.error is None


def test_politeness_gates_each_redirect_hop(servers):
    site = servers.serve({"/": redirect("/next"), "/next": html("Next")})
    gate = Politeness(default_delay=0.4)
    with make_fetcher() as f:
        result = f.fetch(site.url("/"), politeness=gate)
    assert result.error is None
    first, second = site.times()
    assert second - first >= 0.4


def test_response_time_is_measured_to_the_full_body(servers, fetcher):
    def slowish(h):
        h.send_response(200)
        h.send_header("Content-Type", "text/html")
        h.end_headers()
        h.wfile.write(b"<html>")
        h.wfile.flush()
        time.sleep(0.3)
        h.wfile.write(b"</html>")

    site = servers.serve({"/": slowish})
    result = fetcher.fetch(site.url("/"))
    assert result.error is None
    assert result.response_time_ms >= 300


def test_invalid_url_is_reported_not_raised(fetcher):
    assert fetcher.fetch("http://exa mple.com:99999/").error.startswith("invalid URL")
    assert fetcher.fetch("ftp://example.com/").error.startswith("invalid URL")
    assert fetcher.fetch("http://[zz]/").error.startswith("invalid URL")
    assert fetcher.fetch("http://[::1/").error.startswith("invalid URL")


def test_fetcher_is_usable_from_several_threads(servers):
    site = servers.serve({}, fallback=html("Any"))
    results = []
    with make_fetcher() as f:
        threads = [
            threading.Thread(target=lambda i=i: results.append(f.fetch(site.url(f"/p{i}"))))
            for i in range(8)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
    assert len(results) == 8 and all(r.error is None for r in results)


def test_fetch_config_accepts_a_list_of_networks():
    config = FetchConfig(allow_networks=[])
    assert config.allow_networks == ()
    with Fetcher(config) as f:
        assert f.backend.allow_networks == ()
