"""The page-analysis pool: a hard time budget enforced by killing the child, abortable, and
the pre-parse cut that keeps hostile tag soups far below it."""

from __future__ import annotations

import os
import threading
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from analysis.html_facts import analyze_page
from analysis.page_budget import (
    AnalysisAborted,
    AnalysisCrashed,
    AnalysisError,
    PagePool,
    ParseBudgetExceeded,
)
from analysis.parse_budget import truncate_for_parser

URL = "http://example.test/"
TARGETS = "tests.analysis.budget_targets"
OPTIONS = b"<select>" + b"<option>" * 600_000
RUBY = b"<rp>" * 1_200_000


@pytest.fixture
def pools():
    made: list[PagePool] = []

    def make(**kwargs) -> PagePool:
        pool = PagePool(**kwargs)
        made.append(pool)
        return pool

    yield make
    for pool in made:
        pool.close(abort=True)


def gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def test_facts_from_the_child_equal_the_in_process_ones(pools):
    body = (b"<html lang=en><head><title>Hi</title></head><body><h1>A</h1>"
            b"<a href='/x'>x</a><img src=a.png> mail@example.test</body></html>")
    headers = [("Content-Type", "text/html; charset=utf-8"), ("X-Frame-Options", "DENY")]
    pool = pools(budget_seconds=10)
    assert pool.analyse(body, URL, headers) == analyze_page(body, URL, headers)


@pytest.mark.parametrize("payload", [OPTIONS, RUBY], ids=["options", "rp"])
def test_the_reported_payloads_are_cut_before_parsing(pools, payload):
    text = payload.decode()
    cut = truncate_for_parser(text)
    assert text.startswith(cut) and len(cut) < len(text) // 10
    facts = pools(budget_seconds=10).analyse(payload, URL, [])  # well inside the budget
    assert facts["word_count"] == 0


def test_real_pages_with_options_and_ruby_are_not_cut():
    countries = "<select>" + "".join(f"<option value={i}>Country {i}" for i in range(300))
    ruby = "<p>" + "<ruby>漢<rp>(<rt>かん<rp>)</ruby>字" * 5000
    lists = "<ul>" + "<li><a href=/x>x</a><p>text" * 5000 + "</ul><dl>" + "<dt>a<dd>b" * 5000
    for text in (countries, ruby, lists):
        assert truncate_for_parser(text) == text


def test_a_runaway_parse_is_killed_and_its_child_replaced(pools):
    pool = pools(budget_seconds=1.5, target=f"{TARGETS}:raw_parse")
    first = pool.analyse(b"<p>warm", URL, [])  # a child is up and reused
    assert first == {"nodes": 4}
    [pid] = pool.children()
    started = time.monotonic()
    with pytest.raises(ParseBudgetExceeded) as caught:
        pool.analyse(OPTIONS, URL, [])  # lexbor alone needs minutes for this
    assert time.monotonic() - started < 1.5 + 5
    assert caught.value.code == "parse_budget_exceeded"
    assert str(caught.value).startswith("parse_budget_exceeded")
    assert gone(pid) and pool.killed == 1 and pool.children() == []
    assert pool.analyse(b"<p>again", URL, []) == {"nodes": 4}
    assert pool.children() != [pid]


def test_prestart_fills_the_pool_once_and_analyses_use_those_children(pools):
    pool = pools(max_children=3, target=f"{TARGETS}:raw_parse")
    assert pool.prestart() == 3
    started = set(pool.children())
    assert len(started) == 3 and pool.prestart() == 0  # already full
    assert pool.analyse(b"<p>warm", URL, []) == {"nodes": 4}
    assert set(pool.children()) == started  # no fourth interpreter
    pool.close()
    assert pool.prestart() == 0 and pool.children() == []
    assert all(gone(pid) or wait_gone(pid) for pid in started)


def wait_gone(pid: int, seconds: float = 10) -> bool:
    deadline = time.monotonic() + seconds
    while not gone(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    return gone(pid)


def test_close_with_abort_stops_an_analysis_in_progress(pools):
    pool = pools(budget_seconds=120, target=f"{TARGETS}:spin")
    outcome: list[BaseException] = []

    def run() -> None:
        try:
            pool.analyse(b"x", URL, [])
        except BaseException as exc:  # noqa: BLE001 - recorded for the assertion
            outcome.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    deadline = time.monotonic() + 10
    while not pool.children() and time.monotonic() < deadline:
        time.sleep(0.05)
    [pid] = pool.children()
    pool.close(abort=True)  # what warm shutdown does
    thread.join(10)
    assert not thread.is_alive()
    assert len(outcome) == 1 and isinstance(outcome[0], AnalysisAborted)
    assert gone(pid)
    with pytest.raises(AnalysisAborted):
        pool.analyse(b"x", URL, [])


def test_should_abort_stops_the_wait(pools):
    pool = pools(budget_seconds=120, target=f"{TARGETS}:spin")
    stop_at = time.monotonic() + 0.5
    with pytest.raises(AnalysisAborted):
        pool.analyse(b"x", URL, [], should_abort=lambda: time.monotonic() > stop_at)
    assert pool.children() == []  # the spinning child was killed, not left running


def test_errors_crashes_and_memory_hogs_are_reported_and_the_pool_recovers(pools):
    failing = pools(target=f"{TARGETS}:fail")
    with pytest.raises(AnalysisError, match="ValueError: bad page"):
        failing.analyse(b"x", URL, [])
    assert len(failing.children()) == 1  # an exception does not cost the child
    crashing = pools(target=f"{TARGETS}:crash")
    with pytest.raises(AnalysisCrashed):
        crashing.analyse(b"x", URL, [])
    assert crashing.children() == []
    hog = pools(target=f"{TARGETS}:hog", memory_limit_mb=512)
    with pytest.raises(AnalysisError, match="MemoryError"):
        hog.analyse(b"x", URL, [])


def test_threads_share_a_bounded_number_of_children(pools):
    pool = pools(max_children=2, target=f"{TARGETS}:echo")
    pids: set[int] = set()
    errors: list[BaseException] = []

    def run(n: int) -> None:
        try:
            for i in range(10):
                reply = pool.analyse(b"x" * (n * 10 + i), URL, [])
                assert reply["bytes"] == n * 10 + i
                pids.add(reply["pid"])
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(n,)) for n in range(5)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert errors == []
    assert 1 <= len(pids) <= 2


# --- the fuzzer ---------------------------------------------------------------------------------

TOKENS = [
    "<option>", "<select>", "<optgroup>", "<rp>", "<rt>", "<rb>", "<rtc>", "<ruby>", "<div>",
    "</div>", "<p>", "</p>", "<li>", "<dd>", "<dt>", "<table>", "<tr>", "<td>", "<a>", "</a>",
    "<b>", "</b>", "<i>", "<nobr>", "<font>", "<svg>", "<math>", "<foreignObject>", "<mi>",
    "<template>", "<button>", "<form>", "<h1>", "<ul>", "<span>", "<br/>", "<x-a/>", "x",
    "</html>", "<body>", "<caption>", "<object>", "<marquee>", "<listing>", "<!--", "-->",
]
FUZZ_BUDGET = 10.0


@pytest.fixture(scope="module")
def fuzz_pool_fixture():
    pool = PagePool(budget_seconds=FUZZ_BUDGET)
    yield pool
    pool.close(abort=True)


@settings(max_examples=20, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(prefix=st.lists(st.sampled_from(TOKENS), max_size=3),
       unit=st.lists(st.sampled_from(TOKENS), min_size=1, max_size=4),
       repeat=st.sampled_from([1_000, 20_000, 100_000, 300_000]))
def test_no_tag_soup_runs_past_the_budget_uncut(fuzz_pool_fixture, prefix, unit, repeat):
    """Every soup is analysed inside the budget or killed at it: never longer."""
    piece = "".join(unit)
    body = ("".join(prefix) + piece * min(repeat, 4_000_000 // len(piece))).encode()
    started = time.monotonic()
    try:
        facts = fuzz_pool_fixture.analyse(body, URL, [])
        assert isinstance(facts["word_count"], int)
    except ParseBudgetExceeded:
        pass
    assert time.monotonic() - started < FUZZ_BUDGET + 5


def test_children_get_no_secrets_in_their_environment(pools, monkeypatch):
    monkeypatch.setenv("DATABASE_URL", "postgresql://user:secret@127.0.0.1/x")
    monkeypatch.setenv("SECRET_KEY", "very-secret")
    keys = pools(target=f"{TARGETS}:environment").analyse(b"", URL, [])["keys"]
    assert "DATABASE_URL" not in keys and "SECRET_KEY" not in keys and "PYTHONPATH" in keys
