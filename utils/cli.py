"""Flask CLI commands: ``flask users create EMAIL --password PW [--admin]``.

``flask db upgrade`` comes from Flask-Migrate.
"""

from __future__ import annotations

import click
from flask import Flask
from flask.cli import AppGroup

from models import db
from utils.database_access import get_sync_session
from utils.db_operations import UserOps
from utils.passwords import password_problem

users_cli = AppGroup("users", help="Manage user accounts.")


@users_cli.command("create")
@click.argument("email")
@click.option("--password", prompt=True, hide_input=True, confirmation_prompt=True)
@click.option("--admin", is_flag=True, help="Give the user the admin role.")
def create_user(email: str, password: str, admin: bool) -> None:
    """Create a user (EMAIL) with a password."""
    problem = password_problem(password)
    if problem:
        raise click.BadParameter(problem, param_hint="--password")
    with get_sync_session(db.engine, scope="cli", owner="users create") as session:
        if UserOps.by_email(session, email):
            raise click.ClickException(f"a user with email {email} already exists")
        user = UserOps.create(session, email, password, is_admin=admin)
        click.echo(f"created user {user.email} (id {user.id}{', admin' if admin else ''})")


def register_cli(app: Flask) -> None:

    app.cli.add_command(users_cli)
