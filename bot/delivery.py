"""One delivery pipeline: a finished song made fit for a platform, which its adapter only posts.

Every platform delivers the same way: size the track to the platform's upload limit (an MP3,
tagged, with its pictures: :func:`bot.audio.prepare_for_upload`), post it, and if the platform
refuses the file as too large after all, aim lower and post again; the files made on the way
go in every case. What differs is only what the adapter says through :class:`TrackPoster`: its
limits (:class:`UploadLimits`), the song's tags, how a post goes, and what follows it.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from bot.audio import PreparedTrack, Thumbnail, TrackTags, prepare_for_upload
from bot.domain import Job, TakeState
from bot.ports import DeliveryReceipt, TrackFile

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class UploadLimits:
    """What a platform takes with one track, as its adapter declares it."""

    max_bytes: int  # the audio file, tags and cover included
    thumbnail: Thumbnail | None = None  # the JPEG it shows with a track, if it takes one
    attempts: int = 1  # posts tried while the platform refuses the file as too large


def tracks_of(job: Job) -> list[TrackFile]:
    """The job's finished takes on disk, in take order (a one-take job: its audio)."""
    if not job.takes:
        if job.audio_path is None:
            return []
        return [TrackFile(1, job.seed_used, Path(job.audio_path))]
    return [
        TrackFile(take.number, take.seed, Path(take.audio_path))
        for take in job.takes
        if take.state == TakeState.READY and take.audio_path is not None
    ]


class TrackPoster(Protocol):
    """What a chat adapter does in a delivery: only the platform's part."""

    platform: str

    def upload_limits(self, job: Job) -> UploadLimits:
        """The limits that hold for this job's chat now."""
        ...

    def track_tags(self, job: Job) -> TrackTags: ...

    async def post_track(self, job: Job, track: PreparedTrack, limit: int) -> DeliveryReceipt:
        """Post ``track`` (made to fit ``limit`` bytes) to the job's chat."""
        ...

    def too_large(self, error: Exception) -> bool:
        """Did the platform refuse the post because the file was too big for it?"""
        ...

    async def posted(self, job: Job, receipt: DeliveryReceipt) -> None:
        """The track is the song's message now (e.g. its status card goes)."""
        ...


class DeliveryPipeline:
    """The shared skeleton of :meth:`bot.ports.Delivery.deliver`, for one platform."""

    def __init__(self, poster: TrackPoster) -> None:
        self._poster = poster

    async def deliver(self, job: Job, tracks: Sequence[TrackFile]) -> DeliveryReceipt:
        poster = self._poster
        limits = poster.upload_limits(job)
        tags = poster.track_tags(job)
        folder = tracks[0].path.parent
        workdir = Path(tempfile.mkdtemp(prefix=f".{poster.platform}-{job.id}-", dir=folder))
        try:
            # Until a platform posts several takes in one message, each goes as its own
            # track; the first one's message is the song's.
            receipts = [await self._post(job, t.path, limits, tags, workdir) for t in tracks]
        finally:
            # Not in a thread: once the platform has the track, nothing may queue behind
            # other songs' encodes before the receipt goes back to be recorded (a crash in
            # between posts the track again after a restart). A few small files go at once.
            shutil.rmtree(workdir, ignore_errors=True)
        await poster.posted(job, receipts[0])
        return receipts[0]

    async def _post(
        self, job: Job, audio: Path, limits: UploadLimits, tags: TrackTags, workdir: Path
    ) -> DeliveryReceipt:
        poster = self._poster
        limit = limits.max_bytes
        attempt = 1
        while True:
            prepared = await asyncio.to_thread(
                prepare_for_upload,
                audio,
                limit_bytes=limit,
                tags=tags,
                workdir=workdir,
                thumbnail=limits.thumbnail,
            )
            try:
                return await poster.post_track(job, prepared, limit)
            except Exception as exc:
                if attempt >= limits.attempts or not poster.too_large(exc):
                    raise
                attempt += 1
                # The limit we were told was too generous: aim well below what failed.
                limit = prepared.size * 3 // 4
                logger.warning("job %s: upload refused as too large; trying %d", job.id, limit)
