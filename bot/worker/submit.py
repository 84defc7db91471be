"""The submit phase: send a claimed job to the upstream, once, and record that it took it."""

from __future__ import annotations

import asyncio
import logging
import secrets
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from bot.clock import utcnow
from bot.domain import SEED_MAX, Job, JobState, TakeState
from bot.errors import BackendError, SubmitUncertain, TransientBackendError
from bot.ports import Backend
from bot.retry import RetryPolicy, Step, durably
from bot.stores import WorkerStore
from bot.worker.forecast import Forecast
from bot.worker.outcomes import Fail, Leave, Outcome, Refused, Submitted
from bot.worker.owned import Owned
from bot.worker.takes import batch_takes, pending_takes, with_take

logger = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True)
class Submitter:
    store: WorkerStore
    backend: Backend
    forecast: Forecast
    policy: RetryPolicy
    lease_seconds: float

    async def submit(self, owned: Owned) -> Outcome:
        job = owned.job
        edit = job.request.edit
        # An edit's source is kept until its job ends, but a disk can be cleaned by hand:
        # then nothing is sent and the job fails for good, its seconds back (docs/edits.md).
        if edit is not None and not Path(edit.source_path).is_file():
            return Fail("source_missing", f"the edit's source {edit.source_path} is gone")
        if self.backend.needs_preparing(job.request):
            prepared = await self._prepare(owned)
            if not isinstance(prepared, Job):
                return prepared
            job = owned.job = prepared
        if job.request.takes > self.backend.capabilities.takes_per_task:
            return await self._submit_each(owned)
        seed = job.request.seed if job.request.seed >= 0 else secrets.randbelow(SEED_MAX + 1)
        request = replace(job.request, seed=seed)
        try:
            task = await self.backend.submit(request)
        except TransientBackendError as exc:
            return self._refused(job, exc)
        except SubmitUncertain as exc:
            logger.error("job %s: submit outcome unknown (%s); not resending", job.id, exc.detail)
            # It may be running upstream: its cost stays counted (bot/settlement.py).
            return Fail(exc.code, exc.detail, billed=True)
        except BackendError as exc:
            return Fail(exc.code, exc.detail)
        seed_used = task.seed_used if task.seed_used is not None else (seed if seed >= 0 else None)
        submitted = await durably(
            self.store.transition,
            job.id,
            {JobState.SUBMITTING},
            JobState.SUBMITTED,
            within=self.lease_seconds,
            now=utcnow(),
            remote_id=task.remote_id,
            seed_used=seed_used,
            submitted_at=utcnow(),
            detail=f"remote={task.remote_id}",
            **({"takes": batch_takes(job)} if job.request.takes > 1 else {}),
        )
        if submitted is None:  # cancelled meanwhile; the upstream task just runs out
            return Leave()
        logger.info("job %s submitted remote=%s", job.id, task.remote_id)
        self.forecast.hint = await self.backend.expected_seconds(request)
        return Submitted(submitted)

    async def _prepare(self, owned: Owned) -> Job | Outcome:
        """The backend's unbilled step before the submit (an edit's source uploaded), recorded
        before anything billed is sent: a crash before the record sent nothing billed, so the
        job is queued again on restart (docs/jobs.md); the submit then needs no new upload."""
        job = owned.job
        try:
            request = await self.backend.prepare(job.request)
        except TransientBackendError as exc:
            return self._refused(job, exc)
        except BackendError as exc:
            return Fail(exc.code, exc.detail)
        assert request.edit is not None
        recorded = await durably(
            self.store.record_prepared,
            job.id,
            {JobState.SUBMITTING},
            within=self.lease_seconds,
            edit=request.edit,
            now=utcnow(),
        )
        return recorded if recorded is not None else Leave()  # cancelled meanwhile

    def _refused(self, job: Job, exc: TransientBackendError) -> Refused:
        """Refused before anything was made: safe to queue again, after a pause."""
        logger.warning("job %s: submit refused (%s); will retry", job.id, exc.code)
        pause = exc.retry_after or self.policy.delay(job.attempts)
        spent = self.policy.gives_up(Step.SUBMIT, job.attempts)
        return Refused(
            pause,
            reason=f"submit refused: {exc.code}",
            fail=Fail(exc.code, exc.detail) if spent else None,
        )

    async def _submit_each(self, owned: Owned) -> Outcome:
        """Each take a submit of its own (the backend makes one per task), one at a time:
        each take's remote id is recorded before the next is sent, and the job stays
        ``submitting`` until every take is sent or failed (docs/jobs.md)."""
        job = owned.job
        if not job.takes:  # the seeds are recorded before anything is sent
            recorded = await self._record(job.id, takes=pending_takes(job))
            if recorded is None:
                return Leave()
            job = owned.job = recorded
        refusals = 0
        failure: Fail | None = None
        while take := next((t for t in job.takes if t.state == TakeState.PENDING), None):
            request = replace(job.request, seed=take.seed if take.seed is not None else -1, takes=1)
            try:
                task = await self.backend.submit(request)
            except TransientBackendError as exc:
                if all(t.state == TakeState.PENDING for t in job.takes):
                    # Nothing is upstream yet: the job goes back in line, as one take would.
                    return self._refused(job, exc)
                refusals += 1
                if not self.policy.gives_up(Step.SUBMIT, refusals):
                    await asyncio.sleep(exc.retry_after or self.policy.delay(refusals))
                    continue
                failure = Fail(exc.code, exc.detail)
                take = replace(take, state=TakeState.FAILED, error_code=exc.code)
            except BackendError as exc:  # refused, or its outcome unknown: this take alone
                logger.warning("job %s: take %d not submitted: %s", job.id, take.number, exc.code)
                failure = Fail(exc.code, exc.detail)
                take = replace(take, state=TakeState.FAILED, error_code=exc.code)
            else:
                refusals = 0
                seed = task.seed_used if task.seed_used is not None else take.seed
                take = replace(take, state=TakeState.SUBMITTED, remote_id=task.remote_id, seed=seed)
                logger.info(
                    "job %s take %d submitted remote=%s", job.id, take.number, task.remote_id
                )
            recorded = await self._record(job.id, takes=with_take(job.takes, take))
            if recorded is None:  # cancelled meanwhile; what is upstream just runs out
                return Leave()
            job = owned.job = recorded
        first = next((t for t in job.takes if t.state == TakeState.SUBMITTED), None)
        if first is None:
            return failure or Fail("submit_failed", "no take was submitted")
        submitted = await durably(
            self.store.transition,
            job.id,
            {JobState.SUBMITTING},
            JobState.SUBMITTED,
            within=self.lease_seconds,
            now=utcnow(),
            remote_id=first.remote_id,
            seed_used=first.seed,
            submitted_at=utcnow(),
            detail=f"remote={first.remote_id} takes={len(job.takes)}",
        )
        if submitted is None:
            return Leave()
        self.forecast.hint = await self.backend.expected_seconds(job.request)
        return Submitted(submitted)

    async def _record(self, job_id: int, **fields: Any) -> Job | None:
        return await durably(
            self.store.update_fields,
            job_id,
            {JobState.SUBMITTING},
            within=self.lease_seconds,
            now=utcnow(),
            **fields,
        )
