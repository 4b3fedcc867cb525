"""The beat lock in Redis: one holder, standby, takeover on release and on expiry."""

from __future__ import annotations

import logging
import os
import time
import uuid

import pytest
import redis

from utils.beat_lock import BeatLock

REDIS_URL = os.environ.get("TEST_REDIS_URL", "")
pytestmark = pytest.mark.skipif(not REDIS_URL, reason="needs TEST_REDIS_URL (Redis run)")


@pytest.fixture
def name() -> str:
    key = f"test-beat-lock-{uuid.uuid4().hex}"
    yield key
    client = redis.Redis.from_url(REDIS_URL)
    client.delete(key)
    client.close()


def test_one_holder_and_takeover_on_release(name: str) -> None:
    first, second = BeatLock(REDIS_URL, name=name, ttl=5), BeatLock(REDIS_URL, name=name, ttl=5)
    assert first.hold() is True
    assert second.hold() is False
    assert first.hold() is True  # renewal
    first.release()
    assert second.hold() is True
    assert first.hold() is False


def test_takeover_when_the_holder_stops_renewing(name: str,
                                                 caplog: pytest.LogCaptureFixture) -> None:
    first, second = BeatLock(REDIS_URL, name=name, ttl=1), BeatLock(REDIS_URL, name=name, ttl=1)
    assert first.hold() is True
    assert second.hold() is False
    time.sleep(1.2)  # the holder "died": no renewal within the TTL
    assert second.hold() is True
    with caplog.at_level(logging.WARNING, logger="utils.beat_lock"):
        assert first.hold() is False  # the late holder learns it lost and sends nothing
    assert "lost" in caplog.text
    assert second.hold() is True
