"""The decisions of a pool of ACE-Step servers, pure: which server takes a job, how a job's
remote id names its server, and which of a server's jobs it has forgotten.

**Remote ids.** A pool's job is recorded as ``<server key>:<the server's task id>``: the key
is :func:`server_key` of the server's URL (6 hex digits, the same in every process and after
a restart, whatever the order of ``ACESTEP_API_URL``), so the id alone says which server made
the song (``acejam jobs``) without a column of its own. An id without a key (a job sent
before the pool, by a single server) belongs to the first server; a key no configured server
has (its URL changed or was removed) belongs to none, and the job is submitted again
elsewhere. The server's own task ids are UUIDs: they hold no ``:``.

**Routing.** A job goes to the capable server, in rotation and below its
``ACESTEP_MAX_CONCURRENCY``, that will finish it soonest: one engine runs one job at a time,
so a job sent now waits for what is ahead of it there (the server's ``queue_size`` and running
job from ``/v1/stats``, plus what we sent since that read, and never less than our own jobs
there) and then runs ``avg_job_seconds``. Ties go to the server listed first.

**Forgotten jobs.** An engine keeps its queue in memory, and an id it no longer knows reads
"queued" for ever (docs/upstreams.md §2). A restart forgets everything sent before it, so
when a server reports fewer jobs queued or running than we have unfinished there (sent before
that report), the difference is forgotten, and it is the oldest ones (:func:`forgotten`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import httpx

from bot.backends.download import normalize_host

KEY_LENGTH = 6
SEPARATOR = ":"


def server_key(url: str) -> str:
    """The short, stable name of a server in remote ids, logs and metrics."""
    parsed = httpx.URL(url)
    port = parsed.port or {"http": 80, "https": 443}.get(parsed.scheme, 0)
    path = parsed.path.rstrip("/")
    normal = f"{parsed.scheme}://{normalize_host(parsed.host)}:{port}{path}"
    return hashlib.sha256(normal.encode()).hexdigest()[:KEY_LENGTH]


def pool_id(key: str, task_id: str) -> str:
    return f"{key}{SEPARATOR}{task_id}"


def split_pool_id(remote_id: str, keys: Sequence[str]) -> tuple[str | None, str]:
    """(server key, the server's task id) of a recorded remote id. A plain id (sent before
    the pool) is the first server's; a key nobody has answers None."""
    key, sep, task_id = remote_id.partition(SEPARATOR)
    if not sep:
        return (keys[0] if keys else None), remote_id
    return (key if key in keys else None), task_id


def server_of(remote_id: str | None, urls: Sequence[str]) -> tuple[str, str] | None:
    """(key, URL) of the server a recorded remote id names, for what the operator reads;
    None before a submit or for a server no longer configured."""
    if not remote_id:
        return None
    keys = [server_key(url) for url in urls]
    key, _ = split_pool_id(remote_id, keys)
    return None if key is None else (key, urls[keys.index(key)])


@dataclass(frozen=True)
class ServerLoad:
    """What is known of one server when a job is to be placed."""

    key: str
    usable: bool  # in rotation: answering, not refusing
    capable: bool  # has what the job needs (a language model, an edit's task type)
    in_flight: int  # our unfinished jobs there
    capacity: int  # its ACESTEP_MAX_CONCURRENCY
    ahead: int | None  # its queued + running jobs at its last /v1/stats; None unknown
    sent_since: int  # our submits there since that read
    avg_seconds: float | None  # its avg_job_seconds; None unknown


def finish_estimate(load: ServerLoad, default_avg: float) -> float:
    """Seconds until a job sent there now would be done."""
    ahead = max(load.in_flight, (load.ahead or 0) + load.sent_since)
    return (ahead + 1) * (load.avg_seconds or default_avg)


def choose(loads: Sequence[ServerLoad]) -> ServerLoad | None:
    """The server that finishes a job soonest, of those that may take it; None: none may."""
    known = [load.avg_seconds for load in loads if load.avg_seconds]
    default_avg = sum(known) / len(known) if known else 1.0
    open_ = [
        load for load in loads if load.usable and load.capable and load.in_flight < load.capacity
    ]
    if not open_:
        return None
    return min(open_, key=lambda load: finish_estimate(load, default_avg))  # first of equals


def forgotten(unfinished: Mapping[str, float], ahead: int, read_at: float) -> list[str]:
    """The task ids a server cannot know: ``unfinished`` are ours it answered "queued" or
    "running" (id → when we sent it), ``ahead`` its queued + running count read at
    ``read_at``. Only jobs sent before that read count; the oldest are the forgotten."""
    older = sorted((sent, task_id) for task_id, sent in unfinished.items() if sent < read_at)
    extra = len(older) - ahead
    return [task_id for _, task_id in older[:extra]] if extra > 0 else []
