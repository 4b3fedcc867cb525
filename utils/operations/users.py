"""Users and API tokens."""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.orm import Session, joinedload
from werkzeug.security import check_password_hash, generate_password_hash

from models import ApiToken, User
from models.base import utcnow

LOCKOUT_AFTER = 5
LOCKOUT_FOR = timedelta(minutes=5)


def hash_token(token: str) -> str:
    """Tokens are stored as their SHA-256 (a token has full entropy; no salt needed)."""
    return hashlib.sha256(token.encode()).hexdigest()


class UserOps:
    """Create, find and authenticate users; issue, list and revoke API tokens."""

    @staticmethod
    def create(session: Session, email: str, password: str, *, is_admin: bool = False) -> User:
        user = User(email=email.strip().lower(), is_admin=is_admin,
                    password_hash=generate_password_hash(password, method="scrypt"))
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
    def authenticate(session: Session, email: str, password: str) -> tuple[User | None, str]:
        """(user, "") on success, else (None, reason): "invalid" or "locked"."""
        user = UserOps.by_email(session, email)
        now = utcnow()
        if user is None:
            generate_password_hash(password, method="scrypt")  # same cost either way
            return None, "invalid"
        if user.locked_until and user.locked_until > now:
            return None, "locked"
        if not check_password_hash(user.password_hash, password):
            user.failed_logins += 1
            if user.failed_logins >= LOCKOUT_AFTER:
                user.locked_until = now + LOCKOUT_FOR
                user.failed_logins = 0
            return None, "invalid"
        user.failed_logins = 0
        user.locked_until = None
        return user, ""

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
    def user_for_token(session: Session, token: str) -> User | None:
        row = session.scalar(sa.select(ApiToken).options(joinedload(ApiToken.user))
                             .where(ApiToken.token_hash == hash_token(token)))
        now = utcnow()
        if row is None or row.revoked_at is not None or row.expires_at <= now:
            return None
        if row.last_used_at is None or now - row.last_used_at > timedelta(minutes=1):
            row.last_used_at = now
        return row.user

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
