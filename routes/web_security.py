"""Security headers, registered once for the whole app (every blueprint, error pages and
unrouted 404s included): a strict Content-Security-Policy (own CSS/JS only), no framing,
no sniffing, no referrer leaks. HTML pages, admin pages and exports are never cached."""

from __future__ import annotations

from flask import Flask, Response, request

PAGE_CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
            "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
# Anything that is not a page (JSON, CSV, SVG...) may load nothing and run nothing.
DATA_CSP = "default-src 'none'; frame-ancestors 'none'; sandbox"
NO_STORE_ENDPOINT_SUFFIXES = ("export_csv", "export_json", "export_xlsx", "export")


def _no_store() -> bool:
    endpoint = request.endpoint or ""
    return (request.blueprint == "admin" or request.path.startswith("/api/v1/admin")
            or endpoint.rsplit(".", 1)[-1].startswith(NO_STORE_ENDPOINT_SUFFIXES))


def add_page_headers(response: Response) -> Response:
    """The headers every response carries."""
    headers = response.headers
    if response.mimetype == "text/html":
        headers.setdefault("Content-Security-Policy", PAGE_CSP)
        headers.setdefault("Cache-Control", "no-store")
    else:
        headers.setdefault("Content-Security-Policy", DATA_CSP)
    if _no_store():
        headers["Cache-Control"] = "no-store"
    headers.setdefault("X-Content-Type-Options", "nosniff")
    headers.setdefault("X-Frame-Options", "DENY")
    headers.setdefault("Referrer-Policy", "same-origin")
    return response


def install_security_headers(app: Flask) -> None:
    app.after_request(add_page_headers)
