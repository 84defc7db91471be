"""A user's finished songs: pages of them (``/history``), one posted again (``/show``), and a
new song made from one (a variation: a reply ``/song`` on Telegram, ✏️ on Discord).

The adapters reach these through :class:`~bot.service.GenerationService` (``history``,
``show``, ``variation``); the rules are here, once for both platforms:

- Finished songs are listed (delivered, or made and about to be); delivered ones are shown.
- A song is shown to its owner anywhere on its platform; to anyone else only in the chat
  it was made in, and only where that chat lets others press its buttons
  (``ChatRules.others_may_press``). Song ids are counted up, so a song that is not yours
  is "not found" just like one that doesn't exist: trying numbers reveals nothing.
- Showing a song posts its stored audio through the platform's own delivery (the same
  pipeline as the first time) and changes nothing on the job: no state, no quota, no cost.
- A variation keeps its parent's tags, lyrics, duration, seed (its kept take's, when it
  made several) and controls unless the request gives them, is one take unless it asks for
  more, and is a new song in every other way (its owner's quota, the chat's rules); it
  records its parent.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, cast

from bot.clock import utcnow
from bot.controls import SongFields
from bot.delivery import tracks_of
from bot.domain import Destination, GenerationRequest, Job, JobId, JobState, Limits, TakeState
from bot.errors import AudioError, DeliveryRefused, DeliveryUnavailable

if TYPE_CHECKING:
    from bot.service import Accepted, Done, GenerationService, Refused, Requester

logger = logging.getLogger(__name__)

FINISHED = frozenset({JobState.DELIVERED, JobState.SUCCEEDED})
PAGE_SIZE = 10
MAX_PAGE_SIZE = 50


def not_found(job_id: int) -> str:
    return f"I can't find song #{job_id} — /history lists yours."


def not_finished(job_id: int) -> str:
    return f"Song #{job_id} isn't finished yet; it will be posted when it is."


def did_not_finish(job_id: int, state: JobState) -> str:
    return f"Song #{job_id} was {state.value}, so there is nothing to show; /song makes a new one."


def audio_gone(job_id: int) -> str:
    return (
        f"Song #{job_id}'s audio isn't kept any more (old songs are cleared away), so I can't "
        "post it again; I can make it again with the same seed."
    )


def could_not_post(job_id: int) -> str:
    return f"I couldn't post song #{job_id} just now; please try again in a moment."


@dataclass(frozen=True)
class HistoryPage:
    """One page of a user's finished songs, newest first."""

    jobs: list[Job]
    page: int  # 1-based; within 1..pages
    pages: int  # at least 1, also when there are no songs
    total: int  # songs on every page
    page_size: int

    @property
    def has_previous(self) -> bool:
        return self.page > 1

    @property
    def has_next(self) -> bool:
        return self.page < self.pages


class Library:
    """The service's reads and re-uses of finished songs (built per call, holds nothing)."""

    def __init__(self, service: GenerationService) -> None:
        self._service = service

    async def history(
        self, requester: Requester, *, page: int = 1, page_size: int = PAGE_SIZE
    ) -> HistoryPage:
        """Page ``page`` of the requester's finished songs (a page past the last is the last)."""
        size = min(max(page_size, 1), MAX_PAGE_SIZE)
        store = self._service.store
        user_id = await store.find_user(requester.platform, requester.user_id)
        if user_id is None:
            return HistoryPage([], 1, 1, 0, size)
        wanted = max(page, 1)
        found = await store.page_of_jobs(
            user_id, states=FINISHED, offset=(wanted - 1) * size, limit=size
        )
        pages = max(1, math.ceil(found.total / size))
        if wanted > pages:  # the list shrank, or a typed page number is too high
            wanted = pages
            found = await store.page_of_jobs(
                user_id, states=FINISHED, offset=(wanted - 1) * size, limit=size
            )
        return HistoryPage(found.jobs, wanted, pages, found.total, size)

    async def visible(self, job_id: int, requester: Requester, chat_id: str) -> Job | None:
        """The job, if the requester may see it from ``chat_id``; None hides the difference
        between "not yours" and "no such song"."""
        job = await self._service.get_job(job_id)
        if job is None or job.destination.platform != requester.platform:
            return None
        if job.destination.user_id == requester.user_id:
            return job
        if job.destination.chat_id != chat_id:
            return None
        rules = await self._service.chat_rules(job.destination.platform, job.destination.scope)
        return job if rules.others_may_press else None

    async def show(
        self, job_id: int, requester: Requester, destination: Destination
    ) -> Done | Refused:
        """Post a finished song again in ``destination``'s chat, with its card and buttons.

        The job posted is the stored one moved to that chat, its adapter context updated
        with ``destination.context`` (the adapter sets there what the new post needs: the
        message to answer, and None for what must not be reused, such as an old status
        card); the stored job itself is not changed."""
        from bot.service import Done, Refused

        job = await self.visible(job_id, requester, destination.chat_id)
        if job is None:
            return Refused(not_found(job_id), "not_found")
        if job.state in (JobState.FAILED, JobState.CANCELLED):
            return Refused(did_not_finish(job_id, job.state), "not_finished")
        if job.state != JobState.DELIVERED:  # made but not posted yet: the worker will
            return Refused(not_finished(job_id), "in_progress")
        delivery = self._service.notifier.delivery_for(job.destination.platform)
        if delivery is None:
            return Refused(could_not_post(job_id), "unavailable")
        tracks = tracks_of(job)  # every take that was made: shown as first posted
        if not tracks or not all(track.path.is_file() for track in tracks):
            return Refused(audio_gone(job_id), "swept")
        shown = replace(
            job,
            destination=replace(
                job.destination,
                chat_id=destination.chat_id,
                scope_id=destination.scope_id,
                context={**job.destination.context, **destination.context},
            ),
        )
        try:
            await delivery.deliver(shown, tracks)
        except (FileNotFoundError, AudioError):  # swept while we were posting it
            return Refused(audio_gone(job_id), "swept")
        except (DeliveryRefused, DeliveryUnavailable) as error:
            logger.info("job %s: could not be shown again: %s", job_id, error)
            return Refused(could_not_post(job_id), "unavailable")
        logger.info(
            "job %s shown again in %s:%s for %s",
            job_id,
            destination.platform,
            destination.chat_id,
            requester.user_id,
        )
        return Done(job, f"Song #{job_id} again.")

    async def variation(
        self,
        parent_id: int,
        requester: Requester,
        destination: Destination,
        overrides: SongFields,
        *,
        idempotency_key: str | None = None,
    ) -> Accepted | Refused:
        """A new song from ``parent_id``: its fields, less what ``overrides`` gives (fields
        as a user typed them; blank ones are not given)."""
        from bot.service import Refused

        parent = await self._service.get_job(parent_id)
        if parent is None or parent.destination.platform != requester.platform:
            return Refused(not_found(parent_id), "not_found")
        if parent.destination.user_id != requester.user_id:
            rules = await self._service.chat_rules(
                parent.destination.platform, parent.destination.scope
            )
            if not rules.others_may_press:
                return Refused(
                    "That's someone else's song; ask for your own with /song.", "forbidden"
                )
        request = self._service.validate(**inherited(parent, overrides, self._service.limits))
        return await self._service.submit(
            requester,
            destination,
            request,
            idempotency_key=idempotency_key,
            parent_id=parent.id,
        )

    async def keep_take(self, job_id: JobId, take: int, presser: Requester) -> Done | Refused:
        """▶ Keep N: the take history, 🎲 and 🔁 build on (who may press as for a re-roll).
        The job's own audio and seed become that take's, so whatever reads "the track" does."""
        from bot.service import Done, Refused

        job = await self._service.store.get(job_id)
        if job is None or job.destination.platform != presser.platform:
            return Refused("I can't find that song any more.", "not_found")
        where = (job.destination.platform, job.destination.scope)
        mine = job.destination.user_id == presser.user_id
        if not mine and not (await self._service.chat_rules(*where)).others_may_press:
            return Refused("That's someone else's song; ask for your own with /song.", "forbidden")
        chosen = next((t for t in job.takes if t.number == take), None)
        if chosen is None or chosen.state != TakeState.READY:
            return Refused(f"That song has no take {take} to keep.", "not_found")
        main = {"audio_path": chosen.audio_path, "audio_format": chosen.audio_format}
        kept = await self._service.store.update_fields(
            job.id, {JobState.SUCCEEDED, JobState.DELIVERED}, now=utcnow(), kept_take=take,
            audio_duration=chosen.audio_duration, seed_used=chosen.seed, **main,
        )  # fmt: skip
        if kept is None:
            return Refused("That song can't be changed any more.", "not_found")
        return Done(kept, f"Kept take {take}: 🎲 and 🔁 start from it now.")

    async def reroll(
        self,
        job_id: int,
        requester: Requester,
        *,
        same_seed: bool,
        destination: Destination | None = None,
        idempotency_key: str | None = None,
        allow_others: bool = False,
    ) -> Accepted | Refused:
        """A new take of an earlier job (🎲 a new seed, 🔁 the same one), in its chat unless
        ``destination`` says where; an edit runs again on its source (bot/edits.py)."""
        from bot.edits import Editing
        from bot.service import Refused

        service = self._service
        original = await service.get_job(job_id)
        if original is None or original.destination.platform != requester.platform:
            return Refused("I can't find that song any more.", "not_found")
        if not allow_others:
            where = (original.destination.platform, original.destination.scope)
            allow_others = (await service.chat_rules(*where)).others_may_press
        if not allow_others and original.destination.user_id != requester.user_id:
            return Refused("That's someone else's song; ask for your own with /song.", "forbidden")
        seed = original.seed_used if original.seed_used is not None else original.request.seed
        # Of several takes, the one its owner kept (else the first) is what a new take is of.
        kept = next((t for t in original.takes if t.number == (original.kept_take or 1)), None)
        if kept is not None and kept.seed is not None:
            seed = kept.seed
        if same_seed and (seed is None or seed < 0):
            return Refused("That song's seed isn't known yet; try again when it's done.")
        seed = seed if same_seed and seed is not None else -1
        target = destination or Destination(
            platform=original.destination.platform,
            chat_id=original.destination.chat_id,
            user_id=requester.user_id,
            scope_id=original.destination.scope_id,
        )
        if original.request.edit is not None:
            return await Editing(service).rerun(
                original, requester, target, seed=seed, idempotency_key=idempotency_key
            )
        request = GenerationRequest(
            tags=original.request.tags,
            lyrics=original.request.lyrics,
            duration=min(original.request.duration, service.limits.max_duration),
            seed=seed,
            controls=original.request.controls,  # the tempo, key and the rest it was made with
        )
        return await service.submit(
            requester, target, request, idempotency_key=idempotency_key, parent_id=original.id
        )


def inherited(parent: Job, overrides: SongFields, limits: Limits) -> SongFields:
    """The fields of a variation: each one ``overrides`` gives, else the parent's."""
    asked = parent.request
    controls = asked.controls
    seed = parent.seed_used if parent.seed_used is not None else asked.seed
    kept = next((t for t in parent.takes if t.number == (parent.kept_take or 1)), None)
    if kept is not None and kept.seed is not None:  # several takes: the kept one's seed
        seed = kept.seed
    fields: SongFields = {
        "tags": asked.tags,
        "lyrics": asked.lyrics,
        "duration": min(asked.duration, limits.max_duration),
        "seed": seed,
        "bpm": controls.bpm,
        "key": controls.key_scale,
        "time_signature": controls.time_signature,
        "language": controls.vocal_language,
    }
    # A described parent whose words the model never wrote down: describe it again.
    if not asked.tags and asked.describe and _blank(overrides.get("tags")):
        fields["describe"] = asked.describe
    given = {name: value for name, value in overrides.items() if not _blank(value)}
    return cast(SongFields, {**fields, **given})


def _blank(value: object) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())
