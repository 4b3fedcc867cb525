"""Realistic generated sites for ``bench/crawl.py``, served from their own process.

Each site is one origin (its own port on 127.0.0.1) with a homepage ``/`` and pages
``/p1`` .. ``/p{pages-1}``. Every page is 30–57 KB of HTML: title, meta description, h1–h3,
paragraphs, images (some without alt), 20–40 internal links written as relative
(``p7``, ``./p7``), root-relative (``/p7``), absolute (``http://127.0.0.1:PORT/p7``) and
``#fragment`` hrefs, a link robots.txt disallows (``/private/…``), and 3–5 external links
(``*.example.test``: never resolvable, never fetched). Every page is reachable breadth-first
from the homepage. Content is generated once from a fixed seed, so both sides of the bench
see the same bytes; responses are HTTP/1.1 keep-alive, each delayed by ``--latency-ms``.

    python bench/realistic_sites.py --sites 20 --pages 50 --latency-ms 100

prints one JSON line ``{"urls": [...], "requests": N}`` once serving, then serves until
stdin closes (it then prints the request count per path kind and exits).
"""

from __future__ import annotations

import argparse
import html
import json
import random
import sys
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

WORDS = ("analysis market competitor pricing product service customer quality delivery "
         "support design platform growth strategy brand value team partner solution "
         "performance security cloud data insight report feature release update mobile "
         "search content audience campaign channel revenue retail online store shipping "
         "return warranty payment checkout account profile contact about careers press").split()
ROBOTS = b"User-agent: *\nDisallow: /private/\n"


def _sentence(rng: random.Random, words: int) -> str:
    text = " ".join(rng.choice(WORDS) for _ in range(words))
    return text[0].upper() + text[1:] + "."


def _href(rng: random.Random, port: int, path: str) -> str:
    """One of the spellings a real site uses for an internal link to ``path``."""
    kind = rng.randrange(6)
    if path == "/":
        return rng.choice(("/", f"http://127.0.0.1:{port}/", "/#top"))
    if kind == 0:
        return path.lstrip("/")                       # relative
    if kind == 1:
        return "./" + path.lstrip("/")                # relative with ./
    if kind == 2:
        return f"http://127.0.0.1:{port}{path}"      # absolute
    if kind == 3:
        return f"{path}#section-{rng.randrange(1, 5)}"  # with a fragment
    return path                                       # root-relative


def build_page(site: int, number: int, pages: int, port: int) -> bytes:
    """Page ``number`` (0 = homepage) of site ``site``: deterministic, 30–57 KB."""
    rng = random.Random(site * 100_003 + number)
    name = f"Competitor {site}"
    title = name if number == 0 else f"{name} — {_sentence(rng, 4)[:-1]}"
    targets = [f"/p{n}" for n in range(number + 1, min(pages, number + 6))]  # reachability
    others = ["/"] + [f"/p{n}" for n in range(1, pages)]
    while len(targets) < rng.randint(20, 40):
        targets.append(rng.choice(others))
    rng.shuffle(targets)
    links = [_href(rng, port, path) for path in targets] + ["#top", "#main"]
    if number % 5 == 0:
        links.append("/private/report")
    external = [f"https://partner{k}.example.test/{rng.choice(WORDS)}"
                for k in range(rng.randint(3, 5))]
    nav = "".join(f'<li><a href="{html.escape(h)}">{rng.choice(WORDS).title()}</a></li>'
                  for h in links[: len(links) // 2])
    body_links = links[len(links) // 2:]
    own = "" if number == 0 else f"p{number}"
    parts = [
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">",
        f"<title>{html.escape(title)}</title>",
        f'<meta name="description" content="{html.escape(_sentence(rng, 18))}">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f'<link rel="canonical" href="http://127.0.0.1:{port}/{own}">',
        '<link rel="stylesheet" href="/static/site.css"></head>',
        f'<body><a id="top"></a><header><nav><ul>{nav}</ul></nav></header><main id="main">',
        f"<h1>{html.escape(title)}</h1>",
    ]
    target_size = rng.randint(31_000, 53_000)
    size = sum(len(p) for p in parts)
    section = 0
    while size < target_size - 1200:
        section += 1
        chunk = [f'<h2 id="section-{section}">{_sentence(rng, 5)}</h2>']
        for sub in range(rng.randint(1, 2)):
            chunk.append(f"<h3>{_sentence(rng, 4)}</h3>")
            for _ in range(rng.randint(2, 4)):
                sentences = " ".join(_sentence(rng, rng.randint(8, 18))
                                     for _ in range(rng.randint(3, 7)))
                if body_links and rng.random() < 0.6:
                    href = body_links.pop()
                    sentences += f' <a href="{html.escape(href)}">Read more</a>'
                chunk.append(f"<p>{sentences}</p>")
            if rng.random() < 0.5:
                alt = "" if rng.random() < 0.3 else f' alt="{_sentence(rng, 3)[:-1]}"'
                chunk.append(f'<img src="/img/s{site}-{number}-{section}-{sub}.jpg"{alt} '
                             'width="640" height="360">')
        text = "".join(chunk)
        parts.append(text)
        size += len(text)
    rest = "".join(f'<a href="{html.escape(h)}">{rng.choice(WORDS)}</a> ' for h in body_links)
    ext = "".join(f'<li><a href="{h}" rel="noopener">{h}</a></li>' for h in external)
    parts.append(f"<p>{rest}</p></main><footer><ul>{ext}</ul>"
                 f"<p>Contact: hello@competitor{site}.example.test</p></footer></body></html>")
    return "\n".join(parts).encode()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # TCP_NODELAY, as production servers (nginx, ...) set on keep-alive connections. Without
    # it the body, written after the headers, waits for the client's delayed ACK: every
    # response took 40 ms more than the latency under test.
    disable_nagle_algorithm = True
    content: dict[str, bytes] = {}
    latency = 0.0
    counts: Counter = Counter()
    times: list = []  # (wall time received, wall time answered, port, path)
    lock = threading.Lock()

    def log_message(self, *_args) -> None:
        pass

    def do_GET(self) -> None:  # noqa: N802 - http.server API
        path = self.path.split("?", 1)[0]
        received = time.time()
        with self.lock:
            self.counts["requests"] += 1
            self.counts[f"{self.server.server_port}{path}"] += 1
        if self.latency:
            time.sleep(self.latency)
        if path == "/robots.txt":
            self._send(200, "text/plain", ROBOTS)
        elif path in self.content:
            self._send(200, "text/html; charset=utf-8", self.content[path])
        else:
            self._send(404, "text/html", b"<h1>not found</h1>")
        with self.lock:
            self.times.append((received, time.time(), self.server.server_port, path))

    def _send(self, status: int, content_type: str, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128

    def handle_error(self, request, client_address) -> None:
        pass  # a client closing a keep-alive connection is not news


def serve(sites: int, pages: int, latency: float) -> tuple[list[str], list[ThreadingHTTPServer],
                                                          Counter]:
    """Start ``sites`` servers in this process; returns their homepage URLs."""
    counts: Counter = Counter()
    times: list = _Handler.times
    servers, urls = [], []
    for index in range(sites):
        handler = type("Handler", (_Handler,), {"content": {}, "latency": latency,
                                                "counts": counts, "times": times})
        server = _QuietServer(("127.0.0.1", 0), handler)
        port = server.server_port
        handler.content.update({"/" if n == 0 else f"/p{n}": build_page(index, n, pages, port)
                                for n in range(pages)})
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        urls.append(f"http://127.0.0.1:{port}/")
    return urls, servers, counts


def timeline(times: list) -> dict:
    """Requests in flight over the whole run (time-weighted mean and peak), and per site: its
    first request received, its last answer sent, and how long it had no request in flight
    between the two (wall-clock seconds)."""
    if not times:
        return {"sites": {}, "in_flight_mean": 0.0, "in_flight_peak": 0}
    sites: dict[int, list] = {}
    for received, answered, port, _path in times:
        sites.setdefault(port, []).append((received, answered))
    per_site = {}
    for port, spans in sites.items():
        spans.sort()
        idle, covered = 0.0, spans[0][1]
        for received, answered in spans[1:]:
            idle += max(0.0, received - covered)
            covered = max(covered, answered)
        per_site[port] = {"first": spans[0][0], "last": max(a for _, a in spans),
                          "idle": idle, "requests": len(spans)}
    events = sorted([(r, 1) for r, _a, _p, _q in times] + [(a, -1) for _r, a, _p, _q in times])
    peak = current = 0
    for _when, step in events:  # an answer at the same instant as a request goes first
        current += step
        peak = max(peak, current)
    span = events[-1][0] - events[0][0]
    busy = sum(a - r for r, a, _p, _q in times)
    return {"sites": per_site, "in_flight_mean": busy / span if span > 0 else 0.0,
            "in_flight_peak": peak}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sites", type=int, default=20)
    parser.add_argument("--pages", type=int, default=50)
    parser.add_argument("--latency-ms", type=float, default=100)
    args = parser.parse_args()
    urls, servers, counts = serve(args.sites, args.pages, args.latency_ms / 1000)
    sizes = [len(page) for server in servers for page in server.RequestHandlerClass.content
             .values()]
    print(json.dumps({"urls": urls, "min_bytes": min(sizes), "max_bytes": max(sizes)}),
          flush=True)
    for line in sys.stdin:  # one line per "report"; EOF stops
        if line.strip() == "counts":
            with _Handler.lock:
                per_url = {k: v for k, v in counts.items() if k != "requests"}
                print(json.dumps({"requests": counts["requests"], "urls": len(per_url),
                                  "repeated": sum(v - 1 for v in per_url.values())}),
                      flush=True)
        elif line.strip() == "timeline":
            with _Handler.lock:
                print(json.dumps(timeline(_Handler.times)), flush=True)
        elif line.strip() == "reset":
            with _Handler.lock:
                counts.clear()
                _Handler.times.clear()
            print("{}", flush=True)
    for server in servers:
        server.shutdown()


if __name__ == "__main__":
    main()
