"""The core's delivery pipeline with a poster of the test's own: what every platform shares."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest
from PIL import Image

from bot.audio import PreparedTrack, Thumbnail, TrackTags, tags_for
from bot.delivery import DeliveryPipeline, FittedTake, UploadLimits
from bot.domain import (
    Destination,
    GenerationRequest,
    Job,
    JobId,
    JobState,
    Take,
    TakeState,
    UserId,
)
from bot.ports import DeliveryReceipt, TrackFile
from tests.audio.conftest import write_audio

NOW = datetime(2026, 1, 1, tzinfo=UTC)


class TooLarge(Exception):
    pass


class Poster:
    """Refuses the first ``refusals`` posts as too large; records what it was given."""

    platform = "test"

    def __init__(self, limits: UploadLimits, refusals: int = 0) -> None:
        self.limits = limits
        self.refusals = refusals
        self.tried: list[tuple[PreparedTrack, int]] = []
        self.albums: list[tuple[list[FittedTake], int]] = []  # several takes, as posted
        self.posted_receipts: list[DeliveryReceipt] = []
        self.thumbnails: list[tuple[int, int]] = []  # sizes, read while the files exist

    def upload_limits(self, job: Job) -> UploadLimits:
        return self.limits

    def track_tags(self, job: Job) -> TrackTags:
        return tags_for(job.request.tags, 7, 4.0, None)

    def too_large(self, error: Exception) -> bool:
        return isinstance(error, TooLarge)

    async def post_track(self, job: Job, track: PreparedTrack, limit: int) -> DeliveryReceipt:
        assert track.path.exists() and track.size <= limit
        self.tried.append((track, limit))
        if track.thumbnail_jpg is not None:
            with Image.open(track.thumbnail_jpg) as image:
                assert image.format == "JPEG"
                self.thumbnails.append(image.size)
        if len(self.tried) <= self.refusals:
            raise TooLarge
        return DeliveryReceipt(f"m{len(self.tried)}")

    async def post_takes(
        self, job: Job, takes: Sequence[FittedTake], limit: int
    ) -> DeliveryReceipt:
        assert all(take.track.path.exists() and take.track.size <= limit for take in takes)
        self.albums.append((list(takes), limit))
        if len(self.albums) <= self.refusals:
            raise TooLarge
        return DeliveryReceipt(f"album{len(self.albums)}")

    async def posted(self, job: Job, receipt: DeliveryReceipt) -> None:
        self.posted_receipts.append(receipt)


def a_job() -> Job:
    return Job(
        id=JobId(1),
        user_id=UserId(1),
        request=GenerationRequest("lo-fi, chill", "", 4, 7),
        destination=Destination("test", "chat", "user"),
        state=JobState.SUCCEEDED,
        backend="acestep",
        created_at=NOW,
        updated_at=NOW,
    )


async def test_a_track_refused_as_too_large_is_fitted_smaller_and_posted(tmp_path: Path) -> None:
    source = write_audio(tmp_path / "song.mp3", 4.0, "mp3", kbps=192)
    poster = Poster(UploadLimits(8_000_000, attempts=2), refusals=1)

    receipt = await DeliveryPipeline(poster).deliver(a_job(), [TrackFile(1, 7, source)])

    assert receipt == DeliveryReceipt("m2") and poster.posted_receipts == [receipt]
    (first, first_limit), (second, second_limit) = poster.tried
    assert first_limit == 8_000_000 and second_limit == first.size * 3 // 4
    assert second.size <= second_limit and second.transcoded
    assert first.thumbnail_jpg is None  # nobody asked for one
    assert sorted(p.name for p in tmp_path.iterdir()) == ["song.mp3"]  # the work is gone


async def test_the_platform_thumbnail_is_made_and_a_last_refusal_is_raised(
    tmp_path: Path,
) -> None:
    source = write_audio(tmp_path / "song.mp3", 4.0, "mp3")
    poster = Poster(UploadLimits(8_000_000, thumbnail=Thumbnail(64, 20_000)), refusals=1)

    with pytest.raises(TooLarge):
        await DeliveryPipeline(poster).deliver(a_job(), [TrackFile(1, 7, source)])

    assert len(poster.tried) == 1 and poster.thumbnails == [(64, 64)]
    assert poster.posted_receipts == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["song.mp3"]


async def test_several_takes_share_a_message_limit_and_are_posted_together(
    tmp_path: Path,
) -> None:
    sources = [write_audio(tmp_path / f"take-{n}.mp3", 4.0, "mp3", kbps=192) for n in (1, 2, 3)]
    takes = tuple(
        Take(n, TakeState.READY, 10 * n, str(path), "mp3", 4.0)
        for n, path in enumerate(sources, start=1)
    )
    job = replace(a_job(), takes=takes)
    # Each file may have 8 MB, but the message only 600 kB: 200 kB a take.
    poster = Poster(UploadLimits(8_000_000, attempts=2, per_message=600_000), refusals=1)
    tracks = [
        TrackFile(take.number, take.seed, path) for take, path in zip(takes, sources, strict=True)
    ]

    receipt = await DeliveryPipeline(poster).deliver(job, tracks)

    assert receipt == DeliveryReceipt("album2") and poster.posted_receipts == [receipt]
    (first, first_limit), (second, second_limit) = poster.albums
    assert first_limit == 200_000  # the share, before any refusal
    assert second_limit == max(take.track.size for take in first) * 3 // 4
    assert [(take.take, take.seed) for take in second] == [(1, 10), (2, 20), (3, 30)]
    assert poster.tried == []  # one message for all, never a track of its own
    assert sorted(p.name for p in tmp_path.iterdir()) == [p.name for p in sources]
