"""The fast paths of the page analysis give exactly what the plain definitions give.

Each reference below is the definition read literally (and the code these fast paths
replaced); hypothesis looks for any text where the two disagree.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from analysis.contacts import EMAIL_PATTERN, _plausible, emails_in_text
from analysis.html_facts import count_words
from analysis.page_links import resolve_http
from analysis.parse_budget import OPTION_WEIGHT, _Model, truncate_for_parser


def words_by_definition(text: str) -> int:
    return sum(1 for token in text.split() if any(ch.isalnum() for ch in token))


def emails_by_full_scan(text: str) -> set[str]:
    found = set()
    for match in EMAIL_PATTERN.finditer(text):
        address = match.group(0).lower()
        if _plausible(address):
            found.add(address)
    return found


# Letters, digits, "_", punctuation, Unicode spaces, digits of other scripts, marks.
tricky_chars = st.sampled_from(
    list("aZ09_-.,;!?@%+ \t\n\r\x0b\x0c\x1c\x1d\x85\xa0\u2002\u3000\u200b")
    + ["\u00e9", "\u0663", "\u00b2", "\u2160", "\u0301", "\U0001f600", "\ufeff", "\u00bd"])
texts = st.one_of(st.text(tricky_chars, max_size=300), st.text(max_size=300))


@settings(max_examples=400, deadline=None)
@given(texts)
def test_count_words_matches_the_definition(text: str) -> None:
    assert count_words(text) == words_by_definition(text)


def test_count_words_over_every_code_point() -> None:
    every = "".join(chr(c) for c in range(0x110000) if not 0xD800 <= c <= 0xDFFF)
    # each character alone, between spaces: a word exactly when it is alphanumeric
    spaced = " ".join(every)
    assert count_words(spaced) == words_by_definition(spaced)
    glued = " ".join(f"-{ch}-" for ch in every[::7])
    assert count_words(glued) == words_by_definition(glued)


email_chars = st.sampled_from(list("ab.z9_-%+@@ .com") + ["x" * 70, "@x.io", "a@b.com",
                                                             ".png", "\n", "é"])
email_texts = st.lists(email_chars, max_size=60).map("".join)


@settings(max_examples=600, deadline=None)
@given(st.one_of(email_texts, st.text(max_size=200)))
def test_emails_in_text_matches_a_full_scan(text: str) -> None:
    assert emails_in_text(text) == emails_by_full_scan(text)


@pytest.mark.parametrize("text", [
    "a@b.com@c.org",                       # the full scan consumes b.com: no b.com@c.org
    "x" * 63 + "y@example.com",             # a 64-character local part, the longest
    "x" * 65 + "@example.com",              # too long: the window must not cut it short
    "mail me: " + ("a" * 63 + ".") * 8 + "com",  # no "@" at all
    "@" * 1000 + "ok@example.org",
    "a@" + ("b" * 63 + ".") * 8 + "c" * 24 + " tail",  # the longest domain, then text
    "a@" + ("b" * 63 + ".") * 8 + "c" * 25,  # top label too long: no match at this "@"
])
def test_emails_in_text_edge_cases(text: str) -> None:
    assert emails_in_text(text) == emails_by_full_scan(text)


def model_only(text: str, budget: int) -> str:
    """truncate_for_parser's model with no shortcut (the code before the fast path)."""
    import analysis.parse_budget as pb

    model = _Model()
    work = 0
    foreign = 0
    for match in pb._TAG.finditer(text):
        closing, name, self_closing = match.group(1), match.group(2).lower(), match.group(3)
        if name in pb._FOREIGN:
            foreign = max(foreign - 1, 0) if closing else foreign + (not self_closing)
        if closing:
            model.close(name)
        elif name not in pb._VOID and not (self_closing and (foreign or name in pb._FOREIGN)):
            work += model.start(name)
        work += len(model.stack)
        if work > budget:
            return text[: match.start()]
    return text


tags = st.sampled_from(["<div>", "</div>", "<select>", "<option>", "<b>", "</b>", "<p>",
                        "<li>", "<svg>", "<g/>", "</svg>", "<img>", "text", "<", "<<a"])


@settings(max_examples=300, deadline=None)
@given(st.lists(tags, max_size=400), st.integers(min_value=0, max_value=20_000))
def test_truncate_fast_path_never_changes_the_cut(parts: list[str], budget: int) -> None:
    text = "".join(parts)
    assert truncate_for_parser(text, budget) == model_only(text, budget)


def test_truncate_bound_is_tight_enough_to_matter() -> None:
    # the worst case for T tags is T nested <option>s in a <select>: close to the bound
    tags_count = 300
    text = "<select>" + "<option><div>" * (tags_count // 2)
    bound = (OPTION_WEIGHT + 1) * text.count("<") ** 2
    assert model_only(text, bound) == text  # the bound holds: the model never cuts below it
    assert model_only(text, bound // 20) != text  # and is within a small factor of real work


def test_resolve_http_cache_keeps_relative_links_relative() -> None:
    # the cache holds absolute URLs only: the same href under two bases resolves twice
    assert resolve_http("p7", "http://example.com/a/page") == "http://example.com/a/p7"
    assert resolve_http("p7", "http://example.com/b/page") == "http://example.com/b/p7"
    assert resolve_http("/x y", "http://Example.COM:80/") == "http://example.com/x%20y"
    assert resolve_http("mailto:a@b.c", "http://example.com/") is None
