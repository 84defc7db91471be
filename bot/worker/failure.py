"""The one failure path: end a job that won't be delivered, then tell the chat why.

Two halves, because the loop lets the job go in between (`Worker._fail`): a slot is free as
soon as the failure is recorded. bot/settlement.py says who bears the song's cost.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from bot import messages
from bot.clock import utcnow
from bot.domain import Job, JobState
from bot.notify import Notifier
from bot.ports import Backend, EventKind, JobEvent
from bot.settlement import refunds_quota
from bot.stores import WorkerStore

logger = logging.getLogger(__name__)

# Every state a job can fail from: any but the final ones.
_UNFINISHED = frozenset(
    {
        JobState.QUEUED,
        JobState.SUBMITTING,
        JobState.SUBMITTED,
        JobState.RUNNING,
        JobState.SUCCEEDED,
    }
)


@dataclass(frozen=True)
class Ended:
    """A failure as recorded: the job, and what the log says about it."""

    job: Job
    code: str
    detail: str  # with configured secrets scrubbed
    billed: bool
    refund: bool


@dataclass(frozen=True, kw_only=True)
class Failures:
    store: WorkerStore
    backend: Backend
    notifier: Notifier
    secrets: tuple[str, ...]

    async def record(self, job_id: int, code: str, detail: str, *, billed: bool) -> Ended | None:
        """Move the job to failed, with its quota refunded or charged; None if it had
        already ended. ``billed``: the upstream finished the song, so its cost stays."""
        for secret in self.secrets:  # upstream error texts may echo a key
            detail = detail.replace(secret, "***")
        refund = refunds_quota(code)
        failed = await self.store.transition(
            job_id,
            _UNFINISHED,
            JobState.FAILED,
            now=utcnow(),
            ledger="refund" if refund else "commit",
            error_code=code,
            error_message=detail[:500],
            finished_at=utcnow(),
            detail=code,
            # Nothing to pay for a song the upstream never made, unless the backend bills those.
            **({} if billed or self.backend.bills_failed_jobs else {"cost_usd": 0.0}),
        )
        if failed is None:
            return None
        return Ended(failed, code, detail, billed=billed, refund=refund)

    async def tell(self, ended: Ended) -> None:
        """Log the failure for the operator and tell the chat."""
        failed, code = ended.job, ended.code
        logger.warning(
            "job %s failed: %s (%s); %s, quota %s",
            failed.id,
            code,
            ended.detail[:200],
            f"billed ${failed.cost_usd:.4f}" if ended.billed and failed.cost_usd else "not billed",
            "refunded" if ended.refund else "charged",
        )
        await self.notifier.emit(
            JobEvent(EventKind.FAILED, failed, message=messages.failure_message(code))
        )
