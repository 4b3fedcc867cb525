"""Security headers of the browser pages (own CSS/JS only: a strict Content-Security-Policy)."""

from __future__ import annotations

from flask import Response

PAGE_CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
            "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")


def add_page_headers(response: Response) -> Response:
    """CSP, no framing, no sniffing, no referrer leaks; pages are never cached."""
    headers = response.headers
    if response.mimetype == "text/html":
        headers.setdefault("Content-Security-Policy", PAGE_CSP)
        headers.setdefault("Cache-Control", "no-store")
    headers.setdefault("X-Content-Type-Options", "nosniff")
    headers.setdefault("X-Frame-Options", "DENY")
    headers.setdefault("Referrer-Policy", "same-origin")
    return response
