"""The polling phase: ask the upstream how its jobs do, and judge each answer.

An answer comes from a poll (possibly one call for many jobs) or from a webhook; either way
`Poller.judge` turns it into what happens next: poll again later, note progress in the chat,
fetch the song, or fail the job.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Collection, Mapping, Sequence
from dataclasses import replace
from typing import Any

from bot.clock import utcnow
from bot.domain import JobState, TakeState
from bot.errors import BackendError
from bot.notify import Notifier
from bot.polling import catch_up
from bot.ports import Backend, EventKind, JobEvent, RemoteState, RemoteStatus
from bot.retry import RetryPolicy
from bot.stores import WorkerStore
from bot.worker.forecast import Forecast
from bot.worker.outcomes import Fail, Fetch, Leave, Outcome, PollLater, SubmitAgain
from bot.worker.owned import Owned, Phase
from bot.worker.takes import remote_ids, with_take

logger = logging.getLogger(__name__)

# Once the upstream answers again after an outage, the jobs that backed off are polled
# again within this many seconds (spread over it, each at most every min_poll_interval).
CATCH_UP_SECONDS = 2.0


class Poller:
    def __init__(
        self,
        *,
        store: WorkerStore,
        backend: Backend,
        notifier: Notifier,
        forecast: Forecast,
        policy: RetryPolicy,
        job_timeout_seconds: float,
        min_interval: float,
        time_scale: float,
    ) -> None:
        self._store = store
        self._backend = backend
        self._notifier = notifier
        self._forecast = forecast
        self._policy = policy
        self._timeout = job_timeout_seconds
        self._min_interval = min_interval
        self._catch_up_window = CATCH_UP_SECONDS * time_scale
        # The last poll round got no answer at all: the next one that does ends an outage.
        self._upstream_down = False

    def due(self, owned: Collection[Owned]) -> list[Owned]:
        """The jobs to ask about now, marked busy until each answer is handled, so a webhook
        about one of them meanwhile is queued for it (``pushed``) instead of finishing the
        job a second time."""
        now = time.monotonic()
        polling = [o for o in owned if o.phase == Phase.POLLING and not o.busy and o.job.remote_id]
        due = [o for o in polling if o.due <= now]
        if not due:
            return []
        if self._backend.polls_in_batches:
            # One call covers every job (ACE-Step's /query_result): ask about all of them.
            due = polling
        for item in due:
            item.busy = True
            item.last_poll = now
        return due

    async def ask(
        self, due: Sequence[Owned], owned: Collection[Owned]
    ) -> tuple[Mapping[str, RemoteStatus], str]:
        """The upstream's answers about ``due`` by remote id, and why any job has none.
        ``owned``: all the worker's jobs, whose polls come sooner after an outage."""
        problem = "no answer about it"
        try:
            statuses = await self._backend.poll([i for o in due for i in remote_ids(o.job)])
        except BackendError as exc:
            logger.warning("poll failed for %d job(s): %s", len(due), exc.code)
            statuses, problem = {}, exc.code
        if statuses and self._upstream_down:
            self._catch_up(owned, {o.job.id for o in due})
        self._upstream_down = not statuses
        return statuses, problem

    def _catch_up(self, owned: Collection[Owned], polled: set[int]) -> None:
        """The upstream answers again after an outage: bring forward the polls of the jobs
        that backed off meanwhile (one may have finished long ago)."""
        waiting = sorted(
            (
                o
                for o in owned
                if o.phase == Phase.POLLING
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
            window=self._catch_up_window,
        )
        for item, due in zip(waiting, times, strict=True):
            item.due = due
        if waiting:
            logger.info("upstream answers again; polling %d waiting job(s) soon", len(waiting))

    async def judge(
        self, owned: Owned, status: RemoteStatus | None, *, pushed: bool, problem: str = ""
    ) -> Outcome:
        """What one answer about the job means (None: the poll got none, for ``problem``)."""
        job = owned.job
        elapsed = self._forecast.elapsed
        if status is None:
            owned.poll_failures += 1
            if elapsed(job) > self._timeout:
                return Fail("poll_failed", f"polls failed until the deadline: {problem}")
            return PollLater(self._policy.delay(owned.poll_failures))
        owned.poll_failures = 0
        if status.state in (RemoteState.PENDING, RemoteState.RUNNING):
            owned.seen_unfinished = elapsed(job)
            if elapsed(job) > self._timeout:
                return Fail("timeout", "upstream task never finished")
            if not await self._note_progress(owned, status):
                return Leave()  # cancelled or taken over meanwhile
            return PollLater(self._forecast.poll_delay(owned.job))
        if status.state == RemoteState.FAILED:
            code = self._failure_code(status)
            return Fail(code, status.error_message or "upstream reported failure")
        if status.state == RemoteState.LOST:
            return await self._submit_again(owned, status)
        # Succeeded upstream: remember how long it took, then fetch the audio.
        runtime = self._forecast.runtime(job, owned.seen_unfinished, pushed=pushed)
        self._forecast.observe(job.request.duration, runtime)
        return Fetch(status, runtime)

    async def judge_takes(
        self, owned: Owned, statuses: Mapping[str, RemoteStatus], problem: str
    ) -> Outcome:
        """One poll's answers about a job whose takes are tasks of their own: a take the
        upstream failed fails alone (recorded now); once every take is done the ones made
        are fetched, and until then the slowest take's answer is judged as the job's."""
        job = owned.job
        waiting: list[RemoteStatus | None] = []
        takes = job.takes
        for take in job.takes:
            if take.state != TakeState.SUBMITTED or take.number in owned.finished_takes:
                continue
            status = statuses.get(take.remote_id or "")
            if status is not None and status.state == RemoteState.LOST:
                # Takes sent one by one come from a backend that never loses one; should
                # it, the take waits out the deadline like one nobody answers about.
                waiting.append(None)
            elif status is None or status.state in (RemoteState.PENDING, RemoteState.RUNNING):
                waiting.append(status)
            elif status.state == RemoteState.FAILED:
                code = self._failure_code(status)
                logger.warning("job %s: take %d failed upstream: %s", job.id, take.number, code)
                takes = with_take(takes, replace(take, state=TakeState.FAILED, error_code=code))
            else:
                owned.finished_takes[take.number] = status
        late = self._forecast.elapsed(job) > self._timeout
        if waiting and owned.finished_takes and late:
            # Past the deadline with some takes made: those still out fail alone.
            for take in takes:
                if take.state == TakeState.SUBMITTED and take.number not in owned.finished_takes:
                    gone = replace(take, state=TakeState.FAILED, error_code="timeout")
                    takes = with_take(takes, gone)
            waiting = []
        if takes != job.takes:
            updated = await self._store.update_fields(
                job.id, {JobState.SUBMITTED, JobState.RUNNING}, now=utcnow(), takes=takes
            )
            if updated is None:
                return Leave()
            owned.job = job = updated
        if waiting:
            slowest = None if None in waiting else min(waiting, key=_progress)
            return await self.judge(owned, slowest, pushed=False, problem=problem)
        made = [owned.finished_takes[n] for n in sorted(owned.finished_takes)]
        if not made:
            failed = next(t for t in job.takes if t.state == TakeState.FAILED)
            return Fail(failed.error_code or "upstream_failed", "every take failed upstream")
        runtime = self._forecast.runtime(job, owned.seen_unfinished, pushed=False)
        self._forecast.observe(job.request.duration, runtime)
        return Fetch(made[0], runtime)

    async def _submit_again(self, owned: Owned, status: RemoteStatus) -> Outcome:
        """The upstream forgot the task (a pool's server restarted or died): where a second
        submit costs nothing, the job goes back to ``submitting`` and is sent again; the
        old task, should its server ever finish it, is never asked about again, so the
        chat gets one track. Elsewhere the job ends as one that never finished."""
        job = owned.job
        reason = status.error_message or "the upstream forgot the task"
        if not self._backend.resubmit_safe:
            return Fail("timeout", reason)
        again = await self._store.transition(
            job.id,
            {JobState.SUBMITTED, JobState.RUNNING},
            JobState.SUBMITTING,
            now=utcnow(),
            detail=f"remote={job.remote_id} lost ({reason}); submitting again",
            progress=None,
            progress_text=None,
        )
        if again is None:
            return Leave()  # cancelled or taken over meanwhile
        logger.warning(
            "job %s: remote=%s lost (%s); submitting again", job.id, job.remote_id, reason
        )
        owned.poll_failures = 0
        owned.seen_unfinished = None
        return SubmitAgain(again)

    def _failure_code(self, status: RemoteStatus) -> str:
        if status.error_code in self._backend.moderation_error_codes:
            return "moderation"
        if status.error_code == "no_language_model":  # its own sentence for the user
            return status.error_code
        return "upstream_failed"

    async def _note_progress(self, owned: Owned, status: RemoteStatus) -> bool:
        """Record and tell news of a running job; False when the job is no longer ours."""
        job = owned.job
        started = job.state == JobState.SUBMITTED and status.state == RemoteState.RUNNING
        changed = status.progress != job.progress or status.stage != job.progress_text
        if not started and not changed:
            if owned.eta_shown is not None and owned.eta_shown <= utcnow():
                # The estimate shown ran out while the song still cooks: say a new one.
                await self._emit_progress(owned, status.progress)
            return True
        fields: dict[str, Any] = {"progress": status.progress, "progress_text": status.stage}
        if started:
            updated = await self._store.transition(
                job.id, {JobState.SUBMITTED}, JobState.RUNNING, now=utcnow(), **fields
            )
        else:
            updated = await self._store.update_fields(
                job.id, {JobState.SUBMITTED, JobState.RUNNING}, now=utcnow(), **fields
            )
        if updated is None:
            return False
        owned.job = updated
        await self._emit_progress(owned, status.progress)
        return True

    async def _emit_progress(self, owned: Owned, progress: float | None) -> None:
        eta = self._forecast.eta(owned.job, progress)
        # None after an estimate lapsed: the chat says "any moment now" and is not told again.
        owned.eta_shown = eta
        event = JobEvent(EventKind.PROGRESS, owned.job, progress=progress, eta=eta)
        await self._notifier.emit(event)


def _progress(status: RemoteStatus | None) -> float:
    return status.progress or 0.0 if status is not None else 0.0
