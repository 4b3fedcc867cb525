"""Schedule slots and the dispatcher on a frozen clock: DST neither skips nor doubles a
run, and a missed window gives exactly one catch-up run."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa

from models import WatchlistRun
from tests.factories import WatchlistFactory
from utils.operations.watchlists import RunOps, WatchlistOps
from utils.schedule import Schedule, latest_slot, next_slot, valid_timezone

# (zone, hour, a UTC instant a few days before the transition): spring gap and autumn repeat.
TRANSITIONS = [
    ("Europe/Berlin", 2, datetime(2026, 3, 26, tzinfo=UTC)),   # 02:00 does not exist 29 Mar
    ("Europe/Berlin", 2, datetime(2026, 10, 22, tzinfo=UTC)),  # 02:00 happens twice 25 Oct
    ("America/New_York", 2, datetime(2026, 3, 5, tzinfo=UTC)),  # 02:00 does not exist 8 Mar
    ("America/New_York", 1, datetime(2026, 10, 29, tzinfo=UTC)),  # 01:00 twice on 1 Nov
]


@pytest.mark.parametrize(("zone", "hour", "start"), TRANSITIONS)
def test_slots_are_one_per_local_day_across_dst(zone, hour, start):
    schedule = Schedule("day", hour, None, zone)
    slots, t = [], start
    for _ in range(8):
        t = next_slot(schedule, t)
        slots.append(t)
    days = [s.astimezone(ZoneInfo(zone)).date() for s in slots]
    assert days == [days[0] + timedelta(days=i) for i in range(8)]
    for slot in slots:
        local = slot.astimezone(ZoneInfo(zone))
        assert local.hour in (hour, hour + 1) and local.minute == 0
        assert latest_slot(schedule, slot) == slot
        assert latest_slot(schedule, slot - timedelta(seconds=1)) < slot


def test_weekly_slots_fall_on_the_weekday():
    schedule = Schedule("week", 9, 2, "Asia/Tokyo")
    t = datetime(2026, 1, 1, tzinfo=UTC)
    for _ in range(5):
        t = next_slot(schedule, t)
        local = t.astimezone(ZoneInfo("Asia/Tokyo"))
        assert (local.weekday(), local.hour) == (2, 9)
    assert next_slot(Schedule("off"), t) is None


def test_timezone_names_are_checked():
    assert valid_timezone("Europe/Berlin") and valid_timezone("UTC")
    assert not valid_timezone("Mars/Olympus") and not valid_timezone("../etc/passwd")
    assert not valid_timezone(None) and not valid_timezone("")


def _runs(session, watchlist_id) -> list[datetime]:
    return list(session.scalars(sa.select(WatchlistRun.scheduled_for)
                                .where(WatchlistRun.watchlist_id == watchlist_id)
                                .order_by(WatchlistRun.scheduled_for)))


@pytest.mark.parametrize(("zone", "hour", "start"), TRANSITIONS)
def test_frozen_clock_dispatcher_runs_once_per_day_across_dst(db_session, zone, hour, start):
    watchlist = WatchlistFactory(schedule_hour=hour, timezone=zone)
    WatchlistOps.reschedule(watchlist, start)
    db_session.flush()
    now, end = start, start + timedelta(days=6)
    while now < end:  # the clock ticks every 10 minutes
        now += timedelta(minutes=10)
        RunOps.dispatch(db_session, now)
    runs = _runs(db_session, watchlist.id)
    days = Counter(r.astimezone(ZoneInfo(zone)).date() for r in runs)
    assert len(runs) >= 5 and set(days.values()) == {1}
    assert sorted(days) == [min(days) + timedelta(days=i) for i in range(len(runs))]
    assert all(r.astimezone(ZoneInfo(zone)).hour in (hour, hour + 1) for r in runs)


def test_an_outage_of_three_slots_gives_one_catch_up_run(db_session):
    watchlist = WatchlistFactory(schedule_hour=6, timezone="UTC")
    day0 = datetime(2026, 5, 1, 6, 0, tzinfo=UTC)
    WatchlistOps.reschedule(watchlist, day0 - timedelta(minutes=1))
    db_session.flush()
    assert len(RunOps.dispatch(db_session, day0 + timedelta(seconds=20))) == 1
    # Down from day0 07:00 until day3 12:00: the slots of day1, day2 and day3 were missed.
    back = day0 + timedelta(days=3, hours=6)
    created = RunOps.dispatch(db_session, back)
    assert len(created) == 1
    assert RunOps.dispatch(db_session, back + timedelta(minutes=1)) == []
    assert _runs(db_session, watchlist.id) == [day0, day0 + timedelta(days=3)]
    assert len(RunOps.dispatch(db_session, day0 + timedelta(days=4, minutes=1))) == 1


def test_paused_and_off_watchlists_never_run(db_session):
    paused = WatchlistFactory(paused=True)
    off = WatchlistFactory(schedule_every="off")
    now = datetime(2026, 5, 1, 5, 0, tzinfo=UTC)
    for watchlist in (paused, off):
        WatchlistOps.reschedule(watchlist, now)
    db_session.flush()
    assert paused.next_due_at is None and off.next_due_at is None
    assert RunOps.dispatch(db_session, now + timedelta(days=3)) == []
