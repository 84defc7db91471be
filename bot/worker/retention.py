"""The retention sweep: delivered audio, the sources of ended edits and old job events past
their keep time."""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta
from pathlib import Path

from bot import audio
from bot.clock import utcnow
from bot.stores import WorkerStore
from bot.worker.config import WorkerConfig

logger = logging.getLogger(__name__)

# A user's upload that never became a job's source (the bot stopped while checking it): no
# check takes this long, so one older than this is a leftover.
INCOMING_RETENTION = timedelta(days=1)


async def sweep(store: WorkerStore, config: WorkerConfig) -> None:
    """Delete what is past retention; undelivered audio is kept whatever its age."""
    keep = {Path(p) for p in await store.kept_audio()}
    removed = await asyncio.to_thread(
        audio.remove_expired_audio,
        config.audio_dir,
        older_than=config.audio_retention,
        keep=keep,
    )
    if config.sources_dir is not None:
        # An edit's source outlives its job by the audio's retention (the same `keep`: a
        # job not ended keeps its source, however old the file).
        removed += await asyncio.to_thread(
            audio.remove_expired_audio,
            config.sources_dir / "incoming",
            older_than=INCOMING_RETENTION,
            keep=(),
        )
        removed += await asyncio.to_thread(
            audio.remove_expired_audio,
            config.sources_dir,
            older_than=config.audio_retention,
            keep=keep,
        )
    if removed:
        logger.info("removed %d audio file(s) past retention", len(removed))
    pruned = await store.prune_events(before=utcnow() - config.event_retention)
    if pruned:
        logger.info("removed %d job event(s) past retention", pruned)
