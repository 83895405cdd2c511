"""The keyword matcher: parsing keywords, whole-word matching, scores and independence."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from monitor.topics.matcher import Keyword, Matcher, TopicHit, TopicRule, parse_keyword


def rule(slug: str, *keywords: str, topic_id: int = 1, version: int = 1) -> TopicRule:
    """A topic rule from keyword texts."""
    return TopicRule(topic_id, slug, version, tuple(parse_keyword(k) for k in keywords))


def hits(keywords: list[str], title: str, body: str = "") -> list[TopicHit]:
    """The hits of one topic made of ``keywords``."""
    return Matcher([rule("topic", *keywords)]).match(title, body)


def matches(keyword: str, title: str, body: str = "") -> bool:
    """Whether a one-keyword topic matches."""
    return bool(hits([keyword], title, body))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("election", Keyword("election", ("election",))),
        ("  Election  ", Keyword("Election", ("election",))),
        ("Election Interference", Keyword("Election Interference", ("election", "interference"))),
        ("Élection", Keyword("Élection", ("election",))),
        ("elect*", Keyword("elect*", ("elect*",))),
        ("troll farm*", Keyword("troll farm*", ("troll", "farm*"))),
        ("e-mail", Keyword("e-mail", ("e", "mail"))),
        ("Russia’s", Keyword("Russia’s", ("russia", "s"))),
        ('"central bank"', Keyword('"central bank"', ("central", "bank"))),
        ("abc*", Keyword("abc*", ("abc*",))),
    ],
)
def test_parse_keyword_accepts(text: str, expected: Keyword) -> None:
    assert parse_keyword(text) == expected


@pytest.mark.parametrize(
    ("text", "complaint"),
    [
        ("", "empty"),
        ("   ", "empty"),
        ('""', "empty"),
        ("*", "no letters"),
        ("**", "no letters"),
        ("el*ection", "may only end a word"),
        ("elect**", "may only end a word"),
        ("*elect", "may only end a word"),
        ("ab*", "at least 3 letters"),
        ("e*", "at least 3 letters"),
        ("troll fa*", "at least 3 letters"),
    ],
)
def test_parse_keyword_rejects(text: str, complaint: str) -> None:
    with pytest.raises(ValueError, match=complaint):
        parse_keyword(text)


@pytest.mark.parametrize(
    ("keyword", "text", "expected"),
    [
        # case-insensitive
        ("election", "ELECTION day", True),
        ("Election Interference", "fears of election interference grow", True),
        # diacritics, both ways
        ("election", "Élection présidentielle", True),
        ("élection", "election night", True),
        ("munchen", "Polizei in München", True),
        # typographic apostrophes and quotes
        ("russia", "Russia’s envoy", True),
        ("russia", "Russia's envoy", True),
        ("russia’s envoy", "Russia's envoy", True),
        ("central bank", "the “central bank” said", True),
        # hyphenated words
        ("election interference", "an election-interference probe", True),
        ("e-mail", "send an e-mail", True),
        ("e-mail", "send an email", False),
        # phrases need consecutive words, in order
        ("central bank", "the central bank said", True),
        ("central bank", "central European bank", False),
        ("central bank", "bank central", False),
        ("central bank", "the central\n\nbank", True),
        # whole words only
        ("rt", "a fresh start", False),
        ("rt", "RT reported", True),
        ("election", "elections were held", False),
        ("election", "re-election bid", True),
        ("election", "reelection bid", False),
        # wildcards match words they start, and only those
        ("election*", "elections were held", True),
        ("election*", "election", True),
        ("election*", "reelections", False),
        ("troll farm*", "troll farms", True),
        ("troll farm*", "troll and farms", False),
        ("elect* interference", "electoral interference", True),
        # nothing in either field
        ("election", "", False),
    ],
)
def test_keyword_matches_text(keyword: str, text: str, expected: bool) -> None:
    assert matches(keyword, title=text) is expected
    assert matches(keyword, title="", body=text) is expected


@pytest.mark.parametrize(
    ("title", "body", "score"),
    [
        ("Election today", "", 3.0),
        ("", "Election today", 1.0),
        ("Election today", "The election is close", 4.0),
        ("Election, election", "election", 7.0),
        ("Nothing here", "election election election", 3.0),
    ],
)
def test_title_hits_weigh_three_times_body_hits(title: str, body: str, score: float) -> None:
    [hit] = hits(["election"], title, body)
    assert hit.score == score


def test_title_hit_outscores_one_body_hit() -> None:
    matcher = Matcher(
        [rule("in-title", "budget", topic_id=1), rule("in-body", "tariff", topic_id=2)]
    )

    found = matcher.match("Budget approved", "The tariff was discussed")

    assert [hit.slug for hit in found] == ["in-title", "in-body"]
    assert found[0].score > found[1].score


def test_terms_list_only_the_keywords_that_matched() -> None:
    [hit] = hits(
        ["central bank", "interest rate*", "inflation", "troll farm*"],
        "Central bank raises interest rates",
        "Markets shrugged.",
    )
    assert hit.terms == ("central bank", "interest rate*")


def test_hit_carries_topic_identity() -> None:
    matcher = Matcher([rule("banks", "bank", topic_id=42, version=7)])

    [hit] = matcher.match("Bank news", "")

    assert (hit.topic_id, hit.slug, hit.version) == (42, "banks", 7)


def test_hits_sorted_by_score_then_slug() -> None:
    matcher = Matcher(
        [
            rule("a-once", "alpha", topic_id=1),
            rule("b-twice", "beta", topic_id=2),
            rule("c-once", "gamma", topic_id=3),
            rule("d-none", "delta", topic_id=4),
        ]
    )

    found = matcher.match("", "gamma beta alpha beta")

    assert [(hit.slug, hit.score) for hit in found] == [
        ("b-twice", 2.0),
        ("a-once", 1.0),
        ("c-once", 1.0),
    ]


def test_no_topics_no_hits() -> None:
    assert Matcher([]).match("Election interference", "everywhere") == []


def test_nested_keywords_of_different_topics_all_match() -> None:
    matcher = Matcher(
        [
            rule("bank", "bank", topic_id=1),
            rule("central-bank", "central bank", topic_id=2),
            rule("central-bank-policy", "central bank policy", topic_id=3),
        ]
    )

    found = matcher.match("Central bank policy shifts", "")

    assert {hit.slug for hit in found} == {"bank", "central-bank", "central-bank-policy"}


_WORDS = ["election", "elections", "central", "bank", "russia", "troll", "farm", "farms", "rate"]
_KEYWORDS = [
    "election",
    "election*",
    "central bank",
    "bank",
    "russia",
    "troll farm*",
    "rate*",
    "farm",
    "central",
]


@settings(max_examples=200, deadline=None)
@given(
    topics=st.lists(
        st.lists(st.sampled_from(_KEYWORDS), min_size=1, max_size=3, unique=True),
        min_size=1,
        max_size=5,
    ),
    title=st.lists(st.sampled_from([*_WORDS, "Élections", "BANK", "the"]), max_size=8),
    body=st.lists(st.sampled_from([*_WORDS, "Russia’s", "farm-rate", "and"]), max_size=30),
)
def test_topic_hits_do_not_depend_on_other_topics(
    topics: list[list[str]], title: list[str], body: list[str]
) -> None:
    rules = [rule(f"topic-{i}", *kws, topic_id=i) for i, kws in enumerate(topics)]
    title_text, body_text = " ".join(title), " ".join(body)

    together = {hit.slug: hit for hit in Matcher(rules).match(title_text, body_text)}

    for one in rules:
        alone = Matcher([one]).match(title_text, body_text)
        assert alone == ([together[one.slug]] if one.slug in together else [])


@settings(max_examples=100, deadline=None)
@given(
    keyword=st.sampled_from(_KEYWORDS),
    text=st.lists(st.sampled_from(_WORDS), max_size=12),
)
def test_matching_ignores_ascii_case(keyword: str, text: list[str]) -> None:
    lower = " ".join(text)
    assert matches(keyword, lower) == matches(keyword.upper(), lower.upper())
    assert matches(keyword, lower) == matches(keyword, lower.title())
