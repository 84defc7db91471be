"""The job loop: claim → submit → poll → download → deliver, under leases.

One `Worker` per process and backend. Everything it knows is in the database; the
in-memory table of owned jobs is only a schedule, rebuilt from the database on start
(`_adopt`) and whenever another process's lease runs out. See docs/jobs.md.

The phases (submit.py, poll.py, finish.py, deliver.py) each do one step's work and return
how it ended (outcomes.py); `_settle` is the one place that moves a job on from there.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable
from dataclasses import replace
from datetime import datetime, timedelta
from typing import assert_never

from bot.clock import utcnow
from bot.domain import LOCAL_PLATFORM, Job, JobState, TakeState
from bot.logs import job_context
from bot.notify import Notifier
from bot.polling import PollPlanner
from bot.ports import Backend, EventKind, JobEvent, Nudge, Nudges, RemoteStatus
from bot.retry import DB_ERRORS, STORE_OUTAGE, outage
from bot.stores import RulesStore, WorkerStore
from bot.worker import retention
from bot.worker.config import WorkerConfig, owner_is_dead_here
from bot.worker.outcomes import (
    Deliver,
    Fail,
    Fetch,
    Leave,
    Outcome,
    PollLater,
    Refused,
    SubmitAgain,
    Submitted,
)
from bot.worker.owned import Owned, Phase, tell_handed_back
from bot.worker.phases import Phases
from bot.worker.takes import own_tasks, remote_ids, with_take

logger = logging.getLogger(__name__)

SHUTDOWN_GRACE_SECONDS = 10.0
ANNOUNCE_INTERVAL_SECONDS = 1.0
CLAIM_COALESCE_SECONDS = 0.05  # real time: a claim's cost doesn't shrink with the time scale
# Songs one claim takes at most. A worker that took every free slot at once left the other
# workers idle while its songs queued inside it (bench/multi_worker.py: two workers 1.0× one;
# with 16, 1.5×); 16 every 50 ms is still far more than one worker gets through.
CLAIM_BATCH = 16


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
        nudges: Nudges | None = None,
    ) -> None:
        self._store = store
        self._nudges = nudges
        self._backend = backend
        self._notifier = notifier
        self._config = config
        self._phases = phases = Phases.build(
            store=store,
            rules=rules,
            backend=backend,
            notifier=notifier,
            config=config,
            planner=planner,
        )
        self._forecast = phases.forecast
        self._owned: dict[int, Owned] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._wake = asyncio.Event()
        self._submit_paused_until = 0.0
        # Claiming reads the queue under the write lock: only when a slot may be free and
        # something may be waiting (a nudge, a job leaving, or a lease round for other
        # processes' changes).
        self._claim_due = True
        # Adopting, too, between lease rounds only when another process says a job was
        # handed back (bot.ports.Nudge): a released lease, a song ready to deliver.
        self._adopt_due = False
        self._adopt_paused_until = 0.0
        self._next_lease_round = 0.0
        self._next_sweep = 0.0
        # Queue positions are told at most once per interval: a chat can't show more, and a
        # busy line would otherwise cost a read of the queue per claim.
        self._positions_moved = False
        self._next_announcement = 0.0
        self.finished = asyncio.Condition()  # notified whenever a job leaves this worker

    @property
    def owner(self) -> str:
        return self._config.owner

    def nudge(self) -> None:
        """Something changed (a job was queued or cancelled): look again now."""
        self._claim_due = True
        self._positions_moved = True  # a new song's expected wait is worth telling
        self._wake.set()

    def adopt_soon(self) -> None:
        """Another process handed a job back (bot.ports.Nudge): take it up now rather than
        at the next lease round."""
        self._adopt_due = True
        self._wake.set()

    # ------------------------------------------------------------ main loop
    async def run(self, stop: asyncio.Event) -> None:
        self._config.audio_dir.mkdir(parents=True, exist_ok=True)
        for duration, runtime in await self._store.recent_runtimes(self._backend.name):
            self._forecast.observe(duration, runtime)
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
                        await asyncio.wait_for(stop.wait(), STORE_OUTAGE.delay(failures))
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
        elif self._adopt_due and now >= self._adopt_paused_until:
            self._adopt_due = False
            # Songs finishing together in other processes share one adoption.
            self._adopt_paused_until = now + CLAIM_COALESCE_SECONDS
            await self._adopt()
        if self._config.generates and self._claim_due and now >= self._submit_paused_until:
            self._claim_due = False
            # Jobs ending or arriving within a few milliseconds share one claim.
            self._submit_paused_until = now + CLAIM_COALESCE_SECONDS
            await self._claim()
        if self._positions_moved and now >= self._next_announcement:
            # Scaled for tests, but never more often than claims can move the line: an
            # announcement's cost (the head of the line read, ten events) doesn't shrink either.
            scaled = ANNOUNCE_INTERVAL_SECONDS * self._config.time_scale
            self._next_announcement = now + max(scaled, CLAIM_COALESCE_SECONDS)
            await self._phases.positions.announce()
            self._positions_moved = False
        await self._poll_due()
        if now >= self._next_sweep:
            self._next_sweep = now + self._config.retention_sweep_seconds
            await retention.sweep(self._store, self._config)

    async def _sleep_until_due(self, stop: asyncio.Event) -> None:
        now = time.monotonic()
        wake_at = self._next_lease_round
        for owned in self._owned.values():
            if owned.phase == Phase.POLLING and not owned.busy:
                wake_at = min(wake_at, owned.due)
        if self._positions_moved:
            wake_at = min(wake_at, self._next_announcement)
        if self._claim_due and self._config.generates:
            wake_at = min(wake_at, max(now, self._submit_paused_until))
        if self._adopt_due:
            wake_at = min(wake_at, max(now, self._adopt_paused_until))
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
        tell_handed_back(self._nudges, self._owned.values())
        logger.info("worker %s stopped; released %d job(s)", self.owner, len(self._owned))
        self._owned.clear()

    def _spawn(self, owned: Owned, phase: Awaitable[Outcome]) -> None:
        """Run a phase for the job in its own task, then act on how it ended."""
        owned.busy = True

        async def _run() -> None:
            with job_context(owned.job.id):
                try:
                    await self._settle(owned, await phase)
                except Exception:
                    # Hand the job back: whichever worker adopts it next (maybe this one)
                    # re-drives it from what the database says.
                    logger.exception("job %s: unexpected error in %s", owned.job.id, owned.phase)
                    self._owned.pop(owned.job.id, None)
                    with contextlib.suppress(*DB_ERRORS):
                        await self._store.release(self.owner, [owned.job.id])
                        tell_handed_back(self._nudges, [owned])
                finally:
                    owned.busy = False
                    self._wake.set()

        task = asyncio.create_task(_run())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _settle(self, owned: Owned, outcome: Outcome) -> None:
        """Act on how a phase ended: move the job to its next phase, end it, or let it go."""
        job_id = owned.job.id
        match outcome:
            case Fail(code, detail, billed):
                await self._fail(job_id, code, detail, billed=billed)
            case Leave(release):
                if release:
                    await self._store.release(self.owner, [job_id])
                    tell_handed_back(self._nudges, [owned])
                await self._drop(job_id)
            case Refused(pause, reason, fail):
                self._submit_paused_until = time.monotonic() + pause
                await self._drop(job_id)
                if fail is not None:
                    await self._fail(job_id, fail.code, fail.detail)
                else:
                    await self._requeue(job_id, reason)
            case Submitted(job):
                owned.job, owned.phase = job, Phase.POLLING
                owned.due = time.monotonic() + self._forecast.poll_delay(job)
                owned.eta_shown = self._forecast.eta(job)
                await self._notifier.emit(JobEvent(EventKind.STARTED, job, eta=owned.eta_shown))
            case SubmitAgain(job):  # the upstream forgot it: send it again
                owned.job, owned.phase = job, Phase.SUBMITTING
                self._spawn(owned, self._phases.submitter.submit(owned))
            case PollLater(delay):
                owned.phase = Phase.POLLING
                owned.due = time.monotonic() + delay
            case Fetch(status, runtime):
                owned.phase = Phase.FINISHING
                self._spawn(owned, self._phases.finisher.finish(owned, status, runtime))
            case Deliver():
                owned.phase = Phase.DELIVERING
                await self._settle(owned, await self._phases.deliverer.deliver(owned))
            case _:
                assert_never(outcome)

    async def _drop(self, job_id: int) -> None:
        self._owned.pop(job_id, None)
        self._claim_due = True  # a slot may be free
        async with self.finished:
            self.finished.notify_all()

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
            if job.request.takes > self._backend.capabilities.takes_per_task:
                await self._resume_takes(job)
                return
            # We can't know whether the submit reached upstream, unless the unbilled step
            # before it (an edit's upload) was not even recorded as done.
            if self._backend.resubmit_safe or self._backend.needs_preparing(job.request):
                await self._requeue(job.id, "requeued after a crash during submit")
                self._queued_again(job)
            else:
                # It may be running upstream: its cost stays counted (bot/settlement.py).
                await self._fail(
                    job.id, "submit_uncertain", "crashed while submitting", billed=True
                )
            return
        if job.state in (JobState.SUBMITTED, JobState.RUNNING):
            self._owned[job.id] = Owned(job, Phase.POLLING, due=time.monotonic())
        elif job.state == JobState.SUCCEEDED:
            owned = Owned(job, Phase.DELIVERING)
            self._owned[job.id] = owned
            self._spawn(owned, self._phases.deliverer.deliver(owned))

    async def _resume_takes(self, job: Job) -> None:
        """A job whose takes are submits of their own, taken up while submitting: each
        take sent is recorded, so only the first one not recorded may be upstream. Unless
        the backend may get it twice, that take fails alone (its quota back at delivery)
        and the rest are sent now; with no take recorded at all nothing was sent."""
        pending = next((t for t in job.takes if t.state == TakeState.PENDING), None)
        if not job.takes:
            await self._requeue(job.id, "requeued after a crash before its takes were sent")
            self._queued_again(job)
            return
        if pending is not None and not self._backend.resubmit_safe:
            uncertain = replace(pending, state=TakeState.FAILED, error_code="submit_uncertain")
            recorded = await self._store.update_fields(
                job.id, {JobState.SUBMITTING}, now=utcnow(), takes=with_take(job.takes, uncertain)
            )
            if recorded is None:
                return
            logger.warning(
                "job %s: take %d may have been sent; not resending", job.id, pending.number
            )
            job = recorded
        owned = Owned(job, Phase.SUBMITTING)
        self._owned[job.id] = owned
        self._spawn(owned, self._phases.submitter.submit(owned))

    def _queued_again(self, job: Job) -> None:
        """A crashed worker's job back in line: any worker of its backend may take it.
        (A submit refused for a while, 429, is not told: the others would be refused too.)"""
        self.nudge()
        if self._nudges is not None:
            self._nudges.send(Nudge.WORK, job.backend)

    async def _requeue(self, job_id: int, detail: str) -> None:
        """Back in line: only for a submit that surely didn't reach the upstream (or may
        reach it twice, where the backend says that's safe)."""
        await self._store.transition(
            job_id,
            {JobState.SUBMITTING},
            JobState.QUEUED,
            now=utcnow(),
            detail=detail,
            lease_owner=None,
            lease_expires_at=None,
        )

    # ------------------------------------------------------------ submit
    async def _claim(self) -> None:
        claimed = await self._store.claim_for_submit(
            self._backend.name,
            owner=self.owner,
            max_in_flight=self._backend.max_concurrency,
            lease_until=self._lease_until(),
            now=utcnow(),
            at_most=CLAIM_BATCH,
        )
        for job in claimed:
            owned = Owned(job, Phase.SUBMITTING)
            self._owned[job.id] = owned
            self._spawn(owned, self._phases.submitter.submit(owned))
        if claimed:
            self._positions_moved = True
        if len(claimed) == CLAIM_BATCH:
            self._claim_due = True  # more may be waiting: the next claim, 50 ms on

    # ------------------------------------------------------------ polling
    async def _poll_due(self) -> None:
        due = self._phases.poller.due(self._owned.values())
        if not due:
            return
        try:
            statuses, problem = await self._phases.poller.ask(due, self._owned.values())
            for owned in due:
                status = statuses.get(owned.job.remote_id or "")
                with job_context(owned.job.id):
                    if owned.job.takes and own_tasks(owned.job):
                        judged = await self._phases.poller.judge_takes(owned, statuses, problem)
                        await self._settle(owned, judged)
                        continue
                    await self._take_notice(owned, status, pushed=False, problem=problem)
        finally:
            for owned in due:
                if owned.phase == Phase.POLLING:  # else a finishing task holds it now
                    owned.busy = False

    async def on_remote_status(self, remote_id: str, status: RemoteStatus) -> None:
        """A status pushed by the backend (webhook): act now as if a poll had seen it.

        Only this process's jobs; another worker's job is picked up by its own polls. A job
        already being finished ignores it (webhooks may repeat)."""
        owned = next(
            (o for o in self._owned.values() if remote_id in (o.job.remote_id, *remote_ids(o.job))),
            None,
        )
        if owned is None or owned.phase != Phase.POLLING:
            return
        if owned.job.takes and own_tasks(owned.job):
            owned.due = time.monotonic()  # one take's news: the next poll asks about them all
            self._wake.set()
            return
        if owned.busy:  # a poll's answer is being handled: it takes this up when done
            owned.pushed = status
            return
        owned.busy = True
        try:
            with job_context(owned.job.id):
                await self._take_notice(owned, status, pushed=True)
        finally:
            if owned.phase == Phase.POLLING:
                owned.busy = False
            self._wake.set()

    async def _take_notice(
        self, owned: Owned, status: RemoteStatus | None, *, pushed: bool, problem: str = ""
    ) -> None:
        """Act on one notice (a poll's answer, None if the poll failed with ``problem``, or a
        webhook's), then on any webhook that came meanwhile. The caller holds the job busy."""
        outcome = await self._phases.poller.judge(owned, status, pushed=pushed, problem=problem)
        await self._settle(owned, outcome)
        while owned.pushed is not None:
            status, owned.pushed = owned.pushed, None
            if owned.phase != Phase.POLLING or self._owned.get(owned.job.id) is not owned:
                return  # being finished already, or gone: the news changes nothing
            await self._settle(owned, await self._phases.poller.judge(owned, status, pushed=True))

    # ------------------------------------------------------------ failure
    async def _fail(self, job_id: int, code: str, detail: str, *, billed: bool = False) -> None:
        """End a job that won't be delivered (failure.py), letting it go before the chat is
        told."""
        ended = await self._phases.failures.record(job_id, code, detail, billed=billed)
        await self._drop(job_id)
        if ended is not None:
            await self._phases.failures.tell(ended)
