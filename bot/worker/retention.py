"""The retention sweep: delivered audio and old job events past their keep time."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

from bot import audio
from bot.clock import utcnow
from bot.stores import WorkerStore
from bot.worker.config import WorkerConfig

logger = logging.getLogger(__name__)


async def sweep(store: WorkerStore, config: WorkerConfig) -> None:
    """Delete what is past retention; undelivered audio is kept whatever its age."""
    keep = {Path(p) for p in await store.kept_audio()}
    removed = await asyncio.to_thread(
        audio.remove_expired_audio,
        config.audio_dir,
        older_than=config.audio_retention,
        keep=keep,
    )
    if removed:
        logger.info("removed %d audio file(s) past retention", len(removed))
    pruned = await store.prune_events(before=utcnow() - config.event_retention)
    if pruned:
        logger.info("removed %d job event(s) past retention", pruned)
