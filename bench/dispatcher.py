"""Dispatcher cost: what ``monitoring.dispatch_watchlists`` spends per minute with 1,000
watchlists on PostgreSQL (and the broker on Redis for the ``start_batch`` doorbells).

The clock is simulated: the bench calls the dispatcher's unit of work (claim with
``FOR UPDATE SKIP LOCKED``, create the runs and their batches, commit, sweep finished runs,
enqueue) once per simulated minute over a whole day, so every minute is timed without
waiting 24 hours. Phases:

- ``day``: 1,000 daily watchlists, hours spread over the day in four time zones;
- ``burst``: all 1,000 due in the same minute (the worst minute);
- ``quiet``: minutes where nothing is due (the common case).

    python bench/dispatcher.py [--watchlists 1000] [--sites 3]
"""

from __future__ import annotations

import argparse
import statistics
import time
from datetime import UTC, datetime, timedelta

from common import flush_redis, log, prepare_database, result_line, rivalscope_app

ZONES = ("UTC", "Europe/Berlin", "America/New_York", "Asia/Tokyo")


def dispatch_minute(session, now: datetime) -> tuple[float, int]:
    """One run of the dispatcher task's unit of work; returns (seconds, runs created)."""
    from tasks.monitoring_tasks import dispatch_once

    started = time.perf_counter()
    result = dispatch_once(session, now)
    return time.perf_counter() - started, len(result["runs"])


def create_watchlists(session, count: int, sites: int, start: datetime, *,
                      same_hour: bool) -> None:
    from models import User, Watchlist
    from utils.operations.watchlists import WatchlistOps, new_token

    user = User(email=f"bench{time.time_ns()}@example.test", password_hash="x")
    session.add(user)
    session.flush()
    for i in range(count):
        watchlist = Watchlist(
            user_id=user.id, name=f"watchlist {i}", feed_token=new_token(),
            urls=[f"https://site{i}-{j}.example/" for j in range(sites)], max_pages=5,
            schedule_every="day", schedule_hour=6 if same_hour else i % 24,
            timezone="UTC" if same_hour else ZONES[i % len(ZONES)], notify_emails=[])
        WatchlistOps.reschedule(watchlist, start)
        session.add(watchlist)
    session.commit()


def clear(session) -> None:
    import sqlalchemy as sa

    session.execute(sa.text("TRUNCATE watchlists, batches, users RESTART IDENTITY CASCADE"))
    session.commit()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--watchlists", type=int, default=1000)
    parser.add_argument("--sites", type=int, default=3)
    args = parser.parse_args()
    prepare_database()
    flush_redis()
    app = rivalscope_app()
    from sqlalchemy.orm import Session

    from models import db

    start = datetime(2026, 6, 1, tzinfo=UTC)
    with app.app_context(), Session(bind=db.engine, expire_on_commit=False) as session:
        create_watchlists(session, args.watchlists, args.sites, start, same_hour=False)
        log(f"{args.watchlists} watchlists created; simulating a day of dispatcher minutes")
        minutes, runs = [], 0
        for minute in range(1, 24 * 60 + 1):
            seconds, created = dispatch_minute(session, start + timedelta(minutes=minute))
            minutes.append((seconds, created))
            runs += created
        busy = [s for s, c in minutes if c]
        quiet = [s for s, c in minutes if not c]
        flush_redis()
        clear(session)
        create_watchlists(session, args.watchlists, args.sites, start, same_hour=True)
        burst, burst_runs = dispatch_minute(session, start + timedelta(hours=6, seconds=30))
        log(f"burst: {burst_runs} runs in {burst * 1000:.0f} ms")
        flush_redis()
    result_line(
        "dispatcher", backend="postgresql", watchlists=args.watchlists, sites=args.sites,
        day_runs=runs, day_total_s=f"{sum(s for s, _ in minutes):.2f}",
        quiet_minute_ms_median=f"{statistics.median(quiet) * 1000:.2f}",
        busy_minute_ms_median=f"{statistics.median(busy) * 1000:.1f}",
        busy_minute_ms_max=f"{max(busy) * 1000:.1f}",
        burst_runs=burst_runs, burst_minute_ms=f"{burst * 1000:.0f}")


if __name__ == "__main__":
    main()
