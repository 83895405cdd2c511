"""``languages``: language detection, word forms, and tagging with word forms.

Detection is measured on a labelled sample of at least 200 items per language (en, ru, uk, de,
fr), titles and bodies apart, from three sources, never labelled by a detector:

- ``l10n``: real text written by people, the gettext catalogues of the programs on this
  machine (``/usr/share/locale/<lang>/LC_MESSAGES``, or ``$MONITOR_BENCH_LOCALE``), labelled by
  the catalogue's language; English is the catalogues' original text. Short messages (3 words
  or more, up to 100 characters) stand for titles, long ones (150 characters or more) for
  bodies. Untranslated messages are left out (Russian and Ukrainian ones must be mostly
  Cyrillic, German and French ones must differ from the English).
- ``feeds``: real feed items of the shared corpora, labelled by outlet: the English news feeds
  of ``../shared/corpus``, its German feed and the Russian feed of ``../shared/corpus-ru``.
- ``own``: news-style titles and leads written for this benchmark by its author
  (``benchmarks/data/languages-composed.tsv``), 30 per language, short titles on purpose.

Word forms are measured on real Russian text against forms marked by hand
(``benchmarks/data/ru-word-forms.tsv``): what ``~lemma`` matches with monitor's pymorphy3
forms, with simplemma's lemmas and with the Snowball stemmer (PyStemmer), as precision and
recall over the distinct words of the text.

Tagging throughput: the match benchmark's generated topics (100 topics of 20 terms, 2,000
patterns), exact and with ``~`` on every single word, over English corpus articles and over
Russian articles made of the Russian translations.
"""

from __future__ import annotations

import gettext
import os
import random
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from statistics import median

from benchmarks.common import REPO_ROOT, Table, find_corpus, progress, rate, skipped
from benchmarks.match import generated_queries, generated_topics, match_articles, vocabulary
from benchmarks.text import SampleArticle, sample_articles
from monitor.errors import MonitorError
from monitor.ingest.language import base_language, detect_language
from monitor.sources.parse import parse_feed
from monitor.text import fold, split_words
from monitor.topics.matcher import ArticleView, Matcher, TopicRule

TITLE = "languages: detection, word forms, tagging with word forms"
LANGUAGES = ("en", "ru", "uk", "de", "fr")
PER_LANGUAGE = 250
SEED = 20261206
LOCALE_ENV = "MONITOR_BENCH_LOCALE"
DATA = REPO_ROOT / "benchmarks" / "data"
COMPOSED = DATA / "languages-composed.tsv"
GOLD_FORMS = DATA / "ru-word-forms.tsv"
RUSSIAN_CORPUS = REPO_ROOT.parent / "shared" / "corpus-ru" / "citydog-by.xml"
TITLE_WORDS, TITLE_CHARS, BODY_CHARS, BODY_CUT = 3, 100, 150, 600
_FORMATS = re.compile(r"%(\d+\$)?[-+ #0']*\d*(\.\d+)?[a-zA-Z]|\{[^}]*\}|<[^>]*>|\\n|&|_(?=\w)")
_CYRILLIC = re.compile("[\u0400-\u04ff]")
_LETTER = re.compile(r"[^\W\d_]")
_OPERATORS = {"AND", "OR", "NOT", "NEAR", "ONEAR"}
ARTICLES = 1000


@dataclass(frozen=True, slots=True)
class Item:
    """One labelled text: its language (by its source, never by a detector) and kind."""

    language: str
    text: str
    kind: str  # "titles" or "bodies"
    source: str


# --- the labelled sample ------------------------------------------------------------------


def locale_root() -> Path:
    """Where the gettext catalogues are: ``$MONITOR_BENCH_LOCALE`` or /usr/share/locale."""
    return Path(os.environ.get(LOCALE_ENV) or "/usr/share/locale")


def _catalogue(path: Path) -> dict[str, str]:
    try:
        with path.open("rb") as handle:
            catalog = gettext.GNUTranslations(handle)._catalog  # type: ignore[attr-defined]
    except (OSError, UnicodeDecodeError, KeyError, ValueError):  # a broken catalogue: skip it
        return {}
    return {k: v for k, v in catalog.items() if isinstance(k, str) and k and isinstance(v, str)}


def _clean(message: str) -> str:
    return " ".join(_FORMATS.sub(" ", message).split())


def _translated(language: str, original: str, translation: str) -> bool:
    if translation == original:
        return False
    if language in ("ru", "uk"):
        letters = _LETTER.findall(translation)
        return bool(letters) and len(_CYRILLIC.findall(translation)) >= 0.6 * len(letters)
    return True


def translation_messages(language: str) -> list[str]:
    """Every translated message of one language (English: the originals), cleaned."""
    catalogues = "de" if language == "en" else language
    directory = locale_root() / catalogues / "LC_MESSAGES"
    messages: dict[str, None] = {}
    for path in sorted(directory.glob("*.mo")):
        if path.name.startswith(("iso_", "xkeyboard")):  # names of countries, keyboards
            continue
        for original, translation in sorted(_catalogue(path).items()):
            if not _translated(catalogues, original, translation):
                continue
            messages.setdefault(_clean(original if language == "en" else translation), None)
    return [message for message in messages if message]


def translation_items(rng: random.Random) -> list[Item]:
    """PER_LANGUAGE short and PER_LANGUAGE long messages per language, drawn at random."""
    items: list[Item] = []
    for language in LANGUAGES:
        messages = translation_messages(language)
        titles = [
            m for m in messages if len(m) <= TITLE_CHARS and len(split_words(m)) >= TITLE_WORDS
        ]
        bodies = [m[:BODY_CUT] for m in messages if len(m) >= BODY_CHARS]
        for kind, pool in (("titles", titles), ("bodies", bodies)):
            chosen = rng.sample(pool, min(PER_LANGUAGE, len(pool)))
            items.extend(Item(language, text, kind, "l10n") for text in chosen)
    return items


def _feed_entries(path: Path) -> list[tuple[str, str]]:
    try:
        parsed = parse_feed(path.read_bytes(), url=f"http://127.0.0.1/{path.name}")
    except (OSError, MonitorError):
        return []
    return [(e.title, f"{e.summary}\n{e.content}".strip()) for e in parsed.entries]


def feed_items() -> list[Item]:
    """Real feed items: English news feeds and the German feed of the corpus, the Russian one."""
    corpus = find_corpus()
    pairs: list[tuple[str, str, str]] = []
    if corpus is not None:
        for feed in corpus.feeds:
            head = feed.read()[:4000].lower()
            if b"<language>de" in head:
                pairs.extend(("de", t, b) for t, b in _feed_entries(feed.path))
            elif b"<language>en" in head and _is_news(feed.title):
                pairs.extend(("en", t, b) for t, b in _feed_entries(feed.path)[:25])
    if RUSSIAN_CORPUS.is_file():
        pairs.extend(("ru", t, b) for t, b in _feed_entries(RUSSIAN_CORPUS))
    counts: dict[tuple[str, str], int] = {}
    items = []
    for language, title, body in pairs:
        for kind, text in (("titles", title), ("bodies", body)):
            if text and counts.get((language, kind), 0) < PER_LANGUAGE:
                counts[language, kind] = counts.get((language, kind), 0) + 1
                items.append(Item(language, text[:BODY_CUT], kind, "feeds"))
    return items


def _is_news(title: str) -> bool:
    outlets = ("bbc", "nyt", "world", "news", "cbs", "npr", "time", "al jazeera", "dawn", "wsj")
    return any(outlet in title.lower() for outlet in outlets)


def composed_items() -> list[Item]:
    """The items written for this benchmark."""
    items = []
    for line in COMPOSED.read_text(encoding="utf-8").splitlines():
        if not line or line.startswith("#"):
            continue
        language, title, body = line.split("\t")
        items.append(Item(language, title, "titles", "own"))
        items.append(Item(language, body, "bodies", "own"))
    return items


# --- detectors ------------------------------------------------------------------------------


def detectors() -> dict[str, Callable[[str, str], str]]:
    """Each detector tried, as (text, true language) -> ISO 639-1 code ("" for no answer).

    monitor's is the language ``lang:`` tests (the detected one, else the declared one), with
    three feeds: one that declares no language, one that declares the right one, and a
    misconfigured one that declares English whatever it publishes."""
    from lingua import LanguageDetectorBuilder
    from py3langid.langid import MODEL_FILE, LanguageIdentifier

    identifier = LanguageIdentifier.from_model_file(MODEL_FILE)
    low = LanguageDetectorBuilder.from_all_languages().with_low_accuracy_mode().build()
    high = LanguageDetectorBuilder.from_all_languages().build()

    def lingua(detector: object) -> Callable[[str, str], str]:
        def detect(text: str, _truth: str) -> str:
            found = detector.detect_language_of(text)  # type: ignore[attr-defined]
            return "" if found is None else str(found.iso_code_639_1.name).lower()

        return detect

    return {
        "monitor, no tag": lambda text, _truth: detect_language(text, ""),
        "monitor, right tag": lambda text, truth: detect_language(text, "", truth) or truth,
        "monitor, tag en": lambda text, _truth: detect_language(text, "", "en") or "en",
        "py3langid": lambda text, _truth: str(identifier.classify(text)[0]),
        "lingua low": lingua(low),
        "lingua": lingua(high),
    }


@dataclass(slots=True)
class Score:
    """Right answers, no answers and time of one detector on one group of items."""

    right: int = 0
    unanswered: int = 0
    total: int = 0
    seconds: float = 0.0


def score_detectors(
    items: list[Item],
) -> tuple[dict[str, dict[tuple[str, str, str], Score]], list[str]]:
    """Scores per detector and (source, language, kind)."""
    found = detectors()
    scores: dict[str, dict[tuple[str, str, str], Score]] = {name: {} for name in found}
    for name, detect in found.items():
        progress(f"languages: detecting with {name}")
        detect(items[0].text, items[0].language)  # load the models outside the timing
        for item in items:
            score = scores[name].setdefault((item.source, item.language, item.kind), Score())
            started = time.perf_counter()
            answer = detect(item.text, item.language)
            score.seconds += time.perf_counter() - started
            score.total += 1
            score.right += base_language(answer) == item.language
            score.unanswered += not answer
    return scores, list(found)


def detection_table(items: list[Item]) -> Table:
    """Per cent right per source, language and kind, one column per detector."""
    scores, names = score_detectors(items)
    table = Table("languages: detection, % right (items)", names)
    groups = sorted(scores[names[0]], key=lambda g: (g[0], LANGUAGES.index(g[1]), g[2] != "titles"))
    for group in groups:
        source, language, kind = group
        total = scores[names[0]][group].total
        values = [100 * scores[n][group].right / total for n in names]
        table.add(f"{source} {language} {kind} ({total})", "%", *values)
    for wanted in (*LANGUAGES, ""):  # "": every language
        for kind in ("titles", "bodies"):
            values = []
            for name in names:
                chosen = [
                    s for g, s in scores[name].items() if g[2] == kind and wanted in ("", g[1])
                ]
                values.append(100 * sum(s.right for s in chosen) / sum(s.total for s in chosen))
            first = scores[names[0]].items()
            total = sum(s.total for g, s in first if g[2] == kind and wanted in ("", g[1]))
            table.add(f"{wanted or 'all'}: {kind} ({total})", "%", *values)
    unanswered = [sum(s.unanswered for s in scores[n].values()) for n in names]
    table.add("no answer (too short or unsure)", "items", *unanswered)
    per_item = [
        1000 * sum(s.seconds for s in scores[n].values()) / sum(s.total for s in scores[n].values())
        for n in names
    ]
    table.add("time per text", "ms", *per_item)
    table.notes.append(
        "monitor: what lang: tests, detect_language (py3langid; under 12 letters no answer, "
        "and a declared language the model finds plausible beats an unsure guess) or else the "
        "declared language, for feeds declaring none, the right one, or en whatever they "
        "publish; py3langid: its best guess always; lingua: all 75 languages, high and low "
        "accuracy mode"
    )
    table.notes.append(
        "labels come from the source (catalogue language, outlet, author), never from a "
        "detector; l10n: gettext translations; feeds: the shared corpora; own: items written for "
        "this benchmark by its author"
    )
    return table


# --- word forms ---------------------------------------------------------------------------


def gold_forms() -> dict[str, dict[str, frozenset[str]]]:
    """text -> lemma -> the forms marked by hand."""
    gold: dict[str, dict[str, frozenset[str]]] = {}
    for line in GOLD_FORMS.read_text(encoding="utf-8").splitlines():
        if line and not line.startswith("#"):
            text, lemma, forms = line.split("\t")
            gold.setdefault(text, {})[lemma] = frozenset(forms.split())
    return gold


def russian_vocabularies() -> dict[str, set[str]]:
    """The distinct folded words of each Russian text the gold forms were marked on."""
    translations: set[str] = set()
    for message in translation_messages("ru"):
        translations.update(split_words(fold(message)))
    news: set[str] = set()
    if RUSSIAN_CORPUS.is_file():
        for title, body in _feed_entries(RUSSIAN_CORPUS):
            news.update(split_words(fold(f"{title} {body}")))
    for item in composed_items():
        if item.language == "ru":
            news.update(split_words(fold(item.text)))
    return {"translations": translations, "news": news}


def form_matchers() -> dict[str, Callable[[str, set[str]], set[str]]]:
    """Each way of saying which words of a vocabulary are forms of a lemma."""
    import simplemma
    import Stemmer

    from monitor.topics.forms import query_word_forms

    stemmer = Stemmer.Stemmer("russian")

    def lemmatized(lemma: str, words: set[str]) -> set[str]:
        return {w for w in words if fold(simplemma.lemmatize(w, lang="ru")) == lemma}

    def stemmed(lemma: str, words: set[str]) -> set[str]:
        stem = stemmer.stemWord(lemma)
        return {w for w in words if stemmer.stemWord(w) == stem}

    return {
        "exact word": lambda lemma, words: {lemma} & words,
        "pymorphy3 (monitor)": lambda lemma, words: set(query_word_forms(lemma)) & words,
        "simplemma": lemmatized,
        "Snowball": stemmed,
    }


def forms_table() -> Table:
    """Precision and recall of each form matcher against the hand-marked forms."""
    vocabularies = russian_vocabularies()
    matchers = form_matchers()
    table = Table(
        "languages: ~word on real Russian text, against forms marked by hand", list(matchers)
    )
    for text, lemmas in gold_forms().items():
        words = vocabularies[text]
        if not words:
            continue
        progress(f"languages: word forms, {text}")
        counts = []
        for matcher in matchers.values():
            right = found = expected = 0
            for lemma, forms in lemmas.items():
                present = forms & words
                matched = matcher(lemma, words)
                right += len(matched & present)
                found += len(matched)
                expected += len(present)
            counts.append((right, found, expected))
        table.add(f"{text}: precision", "%", *(100 * r / f if f else None for r, f, _ in counts))
        table.add(f"{text}: recall", "%", *(100 * r / e if e else None for r, _, e in counts))
        table.add(f"{text}: forms in the text", "words", *(e for _, _, e in counts))
        table.notes.append(f"{text}: {len(lemmas)} lemmas, {len(words):,} distinct words")
    table.notes.append(
        "precision: share of the words matched that are forms; recall: share of the forms in the "
        "text that are matched (distinct words); simplemma: lemmatize(word) == lemma; "
        "Snowball: same stem; pymorphy3: the forms ~lemma expands to"
    )
    return table


# --- tagging with word forms ------------------------------------------------------------


def with_forms(query: str, share: float = 1.0, rng: random.Random | None = None) -> str:
    """``query`` with ``~`` before its single words (not in phrases, not wildcards): every one,
    or each with probability ``share``."""
    pieces = query.split('"')

    def mark(match: re.Match[str]) -> str:
        word = match.group(1)
        if word in _OPERATORS or (share < 1 and (rng or random).random() >= share):
            return word
        return "~" + word

    for index in range(0, len(pieces), 2):  # outside quotation marks
        pieces[index] = re.sub(r"(?<![\w~*/])([^\W\d_]+)(?![\w*:/])", mark, pieces[index])
    return '"'.join(pieces)


def russian_articles(rng: random.Random) -> list[SampleArticle]:
    """ARTICLES articles of ~3,000 characters made of Russian translations."""
    messages = translation_messages("ru")
    rng.shuffle(messages)
    articles = []
    for index in range(ARTICLES):
        title = messages[index % len(messages)]
        body: list[str] = []
        offset = index + 1
        while sum(map(len, body)) < 3000:
            body.append(messages[offset % len(messages)])
            offset += 1
        articles.append(SampleArticle(title[:TITLE_CHARS], " ".join(body)[:3000]))
    return articles


def expanded_patterns(rules: list[TopicRule]) -> int:
    """The distinct patterns of the automaton once the ~words are expanded."""
    return len(Matcher(rules)._pattern_ids)


def tagging_table() -> Table:
    """Throughput of 100 topics x 20 terms: exact, ~ on a quarter of the words, on all."""
    rng = random.Random(SEED)
    english, _source = sample_articles(find_corpus(), count=ARTICLES, rng=rng)
    sets = [("en", english), ("ru", russian_articles(rng))]
    variants, runs, notes = [], [], []
    for label, articles in sets:
        views = [ArticleView(title=a.title, text=a.body) for a in articles]
        queries = generated_queries(vocabulary(articles), rng, 100)
        marking = random.Random(SEED)
        for share, name in ((0.0, "exact"), (0.25, "~ 1 in 4"), (1.0, "~ all")):
            written = [with_forms(q, share, marking) for q in queries] if share else queries
            progress(f"languages: tagging {label}, {name}")
            started = time.process_time()
            topic_set = generated_topics(written, 100)
            parse = time.process_time() - started
            run = match_articles(topic_set, views)
            variants.append(f"{label} {name}")
            runs.append((topic_set, run, parse, expanded_patterns(topic_set.rules)))
        notes.append(f"{label}: e.g. {with_forms(queries[0])[:150]} ...")
    table = Table("languages: tagging 1,000 articles with 100 topics x 20 terms", variants)
    count = ARTICLES
    table.add("patterns as written", "terms", *(t.patterns for t, _, _, _ in runs))
    table.add("automaton patterns", "after ~ expansion", *(e for _, _, _, e in runs))
    table.add("parse + expand", "ms", *(1000 * p for _, _, p, _ in runs))
    table.add("compile", "ms", *(1000 * r.compile_seconds for _, r, _, _ in runs))
    best = [rate(count, min(r.passes)) for _, r, _, _ in runs]
    table.add("throughput, best pass", "articles/s", *best)
    table.add(
        "throughput, median", "articles/s", *(rate(count, median(r.passes)) for _, r, _, _ in runs)
    )
    exact = [best[i - i % 3] for i in range(len(best))]
    table.add(
        "of exact",
        "%",
        *(100 * b / e if b and e else None for b, e in zip(best, exact, strict=True)),
    )
    table.add("topics hit", "per article", *(r.hits / count for _, r, _, _ in runs))
    table.add("matcher memory", "MB traced", *(r.traced_mb for _, r, _, _ in runs))
    table.notes.extend(notes)
    table.notes.append(
        "patterns counts the Words nodes of the parsed queries; after ~ expansion each ~word is "
        "an OR of its forms, all in the one automaton (ru articles: Russian translations joined "
        "into ~3,000 characters; en: corpus entries, as in the match benchmark)"
    )
    table.notes.append(
        "~ 1 in 4: each single word marked with probability 1/4 (analysts mark the key nouns); "
        "~ all: every single word; more words found means more topics hit, and each hit is "
        "evaluated again to record what to highlight"
    )
    table.notes.append("goal (issue 19): with word forms, at least half of exact throughput")
    return table


def run() -> list[Table]:
    """The three tables; the detection table needs the labelled sample."""
    rng = random.Random(SEED)
    progress("languages: building the labelled sample")
    items = [*translation_items(rng), *feed_items(), *composed_items()]
    tables = []
    if items:
        tables.append(detection_table(items))
    else:
        tables.append(skipped(TITLE, f"no labelled text found (catalogues at {locale_root()})"))
    tables.append(forms_table())
    tables.append(tagging_table())
    return tables
