"""One delivery pipeline: a finished song made fit for a platform, which its adapter only posts.

Every platform delivers the same way: size each take to the platform's upload limit (an MP3,
tagged, with its pictures: :func:`bot.audio.prepare_for_upload`), post them in one message,
and if the platform refuses the files as too large after all, aim lower and post again; the
files made on the way go in every case. Where a platform limits a message's files together
(Discord), each of several takes gets an equal share of that limit. What differs is only what
the adapter says through :class:`TrackPoster`: its limits (:class:`UploadLimits`), the song's
tags, how a post goes (one take as a track, several together), and what follows it.
"""

from __future__ import annotations

import asyncio
import dataclasses
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
    """What a platform takes with one message, as its adapter declares it."""

    max_bytes: int  # each audio file, tags and cover included
    thumbnail: Thumbnail | None = None  # the JPEG it shows with a track, if it takes one
    attempts: int = 1  # posts tried while the platform refuses the files as too large
    # All of one message's files together (Discord: a request's size); None: each file's
    # limit is the only one (Telegram: each audio of an album).
    per_message: int | None = None

    def per_take(self, takes: int) -> int:
        """What each of ``takes`` files posted in one message may have: an equal share."""
        if self.per_message is None:
            return self.max_bytes
        return min(self.max_bytes, self.per_message // max(takes, 1))


@dataclass(frozen=True)
class FittedTake:
    """One take made fit for the platform, with what its label needs."""

    take: int  # 1-based
    seed: int | None
    track: PreparedTrack


def take_title(title: str, take: int) -> str:
    """A take's title where several are posted together: the song's, and which take."""
    return f"{title} — take {take}"


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

    def track_tags(self, job: Job) -> TrackTags:
        """The song's tags (its seed: ``job.seed_used``, set to each take's for its file)."""
        ...

    async def post_track(self, job: Job, track: PreparedTrack, limit: int) -> DeliveryReceipt:
        """Post ``track`` (made to fit ``limit`` bytes) to the job's chat: a one-take song."""
        ...

    async def post_takes(
        self, job: Job, takes: Sequence[FittedTake], limit: int
    ) -> DeliveryReceipt:
        """Post several takes (each made to fit ``limit`` bytes) as one message."""
        ...

    def too_large(self, error: Exception) -> bool:
        """Did the platform refuse the post because the files were too big for it?"""
        ...

    async def posted(self, job: Job, receipt: DeliveryReceipt) -> None:
        """The song is in the chat now (e.g. its status card goes)."""
        ...


class DeliveryPipeline:
    """The shared skeleton of :meth:`bot.ports.Delivery.deliver`, for one platform."""

    def __init__(self, poster: TrackPoster) -> None:
        self._poster = poster

    async def deliver(self, job: Job, tracks: Sequence[TrackFile]) -> DeliveryReceipt:
        """Post ``tracks`` (the job's finished takes, at least one) as one message."""
        poster = self._poster
        limits = poster.upload_limits(job)
        limit = limits.per_take(len(tracks))
        folder = tracks[0].path.parent
        workdir = Path(tempfile.mkdtemp(prefix=f".{poster.platform}-{job.id}-", dir=folder))
        try:
            attempt = 1
            while True:
                # The takes are encoded side by side (each in a thread of its own).
                fitted = await asyncio.gather(
                    *(self._fit(job, track, limit, limits, workdir) for track in tracks)
                )
                try:
                    if len(fitted) == 1:
                        (one,) = fitted
                        as_take = _with_seed(job, one.seed)
                        receipt = await poster.post_track(as_take, one.track, limit)
                    else:
                        receipt = await poster.post_takes(job, fitted, limit)
                    break
                except Exception as exc:
                    if attempt >= limits.attempts or not poster.too_large(exc):
                        raise
                    attempt += 1
                    # The limit we were told was too generous: aim well below what failed.
                    limit = max(take.track.size for take in fitted) * 3 // 4
                    logger.warning("job %s: upload refused as too large; trying %d", job.id, limit)
        finally:
            # Not in a thread: once the platform has the track, nothing may queue behind
            # other songs' encodes before the receipt goes back to be recorded (a crash in
            # between posts the track again after a restart). A few small files go at once.
            shutil.rmtree(workdir, ignore_errors=True)
        await poster.posted(job, receipt)
        return receipt

    async def _fit(
        self, job: Job, track: TrackFile, limit: int, limits: UploadLimits, workdir: Path
    ) -> FittedTake:
        """``track`` made to fit ``limit`` bytes, tagged with its own seed (and, where there
        are several, its take number in the title)."""
        tags = self._poster.track_tags(_with_seed(job, track.seed))
        if len(job.takes) > 1:
            tags = dataclasses.replace(tags, title=take_title(tags.title, track.take))
        prepared = await asyncio.to_thread(
            prepare_for_upload,
            track.path,
            limit_bytes=limit,
            tags=tags,
            workdir=workdir / f"take-{track.take}",  # the takes' work files apart
            thumbnail=limits.thumbnail,
        )
        return FittedTake(track.take, track.seed, prepared)


def _with_seed(job: Job, seed: int | None) -> Job:
    """The job as one take of it reads: with that take's seed."""
    return job if seed is None else dataclasses.replace(job, seed_used=seed)
