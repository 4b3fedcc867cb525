"""Helpers shared by the operation classes."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session


def upsert(session: Session, table: sa.Table, rows: Sequence[dict[str, Any]],
           keys: Sequence[str], update: Sequence[str] = ()) -> None:
    """Insert rows; on a natural-key conflict update ``update`` columns (or do nothing)."""
    if not rows:
        return
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    stmt = insert(table).values(list(rows))
    if update:
        stmt = stmt.on_conflict_do_update(
            index_elements=list(keys), set_={col: stmt.excluded[col] for col in update})
    else:
        stmt = stmt.on_conflict_do_nothing(index_elements=list(keys))
    session.execute(stmt)


def dialect_name(session: Session) -> str:
    """'postgresql' or 'sqlite' for the session's bind."""
    return session.get_bind().dialect.name
