"""The inbox pages through the app: overview counts, a topic's day in story order with the
backlog apart, one and bulk changes by form (CSRF-checked), the script's JSON answer, history,
filters, pages, the CSV and JSON exports (formula cells quoted), and the dashboard's counts."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Mapping
from typing import Any

import pytest
from sqlalchemy import Engine
from sqlmodel import Session, col, delete

from monitor.models import Match
from tests.review.data import HOSTILE, Inbox, seed_inbox
from tests.web.site import Site

DAY = "2024-09-08"
LIST = f"/inbox/votes/{DAY}"


@pytest.fixture
def inbox(engine: Engine) -> Inbox:
    return seed_inbox(engine)


def change(site: Site, data: Mapping[str, object]) -> Any:
    """POST a review form with the session's CSRF token; the answer, redirects not followed."""
    form = {"csrf_token": site.csrf(LIST), **data}
    return site.client.post("/inbox/review", data=form, follow_redirects=False)


def item_ids(html: str) -> list[int]:
    return [int(i) for i in re.findall(r'data-article="(\d+)"', html)]


def state_of(html: str, article_id: int) -> str:
    found = re.search(rf'data-article="{article_id}" data-state="(\w+)"', html)
    assert found, f"article {article_id} not on the page"
    return found.group(1)


def test_overview_lists_each_topic_with_its_progress(site: Site, inbox: Inbox) -> None:
    change(site, {"topic": "votes", "set": f"reviewed:{inbox.day_ids[0]}"})
    html = site.client.get(f"/inbox?day={DAY}").text
    assert f'href="{LIST}"' in html
    assert "1 of 6 reviewed" in html  # the day's news; the backlog item is not counted


def test_a_day_shows_stories_together_and_the_backlog_apart(site: Site, inbox: Inbox) -> None:
    response = site.client.get(LIST)
    assert response.status_code == 200
    html = response.text
    assert item_ids(html) == [*inbox.day_ids[4:], *inbox.day_ids[:4], inbox.backlog_id]
    assert html.count('class="story-title"') == 2
    assert "Story: Election night" in html
    assert "— 2 outlets" in html
    news, backlog = html.split('aria-label="Backlog"')
    assert f'data-article="{inbox.backlog_id}"' in backlog
    assert "0 of 7 reviewed" in news
    # The hostile title is text, never markup; the page's script is its own file (CSP).
    assert "=HYPERLINK(&#34;http://evil.example&#34;" in html
    assert '<script src="/static/inbox.js" defer></script>' in html
    assert "script-src 'self'" in response.headers["content-security-policy"]


def test_one_change_by_form_goes_back_to_the_view(site: Site, inbox: Inbox) -> None:
    first = inbox.day_ids[0]
    back = f"/inbox?topic=votes&from={DAY}&to={DAY}&language=en"
    response = change(site, {"topic": "votes", "set": f"flagged:{first}",
                                           "back": back})  # fmt: skip
    assert response.status_code == 303
    assert response.headers["location"] == back
    html = site.client.get(LIST).text
    assert state_of(html, first) == "flagged"
    assert "flagged by ada" in html


def test_bulk_flag_of_the_selection(site: Site, inbox: Inbox) -> None:
    chosen = inbox.day_ids[1:4]
    response = change(site, {"topic": "votes", "article": chosen,
                                           "state": "flagged"})  # fmt: skip
    assert response.status_code == 303
    html = site.client.get(f"/inbox?topic=votes&day={DAY}&state=flagged").text
    assert sorted(item_ids(html)) == sorted(chosen)


def test_a_note_is_saved_and_shown_with_its_history(site: Site, inbox: Inbox) -> None:
    first = inbox.day_ids[0]
    change(site, {"topic": "votes", "set": f"note:{first}",
                                f"note-{first}": "ask the desk <b>now</b>"})  # fmt: skip
    change(site, {"topic": "votes", "set": f"dismissed:{first}"})
    html = site.client.get(LIST).text
    assert "Note: ask the desk &lt;b&gt;now&lt;/b&gt;" in html
    history = site.client.get(f"/inbox/votes/articles/{first}/history").text
    assert history.count("<tr><td>") == 2
    assert "new → <strong>new</strong>" in history
    assert "new → <strong>dismissed</strong>" in history


def test_the_script_s_change_is_answered_in_json(site: Site, inbox: Inbox) -> None:
    first = inbox.day_ids[0]
    token = site.csrf(LIST)
    response = site.client.post("/inbox/review", headers={"Accept": "application/json"},
                                data={"csrf_token": token, "topic": "votes",
                                      "set": f"reviewed:{first}"})  # fmt: skip
    assert response.status_code == 200
    [change] = response.json()["changed"]
    assert (change["article_id"], change["state"], change["updated_by"]) == (
        first, "reviewed", "ada")  # fmt: skip


@pytest.mark.parametrize(
    ("data", "status", "message"),
    [
        ({"topic": "votes", "set": "reviewed:1", "csrf_token": "forged"}, 403, "Form refused"),
        ({"topic": "votes", "state": "flagged"}, 400, "select at least one article"),
        ({"topic": "votes", "set": "explode:1"}, 400, "not a change"),
        ({"topic": "nope", "set": "reviewed:1"}, 400, "no topic"),
        ({"topic": "votes", "set": "reviewed:99999"}, 400, "not in this topic"),
    ],
)
def test_bad_changes_are_refused(
    site: Site, inbox: Inbox, data: dict[str, str], status: int, message: str
) -> None:
    response = change(site, data)
    assert response.status_code == status
    assert message in response.text
    assert "flagged by" not in site.client.get(LIST).text


def test_back_never_leaves_the_inbox(site: Site, inbox: Inbox) -> None:
    response = change(site, {"topic": "votes", "back": "//evil.example/x",
                                           "set": f"reviewed:{inbox.day_ids[0]}"})  # fmt: skip
    assert response.headers["location"] == "/inbox"


def test_a_match_gone_is_shown_as_no_longer_matching(
    site: Site, inbox: Inbox, engine: Engine
) -> None:
    first = inbox.day_ids[0]
    change(site, {"topic": "votes", "set": f"flagged:{first}"})
    with Session(engine) as session, session.begin():
        session.exec(delete(Match).where(col(Match.article_id) == first))
    html = site.client.get(LIST).text
    assert state_of(html, first) == "flagged"
    item = html[html.index(f'id="item-{first}"') :].split("</li>")[0]
    assert "no longer matches" in item


def test_filter_by_language_and_date_and_page_to_the_end(site: Site, engine: Engine) -> None:
    inbox = seed_inbox(engine, extra=60)
    german = site.client.get(f"/inbox?topic=votes&from={DAY}&to={DAY}&language=de").text
    assert item_ids(german) == inbox.day_ids[2:4]
    before = site.client.get("/inbox?topic=votes&from=2024-09-07&to=2024-09-07").text
    assert item_ids(before) == [inbox.before_id]
    seen: list[int] = []
    path = LIST
    for _ in range(5):
        html = site.client.get(path).text
        seen += item_ids(html)
        found = re.search(r'href="([^"]+)" rel="next">Next page', html)
        if not found:
            assert "End of the list." in html
            break
        path = found.group(1).replace("&amp;", "&")
    assert len(seen) == len(set(seen)) == len(inbox.day_ids) + 1 == 67


def test_csv_export_of_the_filter_quotes_formula_cells(site: Site, inbox: Inbox) -> None:
    change(site, {"topic": "votes", "set": f"flagged:{inbox.day_ids[5]}"})
    response = site.client.get(f"/inbox?topic=votes&from={DAY}&to={DAY}&format=csv")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    assert 'filename="inbox-votes-2024-09-08.csv"' in response.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert len(rows) == len(inbox.day_ids) + 1
    hostile = next(r for r in rows if r["article_id"] == str(inbox.day_ids[5]))
    assert hostile["title"] == "'" + HOSTILE + " election"
    assert (hostile["state"], hostile["updated_by"]) == ("flagged", "ada")
    assert {r["backlog"] for r in rows} == {"yes", "no"}


def test_json_export_keeps_the_title_as_is(site: Site, inbox: Inbox) -> None:
    response = site.client.get(f"/inbox?topic=votes&day={DAY}&format=json&language=en")
    body = response.json()
    assert body["topic"] == "votes"
    titles = [i["title"] for i in body["items"]]
    assert HOSTILE + " election" in titles
    assert all(i["language"] == "en" for i in body["items"])


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("topic=votes&from=2024-09-09&to=2024-09-01", "before it starts"),
        ("topic=votes&language=%3Cscript%3E", "not a language tag"),
        ("topic=votes&cursor=zzz", "not a cursor"),
    ],
)
def test_bad_filters_get_a_clear_error(site: Site, inbox: Inbox, query: str, message: str) -> None:
    response = site.client.get(f"/inbox?{query}")
    assert response.status_code == 400
    assert message in response.text


def test_the_inbox_needs_a_signed_in_admin(site: Site, inbox: Inbox) -> None:
    site.client.cookies.clear()
    response = site.client.get(LIST, follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"].startswith("/login?next=/inbox/votes/")


def test_the_dashboard_shows_what_is_left_today(site: Site, engine: Engine) -> None:
    from datetime import timedelta

    from monitor.models import Article
    from tests.web.site import NOW

    inbox = seed_inbox(engine)
    with Session(engine) as session, session.begin():
        for article_id in inbox.day_ids[:3]:
            article = session.get(Article, article_id)
            assert article is not None
            article.first_seen_at = NOW - timedelta(hours=1)
            session.add(article)
    change(site, {"topic": "votes", "set": f"reviewed:{inbox.day_ids[0]}"})
    html = site.client.get("/").text
    assert '<a href="/inbox/votes/2024-09-09">1 of 3 reviewed</a>' in html
    assert "(2 left)" in html
