"""``match``: one compiled Matcher over ~3 KB articles, for 3, 100 and 1,000 topics.

The shipped topics come from config/topics.yaml. The generated ones are boolean queries of 20
terms and phrases each, shaped as analysts write them: OR groups inside AND, NOT clauses,
NEAR/n and ONEAR/n between OR groups, title: scopes, 2-3 word phrases and ``stem*``
wildcards. Their words come from the articles' own vocabulary, from words that are neither
everywhere nor nowhere (by the share of articles they occur in), so a realistic share of
articles hits some topics. The 100-topic set is the first 100 of the 1,000.

Figures per topic set: compile time (Matcher() on parsed queries; parsing is shown apart),
throughput on one core (CPU time of this single thread), topics hit per article, and the memory
the compiled matcher keeps (allocations traced with tracemalloc, the automaton's included).
"""

from __future__ import annotations

import gc
import random
import time
import tracemalloc
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from statistics import median

from benchmarks.common import TOPICS_FILE, Table, find_corpus, progress, rate
from benchmarks.text import SampleArticle, average_chars, sample_articles
from monitor.topics.catalog import read_topics_file
from monitor.topics.matcher import ArticleView, Matcher, TopicRule, words_of
from monitor.topics.query import And, Field, Near, Node, Not, Or, Words, parse_query

TITLE = "match: one Matcher for every topic, on ~3 KB articles"
ARTICLES = 1000
MIN_SECONDS = 3.0
MIN_PASSES = 2  # passes over every article, however long they take
TOPIC_COUNTS = (100, 1000)
TERMS_PER_TOPIC = 20
SEED = 20240906
# Bands of document frequency: the share of the sample articles a term occurs in. Broad terms
# ("market", "engineer*") say what a topic is about and sit in AND groups and beside NEAR;
# narrow ones pin it down or exclude noise; rare ones (names, jargon) fill keyword lists.
BROAD = (0.02, 0.08)
NARROW = (0.005, 0.02)
RARE = (0.001, 0.005)
# The commonest words only ever appear inside phrases ("influence the election").
STOPWORDS = 150
MIN_WORD, MAX_WORD = 4, 20
MIN_STEM = 5  # letters before a wildcard's *
# Shares of term kinds: phrases and wildcards; the rest are single words.
PHRASE_SHARE = 0.3
WILDCARD_SHARE = 0.15


@dataclass(frozen=True, slots=True)
class Terms:
    """Words, phrases and wildcard stems that occur in a band of document frequency."""

    words: list[str]
    phrases: list[str]
    stems: list[str]

    def __len__(self) -> int:
        return len(self.words) + len(self.phrases) + len(self.stems)


@dataclass(frozen=True, slots=True)
class Vocabulary:
    """Terms of the articles, by how widely they occur."""

    broad: Terms
    narrow: Terms
    rare: Terms


@dataclass(frozen=True, slots=True)
class TopicSet:
    """Parsed topics, with a name for the table."""

    name: str
    rules: list[TopicRule]
    parse_seconds: float

    @property
    def patterns(self) -> int:
        """Terms and phrases in all queries together (one automaton pattern each)."""
        return sum(len(_words(rule.query)) for rule in self.rules)

    @property
    def distinct_patterns(self) -> int:
        """Distinct terms and phrases: what the automaton holds."""
        return len({words.tokens for rule in self.rules for words in _words(rule.query)})

    def count(self, kind: Callable[[Words], bool]) -> int:
        """How many terms are of one kind."""
        return sum(kind(words) for rule in self.rules for words in _words(rule.query))


@dataclass(frozen=True, slots=True)
class MatchRun:
    """One topic set compiled and matched against the articles."""

    compile_seconds: float
    traced_mb: float
    passes: list[float]  # CPU seconds of each pass over all the articles
    hits: int
    articles_hit: int


def _words(node: Node) -> list[Words]:
    if isinstance(node, Words):
        return [node]
    if isinstance(node, And | Or):
        return [words for clause in node.clauses for words in _words(clause)]
    if isinstance(node, Not | Field):
        return _words(node.clause)
    if isinstance(node, Near):
        return _words(node.left) + _words(node.right)
    return []


# --- topics -------------------------------------------------------------------------------


def shipped_topics() -> TopicSet:
    """The enabled topics of config/topics.yaml."""
    started = time.process_time()
    specs = [spec for spec in read_topics_file(TOPICS_FILE) if spec.enabled]
    rules = [
        TopicRule(number, spec.slug, 1, parse_query(spec.effective_query))
        for number, spec in enumerate(specs, start=1)
    ]
    return TopicSet(f"config: {len(rules)}", rules, time.process_time() - started)


def vocabulary(articles: list[SampleArticle]) -> Vocabulary:
    """Words, 2-3 word phrases and word stems, by the share of articles they occur in."""
    tokenised = [words_of(f"{article.title}\n{article.body}") for article in articles]
    words: Counter[str] = Counter()
    for tokens in tokenised:
        words.update(set(tokens))
    common = {word for word, _ in words.most_common(STOPWORDS)}
    phrases: Counter[str] = Counter()
    stems: Counter[str] = Counter()
    for tokens in tokenised:
        found = set()
        for first, second, third in zip(tokens, tokens[1:], [*tokens[2:], ""], strict=False):
            if _content(first, common) and _content(second, common):
                found.add(f"{first} {second}")
            if _content(first, common) and second in common and _content(third, common):
                found.add(f"{first} {second} {third}")
        phrases.update(found)
        # A stem stands for the words it starts: "negotiat*" for negotiate, negotiations...
        stems.update({word[:cut] for word in set(tokens) for cut in range(MIN_STEM, len(word) - 1)})
    total = len(articles)

    def band(counts: Counter[str], low: float, high: float) -> list[str]:
        return sorted(term for term, count in counts.items() if low * total <= count < high * total)

    def terms(low: float, high: float) -> Terms:
        return Terms(
            [word for word in band(words, low, high) if _content(word, common)],
            band(phrases, low, high),
            [stem for stem in band(stems, low, high) if stem.isalpha() and words[stem] == 0],
        )

    return Vocabulary(terms(*BROAD), terms(*NARROW), terms(*RARE))


def _content(word: str, common: set[str]) -> bool:
    return MIN_WORD <= len(word) <= MAX_WORD and word.isalpha() and word not in common


class _TopicWriter:
    """Queries of exactly TERMS_PER_TOPIC terms in a handful of shapes."""

    def __init__(self, vocab: Vocabulary, rng: random.Random) -> None:
        self.vocab = vocab
        self.rng = rng

    def term(self, terms: Terms) -> str:
        """A word, now and then a phrase or a wildcard."""
        kind = self.rng.random()
        if kind < PHRASE_SHARE and terms.phrases:
            return f'"{self.rng.choice(terms.phrases)}"'
        if kind < PHRASE_SHARE + WILDCARD_SHARE and terms.stems:
            return f"{self.rng.choice(terms.stems)}*"
        return self.rng.choice(terms.words)

    def group(self, terms: Terms, size: int) -> str:
        """``size`` terms ORed, in parentheses."""
        chosen = [self.term(terms) for _ in range(size)]
        return chosen[0] if size == 1 else "(" + " OR ".join(chosen) + ")"

    def near(self) -> str:
        return self.rng.choice(("NEAR/5", "NEAR/10", "NEAR/15", "NEAR", "ONEAR/3"))

    def query(self) -> str:
        """One query of TERMS_PER_TOPIC terms; the shapes' shares add up to 1."""
        broad, narrow, rare = self.vocab.broad, self.vocab.narrow, self.vocab.rare
        shape = self.rng.random()
        if shape < 0.2:  # names, in context, minus noise
            names, context = self.group(rare, 12), self.group(broad, 5)
            return f"{names} AND {context} AND NOT {self.group(narrow, 3)}"
        if shape < 0.55:  # a subject AND specifics, minus noise
            subject, specifics = self.group(broad, 6), self.group(rare, 10)
            return f"{subject} AND {specifics} AND NOT {self.group(narrow, 4)}"
        if shape < 0.85:  # two OR groups near each other, or a few telling phrases
            pair = f"{self.group(broad, 7)} {self.near()} {self.group(narrow, 7)}"
            extra = " OR ".join(self.term(rare) for _ in range(3))
            return f"({pair} OR {extra}) AND NOT {self.group(narrow, 3)}"
        # a bit of everything: title scope, two NEAR pairs inside an OR, a title exclusion
        return (
            f"(title:{self.group(broad, 4)} OR {self.group(narrow, 4)}) AND "
            f"({self.term(narrow)} {self.near()} {self.term(broad)} OR "
            f"{self.group(narrow, 2)} {self.near()} {self.group(narrow, 2)} OR "
            f"{self.group(rare, 3)}) AND NOT title:{self.group(narrow, 3)}"
        )


def generated_queries(vocab: Vocabulary, rng: random.Random, count: int) -> list[str]:
    """``count`` queries of TERMS_PER_TOPIC terms each."""
    writer = _TopicWriter(vocab, rng)
    return [writer.query() for _ in range(count)]


def generated_topics(queries: list[str], count: int) -> TopicSet:
    """The first ``count`` queries, parsed."""
    started = time.process_time()
    rules = [
        TopicRule(number, f"topic-{number:04d}", 1, parse_query(query))
        for number, query in enumerate(queries[:count], start=1)
    ]
    return TopicSet(f"{count:,} x {TERMS_PER_TOPIC}", rules, time.process_time() - started)


# --- measuring ----------------------------------------------------------------------------


def traced_matcher_mb(rules: list[TopicRule]) -> float:
    """What a Matcher over ``rules`` keeps allocated, traced by tracemalloc, in MB."""
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        matcher = Matcher(rules)
        gc.collect()
        after = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    del matcher
    return (after - before) / (1024 * 1024)


def match_articles(topic_set: TopicSet, views: list[ArticleView]) -> MatchRun:
    """Compile ``topic_set``, then match every article, pass after pass, for MIN_SECONDS.

    Times are CPU time: this single-threaded process's time on one core, which other processes
    on the machine do not add to (they can still slow it down, hence the best pass as well as
    the median). Hits are counted in the first pass.
    """
    traced = traced_matcher_mb(topic_set.rules)
    gc.collect()
    started = time.process_time()
    matcher = Matcher(topic_set.rules)
    compile_seconds = time.process_time() - started
    hits = [len(matcher.match(view)) for view in views]
    passes = [time.process_time() - started - compile_seconds]
    while sum(passes) < MIN_SECONDS or len(passes) < MIN_PASSES:
        started = time.process_time()
        for view in views:
            matcher.match(view)
        passes.append(time.process_time() - started)
    return MatchRun(compile_seconds, traced, passes, sum(hits), sum(1 for n in hits if n))


def _is_phrase(words: Words) -> bool:
    return len(words.tokens) > 1


def _is_wildcard(words: Words) -> bool:
    return any(token.endswith("*") for token in words.tokens)


def run() -> list[Table]:
    """Match the sample articles against each topic set and tabulate the figures."""
    rng = random.Random(SEED)
    progress("match: building sample articles")
    articles, source = sample_articles(find_corpus(), count=ARTICLES, rng=rng)
    views = [ArticleView(title=article.title, text=article.body) for article in articles]
    vocab = vocabulary(articles)
    queries = generated_queries(vocab, rng, max(TOPIC_COUNTS))
    topic_sets = [shipped_topics(), *(generated_topics(queries, n) for n in TOPIC_COUNTS)]
    runs = []
    for topic_set in topic_sets:
        progress(f"match: {topic_set.name}")
        runs.append(match_articles(topic_set, views))
    table = Table(TITLE, [topic_set.name for topic_set in topic_sets])
    table.add("topics", "", *(len(t.rules) for t in topic_sets))
    table.add("patterns", "terms", *(t.patterns for t in topic_sets))
    table.add("distinct patterns", "", *(t.distinct_patterns for t in topic_sets))
    table.add("phrases", "terms", *(t.count(_is_phrase) for t in topic_sets))
    table.add("wildcards", "terms", *(t.count(_is_wildcard) for t in topic_sets))
    table.add("parse queries", "ms", *(1000 * t.parse_seconds for t in topic_sets))
    table.add("compile", "ms", *(1000 * r.compile_seconds for r in runs))
    count = len(views)
    table.add("passes", f"x {count:,} articles", *(len(r.passes) for r in runs))
    table.add("throughput, best pass", "articles/s", *(rate(count, min(r.passes)) for r in runs))
    table.add("throughput, median", "articles/s", *(rate(count, median(r.passes)) for r in runs))
    table.add("per article, best pass", "ms", *(1000 * min(r.passes) / count for r in runs))
    table.add("topics hit", "per article", *(r.hits / count for r in runs))
    table.add("articles hit", "%", *(100 * r.articles_hit / count for r in runs))
    table.add("matcher memory", "MB traced", *(r.traced_mb for r in runs))
    table.notes.append(
        f"{len(articles)} distinct articles, {average_chars(articles):,.0f} chars on average; "
        f"{source}; one thread, CPU time; each column makes at least {MIN_PASSES} passes and "
        f"{MIN_SECONDS:g} s"
    )
    table.notes.append(
        f"generated topics: {TERMS_PER_TOPIC} terms each, drawn by the share of articles they "
        f"occur in: {len(vocab.broad):,} broad ({BROAD[0]:.0%}-{BROAD[1]:.0%}), "
        f"{len(vocab.narrow):,} narrow ({NARROW[0]:.1%}-{NARROW[1]:.0%}), "
        f"{len(vocab.rare):,} rare ({RARE[0]:.1%}-{RARE[1]:.1%})"
    )
    table.notes.append(
        "compile: Matcher() on parsed queries, CPU time (parsing shown apart); memory: what the "
        "compiled matcher keeps allocated, by tracemalloc (the automaton included)"
    )
    table.notes.append(
        "goals (issue 3): 5,000 articles/s with 2,000 patterns, 3,000 with 20,000; "
        "compile under 2 s for 1,000 topics"
    )
    return [table]
