"""One server of an ACE-Step pool as the pool sees it: its engine client
(:class:`~bot.backends.acestep.AceStepBackend`), whether it is in rotation, what its
``/v1/stats`` last said, and our jobs in flight there.

A server leaves the rotation when ``/health`` or ``/v1/stats`` fails, or it refuses a submit
(429, 5xx, no connection, a key it does not take), and is probed (``GET /health``) again after
a back-off that doubles with each failure in a row (:data:`PROBE_BASE` .. :data:`PROBE_CAP`
seconds, times the pool's time scale). Whether it is *reachable* is tracked apart: a server
that gives no HTTP answer at all since ``unreachable_since`` has died once that lasts the
pool's failover grace (``ACESTEP_FAILOVER_SECONDS``), and its jobs go elsewhere.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, field

import httpx

from bot.backends._http import json_or_none
from bot.backends.acestep import AceStepBackend
from bot.backends.acestep_routing import ServerLoad
from bot.domain import GenerationRequest
from bot.retry import backoff

logger = logging.getLogger(__name__)

PROBE_BASE = 2.0  # seconds before a server out of rotation is first probed again
PROBE_CAP = 60.0  # the longest wait between two probes
STATS_FRESH = 2.0  # seconds a /v1/stats read serves routing before it is read again
# Jobs we sent this recently count as in flight even before a poll asks about them (the
# worker records a submit before it polls it).
RECENT_SEND = 60.0
# A forgotten job is only called lost after this many poll rounds in a row say so (a job
# passing from the queue to the engine may be counted in neither for a moment).
STRIKES = 2


@dataclass(frozen=True)
class Stats:
    ahead: int  # queued + running
    avg_seconds: float | None
    read_at: float  # monotonic


@dataclass
class Member:
    key: str
    url: str
    api_key: str | None
    engine: AceStepBackend
    capacity: int
    http: httpx.AsyncClient
    time_scale: float = 1.0
    probe_timeout: float = 10.0
    # Rotation: out until ``out_until`` (monotonic), after ``failures`` failures in a row.
    out_until: float | None = None
    failures: int = 0
    unreachable_since: float | None = None
    stats: Stats | None = None
    sent_since: int = 0  # submits since ``stats`` was read
    # Submits on their way there: counted as sent, so jobs placed at the same moment don't
    # all see the same idle server.
    placing: int = 0
    in_flight: dict[str, float] = field(default_factory=dict)  # task id -> sent (monotonic)
    strikes: dict[str, int] = field(default_factory=dict)  # task id -> rounds judged forgotten

    # ------------------------------------------------------------ rotation
    @property
    def in_rotation(self) -> bool:
        return self.out_until is None

    def probe_due(self, now: float) -> bool:
        return self.out_until is not None and now >= self.out_until

    def leave_rotation(self, why: str) -> None:
        self.failures += 1
        wait = backoff(self.failures, base=PROBE_BASE, cap=PROBE_CAP) * self.time_scale
        if self.out_until is None:
            logger.warning("acestep server %s out of rotation: %s", self.key, why)
        self.out_until = time.monotonic() + wait

    def rejoin(self) -> None:
        if self.out_until is not None:
            logger.info("acestep server %s back in rotation", self.key)
        self.out_until = None
        self.failures = 0

    def reached(self, answered: bool) -> None:
        """Note whether a request got an HTTP answer (any status) or none at all."""
        if answered:
            self.unreachable_since = None
        elif self.unreachable_since is None:
            self.unreachable_since = time.monotonic()

    def dead_for(self, now: float) -> float:
        """Seconds it has given no answer at all (0 while it answers)."""
        return 0.0 if self.unreachable_since is None else now - self.unreachable_since

    # ------------------------------------------------------------ reads
    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}

    async def probe(self) -> bool:
        """``GET /health`` for a server out of rotation; back in on a 200."""
        try:
            response = await self.http.get(f"{self.url}/health", timeout=self.probe_timeout)
        except httpx.HTTPError as exc:
            self.reached(False)
            self.leave_rotation(f"/health: {type(exc).__name__}")
            return False
        self.reached(True)
        if response.status_code != 200:
            self.leave_rotation(f"/health answered {response.status_code}")
            return False
        self.rejoin()
        return await self.read_stats()

    async def read_stats(self) -> bool:
        """``/v1/stats`` now: its queue for routing and for finding forgotten jobs. A
        failure takes the server out of rotation."""
        started = time.monotonic()
        try:
            response = await self.http.get(
                f"{self.url}/v1/stats", headers=self.headers, timeout=self.probe_timeout
            )
        except httpx.HTTPError as exc:
            self.reached(False)
            self.leave_rotation(f"/v1/stats: {type(exc).__name__}")
            return False
        self.reached(True)
        stats = _stats_from(json_or_none(response), started)
        if response.status_code != 200 or stats is None:
            self.leave_rotation(f"/v1/stats answered {response.status_code}")
            return False
        self.stats, self.sent_since = stats, 0
        return True

    def stats_stale(self, now: float) -> bool:
        return self.stats is None or now - self.stats.read_at >= STATS_FRESH * self.time_scale

    # ------------------------------------------------------------ our jobs there
    def sent(self, task_id: str) -> None:
        self.in_flight[task_id] = time.monotonic()
        self.sent_since += 1
        self.rejoin()

    def settle_round(self, asked: dict[str, bool], started: float) -> None:
        """After a poll round that asked about ``asked`` (task id → still unfinished): our
        jobs in flight are the unfinished ones and those sent too recently to be asked."""
        recent = started - RECENT_SEND * self.time_scale
        kept = {
            task_id: sent
            for task_id, sent in self.in_flight.items()
            if asked.get(task_id, sent >= recent)
        }
        for task_id, unfinished in asked.items():
            if unfinished and task_id not in kept:
                kept[task_id] = -math.inf  # adopted after a restart: sent before all we know
        self.in_flight = kept
        self.strikes = {t: n for t, n in self.strikes.items() if t in kept}

    def finished(self, task_id: str) -> None:
        self.in_flight.pop(task_id, None)
        self.strikes.pop(task_id, None)

    def load(self, request: GenerationRequest, now: float) -> ServerLoad:
        stats = self.stats
        return ServerLoad(
            key=self.key,
            usable=self.in_rotation,
            capable=self.can_make(request),
            in_flight=len(self.in_flight) + self.placing,
            capacity=self.capacity,
            ahead=stats.ahead if stats is not None else None,
            sent_since=self.sent_since + self.placing,
            avg_seconds=stats.avg_seconds if stats is not None else None,
        )

    def can_make(self, request: GenerationRequest) -> bool:
        """Has this server what the request needs: an edit's task, a language model."""
        offered = self.engine.capabilities
        if request.edit is not None:
            return request.edit.task in offered.edits
        return offered.describes or not request.describe


def _stats_from(payload: object, read_at: float) -> Stats | None:
    """``queue_size`` (+ ``jobs.running``; one if the server does not say: it runs one job
    at a time) and ``avg_job_seconds``; None when unreadable."""
    data = payload.get("data", payload) if isinstance(payload, dict) else None
    if not isinstance(data, dict):
        return None
    queued = data.get("queue_size")
    if not isinstance(queued, int) or isinstance(queued, bool) or queued < 0:
        return None
    jobs = data.get("jobs")
    running = jobs.get("running") if isinstance(jobs, dict) else None
    if not isinstance(running, int) or isinstance(running, bool) or running < 0:
        running = 1
    avg = data.get("avg_job_seconds")
    seconds = float(avg) if isinstance(avg, int | float) and not isinstance(avg, bool) else None
    if seconds is not None and not (math.isfinite(seconds) and seconds > 0):
        seconds = None
    return Stats(ahead=queued + running, avg_seconds=seconds, read_at=read_at)
