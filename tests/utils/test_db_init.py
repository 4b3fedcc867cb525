"""The start-up check: reachable database at the migration head, else a clear refusal."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from sqlalchemy.pool import NullPool

from tests.conftest import free_port
from utils.db_init import DatabaseNotReady, head_revisions, verify_app_database, verify_database


def test_migrated_database_is_accepted(app):
    assert verify_app_database(app) == ",".join(sorted(head_revisions()))


def test_unmigrated_database_is_refused(tmp_path):
    empty = sa.create_engine(f"sqlite:///{tmp_path / 'empty.db'}", poolclass=NullPool)
    with pytest.raises(DatabaseNotReady, match="flask db upgrade"):
        verify_database(empty)


def test_unreachable_database_is_refused_without_password():
    url = f"postgresql+psycopg2://postgres:hunter2@127.0.0.1:{free_port()}/x"
    engine = sa.create_engine(url, poolclass=NullPool)
    with pytest.raises(DatabaseNotReady) as caught:
        verify_database(engine, timeout=2)
    assert "cannot connect" in str(caught.value)
    assert "hunter2" not in str(caught.value)
