"""The page-analysis pool: what one page costs in a child process against in-process, and how
the two reported hostile payloads fare.

    python bench/page_budget.py [--pages 200]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from analysis.html_facts import analyze_page  # noqa: E402
from analysis.page_budget import PagePool, ParseBudgetExceeded  # noqa: E402

URL = "http://example.test/"


def typical_page() -> bytes:
    links = "".join(f"<li><a href='/p{i}'>Page {i}</a></li>" for i in range(150))
    text = "<p>" + "Lorem ipsum dolor sit amet. " * 400 + "</p>"
    return (f"<!doctype html><html lang=en><head><title>Typical</title>"
            f"<meta name=description content=d></head><body><h1>Typical</h1><ul>{links}</ul>"
            f"{text}</body></html>").encode()


def timed(call) -> float:
    started = time.perf_counter()
    call()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=int, default=200)
    args = parser.parse_args()
    body = typical_page()
    pool = PagePool(budget_seconds=10)
    try:
        first = timed(lambda: pool.analyse(body, URL, []))
        inproc = [timed(lambda: analyze_page(body, URL, [])) for _ in range(args.pages)]
        pooled = [timed(lambda: pool.analyse(body, URL, [])) for _ in range(args.pages)]
        print(f"typical page ({len(body) // 1024} KB): in-process "
              f"{statistics.median(inproc) * 1000:.2f} ms, in the pool "
              f"{statistics.median(pooled) * 1000:.2f} ms (median of {args.pages}); "
              f"first call with child start {first * 1000:.0f} ms")
        for name, payload in (("<select> + <option> x 600k", b"<select>" + b"<option>" * 600_000),
                              ("<rp> x 1.2M", b"<rp>" * 1_200_000)):
            try:
                seconds = timed(lambda payload=payload: pool.analyse(payload, URL, []))
                print(f"{name} ({len(payload) / 1e6:.1f} MB): analysed in {seconds:.2f} s")
            except ParseBudgetExceeded:
                print(f"{name}: stopped at the 10 s budget")
    finally:
        pool.close(abort=True)


if __name__ == "__main__":
    main()
