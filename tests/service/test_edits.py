"""Edits through the service (bot/edits.py): extend, remix and repaint a finished track or a
user's own audio, with the sentences a user reads when one can't be made. The service runs
on real stores (SQLite, and PostgreSQL where the tests have one) with no worker, so an
accepted edit stays queued for the test to read; the backend's abilities are what
``Capabilities.edits`` says (the backends' own tests check that each reports its real ones)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from bot import messages, quotas
from bot.clock import utcnow
from bot.domain import NO_CONTROLS, Destination, Edit, Job, JobState, Limits, Task
from bot.edits import EDIT_SOURCE_GONE, NO_SONG_YET, EditAsk
from bot.notify import Notifier
from bot.ports import Capabilities
from bot.service import Accepted, GenerationService, Refused, Requester
from bot.sources import SourceAudio, SourceFiles
from storage.db import create_engine, read_session_factory, session_factory, upgrade
from storage.jobs import SqlJobStore
from storage.rules import SqlRulesStore
from tests.fakes.audio import make_audio

ALICE = Requester("telegram", "111", "alice")
BOB = Requester("telegram", "222", "bob")
ALICE_DM = Requester("telegram", "111", "alice", private_chat=True)
GROUP = "-100"
LONGEST = 600


@dataclass
class Bot:
    service: GenerationService
    store: SqlJobStore
    rules: SqlRulesStore
    data: Path
    offered: set[Task] = field(default_factory=lambda: set(Task) - {Task.SONG})

    @property
    def sources(self) -> SourceFiles:
        return self.service.sources

    def kept_sources(self) -> list[Path]:
        return sorted(p for p in self.sources.root.glob("*") if p.is_file())


@pytest.fixture
async def bot(tmp_path: Path, database_url: str) -> AsyncIterator[Bot]:
    engine = create_engine(database_url)
    await upgrade(engine)
    sessions, reads = session_factory(engine), read_session_factory(engine)
    store, rules = SqlJobStore(sessions, reads), SqlRulesStore(sessions, reads)
    made = Bot(None, store, rules, tmp_path)  # type: ignore[arg-type]
    made.service = GenerationService(
        store=store,
        rules=rules,
        notifier=Notifier({}),
        backend_name="acestep",
        limits=Limits(10, 240),
        policy=quotas.QuotaPolicy(seconds_per_day=900, max_active_jobs=20),
        blocked_words=("forbidden",),
        capabilities=lambda: Capabilities(edits=frozenset(made.offered)),
        sources=SourceFiles(tmp_path, max_seconds=240),
        max_extended_duration=LONGEST,
        # An edit on a model of its own, at its own price (WaveSpeed's edit models).
        price_of=lambda request: 0.002 if request.edit is not None else 0.001,
    )
    try:
        yield made
    finally:
        await engine.dispose()


def _dest(requester: Requester, chat: str = GROUP) -> Destination:
    return Destination("telegram", chat, requester.user_id)


async def _song(
    bot: Bot,
    requester: Requester = ALICE,
    *,
    seconds: float = 20.0,
    chat: str = GROUP,
    **controls: str,
) -> Job:
    """A song as the worker leaves it: delivered, its audio on disk, its length recorded."""
    request = bot.service.validate(
        tags="lo-fi piano",
        lyrics="[Verse]\nrain",
        duration="20",
        **controls,  # type: ignore[arg-type]
    )
    queued = await bot.service.submit(requester, _dest(requester, chat), request)
    assert isinstance(queued, Accepted), queued
    audio = bot.data / "audio" / f"{queued.job.id}.mp3"
    audio.parent.mkdir(exist_ok=True)
    audio.write_bytes(make_audio(2.0, "mp3"))
    done = await bot.store.transition(
        queued.job.id, {JobState.QUEUED}, JobState.DELIVERED, now=utcnow(), ledger="commit",
        audio_path=str(audio), audio_format="mp3", audio_duration=seconds, seed_used=7,
    )  # fmt: skip
    assert done is not None
    return done


async def _own(bot: Bot, key: str, seconds: float = 12.0) -> SourceAudio:
    path = bot.sources.incoming(key)
    path.write_bytes(make_audio(seconds, "mp3"))
    taken = await bot.sources.take_in(path, key=key)
    assert isinstance(taken, SourceAudio), taken
    return taken


async def _used(bot: Bot, requester: Requester = ALICE) -> int:
    return (await bot.service.quota(requester)).used_seconds


async def test_extend_makes_the_track_longer_from_a_source_of_its_own(bot: Bot) -> None:
    song = await _song(bot)
    before = await _used(bot)
    outcome = await bot.service.edit(
        ALICE, _dest(ALICE), EditAsk(Task.EXTEND, of_job=song.id), idempotency_key="tg:1:2"
    )
    assert isinstance(outcome, Accepted), outcome
    job = outcome.job
    edit = job.request.edit
    assert edit is not None and edit == Edit(
        Task.EXTEND, edit.source_path, 20.0, seconds=30, at_start=False
    )
    assert Path(edit.source_path).parent == bot.sources.root
    assert Path(edit.source_path).read_bytes() == Path(song.audio_path or "").read_bytes()
    assert edit.output_seconds == 50.0
    # The quota counts the seconds it generates; the words are the parent's.
    assert job.request.duration == 30 and await _used(bot) == before + 30
    assert job.cost_usd == 30 * 0.002 and song.cost_usd == 20 * 0.001
    assert (job.request.tags, job.request.lyrics) == ("lo-fi piano", "[Verse]\nrain")
    assert job.parent_id == song.id and job.state == JobState.QUEUED
    assert messages.lineage(job) == f"extended from #{song.id}"
    assert messages.lineage(song) is None
    stored = await bot.store.get(job.id)
    assert stored is not None and stored.request.edit == edit

    # The parent's audio swept: the edit still has its source.
    Path(song.audio_path or "").unlink()
    assert Path(edit.source_path).is_file()

    at_start = await bot.service.edit(
        ALICE, _dest(ALICE), EditAsk(Task.EXTEND, of_job=song.id, seconds="0:45", at="start")
    )
    assert isinstance(at_start, Refused) and at_start.code == "source_gone"
    assert "isn't kept any more" in at_start.message


async def test_a_bare_extend_takes_the_latest_song_in_this_chat(bot: Bot) -> None:
    none_yet = await bot.service.edit(ALICE, _dest(ALICE), EditAsk(Task.EXTEND))
    assert none_yet == Refused(NO_SONG_YET, "not_found")
    older = await _song(bot)
    await _song(bot, chat="elsewhere")
    await _song(bot, BOB)
    outcome = await bot.service.edit(
        ALICE, _dest(ALICE), EditAsk(Task.EXTEND, seconds="15", at="start")
    )
    assert isinstance(outcome, Accepted) and outcome.job.parent_id == older.id
    edit = outcome.job.request.edit
    assert edit is not None and (edit.seconds, edit.at_start) == (15, True)


async def test_what_cant_be_made_gets_a_sentence_and_costs_nothing(bot: Bot) -> None:
    song = await _song(bot, seconds=580.0)
    short = await _song(bot, seconds=20.0)
    before = await _used(bot)

    async def refused(ask: EditAsk, requester: Requester = ALICE) -> str:
        outcome = await bot.service.edit(requester, _dest(requester), ask)
        assert isinstance(outcome, Refused), outcome
        return outcome.message

    assert await refused(EditAsk(Task.EXTEND, of_job=song.id)) == (
        "Extended by 30 s, it would be 10:10 long; I can add 10 to 20 s here (songs are at "
        "most 10:00). Try `20`."
    )
    assert await refused(EditAsk(Task.EXTEND, of_job=short.id, seconds="lots")) == (
        "“lots” isn't a length I can add: write seconds like `30` or minutes like `1:30`."
    )
    assert await refused(EditAsk(Task.EXTEND, of_job=short.id, at="middle")) == (
        "“middle” isn't a place to extend at: use `at=end` or `at=start`."
    )
    assert await refused(EditAsk(Task.REMIX, of_job=short.id, tags="jazz", strength="2")) == (
        "“2” isn't a strength: give 0 to 1 (like `0.7`); higher keeps more of the original."
    )
    assert await refused(EditAsk(Task.REPAINT, of_job=short.id, start="0:15", end="0:12")) == (
        "0:15 to 0:12 isn't a part of this track: it is 0:20 long; give a start before the "
        "end, at least a second apart."
    )
    assert "Say which part to repaint" in await refused(EditAsk(Task.REPAINT, of_job=short.id))
    assert await refused(EditAsk(Task.REMIX, of_job=short.id, tags="forbidden jazz")) == (
        "That request uses a word that isn't allowed here."
    )
    # Not yours, or no such song: the same sentence.
    assert await refused(EditAsk(Task.EXTEND, of_job=short.id), BOB) == (
        f"I can't find song #{short.id} — /history lists yours."
    )
    bot.offered = {Task.EXTEND}
    assert await refused(EditAsk(Task.REMIX, of_job=short.id, tags="jazz")) == (
        "This bot's music engine can't do remixing of tracks, so /remix isn't offered here. "
        "It can /extend."
    )
    bot.offered = set()
    assert bot.service.edits_offered == frozenset()
    assert await refused(EditAsk(Task.EXTEND, of_job=short.id)) == (
        "This bot's music engine can't do extending of tracks, so /extend isn't offered here."
    )
    assert await _used(bot) == before
    assert bot.kept_sources() == []  # nothing copied for an edit that wasn't made


async def test_remix_and_repaint_count_the_whole_track(bot: Bot) -> None:
    song = await _song(bot, seconds=61.2, bpm="90", key="F# minor")
    assert song.request.controls.bpm == 90
    await bot.rules.update_chat_rules("telegram", GROUP, {"others_may_press": True}, utcnow())
    remix = await bot.service.edit(
        BOB, _dest(BOB), EditAsk(Task.REMIX, of_job=song.id, tags="bossa nova", strength="70%")
    )
    assert isinstance(remix, Accepted), remix
    assert remix.job.request.duration == 62 and await _used(bot, BOB) == 62
    assert remix.job.request.tags == "bossa nova" and remix.job.request.lyrics == "[Verse]\nrain"
    edit = remix.job.request.edit
    assert edit is not None and edit.strength == 0.7 and edit.task == Task.REMIX
    assert messages.lineage(remix.job) == f"remix of #{song.id}"
    assert remix.job.request.controls == NO_CONTROLS  # a new style: the model decides
    repaint = await bot.service.edit(
        ALICE, _dest(ALICE), EditAsk(Task.REPAINT, of_job=song.id, start="0:30", end="45.5")
    )
    assert isinstance(repaint, Accepted), repaint
    edit = repaint.job.request.edit
    assert edit is not None and (edit.start, edit.end) == (30.0, 45.5)
    assert repaint.job.request.duration == 62
    assert repaint.job.request.controls == song.request.controls  # the same song, a part anew
    assert messages.lineage(repaint.job) == f"repaint of #{song.id}"


async def test_own_audio_is_on_in_direct_messages_and_a_chat_setting_in_groups(
    bot: Bot,
) -> None:
    assert await bot.service.may_use_own_audio(ALICE_DM, _dest(ALICE, "111"))
    assert not await bot.service.may_use_own_audio(ALICE, _dest(ALICE))
    taken = await _own(bot, "tg:-100:5")
    off = await bot.service.edit(
        ALICE, _dest(ALICE), EditAsk(Task.REMIX, own_audio=taken, tags="jazz")
    )
    assert off == Refused(messages.OWN_AUDIO_OFF, "own_audio")
    assert bot.kept_sources() == []  # the upload no job took is gone

    await bot.rules.update_chat_rules("telegram", GROUP, {"own_audio": True}, utcnow())
    assert await bot.service.may_use_own_audio(ALICE, _dest(ALICE))
    taken = await _own(bot, "tg:-100:6")
    asked = EditAsk(Task.REMIX, own_audio=taken, tags="jazz")
    remix = await bot.service.edit(ALICE, _dest(ALICE), asked, idempotency_key="tg:-100:6")
    assert isinstance(remix, Accepted), remix
    edit = remix.job.request.edit
    assert edit is not None and edit.own_audio and edit.source_path == taken.path
    assert remix.job.parent_id is None and remix.job.request.duration == 12
    assert messages.lineage(remix.job) == "remix of your audio"
    # The same chat event again: the same job, and its source stays.
    again = await bot.service.edit(ALICE, _dest(ALICE), asked, idempotency_key="tg:-100:6")
    assert isinstance(again, Accepted) and again.duplicate and again.job.id == remix.job.id
    assert bot.kept_sources() == [Path(taken.path)]

    no_style = await bot.service.edit(
        ALICE, _dest(ALICE), EditAsk(Task.EXTEND, own_audio=await _own(bot, "tg:-100:7"))
    )
    assert no_style == Refused("Tell me the style too, e.g. `/extend lo-fi piano, rain`.")
    await bot.rules.update_chat_rules("telegram", "111", {"own_audio": False}, utcnow())
    assert not await bot.service.may_use_own_audio(ALICE_DM, _dest(ALICE, "111"))
    assert bot.kept_sources() == [Path(taken.path)]


async def test_a_reroll_of_an_edit_runs_the_edit_again(bot: Bot) -> None:
    song = await _song(bot)
    extend = await bot.service.edit(
        ALICE, _dest(ALICE), EditAsk(Task.EXTEND, of_job=song.id, seconds=20, tags="surf rock")
    )
    assert isinstance(extend, Accepted)
    first = extend.job.request.edit
    assert first is not None
    again = await bot.service.reroll(extend.job.id, ALICE, same_seed=False, idempotency_key="r1")
    assert isinstance(again, Accepted), again
    edit = again.job.request.edit
    assert edit is not None and edit.source_path != first.source_path
    assert edit == Edit(Task.EXTEND, edit.source_path, 20.0, seconds=20)
    assert again.job.request.tags == "surf rock" and again.job.request.duration == 20
    assert messages.lineage(again.job) == f"extended from #{song.id}"
    Path(first.source_path).unlink()
    gone = await bot.service.reroll(extend.job.id, ALICE, same_seed=False)
    assert gone == Refused(EDIT_SOURCE_GONE, "source_gone")
    # A song's re-roll is still a song.
    plain = await bot.service.reroll(song.id, ALICE, same_seed=True)
    assert isinstance(plain, Accepted) and plain.job.request.edit is None
    assert plain.job.request.seed == 7 and messages.lineage(plain.job) is None
