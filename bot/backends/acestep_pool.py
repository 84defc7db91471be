"""A pool of self-hosted ACE-Step servers behind the one :class:`bot.ports.Backend` the core
sees (``ACESTEP_API_URL`` naming several, comma-separated; docs/operations.md, "A pool of
ACE-Step servers").

- **Submit**: the job goes to the server that will finish it soonest and can make it
  (:func:`bot.backends.acestep_routing.choose`); a server that refuses it (429, 5xx, no
  connection, a key it does not take) leaves the rotation and the next best is tried at once.
  Nothing is billed on our own engines, so a submit whose fate is unclear on one server is
  simply made on another; the first, should it ever finish, is never asked about again.
- **Remote ids** name their server (``<key>:<task id>``, :mod:`bot.backends.acestep_routing`).
- **Poll**: one ``/query_result`` per server per round for all its jobs (and its
  ``/v1/stats`` beside it). A server that fails answers nothing about its jobs (the worker
  backs off on those alone).
- **Failover**: a job whose server gave no answer at all for ``ACESTEP_FAILOVER_SECONDS``, or
  that its server has forgotten (a restart: :func:`~bot.backends.acestep_routing.forgotten`,
  in :data:`~bot.backends.acestep_members.STRIKES` rounds in a row), answers
  :attr:`RemoteState.LOST`; the worker then submits it again (``resubmit_safe``), here to
  another server, and the user waits for one track as before.
- **Capabilities** are the union of the servers'; a job needing one (a language model for a
  description, an edit's task type) goes only to a server that has it.
- **Concurrency**: the sum of the servers' in rotation (or due a probe), so the worker claims
  no more than the pool can place.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

import httpx

from bot.backends.acestep import (
    LYRICS_LIMIT,
    MAX_BATCH,
    NO_LM_MESSAGE,
    PROMPT_LIMIT,
    AceStepBackend,
)
from bot.backends.acestep_members import STRIKES, Member
from bot.backends.acestep_routing import choose, forgotten, pool_id, split_pool_id
from bot.backends.preparing import NothingToPrepare
from bot.domain import GenerationRequest
from bot.errors import (
    BackendError,
    PermanentBackendError,
    SubmitUncertain,
    TransientBackendError,
)
from bot.ports import Capabilities, DownloadedAudio, RemoteState, RemoteStatus, RemoteTask

logger = logging.getLogger(__name__)

# A refusal that is the job's own (the same on every server): never tried elsewhere.
JOB_REFUSALS = frozenset(
    {"invalid_request", "edit_unsupported", "no_language_model", "source_missing"}
)
NO_SERVER_RETRY = 1.0  # seconds before a job no server could take is tried again, at least


class AceStepPool(NothingToPrepare):
    name = "acestep"
    min_duration = AceStepBackend.min_duration
    max_duration = AceStepBackend.max_duration
    max_tags_chars = PROMPT_LIMIT - 1
    max_lyrics_chars = LYRICS_LIMIT - 1
    min_poll_interval = AceStepBackend.min_poll_interval
    resubmit_safe = True
    polls_in_batches = True
    bills_failed_jobs = False
    accounts_gpu_seconds = True
    moderation_error_codes: frozenset[str] = frozenset()
    uses_webhook = False

    def __init__(self, members: Sequence[Member], *, failover_seconds: float = 60.0) -> None:
        if not members:
            raise ValueError("a pool needs at least one server")
        self.members = list(members)
        self._keys = [member.key for member in self.members]
        self._failover = failover_seconds

    # ------------------------------------------------------------ what it offers
    @property
    def max_concurrency(self) -> int:
        now = time.monotonic()
        open_ = [m for m in self.members if m.in_rotation or m.probe_due(now)]
        return sum(m.capacity for m in open_) or min(m.capacity for m in self.members)

    @max_concurrency.setter
    def max_concurrency(self, value: int) -> None:  # the port's attribute; the pool's sum
        raise AttributeError("a pool's concurrency is its servers' (ACESTEP_MAX_CONCURRENCY)")

    @property
    def capabilities(self) -> Capabilities:
        offered = [member.engine.capabilities for member in self.members]
        return Capabilities(
            takes_per_task=MAX_BATCH,
            controls_as_parameters=True,
            describes=any(each.describes for each in offered),
            edits=frozenset().union(*(each.edits for each in offered)),
        )

    async def refresh_capabilities(self) -> Capabilities:
        await asyncio.gather(*(m.engine.refresh_capabilities() for m in self.members))
        return self.capabilities

    def member(self, key: str) -> Member:
        return self.members[self._keys.index(key)]

    # ------------------------------------------------------------ submit
    async def submit(self, request: GenerationRequest) -> RemoteTask:
        await self._look_around()
        capable = [m for m in self.members if m.can_make(request)]
        if not capable and request.describe:
            await self.refresh_capabilities()  # a model may have loaded since
            capable = [m for m in self.members if m.can_make(request)]
        if not capable:
            raise _none_capable(request)
        tried: set[str] = set()
        last: BackendError | None = None
        while True:
            now = time.monotonic()
            loads = [m.load(request, now) for m in capable if m.key not in tried]
            chosen = choose(loads)
            if chosen is None:
                raise last or self._all_busy(capable)
            member = self.member(chosen.key)
            tried.add(member.key)
            member.placing += 1
            try:
                task = await member.engine.submit(request)
            except (TransientBackendError, SubmitUncertain) as exc:
                member.reached(not exc.detail.startswith("could not reach"))
                member.leave_rotation(f"submit: {exc.code}")
                last = exc
                continue
            except PermanentBackendError as exc:
                if exc.code in JOB_REFUSALS:
                    raise
                member.leave_rotation(f"submit: {exc.code}")  # e.g. a key it does not take
                last = exc
                continue
            finally:
                member.placing -= 1
            member.reached(True)
            member.sent(task.remote_id)
            logger.info("acestep pool: sent to server %s remote=%s", member.key, task.remote_id)
            return RemoteTask(
                remote_id=pool_id(member.key, task.remote_id),
                seed_used=task.seed_used,
                queue_position=task.queue_position,
            )

    async def _look_around(self) -> None:
        """Before placing a job: probe the servers out of rotation whose time has come, and
        read the queues of the others where the last read is stale."""
        now = time.monotonic()
        reads = [
            m.probe() if m.probe_due(now) else m.read_stats()
            for m in self.members
            if m.probe_due(now) or (m.in_rotation and m.stats_stale(now))
        ]
        if reads:
            await asyncio.gather(*reads)

    def _all_busy(self, capable: Sequence[Member]) -> TransientBackendError:
        now = time.monotonic()
        waits = [m.out_until - now for m in capable if m.out_until is not None]
        wait = max(NO_SERVER_RETRY, min(waits)) if waits else NO_SERVER_RETRY
        return TransientBackendError(
            "no ACE-Step server of the pool can take a job now", retry_after=wait
        )

    # ------------------------------------------------------------ poll
    async def poll(self, remote_ids: Sequence[str]) -> Mapping[str, RemoteStatus]:
        by_server: dict[str, dict[str, str]] = {}  # key -> task id -> remote id
        statuses: dict[str, RemoteStatus] = {}
        for remote_id in dict.fromkeys(remote_ids):
            key, task_id = split_pool_id(remote_id, self._keys)
            if key is None:
                statuses[remote_id] = _lost("its server is no longer in ACESTEP_API_URL")
            else:
                by_server.setdefault(key, {})[task_id] = remote_id
        rounds = [self._poll_server(self.member(key), ids) for key, ids in by_server.items()]
        for answered in await asyncio.gather(*rounds):
            statuses.update(answered)
        return statuses

    async def _poll_server(
        self, member: Member, ids: Mapping[str, str]
    ) -> Mapping[str, RemoteStatus]:
        """One server's round: its stats, then one ``/query_result`` for all its jobs."""
        started = time.monotonic()
        read = await member.read_stats()
        dead = member.dead_for(time.monotonic())
        if dead >= self._failover:
            for task_id in ids:
                member.finished(task_id)
            why = f"server {member.key} unreachable for {dead:.0f} s"
            logger.warning("acestep pool: %s; its %d job(s) go elsewhere", why, len(ids))
            return {remote_id: _lost(why) for remote_id in ids.values()}
        if not read and member.unreachable_since is not None:
            return {}  # no answer at all: the worker backs off on these jobs
        try:
            answered = await member.engine.poll(list(ids))
        except BackendError as exc:
            # No new songs there until a probe finds it well (its jobs are asked again).
            logger.warning("acestep pool: poll of server %s failed: %s", member.key, exc.code)
            member.leave_rotation(f"/query_result: {exc.code}")
            return {}
        asked = {
            task_id: answered[task_id].state in (RemoteState.PENDING, RemoteState.RUNNING)
            for task_id in ids
            if task_id in answered
        }
        member.settle_round(asked, started)
        statuses = {ids[task_id]: status for task_id, status in answered.items() if task_id in ids}
        for remote_id in self._forgotten(member, answered, read):
            statuses[remote_id] = _lost(f"server {member.key} no longer knows it (restarted?)")
        return statuses

    def _forgotten(
        self, member: Member, answered: Mapping[str, RemoteStatus], read: bool
    ) -> list[str]:
        """The remote ids of jobs the server has forgotten for :data:`STRIKES` rounds."""
        if not read or member.stats is None:
            return []
        unfinished = {
            task_id: member.in_flight.get(task_id, 0.0)
            for task_id, status in answered.items()
            if status.state in (RemoteState.PENDING, RemoteState.RUNNING)
        }
        suspects = [
            task_id
            for task_id in forgotten(unfinished, member.stats.ahead, member.stats.read_at)
            if answered[task_id].state == RemoteState.PENDING
        ]
        member.strikes = {t: member.strikes.get(t, 0) + 1 for t in suspects}
        lost = [t for t, strikes in member.strikes.items() if strikes >= STRIKES]
        for task_id in lost:
            member.finished(task_id)
        if lost:
            logger.warning("acestep pool: server %s forgot %d job(s)", member.key, len(lost))
        return [pool_id(member.key, task_id) for task_id in lost]

    # ------------------------------------------------------------ download / estimate
    async def download(self, output_url: str, dest: Path, *, max_bytes: int) -> DownloadedAudio:
        """From the server that made it (its own download policy and key)."""
        try:
            origin = httpx.URL(output_url)
        except httpx.InvalidURL:
            origin = None
        member = next(
            (m for m in self.members if origin is not None and _same_origin(origin, m.url)),
            self.members[0],
        )
        return await member.engine.download(output_url, dest, max_bytes=max_bytes)

    async def expected_seconds(self, request: GenerationRequest) -> float | None:
        """The mean ``avg_job_seconds`` of the servers that said one."""
        known = [m.stats.avg_seconds for m in self.members if m.stats and m.stats.avg_seconds]
        return sum(known) / len(known) if known else None


def _lost(why: str) -> RemoteStatus:
    return RemoteStatus(RemoteState.LOST, error_code="lost", error_message=why)


def _none_capable(request: GenerationRequest) -> PermanentBackendError:
    if request.edit is not None:
        return PermanentBackendError(
            f"no ACE-Step server of the pool does {request.edit.task}", code="edit_unsupported"
        )
    return PermanentBackendError(NO_LM_MESSAGE, code="no_language_model")


def _same_origin(url: httpx.URL, base: str) -> bool:
    own = httpx.URL(base)
    return (url.scheme, url.host, url.port) == (own.scheme, own.host, own.port)
