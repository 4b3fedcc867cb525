"""`flask users create`."""

from __future__ import annotations

import sqlalchemy as sa

from models import User


def test_create_admin_user(runner, committed):
    result = runner.invoke(args=["users", "create", "Admin@Example.test", "--password",
                                 "long enough pw", "--admin"])
    assert result.exit_code == 0, result.output
    user = committed.scalar(sa.select(User))
    assert (user.email, user.is_admin) == ("admin@example.test", True)
    again = runner.invoke(args=["users", "create", "admin@example.test", "--password",
                                "long enough pw"])
    assert again.exit_code != 0
    assert "already exists" in again.output


def test_short_password_is_refused(runner, committed):
    result = runner.invoke(args=["users", "create", "x@example.test", "--password", "short"])
    assert result.exit_code != 0
    assert committed.scalar(sa.select(sa.func.count()).select_from(User)) == 0
