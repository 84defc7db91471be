"""The delivering phase: post a finished song to the chat it was asked from, and record it."""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass

from bot.clock import utcnow
from bot.delivery import tracks_of
from bot.domain import Job, JobState
from bot.errors import AudioError, DeliveryRefused, DeliveryUnavailable
from bot.notify import Notifier
from bot.retry import RetryPolicy, Step, durably
from bot.stores import RulesStore, WorkerStore
from bot.worker.outcomes import Fail, Leave, Outcome
from bot.worker.owned import Owned
from bot.worker.takes import refund_seconds

logger = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True)
class Deliverer:
    store: WorkerStore
    rules: RulesStore
    notifier: Notifier
    policy: RetryPolicy
    lease_seconds: float

    async def deliver(self, owned: Owned) -> Outcome:
        job = owned.job
        delivery = self.notifier.delivery_for(job.destination.platform)
        # Whatever happens from here, the upstream made the song and billed it.
        if job.nsfw and not await self._nsfw_allowed(job):
            return Fail("nsfw", "flagged by the backend; chat does not allow it", billed=True)
        tracks = tracks_of(job)
        if delivery is None or not tracks or not all(t.path.exists() for t in tracks):
            if delivery is not None:
                return Fail("lost", "audio file missing at delivery", billed=True)
            return Leave()
        started = time.monotonic()
        while True:
            try:
                receipt = await delivery.deliver(job, tracks)
                break
            except DeliveryUnavailable:
                # The adapter is stopping or offline: leave the job for the next start
                # (or another process) without spending an attempt.
                return Leave(release=True)
            except DeliveryRefused as exc:  # blocked or gone for good: retrying won't help
                return Fail(exc.code, exc.detail, billed=True)
            except AudioError as exc:  # the track can't be made to fit: retrying won't help
                return Fail(exc.code, exc.detail, billed=True)
            except Exception as exc:
                owned.delivery_failures += 1
                logger.warning(
                    "job %s: delivery attempt %d failed: %s",
                    job.id,
                    owned.delivery_failures,
                    exc,
                )
                if self.policy.gives_up(Step.DELIVERY, owned.delivery_failures):
                    return Fail("delivery_failed", type(exc).__name__, billed=True)
                await asyncio.sleep(self.policy.delay(owned.delivery_failures))
        delivered = await durably(
            self.store.transition,
            job.id,
            {JobState.SUCCEEDED},
            JobState.DELIVERED,
            within=self.lease_seconds,
            now=utcnow(),
            ledger="commit",
            refund_seconds=refund_seconds(job),  # the takes that failed alone
            delivered_message_id=receipt.message_id,
            delivered_at=utcnow(),
        )
        logger.info("job %s delivered message=%s", job.id, receipt.message_id)
        if delivered is None:
            logger.warning("job %s: was no longer awaiting delivery", job.id)
        else:  # the metrics: time to the chat, and what was posted
            self.notifier.delivered(delivered, tracks, time.monotonic() - started)
        return Leave()

    async def _nsfw_allowed(self, job: Job) -> bool:
        """A flagged track goes only where the chat allows it (an NSFW Discord channel,
        which the adapter records in the job's context, or a chat setting)."""
        if job.destination.context.get("nsfw_channel"):
            return True
        rules = await self.rules.chat_rules(job.destination.platform, job.destination.scope)
        return rules is not None and rules.allow_nsfw
