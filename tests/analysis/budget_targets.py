"""Functions run in page-analysis children by tests/analysis/test_page_budget.py."""

from __future__ import annotations

import os

from selectolax.lexbor import LexborHTMLParser


def echo(body: bytes, final_url: str, headers: list) -> dict:
    return {"bytes": len(body), "url": final_url, "pid": os.getpid()}


def spin(body: bytes, final_url: str, headers: list) -> dict:
    while True:
        pass


def raw_parse(body: bytes, final_url: str, headers: list) -> dict:
    """Lexbor on the raw body, without the pre-parse cut: the worst case."""
    tree = LexborHTMLParser(body)
    return {"nodes": len(tree.css("*"))}


def crash(body: bytes, final_url: str, headers: list) -> dict:
    os._exit(3)


def hog(body: bytes, final_url: str, headers: list) -> dict:
    return {"size": len(bytearray(4 * 1024 * 1024 * 1024))}


def fail(body: bytes, final_url: str, headers: list) -> dict:
    raise ValueError("bad page")


MARKER = b"SPIN-FOREVER"


def spin_on_marker(body: bytes, final_url: str, headers: list) -> dict:
    """The real analysis, except that a page holding MARKER never finishes."""
    from analysis.html_facts import analyze_page

    if MARKER in body:
        spin(body, final_url, headers)
    return analyze_page(body, final_url, headers)


def environment(body: bytes, final_url: str, headers: list) -> dict:
    return {"keys": sorted(os.environ)}
