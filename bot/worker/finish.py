"""The finishing phase: fetch a song the upstream made, check it, and record the success."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, replace

from bot import audio
from bot.clock import utcnow
from bot.domain import LOCAL_PLATFORM, JobState, TakeState
from bot.errors import AudioError, BackendError, TransientBackendError
from bot.notify import Notifier
from bot.ports import Backend, EventKind, JobEvent, RemoteStatus
from bot.retry import RetryPolicy, Step
from bot.stores import WorkerStore
from bot.worker.config import WorkerConfig
from bot.worker.forecast import Forecast
from bot.worker.outcomes import Deliver, Fail, Leave, Outcome, PollLater
from bot.worker.owned import Owned
from bot.worker.takes import (
    DONE,
    as_main,
    billed_cost,
    failed_takes,
    main_take,
    own_tasks,
    refund_seconds,
    with_take,
)
from bot.worker.written import record_written

logger = logging.getLogger(__name__)

# A transfer that broke off or ran past DOWNLOAD_TIMEOUT_SECONDS: the file is fine upstream.
TRANSFER_ERRORS = frozenset({"download_truncated", "download_timeout"})


@dataclass(frozen=True, kw_only=True)
class Finisher:
    store: WorkerStore
    backend: Backend
    notifier: Notifier
    forecast: Forecast
    policy: RetryPolicy
    config: WorkerConfig

    async def finish(self, owned: Owned, status: RemoteStatus, runtime: float) -> Outcome:
        job = owned.job
        if job.takes:
            return await self._finish_takes(owned, status, runtime)
        assert status.output_url is not None
        target = self.config.audio_dir / f"job-{job.id}"
        try:
            downloaded = await self.backend.download(
                status.output_url, target, max_bytes=self.config.max_download_bytes
            )
            info = await asyncio.to_thread(audio.probe, downloaded.path)
        except BackendError as exc:
            return self._download_failed(owned, exc)
        final_path = downloaded.path.with_suffix(f".{downloaded.format}")
        downloaded.path.replace(final_path)
        completes_here = job.destination.platform == LOCAL_PLATFORM
        succeeded = await self.store.transition(
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
            gpu_seconds=self.forecast.elapsed(job) if self.backend.accounts_gpu_seconds else None,
            **({"lease_owner": None, "lease_expires_at": None} if completes_here else {}),
        )
        if succeeded is None:
            return Leave()
        logger.info("job %s succeeded (%.1f s of %s)", job.id, info.duration, downloaded.format)
        succeeded = await record_written(self.store, succeeded, status)
        owned.job = succeeded
        await self.notifier.emit(JobEvent(EventKind.SUCCEEDED, succeeded))
        if completes_here:
            return Leave()
        if self.notifier.delivery_for(job.destination.platform) is None:
            return Leave(release=True)  # let a process that can deliver take it
        return Deliver()

    async def _finish_takes(self, owned: Owned, status: RemoteStatus, runtime: float) -> Outcome:
        """Fetch each take made and not yet on disk (each recorded as it lands, so a retry
        or a restart fetches only the rest), then record the job's success: its own audio
        fields are the main take's. A take that can't be fetched fails alone."""
        job = owned.job
        answers = {n: s.outputs[0] for n, s in owned.finished_takes.items() if s.outputs}
        if not own_tasks(job):  # one task made them all: its outputs, in take order
            answers = dict(enumerate(status.outputs, 1))
        for take in job.takes:
            if take.state in DONE:
                continue
            answer = answers.get(take.number)
            if answer is None:
                done = replace(take, state=TakeState.FAILED, error_code="upstream_failed")
            else:
                target = self.config.audio_dir / f"job-{job.id}-{take.number}"
                try:
                    downloaded = await self.backend.download(
                        answer.url, target, max_bytes=self.config.max_download_bytes
                    )
                    info = await asyncio.to_thread(audio.probe, downloaded.path)
                except BackendError as exc:
                    outcome = self._download_failed(owned, exc)
                    if not isinstance(outcome, Fail):
                        owned.finished_takes.clear()  # the next poll brings fresh links
                        return outcome
                    error = exc.code
                    done = replace(take, state=TakeState.FAILED, error_code=error, billed=True)
                else:
                    path = downloaded.path.with_suffix(f".{downloaded.format}")
                    downloaded.path.replace(path)
                    seed = answer.seed if answer.seed is not None else take.seed
                    done = replace(
                        take,
                        state=TakeState.READY,
                        seed=seed,
                        audio_path=str(path),
                        audio_format=downloaded.format,
                        audio_duration=info.duration,
                    )
            recorded = await self.store.update_fields(
                job.id,
                {JobState.SUBMITTED, JobState.RUNNING},
                now=utcnow(),
                takes=with_take(job.takes, done),
            )
            if recorded is None:
                return Leave()
            job = owned.job = recorded
        main = main_take(job)
        if main is None:
            failed = failed_takes(job)
            billed = any(t.billed for t in failed)
            return Fail(
                failed[0].error_code or "upstream_failed", "no take was made", billed=billed
            )
        completes_here = job.destination.platform == LOCAL_PLATFORM
        succeeded = await self.store.transition(
            job.id,
            {JobState.SUBMITTED, JobState.RUNNING},
            JobState.SUCCEEDED,
            now=utcnow(),
            ledger="commit" if completes_here else None,
            refund_seconds=refund_seconds(job),
            nsfw=status.nsfw or any(s.nsfw for s in owned.finished_takes.values()),
            finished_at=utcnow(),
            remote_seconds=runtime,
            progress=1.0,
            cost_usd=billed_cost(job, bills_failed=self.backend.bills_failed_jobs),
            gpu_seconds=self.forecast.elapsed(job) if self.backend.accounts_gpu_seconds else None,
            **as_main(main),
            **({"lease_owner": None, "lease_expires_at": None} if completes_here else {}),
        )
        if succeeded is None:
            return Leave()
        logger.info(
            "job %s succeeded (%d of %d takes)",
            job.id,
            sum(t.state == TakeState.READY for t in succeeded.takes),
            len(job.takes),
        )
        succeeded = await record_written(self.store, succeeded, status)
        owned.job = succeeded
        await self.notifier.emit(JobEvent(EventKind.SUCCEEDED, succeeded))
        if completes_here:
            return Leave()
        if self.notifier.delivery_for(job.destination.platform) is None:
            return Leave(release=True)
        return Deliver()

    def _download_failed(self, owned: Owned, exc: BackendError) -> Outcome:
        """The upstream made (and billed) the song but fetching it failed. A transfer that
        broke off, timed out or found the host unavailable is tried again until the job's
        deadline; a dead link a few times; anything else is final. Each retry polls first,
        which also brings a fresh output URL."""
        job = owned.job
        if isinstance(exc, TransientBackendError) or exc.code in TRANSFER_ERRORS:
            owned.transfer_failures += 1
            delay = self.policy.delay(owned.transfer_failures)
            if self.forecast.elapsed(job) + delay > self.config.job_timeout_seconds:
                return Fail(exc.code, exc.detail, billed=True)
        elif isinstance(exc, AudioError) and exc.code == "download_expired":
            owned.dead_links += 1
            if self.policy.gives_up(Step.DEAD_LINK, owned.dead_links):
                return Fail(exc.code, exc.detail, billed=True)
            delay = self.policy.delay(owned.dead_links)
        else:
            return Fail(exc.code, exc.detail, billed=True)
        logger.warning("job %s: download failed (%s); polling again to retry", job.id, exc.code)
        return PollLater(delay)
