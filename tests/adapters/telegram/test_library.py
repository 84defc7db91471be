"""/history with ◀ ▶, /show posting a song again, a reply /song making a variation, and
/describe, as users meet them in the chat."""

from __future__ import annotations

import dataclasses
import re
from datetime import UTC, datetime
from pathlib import Path

from adapters.telegram import texts
from bot.domain import (
    LOCAL_PLATFORM,
    Destination,
    GenerationRequest,
    Job,
    JobId,
    JobState,
    UserId,
)
from bot.service import Accepted, Requester
from tests.adapters.telegram.conftest import TOKEN, WAIT, Rig, requester, telegram_bot
from tests.adapters.telegram.test_commands import job_id_of
from tests.fakes.acestep import FakeAceStep
from tests.fakes.telegram import FakeTelegram, RecordedMessage
from tests.fakes.wavespeed import FakeWaveSpeed
from tests.harness import acestep_settings, wait_for_job


def tracks(rig: Rig) -> list[RecordedMessage]:
    return [m for m in rig.tg.chat_log(rig.group, include_deleted=False) if m.audio is not None]


async def made(rig: Rig, count: int, owner: str | None = None, tags: str = "song") -> list[int]:
    """``count`` finished songs of ``owner`` (a user's or a chat's id; Alice's by default),
    made straight through the core as ``acejam generate`` makes them (kept, not posted: the
    history is the point here, not the uploads)."""
    owner = owner or str(rig.alice.id)
    rig.ws.output_format = "wav"  # nothing is posted: no need to encode MP3s
    ids: list[int] = []
    for n in range(count):
        outcome = await rig.core.service.submit(
            Requester("telegram", owner),
            Destination(LOCAL_PLATFORM, "local", owner),
            rig.core.service.validate(tags=f"{tags} {n}", duration="5"),
            enforce_quota=False,
        )
        assert isinstance(outcome, Accepted)
        ids.append(outcome.job.id)
    for job_id in ids:
        await wait_for_job(rig.core, job_id, {JobState.SUCCEEDED}, timeout=WAIT)
    return ids


async def test_history_pages_with_buttons_only_its_owner_can_press(rig: Rig) -> None:
    ids = await made(rig, 12)
    first = await rig.ask("/history")
    assert first.text is not None
    assert first.text.startswith("🕘 Your songs — page 1 of 2, 12 in all\n")
    assert f"• #{ids[-1]} song 11 — 5 s" in first.text  # newest first, with ids
    assert f"#{ids[1]} " not in first.text
    assert f"/show {ids[-1]}" in first.text
    assert [b.text for b in first.buttons] == ["Older ▶"]

    refused = await rig.tg.press_button(rig.group, rig.bob, first, button_text="Older")
    answer = await rig.tg.wait_for_callback_answer(refused, timeout=WAIT)
    assert answer.text == "That list is someone else's; send /history for yours."

    older = await rig.tg.press_button(rig.group, rig.alice, first, button_text="Older")
    await rig.tg.wait_for_callback_answer(older, timeout=WAIT)
    await rig.tg.wait_until(lambda: "page 2 of 2" in (first.text or ""), what="page 2")
    assert f"• #{ids[0]} song 0 — 5 s" in (first.text or "")
    assert [b.text for b in first.buttons] == ["◀ Newer"]

    typed = await rig.ask("/history 2")
    assert "page 2 of 2" in (typed.text or "") and f"#{ids[1]} song 1" in (typed.text or "")


async def test_the_anonymous_admins_list_is_paged_by_any_admin(rig: Rig) -> None:
    rig.tg.set_admins(rig.group, [rig.alice.id, rig.bob.id], anonymous=[rig.alice.id])
    carol = rig.tg.user(44, "Carol")
    await made(rig, 11, str(rig.group.id), "group song")
    asked = await rig.say("/history", rig.alice, sender_chat=rig.group)
    listed = await rig.reply_to(asked)
    assert "page 1 of 2, 11 in all" in (listed.text or "")
    refused = await rig.tg.press_button(rig.group, carol, listed, button_text="Older")
    answer = await rig.tg.wait_for_callback_answer(refused, timeout=WAIT)
    assert answer.text == "That list is someone else's; send /history for yours."
    older = await rig.tg.press_button(rig.group, rig.bob, listed, button_text="Older")
    await rig.tg.wait_for_callback_answer(older, timeout=WAIT)
    await rig.tg.wait_until(lambda: "page 2 of 2" in (listed.text or ""), what="page 2")


async def test_history_in_a_private_chat_and_for_a_newcomer(rig: Rig) -> None:
    chat = rig.tg.private_chat(rig.bob)
    await rig.say("/history", rig.bob, chat)
    empty = await rig.tg.wait_for_message(chat, "You haven't made any songs yet", timeout=WAIT)
    assert empty.buttons == []


async def test_show_posts_the_song_again_with_its_card_and_working_buttons(rig: Rig) -> None:
    await rig.say("/song lo-fi, chill | 10 | 77\n[Verse]\nRain again")
    original = await rig.tg.wait_for_audio(rig.group, timeout=WAIT)
    job_id = job_id_of(original)
    job = await wait_for_job(rig.core, job_id, {JobState.DELIVERED})
    used = (await rig.core.service.quota(requester(rig.alice))).used_seconds

    asked = await rig.say(f"/show {job_id}")
    again = await rig.reply_to(asked, also=lambda m: m.audio is not None)
    assert again.caption == original.caption  # the same card: owner, lyrics, seed, number
    assert [b.callback_data for b in again.buttons] == [
        f"rr:{job_id}",
        f"ss:{job_id}",
        f"ex:{job_id}",
    ]
    assert again.audio is not None and original.audio is not None
    assert again.audio.title == original.audio.title
    assert await rig.core.service.get_job(job_id) == job  # nothing on the job changed
    assert (await rig.core.service.quota(requester(rig.alice))).used_seconds == used

    query = await rig.tg.press_button(rig.group, rig.alice, again, button_text="Same seed")
    assert (await rig.tg.wait_for_callback_answer(query, timeout=WAIT)).text == (
        "🔁 Same seed again — queued."
    )
    await rig.tg.wait_until(lambda: len(tracks(rig)) == 3, what="a third track", timeout=WAIT)
    assert rig.ws.submits[-1]["seed"] == 77

    # In Alice's private chat too: her songs are hers anywhere.
    private = rig.tg.private_chat(rig.alice)
    await rig.say(f"/show #{job_id}", chat=private)
    shown = await rig.tg.wait_for_audio(private, timeout=WAIT)
    assert shown.caption == original.caption


async def test_show_refuses_in_a_sentence(rig: Rig) -> None:
    await rig.say("/song ambient | 10")
    track = await rig.tg.wait_for_audio(rig.group, timeout=WAIT)
    job_id = job_id_of(track)
    job = await wait_for_job(rig.core, job_id, {JobState.DELIVERED})

    hidden = await rig.ask(f"/show {job_id}", rig.bob)
    assert hidden.text == f"⚠️ I can't find song #{job_id} — /history lists yours."
    # Where members may press each other's buttons, they may show each other's songs here.
    await rig.core.service.admin.update_chat_rules(
        "telegram", str(rig.group.id), others_may_press=True
    )
    asked = await rig.say(f"/show {job_id}", rig.bob)
    shown = await rig.reply_to(asked, also=lambda m: m.audio is not None)
    assert shown.caption == track.caption
    unknown = await rig.ask("/show 4242")
    assert unknown.text == "⚠️ I can't find song #4242 — /history lists yours."
    usage = await rig.ask("/show")
    assert usage.text == ("⚠️ Send /show and a song's number, e.g. /show 12; /history lists yours.")

    Path(job.audio_path or "").unlink()  # what the retention sweep does to old audio
    swept = await rig.ask(f"/show {job_id}")
    assert "isn't kept any more" in (swept.text or "")
    assert [b.text for b in swept.buttons] == ["🔁 Make it again"]
    before = len(tracks(rig))
    query = await rig.tg.press_button(rig.group, rig.alice, swept, button_text="Make it again")
    await rig.tg.wait_for_callback_answer(query, timeout=WAIT)
    await rig.tg.wait_until(lambda: len(tracks(rig)) > before, what="made again", timeout=WAIT)
    assert len(rig.ws.submits) == 2
    assert rig.ws.submits[-1]["seed"] == rig.ws.submits[0]["seed"]

    rig.ws.faults.add_job(hang=True)
    status = await rig.ask("/song slow | 10")
    busy = await rig.ask(f"/show {job_id_of(status)}")
    assert busy.text == (
        f"⚠️ Song #{job_id_of(status)} isn't finished yet; it will be posted when it is."
    )


async def test_a_reply_song_to_a_track_is_a_variation_of_it(rig: Rig) -> None:
    await rig.say("/song ambient drone | 12 | 5 | bpm=90\n[Verse]\nStill water")
    first = await rig.tg.wait_for_audio(rig.group, timeout=WAIT)
    parent = job_id_of(first)

    status = await rig.reply_to(await rig.say("/song jazz, brushed drums", reply_to=first))
    assert (status.text_history[0] or "").startswith("🎶 Queued")
    child = await wait_for_job(rig.core, job_id_of(status), {JobState.DELIVERED})
    assert child.parent_id == parent
    submit = rig.ws.submits[-1]
    assert submit["tags"].startswith("jazz, brushed drums")  # the new tags
    assert child.request.controls.bpm == 90  # the parent's tempo
    track = await rig.tg.wait_for_audio(rig.group, predicate=lambda m: m is not first)
    assert "🎼 Music: 90 bpm" in (track.caption or "")  # what it kept, on its card
    assert (submit["lyrics"], submit["duration"], submit["seed"]) == ("[Verse]\nStill water", 12, 5)

    # Nothing given: the parent again, as it was.
    await rig.say("/song", reply_to=first)
    await rig.tg.wait_until(lambda: len(rig.ws.submits) == 3, what="a bare reply", timeout=WAIT)
    assert rig.ws.submits[-1]["tags"] == rig.ws.submits[0]["tags"]

    # Someone else's track is the owner's to change, unless the chat lets others press.
    refused = await rig.reply_to(await rig.say("/song techno", rig.bob, reply_to=first))
    assert refused.text == "⚠️ That's someone else's song; ask for your own with /song."


async def test_describe_says_so_where_the_engine_has_no_language_model(rig: Rig) -> None:
    answer = await rig.ask("/describe a sad song about rain in Lisbon")
    assert answer.text is not None and "no language model" in answer.text
    assert "/song" in answer.text
    assert rig.ws.submits == []
    bare = await rig.ask("/describe")
    assert "/describe a sad song about rain in Lisbon" in (bare.text or "")


def test_a_described_songs_card_shows_the_words_its_model_wrote() -> None:
    lyrics = "[Verse]\nRain on the Tagus\nGrey stones & trams"
    job = Job(
        id=JobId(7),
        user_id=UserId(1),
        request=GenerationRequest(
            tags="fado, guitar", lyrics=lyrics, describe="a sad song about rain in Lisbon"
        ),
        destination=Destination("telegram", "-1", "42", {"requester_name": "Alice"}),
        state=JobState.DELIVERED,
        backend="acestep",
        created_at=datetime(2026, 12, 5, tzinfo=UTC),
        updated_at=datetime(2026, 12, 5, tzinfo=UTC),
    )
    card = texts.caption(job, title="Fado", seconds=61, full_seconds=61, is_preview=False)
    assert card.split("\n")[:4] == [
        "🎵 <b>Fado</b>",
        "🙋 Asked by Alice",
        "💬 Described as: “a sad song about rain in Lisbon”",
        "🏷 Style: fado, guitar",
    ]
    assert card.endswith(
        "📝 Lyrics:\n<blockquote expandable>[Verse]\nRain on the Tagus\nGrey stones &amp; "
        "trams</blockquote>"
    )
    wordy = GenerationRequest(tags="fado", lyrics="la " * 600, describe="a long one")
    long = texts.caption(
        dataclasses.replace(job, request=wordy),
        title="Fado",
        seconds=61,
        full_seconds=61,
        is_preview=False,
    )
    visible = re.sub(r"<[^>]+>", "", long)
    assert len(visible) <= texts.CAPTION_LIMIT and "…" in visible


async def test_describe_where_the_engine_has_a_language_model_shows_what_it_wrote(
    tmp_path: Path, tg: FakeTelegram, ws: FakeWaveSpeed
) -> None:
    async with FakeAceStep(time_scale=0.04) as ace:
        settings = acestep_settings(
            tmp_path, ace.base_url, telegram_token=TOKEN, telegram_api_base_url=tg.base_url
        )
        async with telegram_bot(settings, tg, ws) as rig:
            status = await rig.ask("/describe a sad song about rain in Lisbon")
            assert "“a sad song about rain in Lisbon”" in (status.text_history[0] or "")
            track = await rig.tg.wait_for_audio(rig.group, timeout=WAIT)
            help_ = await rig.ask("/help")
    assert "The music model writes the style" in (help_.text or "")
    assert "describe" in tg.command_names()
    assert ace.submits[0]["sample_query"] == "a sad song about rain in Lisbon"
    card = track.caption or ""
    assert "💬 Described as: “a sad song about rain in Lisbon”" in card
    assert f"🏷 Style: {ace.lm_writes.caption}" in card  # what the model wrote, to take further
    assert "Chuva na janela" in card and "Lisboa chora comigo" in card
    assert "🎼 Music: 72 bpm, D minor, 3/4 time" in card  # its tempo, key and metre


async def test_several_takes_are_shown_again_and_varied_from_the_take_replied_to(
    rig: Rig,
) -> None:
    rig.ws.output_format = "wav"
    request_id = await rig.say("/song ambient | 5 | takes=2\n[Verse]\nTwo ways home")
    album = await rig.tg.wait_for_album(rig.group, size=2, timeout=WAIT)
    found = re.search(r"#(\d+)$", album[1].caption or "")  # a take's card names its song
    assert found is not None
    job_id = int(found[1])
    job = await wait_for_job(rig.core, job_id, {JobState.DELIVERED})
    seeds = [take.seed for take in job.takes]
    choices = await rig.reply_to(album[0].message_id, also=lambda m: m.audio is None)
    assert request_id < choices.message_id

    # A reply to take 2 starts from take 2.
    status = await rig.reply_to(await rig.say("/song jazz", reply_to=album[1]))
    child = await wait_for_job(rig.core, job_id_of(status), {JobState.DELIVERED})
    assert (child.parent_id, child.request.seed) == (job_id, seeds[1])
    assert (child.request.lyrics, child.request.takes) == ("[Verse]\nTwo ways home", 1)
    # A reply to the message under the album: the take kept.
    kept = await rig.tg.press_button(rig.group, rig.alice, choices, button_text="Keep 2")
    await rig.tg.wait_for_callback_answer(kept, timeout=WAIT)
    await rig.tg.wait_until(lambda: "Take 2 kept" in (choices.text or ""), what="take 2 kept")
    status = await rig.reply_to(await rig.say("/song techno", reply_to=choices))
    child = await wait_for_job(rig.core, job_id_of(status), {JobState.DELIVERED})
    assert (child.parent_id, child.request.seed) == (job_id, seeds[1])

    asked = await rig.say(f"/show {job_id}")
    again = await rig.tg.wait_until(
        lambda: [m for m in tracks(rig) if m.reply_to_message_id == asked] or None,
        what="the takes again",
        timeout=WAIT,
    )
    shown = rig.tg.album_of(again[0])
    assert [m.caption for m in shown] == [m.caption for m in album]
    under = await rig.reply_to(shown[0].message_id, also=lambda m: m.audio is None)
    assert "Take 2 kept" in (under.text or "")  # its choices as they stand
