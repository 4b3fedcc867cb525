"""Revocable sessions and the account page: replayed session and remember cookies stop
working after sign-out, a password change or deletion; the remember cookie is SameSite=Lax,
lasts 30 days and changes at each sign-in; password change and account deletion."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime

import sqlalchemy as sa
from sqlalchemy.orm import Session

from models import ApiToken, Batch, BatchEvent, Comparison, Page, Site, User
from tests.factories import DEFAULT_PASSWORD, PageFactory, UserFactory
from tests.routes.api_support import (  # noqa: F401 - fixture
    empty_queue,
    finished_batch,
    sample_report,
)
from utils.db_operations import EventOps, UserOps

NEW_PASSWORD = "a brand new passphrase"


def sign_in(client, email: str = "me@example.test", password: str = DEFAULT_PASSWORD,
            remember: bool = False):
    data = {"email": email, "password": password}
    if remember:
        data["remember"] = "y"
    return client.post("/login", data=data)


def cookie(client, name: str) -> str | None:
    found = client.get_cookie(name)
    return found.value if found else None


def replay(app, **cookies: str):
    """A fresh browser that only has these cookies."""
    client = app.test_client()
    for name, value in cookies.items():
        client.set_cookie(name, value)
    return client


def test_a_replayed_session_cookie_after_sign_out_is_refused(app, client, committed):
    UserFactory(email="me@example.test")
    committed.commit()
    sign_in(client)
    stolen = cookie(client, "session")
    assert replay(app, session=stolen).get("/account").status_code == 200
    client.post("/logout")
    again = replay(app, session=stolen).get("/account")
    assert again.status_code == 302 and again.headers["Location"].startswith("/login")


def test_the_remember_cookie_is_lax_30_days_rotated_and_revoked(app, client, committed):
    UserFactory(email="me@example.test")
    committed.commit()
    response = sign_in(client, remember=True)
    header = next(h for h in response.headers.getlist("Set-Cookie")
                  if h.startswith("remember_token="))
    assert "SameSite=Lax" in header and "HttpOnly" in header
    expires = parsedate_to_datetime(header.split("Expires=")[1].split(";")[0])
    assert timedelta(days=29) < expires - datetime.now(UTC) <= timedelta(days=30)
    first = cookie(client, "remember_token")
    # Alone (no session cookie) it signs the browser in.
    assert replay(app, remember_token=first).get("/account").status_code == 200
    second_browser = app.test_client()
    sign_in(second_browser, remember=True)
    second = cookie(second_browser, "remember_token")
    assert second != first  # rotated at each sign-in
    client.post("/logout")  # signs out every device
    for value in (first, second):
        refused = replay(app, remember_token=value).get("/account")
        assert refused.status_code == 302 and refused.headers["Location"].startswith("/login")
    assert second_browser.get("/account").status_code == 302


def test_change_password_needs_the_current_one_and_signs_out_other_devices(
        app, client, committed):
    UserFactory(email="me@example.test")
    committed.commit()
    sign_in(client)
    other_device = app.test_client()
    sign_in(other_device)
    form = {"current": "not my password", "password": NEW_PASSWORD, "confirm": NEW_PASSWORD}
    wrong = client.post("/account/password", data=form)
    assert wrong.status_code == 400 and "current password is wrong" in wrong.get_data(True)
    weak = client.post("/account/password", data={**form, "current": DEFAULT_PASSWORD,
                                                   "password": "short", "confirm": "short"})
    assert weak.status_code == 400 and "at least 12 characters" in weak.get_data(True)
    done = client.post("/account/password", data={**form, "current": DEFAULT_PASSWORD})
    assert done.status_code == 302
    assert client.get("/account").status_code == 200  # this browser stays signed in
    assert other_device.get("/account").status_code == 302
    client.post("/logout")
    assert sign_in(app.test_client(), password=DEFAULT_PASSWORD).status_code == 401
    assert sign_in(app.test_client(), password=NEW_PASSWORD).status_code == 302


def test_delete_account_removes_all_its_data_in_one_transaction(app, client, committed):
    me = UserFactory(email="me@example.test")
    other = UserFactory(email="other@example.test")
    mine = finished_batch(committed, me, [sample_report("A"), sample_report("B")])
    theirs = finished_batch(committed, other, [sample_report("C")])
    EventOps.add(committed, mine.id, "note", "mine")
    PageFactory(site_id=mine.sites[0].id, url="https://site0.example/about")
    UserOps.issue_token(committed, me, timedelta(hours=1))
    UserOps.issue_token(committed, other, timedelta(hours=1))
    committed.commit()
    me_id, other_id, mine_id, theirs_id = me.id, other.id, mine.id, theirs.id
    sign_in(client)
    session_cookie = cookie(client, "session")

    refused = client.post("/account/delete", data={"confirm_password": "wrong password"})
    assert refused.status_code == 400
    assert committed.get(User, me_id) is not None

    done = client.post("/account/delete", data={"confirm_password": DEFAULT_PASSWORD})
    assert done.status_code == 302
    committed.expunge_all()

    def count(model, *where) -> int:
        return committed.scalar(sa.select(sa.func.count()).select_from(model).where(*where))

    assert count(User, User.id == me_id) == 0
    assert count(Batch, Batch.user_id == me_id) == 0
    assert count(ApiToken, ApiToken.user_id == me_id) == 0
    assert count(Site, Site.batch_id == mine_id) == 0
    assert count(BatchEvent, BatchEvent.batch_id == mine_id) == 0
    assert count(Comparison, Comparison.batch_id == mine_id) == 0
    assert count(Page) == count(Page, Page.site_id.in_(
        sa.select(Site.id).where(Site.batch_id == theirs_id))) == 1
    # The other user's data is untouched.
    assert count(Batch, Batch.user_id == other_id) == 1
    assert count(Site, Site.batch_id == theirs_id) == 1
    assert count(Comparison, Comparison.batch_id == theirs_id) == 1
    assert count(ApiToken, ApiToken.user_id == other_id) == 1
    # The old session is gone, and the e-mail can sign up again.
    assert replay(app, session=session_cookie).get("/account").status_code == 302


def test_delete_account_is_one_transaction(app, committed, engine):
    """Until the one commit, another connection still sees every row; a rollback keeps them
    all; after the commit they are all gone together."""
    me = UserFactory(email="me@example.test")
    batch = finished_batch(committed, me, [sample_report("A"), sample_report("B")])
    EventOps.add(committed, batch.id, "note", "an activity entry")
    UserOps.issue_token(committed, me, timedelta(hours=1))
    committed.commit()
    me_id = me.id

    def rows() -> dict[str, int]:
        with engine.connect() as observer:
            return {model.__tablename__: observer.scalar(
                sa.select(sa.func.count()).select_from(model))
                for model in (User, Batch, Site, Page, BatchEvent, Comparison, ApiToken)}

    before = rows()
    assert all(before.values()), before
    with Session(engine) as deleting:
        UserOps.delete_account(deleting, me_id)
        assert rows() == before  # every statement ran; nothing is visible yet
        deleting.rollback()
    assert rows() == before
    with Session(engine) as deleting:
        UserOps.delete_account(deleting, me_id)
        deleting.commit()
    assert not any(rows().values())


def test_revoking_a_token_id_beyond_64_bits_is_404(client, committed):
    UserFactory(email="me@example.test")
    committed.commit()
    sign_in(client)
    for token_id in ("9223372036854775808", "2147483648", "0"):
        assert client.post(f"/account/tokens/{token_id}/revoke").status_code == 404


def test_the_account_page_offers_password_change_sign_out_everywhere_and_deletion(
        client, committed):
    UserFactory(email="me@example.test")
    committed.commit()
    sign_in(client)
    page = client.get("/account").get_data(as_text=True)
    for text in ("Change password", "Sign out on every device",
                 "Delete my account and all its data"):
        assert text in page
