"""Serve ``--count`` generated sites (``tests/sites.py``) on consecutive ports of one address,
logging every request as ``<unix time> <port> <client address> <path>`` (the drill reads the
competitor's request log from it). Runs in the lab's ``sites`` namespace until killed."""

from __future__ import annotations

import argparse
import threading
import time
from http.server import ThreadingHTTPServer

from tests.sites import SiteSpec, _Handler

_LOG_LOCK = threading.Lock()


def serve(bind: str, port: int, spec: SiteSpec, log) -> ThreadingHTTPServer:
    class Handler(_Handler):
        def do_GET(self) -> None:  # noqa: N802 - http.server API
            with _LOG_LOCK:
                log.write(f"{time.time():.6f} {port} {self.client_address[0]} {self.path}\n")
                log.flush()
            super().do_GET()

    Handler.spec = spec
    server = ThreadingHTTPServer((bind, port), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--bind", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument("--pages", type=int, required=True, help="homepage included")
    parser.add_argument("--delay", type=float, default=0.0)
    parser.add_argument("--log", required=True)
    args = parser.parse_args()
    with open(args.log, "a") as log:
        for i in range(args.count):
            serve(args.bind, args.port + i,
                  SiteSpec(title=f"Site {i}", pages=args.pages - 1, delay=args.delay), log)
        print(f"serving {args.count} sites on {args.bind}:{args.port}..", flush=True)
        while True:
            time.sleep(3600)


if __name__ == "__main__":
    main()
