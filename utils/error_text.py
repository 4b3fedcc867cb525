"""The one-line description of an error, for logs, stored reasons and user messages."""

from __future__ import annotations


def error_line(error: BaseException, limit: int = 500) -> str:
    """The first line of a database error's own message (the DBAPI error under
    SQLAlchemy's wrapper, without the SQL and parameters), else of the exception; the
    exception's class name when it has no message."""
    text = str(getattr(error, "orig", None) or error).strip()
    return text.splitlines()[0][:limit] if text else type(error).__name__
