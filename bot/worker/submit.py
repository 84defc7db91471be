"""The submit phase: send a claimed job to the upstream, once, and record that it took it."""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass, replace

from bot.clock import utcnow
from bot.domain import SEED_MAX, JobState
from bot.errors import BackendError, SubmitUncertain, TransientBackendError
from bot.ports import Backend
from bot.retry import RetryPolicy, Step, durably
from bot.stores import WorkerStore
from bot.worker.forecast import Forecast
from bot.worker.outcomes import Fail, Leave, Outcome, Refused, Submitted
from bot.worker.owned import Owned

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
        seed = job.request.seed if job.request.seed >= 0 else secrets.randbelow(SEED_MAX + 1)
        request = replace(job.request, seed=seed)
        try:
            task = await self.backend.submit(request)
        except TransientBackendError as exc:
            # Refused before it was accepted: safe to queue again, after a pause.
            logger.warning("job %s: submit refused (%s); will retry", job.id, exc.code)
            pause = exc.retry_after or self.policy.delay(job.attempts)
            spent = self.policy.gives_up(Step.SUBMIT, job.attempts)
            return Refused(
                pause,
                reason=f"submit refused: {exc.code}",
                fail=Fail(exc.code, exc.detail) if spent else None,
            )
        except SubmitUncertain as exc:
            logger.error("job %s: submit outcome unknown (%s); not resending", job.id, exc.detail)
            return Fail(exc.code, exc.detail)
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
        )
        if submitted is None:  # cancelled meanwhile; the upstream task just runs out
            return Leave()
        logger.info("job %s submitted remote=%s", job.id, task.remote_id)
        self.forecast.hint = await self.backend.expected_seconds(request)
        return Submitted(submitted)
