"""Match articles against every enabled topic at once.

All topics are compiled into one Aho-Corasick automaton over every word and phrase of every
query. An article is tokenised once per field; the automaton finds every occurrence of every
literal in one pass, and only topics with an occurrence (or with source-only clauses) have
their query evaluated. Each match carries a score, the character spans to highlight and a
snippet around the best of them.
"""

from __future__ import annotations

import bisect
import itertools
import math
import operator
import re
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import lru_cache, partial
from urllib.parse import urlsplit

import ahocorasick

from monitor.text import fold, split_words
from monitor.topics.forms import Variants, expand_rule
from monitor.topics.query import (
    And,
    Field,
    Near,
    Node,
    Not,
    Or,
    Source,
    Words,
    positional,
    requires_something,
)

TITLE, TEXT, AUTHOR = "title", "text", "author"
UNSCOPED = (TITLE, TEXT)
# A title hit says more about what an article is about than a passing mention in its body.
TITLE_WEIGHT = 3.0
SNIPPET_CHARS = 240
_Place = tuple[str, int, int]  # field, first word, word after the last
_second = operator.itemgetter(1)
# The most requirement groups an OR of groups expands to (see _requirements).
MAX_GROUPS = 16
# Articles whose literals are counted before each topic's trigger group is chosen again.
OBSERVED_ARTICLES = 200
# Words of a field placed one by one in the text before all of them are placed at once.
CHAR_STARTS_LOOKED_UP = 16
# Up to this many (left, right) place pairs, NEAR tries them all rather than sorting.
NEAR_PAIRS_TRIED = 32

# Common typographic characters, each replaced by one space so offsets do not move and
# English text with curly quotes or dashes still takes the fast ASCII path.
_TYPOGRAPHIC = "\u2018\u2019\u201a\u201c\u201d\u201e\u2013\u2014\u2026\u00a0\u2009\u200a\u00ab\u00bb\u2022\u00b7\u2032\u2033"  # noqa: E501
_ASCII_WORD_BYTES = bytes(c if chr(c).isalnum() else 32 for c in range(128)) + b" " * 128
_ASCII_WORD = re.compile(r"[A-Za-z0-9]+")
_NON_ASCII = re.compile(r"[^\x00-\x7f]")
_WORD = re.compile(r"[^\W_]+")
# Characters that are neither ASCII nor part of a word: €, “, ⓐ, a combining accent.
_NON_ASCII_NON_WORD = re.compile(r"[^\w\x00-\x7f]")


@dataclass(frozen=True, slots=True)
class ArticleView:
    """What the matcher reads of an article."""

    title: str
    text: str
    author: str = ""
    url: str = ""
    feed_title: str = ""
    feed_url: str = ""
    language: str = ""


@dataclass(frozen=True, slots=True)
class TopicRule:
    """A topic as the matcher sees it: its identity and its parsed query."""

    topic_id: int
    slug: str
    version: int
    query: Node


@dataclass(frozen=True, slots=True)
class Span:
    """Characters ``start:end`` of one field of the article."""

    field: str
    start: int
    end: int


@dataclass(frozen=True, slots=True)
class Snippet:
    """A short extract of the article with the spans to highlight in it."""

    text: str
    highlights: tuple[tuple[int, int], ...] = ()


@dataclass(frozen=True, slots=True)
class TopicHit:
    """A topic that matched an article."""

    topic_id: int
    slug: str
    version: int
    score: float
    terms: tuple[str, ...]
    spans: tuple[Span, ...]
    snippet: Snippet


# --- tokenising ---------------------------------------------------------------------------


class _FieldText:
    """One field of an article as folded words, with their places in the original text."""

    def __init__(self, name: str, text: str) -> None:
        self.name = name
        self.text = text
        # The fast path: text whose characters fold to ASCII (curly quotes, é, ü, ⓐ) becomes
        # lower-case ASCII words and spaces; when each character folded to one character it
        # keeps its length, so word positions in it are positions in the original.
        ascii_form = _ascii_words(text)
        self._ascii: str | None = None
        if ascii_form is not None:
            words, same_length = ascii_form
            self.tokens = words.split()
            self._ascii = words if same_length else None
        else:
            self.tokens = split_words(fold(text))
        self._spans: list[tuple[int, int]] | None = None
        self._starts: list[int] | None = None
        self._word_starts: list[int] | None = None
        self._char_starts: dict[int, int] = {}
        self._padded: str | None = None
        # Words joined by single spaces, with a space at each end: a literal " a b " can only
        # match whole words, and a prefix " elec" only at a word start.
        self.joined = " " + " ".join(self.tokens) + " "

    def token_at(self, offset: int) -> int:
        """The index of the word that starts at ``offset`` of ``joined``."""
        if self._starts is None:
            # Every word is preceded by exactly one space: word i starts after i + 1 spaces.
            lengths = map(operator.add, map(len, self.tokens), itertools.repeat(1))
            self._starts = list(itertools.accumulate(lengths, initial=1))
        return bisect.bisect_right(self._starts, offset) - 1

    def _char_start(self, index: int) -> int:
        """Where word ``index`` starts in the text (which has the length of its ASCII form)."""
        assert self._ascii is not None
        if self._word_starts is not None:
            return self._word_starts[index]
        start = self._char_starts.get(index)
        if start is not None:
            return start
        if len(self._char_starts) >= CHAR_STARTS_LOOKED_UP:
            # Many words to place: place them all in one go.
            self._word_starts = _word_starts(self._ascii)
            return self._word_starts[index]
        # Few words to place (a handful per match): the word is the n-th whole-word occurrence
        # of its text, n counted among the words before it.
        word = self.tokens[index]
        nth = self.tokens[:index].count(word)
        if self._padded is None:
            self._padded = f" {self._ascii} "
        padded, pattern = self._padded, f" {word} "
        offset = padded.find(pattern)
        for _ in range(nth):
            offset = padded.find(pattern, offset + len(pattern) - 1)
        # The pattern's opening space is the padding's or the one before the word.
        start = self._char_starts[index] = offset
        return start

    def char_span(self, first: int, last: int) -> tuple[int, int] | None:
        """Characters of the original text covering words ``first`` to ``last`` inclusive.

        None in the rare text where folding whole and folding word by word disagree.
        """
        if self._ascii is not None:
            # Same length as the original: a word's place in it is its place in the text.
            return self._char_start(first), self._char_start(last) + len(self.tokens[last])
        if self._spans is None:
            tokens, spans = _unicode_words(self.text)
            self._spans = spans if tokens == self.tokens else []
        if last >= len(self._spans):
            return None
        return self._spans[first][0], self._spans[last][1]


def _word_starts(words: str) -> list[int]:
    """Where each word of a string of words and spaces starts."""
    # Splitting on single spaces leaves an empty piece for each extra space: piece i + 1
    # starts after the lengths of pieces 0..i and i + 1 spaces. Iterators only: no Python
    # code runs per word.
    pieces = words.split(" ")
    after = map(operator.add, itertools.accumulate(map(len, pieces)), itertools.count(1))
    return list(itertools.compress(itertools.chain((0,), after), pieces))


def _ascii_words(text: str) -> tuple[str, bool] | None:
    """``text`` folded to lower-case ASCII, every non-word character a space, and whether it
    kept its length; None when a character folds to a letter outside ASCII (Cyrillic, say)."""
    same_length = True
    if not text.isascii():
        for char in _TYPOGRAPHIC:
            if char in text:
                text = text.replace(char, " ")
        if not text.isascii():
            # A handful of distinct characters, each replaced throughout in one C call.
            for char in set(_NON_ASCII.findall(text)):
                replacement = _ascii_fold(char)
                if replacement is None:
                    return None
                same_length = same_length and len(replacement) == 1
                text = text.replace(char, replacement)
    words = text.lower().encode("ascii").translate(_ASCII_WORD_BYTES).decode("ascii")
    return words, same_length


@lru_cache(maxsize=4096)
def _ascii_fold(char: str) -> str | None:
    """What ``char`` becomes in the ASCII form: its fold when that is ASCII (é -> e, ß -> ss,
    a combining accent -> nothing), a space for a symbol (€, °), None for any other letter."""
    folded = _fold_char(char)
    if folded.isascii():
        return folded
    return None if split_words(folded) else " "


@lru_cache(maxsize=4096)
def _fold_char(char: str) -> str:
    return fold(char)


@lru_cache(maxsize=4096)
def _separates(char: str) -> bool:
    """Whether ``char`` splits words as a space does once folded: not a letter or digit
    (nor a compatibility form of one, as ⓐ), and not a combining mark that folding removes
    (the accent of a decomposed é belongs to its word)."""
    folded = _fold_char(char)
    return bool(folded) and not split_words(folded)


def _unicode_words(text: str) -> tuple[list[str], list[tuple[int, int]]]:
    """The words of ``split_words(fold(text))`` with their character ranges in ``text``."""
    tokens: list[str] = []
    spans: list[tuple[int, int]] = []
    if all(len(_fold_char(char)) == 1 for char in set(text)):
        # Each character folds to one (Cyrillic, Greek, accented Latin): the folded text keeps
        # every character in its place, so its words' places are the places in the text.
        folded = fold(text)
        if len(folded) == len(text):
            found = list(_WORD.finditer(folded))
            return [m.group() for m in found], [m.span() for m in found]
    if not all(map(_separates, set(_NON_ASCII_NON_WORD.findall(text)))):
        return _fold_by_character(text)
    # Every character between words separates words once folded: fold word by word.
    for match in _WORD.finditer(text):
        word = match.group()
        if word.isascii():  # most words of most texts: folding only lower-cases them
            tokens.append(word.lower())
            spans.append(match.span())
            continue
        for piece in _word_pieces(word):
            tokens.append(piece)
            spans.append(match.span())
    return tokens, spans


@lru_cache(maxsize=65536)
def _word_pieces(word: str) -> tuple[str, ...]:
    """The folded words of one word of text: Cyrillic or Greek text folds word by word, and
    news repeats its words."""
    return tuple(split_words(fold(word)))


def _fold_by_character(text: str) -> tuple[list[str], list[tuple[int, int]]]:
    """``_unicode_words`` of text with characters that fold into words (a decomposed accent,
    ⓐ): folding a string folds its characters one by one, so fold each and remember where
    every folded character came from."""
    folds = [_fold_char(char) for char in text]
    origin = [index for index, folded in enumerate(folds) for _ in folded]
    tokens: list[str] = []
    spans: list[tuple[int, int]] = []
    for match in _WORD.finditer("".join(folds)):
        start, end = origin[match.start()], origin[match.end() - 1] + 1
        while end < len(text) and not folds[end]:  # the accents that folding removed
            end += 1
        tokens.append(match.group())
        spans.append((start, end))
    return tokens, spans


def words_of(text: str) -> list[str]:
    """The folded words of ``text``, as the matcher sees them."""
    return _FieldText(TEXT, text).tokens


# --- compiling ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Literal:
    """One distinct word or phrase of the queries (Words nodes with the same tokens share it):
    the automaton pattern that finds it and the tokens left to check."""

    id: int
    words: Words
    pattern: str
    exact_end: bool
    rest: tuple[str, ...]
    pattern_id: int
    # The words as a hit's terms list them, and how many words of the text the pattern covers.
    term: str
    width: int


@dataclass(slots=True)
class _Compiled:
    rule: TopicRule
    literals: dict[int, _Literal] = field(default_factory=dict)
    positive: set[int] = field(default_factory=set)
    needs_text: bool = True
    # The query as closures that only say whether it matches (see _quick_test).
    test: _Test = field(default=lambda _occurrences, _article: True)
    # id() of a NEAR side -> the literals of its words, made when first needed.
    sides: dict[int, list[_Literal]] = field(default_factory=dict)
    # Groups of literal ids: the topic can only match an article with one of each.
    groups: list[frozenset[int]] = field(default_factory=list)


def _pattern(words: Words) -> tuple[str, bool, tuple[str, ...]]:
    """The automaton pattern for ``words``: up to its first wildcard, then what to verify."""
    for index, token in enumerate(words.tokens):
        if token.endswith("*"):
            head = [*words.tokens[:index], token[:-1]]
            return " " + " ".join(head), False, words.tokens[index + 1 :]
    return " " + " ".join(words.tokens) + " ", True, ()


class Matcher:
    """Every enabled topic compiled once; ``match`` says which of them an article belongs to.

    Only topics whose every required group of literals has one in the article (see
    ``_requirements``) are evaluated, first without recording anything; the few that match are
    evaluated again to record what to highlight. A topic waits on the literals of one of its
    groups, the one least often found in the first articles matched (see ``_Plan``).
    """

    def __init__(self, rules: Iterable[TopicRule]) -> None:
        # ~word and translit: become the words they stand for (monitor.topics.forms).
        self.rules = tuple(map(expand_rule, rules))
        self._topics: list[_Compiled] = []
        self._by_words: dict[tuple[str, ...], _Literal] = {}
        # Pattern -> id. A literal without words after a wildcard has its pattern's id, so the
        # patterns found in an article are those literals; one with such words (elect* fraud)
        # has an id of its own, and is looked for among the literals of its pattern.
        self._pattern_ids: dict[str, int] = {}
        self._ids = itertools.count()
        self._checked: dict[int, list[_Literal]] = defaultdict(list)
        for rule in self.rules:
            compiled = _Compiled(rule, needs_text=requires_something(rule.query, sources=False))
            for node, negated in _words_nodes(rule.query):
                literal = self._literal(node)
                compiled.literals[id(node)] = literal
                if not negated:
                    compiled.positive.add(literal.id)
            compiled.test = _quick_test(rule.query, UNSCOPED, compiled.literals)
            if compiled.needs_text:
                compiled.groups = _requirements(rule.query, compiled.literals) or [
                    frozenset(compiled.positive)
                ]
            self._topics.append(compiled)
        self._automaton: ahocorasick.Automaton | None = None
        if self._pattern_ids:
            self._automaton = ahocorasick.Automaton()
            for pattern, pattern_id in self._pattern_ids.items():
                self._automaton.add_word(pattern, pattern_id)
            self._automaton.make_automaton()
        self._always = [t for t in self._topics if not t.needs_text]
        self._plan = _Plan.make(self._topics, Counter())
        # How often each literal turns up in the first articles, to choose the triggers again.
        self._seen: Counter[int] = Counter()
        self._to_observe = OBSERVED_ARTICLES

    def _literal(self, words: Words) -> _Literal:
        """The literal of ``words``, made the first time these tokens are seen."""
        literal = self._by_words.get(words.tokens)
        if literal is not None:
            return literal
        pattern, exact_end, rest = _pattern(words)
        pattern_id = self._pattern_ids.get(pattern)
        if pattern_id is None:
            pattern_id = self._pattern_ids[pattern] = next(self._ids)
        width = pattern.count(" ") - (1 if exact_end else 0)
        literal = _Literal(
            next(self._ids) if rest else pattern_id, words, pattern, exact_end, rest,
            pattern_id, " ".join(words.tokens), width,
        )  # fmt: skip
        self._by_words[words.tokens] = literal
        if rest:
            self._checked[pattern_id].append(literal)
        return literal

    def match(self, article: ArticleView) -> list[TopicHit]:
        """Every topic whose query matches ``article``, best score first."""
        fields = _fields(article)
        occurrences = _Occurrences(self, fields)
        if self._to_observe:
            self._observe(occurrences.present)
        hits = []
        for topic in self._candidates(occurrences.present):
            if not topic.test(occurrences, article):
                continue
            evaluation = _Evaluation(topic, occurrences, article)
            if evaluation.matches(topic.rule.query, UNSCOPED):
                hits.append(evaluation.hit(fields))
        return sorted(hits, key=lambda hit: (-hit.score, hit.slug))

    def _observe(self, present: set[int]) -> None:
        self._seen.update(present)
        self._to_observe -= 1
        if not self._to_observe:
            # One assignment: a thread matching meanwhile uses the old plan or the new one,
            # and either gives the same candidates.
            self._plan = _Plan.make(self._topics, self._seen)
            self._seen = Counter()

    def _candidates(self, present: set[int]) -> list[_Compiled]:
        """Topics with a literal in the article from each of their requirement groups, in
        order, then the topics that need none."""
        # Set and iterator operations, but for the few topics triggered.
        plan = self._plan
        waiting = map(plan.triggers.__getitem__, present & plan.trigger_ids)
        triggered = sorted(set(itertools.chain.from_iterable(waiting)))
        topics, others, disjoint = self._topics, plan.others, present.isdisjoint
        chosen = [topics[i] for i in triggered if not any(map(disjoint, others[i]))]
        chosen.extend(self._always)
        return chosen


@dataclass(frozen=True, slots=True)
class _Plan:
    """Which topics to evaluate for an article: each topic waits on the literals of one of its
    requirement groups (its trigger), and checks its other groups when one of them is found."""

    triggers: dict[int, list[int]]  # literal id -> the topics it triggers
    trigger_ids: frozenset[int]
    others: list[tuple[frozenset[int], ...]]  # topic index -> its other groups

    @classmethod
    def make(cls, topics: Sequence[_Compiled], seen: Counter[int]) -> _Plan:
        """Each topic's trigger: its group whose literals were found least often in ``seen``
        (the group of fewest literals when nothing was seen)."""
        triggers: dict[int, list[int]] = defaultdict(list)
        others: list[tuple[frozenset[int], ...]] = []
        for index, topic in enumerate(topics):
            groups = topic.groups
            if not groups:
                others.append(())
                continue
            pick = min(groups, key=lambda group: (sum(map(seen.__getitem__, group)), len(group)))
            for literal_id in pick:
                triggers[literal_id].append(index)
            others.append(tuple(group for group in groups if group is not pick))
        return cls(dict(triggers), frozenset(triggers), others)


def _fields(article: ArticleView) -> dict[str, _FieldText]:
    return {
        TITLE: _FieldText(TITLE, article.title),
        TEXT: _FieldText(TEXT, article.text),
        AUTHOR: _FieldText(AUTHOR, article.author),
    }


class _Occurrences:
    """Where the matcher's literals occur in one article.

    One automaton pass per field says which patterns occur; the word ranges of a literal are
    worked out the first time they are asked for, as most literals found are never asked.
    """

    def __init__(self, matcher: Matcher, fields: dict[str, _FieldText]) -> None:
        self.fields = fields
        # Field -> ids of the patterns found in it.
        self.patterns: dict[str, set[int]] = {}
        self._places: dict[int, list[_Place]] = {}
        # Ids of the literals that occur somewhere in the article (and of patterns found).
        self.present: set[int] = set()
        automaton = matcher._automaton
        if automaton is None:
            return
        for name, text in fields.items():
            if text.tokens:
                found = set(map(_second, automaton.iter(text.joined)))
                if found:
                    self.patterns[name] = found
        self.present = found_patterns = set().union(*self.patterns.values())
        checked = matcher._checked
        for pattern_id in found_patterns & checked.keys():
            for literal in checked[pattern_id]:
                if self.places(literal):
                    self.present.add(literal.id)

    def occurs(self, literal: _Literal, fields: Sequence[str]) -> bool:
        """Whether ``literal`` occurs in one of ``fields``."""
        if literal.id not in self.present:
            return False
        if literal.rest:
            return any(place[0] in fields for place in self.places(literal))
        patterns = self.patterns
        return any(literal.pattern_id in patterns[name] for name in fields if name in patterns)

    def places(self, literal: _Literal) -> list[_Place]:
        """(field, first word, word after the last) of each occurrence of ``literal``."""
        places = self._places.get(literal.id)
        if places is not None:
            return places
        places = []
        for name, patterns in self.patterns.items():
            if literal.pattern_id not in patterns:
                continue
            # Where the automaton found the pattern: every place it starts (overlaps too).
            text = self.fields[name]
            joined, pattern = text.joined, literal.pattern
            start = joined.find(pattern)
            while start != -1:
                place = _place(text, literal, start)
                if place is not None:
                    places.append((name, *place))
                start = joined.find(pattern, start + 1)
        self._places[literal.id] = places
        return places


def _place(text: _FieldText, literal: _Literal, start: int) -> tuple[int, int] | None:
    """Word range of a literal whose pattern starts at ``start`` of ``joined``, or None."""
    first = text.token_at(start + 1)
    after = first + literal.width
    if literal.exact_end:
        return first, after
    # A prefix: the pattern's last word only has to start the text's word; then the rest.
    tokens = text.tokens
    if after + len(literal.rest) > len(tokens):
        return None
    for offset, token in enumerate(literal.rest):
        word = tokens[after + offset]
        if not (word.startswith(token[:-1]) if token.endswith("*") else word == token):
            return None
    return first, after + len(literal.rest)


def _requirements(node: Node, literals: dict[int, _Literal]) -> list[frozenset[int]]:
    """Groups of literal ids such that ``node`` can only match an article holding a literal
    of every group (none for a node that can match without any of its words)."""
    if isinstance(node, Words):
        return [frozenset((literals[id(node)].id,))]
    if isinstance(node, Field):
        return _requirements(node.clause, literals)
    if isinstance(node, Near):
        return _requirements(node.left, literals) + _requirements(node.right, literals)
    if isinstance(node, And):
        every = (group for clause in node.clauses for group in _requirements(clause, literals))
        return list(dict.fromkeys(every))
    if isinstance(node, Or):
        # Whichever clause matches holds a literal of each of its groups, so each way of
        # picking one group per clause gives a group: (a AND b) OR c needs a|c and b|c. When
        # there are too many ways, each clause gives its smallest group.
        choices = []
        for clause in node.clauses:
            groups = _requirements(clause, literals)
            if not groups:
                return []
            choices.append(groups)
        if math.prod(len(groups) for groups in choices) > MAX_GROUPS:
            choices = [[min(groups, key=len)] for groups in choices]
        combined = (frozenset().union(*picked) for picked in itertools.product(*choices))
        return list(dict.fromkeys(combined))
    return []  # NOT and source tests need no word


def _words_nodes(node: Node, negated: bool = False) -> Iterable[tuple[Words, bool]]:
    if isinstance(node, Words):
        yield node, negated
    elif isinstance(node, And | Or):
        for clause in node.clauses:
            yield from _words_nodes(clause, negated)
    elif isinstance(node, Not):
        yield from _words_nodes(node.clause, not negated)
    elif isinstance(node, Near):
        yield from _words_nodes(node.left, negated)
        yield from _words_nodes(node.right, negated)
    elif isinstance(node, Field):
        yield from _words_nodes(node.clause, negated)


# --- testing quickly ----------------------------------------------------------------------

# A query compiled into closures that answer what ``_Evaluation.matches`` answers, without
# recording anything, and with every short cut taken: most topics evaluated do not match.
_Test = Callable[["_Occurrences", ArticleView], bool]
_Places = Callable[["_Occurrences"], list[_Place]]


def _quick_test(node: Node, fields: tuple[str, ...], literals: dict[int, _Literal]) -> _Test:
    """Whether ``node`` holds, its words looked for in ``fields``."""
    if isinstance(node, Words):
        return partial(_quick_words, literals[id(node)], fields)
    if isinstance(node, Near):
        left = _quick_places(node.left, fields, literals)
        right = _quick_places(node.right, fields, literals)
        distance, ordered = node.distance, node.ordered

        def near(occurrences: _Occurrences, _article: ArticleView) -> bool:
            lefts = left(occurrences)
            return bool(lefts) and _near_pair(lefts, right(occurrences), distance, ordered)

        return near
    if isinstance(node, And):
        tests = [_quick_test(clause, fields, literals) for clause in node.clauses]
        return lambda occurrences, article: all(test(occurrences, article) for test in tests)
    words = _words_list(node)
    if words is not None:
        # A list of words or phrases (~words too), the commonest clause: one set operation
        # rules it out.
        return partial(_quick_any_word, [literals[id(clause)] for clause in words], fields)
    if isinstance(node, Or):
        tests = [_quick_test(clause, fields, literals) for clause in node.clauses]
        return lambda occurrences, article: any(test(occurrences, article) for test in tests)
    if isinstance(node, Not):
        test = _quick_test(node.clause, fields, literals)
        return lambda occurrences, article: not test(occurrences, article)
    if isinstance(node, Field):
        return _quick_test(node.clause, (node.name,), literals)
    source = node
    return lambda _occurrences, article: source_matches(source, article)


def _words_list(node: Node) -> list[Words] | None:
    """The words and phrases of an OR of them, the forms of an OR of ~words included; None
    for any other node."""
    if not isinstance(node, Or):
        return None
    words: list[Words] = []
    for clause in node.clauses:
        if type(clause) is Words:
            words.append(clause)
        elif isinstance(clause, Variants):
            words.extend(clause.clauses)  # type: ignore[arg-type]  # Variants hold Words
        else:
            return None
    return words


def _quick_words(
    literal: _Literal, fields: tuple[str, ...], occurrences: _Occurrences, _article: ArticleView
) -> bool:
    """Whether ``literal`` occurs in one of ``fields`` (made a test with functools.partial,
    which takes less memory than a closure: there is one per word of every query)."""
    return literal.id in occurrences.present and occurrences.occurs(literal, fields)


def _quick_any_word(
    side: list[_Literal],
    fields: tuple[str, ...],
    occurrences: _Occurrences,
    _article: ArticleView,
) -> bool:
    """Whether one of the literals of ``side`` occurs in one of ``fields``."""
    present = occurrences.present
    return any(occurrences.occurs(literal, fields) for literal in side if literal.id in present)


def _quick_places(node: Node, fields: tuple[str, ...], literals: dict[int, _Literal]) -> _Places:
    """Where a positional node occurs, within ``fields``."""
    if isinstance(node, Words):
        literal = literals[id(node)]
        literal_id = literal.id

        def places(occurrences: _Occurrences) -> list[_Place]:
            if literal_id not in occurrences.present:
                return []
            return [place for place in occurrences.places(literal) if place[0] in fields]

        return places
    if isinstance(node, Field):
        return _quick_places(node.clause, (node.name,), literals)
    words = _words_list(node)
    if words is not None:
        side = [literals[id(clause)] for clause in words]

        def any_of(occurrences: _Occurrences) -> list[_Place]:
            present = occurrences.present
            return [
                place
                for literal in side
                if literal.id in present
                for place in occurrences.places(literal)
                if place[0] in fields
            ]

        return any_of
    if isinstance(node, Or):
        sides = [_quick_places(clause, fields, literals) for clause in node.clauses]
        return lambda occurrences: [place for side in sides for place in side(occurrences)]
    if isinstance(node, Near):
        left = _quick_places(node.left, fields, literals)
        right = _quick_places(node.right, fields, literals)
        distance, ordered = node.distance, node.ordered

        def near(occurrences: _Occurrences) -> list[_Place]:
            lefts = left(occurrences)
            if not lefts:
                return lefts
            return _near_places(lefts, right(occurrences), distance, ordered)

        return near
    kind = type(node).__name__

    def fail(_occurrences: _Occurrences) -> list[_Place]:
        raise TypeError(f"{kind} has no places")

    return fail


def _near_pairs(
    lefts: list[_Place], rights: list[_Place], distance: int, ordered: bool
) -> Iterator[tuple[_Place, _Place]]:
    """The pairs of a left and a right place in one field, apart (never overlapping), with at
    most ``distance`` words between them; the left one first when ``ordered``."""
    for left in lefts:
        field_name, left_start, left_end = left
        for right in rights:
            other, right_start, right_end = right
            if other != field_name:
                continue
            if right_start >= left_end:
                gap = right_start - left_end
            elif not ordered and left_start >= right_end:
                gap = left_start - right_end
            else:
                continue
            if gap <= distance:
                yield left, right


def _near_pair(lefts: list[_Place], rights: list[_Place], distance: int, ordered: bool) -> bool:
    """Whether any left and right place make a NEAR pair."""
    if len(lefts) * len(rights) <= NEAR_PAIRS_TRIED:
        return next(_near_pairs(lefts, rights, distance, ordered), None) is not None
    # Many places (common words on both sides): look for each left place's partner among
    # the right places sorted by start (after it) and by end (before it).
    edges: dict[str, tuple[list[int], list[int]]] = {}
    for name, start, end in rights:
        starts, ends = edges.setdefault(name, ([], []))
        starts.append(start)
        ends.append(end)
    for starts, ends in edges.values():
        starts.sort()
        ends.sort()
    for name, start, end in lefts:
        if name not in edges:
            continue
        starts, ends = edges[name]
        after = bisect.bisect_left(starts, end)
        if after < len(starts) and starts[after] - end <= distance:
            return True
        if not ordered:
            before = bisect.bisect_left(ends, start - distance)
            if before < len(ends) and ends[before] <= start:
                return True
    return False


def _near_places(
    lefts: list[_Place], rights: list[_Place], distance: int, ordered: bool
) -> list[_Place]:
    """The span covering each NEAR pair."""
    return [
        (left[0], min(left[1], right[1]), max(left[2], right[2]))
        for left, right in _near_pairs(lefts, rights, distance, ordered)
    ]


# --- evaluating ---------------------------------------------------------------------------


class _Evaluation:
    """One topic's query evaluated against one article's literal occurrences."""

    def __init__(
        self,
        topic: _Compiled,
        occurrences: _Occurrences,
        article: ArticleView,
    ) -> None:
        self.topic = topic
        self.occurrences = occurrences
        self.article = article
        # Places of words that made the query match: what the digest highlights.
        self.found: dict[_Place, str] = {}
        self._recording = True

    def places(self, node: Node, fields: Sequence[str]) -> list[_Place]:
        """Where a positional node occurs, within ``fields``."""
        if isinstance(node, Words):
            literal = self.topic.literals[id(node)]
            if literal.id not in self.occurrences.present:
                return []
            places = [p for p in self.occurrences.places(literal) if p[0] in fields]
            if self._recording:
                term = literal.term
                self.found.update((place, term) for place in places)
            return places
        if isinstance(node, Field):
            return self.places(node.clause, (node.name,))
        if isinstance(node, Or):
            literals, present = self.topic.literals, self.occurrences.present
            return [
                p
                for clause in node.clauses
                if type(clause) is not Words or literals[id(clause)].id in present
                for p in self.places(clause, fields)
            ]
        if isinstance(node, Near):
            return self._near(node, fields)
        raise TypeError(f"{type(node).__name__} has no places")

    def _near(self, node: Near, fields: Sequence[str]) -> list[_Place]:
        recording, self._recording = self._recording, False
        lefts, rights = self.places(node.left, fields), self.places(node.right, fields)
        self._recording = recording
        found = []
        for left, right in _near_pairs(lefts, rights, node.distance, node.ordered):
            found.append((left[0], min(left[1], right[1]), max(left[2], right[2])))
            if recording:
                self._record_near_side(node.left, left)
                self._record_near_side(node.right, right)
        return found

    def _record_near_side(self, side: Node, place: _Place) -> None:
        """Record the words of one side of a NEAR pair that lie inside ``place``."""
        field_name, start, end = place
        literals = self.topic.sides.get(id(side))
        if literals is None:
            literals = self.topic.sides[id(side)] = [
                self.topic.literals[id(words)]
                for words, negated in _words_nodes(side)
                if not negated
            ]
        for literal in literals:
            for occurrence in self.occurrences.places(literal):
                inside = occurrence[0] == field_name and start <= occurrence[1] <= end
                if inside and occurrence[2] <= end:
                    self.found[occurrence] = literal.term

    def matches(self, node: Node, fields: Sequence[str]) -> bool:
        """Whether ``node`` holds for the article, its words looked for in ``fields``."""
        if type(node) is Words:
            literal = self.topic.literals[id(node)]
            if literal.id not in self.occurrences.present:
                return False
            if not self._recording:
                return self.occurrences.occurs(literal, fields)
        if isinstance(node, Words | Near):
            return bool(self.places(node, fields))
        if isinstance(node, And):
            # A failed AND (inside an OR) made nothing match: forget the words it recorded.
            found = dict(self.found) if self._recording else None
            if all(self.matches(clause, fields) for clause in node.clauses):
                return True
            if found is not None:
                self.found = found
            return False
        if isinstance(node, Or):
            if not self._recording:
                return any(self.matches(clause, fields) for clause in node.clauses)
            # No short cut: every branch that matches should be highlighted (but words not in
            # the article need no call to say so).
            literals, present = self.topic.literals, self.occurrences.present
            results = [
                self.matches(clause, fields)
                for clause in node.clauses
                if type(clause) is not Words or literals[id(clause)].id in present
            ]
            return any(results)
        if isinstance(node, Not):
            recording, self._recording = self._recording, False
            holds = not self.matches(node.clause, fields)
            self._recording = recording
            return holds
        if isinstance(node, Field):
            return self.matches(node.clause, (node.name,))
        return source_matches(node, self.article)

    def hit(self, fields: dict[str, _FieldText]) -> TopicHit:
        """The match record: score, matched terms, spans and snippet."""
        score = 0.0
        spans = set()
        for field_name, first, after in self.found:
            score += TITLE_WEIGHT if field_name == TITLE else 1.0
            characters = fields[field_name].char_span(first, after - 1)
            if characters is not None:
                spans.add(Span(field_name, *characters))
        ordered = sorted(spans, key=lambda s: (s.field != TITLE, s.field, s.start, s.end))
        rule = self.topic.rule
        return TopicHit(
            topic_id=rule.topic_id,
            slug=rule.slug,
            version=rule.version,
            score=score,
            terms=tuple(dict.fromkeys(self.found.values())),
            spans=tuple(ordered),
            snippet=make_snippet(self.article.text, [s for s in ordered if s.field == TEXT]),
        )


def source_matches(node: Source, article: ArticleView) -> bool:
    """Whether a ``site:``, ``feed:`` or ``lang:`` test holds for the article."""
    if node.name == "site":
        return _host_matches(article.url, node.value)
    if node.name == "lang":
        language = article.language.lower().replace("_", "-")
        code = node.value.replace("_", "-")  # lang:en_US is lang:en-us
        return language == code or language.startswith(code + "-")
    if "." in node.value and _host_matches(article.feed_url, node.value):
        return True
    wanted = split_words(node.value)
    title = words_of(article.feed_title)
    return any(title[i : i + len(wanted)] == wanted for i in range(len(title) - len(wanted) + 1))


def _host_matches(url: str, domain: str) -> bool:
    host = (urlsplit(url).hostname or "").rstrip(".")
    return host == domain or host.endswith("." + domain)


def make_snippet(text: str, spans: Sequence[Span], width: int = SNIPPET_CHARS) -> Snippet:
    """About ``width`` characters of ``text`` around the first span, cut at word boundaries."""
    if not text:
        return Snippet("")
    if not spans:
        cut = _cut_end(text, width)
        return Snippet(cut + (" …" if len(cut) < len(text.rstrip()) else ""))
    # The span with the most spans starting within ``width`` characters of it.
    starts = sorted(span.start for span in spans)
    first = max(
        spans, key=lambda a: bisect.bisect_left(starts, a.start + width) - starts.index(a.start)
    )
    start = max(0, first.start - width // 3)
    if start:
        space = text.find(" ", start, first.start)
        start = space + 1 if space != -1 else start
    end = min(len(text), start + width)
    if end < len(text):
        space = text.rfind(" ", max(first.end, start), end)
        end = space if space > first.end else max(end, first.end)
    prefix = "… " if start else ""
    suffix = " …" if end < len(text) else ""
    body = " ".join(text[start:end].split("\n"))
    highlights = tuple(
        (len(prefix) + span.start - start, len(prefix) + span.end - start)
        for span in spans
        if span.start >= start and span.end <= end
    )
    return Snippet(prefix + body + suffix, highlights)


def _cut_end(text: str, width: int) -> str:
    if len(text) <= width:
        return text.rstrip()
    space = text.rfind(" ", 0, width)
    return text[: space if space > 0 else width].rstrip()


@dataclass(frozen=True, slots=True)
class Explanation:
    """One clause of a query and whether (and where) it matched an article."""

    depth: int
    clause: str
    matched: bool
    spans: tuple[Span, ...]


def explain(rule: TopicRule, article: ArticleView) -> list[Explanation]:
    """Each clause of ``rule``'s query, top down, with whether and where it matched."""
    matcher = Matcher([rule])
    fields = _fields(article)
    evaluation = _Evaluation(matcher._topics[0], _Occurrences(matcher, fields), article)
    lines: list[Explanation] = []

    def walk(node: Node, scope: Sequence[str], depth: int) -> None:
        matched = evaluation.matches(node, scope)
        spans: tuple[Span, ...] = ()
        if positional(node):
            ranges = (
                (name, fields[name].char_span(first, after - 1))
                for name, first, after in evaluation.places(node, scope)
            )
            spans = tuple(Span(name, *where) for name, where in ranges if where is not None)
        label = _label(node)
        lines.append(Explanation(depth, label, matched, spans))
        for child, child_scope in _children(node, scope):
            walk(child, child_scope, depth + 1)

    walk(matcher.rules[0].query, UNSCOPED, 0)
    return lines


def _label(node: Node) -> str:
    if isinstance(node, Variants):
        return str(node)
    if isinstance(node, And | Or):
        return type(node).__name__.upper()
    if isinstance(node, Not):
        return "NOT"
    if isinstance(node, Near):
        return ("ONEAR" if node.ordered else "NEAR") + f"/{node.distance}"
    if isinstance(node, Field):
        return f"{node.name}:"
    return str(node)


def _children(node: Node, scope: Sequence[str]) -> list[tuple[Node, Sequence[str]]]:
    if isinstance(node, Variants):  # its words are the forms of one: not clauses of their own
        return []
    if isinstance(node, And | Or):
        return [(clause, scope) for clause in node.clauses]
    if isinstance(node, Not):
        return [(node.clause, scope)]
    if isinstance(node, Near):
        return [(node.left, scope), (node.right, scope)]
    if isinstance(node, Field):
        return [(node.clause, (node.name,))]
    return []
