"""Route job events to the chat platform a job came from."""

from __future__ import annotations

import logging
from collections.abc import Mapping

from bot.logs import job_context
from bot.ports import Delivery, JobEvent

logger = logging.getLogger(__name__)


class Notifier:
    def __init__(self, deliveries: Mapping[str, Delivery]) -> None:
        self._deliveries = dict(deliveries)

    @property
    def platforms(self) -> frozenset[str]:
        return frozenset(self._deliveries)

    def delivery_for(self, platform: str) -> Delivery | None:
        return self._deliveries.get(platform)

    def add(self, delivery: Delivery) -> None:
        self._deliveries[delivery.platform] = delivery

    async def emit(self, event: JobEvent) -> None:
        """Best effort: a chat that can't show progress must not stop the job."""
        delivery = self._deliveries.get(event.job.destination.platform)
        if delivery is None:
            return
        destination = event.job.destination
        try:
            # The adapter's lines about this event name the job and where it goes.
            with job_context(
                event.job.id,
                platform=destination.platform,
                chat=destination.chat_id,
                user=destination.user_id,
            ):
                await delivery.on_event(event)
        except Exception:
            logger.exception("job %s: %s event not shown", event.job.id, event.kind)
