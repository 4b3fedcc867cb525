"""Text PostgreSQL cannot store is cleaned in one place: unit properties, and a fuzzer that
stores hypothesis-generated report values through the real operations."""

from __future__ import annotations

import json
import string

import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from models import BatchEvent, Page, Site
from tests.factories import UserFactory
from utils.db_operations import BatchOps, EventOps, PageOps, SiteOps
from utils.storable import clean_parameters, clean_text, dumps_storable

NASTY = st.sampled_from(["\x00", "\ud800", "\udfff", "a\ud83d", "\\u0000", "\x00\x00",
                         "\ud83d\ude00", "\ufffe", "\x1b[0m", "é", "\u2028"])
TEXT = st.lists(st.one_of(st.text(st.characters(exclude_categories=[]), max_size=20), NASTY),
                max_size=4).map("".join)
SCALAR = st.one_of(st.none(), st.booleans(), st.integers(), TEXT,
                   st.floats(allow_nan=True, allow_infinity=True))
JSONISH = st.recursive(SCALAR, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(TEXT, inner, max_size=4)), max_leaves=20)


def walk_strings(value):
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield key
            yield from walk_strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from walk_strings(item)


def storable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return "\x00" not in text


@given(TEXT)
def test_clean_text_is_storable_and_keeps_clean_text(text):
    cleaned = clean_text(text)
    assert storable(cleaned)
    if storable(text):
        assert cleaned is text


@given(JSONISH)
def test_dumps_storable_gives_strict_utf8_json_without_nul(value):
    serialized = dumps_storable(value)
    serialized.encode("utf-8")
    assert "\\u0000" not in serialized.replace("\\\\", "")
    assert all(storable(s) for s in walk_strings(json.loads(serialized)))


def test_clean_parameters_cleans_every_shape():
    assert clean_parameters({"a": "x\x00y", "b": 1}) == {"a": "xy", "b": 1}
    assert clean_parameters(("x\x00", 2)) == ("x", 2)
    assert clean_parameters([{"a": "\ud800"}, {"a": "ok"}]) == [{"a": "\ufffd"}, {"a": "ok"}]
    clean = {"a": "fine"}
    assert clean_parameters(clean) is clean


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture,
                                 HealthCheck.too_slow])
@given(facts=JSONISH, report=JSONISH, title=TEXT, error=TEXT,
       url_tail=st.text(string.ascii_letters + string.digits + "/-._~%?=&", max_size=2000),
       final_tail=st.text(string.printable, max_size=3000))
def test_fuzzed_values_store_through_the_real_operations(db_session, facts, report, title,
                                                         error, url_tail, final_tail):
    """Whatever analysis yields, the operations store it (on PostgreSQL too)."""
    with db_session.begin_nested():
        user = UserFactory()
        batch = BatchOps.create(db_session, user.id, title[:200] or "b", ["http://a.test/"], 5)
        BatchOps.mark_started(db_session, batch.id, 600)
        site_id = db_session.scalar(sa.select(Site.id).where(Site.batch_id == batch.id))
        assert SiteOps.acquire_lease(db_session, site_id, "fuzz", 600)
        assert PageOps.store_leased(db_session, site_id, "fuzz", {
            "url": "http://a.test/" + url_tail, "final_url": "http://a.test/" + final_tail,
            "status_code": 200, "analysed": True, "title": title, "facts": facts}, 0)
        EventOps.add(db_session, batch.id, "fuzz", title + error, {"value": facts})
        status = SiteOps.finish(db_session, site_id, "fuzz", status="failed",
                                compare=lambda reports: {"reports": reports, "x": report},
                                report={"title": title, "value": report},
                                error=error)
        assert status == "failed"
        db_session.flush()
        db_session.expire_all()
        stored = db_session.get(Site, site_id)
        page = db_session.scalar(sa.select(Page).where(Page.site_id == site_id))
        event = db_session.scalar(sa.select(BatchEvent).where(BatchEvent.kind == "fuzz"))
        for text in [stored.error or "", page.url, *walk_strings(stored.report),
                     *walk_strings(page.record), event.message, *walk_strings(event.data)]:
            assert storable(text)
        assert stored.report["title"] == clean_text(title)
        # JSONB may reorder keys and respell numbers; the text must arrive as cleaned.
        assert sorted(walk_strings(stored.report["value"])) == sorted(
            walk_strings(json.loads(dumps_storable(report))))
        db_session.rollback()
