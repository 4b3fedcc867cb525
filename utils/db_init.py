"""Start-up check for every role: the database answers and migrations are at head."""

from __future__ import annotations

import os

from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from flask import Flask
from flask_migrate import Migrate
from sqlalchemy import Engine, create_engine, exc
from sqlalchemy.pool import NullPool

from utils.error_text import error_line

MIGRATIONS_DIR = os.path.join(os.path.dirname(os.path.dirname(__file__)), "migrations")


class DatabaseNotReady(RuntimeError):
    """The database cannot be used: unreachable or not migrated to head."""


def head_revisions(directory: str = MIGRATIONS_DIR) -> set[str]:
    """The heads of the migration scripts."""
    from alembic.config import Config as AlembicConfig

    config = AlembicConfig()
    config.set_main_option("script_location", directory)
    return set(ScriptDirectory.from_config(config).get_heads())


def verify_database(engine: Engine, directory: str = MIGRATIONS_DIR,
                    timeout: int = 5) -> str:
    """Connect with a short timeout and compare the schema revision with the heads.

    Returns the current revision; raises DatabaseNotReady with a clear message.
    """
    url = engine.url
    where = url.render_as_string(hide_password=True)
    args = {"connect_timeout": timeout} if url.get_backend_name() == "postgresql" else {}
    probe = create_engine(url, poolclass=NullPool, connect_args=args) if args else engine
    try:
        with probe.connect() as connection:
            current = set(MigrationContext.configure(connection).get_current_heads())
    except exc.SQLAlchemyError as error:
        raise DatabaseNotReady(f"cannot connect to the database at {where}: "
                               f"{error_line(error)}") from error
    finally:
        if probe is not engine:
            probe.dispose()
    heads = head_revisions(directory)
    if current != heads:
        raise DatabaseNotReady(
            f"database at {where} is at migration {sorted(current) or 'none'} but the code "
            f"needs {sorted(heads)}: run `flask db upgrade`")
    return ",".join(sorted(current))


def verify_app_database(app: Flask) -> str:
    """``verify_database`` for an app's engine (call on start of every role)."""
    from models import db

    with app.app_context():
        migrate: Migrate = app.extensions["migrate"]
        return verify_database(db.engine, migrate.directory)
