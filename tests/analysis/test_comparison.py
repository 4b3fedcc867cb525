"""compare(): directions, ties, None ("n/a") never winning and distinct from 0, gaps."""

from __future__ import annotations

import json

from analysis.comparison import compare, pick_winners
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
    assert set(result) == {"metrics", "scores", "gaps"}
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
    assert result["gaps"]["s"] == []
    assert not any("HTTPS" in gap for gap in result["gaps"]["x"])


def test_single_site_wins_alone_and_has_no_gaps():
    result = compare({"7": report()})
    assert metric(result, "word_count")["winners"] == ["7"]
    assert result["gaps"] == {"7": []}
