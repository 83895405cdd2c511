"""Which feeds a poll starts when (``refresh._Admission``): first come first, within the room
and per-host limits, without a task per waiting feed."""

from __future__ import annotations

import pytest

from monitor.ingest.refresh import _Admission


def run(hosts: list[str], room: int, per_host: int, finish_order: str) -> list[list[int]]:
    """The feeds started at each round, finishing the oldest (``fifo``) or newest running."""
    admission = _Admission(hosts, room, per_host)
    running: list[int] = []
    rounds = []
    while True:
        started = admission.admit()
        rounds.append(started)
        running += started
        on_host: dict[str, int] = {}
        for index in running:
            on_host[hosts[index]] = on_host.get(hosts[index], 0) + 1
        assert len(running) <= room
        assert max(on_host.values(), default=0) <= per_host
        if not running:
            return rounds
        admission.finished(running.pop(0 if finish_order == "fifo" else -1))


@pytest.mark.parametrize(
    ("hosts", "room", "per_host", "first"),
    [
        (["a", "b", "c", "d"], 2, 5, [0, 1]),  # room binds
        (["a", "a", "a", "b", "c"], 10, 2, [0, 1, 3, 4]),  # the third of a waits
        (["a"] * 5, 10, 1, [0]),  # one host, one at a time
        ([], 4, 2, []),  # nothing to do
    ],
)
def test_first_round(hosts: list[str], room: int, per_host: int, first: list[int]) -> None:
    """The first feeds started are the first that fit, in the order given."""
    assert _Admission(hosts, room, per_host).admit() == first


@pytest.mark.parametrize("finish_order", ["fifo", "lifo"])
@pytest.mark.parametrize(
    ("hosts", "room", "per_host"),
    [
        (["a", "b", "a", "c", "a", "b", "d", "a"], 3, 2),
        (["a"] * 7 + ["b"] * 3, 4, 1),
        ([f"h{n % 5}" for n in range(40)], 6, 2),
        (["x", "y"], 1, 1),
    ],
)
def test_every_feed_starts_once_within_the_limits(
    hosts: list[str], room: int, per_host: int, finish_order: str
) -> None:
    """However tasks finish, each feed starts exactly once and no limit is passed (checked in
    every round by ``run``)."""
    started = [index for round_ in run(hosts, room, per_host, finish_order) for index in round_]
    assert sorted(started) == list(range(len(hosts)))


def test_a_hosts_feeds_start_in_order() -> None:
    """Feeds of one host held back start in the order given, before later feeds of it."""
    hosts = ["a", "a", "b", "a", "a", "b", "a"]
    started = [i for round_ in run(hosts, 2, 1, "fifo") for i in round_]
    assert [i for i in started if hosts[i] == "a"] == [0, 1, 3, 4, 6]
