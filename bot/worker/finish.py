"""The finishing phase: fetch a song the upstream made, check it, and record the success."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from bot import audio
from bot.clock import utcnow
from bot.domain import LOCAL_PLATFORM, JobState
from bot.errors import AudioError, BackendError, TransientBackendError
from bot.notify import Notifier
from bot.ports import Backend, EventKind, JobEvent, RemoteStatus
from bot.retry import RetryPolicy, Step
from bot.stores import WorkerStore
from bot.worker.config import WorkerConfig
from bot.worker.forecast import Forecast
from bot.worker.outcomes import Deliver, Fail, Leave, Outcome, PollLater
from bot.worker.owned import Owned
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
