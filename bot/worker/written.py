"""A song from one sentence: what the backend's language model wrote becomes the job's own.

The finishing phase calls :func:`record_written` once a describe job's audio is in: the tags,
lyrics, length and musical controls the model chose replace the sentence-only request, so
the track card shows them and a variation or re-roll builds on them. Best effort: a song
whose text could not be recorded is still delivered (with its description as its card).
"""

from __future__ import annotations

import logging

from bot.clock import utcnow
from bot.controls import BPM_MAX, BPM_MIN, TIME_SIGNATURES, VOCAL_LANGUAGES, canonical_key
from bot.domain import Controls, Job, JobState
from bot.errors import StoreUnavailable
from bot.ports import RemoteStatus, WrittenSong
from bot.stores import JobStore

logger = logging.getLogger(__name__)

# Where a job is while it finishes (the takes' own finishing may run after SUCCEEDED).
_FINISHING = frozenset({JobState.SUBMITTED, JobState.RUNNING, JobState.SUCCEEDED})


def written_of(status: RemoteStatus) -> WrittenSong | None:
    """What the model wrote, from the first take that says (a batch shares one text)."""
    return next((out.written for out in status.outputs if out.written is not None), None)


def controls_from(written: WrittenSong, asked: Controls) -> Controls:
    """The controls the model chose, where they are ones we could ask for ourselves; what the
    user gave wins (the server keeps it too)."""
    bpm = written.bpm if written.bpm is not None and BPM_MIN <= written.bpm <= BPM_MAX else None
    key = canonical_key(written.key_scale) if written.key_scale else None
    beats = written.time_signature if written.time_signature in TIME_SIGNATURES else None
    language = written.vocal_language if written.vocal_language in VOCAL_LANGUAGES else None
    return Controls(
        bpm=asked.bpm if asked.bpm is not None else bpm,
        key_scale=asked.key_scale if asked.key_scale is not None else key,
        time_signature=asked.time_signature if asked.time_signature is not None else beats,
        vocal_language=asked.vocal_language if asked.vocal_language is not None else language,
    )


async def record_written(store: JobStore, job: Job, status: RemoteStatus) -> Job:
    """``job`` with what the model wrote recorded, or ``job`` as it was when it is no
    describe job, the model said nothing, or the store could not take it now."""
    written = written_of(status)
    if not job.request.describe or written is None:
        return job
    duration = round(written.duration) if written.duration else job.request.duration
    try:
        recorded = await store.record_written(
            job.id,
            _FINISHING,
            tags=written.tags,
            lyrics=written.lyrics or job.request.lyrics,
            duration=duration,
            controls=controls_from(written, job.request.controls),
            now=utcnow(),
        )
    except StoreUnavailable as exc:
        logger.warning("job %s: what the model wrote was not recorded (%s)", job.id, exc.kind)
        return job
    return recorded if recorded is not None else job
