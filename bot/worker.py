"""The job loop: claim → submit → poll → download → deliver, under leases.

One `Worker` per process and backend. Everything it knows is in the database; the
in-memory table of owned jobs is only a schedule, rebuilt from the database on start
(`_adopt`) and whenever another process's lease runs out. See docs/jobs.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import os
import secrets
import socket
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_delay, wait_exponential

from bot import audio, estimates, messages
from bot.clock import utcnow
from bot.domain import LOCAL_PLATFORM, SEED_MAX, Job, JobState
from bot.errors import (
    AudioError,
    BackendError,
    DeliveryRefused,
    DeliveryUnavailable,
    StoreUnavailable,
    SubmitUncertain,
    TransientBackendError,
)
from bot.logs import job_context
from bot.notify import Notifier
from bot.polling import PollPlanner, catch_up
from bot.ports import Backend, EventKind, JobEvent, RemoteState, RemoteStatus
from bot.retry import backoff
from bot.settlement import refunds_quota
from bot.stores import RulesStore, WorkerStore

logger = logging.getLogger(__name__)

# Each step has its own budget (a failed poll never spends a download's tries). Polls, and
# transfers that break off or time out, are retried until the job's deadline.
MAX_SUBMIT_ATTEMPTS = 5
MAX_DELIVERY_ATTEMPTS = 5
MAX_DEAD_LINKS = 4  # output links found expired (401/403/404/410), each after a fresh poll
MAX_POLL_BACKOFF = 30.0
# Once the upstream answers again after an outage, the jobs that backed off are polled
# again within this many seconds (spread over it, each at most every min_poll_interval).
CATCH_UP_SECONDS = 2.0
SHUTDOWN_GRACE_SECONDS = 10.0
ANNOUNCE_INTERVAL_SECONDS = 1.0
CLAIM_COALESCE_SECONDS = 0.05  # real time: a claim's cost doesn't shrink with the time scale
POSITIONS_ANNOUNCED = 10  # queued songs told when the line moves
# A transfer that broke off or ran past DOWNLOAD_TIMEOUT_SECONDS: the file is fine upstream.
TRANSFER_ERRORS = frozenset({"download_truncated", "download_timeout"})
# Connection lost, server restarting, "database is locked" (the stores raise these as
# StoreUnavailable), or the disk: worth waiting out.
DB_ERRORS: tuple[type[Exception], ...] = (StoreUnavailable, OSError)
T = TypeVar("T")


def outage(exc: Exception) -> str:
    """What went away, for the log: the driver's error behind a StoreUnavailable."""
    return exc.kind if isinstance(exc, StoreUnavailable) else type(exc).__name__


def new_owner_id() -> str:
    """``host:pid:nonce`` — lets a restart on the same host see that the owner is dead."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"


def owner_is_dead_here(owner: str) -> bool:
    host, _, rest = owner.partition(":")
    pid_text = rest.partition(":")[0]
    if host != socket.gethostname() or not pid_text.isdigit():
        return False
    pid = int(pid_text)
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


@dataclass(frozen=True)
class WorkerConfig:
    audio_dir: Path
    lease_seconds: float = 30.0
    job_timeout_seconds: float = 1800.0
    max_download_bytes: int = 200 * 1024 * 1024
    # Multiplies every poll interval and back-off: 1 in production, small in tests.
    time_scale: float = 1.0
    # Delivered audio older than this is deleted; undelivered audio never is.
    audio_retention: timedelta = timedelta(days=30)
    # Job events (the audit trail and the relay's feed) older than this are deleted with the
    # same sweep; jobs and the ledger, the accounting, are kept.
    event_retention: timedelta = timedelta(days=30)
    retention_sweep_seconds: float = 3600.0
    # False in a chat-only process (`acejam run --role adapters`): deliver finished jobs,
    # never claim or poll.
    generates: bool = True
    # Configured keys and tokens: scrubbed from any upstream text we store.
    secrets: tuple[str, ...] = ()
    owner: str = field(default_factory=new_owner_id)


@dataclass
class _Owned:
    """A job this process holds a lease on, and what to do with it next."""

    job: Job
    phase: str  # "submitting" | "polling" | "finishing" | "delivering"
    due: float = 0.0  # monotonic time of the next poll
    last_poll: float = -math.inf  # monotonic time of the last poll
    # Failures in a row, one count per step.
    poll_failures: int = 0
    transfer_failures: int = 0
    dead_links: int = 0
    delivery_failures: int = 0
    # Seconds after submit of the last poll that saw the job unfinished: it completed
    # between then and the poll that saw it done.
    seen_unfinished: float | None = None
    # Set while a step runs for the job (a poll and the handling of its answer included).
    busy: bool = False
    # The ready time last shown to the chat: once it lapses, the next poll shows a new one.
    eta_shown: datetime | None = None
    # A webhook's news that came while a poll's answer was being handled: whoever holds
    # the job takes it up next, so one notice at a time moves the job on.
    pushed: RemoteStatus | None = None


class Worker:
    def __init__(
        self,
        *,
        store: WorkerStore,
        rules: RulesStore,
        backend: Backend,
        notifier: Notifier,
        config: WorkerConfig,
        planner: PollPlanner | None = None,
    ) -> None:
        self._store = store
        self._rules = rules
        self._backend = backend
        self._notifier = notifier
        self._config = config
        self._min_interval = backend.min_poll_interval * config.time_scale
        self._max_backoff = MAX_POLL_BACKOFF * config.time_scale
        self._planner = planner or PollPlanner(
            min_interval=self._min_interval,
            max_backoff=self._max_backoff,
            safety_net=lambda: backend.uses_webhook,  # changes at run time
        )
        # The last poll round got no answer at all: the next one that does ends an outage.
        self._upstream_down = False
        self._owned: dict[int, _Owned] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._wake = asyncio.Event()
        self._submit_paused_until = 0.0
        # Claiming reads the queue under the write lock: only when a slot may be free and
        # something may be waiting (a nudge, a job leaving, or a lease round for other
        # processes' changes).
        self._claim_due = True
        self._next_lease_round = 0.0
        self._next_sweep = 0.0
        # Queue positions are told at most once per interval: a chat can't show more, and a
        # busy line would otherwise cost a read of the queue per claim.
        self._positions_moved = False
        self._next_announcement = 0.0
        self._announced: dict[int, int] = {}  # job id -> queue position last shown
        self._hint: float | None = None
        self.finished = asyncio.Condition()  # notified whenever a job leaves this worker

    @property
    def owner(self) -> str:
        return self._config.owner

    def nudge(self) -> None:
        """Something changed (a job was queued or cancelled): look again now."""
        self._claim_due = True
        self._positions_moved = True  # a new song's expected wait is worth telling
        self._wake.set()

    # ------------------------------------------------------------ main loop
    async def run(self, stop: asyncio.Event) -> None:
        self._config.audio_dir.mkdir(parents=True, exist_ok=True)
        for duration, runtime in await self._store.recent_runtimes(self._backend.name):
            self._planner.observe(duration, runtime)
        logger.info("worker %s started for backend %s", self.owner, self._backend.name)
        failures = 0
        try:
            while not stop.is_set():
                try:
                    await self._step()
                    failures = 0
                except DB_ERRORS as exc:
                    # The database is locked or away for a moment: keep our state, retry.
                    failures += 1
                    self._claim_due = True
                    logger.warning("database unavailable (%s); retrying", outage(exc))
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(stop.wait(), backoff(failures, base=1.0, cap=30.0))
                    continue
                await self._sleep_until_due(stop)
        finally:
            await self._shutdown()

    async def _step(self) -> None:
        now = time.monotonic()
        if now >= self._next_lease_round:
            self._next_lease_round = now + self._config.lease_seconds / 3
            self._claim_due = True
            await self._renew()
            await self._adopt()
        if self._config.generates and self._claim_due and now >= self._submit_paused_until:
            self._claim_due = False
            # Jobs ending or arriving within a few milliseconds share one claim.
            self._submit_paused_until = now + CLAIM_COALESCE_SECONDS
            await self._claim()
        if self._positions_moved and now >= self._next_announcement:
            self._next_announcement = now + ANNOUNCE_INTERVAL_SECONDS * self._config.time_scale
            await self._announce_positions()
            self._positions_moved = False
        await self._poll_due()
        if now >= self._next_sweep:
            self._next_sweep = now + self._config.retention_sweep_seconds
            await self._sweep_old_audio()

    async def _sleep_until_due(self, stop: asyncio.Event) -> None:
        now = time.monotonic()
        wake_at = self._next_lease_round
        for owned in self._owned.values():
            if owned.phase == "polling" and not owned.busy:
                wake_at = min(wake_at, owned.due)
        if self._positions_moved:
            wake_at = min(wake_at, self._next_announcement)
        if self._claim_due and self._config.generates:
            wake_at = min(wake_at, max(now, self._submit_paused_until))
        timeout = max(0.0, wake_at - now)
        self._wake.clear()
        waiters = [asyncio.ensure_future(self._wake.wait()), asyncio.ensure_future(stop.wait())]
        try:
            await asyncio.wait(waiters, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in waiters:
                waiter.cancel()

    async def _shutdown(self) -> None:
        """Stop claiming, let running steps end briefly, then hand our leases back."""
        if self._tasks:
            # As long as the adapters wait for uploads in flight (TelegramDelivery.close), so an
            # upload Telegram already took is recorded rather than posted again after restart.
            _, pending = await asyncio.wait(self._tasks, timeout=SHUTDOWN_GRACE_SECONDS)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        await self._store.release(self.owner, list(self._owned))
        logger.info("worker %s stopped; released %d job(s)", self.owner, len(self._owned))
        self._owned.clear()

    def _spawn(self, coro: object, owned: _Owned) -> None:
        owned.busy = True

        async def _run() -> None:
            with job_context(owned.job.id):
                try:
                    await coro  # type: ignore[misc]
                except Exception:
                    # Hand the job back: whichever worker adopts it next (maybe this one)
                    # re-drives it from what the database says.
                    logger.exception("job %s: unexpected error in %s", owned.job.id, owned.phase)
                    self._owned.pop(owned.job.id, None)
                    with contextlib.suppress(*DB_ERRORS):
                        await self._store.release(self.owner, [owned.job.id])
                finally:
                    owned.busy = False
                    self._wake.set()

        task = asyncio.create_task(_run())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _drop(self, job_id: int) -> None:
        self._owned.pop(job_id, None)
        self._claim_due = True  # a slot may be free
        async with self.finished:
            self.finished.notify_all()

    async def _sweep_old_audio(self) -> None:
        keep = {Path(p) for p in await self._store.kept_audio()}
        removed = await asyncio.to_thread(
            audio.remove_expired_audio,
            self._config.audio_dir,
            older_than=self._config.audio_retention,
            keep=keep,
        )
        if removed:
            logger.info("removed %d audio file(s) past retention", len(removed))
        pruned = await self._store.prune_events(before=utcnow() - self._config.event_retention)
        if pruned:
            logger.info("removed %d job event(s) past retention", pruned)

    async def _durably(
        self, operation: Callable[..., Awaitable[T]], *args: Any, **kwargs: Any
    ) -> T:
        """Record something that already happened outside (a submit, a post): retry
        through a database hiccup rather than forget it, for up to a lease."""
        async for attempt in AsyncRetrying(
            retry=retry_if_exception_type(DB_ERRORS),
            wait=wait_exponential(multiplier=0.2, max=5),
            stop=stop_after_delay(self._config.lease_seconds),
            reraise=True,
        ):
            with attempt:
                return await operation(*args, **kwargs)
        raise AssertionError("unreachable")  # AsyncRetrying either returns or raises

    # ------------------------------------------------------------ leases
    def _lease_until(self) -> datetime:
        return utcnow() + timedelta(seconds=self._config.lease_seconds)

    async def _renew(self) -> None:
        held = await self._store.renew_leases(self.owner, list(self._owned), self._lease_until())
        for job_id in list(self._owned):
            if job_id not in held:  # finished, cancelled, or taken over
                await self._drop(job_id)

    async def _adopt(self) -> None:
        now = utcnow()
        dead = {o for o in await self._store.live_owners(now) if owner_is_dead_here(o)}
        adopted = await self._store.adopt(
            owner=self.owner,
            now=now,
            lease_until=self._lease_until(),
            backend=self._backend.name if self._config.generates else None,
            deliver_platforms=self._notifier.platforms - {LOCAL_PLATFORM},
            dead_owners=dead,
        )
        for job in adopted:
            if job.id in self._owned:
                continue
            logger.info("job %s: taken up in state %s", job.id, job.state)
            await self._resume(job)

    async def _resume(self, job: Job) -> None:
        if job.state == JobState.SUBMITTING:
            # We can't know whether the submit reached upstream.
            if self._backend.resubmit_safe:
                await self._store.transition(
                    job.id,
                    {JobState.SUBMITTING},
                    JobState.QUEUED,
                    now=utcnow(),
                    detail="requeued after a crash during submit",
                    lease_owner=None,
                    lease_expires_at=None,
                )
                self.nudge()
            else:
                await self._fail(job, "submit_uncertain", "crashed while submitting")
            return
        if job.state in (JobState.SUBMITTED, JobState.RUNNING):
            self._owned[job.id] = _Owned(job, "polling", due=time.monotonic())
        elif job.state == JobState.SUCCEEDED:
            owned = _Owned(job, "delivering")
            self._owned[job.id] = owned
            self._spawn(self._deliver(owned), owned)

    # ------------------------------------------------------------ submit
    async def _claim(self) -> None:
        claimed = await self._store.claim_for_submit(
            self._backend.name,
            owner=self.owner,
            max_in_flight=self._backend.max_concurrency,
            lease_until=self._lease_until(),
            now=utcnow(),
        )
        for job in claimed:
            owned = _Owned(job, "submitting")
            self._owned[job.id] = owned
            self._spawn(self._submit(owned), owned)
        if claimed:
            self._positions_moved = True

    async def _announce_positions(self) -> None:
        """The line moved: tell the first few waiting songs their new place."""
        if not self._notifier.platforms - {LOCAL_PLATFORM}:
            return
        order = await self._store.queue_order(self._backend.name, first=POSITIONS_ANNOUNCED)
        now = utcnow()
        for job in await self._store.get_many(order):
            position = order.index(job.id) + 1
            eta = estimates.queued_ready_at(
                now=now,
                position=position,
                concurrency=self._backend.max_concurrency,
                typical=estimates.typical_runtime(self._planner.samples, self._hint),
                own=estimates.expected_runtime(
                    self._planner.samples, job.request.duration, self._hint
                ),
            )
            if self._announced.get(job.id) != position:
                self._announced[job.id] = position
                await self._notifier.emit(
                    JobEvent(EventKind.QUEUED, job, position=position, eta=eta)
                )
        for job_id in set(self._announced) - set(order):
            del self._announced[job_id]

    async def _submit(self, owned: _Owned) -> None:
        job = owned.job
        seed = job.request.seed if job.request.seed >= 0 else secrets.randbelow(SEED_MAX + 1)
        request = replace(job.request, seed=seed)
        try:
            task = await self._backend.submit(request)
        except TransientBackendError as exc:
            # Refused before it was accepted: safe to queue again, after a pause.
            logger.warning("job %s: submit refused (%s); will retry", job.id, exc.code)
            pause = exc.retry_after or backoff(
                job.attempts, base=self._min_interval, cap=self._max_backoff
            )
            self._submit_paused_until = time.monotonic() + pause
            await self._drop(job.id)
            if job.attempts >= MAX_SUBMIT_ATTEMPTS:
                await self._fail(job, exc.code, exc.detail)
                return
            await self._store.transition(
                job.id,
                {JobState.SUBMITTING},
                JobState.QUEUED,
                now=utcnow(),
                detail=f"submit refused: {exc.code}",
                lease_owner=None,
                lease_expires_at=None,
            )
            return
        except SubmitUncertain as exc:
            logger.error("job %s: submit outcome unknown (%s); not resending", job.id, exc.detail)
            await self._fail(job, exc.code, exc.detail)
            return
        except BackendError as exc:
            await self._fail(job, exc.code, exc.detail)
            return
        seed_used = task.seed_used if task.seed_used is not None else (seed if seed >= 0 else None)
        submitted = await self._durably(
            self._store.transition,
            job.id,
            {JobState.SUBMITTING},
            JobState.SUBMITTED,
            now=utcnow(),
            remote_id=task.remote_id,
            seed_used=seed_used,
            submitted_at=utcnow(),
            detail=f"remote={task.remote_id}",
        )
        if submitted is None:  # cancelled meanwhile; the upstream task just runs out
            await self._drop(job.id)
            return
        logger.info("job %s submitted remote=%s", job.id, task.remote_id)
        # The backend's own estimate (ACE-Step's average job time) seeds the poll plan
        # until this process has history of its own.
        self._hint = await self._backend.expected_seconds(request)
        owned.job = submitted
        owned.phase = "polling"
        owned.due = time.monotonic() + self._poll_delay(submitted)
        owned.eta_shown = self._eta(submitted)
        await self._notifier.emit(JobEvent(EventKind.STARTED, submitted, eta=owned.eta_shown))

    # ------------------------------------------------------------ polling
    def _elapsed(self, job: Job) -> float:
        if job.submitted_at is None:
            return 0.0
        return max(0.0, (utcnow() - job.submitted_at).total_seconds())

    def _poll_delay(self, job: Job) -> float:
        return self._planner.next_delay(job.request.duration, self._elapsed(job), self._hint)

    def _eta(self, job: Job, progress: float | None = None) -> datetime | None:
        if job.submitted_at is None:
            return None
        samples, duration = self._planner.samples, job.request.duration
        return estimates.ready_at(
            submitted_at=job.submitted_at,
            now=utcnow(),
            expected=estimates.expected_runtime(samples, duration, self._hint),
            slow=estimates.slow_runtime(samples, duration),
            progress=progress,
        )

    async def _poll_due(self) -> None:
        now = time.monotonic()
        polling = [
            o
            for o in self._owned.values()
            if o.phase == "polling" and not o.busy and o.job.remote_id
        ]
        due = [o for o in polling if o.due <= now]
        if not due:
            return
        if self._backend.polls_in_batches:
            # One call covers every job (ACE-Step's /query_result): ask about all of them.
            due = polling
        # Busy until each answer is handled, so a webhook about one of them meanwhile is
        # queued for it (``pushed``) instead of finishing the job a second time.
        for owned in due:
            owned.busy = True
            owned.last_poll = now
        try:
            problem = "no answer about it"
            try:
                statuses = await self._backend.poll(
                    [o.job.remote_id for o in due if o.job.remote_id]
                )
            except BackendError as exc:
                logger.warning("poll failed for %d job(s): %s", len(due), exc.code)
                statuses, problem = {}, exc.code
            if statuses and self._upstream_down:
                self._catch_up({o.job.id for o in due})
            self._upstream_down = not statuses
            for owned in due:
                status = statuses.get(owned.job.remote_id or "")
                with job_context(owned.job.id):
                    await self._take_notice(owned, status, pushed=False, problem=problem)
        finally:
            for owned in due:
                if owned.phase == "polling":  # else a finishing task holds it now
                    owned.busy = False

    def _catch_up(self, polled: set[int]) -> None:
        """The upstream answers again after an outage: bring forward the polls of the jobs
        that backed off meanwhile (one may have finished long ago)."""
        waiting = sorted(
            (
                o
                for o in self._owned.values()
                if o.phase == "polling"
                and o.poll_failures
                and not o.busy
                and o.job.id not in polled
            ),
            key=lambda o: o.last_poll,
        )
        times = catch_up(
            [(o.due, o.last_poll) for o in waiting],
            time.monotonic(),
            min_interval=self._min_interval,
            window=CATCH_UP_SECONDS * self._config.time_scale,
        )
        for owned, due in zip(waiting, times, strict=True):
            owned.due = due
        if waiting:
            logger.info("upstream answers again; polling %d waiting job(s) soon", len(waiting))

    async def on_remote_status(self, remote_id: str, status: RemoteStatus) -> None:
        """A status pushed by the backend (webhook): act now as if a poll had seen it.

        Only this process's jobs; another worker's job is picked up by its own polls. A job
        already being finished ignores it (webhooks may repeat)."""
        owned = next((o for o in self._owned.values() if o.job.remote_id == remote_id), None)
        if owned is None or owned.phase != "polling":
            return
        if owned.busy:  # a poll's answer is being handled: it takes this up when done
            owned.pushed = status
            return
        owned.busy = True
        try:
            with job_context(owned.job.id):
                await self._take_notice(owned, status, pushed=True)
        finally:
            if owned.phase == "polling":
                owned.busy = False
            self._wake.set()

    async def _take_notice(
        self, owned: _Owned, status: RemoteStatus | None, *, pushed: bool, problem: str = ""
    ) -> None:
        """Act on one notice (a poll's answer, None if the poll failed with ``problem``, or a
        webhook's), then on any webhook that came meanwhile. The caller holds the job busy."""
        await self._handle_status(owned, status, pushed=pushed, problem=problem)
        while owned.pushed is not None:
            status, owned.pushed = owned.pushed, None
            if owned.phase != "polling" or self._owned.get(owned.job.id) is not owned:
                return  # being finished already, or gone: the news changes nothing
            await self._handle_status(owned, status, pushed=True)

    async def _handle_status(
        self, owned: _Owned, status: RemoteStatus | None, *, pushed: bool, problem: str = ""
    ) -> None:
        job = owned.job
        if status is None:
            owned.poll_failures += 1
            if self._elapsed(job) > self._config.job_timeout_seconds:
                await self._fail(job, "poll_failed", f"polls failed until the deadline: {problem}")
                return
            owned.due = time.monotonic() + backoff(
                owned.poll_failures, base=self._min_interval, cap=self._max_backoff
            )
            return
        owned.poll_failures = 0
        if status.state in (RemoteState.PENDING, RemoteState.RUNNING):
            owned.seen_unfinished = self._elapsed(job)
            if self._elapsed(job) > self._config.job_timeout_seconds:
                await self._fail(job, "timeout", "upstream task never finished")
                return
            await self._note_progress(owned, status)
            owned.due = time.monotonic() + self._poll_delay(owned.job)
            return
        if status.state == RemoteState.FAILED:
            moderated = status.error_code in self._backend.moderation_error_codes
            code = "moderation" if moderated else "upstream_failed"
            await self._fail(job, code, status.error_message or "upstream reported failure")
            return
        # Succeeded upstream: remember how long it took, then fetch the audio.
        runtime = self._runtime(owned, pushed)
        self._planner.observe(job.request.duration, runtime)
        owned.phase = "finishing"
        self._spawn(self._finish(owned, status, runtime), owned)

    def _runtime(self, owned: _Owned, pushed: bool) -> float:
        """Best guess of when the job completed upstream, in seconds after submit. A poll
        only bounds it: the middle of the interval keeps the estimate from creeping later
        by the lag of every notice (the first poll would then only ever move later)."""
        noticed = self._elapsed(owned.job)
        if pushed:
            return noticed
        before = owned.seen_unfinished
        if before is None:  # done at the first look: it finished some time before
            before = max(0.0, noticed - self._min_interval)
        return (before + noticed) / 2

    async def _note_progress(self, owned: _Owned, status: RemoteStatus) -> None:
        job = owned.job
        started = job.state == JobState.SUBMITTED and status.state == RemoteState.RUNNING
        changed = status.progress != job.progress or status.stage != job.progress_text
        if not started and not changed:
            if owned.eta_shown is not None and owned.eta_shown <= utcnow():
                # The estimate shown ran out while the song still cooks: say a new one.
                await self._emit_progress(owned, status.progress)
            return
        fields: dict[str, Any] = {"progress": status.progress, "progress_text": status.stage}
        if started:
            updated = await self._store.transition(
                job.id, {JobState.SUBMITTED}, JobState.RUNNING, now=utcnow(), **fields
            )
        else:
            updated = await self._store.update_fields(
                job.id, {JobState.SUBMITTED, JobState.RUNNING}, now=utcnow(), **fields
            )
        if updated is None:  # cancelled or taken over meanwhile
            await self._drop(job.id)
            return
        owned.job = updated
        await self._emit_progress(owned, status.progress)

    async def _emit_progress(self, owned: _Owned, progress: float | None) -> None:
        eta = self._eta(owned.job, progress)
        # None after an estimate lapsed: the chat says "any moment now" and is not told again.
        owned.eta_shown = eta
        event = JobEvent(EventKind.PROGRESS, owned.job, progress=progress, eta=eta)
        await self._notifier.emit(event)

    # ------------------------------------------------------------ finishing
    async def _finish(self, owned: _Owned, status: RemoteStatus, runtime: float) -> None:
        job = owned.job
        assert status.output_url is not None
        target = self._config.audio_dir / f"job-{job.id}"
        try:
            downloaded = await self._backend.download(
                status.output_url, target, max_bytes=self._config.max_download_bytes
            )
            info = await asyncio.to_thread(audio.probe, downloaded.path)
        except BackendError as exc:
            await self._download_failed(owned, exc)
            return
        final_path = downloaded.path.with_suffix(f".{downloaded.format}")
        downloaded.path.replace(final_path)
        completes_here = job.destination.platform == LOCAL_PLATFORM
        succeeded = await self._store.transition(
            job.id,
            {JobState.SUBMITTED, JobState.RUNNING},
            JobState.SUCCEEDED,
            now=utcnow(),
            ledger="commit" if completes_here else None,
            audio_path=str(final_path),
            audio_format=downloaded.format,
            audio_duration=info.duration,
            nsfw=status.nsfw,
            seed_used=status.seed_used if status.seed_used is not None else job.seed_used,
            finished_at=utcnow(),
            remote_seconds=runtime,
            progress=1.0,
            gpu_seconds=self._elapsed(job) if self._backend.accounts_gpu_seconds else None,
            **({"lease_owner": None, "lease_expires_at": None} if completes_here else {}),
        )
        if succeeded is None:
            await self._drop(job.id)
            return
        logger.info("job %s succeeded (%.1f s of %s)", job.id, info.duration, downloaded.format)
        owned.job = succeeded
        await self._notifier.emit(JobEvent(EventKind.SUCCEEDED, succeeded))
        if completes_here or self._notifier.delivery_for(job.destination.platform) is None:
            if not completes_here:  # let a process that can deliver take it
                await self._store.release(self.owner, [job.id])
            await self._drop(job.id)
            return
        owned.phase = "delivering"
        await self._deliver(owned)

    async def _download_failed(self, owned: _Owned, exc: BackendError) -> None:
        """The upstream made (and billed) the song but fetching it failed. A transfer that
        broke off, timed out or found the host unavailable is tried again until the job's
        deadline; a dead link a few times; anything else is final. Each retry polls first,
        which also brings a fresh output URL."""
        job = owned.job
        if isinstance(exc, TransientBackendError) or exc.code in TRANSFER_ERRORS:
            owned.transfer_failures += 1
            delay = backoff(owned.transfer_failures, base=self._min_interval, cap=self._max_backoff)
            if self._elapsed(job) + delay > self._config.job_timeout_seconds:
                await self._fail(job, exc.code, exc.detail, billed=True)
                return
        elif isinstance(exc, AudioError) and exc.code == "download_expired":
            owned.dead_links += 1
            if owned.dead_links >= MAX_DEAD_LINKS:
                await self._fail(job, exc.code, exc.detail, billed=True)
                return
            delay = backoff(owned.dead_links, base=self._min_interval, cap=self._max_backoff)
        else:
            await self._fail(job, exc.code, exc.detail, billed=True)
            return
        logger.warning("job %s: download failed (%s); polling again to retry", job.id, exc.code)
        owned.phase = "polling"
        owned.due = time.monotonic() + delay

    async def _deliver(self, owned: _Owned) -> None:
        job = owned.job
        delivery = self._notifier.delivery_for(job.destination.platform)
        # Whatever happens from here, the upstream made the song and billed it.
        if job.nsfw and not await self._nsfw_allowed(job):
            await self._fail(
                job, "nsfw", "flagged by the backend; chat does not allow it", billed=True
            )
            return
        if delivery is None or job.audio_path is None or not Path(job.audio_path).exists():
            if delivery is not None:
                await self._fail(job, "lost", "audio file missing at delivery", billed=True)
            else:
                await self._drop(job.id)
            return
        while True:
            try:
                receipt = await delivery.deliver(job, Path(job.audio_path))
                break
            except DeliveryUnavailable:
                # The adapter is stopping or offline: leave the job for the next start
                # (or another process) without spending an attempt.
                await self._store.release(self.owner, [job.id])
                await self._drop(job.id)
                return
            except DeliveryRefused as exc:  # blocked or gone for good: retrying won't help
                await self._fail(job, exc.code, exc.detail, billed=True)
                return
            except AudioError as exc:  # the track can't be made to fit: retrying won't help
                await self._fail(job, exc.code, exc.detail, billed=True)
                return
            except Exception as exc:
                owned.delivery_failures += 1
                logger.warning(
                    "job %s: delivery attempt %d failed: %s",
                    job.id,
                    owned.delivery_failures,
                    exc,
                )
                if owned.delivery_failures >= MAX_DELIVERY_ATTEMPTS:
                    await self._fail(job, "delivery_failed", type(exc).__name__, billed=True)
                    return
                await asyncio.sleep(
                    backoff(owned.delivery_failures, base=self._min_interval, cap=self._max_backoff)
                )
        delivered = await self._durably(
            self._store.transition,
            job.id,
            {JobState.SUCCEEDED},
            JobState.DELIVERED,
            now=utcnow(),
            ledger="commit",
            delivered_message_id=receipt.message_id,
            delivered_at=utcnow(),
        )
        logger.info("job %s delivered message=%s", job.id, receipt.message_id)
        if delivered is None:
            logger.warning("job %s: was no longer awaiting delivery", job.id)
        await self._drop(job.id)

    async def _nsfw_allowed(self, job: Job) -> bool:
        """A flagged track goes only where the chat allows it (an NSFW Discord channel,
        which the adapter records in the job's context, or a chat setting)."""
        if job.destination.context.get("nsfw_channel"):
            return True
        rules = await self._rules.chat_rules(job.destination.platform, job.destination.scope)
        return rules is not None and rules.allow_nsfw

    # ------------------------------------------------------------ failure
    async def _fail(self, job: Job, code: str, detail: str, *, billed: bool = False) -> None:
        """End a job that won't be delivered. ``billed``: the upstream finished the song,
        so its cost stays recorded (bot/settlement.py says who bears it)."""
        for secret in self._config.secrets:  # upstream error texts may echo a key
            detail = detail.replace(secret, "***")
        refund = refunds_quota(code)
        failed = await self._store.transition(
            job.id,
            {
                JobState.QUEUED,
                JobState.SUBMITTING,
                JobState.SUBMITTED,
                JobState.RUNNING,
                JobState.SUCCEEDED,
            },
            JobState.FAILED,
            now=utcnow(),
            ledger="refund" if refund else "commit",
            error_code=code,
            error_message=detail[:500],
            finished_at=utcnow(),
            detail=code,
            # Nothing to pay for a song the upstream never made, unless the backend bills those.
            **({} if billed or self._backend.bills_failed_jobs else {"cost_usd": 0.0}),
        )
        await self._drop(job.id)
        if failed is None:
            return
        logger.warning(
            "job %s failed: %s (%s); %s, quota %s",
            job.id,
            code,
            detail[:200],
            f"billed ${failed.cost_usd:.4f}" if billed and failed.cost_usd else "not billed",
            "refunded" if refund else "charged",
        )
        await self._notifier.emit(
            JobEvent(EventKind.FAILED, failed, message=messages.failure_message(code))
        )
