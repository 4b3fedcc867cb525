"""The sign-in lockout under attack: 64 concurrent attempts (threads against the real app,
on the configured backend: run with TEST_DATABASE_URL for PostgreSQL) check at most 5
passwords and never issue a token; locked and unknown accounts answer alike, each at the
cost of one password hash; sign-up does not tell whether an e-mail is taken."""

from __future__ import annotations

import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest
import sqlalchemy as sa

from models import ApiToken, User
from tests.factories import DEFAULT_PASSWORD, UserFactory
from utils import passwords

ATTEMPTS = 64
RIGHT_INDEX = 14
MAX_CHECKS = 5


class CheckCounter:
    """Wraps the real password check (and the dummy one) to count what was hashed."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.lock = threading.Lock()
        self.checked: list[str] = []  # passwords checked against the account's real hash
        self.hashes = 0  # every scrypt/pbkdf2 verification, dummy ones included
        self.fifth_started = threading.Event()
        real_verify, real_check = passwords.verify_password, passwords.check_password_hash

        def verify(password_hash: str, password: str) -> bool:
            with self.lock:
                self.checked.append(password)
                if len(self.checked) >= MAX_CHECKS:
                    self.fifth_started.set()
            return real_verify(password_hash, password)

        def check(password_hash: str, password: str) -> bool:
            with self.lock:
                self.hashes += 1
            return real_check(password_hash, password)

        monkeypatch.setattr(passwords, "verify_password", verify)
        monkeypatch.setattr(passwords, "check_password_hash", check)


@pytest.fixture
def counter(monkeypatch: pytest.MonkeyPatch) -> CheckCounter:
    return CheckCounter(monkeypatch)


def _race(app, counter: CheckCounter, send) -> list:
    """64 attempts released together; the right password (index 14) goes once the fifth
    check has begun, as in the reported attack where it came 15th."""
    barrier = threading.Barrier(ATTEMPTS)

    def attempt(index: int):
        client = app.test_client()
        barrier.wait()
        if index == RIGHT_INDEX:
            counter.fifth_started.wait(timeout=20)
            return send(client, DEFAULT_PASSWORD)
        return send(client, f"wrong guess {index}")

    with ThreadPoolExecutor(max_workers=ATTEMPTS) as pool:
        return list(pool.map(attempt, range(ATTEMPTS)))


def test_64_concurrent_token_requests_check_at_most_5_passwords(app, committed, counter):
    UserFactory(email="target@example.test")
    committed.commit()

    def send(client, password):
        return client.post("/api/v1/tokens", json={"email": "target@example.test",
                                                   "password": password})

    responses = _race(app, counter, send)
    statuses = Counter(r.status_code for r in responses)
    assert statuses == {401: ATTEMPTS}, statuses
    assert {r.get_json()["error"]["code"] for r in responses} == {"invalid_credentials"}
    print(f"password checks under {ATTEMPTS} concurrent attempts: {len(counter.checked)}")
    assert 1 <= len(counter.checked) <= MAX_CHECKS, counter.checked
    assert DEFAULT_PASSWORD not in counter.checked
    assert counter.hashes == ATTEMPTS  # every refusal cost one hash, real or dummy
    assert committed.scalar(sa.select(sa.func.count()).select_from(ApiToken)) == 0
    user = committed.scalar(sa.select(User).where(User.email == "target@example.test"))
    assert user.locked_until is not None


def test_64_concurrent_form_sign_ins_check_at_most_5_passwords(app, committed, counter):
    UserFactory(email="target@example.test")
    committed.commit()

    def send(client, password):
        response = client.post("/login", data={"email": "target@example.test",
                                                "password": password})
        signed_in = client.get("/account").status_code == 200
        return response, signed_in

    results = _race(app, counter, send)
    assert Counter(r.status_code for r, _ in results) == {401: ATTEMPTS}
    assert not any(signed_in for _, signed_in in results)
    assert 1 <= len(counter.checked) <= MAX_CHECKS
    assert DEFAULT_PASSWORD not in counter.checked


def test_locked_and_unknown_accounts_answer_alike_at_the_cost_of_one_hash(
        client, committed, counter):
    UserFactory(email="locked@example.test")
    committed.commit()
    for _ in range(MAX_CHECKS):
        client.post("/api/v1/tokens", json={"email": "locked@example.test", "password": "x"})
    assert len(counter.checked) == MAX_CHECKS
    before = counter.hashes
    locked = client.post("/api/v1/tokens", json={"email": "locked@example.test",
                                                 "password": DEFAULT_PASSWORD})
    unknown = client.post("/api/v1/tokens", json={"email": "nobody@example.test",
                                                  "password": DEFAULT_PASSWORD})
    assert counter.hashes - before == 2  # one dummy hash each
    assert len(counter.checked) == MAX_CHECKS  # the locked account's hash was not used
    assert (locked.status_code, locked.get_json(), dict(locked.headers)) == (
        unknown.status_code, unknown.get_json(), dict(unknown.headers))
    page_locked = client.post("/login", data={"email": "locked@example.test",
                                               "password": DEFAULT_PASSWORD})
    page_unknown = client.post("/login", data={"email": "nobody@example.test",
                                                "password": DEFAULT_PASSWORD})
    assert page_locked.status_code == page_unknown.status_code == 401
    assert page_locked.get_data().replace(b"locked@", b"nobody@") == page_unknown.get_data()


def test_the_lock_lifts_after_its_period_and_a_success_restarts_the_count(
        client, committed, app):
    user = UserFactory(email="me@example.test")
    committed.commit()
    for _ in range(MAX_CHECKS):
        client.post("/api/v1/tokens", json={"email": "me@example.test", "password": "nope"})
    committed.execute(sa.update(User).where(User.id == user.id)
                      .values(locked_until=sa.func.current_timestamp()))
    committed.commit()
    ok = client.post("/api/v1/tokens", json={"email": "me@example.test",
                                             "password": DEFAULT_PASSWORD})
    assert ok.status_code == 201
    committed.expire_all()
    fresh = committed.get(User, user.id)
    assert (fresh.failed_logins, fresh.locked_until) == (0, None)


def test_sign_up_does_not_tell_whether_an_email_is_taken(client, committed, monkeypatch):
    UserFactory(email="taken@example.test")
    committed.commit()
    hashed: list[str] = []
    real = passwords.hash_password
    monkeypatch.setattr(passwords, "hash_password",
                        lambda password: hashed.append(password) or real(password))
    form = {"password": "a long new password", "confirm": "a long new password"}
    taken = client.post("/signup", data={"email": "taken@example.test", **form})
    taken_page = client.get(taken.headers["Location"]).get_data()
    fresh = client.post("/signup", data={"email": "fresh@example.test", **form})
    fresh_page = client.get(fresh.headers["Location"]).get_data()
    assert (taken.status_code, taken.headers["Location"]) == (
        fresh.status_code, fresh.headers["Location"])
    assert taken_page == fresh_page
    assert len(hashed) == 2  # the same work either way
    owners = committed.scalars(sa.select(User.email).order_by(User.email)).all()
    assert owners == ["fresh@example.test", "taken@example.test"]
    # The existing account keeps its password.
    assert client.post("/api/v1/tokens", json={"email": "taken@example.test",
                                               "password": DEFAULT_PASSWORD}).status_code == 201
