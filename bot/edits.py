"""Edits of a track: extend it, remix it, repaint a part (docs/edits.md).

The adapters hand :meth:`GenerationService.edit` an :class:`EditAsk` (what a user typed);
:class:`Editing` (built per call, like :class:`bot.library.Library`) turns it into a
request with an :class:`~bot.domain.Edit` and queues it through ``service.submit``, so an
edit meets the same blocked words (on its new tags and lyrics), chat rules, quota, budget,
queue and delivery as a song. The rules, once for both platforms:

- The source is one of our tracks (``of_job``; none named: the requester's latest finished
  song in this chat), seen by the same rules as /show (``Library.visible``), or a user's
  own audio (:mod:`bot.sources`). A track's audio is copied for the job (a hard link), so
  the track's own retention can't take it while the edit waits.
- Own audio is a chat setting (``ChatRules.own_audio``): when not set, on in a one-to-one
  chat with the bot and off in groups. Whether the chat is one-to-one is the adapter's to
  say, per call, in ``Requester.private_chat`` (Telegram: a private chat; Discord: a DM):
  the Destination is stored with the job, and this is about the request, not the job.
- Only the edits the backend offers now (``Capabilities.edits``) are taken; another gets a
  sentence naming what is missing.
- Times are ``1:05`` or seconds. Extend adds 30 s by default, after the end (``at=start``:
  before the start); the whole result stays within ``MAX_EXTENDED_DURATION`` and the
  backend's longest song. Remix strength is 0..1 (0.5). A repaint's section lies within
  the source.
- Tags and lyrics not given are the parent track's (own audio has none: tags are needed).
  An extend or repaint keeps the parent's musical controls; a remix, a new style, does not.
- Quota and cost count the seconds the job generates (``request.duration``): the added
  seconds of an extend, the whole source for a remix or repaint. One take.
- A re-roll of an edit runs the same edit again on the same source (a copy of its own),
  while that source is still kept. A user's own audio counts as allowed then too: the chat
  allowed it when it was sent, and nothing new is sent now.
"""

from __future__ import annotations

import math
import re
import secrets
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from bot import messages
from bot.delivery import tracks_of
from bot.domain import (
    NO_CONTROLS,
    Destination,
    Edit,
    GenerationRequest,
    Invalid,
    Job,
    JobState,
    Task,
)
from bot.library import FINISHED, did_not_finish, not_finished, not_found
from bot.quotas import Charge
from bot.sources import SourceAudio

if TYPE_CHECKING:
    from bot.service import Accepted, GenerationService, Refused, Requester

DEFAULT_EXTEND_SECONDS = 30
DEFAULT_STRENGTH = 0.5
_TIME = re.compile(r"(?:([0-9]{1,3}):([0-5][0-9])|([0-9]{1,5}))(\.[0-9]{1,3})?s?")
_NOUN = {Task.EXTEND: "extending", Task.REMIX: "remixing", Task.REPAINT: "repainting"}
_VERB = {Task.EXTEND: "extend", Task.REMIX: "remix", Task.REPAINT: "repaint"}


@dataclass(frozen=True)
class EditAsk:
    """An edit as a user asked for it: fields as typed (blank strings are not given)."""

    task: Task
    of_job: int | None = None  # the track to edit; None: own_audio, or the latest song here
    own_audio: SourceAudio | None = None  # a user's file, taken in by bot.sources
    seconds: str | int | None = None  # EXTEND: how much longer (default 30 s)
    at: str | None = None  # EXTEND: "end" (default) or "start"
    start: str | None = None  # REPAINT: the section
    end: str | None = None
    strength: str | float | None = None  # REMIX: 0..1, how closely it keeps the source
    tags: str | None = None
    lyrics: str | None = None


def not_offered(task: Task, offered: frozenset[Task]) -> str:
    others = sorted(f"/{_VERB[t]}" for t in offered if t in _VERB)
    also = f" It can {', '.join(others)}." if others else ""
    return (
        f"This bot's music engine can't do {_NOUN[task]} of tracks, so /{_VERB[task]} isn't "
        f"offered here.{also}"
    )


def source_gone(job_id: int) -> str:
    return (
        f"Song #{job_id}'s audio isn't kept any more (old songs are cleared away), so I can't "
        "edit it; /history lists the ones I still have."
    )


NO_SONG_YET = "You have no finished song in this chat to edit yet; make one with /song first."
EDIT_SOURCE_GONE = "The audio that edit started from isn't kept any more, so I can't make it again."


def clock(seconds: float) -> str:
    whole = round(seconds)
    return f"{whole // 60}:{whole % 60:02d}"


def parse_time(value: str | int | float | None) -> float | None:
    """``65``, ``65s``, ``1:05`` or ``1:05.5`` → seconds; None for anything else."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value) if value >= 0 and math.isfinite(value) else None
    found = _TIME.fullmatch((value or "").strip().lower())
    if found is None:
        return None
    minutes, secs, plain, fraction = found.groups()
    whole = int(minutes) * 60 + int(secs) if plain is None else int(plain)
    return whole + float(fraction or 0)


def _blank(value: object) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


@dataclass(frozen=True)
class _Source:
    path: Path
    seconds: float
    own_audio: bool
    parent: Job | None


class Editing:
    """The service's edits (built per call, holds nothing)."""

    def __init__(self, service: GenerationService) -> None:
        self._service = service

    async def may_use_own_audio(self, requester: Requester, destination: Destination) -> bool:
        rules = await self._service.chat_rules(destination.platform, destination.scope)
        return rules.own_audio if rules.own_audio is not None else requester.private_chat

    async def edit(
        self,
        requester: Requester,
        destination: Destination,
        ask: EditAsk,
        *,
        idempotency_key: str | None = None,
        charge: Charge | None = None,  # a jam's take (bot/jams/render.py)
    ) -> Accepted | Refused:
        """Queue ``ask``, or say why not. A user's file in ``ask.own_audio`` is the job's
        from here on: removed when no job takes it."""
        from bot.service import Refused

        own = ask.own_audio
        try:
            outcome = await self._edit(requester, destination, ask, idempotency_key, charge)
        except BaseException:  # the database away, a cancelled request: no job took it
            if own is not None:
                self._service.sources.remove(own.path)
            raise
        if own is not None:
            self._settle_source(Path(own.path), outcome)
        if isinstance(outcome, Invalid):
            return Refused(outcome.message, "invalid")
        return outcome

    async def _edit(
        self,
        requester: Requester,
        destination: Destination,
        ask: EditAsk,
        key: str | None,
        charge: Charge | None = None,
    ) -> Accepted | Refused | Invalid:
        from bot.service import Refused

        if ask.task == Task.SONG:
            return Invalid("That isn't an edit; /song makes a new one.")
        offered = self._service.edits_offered
        if ask.task not in offered:
            return Refused(not_offered(ask.task, offered), "not_offered")
        source = await self._source(requester, destination, ask)
        if not isinstance(source, _Source):
            return source
        request = self._request(ask, source)
        if isinstance(request, Invalid):
            return request
        if source.own_audio:
            return await self._submit(requester, destination, request, key, None, charge)
        # One of our tracks: the job gets a source of its own before it is queued.
        assert source.parent is not None
        name = key or f"edit-{secrets.token_hex(8)}"
        try:
            copied = await self._service.sources.copy_of(source.path, name)
        except FileNotFoundError:  # swept since we looked
            return Refused(source_gone(source.parent.id), "source_gone")
        assert request.edit is not None
        request = replace(request, edit=replace(request.edit, source_path=str(copied)))
        try:
            outcome = await self._submit(
                requester, destination, request, key, source.parent.id, charge
            )
        except BaseException:
            self._service.sources.remove(copied)
            raise
        self._settle_source(copied, outcome)
        return outcome

    async def _submit(
        self,
        requester: Requester,
        destination: Destination,
        request: GenerationRequest,
        key: str | None,
        parent_id: int | None,
        charge: Charge | None = None,
    ) -> Accepted | Refused:
        from bot.domain import JobId

        return await self._service.submit(
            requester,
            destination,
            request,
            idempotency_key=key,
            parent_id=JobId(parent_id) if parent_id is not None else None,
            charge=charge,
        )

    def _settle_source(self, path: Path, outcome: Accepted | Refused | Invalid) -> None:
        """A source no job took is removed (the same event seen twice: its job's is kept)."""
        from bot.service import Accepted

        if isinstance(outcome, Accepted):
            edit = outcome.job.request.edit
            if edit is not None and Path(edit.source_path) == path:
                return
        self._service.sources.remove(path)

    async def _source(
        self, requester: Requester, destination: Destination, ask: EditAsk
    ) -> _Source | Refused | Invalid:
        from bot.service import Refused

        if ask.own_audio is not None:
            if not await self.may_use_own_audio(requester, destination):
                return Refused(messages.OWN_AUDIO_OFF, "own_audio")
            audio = ask.own_audio
            return _Source(Path(audio.path), audio.seconds, True, None)
        if ask.of_job is None:
            parent = await self._latest(requester, destination)
            if parent is None:
                return Refused(NO_SONG_YET, "not_found")
        else:
            from bot.library import Library

            found = await Library(self._service).visible(ask.of_job, requester, destination.chat_id)
            if found is None:
                return Refused(not_found(ask.of_job), "not_found")
            parent = found
        if parent.state in (JobState.FAILED, JobState.CANCELLED):
            return Refused(did_not_finish(parent.id, parent.state), "not_finished")
        if parent.state not in FINISHED:
            return Refused(not_finished(parent.id), "in_progress")
        tracks = tracks_of(parent)
        kept = next((t for t in tracks if t.take == (parent.kept_take or 1)), None)
        if kept is None or not kept.path.is_file():
            return Refused(source_gone(parent.id), "source_gone")
        take = next((t for t in parent.takes if t.number == kept.take), None)
        seconds = take.audio_duration if take is not None else parent.audio_duration
        if seconds is None:  # made before lengths were recorded: what it was asked to be
            edit = parent.request.edit
            seconds = edit.output_seconds if edit is not None else parent.request.duration
        return _Source(kept.path, float(seconds), False, parent)

    async def _latest(self, requester: Requester, destination: Destination) -> Job | None:
        """The requester's newest finished song in this chat (a bare /extend means it)."""
        store = self._service.store
        user_id = await store.find_user(requester.platform, requester.user_id)
        if user_id is None:
            return None
        jobs = await store.list_jobs(user_id=user_id, states=FINISHED, limit=50)
        return next((j for j in jobs if j.destination.chat_id == destination.chat_id), None)

    def _request(self, ask: EditAsk, source: _Source) -> GenerationRequest | Invalid:
        """The edit's own request: its numbers checked, its words the parent's unless given."""
        parent = source.parent
        longest = self._service.max_extended_duration
        if source.seconds > longest + 0.5:
            return Invalid(
                f"That track is {clock(source.seconds)} long; edits here start from tracks of "
                f"at most {clock(longest)}."
            )
        edit = self._edit_of(ask, source, longest)
        if isinstance(edit, Invalid):
            return edit
        tags = ask.tags if not _blank(ask.tags) else parent.request.tags if parent else None
        lyrics = ask.lyrics if not _blank(ask.lyrics) else parent.request.lyrics if parent else ""
        keeps_controls = parent is not None and ask.task != Task.REMIX
        controls = parent.request.controls if keeps_controls and parent else NO_CONTROLS
        # The controls go through the same check as a song's (their words may count against
        # the tags' length where the backend reads them from the tags).
        checked = self._service.validate(
            tags=tags,
            lyrics=lyrics,
            bpm=controls.bpm,
            key=controls.key_scale,
            time_signature=controls.time_signature,
            language=controls.vocal_language,
        )
        if isinstance(checked, Invalid):
            if parent is None and _blank(ask.tags):
                return Invalid(
                    f"Tell me the style too, e.g. `/{_VERB[ask.task]} lo-fi piano, rain`."
                )
            return checked
        generated = edit.seconds if edit.task == Task.EXTEND else math.ceil(edit.source_seconds)
        return replace(
            checked,
            duration=max(generated, 1),
            explicit_duration=True,  # a chat's default length is for songs, not edits
            edit=edit,
        )

    def _edit_of(self, ask: EditAsk, source: _Source, longest: int) -> Edit | Invalid:
        base = Edit(
            task=ask.task,
            source_path=str(source.path),
            source_seconds=source.seconds,
            own_audio=source.own_audio,
        )
        if ask.task == Task.EXTEND:
            return self._extend(ask, base, longest)
        least = self._service.limits.min_duration
        if math.ceil(source.seconds) < least:  # a remix or repaint makes the whole length
            return Invalid(
                f"That audio is only {source.seconds:.1f} s long; I can {_VERB[ask.task]} "
                f"audio of {least} s or more."
            )
        if ask.task == Task.REMIX:
            strength = _strength(ask.strength)
            if strength is None:
                return Invalid(
                    f"“{ask.strength}” isn't a strength: give 0 to 1 (like `0.7`); higher "
                    "keeps more of the original."
                )
            return replace(base, strength=strength)
        start, end = parse_time(ask.start), parse_time(ask.end)
        if start is None or end is None:
            return Invalid(
                "Say which part to repaint, from and to, as `1:05` or seconds: "
                "e.g. `/repaint 12 0:30 0:45 choir`."
            )
        if not 0 <= start < end <= source.seconds + 0.5 or end - start < 1:
            return Invalid(
                f"{clock(start)} to {clock(end)} isn't a part of this track: it is "
                f"{clock(source.seconds)} long; give a start before the end, at least a "
                "second apart."
            )
        return replace(base, start=start, end=min(end, source.seconds))

    def _extend(self, ask: EditAsk, base: Edit, longest: int) -> Edit | Invalid:
        at = (ask.at or "end").strip().lower() if not _blank(ask.at) else "end"
        if at not in ("end", "start"):
            return Invalid(f"“{ask.at}” isn't a place to extend at: use `at=end` or `at=start`.")
        if _blank(ask.seconds):
            asked: float | None = float(DEFAULT_EXTEND_SECONDS)
        else:
            asked = parse_time(ask.seconds)
        least = self._service.limits.min_duration
        if asked is None or asked != int(asked):
            return Invalid(
                f"“{ask.seconds}” isn't a length I can add: write seconds like `30` or "
                "minutes like `1:30`."
            )
        room = math.floor(longest - base.source_seconds)
        if asked < least or asked > room:
            if room < least:
                return Invalid(
                    f"This track is {clock(base.source_seconds)} long: it can't get longer "
                    f"here (songs are at most {clock(longest)})."
                )
            nearest = min(max(int(asked), least), room)
            return Invalid(
                f"Extended by {int(asked)} s, it would be "
                f"{clock(base.source_seconds + asked)} long; I can add {least} to {room} s "
                f"here (songs are at most {clock(longest)}). Try `{nearest}`."
            )
        return replace(base, seconds=int(asked), at_start=at == "start")

    async def rerun(
        self,
        original: Job,
        requester: Requester,
        destination: Destination,
        *,
        seed: int,
        idempotency_key: str | None,
    ) -> Accepted | Refused:
        """The same edit again (🎲 / 🔁 under an edit's track), on a copy of its source."""
        from bot.service import Refused

        edit = original.request.edit
        assert edit is not None
        offered = self._service.edits_offered
        if edit.task not in offered:
            return Refused(not_offered(edit.task, offered), "not_offered")
        try:
            copied = await self._service.sources.copy_of(
                edit.source_path, idempotency_key or f"edit-{secrets.token_hex(8)}"
            )
        except FileNotFoundError:
            return Refused(EDIT_SOURCE_GONE, "source_gone")
        # A new copy is uploaded again: the original's upload may have expired upstream.
        again = replace(edit, source_path=str(copied), uploaded_url=None)
        request = replace(original.request, seed=seed, takes=1, edit=again)
        # The parent stays the track it edits, so the card still says "extended from #12".
        outcome = await self._submit(
            requester, destination, request, idempotency_key, original.parent_id
        )
        self._settle_source(copied, outcome)
        return outcome


def _strength(value: str | float | None) -> float | None:
    if _blank(value):
        return DEFAULT_STRENGTH
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        text = value.strip().rstrip("%")
        try:
            number = float(text) / (100 if value.strip().endswith("%") else 1)
        except ValueError:
            return None
    else:
        number = float(value)  # type: ignore[arg-type]
    return number if 0 <= number <= 1 else None
