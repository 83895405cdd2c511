"""/api/review: a topic's inbox with review states, changes of one or many articles, history,
survival of a retag that drops the match, refusals, and two reviewers at once (both databases)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from tests.review.data import HOSTILE, Inbox, seed_inbox
from tests.web.test_api import AUTH, api_app, assert_error

DAY = "2024-09-08"


@pytest.fixture
def inbox(engine: Engine) -> Inbox:
    return seed_inbox(engine)


@pytest.fixture
def client(inbox: Inbox, engine: Engine, tmp_path: Path) -> Iterator[TestClient]:
    with TestClient(api_app(engine, tmp_path)) as client:
        yield client


def review(client: TestClient, ids: list[int], **body: Any) -> Any:
    response = client.post("/api/review", json={"topic": "votes", "article_ids": ids, **body},
                           headers=AUTH)  # fmt: skip
    assert response.status_code == 200, response.text
    return response.json()


def listed(client: TestClient, **params: Any) -> Any:
    response = client.get("/api/review", params={"topic": "votes", "day": DAY, **params},
                          headers=AUTH)  # fmt: skip
    assert response.status_code == 200, response.text
    return response.json()


def test_the_inbox_lists_the_day_with_states_and_counts(client: TestClient, inbox: Inbox) -> None:
    body = listed(client)
    assert (body["topic"], body["from"], body["to"], body["next_cursor"]) == (
        "votes", DAY, DAY, None)  # fmt: skip
    assert [i["article_id"] for i in body["items"]][-1] == inbox.backlog_id
    assert {i["state"] for i in body["items"]} == {"new"}
    assert body["counts"]["summary"] == "0 of 7 reviewed"
    assert any(i["title"] == HOSTILE + " election" for i in body["items"])


def test_one_change_sets_state_note_and_reviewer(client: TestClient, inbox: Inbox) -> None:
    first = inbox.day_ids[0]
    changed = review(client, [first], state="flagged", note="call the desk", reviewer="ada")
    [row] = changed["changed"]
    assert (row["article_id"], row["state"], row["note"], row["updated_by"], row["changes"]) == (
        first, "flagged", "call the desk", "ada", 1)  # fmt: skip
    item = next(i for i in listed(client)["items"] if i["article_id"] == first)
    assert (item["state"], item["note"], item["updated_by"]) == ("flagged", "call the desk", "ada")
    assert item["updated_at"] == "2024-09-09T06:00:00Z"
    assert listed(client)["counts"]["summary"] == "1 of 7 reviewed"


def test_bulk_flag_then_filter_by_state(client: TestClient, inbox: Inbox) -> None:
    chosen = inbox.day_ids[:4]
    changed = review(client, chosen, state="flagged")
    assert sorted(r["article_id"] for r in changed["changed"]) == sorted(chosen)
    flagged = listed(client, state="flagged")["items"]
    assert sorted(i["article_id"] for i in flagged) == sorted(chosen)
    both = listed(client, state=["new", "flagged"])["counts"]
    assert (both["flagged"], both["new"]) == (4, 3)


def test_history_keeps_every_change_in_order(client: TestClient, inbox: Inbox) -> None:
    first = inbox.day_ids[0]
    review(client, [first], state="reviewed", reviewer="ada")
    review(client, [first], note="seen twice", reviewer="bob")
    review(client, [first], state="dismissed", reviewer="cy")
    response = client.get("/api/review/history", params={"topic": "votes", "article_id": first},
                          headers=AUTH)  # fmt: skip
    assert response.status_code == 200
    assert [(e["changed_by"], e["previous_state"], e["state"], e["note"])
            for e in response.json()] == [
        ("ada", "new", "reviewed", ""),
        ("bob", "reviewed", "reviewed", "seen twice"),
        ("cy", "reviewed", "dismissed", "seen twice"),
    ]  # fmt: skip


def test_a_retag_that_drops_the_match_keeps_the_review(client: TestClient, inbox: Inbox) -> None:
    english, german = inbox.day_ids[0], inbox.day_ids[2]
    review(client, [english, german], state="flagged", note="check")
    # A new query: only the German copies still match.
    response = client.patch("/api/topics/votes", json={"query": "wahl"}, headers=AUTH)
    assert response.status_code == 200, response.text
    items = {i["article_id"]: i for i in listed(client)["items"]}
    assert (items[english]["matches"], items[english]["state"], items[english]["note"]) == (
        False, "flagged", "check")  # fmt: skip
    assert (items[german]["matches"], items[german]["state"]) == (True, "flagged")
    # Never reviewed and no longer matched: out of the inbox.
    assert inbox.day_ids[1] not in items
    # Still reviewable, and its history is whole.
    review(client, [english], state="dismissed")
    history = client.get("/api/review/history", params={"topic": "votes", "article_id": english},
                         headers=AUTH).json()  # fmt: skip
    assert [e["state"] for e in history] == ["flagged", "dismissed"]


def test_pages_follow_the_cursor(engine: Engine, tmp_path: Path) -> None:
    inbox = seed_inbox(engine, extra=5)
    with TestClient(api_app(engine, tmp_path)) as client:
        seen, cursor = [], None
        while True:
            body = listed(client, limit=4, **({"cursor": cursor} if cursor else {}))
            seen += [i["article_id"] for i in body["items"]]
            cursor = body["next_cursor"]
            if cursor is None:
                break
    assert sorted(seen) == sorted([*inbox.day_ids, inbox.backlog_id])
    assert len(seen) == len(set(seen)) == 12


@pytest.mark.parametrize(
    ("method", "path", "kwargs", "status", "fragment"),
    [
        ("get", "/api/review", {"params": {"topic": "votes"}, "headers": {}}, 401,
         "needs Authorization: Bearer"),
        ("post", "/api/review", {"json": {"topic": "votes", "article_ids": [1],
                                          "state": "reviewed"}, "headers": {}}, 401,
         "needs Authorization: Bearer"),
        ("get", "/api/review", {"params": {"topic": "nope"}}, 404, "no topic 'nope'"),
        ("get", "/api/review", {"params": {"topic": "votes", "cursor": "x"}}, 422,
         "not a cursor of this inbox"),
        ("get", "/api/review", {"params": {"topic": "votes", "from": "2024-09-09",
                                           "to": "2024-09-01"}}, 422, "before it starts"),
        ("get", "/api/review", {"params": {"topic": "votes", "language": "e n"}}, 422,
         "not a language tag"),
        ("post", "/api/review", {"json": {"topic": "votes", "article_ids": [1]}}, 422,
         "give a state, a note, or both"),
        ("post", "/api/review", {"json": {"topic": "votes", "article_ids": [9999],
                                          "state": "reviewed"}}, 404,
         "article 9999 not in this topic's inbox"),
        ("post", "/api/review", {"json": {"topic": "votes", "article_ids": [1],
                                          "state": "lost"}}, 422, "state"),
        ("post", "/api/review", {"json": {"topic": "votes", "article_ids": [1],
                                          "note": "a\x00b"}}, 422, "NUL"),
    ],
)  # fmt: skip
def test_refusals(
    client: TestClient, method: str, path: str, kwargs: dict[str, Any], status: int,
    fragment: str,
) -> None:  # fmt: skip
    kwargs.setdefault("headers", AUTH)
    response = getattr(client, method)(path, **kwargs)
    assert_error(response, status, fragment)


def test_reads_stay_closed_when_public_reads_are_open(client: TestClient) -> None:
    # api_app opens public reads: the feeds are readable, the team's review notes are not.
    assert client.get("/api/feeds").status_code == 200
    assert_error(client.get("/api/review", params={"topic": "votes"}), 401, "review state")


def test_two_reviewers_at_once_last_write_wins_and_both_are_in_the_history(
    engine: Engine, inbox: Inbox, tmp_path: Path
) -> None:
    article = inbox.day_ids[0]
    app = api_app(engine, tmp_path)
    start = threading.Barrier(2)
    answers: dict[str, Any] = {}

    def reviewer(name: str, state: str) -> None:
        with TestClient(app) as client:
            start.wait(10)
            body = {"topic": "votes", "article_ids": [article], "state": state, "reviewer": name}
            answers[name] = client.post("/api/review", headers=AUTH, json=body)

    threads = [threading.Thread(target=reviewer, args=("ada", "flagged")),
               threading.Thread(target=reviewer, args=("bob", "dismissed"))]  # fmt: skip
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert [answers[n].status_code for n in ("ada", "bob")] == [200, 200]
    with TestClient(app) as client:
        history = client.get("/api/review/history", headers=AUTH,
                             params={"topic": "votes", "article_id": article}).json()  # fmt: skip
        item = next(i for i in listed(client)["items"] if i["article_id"] == article)
    assert sorted(e["changed_by"] for e in history) == ["ada", "bob"]
    first, last = history
    # Whoever wrote last wins; the later change replaced the earlier one, not the "new" before it.
    assert (first["previous_state"], last["previous_state"]) == ("new", first["state"])
    assert (item["state"], item["updated_by"]) == (last["state"], last["changed_by"])
