"""``~word`` (any form), ``translit:`` and names: parsing, expansion, matching, and that word forms
never take away a match the exact query had."""

from __future__ import annotations

import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from monitor.topics.catalog import TopicSpec
from monitor.topics.forms import lemmas, query_word_forms, word_forms
from monitor.topics.matcher import ArticleView, Matcher, TopicRule, explain
from monitor.topics.names import transliterations
from monitor.topics.query import QuerySyntaxError, parse_query


def matches(query: str, title: str, text: str = "") -> bool:
    matcher = Matcher([TopicRule(1, "t", 1, parse_query(query))])
    return bool(matcher.match(ArticleView(title=title, text=text)))


@pytest.mark.parametrize(
    ("query", "forms", "others"),
    [
        # Russian: every case of the plural noun "elections", not "a choice" (выбор) nor
        # words that merely start alike.
        ("~выборы", ["выборы", "выборов", "выборам", "выборами", "выборах"],
         ["выбор", "выбора", "выборный", "выбираем", "набор"]),
        # An inflected query word stands for its dictionary form's forms.
        ("~выборах", ["выборы", "выборов"], ["выбор"]),
        # Stem changes a wildcard cannot reach: друг, друзья, друзей.
        ("~друг", ["друг", "друга", "друзья", "друзей", "друзьями"], ["другой", "подруга"]),
        ("~кремль", ["Кремль", "Кремля", "Кремлю", "Кремлём", "Кремле"], ["кремлевский"]),
        ("~российский", ["российская", "российского", "российским", "российских"], ["россия"]),
        # ё and е are one letter to matching.
        ("~ещё", ["еще", "ещё"], ["ешь"]),
        # Ukrainian.
        ("~вибори", ["вибори", "виборів", "виборах", "виборам"], ["вибір", "вибору"]),
        ("~росія", ["Росія", "Росії", "Росію", "Росією"], ["російський"]),
        ("~дезінформація", ["дезінформації", "дезінформацію", "дезінформацією"], ["інформація"]),
        # English.
        ("~election", ["election", "elections"], ["elect", "electoral"]),
        ("~vote", ["vote", "votes", "voted", "voting"], ["voter", "voters"]),
        ("~run", ["run", "runs", "ran", "running"], ["runner"]),
    ],
)  # fmt: skip
def test_a_word_with_tilde_matches_each_form_and_no_other_word(
    query: str, forms: list[str], others: list[str]
) -> None:
    for form in forms:
        assert matches(query, f"Новости: {form} сегодня"), form
    for other in others:
        assert not matches(query, f"Новости: {other} сегодня"), other


@pytest.mark.parametrize(
    ("query", "title", "matched"),
    [
        ("выборы", "Итоги выборов", False),  # a plain word keeps its exact meaning
        ("выборы", "Выборы прошли", True),
        ('"~президентские ~выборы"', "Итоги президентских выборов", True),
        ('"~президентские ~выборы"', "выборы президентские", False),  # a phrase keeps its order
        ('"~президентские выборы"', "президентских выборов", False),  # unmarked: exact
        ("~выборы NEAR/3 ~фальсификация", "Фальсификации на выборах", True),
        ("title:~выборы", "Выборах", True),
        ("~выборы AND NOT ~дебаты", "выборов без дебатов", False),
        ('"~агентство интернет-исследований"', "Агентства интернет-исследований", True),
    ],
)
def test_word_forms_in_phrases_near_fields_and_not(query: str, title: str, matched: bool) -> None:
    assert matches(query, title) is matched


@pytest.mark.parametrize(
    ("query", "complaint"),
    [
        ("~выбор*", "~ and * cannot be combined"),
        ("~", "empty query"),
        ('"~a ~b ~c ~d"', "at most 3 words of a phrase may take ~ or translit:"),
        ("translit:Shoigu", "translit: needs a word in Cyrillic"),
        ("translit:(Шойгу OR Лавров)", "translit: needs a word or a phrase after it"),
        ("translit:~Шойгу", "translit: takes plain words"),
        ('"~выбирать ~выбирать"', "stands for"),  # 1,600+ forms squared: too many phrases
    ],
)
def test_bad_marks_are_refused_with_a_reason(query: str, complaint: str) -> None:
    with pytest.raises(QuerySyntaxError, match=re.escape(complaint)):
        parse_query(query)


@pytest.mark.parametrize(
    "query",
    ["~выборы", '"~президентские ~выборы"', "translit:Шойгу", 'title:translit:"Сергей Шойгу"',
     "~vote OR ~election", '"~агентство интернет-исследований"'],
)  # fmt: skip
def test_marked_queries_read_back_as_written(query: str) -> None:
    node = parse_query(query)
    assert parse_query(str(node)) == node


def test_the_forms_functions_are_pure_and_shared_with_the_index() -> None:
    assert {"выборы", "выборов", "выборах"} <= word_forms("Выборы", "ru")
    assert "выборы" in lemmas("выборах", "ru")
    assert word_forms("выборы", "de") == frozenset({"выборы"})  # no dictionary: the word
    assert {"виборів", "виборах"} <= word_forms("вибори", "uk")
    assert query_word_forms("вибори") == word_forms("вибори", "uk")  # і: Ukrainian only


@pytest.mark.parametrize(
    ("name", "spellings"),
    [
        ("Шойгу", ["Shoigu", "Shoygu", "Shojgu", "Šojgu", "Choigou"]),
        ("Зеленський", ["Zelenskyi", "Zelenskyy", "Selenskyj", "Zelensky"]),
        ("Київ", ["Kyiv", "Kyjiw", "Kiïv"]),  # ї: the Ukrainian tables
        ("Киев", ["Kiev", "Kiyev", "Kyev"]),  # the Russian spelling: the Russian tables
        ("Симоньян", ["Simonyan", "Simonjan", "Simon'yan"]),
    ],
)
def test_translit_matches_the_latin_spellings(name: str, spellings: list[str]) -> None:
    for spelling in spellings:
        assert matches(f"translit:{name}", f"{spelling} said on Monday"), spelling
    assert matches(f"translit:{name}", f"{name} заявил")
    assert not matches(f"translit:{name}", "Lavrov said on Monday")


def test_transliterations_are_folded_and_keep_the_word() -> None:
    spellings = transliterations("Київ")
    assert {"київ", "kyiv", "kyjiv"} <= spellings
    assert "kiev" not in spellings  # the Russian spelling, from Киев, is not Київ's


@pytest.mark.parametrize(
    ("title", "matched"),
    [
        ("Лаврова спросили о переговорах", True),  # a form of the surname
        ("Lavrov said on Monday", True),  # a transliteration
        ("Schoigu warnt den Westen", True),  # a spelling given in the list
        ("Шойгу провёл совещание", True),
        ("Погода на выходные", False),
    ],
)
def test_a_names_list_matches_forms_transliterations_and_spellings(
    title: str, matched: bool
) -> None:
    spec = TopicSpec(slug="officials", name="Officials", names=["Шойгу", "Schoigu", "Лавров"])
    assert matches(spec.effective_query, title) is matched


def test_queries_one_per_language_match_when_any_does() -> None:
    spec = TopicSpec(
        slug="elections",
        name="Elections",
        queries={"en": "election*", "ru": "~выборы", "uk": "~вибори"},
    )
    for title in ("Elections in Moldova", "Выборы в Молдове", "Підсумки виборів"):
        assert matches(spec.effective_query, title), title
    assert not matches(spec.effective_query, "Wahlen in Moldau")


def test_explain_shows_a_marked_word_as_written() -> None:
    rule = TopicRule(1, "t", 1, parse_query("~выборы AND translit:Шойгу"))
    lines = explain(rule, ArticleView(title="Шойгу о выборах", text=""))
    assert [(line.depth, line.clause, line.matched) for line in lines] == [
        (0, "AND", True),
        (1, "~выборы", True),
        (1, "translit:шойгу", True),
    ]
    assert lines[1].spans[0].start == len("Шойгу о ")


@pytest.mark.parametrize(
    ("query", "text"),
    [
        ("~выборы", "Итоги выбоpов в Молдове"),  # Latin p inside a Cyrillic word
        ("~выборы", "Итоги вы\u200dборов"),  # a zero-width joiner inside it
        ("кремль", "KPEМЛЬ ответил"),  # Latin K, P, E in a Cyrillic capital word
        ("путин", "Пу\u00adтин заявил"),  # a soft hyphen
        ("putin", "Puтin said"),  # a Cyrillic т inside a Latin word
        ("Putin", "Pu\u200btin said"),  # zero-width space inside an ASCII word
        ("пропаганда", "пропаганда\ufeff и ложь"),
    ],
)
def test_mixed_script_and_invisible_characters_do_not_hide_a_word(query: str, text: str) -> None:
    assert matches(query, text)


# --- word forms never take a match away ------------------------------------------------

# Forms of a few Russian words, and words that are none of their forms.
VOCABULARY = [
    "выборы", "выборов", "выборах", "выбор", "кремль", "кремля", "кремлю", "пропаганда",
    "пропаганды", "пропагандой", "российский", "российских", "журналист", "журналисты",
    "суд", "суда", "и", "в", "на",
]  # fmt: skip
WORD = st.sampled_from(VOCABULARY)


def _queries(words: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    """Positive queries (no NOT) of words and phrases, some of their words marked with ~."""
    marked = st.tuples(words, st.booleans()).map(lambda p: ("~" if p[1] else "") + p[0])
    leaf = st.one_of(
        marked,
        st.lists(marked, min_size=2, max_size=2).map(lambda ws: '"' + " ".join(ws) + '"'),
    )
    return st.recursive(
        leaf,
        lambda inner: st.one_of(
            st.tuples(inner, inner).map(lambda p: f"({p[0]} AND {p[1]})"),
            st.tuples(inner, inner).map(lambda p: f"({p[0]} OR {p[1]})"),
            st.tuples(leaf, leaf, st.integers(0, 4)).map(lambda p: f"{p[0]} NEAR/{p[2]} {p[1]}"),
        ),
        max_leaves=5,
    )


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(query=_queries(WORD), title=st.lists(WORD, max_size=8), text=st.lists(WORD, max_size=20))
def test_word_forms_never_remove_a_match_the_exact_query_had(
    query: str, title: list[str], text: list[str]
) -> None:
    exact = query.replace("~", "")
    article = ArticleView(title=" ".join(title), text=" ".join(text))
    exact_hits = Matcher([TopicRule(1, "t", 1, parse_query(exact))]).match(article)
    forms_hits = Matcher([TopicRule(1, "t", 1, parse_query(query))]).match(article)
    if exact_hits:
        assert forms_hits, f"{query!r} lost the match of {exact!r}"
        # And every word the exact query highlighted is highlighted still.
        assert set(exact_hits[0].spans) <= set(forms_hits[0].spans)
