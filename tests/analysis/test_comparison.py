"""compare(): directions, ties, None ("n/a") never winning and distinct from 0, the winner
rule (best and good, proved by a property test), gaps and strengths ranked by points, and the
own-site standing."""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from analysis.comparison import METRICS_BY_KEY, compare, pick_winners, standing
from analysis.html_facts import SECURITY_HEADERS
from analysis.report import build_report


def report(**changes) -> dict:
    base = build_report([], None, None)
    base.update(
        final_url="https://a.example/",
        status_code=200,
        https=True,
        response_time_ms=300,
        page_bytes=10_000,
        title="Title",
        word_count=100,
        pages_crawled=1,
    )
    base.update(changes)
    return base


def metric(result: dict, key: str) -> dict:
    return next(m for m in result["metrics"] if m["key"] == key)


def test_shape_and_json():
    result = compare({"1": report(), "2": None})
    assert set(result) == {"metrics", "scores", "gaps", "gap_details", "strengths"}
    for item in result["metrics"]:
        assert set(item) == {"key", "label", "better", "values", "winners"}
        assert item["better"] in {"higher", "lower"}
        assert set(item["values"]) == {"1", "2"}
    assert json.loads(json.dumps(result)) == result


def test_lower_and_higher_directions():
    result = compare({"1": report(response_time_ms=900, word_count=50),
                      "2": report(response_time_ms=120, word_count=700)})
    speed = metric(result, "response_time_ms")
    assert speed["better"] == "lower" and speed["winners"] == ["2"]
    assert speed["values"] == {"1": 900, "2": 120}
    words = metric(result, "word_count")
    assert words["better"] == "higher" and words["winners"] == ["2"]


def test_ties_give_several_winners():
    result = compare({"a": report(word_count=10), "b": report(word_count=30),
                      "c": report(word_count=30)})
    assert metric(result, "word_count")["winners"] == ["b", "c"]
    assert metric(result, "https")["winners"] == ["a", "b", "c"]


def test_boolean_row_without_the_good_value_has_no_winner():
    result = compare({"a": report(https=False, has_viewport=False),
                      "b": report(https=False, has_viewport=False)})
    assert metric(result, "https")["winners"] == []
    assert metric(result, "has_viewport")["winners"] == []
    assert metric(result, "emails")["winners"] == []  # nobody has one: 0 is no win
    assert metric(result, "broken_links")["winners"] == ["a", "b"]  # 0 broken links is good


def test_pages_crawled_is_information_without_winner():
    result = compare({"a": report(pages_crawled=3), "b": report(pages_crawled=10)})
    row = metric(result, "pages_crawled")
    assert METRICS_BY_KEY["pages_crawled"].info and row["winners"] == []
    assert row["values"] == {"a": 3, "b": 10}


def test_none_never_wins_and_differs_from_zero():
    failed = compare(
        {"1": None, "2": report(images_missing_alt=0), "3": report(images_missing_alt=4)}
    )
    alt = metric(failed, "images_missing_alt")
    assert alt["values"] == {"1": None, "2": 0, "3": 4}
    assert alt["winners"] == ["2"]  # 0 wins a "lower" metric; None does not
    assert failed["scores"]["1"] is None
    assert failed["gaps"]["1"] == []
    for item in failed["metrics"]:
        assert "1" not in item["winners"]
        assert item["values"]["1"] is None


def test_missing_field_is_none_not_zero():
    result = compare({"1": report(response_time_ms=None), "2": report(response_time_ms=800)})
    assert metric(result, "response_time_ms")["values"] == {"1": None, "2": 800}
    assert metric(result, "response_time_ms")["winners"] == ["2"]


def test_nobody_has_a_value_means_no_winners():
    result = compare({"1": None, "2": None})
    assert all(item["winners"] == [] for item in result["metrics"])
    assert pick_winners({"x": None}, "higher") == []
    assert pick_winners({}, "lower") == []


def test_scores_per_site():
    result = compare({"1": report(), "2": None})
    assert set(result["scores"]["1"]) == {"seo", "performance", "security", "content", "overall"}


def test_gaps_name_what_rivals_have():
    strong = report(
        meta_description="Described",
        security_headers=dict.fromkeys(SECURITY_HEADERS, True),
        social_profiles={"linkedin": "https://www.linkedin.com/company/s/"},
        emails=["hi@s.example"],
    )
    weak = report(https=False)
    also_weak = report()
    result = compare({"s": strong, "w": weak, "x": also_weak, "f": None})
    weak_gaps = result["gaps"]["w"]
    assert "Not served over HTTPS (2 of 2 rivals have it)" in weak_gaps
    assert "No meta description (1 of 2 rivals have it)" in weak_gaps
    assert "No Strict-Transport-Security header (1 of 2 rivals have it)" in weak_gaps
    assert "No LinkedIn profile link (1 of 2 rivals have it)" in weak_gaps
    assert "No public e-mail address (1 of 2 rivals have it)" in weak_gaps
    # nobody has a canonical link: not a gap for anyone
    assert not any("canonical" in gap for gaps in result["gaps"].values() for gap in gaps)
    assert not any("HTTPS" in gap for gap in result["gaps"]["x"])
    # ranked by the points a gap is worth: HTTPS (40 security points) comes first
    assert weak_gaps[0].startswith("Not served over HTTPS")
    points = [g["points"] for g in result["gap_details"]["w"]]
    scored = [p for p in points if p > 0]
    assert scored == sorted(scored, reverse=True) and points[: len(scored)] == scored
    assert result["gap_details"]["w"][0] == {
        "key": "security.https", "category": "security", "absent": True,
        "text": "Not served over HTTPS", "points": 40, "holders": 2, "rivals": 2,
        "advice": "Serve the site over HTTPS and redirect http:// to it."}
    strengths = {s["key"] for s in result["strengths"]["s"]}
    assert {"seo.description", "content.email", "content.social"} <= strengths
    assert "security.https" not in strengths  # the rival x is on https too
    assert result["strengths"]["w"] == [] or all(
        s["points"] > 0 for s in result["strengths"]["w"])


def test_single_site_wins_alone_and_has_no_gaps():
    result = compare({"7": report()})
    assert metric(result, "word_count")["winners"] == ["7"]
    assert result["gaps"] == {"7": []}


def test_standing_frames_the_own_site():
    result = compare({"own": report(word_count=500, https=False),
                      "r1": report(word_count=100), "r2": report(word_count=500)})
    rows = standing(result, "own")
    assert rows["word_count"] == "tie"
    assert rows["https"] == "trail"
    assert rows["pages_crawled"] is None
    lead = standing(compare({"own": report(word_count=900), "r": report()}), "own")
    assert lead["word_count"] == "lead"
    assert standing(result, None) == {}


SECURITY = st.fixed_dictionaries({name: st.booleans() for name in SECURITY_HEADERS})
REPORTS = st.one_of(st.none(), st.builds(
    report,
    https=st.booleans(),
    has_viewport=st.booleans(),
    response_time_ms=st.one_of(st.none(), st.integers(0, 6000)),
    page_bytes=st.one_of(st.none(), st.integers(0, 4_000_000)),
    word_count=st.integers(0, 3),
    h2_count=st.integers(0, 2),
    images_missing_alt=st.integers(0, 2),
    pages_crawled=st.integers(0, 3),
    emails=st.lists(st.just("a@b.example"), max_size=1),
    security_headers=SECURITY,
    issues=st.lists(st.fixed_dictionaries({"code": st.sampled_from(["broken_link", "slow_page"]),
                                           "count": st.integers(0, 2)}), max_size=2),
))


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.sampled_from("abcde"), REPORTS, min_size=1))
def test_property_a_winner_holds_the_best_value_and_it_is_good(reports):
    result = compare(reports)
    for row in result["metrics"]:
        present = {sid: v for sid, v in row["values"].items() if v is not None}
        if METRICS_BY_KEY[row["key"]].info or not present:
            assert row["winners"] == []
            continue
        best = (max if row["better"] == "higher" else min)(present.values())
        for winner in row["winners"]:
            assert row["values"][winner] == best  # a winner holds the best value ...
        rule = METRICS_BY_KEY[row["key"]]
        if row["winners"]:
            assert rule.good(best)  # ... and that value is a good one
            assert set(row["winners"]) == {sid for sid, v in present.items() if v == best}
            if isinstance(best, bool):
                assert best is True  # a boolean row is only won by the good value
        else:
            assert not rule.good(best)
