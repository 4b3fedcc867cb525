"""factory-boy factories; the per-test session is bound by the db fixtures."""

from __future__ import annotations

import secrets

import factory
from factory.alchemy import SQLAlchemyModelFactory
from sqlalchemy.orm import Session
from werkzeug.security import generate_password_hash

from models import Batch, Page, Site, User, Watchlist

_CURRENT: dict[str, Session | None] = {"session": None}


def bind_session(session: Session | None) -> None:
    _CURRENT["session"] = session


def _session() -> Session:
    session = _CURRENT["session"]
    if session is None:
        raise RuntimeError("use the db_session or committed fixture to create rows")
    return session


class BaseFactory(SQLAlchemyModelFactory):
    class Meta:
        abstract = True
        sqlalchemy_session_factory = _session
        sqlalchemy_session_persistence = "flush"


# One cheap hash shared by all factory users (scrypt per user would slow the suite).
DEFAULT_PASSWORD = "correct horse battery"
_DEFAULT_HASH = generate_password_hash(DEFAULT_PASSWORD, method="pbkdf2:sha256:1000")


class UserFactory(BaseFactory):
    class Meta:
        model = User

    email = factory.Sequence(lambda n: f"user{n}@example.test")
    password_hash = _DEFAULT_HASH
    is_admin = False


class BatchFactory(BaseFactory):
    class Meta:
        model = Batch

    class Params:
        owner = factory.SubFactory(UserFactory)

    user_id = factory.SelfAttribute("owner.id")
    name = factory.Sequence(lambda n: f"batch {n}")
    status = "pending"
    max_pages = 5
    total_urls = 0


class SiteFactory(BaseFactory):
    class Meta:
        model = Site

    batch = factory.SubFactory(BatchFactory)
    url = factory.Sequence(lambda n: f"https://site{n}.example/")
    position = factory.Sequence(lambda n: n)
    status = "pending"


class PageFactory(BaseFactory):
    class Meta:
        model = Page

    site_id = factory.LazyAttribute(lambda o: SiteFactory().id)
    url = factory.Sequence(lambda n: f"https://site.example/p{n}")
    record = factory.LazyAttribute(lambda o: {"url": o.url, "analysed": True})


class WatchlistFactory(BaseFactory):
    """A daily watchlist of two sites (monitoring)."""

    class Meta:
        model = Watchlist

    class Params:
        owner = factory.SubFactory(UserFactory)

    user_id = factory.SelfAttribute("owner.id")
    name = factory.Sequence(lambda n: f"watchlist {n}")
    urls = factory.LazyFunction(lambda: ["https://a.example/", "https://b.example/"])
    max_pages = 3
    schedule_every = "day"
    schedule_hour = 6
    timezone = "UTC"
    notify_emails = factory.LazyFunction(list)
    feed_token = factory.LazyFunction(lambda: secrets.token_urlsafe(32))
