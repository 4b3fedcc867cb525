"""Bounded page records and paged reads of a site's pages.

- :func:`bounded_record`: a record is stored whole up to ``MAX_RECORD_BYTES`` of JSON; a
  bigger one is cut (long lists, then long strings, then the link list) and flagged
  ``truncated`` (a column, and ``record["truncated"]``). Scalars and counts are never cut, so
  the report built from stored records keeps its counts exact.
- :class:`PageListOps`: one window of a site's pages (the ``record`` column is loaded for
  that window only) and the site-wide facts a window needs (its total, duplicated titles),
  computed in the database, so no request loads every record of a large site.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from models import Page
from utils.storable import dumps_storable

MAX_RECORD_BYTES = 256 * 1024
_LIST_STEPS = (200, 50, 10, 0)
_TEXT_STEPS = (2000, 300)


def _size(record: dict[str, Any]) -> int:
    """Bytes of the JSON actually stored (cleaned of what the database cannot hold)."""
    return len(dumps_storable(record).encode("utf-8"))


def _shrunk(value: Any, items: int, text: int) -> Any:
    """``value`` with lists/dicts cut to ``items`` entries and strings to ``text`` chars."""
    if isinstance(value, str):
        return value[:text]
    if isinstance(value, list):
        return [_shrunk(v, items, text) for v in value[:items]]
    if isinstance(value, dict):
        return {k: _shrunk(v, items, text) for k, v in list(value.items())[:items]}
    return value


def bounded_record(record: dict[str, Any], limit: int = MAX_RECORD_BYTES
                   ) -> tuple[dict[str, Any], bool]:
    """``(record, False)`` when it fits in ``limit`` bytes of JSON, else a cut copy and True."""
    if _size(record) <= limit:
        return record, False
    facts = record.get("facts") if isinstance(record.get("facts"), dict) else None
    cut = dict(record, truncated=True)
    for text in _TEXT_STEPS:
        for items in _LIST_STEPS:
            keep = items if items else 1
            if facts is not None:
                cut["facts"] = {key: _shrunk(value, items, text) for key, value in facts.items()}
            for key in ("error", "redirect_chain", "final_url", "content_type"):
                if key in record:
                    cut[key] = _shrunk(record[key], keep, text)
            if _size(cut) <= limit:
                return cut, True
    cut["facts"] = None if facts is None else {
        key: value for key, value in cut["facts"].items()
        if isinstance(value, int | float | bool) or value is None}
    return cut, True


class PageListOps:
    """Paged reads of a site's pages (crawl order)."""

    @staticmethod
    def count(session: Session, site_id: int) -> int:
        return session.scalar(sa.select(sa.func.count()).select_from(Page)
                              .where(Page.site_id == site_id)) or 0

    @staticmethod
    def window(session: Session, site_id: int, offset: int, limit: int) -> list[Page]:
        """At most ``limit`` pages from ``offset`` in crawl order."""
        return list(session.scalars(sa.select(Page).where(Page.site_id == site_id)
                                    .order_by(Page.seq, Page.id).offset(offset).limit(limit)))

    @staticmethod
    def title_counts(session: Session, site_id: int) -> Counter[str]:
        """How many analysed pages carry each title shared by more than one (in SQL)."""
        title = Page.record[("facts", "title")].as_string()
        rows = session.execute(
            sa.select(title, sa.func.count()).where(Page.site_id == site_id, Page.analysed,
                                                    title.is_not(None))
            .group_by(title).having(sa.func.count() > 1))
        return Counter({value: count for value, count in rows if isinstance(value, str)})

