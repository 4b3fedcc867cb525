"""Watchlist schedule slots: daily or weekly at an hour in an IANA time zone.

A slot is the wall-clock hour on one local date, turned into UTC. Each local date gives at
most one slot, so daylight-saving changes neither skip nor double a run: an hour that does
not exist (spring forward) runs at the moment the clocks jump, an hour that happens twice
(fall back) runs at its first occurrence.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

EVERY = ("off", "day", "week")
_SEARCH_DAYS = 9  # a weekly slot is always found within 8 local dates


@dataclass(frozen=True)
class Schedule:
    """``every`` is off, day or week; ``weekday`` 0 = Monday (weekly only)."""

    every: str = "off"
    hour: int = 6
    weekday: int | None = None
    timezone: str = "UTC"

    @property
    def active(self) -> bool:
        return self.every in ("day", "week")


@lru_cache(maxsize=1)
def _zone_names() -> frozenset[str]:
    return frozenset(available_timezones())


def valid_timezone(name: object) -> bool:
    """An IANA zone name zoneinfo knows (no file paths, no odd spellings)."""
    if not isinstance(name, str) or name not in _zone_names():
        return False
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


def slot_on(day: date, hour: int, zone: str) -> datetime:
    """The UTC instant of ``hour``:00 local time on ``day`` (fold=0: first occurrence; a
    hole in the clock maps to the instant the clocks jump past it)."""
    local = datetime.combine(day, time(hour), tzinfo=ZoneInfo(zone)).replace(fold=0)
    # fold=0 takes the offset in force before a transition: a missing hour maps to the
    # instant the clocks jump, a repeated hour to its first occurrence.
    return local.astimezone(UTC)


def _runs_on(schedule: Schedule, day: date) -> bool:
    return schedule.every == "day" or (schedule.every == "week"
                                       and day.weekday() == (schedule.weekday or 0))


def latest_slot(schedule: Schedule, now: datetime) -> datetime | None:
    """The most recent slot at or before ``now`` (None when the schedule is off)."""
    if not schedule.active:
        return None
    today = now.astimezone(ZoneInfo(schedule.timezone)).date()
    for back in range(_SEARCH_DAYS):
        day = today - timedelta(days=back)
        if _runs_on(schedule, day):
            slot = slot_on(day, schedule.hour, schedule.timezone)
            if slot <= now:
                return slot
    return None


def next_slot(schedule: Schedule, after: datetime) -> datetime | None:
    """The first slot strictly after ``after`` (None when the schedule is off)."""
    if not schedule.active:
        return None
    start = after.astimezone(ZoneInfo(schedule.timezone)).date() - timedelta(days=1)
    for ahead in range(_SEARCH_DAYS + 1):
        day = start + timedelta(days=ahead)
        if _runs_on(schedule, day):
            slot = slot_on(day, schedule.hour, schedule.timezone)
            if slot > after:
                return slot
    return None  # pragma: no cover - unreachable for valid schedules
