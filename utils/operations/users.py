"""Users and API tokens: sign-in attempts (atomic lockout), session versions, deletion."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from flask_login import UserMixin
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from models import ApiToken, Batch, BatchEvent, Comparison, Page, Site, User
from models.base import utcnow
from utils import passwords

LOCKOUT_AFTER = 5
LOCKOUT_FOR = timedelta(minutes=5)
# ``last_used_at`` is written at most this often per token.
TOKEN_TOUCH_EVERY = timedelta(minutes=1)
# The token check's statements, built once per process (Core, on the session's connection:
# no ORM compile or loading step): the user's identity and the token's own facts, by the
# token's hash.
_users, _tokens = User.__table__, ApiToken.__table__
_TOKEN_USER = (sa.select(_users.c.id, _users.c.email, _users.c.is_admin,
                         _users.c.session_version, _tokens.c.id, _tokens.c.expires_at,
                         _tokens.c.revoked_at, _tokens.c.last_used_at)
               .join(_tokens, _tokens.c.user_id == _users.c.id)
               .where(_tokens.c.token_hash == sa.bindparam("token_hash")))
_TOUCH_TOKEN = (sa.update(ApiToken).where(ApiToken.id == sa.bindparam("token_id"))
                .values(last_used_at=sa.bindparam("used_at"))
                .execution_options(synchronize_session=False))


def hash_token(token: str) -> str:
    """Tokens are stored as their SHA-256 (a token has full entropy; no salt needed)."""
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class TokenIdentity(UserMixin):
    """Who a live API token belongs to: what the API needs of its user (no ORM object; load
    the ``User`` with ``UserOps.get`` for anything more)."""

    id: int
    email: str
    is_admin: bool
    session_version: int

    def get_id(self) -> str:
        return f"{self.id}:{self.session_version or 0}:0"


class UserOps:
    """Create, find and authenticate users; issue, list and revoke API tokens."""

    @staticmethod
    def create(session: Session, email: str, password: str, *, is_admin: bool = False) -> User:
        user = User(email=email.strip().lower(), is_admin=is_admin,
                    password_hash=passwords.hash_password(password))
        session.add(user)
        session.flush()
        return user

    @staticmethod
    def by_email(session: Session, email: str) -> User | None:
        return session.scalar(sa.select(User).where(User.email == email.strip().lower()))

    @staticmethod
    def get(session: Session, user_id: int) -> User | None:
        return session.get(User, user_id)

    @staticmethod
    def reserve_attempt(session: Session, email: str, *, max_failures: int = LOCKOUT_AFTER,
                        lock_for: timedelta = LOCKOUT_FOR) -> tuple[int, str] | None:
        """Count one sign-in attempt and decide the lock in one atomic UPDATE ... RETURNING.

        Returns (user id, password hash) when the attempt may check the password, None when
        the account is unknown or locked. The attempt that reaches ``max_failures`` locks the
        account (and restarts the count), so at most ``max_failures`` passwords are checked
        per lock period however many requests race. Commit before hashing, so the row lock
        is short and concurrent attempts see the count.
        """
        now = utcnow()
        reaches = User.failed_logins + 1 >= max_failures
        lock_until = sa.literal(now + lock_for, User.locked_until.type)
        row = session.execute(
            sa.update(User)
            .where(User.email == email.strip().lower(),
                   sa.or_(User.locked_until.is_(None), User.locked_until <= now))
            .values(failed_logins=sa.case((reaches, 0), else_=User.failed_logins + 1),
                    locked_until=sa.case((reaches, lock_until), else_=None))
            .returning(User.id, User.password_hash)
            .execution_options(synchronize_session=False)).first()
        return (row[0], row[1]) if row is not None else None

    @staticmethod
    def attempt_succeeded(session: Session, user_id: int) -> None:
        """The right password: the count restarts and any lock is lifted."""
        session.execute(sa.update(User).where(User.id == user_id)
                        .values(failed_logins=0, locked_until=None)
                        .execution_options(synchronize_session=False))

    @staticmethod
    def set_password(session: Session, user: User, password: str) -> None:
        """A new password; every older session and remember cookie stops working."""
        user.password_hash = passwords.hash_password(password)
        UserOps.bump_session_version(session, user)

    @staticmethod
    def bump_session_version(session: Session, user: User) -> int:
        """Invalidate every session and remember cookie of the user (atomic increment)."""
        version = session.execute(
            sa.update(User).where(User.id == user.id)
            .values(session_version=User.session_version + 1)
            .returning(User.session_version)
            .execution_options(synchronize_session=False)).scalar_one()
        set_committed_value(user, "session_version", version)
        return version

    @staticmethod
    def delete_account(session: Session, user_id: int) -> None:
        """Delete the user and all their data: events, comparisons, pages, sites, batches,
        tokens, then the user (foreign keys cascade anything else). One transaction: the
        caller commits."""
        # Lock order: batches first (by id), then their sites, as every other writer does.
        session.execute(sa.select(Batch.id).where(Batch.user_id == user_id)
                        .order_by(Batch.id).with_for_update())
        batch_ids = sa.select(Batch.id).where(Batch.user_id == user_id).scalar_subquery()
        site_ids = sa.select(Site.id).where(Site.batch_id.in_(batch_ids)).scalar_subquery()
        for statement in (
            sa.delete(BatchEvent).where(BatchEvent.batch_id.in_(batch_ids)),
            sa.delete(Comparison).where(Comparison.batch_id.in_(batch_ids)),
            sa.delete(Page).where(Page.site_id.in_(site_ids)),
            sa.delete(Site).where(Site.batch_id.in_(batch_ids)),
            sa.delete(Batch).where(Batch.user_id == user_id),
            sa.delete(ApiToken).where(ApiToken.user_id == user_id),
            sa.delete(User).where(User.id == user_id),
        ):
            session.execute(statement.execution_options(synchronize_session=False))

    @staticmethod
    def issue_token(session: Session, user: User, ttl: timedelta, name: str = "api"
                    ) -> tuple[str, ApiToken]:
        token = secrets.token_urlsafe(32)
        row = ApiToken(user_id=user.id, token_hash=hash_token(token), name=name,
                       expires_at=utcnow() + ttl)
        session.add(row)
        session.flush()
        return token, row

    @staticmethod
    def user_for_token(session: Session, token: str) -> tuple[TokenIdentity | None, int | None]:
        """The live token's user (``TokenIdentity``), in ONE query, and the token's id when
        its ``last_used_at`` is due for an update (older than a minute, or never used), else
        None. Writes nothing: the caller records the use (``touch_token``)."""
        row = session.connection().execute(
            _TOKEN_USER, {"token_hash": hash_token(token)}).first()
        if row is None:
            return None, None
        user_id, email, is_admin, version, token_id, expires_at, revoked_at, last_used_at = row
        now = utcnow()
        if revoked_at is not None or expires_at <= now:
            return None, None
        due = last_used_at is None or now - last_used_at > TOKEN_TOUCH_EVERY
        return TokenIdentity(user_id, email, bool(is_admin), version), token_id if due else None

    @staticmethod
    def touch_token(session: Session, token_id: int) -> None:
        """Record a token's use now (one UPDATE; the caller commits)."""
        session.execute(_TOUCH_TOKEN, {"token_id": token_id, "used_at": utcnow()})

    @staticmethod
    def tokens(session: Session, user: User) -> list[ApiToken]:
        return list(session.scalars(
            sa.select(ApiToken).where(ApiToken.user_id == user.id).order_by(ApiToken.id.desc())))

    @staticmethod
    def revoke_token(session: Session, user: User, token_id: int) -> bool:
        row = session.get(ApiToken, token_id)
        if row is None or row.user_id != user.id:
            return False
        row.revoked_at = row.revoked_at or utcnow()
        return True

    @staticmethod
    def lock_state(user: User, now: datetime | None = None) -> bool:
        return bool(user.locked_until and user.locked_until > (now or utcnow()))
