"""Emails and social profiles: decoys, mailto parsing, share/intent links, first profile wins."""

from __future__ import annotations

import pytest

from analysis.contacts import (
    emails_from_mailto,
    emails_in_text,
    extract_emails,
    extract_social_profiles,
    social_network,
)


@pytest.mark.parametrize(
    "text",
    [
        "logo@2x.png",
        "hero-image@3x.jpg",
        "sprite@2x.webp",
        "icon@1.5x.svg",
        "bundle@4.2.1.js",
        "style@main.css",
        "photo@large.jpeg",
        "not an address",
        "user@",
        "@example.com",
        "user@localhost",
    ],
)
def test_no_address_in_decoys(text):
    assert emails_in_text(text) == set()


def test_addresses_in_text_lower_cased():
    text = "Mail Info@Example.COM, or sales.team+eu@mail.example.co.uk. (ok@x.io)"
    assert emails_in_text(text) == {
        "info@example.com",
        "sales.team+eu@mail.example.co.uk",
        "ok@x.io",
    }


def test_mailto_before_question_mark_and_percent_decoded():
    assert emails_from_mailto("mailto:hello%40example.com?subject=Hi%20there&cc=x@y.com") == {
        "hello@example.com"
    }
    assert emails_from_mailto("MailTo:Jo%2Bnews@Example.com") == {"jo+news@example.com"}
    assert emails_from_mailto("mailto:a@example.com,%20b@example.com") == {
        "a@example.com",
        "b@example.com",
    }
    assert emails_from_mailto("mailto:?subject=nobody") == set()
    assert emails_from_mailto("mailto:logo@2x.png") == set()
    assert emails_from_mailto("https://example.com/a@b.com") == set()


def test_extract_emails_unique_sorted():
    result = extract_emails(
        ["mailto:Zed@example.com", "mailto:zed@example.com?subject=x"],
        "contact: amy@example.com or ZED@EXAMPLE.COM; img: a@2x.png",
    )
    assert result == ["amy@example.com", "zed@example.com"]


@pytest.mark.parametrize(
    ("url", "network"),
    [
        ("https://twitter.com/acme", "twitter"),
        ("https://x.com/acme", "twitter"),
        ("https://www.x.com/acme/", "twitter"),
        ("https://mobile.twitter.com/acme", "twitter"),
        ("https://www.linkedin.com/company/acme/", "linkedin"),
        ("https://uk.linkedin.com/in/jane-doe", "linkedin"),
        ("https://www.facebook.com/acme", "facebook"),
        ("https://www.facebook.com/profile.php?id=123", "facebook"),
        ("https://www.instagram.com/acme.official/", "instagram"),
        ("https://www.youtube.com/@acme", "youtube"),
        ("https://www.youtube.com/channel/UC123", "youtube"),
        ("https://youtube.com/c/Acme", "youtube"),
        ("https://github.com/acme", "github"),
        ("https://www.tiktok.com/@acme", "tiktok"),
    ],
)
def test_profiles_recognised(url, network):
    assert social_network(url) == network


@pytest.mark.parametrize(
    "url",
    [
        "https://twitter.com/intent/tweet?text=hello&url=https://a.com",
        "https://twitter.com/share?url=x",
        "https://x.com/intent/post?text=hi",
        "https://twitter.com/acme/status/123",
        "https://twitter.com/hashtag/news",
        "https://www.facebook.com/sharer/sharer.php?u=https://a.com",
        "https://www.facebook.com/sharer.php?u=x",
        "https://www.facebook.com/dialog/share?app_id=1",
        "https://www.facebook.com/profile.php",
        "https://www.linkedin.com/shareArticle?mini=true&url=x",
        "https://www.linkedin.com/sharing/share-offsite/?url=x",
        "https://www.linkedin.com/feed/",
        "https://www.instagram.com/p/abc123/",
        "https://www.youtube.com/watch?v=abc",
        "https://www.youtube.com/embed/abc",
        "https://youtu.be/abc",
        "https://github.com/features",
        "https://github.com/acme/repo",
        "https://www.tiktok.com/share/video/1",
        "https://help.twitter.com/en",
        "https://eviltwitter.com/acme",
        "https://twitter.com.evil.net/acme",
        "mailto:acme@twitter.com",
        "https://twitter.com/",
        "https://example.com/twitter.com/acme",
    ],
)
def test_share_intent_and_other_links_are_not_profiles(url):
    assert social_network(url) is None


def test_first_profile_wins_and_share_links_skipped():
    urls = [
        "https://twitter.com/intent/tweet?text=x",
        "https://www.facebook.com/sharer/sharer.php?u=x",
        "https://www.linkedin.com/shareArticle?mini=true",
        "https://x.com/first",
        "https://twitter.com/second",
        "https://www.facebook.com/acme",
        "https://www.facebook.com/acme-other",
    ]
    assert extract_social_profiles(urls) == {
        "twitter": "https://x.com/first",
        "facebook": "https://www.facebook.com/acme",
    }
