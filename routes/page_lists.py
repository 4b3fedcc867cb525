"""One page of a site's crawled pages, for the site view and ``GET /api/v1/sites/<id>``:
only that window's records are loaded (a large site never is, whole)."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from routes.api_serializers import pages_body
from utils.db_operations import PageListOps

PAGE_LIST_SIZE = 50
MAX_PAGE_LIST_SIZE = 200


def site_pages(session: Session, site_id: int, number: int = 1,
               size: int = PAGE_LIST_SIZE) -> dict[str, Any]:
    """``{"items", "page", "per_page", "total", "last", "next"}`` (``next`` null at the end)."""
    total = PageListOps.count(session, site_id)
    window = PageListOps.window(session, site_id, (number - 1) * size, size)
    items = pages_body(window, PageListOps.title_counts(session, site_id))
    return {"items": items, "page": number, "per_page": size, "total": total,
            "last": max(1, -(-total // size)),
            "next": number + 1 if number * size < total else None}


def page_number(value: Any) -> int:
    """A 1-based page number from a query argument of a browser page (bad values give 1)."""
    try:
        number = int(value)
    except (TypeError, ValueError):
        return 1
    return min(max(number, 1), 1_000_000)
