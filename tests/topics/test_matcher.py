"""The matcher: what each operator matches, spans, snippets, scores, explain, independence."""

from __future__ import annotations

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from monitor.text import fold, split_words
from monitor.topics.matcher import (
    SNIPPET_CHARS,
    TITLE_WEIGHT,
    ArticleView,
    Explanation,
    Matcher,
    Span,
    TopicHit,
    TopicRule,
    explain,
    words_of,
)
from monitor.topics.query import QuerySyntaxError, parse_query


def rule(query: str, slug: str = "topic", topic_id: int = 1, version: int = 1) -> TopicRule:
    """A topic rule from query text."""
    return TopicRule(topic_id, slug, version, parse_query(query))


def hits(query: str, title: str = "", text: str = "", **source: str) -> list[TopicHit]:
    """The hits of one topic with ``query``."""
    return Matcher([rule(query)]).match(ArticleView(title, text, **source))


def matches(query: str, title: str = "", text: str = "", **source: str) -> bool:
    """Whether a one-topic matcher matches."""
    return bool(hits(query, title, text, **source))


def only_hit(query: str, title: str = "", text: str = "", **source: str) -> TopicHit:
    """The one hit of a topic that must match."""
    [hit] = hits(query, title, text, **source)
    return hit


def marked(hit: TopicHit, article: ArticleView) -> list[tuple[str, str]]:
    """The (field, original text) of each span of ``hit``."""
    return [(span.field, getattr(article, span.field)[span.start : span.end]) for span in hit.spans]


def filler(count: int) -> str:
    """``count`` distinct filler words."""
    return " ".join(f"w{index}" for index in range(count))


# --- operator by operator --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "text", "expected"),
    [
        # terms: whole words, any case
        ("election", "ELECTION day", True),
        ("Election", "the election", True),
        ("election", "elections were held", False),
        ("election", "re-election bid", True),
        ("election", "reelection bid", False),
        ("rt", "a fresh start", False),
        ("rt", "RT reported", True),
        ("2024", "in 2024, again", True),
        ("2024", "in 20245", False),
        ("election", "", False),
        # quoted phrases: consecutive words in order, punctuation between them ignored
        ('"central bank"', "the central bank said", True),
        ('"central bank"', "central European bank", False),
        ('"central bank"', "bank central", False),
        ('"central bank"', "the central\n\nbank", True),
        ('"central bank"', "the central, bank", True),
        ('"central bank"', "the central banks", False),
        ('"influence the election"', "to influence the election", True),
        ('"influence the election"', "to influence an election", False),
        # trailing wildcard: words that start with the stem
        ("elect*", "elections were held", True),
        ("elect*", "elect", True),
        ("elect*", "re-elected", True),
        ("election*", "reelections", False),
        ("Élect*", "ÉLECTIONS", True),
        ('"troll farm*"', "troll farms", True),
        ('"troll farm*"', "troll and farms", False),
        ('"elect* interference"', "electoral interference", True),
        ('"elect* interference"', "electoral fraud", False),
        # AND and implicit AND
        ("russia AND election", "Russia holds an election", True),
        ("russia election", "an election in Russia", True),
        ("russia election", "Russia alone", False),
        ("russia election vote", "Russia election", False),
        # OR
        ("russia OR kremlin", "the Kremlin said", True),
        ("russia OR kremlin", "Moscow said", False),
        # NOT and the leading minus
        ("russia NOT sanctions", "Russia votes", True),
        ("russia NOT sanctions", "Russia sanctions", False),
        ("russia -sanctions", "Russia votes", True),
        ("russia -sanctions", "sanctions on Russia", False),
        ('russia -"fake news"', "Russia and fake news", False),
        ('russia -"fake news"', "Russia: news that is fake", True),
        ("russia -sanction*", "Russia sanctioned", False),
        ("russia NOT NOT election", "Russia election", True),
        ("russia NOT NOT election", "Russia", False),
        # parentheses and precedence
        ("(russia OR kremlin) AND election", "Kremlin election", True),
        ("(russia OR kremlin) AND election", "Kremlin vote", False),
        ("russia OR kremlin AND election", "Russia vote", True),
        ("russia OR kremlin AND election", "Kremlin vote", False),
        ("(russia OR kremlin) -(sanctions OR tariffs)", "Kremlin tariffs", False),
        ("(russia OR kremlin) -(sanctions OR tariffs)", "Kremlin vote", True),
        ("russia -(sanctions AND eu)", "Russia sanctions", True),
        ("russia -(sanctions AND eu)", "Russia, EU sanctions", False),
        # the example
        (
            '("election interference" OR meddl* OR "influence the election") '
            "AND (Russia* OR Kremlin)",
            "Russian meddling in the vote",
            True,
        ),
        (
            '("election interference" OR meddl* OR "influence the election") '
            "AND (Russia* OR Kremlin)",
            "Election interference by China",
            False,
        ),
    ],
)
def test_operator_matches_in_title_and_in_text(query: str, text: str, expected: bool) -> None:
    assert matches(query, title=text) is expected
    assert matches(query, text=text) is expected


@pytest.mark.parametrize(
    ("query", "title", "text", "expected"),
    [
        # unscoped words are looked for in title and text, NOT too
        ("russia election", "Russia", "the election", True),
        ("russia -sanctions", "Russia", "new sanctions", False),
        ("russia -sanctions", "Sanctions", "Russia", False),
        # a phrase never spans the two fields
        ('"russia election"', "Russia", "election", False),
    ],
)
def test_title_and_text_together(query: str, title: str, text: str, expected: bool) -> None:
    assert matches(query, title, text) is expected


# --- matching is insensitive to case, diacritics, typography; words are Unicode words ----------


@pytest.mark.parametrize(
    ("query", "text", "expected"),
    [
        # diacritics, both ways, composed or decomposed
        ("election", "Élection présidentielle", True),
        ("élection", "ELECTION night", True),
        ("ÉLECTION", "élection", True),
        ("election", "E\u0301lection (decomposed)", True),
        ("E\u0301lection", "élection", True),
        ("munchen", "Polizei in München", True),
        ("Zürich", "ZURICH", True),
        ("sao paulo", "São Paulo", True),
        # typographic quotes and apostrophes, in the text and in the query
        ("russia", "Russia’s envoy", True),
        ("russia", "Russia's envoy", True),
        ('"russia’s envoy"', "Russia's envoy", True),
        ('"russia\'s envoy"', "Russia’s envoy", True),
        ("“russia’s envoy”", "Russia’s envoy", True),
        ("“central bank”", "the central bank said", True),
        ("“central bank”", "the bank central", False),
        ("central", "the “central” bank", True),
        ("central", "the «central» bank", True),
        # Unicode words: Cyrillic and Greek, with their own case and accents
        ("москва", "Москва заявила", True),
        ("Москва", "МОСКВА", True),
        ("моск*", "в Москве", True),
        ("москва", "в Москве", False),
        ("выборы", "Выборы-2024", True),
        ('"выборы в москве"', "ВЫБОРЫ В МОСКВЕ", True),
        ("εκλογές", "ΕΚΛΟΓΕΣ στην Αθήνα", True),
        ("αθηνα", "Αθήνα", True),
        # compatibility forms
        ("finance", "ﬁnance news", True),
        ("tokyo", "Ｔｏｋｙｏ", True),
        # punctuation inside words
        ("U.S.", "U.S. sanctions", True),
        ("U.S.", "US sanctions", False),
        ('"u.s. sanctions"', "new U.S. sanctions", True),
        ("e-mail", "send an e-mail", True),
        ("e-mail", "send an e mail", True),
        ("e-mail", "send an email", False),
        ("email", "send an e-mail", False),
        ("snake", "snake_case", True),
        # hyphenated words
        ("election", "an election-interference probe", True),
        ('"election interference"', "an election-interference probe", True),
        ("election-interference", "election interference", True),
    ],
)
def test_matching_ignores_case_diacritics_and_typography(
    query: str, text: str, expected: bool
) -> None:
    assert matches(query, title=text) is expected
    assert matches(query, text=text) is expected


# --- NEAR ------------------------------------------------------------------------------------


@pytest.mark.parametrize("distance", [0, 1, 2, 5, 10, 50])
@pytest.mark.parametrize("operator", ["NEAR", "ONEAR"])
def test_near_at_its_boundary(distance: int, operator: str) -> None:
    """The distance is the number of words between the two sides, as in SQLite FTS5."""
    query = f"alpha {operator}/{distance} omega"
    assert matches(query, text=f"alpha {filler(distance)} omega")
    assert not matches(query, text=f"alpha {filler(distance + 1)} omega")
    # NEAR matches either order; ONEAR only the order written
    assert matches(query, text=f"omega {filler(distance)} alpha") is (operator == "NEAR")
    assert not matches(query, text=f"omega {filler(distance + 1)} alpha")


def test_near_alone_means_near_10() -> None:
    assert matches("alpha NEAR omega", text=f"alpha {filler(10)} omega")
    assert not matches("alpha NEAR omega", text=f"alpha {filler(11)} omega")
    assert matches("alpha ONEAR omega", text=f"alpha {filler(10)} omega")
    assert not matches("alpha ONEAR omega", text=f"omega {filler(1)} alpha")


@pytest.mark.parametrize(
    ("query", "text", "expected"),
    [
        # phrases: the distance runs from the end of one to the start of the other
        ('"central bank" NEAR/2 "interest rates"', "central bank raised its interest rates", True),
        (
            '"central bank" NEAR/2 "interest rates"',
            "central bank raised all its interest rates",
            False,
        ),
        (
            '"central bank" NEAR/4 "interest rates"',
            "interest rates were cut by the central bank",
            True,
        ),
        (
            '"central bank" NEAR/3 "interest rates"',
            "interest rates were cut by the central bank",
            False,
        ),
        ('"central bank" NEAR/2 "interest rates"', "central interest rates bank", False),
        # OR groups on either side
        ("(russia OR kremlin) NEAR/2 (election OR vote)", "the kremlin rigged the vote", True),
        ("(russia OR kremlin) NEAR/2 (election OR vote)", "kremlin w0 w1 w2 vote", False),
        ("(russia OR kremlin) NEAR/2 (election OR vote)", "vote for russia", True),
        # wildcards
        ("russia* NEAR/1 elect*", "Russian meddling in elections", False),
        ("russia* NEAR/2 elect*", "Russian meddling in elections", True),
        # any close pair will do, far ones do not
        ("russia NEAR/2 election", f"russia {filler(20)} election w0 russia", True),
        ("russia NEAR/2 election", f"russia {filler(20)} election", False),
        # the same word on both sides needs two occurrences
        ("russia NEAR/5 russia", "russia only", False),
        ("russia NEAR/5 russia", "russia and russia", True),
        # (README: a word is never near itself), also when a prefix and a word can be one
        ("bush NEAR/3 bush", "Bush", False),
        ("elect* NEAR/5 election", "the election", False),
        ("elect* NEAR/5 election", "elected in the election", True),
        # words split by punctuation count: Russia's (curly or not) is two words
        ("russia NEAR/0 election", "Russia’s election", False),
        ("russia NEAR/1 election", "Russia’s election", True),
        # chained: the first pair, then near the third
        ("a1 NEAR/1 b1 NEAR/1 c1", "a1 b1 c1", True),
        ("a1 NEAR/1 b1 NEAR/1 c1", "a1 b1 w0 w1 c1", False),
        # NEAR inside AND, OR, NOT
        ("russia NEAR/1 election AND vote", "russia election vote", True),
        ("russia NEAR/1 election AND vote", "russia election", False),
        ("vote -(russia NEAR/1 election)", "vote: russia w0 w1 election", True),
        ("vote -(russia NEAR/1 election)", "vote: russia election", False),
    ],
)
def test_near(query: str, text: str, expected: bool) -> None:
    assert matches(query, text=text) is expected
    assert matches(query, title=text) is expected


@pytest.mark.parametrize(
    ("title", "text"),
    [("Russia", "election"), ("Election", "Russia"), ("the end: Russia", "Election: a start")],
)
def test_near_never_spans_title_and_text(title: str, text: str) -> None:
    assert not matches("russia NEAR/10 election", title, text)
    assert matches("russia AND election", title, text)


# --- fields ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "article", "expected"),
    [
        ("title:election", ArticleView("Election day", ""), True),
        ("title:election", ArticleView("", "election day"), False),
        ("text:election", ArticleView("", "election day"), True),
        ("text:election", ArticleView("Election day", ""), False),
        ('title:"central bank"', ArticleView("Central bank acts", "bank"), True),
        ("title:(russia OR kremlin)", ArticleView("Kremlin says", ""), True),
        ("title:(russia OR kremlin)", ArticleView("", "Kremlin says"), False),
        ("title:russia NEAR/2 election", ArticleView("Russia’s election", ""), True),
        ("title:russia NEAR/2 election", ArticleView("Russia", "election"), False),
        ("title:(russia NEAR/2 election)", ArticleView("x", "russia election"), False),
        ("election -title:opinion", ArticleView("Opinion", "election"), False),
        ("election -title:opinion", ArticleView("News", "election opinion"), True),
        # author: only when asked for; unscoped words are not looked for there
        ("author:smith", ArticleView("", "", author="Jane Smith"), True),
        ("author:smith", ArticleView("", "Smith said"), False),
        ('author:"jane smith"', ArticleView("", "", author="Smith, Jane"), False),
        ("smith", ArticleView("", "", author="Jane Smith"), False),
        # site: the host of the article URL, subdomains included
        ("site:example.com", ArticleView("", "", url="https://example.com/a"), True),
        ("site:example.com", ArticleView("", "", url="https://www.example.com/a"), True),
        ("site:example.com", ArticleView("", "", url="http://news.EXAMPLE.com:8080/a"), True),
        ("site:Example.COM", ArticleView("", "", url="https://example.com./a"), True),
        ("site:example.com", ArticleView("", "", url="https://notexample.com/a"), False),
        ("site:example.com", ArticleView("", "", url="https://example.com.evil.org/"), False),
        ("site:example.com", ArticleView("", "", url="https://evil.org/example.com"), False),
        ("site:example.com", ArticleView("", ""), False),
        ("site:news.example.com", ArticleView("", "", url="https://example.com/a"), False),
        # feed: words of the feed title, or the feed URL's host when the value has a dot
        ("feed:bbc", ArticleView("", "", feed_title="BBC News - World"), True),
        ('feed:"bbc news"', ArticleView("", "", feed_title="BBC News - World"), True),
        ('feed:"news bbc"', ArticleView("", "", feed_title="BBC News - World"), False),
        ("feed:bbc", ArticleView("", "", feed_title="BBCNews"), False),
        ("feed:bbc", ArticleView("", "BBC", feed_url="https://bbc.co.uk/rss"), False),
        (
            "feed:bbc.co.uk",
            ArticleView("", "", feed_url="https://feeds.bbc.co.uk/news/rss.xml"),
            True,
        ),
        ("feed:bbc.co.uk", ArticleView("", "", feed_url="https://bbc.com/rss"), False),
        ("feed:bbc.co.uk", ArticleView("", "", feed_title="bbc.co.uk headlines"), True),
        # lang: the language, or any of its regional variants
        ("lang:en", ArticleView("", "", language="en"), True),
        ("lang:en", ArticleView("", "", language="EN"), True),
        ("lang:en", ArticleView("", "", language="en-GB"), True),
        ("lang:en", ArticleView("", "", language="en_US"), True),
        ("lang:en", ArticleView("", "", language="eng"), False),
        ("lang:en", ArticleView("", "", language="fr"), False),
        ("lang:en", ArticleView("", ""), False),
        ("lang:en-GB", ArticleView("", "", language="en_GB"), True),
        ("lang:en-GB", ArticleView("", "", language="en"), False),
        ("lang:en_US", ArticleView("", "", language="en-US"), True),
        # sources combine with words
        ("lang:fr élection", ArticleView("", "Election", language="fr-CA"), True),
        ("lang:fr élection", ArticleView("", "Election", language="en"), False),
        (
            "election -site:example.com",
            ArticleView("", "election", url="https://example.com"),
            False,
        ),
        ("election -site:example.com", ArticleView("", "election", url="https://other.org"), True),
        ("site:example.com -election", ArticleView("", "vote", url="https://example.com"), True),
        (
            "site:example.com -election",
            ArticleView("", "election", url="https://example.com"),
            False,
        ),
        ("site:example.com OR vote", ArticleView("", "", url="https://example.com"), True),
        ("site:example.com OR vote", ArticleView("", "vote", url="https://x.org"), True),
    ],
)
def test_fields(query: str, article: ArticleView, expected: bool) -> None:
    assert bool(Matcher([rule(query)]).match(article)) is expected


# --- spans -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "article", "expected"),
    [
        (
            "russia",
            ArticleView("", "Russia’s envoy met “Russia” officials"),
            [("text", "Russia"), ("text", "Russia")],
        ),
        ("election", ArticleView("", "Une Élection, deux élections"), [("text", "Élection")]),
        ("election", ArticleView("", "La E\u0301lection!"), [("text", "E\u0301lection")]),
        ("москва", ArticleView("", "Заявление: «Москва» ответит"), [("text", "Москва")]),
        ("москва", ArticleView("", "В Москва́ тихо"), [("text", "Москва́")]),
        ("αθηνα", ArticleView("Αθήνα σήμερα", ""), [("title", "Αθήνα")]),
        (
            '"central bank"',
            ArticleView("", "The “Central   Bank” said"),
            [("text", "Central   Bank")],
        ),
        (
            "“russia’s envoy”",
            ArticleView("", "“Russia’s envoy” spoke"),
            [("text", "Russia’s envoy")],
        ),
        ("U.S.", ArticleView("", "new U.S. sanctions"), [("text", "U.S")]),
        (
            "elect*",
            ArticleView("Elections", "re-elected"),
            [("title", "Elections"), ("text", "elected")],
        ),
        ("finance", ArticleView("", "ﬁnance news"), [("text", "ﬁnance")]),
        ("abc", ArticleView("", "the ⓐbc"), [("text", "ⓐbc")]),
        (
            "title:russia OR text:kremlin",
            ArticleView("Russia and the Kremlin", "Kremlin and Russia"),
            [("title", "Russia"), ("text", "Kremlin")],
        ),
    ],
)
def test_spans_point_at_the_matched_words(
    query: str, article: ArticleView, expected: list[tuple[str, str]]
) -> None:
    [hit] = Matcher([rule(query)]).match(article)
    assert marked(hit, article) == expected


def test_spans_give_exact_offsets() -> None:
    text = "“Élection”: Russia’s élection, again"
    hit = only_hit("élection", text=text)
    assert hit.spans == (Span("text", 1, 9), Span("text", 21, 29))


# --- only the occurrences that made the query match count --------------------------------------


@pytest.mark.parametrize(
    ("query", "title", "text", "score", "terms", "spans"),
    [
        ("election", "Election today", "", TITLE_WEIGHT, {"election"}, ["Election"]),
        ("election", "", "Election today", 1.0, {"election"}, ["Election"]),
        ("election", "Election today", "The election is close", 4.0, {"election"}, None),
        ("election", "Election, election", "election", 7.0, {"election"}, None),
        ('"central bank"', "", "central bank", 1.0, {"central bank"}, ["central bank"]),
        ("russia OR kremlin", "", "Russia, Kremlin", 2.0, {"russia", "kremlin"}, None),
        # a NEAR counts only the close pair, not far-away occurrences of its words
        (
            "russia NEAR/2 election",
            "",
            f"Russia {filler(30)} the election in Russia {filler(30)} election",
            2.0,
            {"russia", "election"},
            ["election", "Russia"],
        ),
        # a branch that failed does not count
        ("(alpha AND beta) OR gamma", "", "alpha gamma", 1.0, {"gamma"}, ["gamma"]),
        ("(alpha AND beta) OR gamma", "", "alpha beta gamma", 3.0, None, None),
        ("(alpha NEAR/0 beta) OR gamma", "", "alpha w0 beta gamma", 1.0, {"gamma"}, ["gamma"]),
        # excluded words never count
        ("russia -(sanctions AND eu)", "", "Russia sanctions", 1.0, {"russia"}, ["Russia"]),
        # in the title a NEAR pair weighs three times as much
        ("russia NEAR/1 election", "Russia election", "", 2 * TITLE_WEIGHT, None, None),
    ],
)
def test_score_terms_and_spans_count_what_matched(
    query: str,
    title: str,
    text: str,
    score: float,
    terms: set[str] | None,
    spans: list[str] | None,
) -> None:
    article = ArticleView(title, text)
    [hit] = Matcher([rule(query)]).match(article)
    assert hit.score == score
    if terms is not None:
        assert set(hit.terms) == terms
    if spans is not None:
        assert [marked_text for _, marked_text in marked(hit, article)] == spans


def test_title_hit_outscores_one_text_hit() -> None:
    matcher = Matcher([rule("budget", "in-title", 1), rule("tariff", "in-text", 2)])
    found = matcher.match(ArticleView("Budget approved", "The tariff was discussed"))
    assert [(hit.slug, hit.score) for hit in found] == [("in-title", 3.0), ("in-text", 1.0)]


def test_hits_sorted_by_score_then_slug() -> None:
    matcher = Matcher(
        [
            rule("alpha", "a-once", 1),
            rule("beta", "b-twice", 2),
            rule("gamma", "c-once", 3),
            rule("delta", "d-none", 4),
        ]
    )
    found = matcher.match(ArticleView("", "gamma beta alpha beta"))
    assert [(hit.slug, hit.score) for hit in found] == [
        ("b-twice", 2.0),
        ("a-once", 1.0),
        ("c-once", 1.0),
    ]


def test_hit_carries_topic_identity() -> None:
    [hit] = Matcher([rule("bank", "banks", 42, 7)]).match(ArticleView("Bank news", ""))
    assert (hit.topic_id, hit.slug, hit.version) == (42, "banks", 7)


def test_no_topics_no_hits() -> None:
    assert Matcher([]).match(ArticleView("Election interference", "everywhere")) == []


def test_overlapping_literals_of_different_topics_all_match() -> None:
    matcher = Matcher(
        [
            rule("bank", "bank", 1),
            rule('"central bank"', "central-bank", 2),
            rule('"central bank policy"', "central-bank-policy", 3),
            rule("centr*", "centr", 4),
            rule('"central ban*"', "central-ban", 5),
            rule('"central bank policy" -bank', "never", 6),
        ]
    )
    found = matcher.match(ArticleView("Central bank policy shifts", ""))
    assert {hit.slug for hit in found} == {
        "bank",
        "central-bank",
        "central-bank-policy",
        "centr",
        "central-ban",
    }


def test_source_only_topic_needs_no_words() -> None:
    matcher = Matcher([rule("site:example.com", "example", 1), rule("election", "words", 2)])
    found = matcher.match(ArticleView("Weather", "sunny", url="https://example.com/w"))
    assert [hit.slug for hit in found] == ["example"]
    assert found[0].score == 0.0
    assert found[0].spans == ()


# --- snippets --------------------------------------------------------------------------------


def _highlighted(hit: TopicHit) -> list[str]:
    return [hit.snippet.text[start:end] for start, end in hit.snippet.highlights]


def test_snippet_shows_a_match_deep_in_a_long_text() -> None:
    text = f"{filler(150)} the Élection of 2024 {filler(150)}"
    hit = only_hit("election", text=text)
    snippet = hit.snippet.text
    assert snippet.startswith("… ")
    assert snippet.endswith(" …")
    assert len(snippet) <= SNIPPET_CHARS + 4
    assert _highlighted(hit) == ["Élection"]
    assert snippet[2:-2] in text  # cut from the text, at word boundaries
    assert text[text.index(snippet[2:-2]) - 1] == " "


def test_snippet_of_a_match_at_the_start_has_no_leading_ellipsis() -> None:
    hit = only_hit("election", text=f"Election fever. {filler(100)}")
    assert hit.snippet.text.startswith("Election fever. w0")
    assert hit.snippet.highlights[0] == (0, 8)


def test_snippet_prefers_where_matches_cluster() -> None:
    text = f"russia {filler(100)} Russia, the Kremlin and Russia again {filler(100)}"
    hit = only_hit("russia OR kremlin", text=text)
    assert _highlighted(hit) == ["Russia", "Kremlin", "Russia"]


@pytest.mark.parametrize(
    ("query", "text", "words"),
    [
        ("москва", f"{filler(60)} Заявление: «Москва» ответит. {filler(60)}", ["Москва"]),
        ('"central bank"', f"{filler(60)} the “Central\nBank” said {filler(60)}", ["Central Bank"]),
        ("russia", "Russia’s envoy met “Russia” officials", ["Russia", "Russia"]),
        ("election", f"line one\n{filler(70)}\nÉlection\n{filler(70)}", ["Élection"]),
    ],
)
def test_snippet_highlights_point_at_the_matched_words(
    query: str, text: str, words: list[str]
) -> None:
    hit = only_hit(query, text=text)
    assert _highlighted(hit) == words
    assert "\n" not in hit.snippet.text


def test_title_only_match_has_a_plain_snippet_of_the_text() -> None:
    hit = only_hit("title:election", "Election day", "Polls open at eight. The weather is fine.")
    assert hit.snippet.text == "Polls open at eight. The weather is fine."
    assert hit.snippet.highlights == ()


# --- explain ---------------------------------------------------------------------------------


def test_explain_says_which_clauses_matched_and_where() -> None:
    article = ArticleView("Kremlin denies", "Russia said the election was fair")
    query = 'russia NEAR/3 election OR title:kremlin -"fake news"'
    lines = explain(rule(query), article)
    assert [(line.depth, line.clause, line.matched) for line in lines] == [
        (0, "OR", True),
        (1, "NEAR/3", True),
        (2, "russia", True),
        (2, "election", True),
        (1, "AND", True),
        (2, "title:", True),
        (3, "kremlin", True),
        (2, "NOT", True),
        (3, '"fake news"', False),
    ]
    spans = {line.clause: marked_spans(line, article) for line in lines}
    assert spans["NEAR/3"] == [("text", "Russia said the election")]
    assert spans["russia"] == [("text", "Russia")]
    assert spans["kremlin"] == [("title", "Kremlin")]
    assert spans['"fake news"'] == []


def test_explain_of_a_query_that_does_not_match() -> None:
    article = ArticleView("", "Russia w0 w1 w2 w3 election; fake news")
    lines = explain(rule('russia NEAR/3 election -"fake news"'), article)
    assert [(line.clause, line.matched) for line in lines] == [
        ("AND", False),
        ("NEAR/3", False),
        ("russia", True),
        ("election", True),
        ("NOT", False),
        ('"fake news"', True),
    ]


def marked_spans(line: Explanation, article: ArticleView) -> list[tuple[str, str]]:
    """The (field, original text) of each span of an explanation line."""
    return [(s.field, getattr(article, s.field)[s.start : s.end]) for s in line.spans]


# --- properties ------------------------------------------------------------------------------

# Words and punctuation that articles are made of, in several scripts and typographies.
_ARTICLE_WORDS = [
    "Russia",
    "russia",
    "Russia’s",
    "Russian",
    "Kremlin",
    "election",
    "Élection",
    "E\u0301lections",
    "elected",
    "central",
    "bank",
    "Central-Bank",
    "U.S.",
    "sanctions",
    "vote",
    "Москва",
    "Москве",
    "ΕΚΛΟΓΕΣ",
    "ⓐbc",
    "ﬁnance",
    "the",
    "and",
]
_PUNCTUATION = [" ", " ", " ", ", ", ". ", " “", "” ", " — ", "\n", " (", ") ", " € "]


@st.composite
def _texts(draw: st.DrawFn, max_words: int = 20) -> str:
    words = draw(st.lists(st.sampled_from(_ARTICLE_WORDS), max_size=max_words))
    gaps = draw(st.lists(st.sampled_from(_PUNCTUATION), min_size=len(words), max_size=len(words)))
    return "".join(word + gap for word, gap in zip(words, gaps, strict=True))


_ATOMS = [
    "russia",
    "russia*",
    "kremlin",
    "election",
    "elect*",
    '"central bank"',
    "bank",
    "U.S.",
    "sanctions",
    "vote",
    "москв*",
    "εκλογες",
    "abc",
    "finance",
]
_POSITIONAL = st.sampled_from(_ATOMS) | st.tuples(
    st.sampled_from(_ATOMS), st.sampled_from(_ATOMS)
).map(lambda pair: f"({pair[0]} OR {pair[1]})")
_NEARS = st.tuples(
    _POSITIONAL, st.sampled_from(["NEAR/0", "NEAR/2", "NEAR", "ONEAR/3"]), _POSITIONAL
).map(" ".join)
_SCOPED = st.tuples(st.sampled_from(["title:", "text:"]), _POSITIONAL | _NEARS).map("".join)
_SOURCES = st.sampled_from(["site:example.com", "lang:en", "feed:bbc"])


def _queries() -> st.SearchStrategy[str]:
    base = st.sampled_from(_ATOMS) | _NEARS | _SCOPED | _SOURCES
    return st.recursive(
        base,
        lambda inner: st.tuples(
            inner, st.sampled_from([" AND ", " OR ", " ", " -", " NOT "]), inner
        ).map(lambda parts: f"({''.join(parts)})"),
        max_leaves=5,
    )


def _parsed(query: str) -> TopicRule | None:
    try:
        return rule(query)
    except QuerySyntaxError:
        return None


@settings(max_examples=150, deadline=None)
@given(
    queries=st.lists(_queries(), min_size=1, max_size=6),
    title=_texts(max_words=8),
    text=_texts(max_words=30),
    url=st.sampled_from(["", "https://example.com/a", "https://news.example.com/b"]),
    language=st.sampled_from(["", "en", "en-GB", "fr"]),
    feed_title=st.sampled_from(["", "BBC News"]),
)
def test_topic_hits_do_not_depend_on_other_topics(
    queries: list[str], title: str, text: str, url: str, language: str, feed_title: str
) -> None:
    parsed = [_parsed(query) for query in queries]
    rules = [
        TopicRule(index, f"topic-{index}", 1, one.query)
        for index, one in enumerate(parsed)
        if one is not None
    ]
    assume(rules)
    article = ArticleView(title, text, url=url, language=language, feed_title=feed_title)

    together = {hit.slug: hit for hit in Matcher(rules).match(article)}

    for one in rules:
        alone = Matcher([one]).match(article)
        assert alone == ([together[one.slug]] if one.slug in together else [])


@settings(max_examples=300, deadline=None)
@given(
    st.text() | _texts() | st.text(st.sampled_from("aé e\u0301ⓐ’“—€_-.,1Σσς\u094dक"), max_size=30)
)
def test_article_words_are_the_words_of_the_folded_text(text: str) -> None:
    assert words_of(text) == split_words(fold(text))


@settings(max_examples=200, deadline=None)
@given(text=_texts(max_words=30), index=st.integers(min_value=0))
def test_spans_of_any_word_point_at_that_word(text: str, index: int) -> None:
    words = split_words(fold(text))
    assume(words)
    word = words[index % len(words)]
    hit = only_hit(word, text=text)
    assert hit.spans
    for span in hit.spans:
        assert split_words(fold(text[span.start : span.end])) == [word]
    for start, end in hit.snippet.highlights:
        assert split_words(fold(hit.snippet.text[start:end])) == [word]
    assert hit.score == len(hit.spans) == words.count(word)


@settings(max_examples=100, deadline=None)
@given(query=st.sampled_from(_ATOMS), text=_texts())
def test_matching_ignores_case(query: str, text: str) -> None:
    expected = matches(query, text=text)
    assert matches(query.upper(), text=text) is expected
    assert matches(query, text=text.upper()) is expected
    assert matches(query, text=text.lower()) is expected


# --- the short cuts give the answers of the long way ------------------------------------------


NEWS = [
    ArticleView("Russia and the election", "Kremlin meddling in the election, officials say."),
    ArticleView("Weather", "Rain in Paris; the election is far away. Russia is not mentioned."),
    ArticleView("Kremlin denies", "The Kremlin denied any interference. Russian trolls, again."),
    ArticleView("Markets", "Shares fell in Tokyo and London as oil rose."),
]
TOPICS = [
    rule("(Russia* OR Kremlin) AND election", "a", 1),
    rule("Kremlin NEAR/3 interference", "b", 2),
    rule('"the election" AND NOT title:weather', "c", 3),
    rule("(oil OR shares) AND (Tokyo OR London) AND NOT Kremlin", "d", 4),
]


def test_choosing_triggers_from_what_was_seen_changes_no_match(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("monitor.topics.matcher.OBSERVED_ARTICLES", 2)
    matcher = Matcher(TOPICS)
    plan = matcher._plan
    before = [matcher.match(article) for article in NEWS]
    after = [matcher.match(article) for article in NEWS]
    # After two articles, topic b waits on "interference" (not seen) rather than on "Kremlin".
    assert matcher._plan.triggers != plan.triggers
    assert after == before
    assert [sorted(hit.slug for hit in hits) for hits in after] == [["a", "c"], ["a"], ["b"], ["d"]]


def test_near_with_many_places_finds_what_trying_every_pair_finds(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    text = " ".join(["alpha w1 w2 w3 w4 w5 w6 beta w7 w8"] * 6 + ["gamma w9 w10 delta"])
    # alpha at 0, 10 ... 50; beta at 7, 17 ... 57: a beta is 6 words after an alpha and
    # 2 before the next; gamma at 60, delta at 63.
    queries = [
        "alpha NEAR/1 beta",
        "alpha NEAR/2 beta",
        "beta ONEAR/1 alpha",
        "beta ONEAR/2 alpha",
        "alpha ONEAR/5 beta",
        "alpha ONEAR/6 beta",
        "(alpha OR gamma) NEAR/2 delta",
        "delta ONEAR/5 gamma",
    ]
    sorted_way = [matches(query, text=text) for query in queries]
    monkeypatch.setattr("monitor.topics.matcher.NEAR_PAIRS_TRIED", 10**9)
    every_pair = [matches(query, text=text) for query in queries]
    assert sorted_way == every_pair == [False, True, False, True, False, True, True, False]


@pytest.mark.parametrize("looked_up", [0, 1, 1000])
def test_spans_are_the_same_placed_one_by_one_or_all_at_once(
    monkeypatch: pytest.MonkeyPatch, looked_up: int
) -> None:
    monkeypatch.setattr("monitor.topics.matcher.CHAR_STARTS_LOOKED_UP", looked_up)
    article = ArticleView(
        "Vote, vote: the vote",
        "Vote!  Then  “vote” again, vote-vote and voters vote... vote",
    )
    hit = Matcher([rule("vote")]).match(article)[0]
    in_title = [("title", "Vote"), ("title", "vote"), ("title", "vote")]
    assert marked(hit, article) == [*in_title, ("text", "Vote"), *[("text", "vote")] * 5]
