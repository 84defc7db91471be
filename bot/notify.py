"""Route job events to the chat platform a job came from, and let watchers (the metrics)
see them."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Protocol

from bot.domain import Job
from bot.logs import job_context
from bot.ports import Delivery, JobEvent, TrackFile

logger = logging.getLogger(__name__)


class Watcher(Protocol):
    """Sees what happens to jobs without taking part (bot/metrics.py). Called inline: it
    must be quick and must not raise (what it raises is logged and ignored)."""

    def on_event(self, event: JobEvent) -> None:
        """An event about to be shown in the chat (only where this process has the chat's
        delivery, so across processes each event is seen once: where the chat is told)."""
        ...

    def on_delivered(self, job: Job, tracks: Sequence[TrackFile], seconds: float) -> None:
        """The chat has the job's takes (the job now DELIVERED); posting took ``seconds``."""
        ...

    def on_refused(self, code: str) -> None:
        """A new song was refused by the quota policy (``Refused.code``)."""
        ...


class Notifier:
    def __init__(
        self,
        deliveries: Mapping[str, Delivery],
        watchers: Iterable[Watcher] = (),
        *,
        elsewhere: Callable[[JobEvent], None] | None = None,
    ) -> None:
        self._deliveries = dict(deliveries)
        self._watchers = tuple(watchers)
        # An event for a platform served by another process (`--role adapters`) goes to it
        # this way (bot/relay.py, forward_events); quick, and never raises.
        self._elsewhere = elsewhere

    @property
    def platforms(self) -> frozenset[str]:
        return frozenset(self._deliveries)

    def delivery_for(self, platform: str) -> Delivery | None:
        return self._deliveries.get(platform)

    def add(self, delivery: Delivery) -> None:
        self._deliveries[delivery.platform] = delivery

    def watch(self, watcher: Watcher) -> None:
        """Another watcher, from now on (the jam clock: a jam's take ended)."""
        self._watchers = (*self._watchers, watcher)

    async def emit(self, event: JobEvent) -> None:
        """Best effort: a chat that can't show progress must not stop the job."""
        delivery = self._deliveries.get(event.job.destination.platform)
        if delivery is None:
            if self._elsewhere is not None:
                self._elsewhere(event)
            return
        self._watch(lambda watcher: watcher.on_event(event))
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

    def delivered(self, job: Job, tracks: Sequence[TrackFile], seconds: float) -> None:
        self._watch(lambda watcher: watcher.on_delivered(job, tracks, seconds))

    def refused(self, code: str) -> None:
        self._watch(lambda watcher: watcher.on_refused(code))

    def _watch(self, call: Callable[[Watcher], None]) -> None:
        for watcher in self._watchers:
            try:
                call(watcher)
            except Exception:  # a watcher is never worth a job
                logger.exception("watcher %r failed", watcher)
