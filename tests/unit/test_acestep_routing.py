"""The pure decisions of a pool of ACE-Step servers (#20): where a job goes, what a remote id
names, which jobs a server has forgotten."""

from __future__ import annotations

import math

import pytest

from bot.backends.acestep_routing import (
    ServerLoad,
    choose,
    forgotten,
    pool_id,
    server_key,
    server_of,
    split_pool_id,
)


def load(key: str, **fields: object) -> ServerLoad:
    values: dict[str, object] = {
        "usable": True,
        "capable": True,
        "in_flight": 0,
        "capacity": 2,
        "ahead": 0,
        "sent_since": 0,
        "avg_seconds": 10.0,
    }
    return ServerLoad(key=key, **(values | fields))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("loads", "chosen"),
    [
        ([load("a"), load("b")], "a"),  # equal: the first listed
        ([load("a", ahead=3), load("b", ahead=1)], "b"),  # a shorter queue
        ([load("a", ahead=0, sent_since=2), load("b", ahead=1)], "b"),  # sent since the read
        ([load("a", in_flight=1, ahead=0), load("b")], "b"),  # ours there, stats not yet
        ([load("a", avg_seconds=2.0, ahead=3), load("b", avg_seconds=30.0)], "a"),  # 8 < 30 s
        ([load("a", usable=False), load("b", ahead=9)], "b"),  # out of rotation
        ([load("a", capable=False), load("b", ahead=9)], "b"),  # can't make it
        ([load("a", in_flight=2), load("b", ahead=9)], "b"),  # full
        ([load("a", avg_seconds=None, ahead=1), load("b", avg_seconds=10.0)], "b"),  # mean avg
        ([load("a", usable=False), load("b", in_flight=2)], None),  # none may take it
    ],
)
def test_a_job_goes_where_it_finishes_soonest(loads: list[ServerLoad], chosen: str | None) -> None:
    found = choose(loads)
    assert (found.key if found else None) == chosen


@pytest.mark.parametrize(
    ("unfinished", "ahead", "read_at", "lost"),
    [
        ({"t1": 1.0, "t2": 2.0}, 2, 5.0, []),  # it knows both
        ({"t1": 1.0, "t2": 2.0}, 0, 5.0, ["t1", "t2"]),  # restarted, idle
        ({"t1": 1.0, "t2": 2.0, "t3": 3.0}, 1, 5.0, ["t1", "t2"]),  # the oldest forgotten
        ({"t1": 1.0, "t2": 6.0}, 0, 5.0, ["t1"]),  # sent after the read: not judged
        ({"t1": -math.inf, "t2": 2.0}, 1, 5.0, ["t1"]),  # adopted after a restart: oldest
        ({}, 0, 5.0, []),
    ],
)
def test_forgotten_jobs_are_the_oldest_beyond_what_the_server_holds(
    unfinished: dict[str, float], ahead: int, read_at: float, lost: list[str]
) -> None:
    assert forgotten(unfinished, ahead, read_at) == lost


def test_remote_ids_name_their_server() -> None:
    urls = ["http://gpu1:8001", "http://gpu2:8001/"]
    keys = [server_key(url) for url in urls]
    assert len(keys[0]) == 6 and keys[0] != keys[1]
    # The same server however its URL is spelled.
    assert server_key("http://GPU2:8001") == keys[1] == server_key("http://gpu2:8001")
    assert server_key("https://gpu3") == server_key("https://gpu3:443/")
    task = "0f8e6c2a-1b2c-4d5e-8f90-123456789abc"
    assert split_pool_id(pool_id(keys[1], task), keys) == (keys[1], task)
    assert split_pool_id(task, keys) == (keys[0], task)  # from before the pool: the first
    assert split_pool_id(f"abcdef:{task}", keys) == (None, task)  # a server no longer listed
    assert server_of(pool_id(keys[1], task), urls) == (keys[1], urls[1])
    assert server_of(None, urls) is None
