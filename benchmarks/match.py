"""``match``: the topic matcher on ~3 KB articles, with the shipped topics and with 100 more.

The generated topics draw their keywords from the articles' own vocabulary (less common words,
two-word phrases, and some ``stem*`` wildcards), so some of them match, as real ones do.
A third column swaps each wildcard for the whole word it was cut from, to show what wildcards
cost.
"""

from __future__ import annotations

import itertools
import random
from collections import Counter
from dataclasses import dataclass

from benchmarks.common import TOPICS_FILE, Clock, Table, find_corpus, progress, rate
from benchmarks.text import SampleArticle, average_chars, sample_articles
from monitor.topics.catalog import read_topics_file
from monitor.topics.matcher import Matcher, TopicRule, parse_keyword, words

TITLE = "match: Matcher.match on ~3 KB articles"
ARTICLES = 1000
MIN_SECONDS = 3.0
GENERATED_TOPICS = 100
KEYWORDS_PER_TOPIC = 20
SEED = 20240906
# Skip the most frequent words and phrases of the articles: nobody watches for "people".
COMMON_WORDS = 3000
COMMON_PAIRS = 1000


@dataclass(frozen=True, slots=True)
class TopicSet:
    """Topics as (slug, keywords) pairs, with a name for the table."""

    name: str
    topics: list[tuple[str, list[str]]]

    @property
    def keywords(self) -> int:
        """How many keywords all topics have together."""
        return sum(len(keywords) for _, keywords in self.topics)

    @property
    def wildcards(self) -> int:
        """How many of the keywords end in ``*``."""
        return sum(k.endswith("*") for _, keywords in self.topics for k in keywords)


@dataclass(frozen=True, slots=True)
class MatchRun:
    """One topic set matched against the articles."""

    compile_seconds: float
    articles: int
    seconds: float
    hits: int


def shipped_topics() -> TopicSet:
    """The enabled topics of config/topics.yaml."""
    specs = read_topics_file(TOPICS_FILE)
    topics = [(spec.slug, list(spec.keywords)) for spec in specs if spec.enabled]
    return TopicSet(f"config: {len(topics)} topics", topics)


def _vocabulary(articles: list[SampleArticle]) -> tuple[list[str], list[str]]:
    """Mid-frequency words and two-word phrases of the articles, most frequent first."""
    word_counts: Counter[str] = Counter()
    pair_counts: Counter[str] = Counter()
    for article in articles:
        tokens = words(f"{article.title}\n{article.body}")
        word_counts.update(t for t in tokens if len(t) >= 5 and t.isalpha())
        pair_counts.update(
            f"{a} {b}"
            for a, b in itertools.pairwise(tokens)
            if len(a) >= 4 and len(b) >= 4 and a.isalpha() and b.isalpha()
        )
    # Watched words are names and terms, not the common words every article has.
    single = [word for word, _ in word_counts.most_common(COMMON_WORDS + 20_000)[COMMON_WORDS:]]
    pairs = [pair for pair, _ in pair_counts.most_common(COMMON_PAIRS + 20_000)[COMMON_PAIRS:]]
    return single, pairs


def generated_topics(
    articles: list[SampleArticle], rng: random.Random
) -> tuple[TopicSet, TopicSet]:
    """100 topics of 20 keywords, and the same with each wildcard spelt out as its whole word."""
    single, pairs = _vocabulary(articles)
    with_wildcards, spelt_out = [], []
    for number in range(GENERATED_TOPICS):
        keywords, plain = [], []
        for _ in range(KEYWORDS_PER_TOPIC):
            kind = rng.random()
            if kind < 0.5 and pairs:
                keyword = word = rng.choice(pairs)
            else:
                word = rng.choice(single)
                cut = max(4, len(word) - 3)
                keyword = f"{word[:cut]}*" if kind >= 0.9 and cut < len(word) else word
            keywords.append(keyword)
            plain.append(word)
        with_wildcards.append((f"topic-{number:03d}", keywords))
        spelt_out.append((f"topic-{number:03d}", plain))
    name = f"{GENERATED_TOPICS} x {KEYWORDS_PER_TOPIC}"
    return TopicSet(name, with_wildcards), TopicSet(f"{name}, no *", spelt_out)


def compile_matcher(topic_set: TopicSet) -> Matcher:
    """Parse every keyword and build the matcher, as load_matcher does from the database."""
    return Matcher(
        TopicRule(number, slug, 1, tuple(parse_keyword(keyword) for keyword in keywords))
        for number, (slug, keywords) in enumerate(topic_set.topics, start=1)
    )


def match_articles(topic_set: TopicSet, articles: list[SampleArticle]) -> MatchRun:
    """Compile ``topic_set``, then match articles (cycling) for at least MIN_SECONDS."""
    clock = Clock()
    matcher = compile_matcher(topic_set)
    compile_seconds = clock.seconds()
    done = hits = 0
    clock = Clock()
    while clock.seconds() < MIN_SECONDS:
        article = articles[done % len(articles)]
        hits += len(matcher.match(article.title, article.body))
        done += 1
    return MatchRun(compile_seconds, done, clock.seconds(), hits)


def run() -> list[Table]:
    """Match the sample articles against each topic set and tabulate the figures."""
    rng = random.Random(SEED)
    progress("match: building sample articles")
    articles, source = sample_articles(find_corpus(), count=ARTICLES, rng=rng)
    topic_sets = [shipped_topics(), *generated_topics(articles, rng)]
    runs = []
    for topic_set in topic_sets:
        progress(f"match: {topic_set.name}")
        runs.append(match_articles(topic_set, articles))
    table = Table(TITLE, [topic_set.name for topic_set in topic_sets])
    table.add("keywords", "", *(t.keywords for t in topic_sets))
    table.add("wildcard keywords", "", *(t.wildcards for t in topic_sets))
    table.add("compile", "ms", *(1000 * r.compile_seconds for r in runs))
    table.add("articles matched", "", *(r.articles for r in runs))
    table.add("throughput", "articles/s", *(rate(r.articles, r.seconds) for r in runs))
    table.add("per article", "ms", *(1000 * r.seconds / max(r.articles, 1) for r in runs))
    table.add("topics hit", "per article", *(r.hits / max(r.articles, 1) for r in runs))
    table.notes.append(
        f"{GENERATED_TOPICS} x {KEYWORDS_PER_TOPIC}: generated topics of {KEYWORDS_PER_TOPIC} "
        "keywords; no *: each wildcard replaced by the word it was cut from"
    )
    table.notes.append(
        f"{len(articles)} distinct articles, {average_chars(articles):,.0f} chars on average; "
        f"{source}; each column runs for {MIN_SECONDS:g} s"
    )
    return [table]
