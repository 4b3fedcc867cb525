"""robots.txt: fetch, obey (RFC 9309, via protego) and describe for the report.

- 2xx: parsed; its rules apply to our product token (``FetchConfig.robots_token``).
- 4xx (but 429), or more redirects than allowed: "unavailable" -> everything may be crawled.
- 5xx, 429, timeout, network error, refused address: "unreachable" -> nothing but the homepage.

The homepage itself is always fetched: it is the URL the user asked us to analyse.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import urljoin, urlsplit, urlunsplit

from protego import Protego

from analysis.fetcher import Fetcher, SlotProvider

MAX_ROBOTS_BYTES = 512 * 1024
_USER_AGENT_FIELDS = ("user-agent", "useragent", "user agent")
_SITE_WIDE_FIELDS = ("sitemap", "host")


def empty_facts() -> dict:
    """The report's robots facts when no robots.txt was found."""
    return {"found": False, "disallow_count": 0, "crawl_delay": None, "sitemaps": []}


@dataclass
class RobotsPolicy:
    """Whether URLs may be crawled, plus the report facts."""

    token: str
    facts: dict = field(default_factory=empty_facts)
    homepage_only: bool = False
    reason: str | None = None
    parser: Protego | None = None

    def can_fetch(self, url: str) -> bool:
        """May ``url`` (a page other than the homepage) be crawled?"""
        if self.homepage_only:
            return False
        if self.parser is None:
            return True
        return self.parser.can_fetch(url, self.token)

    @property
    def crawl_delay(self) -> float | None:
        return self.facts["crawl_delay"]


def robots_url_for(url: str) -> str:
    """``scheme://host[:port]/robots.txt`` for the origin of ``url``."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/robots.txt", "", ""))


def _ua_matches(group_agent: str, token: str) -> int:
    """Protego-compatible match score of a group's user-agent for our token (0 = none)."""
    if group_agent == "*":
        return 1
    name = token.strip().lower()
    index = name.find(group_agent)
    while index != -1:
        if index == 0 or not (name[index - 1].isalnum() or name[index - 1] in "-_"):
            return len(group_agent)
        index = name.find(group_agent, index + 1)
    return 0


def _disallow_counts(text: str) -> dict[str, int]:
    """Non-empty Disallow lines per user-agent, groups of the same agent merged."""
    counts: dict[str, int] = {}
    current: list[str] = []
    previous: str | None = None
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].strip()
        if ":" not in line:
            continue
        name, value = (part.strip() for part in line.split(":", 1))
        name = name.lower()
        if name in _USER_AGENT_FIELDS:
            if previous is not None and previous not in _USER_AGENT_FIELDS:
                current = []
            previous = name
            agent = value.lower()
            if agent != "*":
                agent = agent.replace("*", "")
            if agent and agent not in current:
                current.append(agent)
                counts.setdefault(agent, 0)
            continue
        if name in _SITE_WIDE_FIELDS:
            continue
        previous = name
        if name == "disallow" and value:
            for agent in current:
                counts[agent] += 1
    return counts


def disallow_count(text: str, token: str) -> int:
    """Non-empty Disallow lines in the group that applies to ``token`` (else the ``*`` group)."""
    best_score, best = 0, 0
    for agent, count in _disallow_counts(text).items():
        score = _ua_matches(agent, token)
        if score > best_score:
            best_score, best = score, count
    return best


def parse_robots(text: str, robots_url: str, token: str) -> RobotsPolicy:
    """Parse robots.txt text fetched from ``robots_url`` into a policy with report facts."""
    text = text.lstrip("\ufeff")
    parser = Protego.parse(text)
    delay = parser.crawl_delay(token)
    facts = {
        "found": True,
        "disallow_count": disallow_count(text, token),
        "crawl_delay": float(delay) if delay is not None else None,
        "sitemaps": [urljoin(robots_url, s.strip()) for s in parser.sitemaps if s.strip()],
    }
    return RobotsPolicy(token=token, facts=facts, parser=parser)


def fetch_robots(
    site_url: str, fetcher: Fetcher, politeness: SlotProvider | None = None
) -> RobotsPolicy:
    """Fetch and interpret the robots.txt of ``site_url``'s origin."""
    token = fetcher.config.robots_token
    url = robots_url_for(site_url)
    result = fetcher.fetch(url, politeness=politeness, max_bytes=MAX_ROBOTS_BYTES, truncate=True)
    status = result.status_code
    if result.error is None and status is not None and 200 <= status < 300:
        return parse_robots(result.body.decode("utf-8", errors="replace"), url, token)
    if status is not None and 400 <= status < 500 and status != 429:
        return RobotsPolicy(token=token, reason=f"robots.txt unavailable (HTTP {status})")
    if result.error and ("redirect" in result.error):
        return RobotsPolicy(token=token, reason=f"robots.txt unavailable ({result.error})")
    return RobotsPolicy(
        token=token,
        homepage_only=True,
        reason=f"robots.txt unreachable ({result.error}): only the homepage is crawled",
    )
