"""The crawl bench's baseline, run as its own process so its CPU time is its own.

A ``ThreadPoolExecutor(--concurrency)`` crawls every site breadth-first: robots.txt first
(protego), then the homepage and the internal links it finds, at most ``--pages`` pages per
site. Each task fetches with a thread-local ``httpx.Client`` and parses with selectolax
(title and links; hrefs resolved against the page URL, fragments dropped, only same-origin
links that robots.txt allows are followed). The main thread keeps the pool full, taking URLs
from the sites' frontiers in turn.

    python bench/crawl_baseline.py --concurrency 32 --pages 50 URL [URL ...]

prints one JSON line: pages, requests, seconds, cpu_seconds, max_rss_kb.
"""

from __future__ import annotations

import argparse
import json
import resource
import threading
import time
from collections import deque
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from urllib.parse import urldefrag, urljoin, urlsplit

import httpx
from protego import Protego
from selectolax.lexbor import LexborHTMLParser as HTMLParser

USER_AGENT = "bench-baseline/1.0"
_local = threading.local()


def client() -> httpx.Client:
    found = getattr(_local, "client", None)
    if found is None:
        found = _local.client = httpx.Client(timeout=30, headers={"User-Agent": USER_AGENT})
    return found


def fetch_robots(site: str) -> Protego:
    response = client().get(urljoin(site, "/robots.txt"))
    return Protego.parse(response.text if response.status_code == 200 else "")


def fetch_page(url: str) -> tuple[int, str | None, list[str]]:
    """(status, title, absolute links without fragments) of one page."""
    response = client().get(url)
    if response.status_code != 200 or "html" not in response.headers.get("content-type", ""):
        return response.status_code, None, []
    tree = HTMLParser(response.content)
    title_node = tree.css_first("title")
    title = title_node.text(strip=True) if title_node else None
    base = str(response.url)
    links = []
    for node in tree.css("a[href]"):
        href = node.attributes.get("href")
        if href:
            links.append(urldefrag(urljoin(base, href.strip()))[0])
    return response.status_code, title, links


class Site:
    def __init__(self, url: str, max_pages: int) -> None:
        self.url = url
        self.netloc = urlsplit(url).netloc
        self.robots: Protego | None = None
        self.frontier: deque[str] = deque([url])
        self.seen = {url}
        self.scheduled = 0
        self.max_pages = max_pages

    def take(self) -> str | None:
        if self.robots is None or self.scheduled >= self.max_pages or not self.frontier:
            return None
        self.scheduled += 1
        return self.frontier.popleft()

    def add(self, links: list[str]) -> None:
        for link in links:
            if link in self.seen or urlsplit(link).netloc != self.netloc:
                continue
            self.seen.add(link)
            if self.robots is None or self.robots.can_fetch(link, USER_AGENT):
                self.frontier.append(link)


def crawl(urls: list[str], max_pages: int, concurrency: int) -> dict:
    sites = [Site(url, max_pages) for url in urls]
    pages = requests = 0
    with ThreadPoolExecutor(concurrency) as pool:
        running: dict[Future, tuple[Site, str]] = {
            pool.submit(fetch_robots, site.url): (site, "robots") for site in sites}
        turn = 0
        while running:
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in done:
                site, kind = running.pop(future)
                requests += 1
                if kind == "robots":
                    site.robots = future.result()
                    continue
                status, _title, links = future.result()
                if status == 200:
                    pages += 1
                    site.add(links)
            idle = 0
            while len(running) < concurrency and idle < len(sites):
                site = sites[turn % len(sites)]
                turn += 1
                url = site.take()
                if url is None:
                    idle += 1
                    continue
                idle = 0
                running[pool.submit(fetch_page, url)] = (site, "page")
    return {"pages": pages, "requests": requests}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--pages", type=int, default=50)
    parser.add_argument("urls", nargs="+")
    args = parser.parse_args()
    cpu0 = time.process_time()
    started = time.monotonic()
    figures = crawl(args.urls, args.pages, args.concurrency)
    figures["seconds"] = time.monotonic() - started
    figures["cpu_seconds"] = time.process_time() - cpu0
    figures["max_rss_kb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps(figures), flush=True)


if __name__ == "__main__":
    main()
