"""Configuration classes, read from the environment.

Embedded defaults (no services to install): SQLite and Celery's filesystem transport,
both under ``instance/``. Set ``DATABASE_URL`` and ``CELERY_BROKER_URL`` for PostgreSQL
and Redis.
"""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent
INSTANCE_DIR = Path(os.environ.get("RIVALSCOPE_INSTANCE", BASE_DIR / "instance"))


DEV_SECRET_KEY = "dev-insecure-change-me"
DEFAULT_FLOWER_AUTH = "admin:change-me"
SECRET_KEY_FILE = "secret_key"  # under the instance folder, written by `make run`
FLOWER_PASSWORD_FILE = "flower_password"


def instance_secret(name: str) -> str:
    """A secret ``make run`` generated into the instance folder, or ""."""
    try:
        return (INSTANCE_DIR / name).read_text().strip()
    except OSError:
        return ""


def insecure_settings_reason(settings: dict, role: str) -> str | None:
    """Why these settings must not start (one line), or None."""
    if settings.get("ENV_NAME") == "production":
        key = settings.get("SECRET_KEY") or ""
        if not key or key == DEV_SECRET_KEY:
            return ("Rivalscope refuses to start: SECRET_KEY is unset or the development value "
                    "(RIVALSCOPE_ENV=production); set SECRET_KEY to a long random string")
    if role == "flower":
        auth = settings.get("FLOWER_BASIC_AUTH") or ""
        user, _, password = auth.partition(":")
        if not user or not password:
            return ("Flower refuses to start: FLOWER_BASIC_AUTH is not set to user:password "
                    "(Flower can run any task)")
        if auth == DEFAULT_FLOWER_AUTH or password == "change-me":
            return ("Flower refuses to start: FLOWER_BASIC_AUTH is the public default "
                    "admin:change-me (Flower can run any task); choose a password")
    return None


def _int(name: str, default: int) -> int:
    return int(os.environ.get(name, default))


def _float(name: str, default: float) -> float:
    return float(os.environ.get(name, default))


class Config:
    """Settings shared by every environment."""

    ENV_NAME = "base"
    # `make run` writes a random key into instance/secret_key once (sessions survive restarts).
    SECRET_KEY = (os.environ.get("SECRET_KEY") or instance_secret(SECRET_KEY_FILE)
                  or DEV_SECRET_KEY)
    DATABASE_URL = os.environ.get("DATABASE_URL", f"sqlite:///{INSTANCE_DIR / 'rivalscope.db'}")
    CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL", "filesystem://")
    BROKER_FOLDER = Path(os.environ.get("BROKER_FOLDER", INSTANCE_DIR / "broker"))
    DB_POOLER = os.environ.get("DB_POOLER", "")  # "" or "transaction"
    DB_POOL_SIZE = _int("DB_POOL_SIZE", 5)
    DB_MAX_OVERFLOW = _int("DB_MAX_OVERFLOW", 5)
    DB_POOL_TIMEOUT = _float("DB_POOL_TIMEOUT", 3.0)
    DB_POOL_RECYCLE = _int("DB_POOL_RECYCLE", 1800)
    DB_PING_IDLE_SECONDS = _float("DB_PING_IDLE_SECONDS", 5.0)  # 0: ping on every checkout
    DB_CONNECT_TIMEOUT = _int("DB_CONNECT_TIMEOUT", 5)
    DB_STATEMENT_TIMEOUT_MS = _int("DB_STATEMENT_TIMEOUT_MS", 30000)
    DB_IDLE_IN_TX_TIMEOUT_MS = _int("DB_IDLE_IN_TX_TIMEOUT_MS", 60000)
    SQLITE_BUSY_TIMEOUT_MS = _int("SQLITE_BUSY_TIMEOUT_MS", 5000)
    MAX_URLS_PER_BATCH = _int("MAX_URLS_PER_BATCH", 50)
    FETCH_ALLOW_NETWORKS = os.environ.get("FETCH_ALLOW_NETWORKS", "")
    FETCH_DELAY_SECONDS = _float("FETCH_DELAY_SECONDS", 1.0)  # per origin, between requests
    FETCH_MAX_CRAWL_DELAY = _float("FETCH_MAX_CRAWL_DELAY", 10.0)
    FETCH_PER_ORIGIN = _int("FETCH_PER_ORIGIN", 1)  # requests in flight per origin
    FETCH_TOTAL_TIMEOUT = _float("FETCH_TOTAL_TIMEOUT", 20.0)
    FETCH_MAX_BODY_BYTES = _int("FETCH_MAX_BODY_BYTES", 5 * 1024 * 1024)
    # Each page is analysed in a child process killed past this budget (analysis/page_budget).
    PAGE_BUDGET_SECONDS = _float("PAGE_BUDGET_SECONDS", 10.0)
    PAGE_POOL_MAX_CHILDREN = _int("PAGE_POOL_MAX_CHILDREN", 4)
    # start them all when a worker process starts (0: on first use, one at a time)
    PAGE_POOL_PRESTART = os.environ.get("PAGE_POOL_PRESTART", "1") not in ("0", "false", "")
    PAGE_MEMORY_LIMIT_MB = _int("PAGE_MEMORY_LIMIT_MB", 1024)
    PAGE_ANALYSIS_TARGET = os.environ.get(  # module:function run in the child (tests swap it)
        "PAGE_ANALYSIS_TARGET", "analysis.html_facts:analyze_page")
    ALERT_WEBHOOK_URL = os.environ.get("ALERT_WEBHOOK_URL", "")
    ALERT_TIMEOUT_SECONDS = _float("ALERT_TIMEOUT_SECONDS", 5.0)
    ALERT_RATE_LIMIT_SECONDS = _float("ALERT_RATE_LIMIT_SECONDS", 300.0)  # identical alerts
    FLOWER_BASIC_AUTH = os.environ.get("FLOWER_BASIC_AUTH", "")
    FLOWER_URL = os.environ.get("FLOWER_URL", "http://127.0.0.1:5555/")
    STALE_SESSION_SECONDS = _int("STALE_SESSION_SECONDS", 300)
    # Maintenance (tasks/maintenance_tasks.py): retention, snapshots, idle-in-transaction reaping.
    LOG_RETENTION_DAYS = _int("LOG_RETENTION_DAYS", 30)
    EVENT_RETENTION_DAYS = _int("EVENT_RETENTION_DAYS", 90)
    SNAPSHOT_INTERVAL_SECONDS = _float("SNAPSHOT_INTERVAL_SECONDS", 30.0)
    IDLE_IN_TX_TERMINATE_SECONDS = _int("IDLE_IN_TX_TERMINATE_SECONDS", 120)
    MAINTENANCE_REPLY_TIMEOUT = _float("MAINTENANCE_REPLY_TIMEOUT", 2.0)
    # Direct (not pooled) URL for VACUUM behind PgBouncer; empty = DATABASE_URL.
    MAINTENANCE_DATABASE_URL = os.environ.get("MAINTENANCE_DATABASE_URL", "")
    SITE_LEASE_SECONDS = _int("SITE_LEASE_SECONDS", 900)
    BEAT_LOCK_SECONDS = _int("BEAT_LOCK_SECONDS", 30)  # beat takeover: at most this + 1 s
    SITE_MAX_ATTEMPTS = _int("SITE_MAX_ATTEMPTS", 3)  # then the site fails: "gave up after N"
    # A network request while this thread holds a transaction: logged, or raised when strict.
    DB_NETWORK_GUARD_STRICT = os.environ.get("DB_NETWORK_GUARD_STRICT", "") == "1"
    API_TOKEN_TTL_HOURS = _int("API_TOKEN_TTL_HOURS", 24 * 30)
    SESSION_COOKIE_HTTPONLY = True
    SESSION_COOKIE_SAMESITE = "Lax"
    PREFERRED_URL_SCHEME = os.environ.get("PREFERRED_URL_SCHEME", "http")
    SESSION_COOKIE_SECURE = PREFERRED_URL_SCHEME == "https"
    REMEMBER_COOKIE_SECURE = SESSION_COOKIE_SECURE
    REMEMBER_COOKIE_HTTPONLY = True
    WTF_CSRF_ENABLED = True
    # Hostile users (docs/SECURITY.md): sign-in lockout, per-IP throttling, request size,
    # per-user limits, revocable sessions.
    LOGIN_MAX_FAILURES = _int("LOGIN_MAX_FAILURES", 5)  # password checks per lock period
    LOGIN_LOCK_SECONDS = _int("LOGIN_LOCK_SECONDS", 300)
    RATELIMIT_ENABLED = os.environ.get("RATELIMIT_ENABLED", "1") not in ("0", "false", "")
    AUTH_RATE_LIMIT = os.environ.get("AUTH_RATE_LIMIT", "20 per minute;200 per hour")
    RATELIMIT_STORAGE_URI = os.environ.get("RATELIMIT_STORAGE_URI", "")  # "" = by broker
    RATELIMIT_KEY_PREFIX = os.environ.get("RATELIMIT_KEY_PREFIX", "rivalscope")
    RATELIMIT_SWALLOW_ERRORS = True  # Redis down: count in memory, never fail the sign-in
    RATELIMIT_IN_MEMORY_FALLBACK_ENABLED = True
    TRUSTED_PROXY_COUNT = _int("TRUSTED_PROXY_COUNT", 0)  # X-Forwarded-For hops to trust
    MAX_CONTENT_LENGTH = _int("MAX_CONTENT_LENGTH", 1024 * 1024)
    MAX_JSON_DEPTH = _int("MAX_JSON_DEPTH", 32)
    MAX_FORM_ERRORS = _int("MAX_FORM_ERRORS", 50)
    USER_MAX_RUNNING_SITES = _int("USER_MAX_RUNNING_SITES", 20)  # 0 = no limit
    USER_MAX_BATCHES_PER_HOUR = _int("USER_MAX_BATCHES_PER_HOUR", 60)
    USER_MAX_PAGES_PER_DAY = _int("USER_MAX_PAGES_PER_DAY", 20000)
    REMEMBER_COOKIE_DURATION = timedelta(days=_int("REMEMBER_COOKIE_DAYS", 30))
    REMEMBER_COOKIE_SAMESITE = "Lax"
    ERROR_LOG_REPEAT_SECONDS = _int("ERROR_LOG_REPEAT_SECONDS", 300)
    CELERY_TASK_ALWAYS_EAGER = False
    CELERY_TASK_DEFAULT_QUEUE = os.environ.get("CELERY_TASK_DEFAULT_QUEUE", "celery")
    TESTING = False


class DevelopmentConfig(Config):
    """`make run`: embedded defaults."""

    ENV_NAME = "development"


class TestConfig(Config):
    """Tests: the database comes from TEST_DATABASE_URL, DATABASE_URL or a temp SQLite file."""

    ENV_NAME = "test"
    TESTING = True
    FETCH_DELAY_SECONDS = _float("FETCH_DELAY_SECONDS", 0.0)
    DATABASE_URL = os.environ.get(
        "TEST_DATABASE_URL",
        os.environ.get("DATABASE_URL", "sqlite:///" + str(INSTANCE_DIR / "test.db")))
    DB_POOL_TIMEOUT = _float("DB_POOL_TIMEOUT", 2.0)
    DB_NETWORK_GUARD_STRICT = os.environ.get("DB_NETWORK_GUARD_STRICT", "1") == "1"
    RATELIMIT_ENABLED = False  # tests turn it on with their own app (tests/routes/test_limits*)


class ProductionConfig(Config):
    """Production: SECRET_KEY must be set in the environment (the app refuses to start)."""

    ENV_NAME = "production"
    SECRET_KEY = os.environ.get("SECRET_KEY", "")


CONFIGS = {
    "development": DevelopmentConfig,
    "test": TestConfig,
    "production": ProductionConfig,
}


def config_from_env() -> type[Config]:
    """The config class named by RIVALSCOPE_ENV (default development)."""
    return CONFIGS[os.environ.get("RIVALSCOPE_ENV", "development")]
