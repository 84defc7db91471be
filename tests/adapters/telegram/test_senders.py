"""People who write as a chat: a group's anonymous admins, and channels.

Telegram shows every anonymous admin, in every group, as the same user (@GroupAnonymousBot),
and every post on a channel's behalf as @Channel_Bot; ``sender_chat`` says which chat spoke.
That chat is the requester: its own songs, its own quota. Button presses always come from
the real person, so an admin of the group may act for its anonymous admins.
"""

from __future__ import annotations

from bot.domain import JobState
from bot.service import Requester
from tests.adapters.telegram.conftest import WAIT, Rig
from tests.adapters.telegram.test_admin import says, song_queued
from tests.adapters.telegram.test_commands import job_id_of
from tests.fakes.telegram import FakeChat, FakeUser, RecordedMessage
from tests.harness import wait_for_job

NOTHING_QUEUED = (  # in a group, a personal answer says it won't stay
    "📭 You have no songs queued or running. Ask for one with /song.\n"
    "🧹 Removed in 1 min to keep the chat tidy."
)


async def as_chat(
    rig: Rig, text: str, user: FakeUser, chat: FakeChat, speaking_for: FakeChat
) -> RecordedMessage:
    """``user`` writes ``text`` in ``chat`` on ``speaking_for``'s behalf; the bot's answer."""
    sent = await rig.say(text, user, chat, sender_chat=speaking_for)
    return await rig.reply_to(sent, chat)


def as_requester(chat: FakeChat) -> Requester:
    return Requester("telegram", str(chat.id))


async def test_anonymous_admins_of_two_groups_are_not_one_person(rig: Rig) -> None:
    carol = rig.tg.user(44, "Carol")
    other = rig.tg.group_chat(-100456, "Other room")
    rig.tg.set_admins(rig.group, [rig.alice.id], anonymous=[rig.alice.id])
    rig.tg.set_admins(other, [carol.id], anonymous=[carol.id])
    rig.ws.faults.add_job(hang=True)

    status = await as_chat(rig, "/song drone | 40", rig.alice, rig.group, rig.group)
    assert (status.text_history[0] or "").startswith("🎶 Queued")
    job_id = job_id_of(status)
    await wait_for_job(rig.core, job_id, {JobState.RUNNING})

    # Carol, anonymous in another group, meets none of it.
    queue = await as_chat(rig, "/queue", carol, other, other)
    assert queue.text == NOTHING_QUEUED
    quota = await as_chat(rig, "/quota", carol, other, other)
    assert (quota.text or "").startswith("🎚 You have 10 min of 10 min left")
    refused = await as_chat(rig, f"/cancel {job_id}", carol, other, other)
    assert refused.text == "⚠️ Only the person who asked for that song can cancel it."
    nothing = await as_chat(rig, "/cancel", carol, other, other)
    assert nothing.text == "📭 You have nothing queued or running to cancel."
    assert (await rig.core.service.get_job(job_id)).state == JobState.RUNNING  # type: ignore[union-attr]

    # In its own group the song is the anonymous admins' own.
    queue = await as_chat(rig, "/queue", rig.alice, rig.group, rig.group)
    assert f"#{job_id} drone — 40 s: " in (queue.text or "")
    quota = await as_chat(rig, "/quota", rig.alice, rig.group, rig.group)
    assert "You have 9 min 20 s of 10 min left" in (quota.text or "")
    cancelled = await as_chat(rig, "/cancel", rig.alice, rig.group, rig.group)
    assert cancelled.text == "✖ Cancelled. Your quota has been given back."
    assert (await rig.core.service.quota(as_requester(rig.group))).used_seconds == 0


async def test_an_anonymous_admin_is_an_admin_of_their_group(rig: Rig) -> None:
    carol = rig.tg.user(44, "Carol")
    rig.tg.set_admins(rig.group, [rig.alice.id, carol.id], anonymous=[rig.alice.id])
    reply = await as_chat(rig, "/admin adminquota 300", rig.alice, rig.group, rig.group)
    assert reply.text == "✅ This chat's admins now get 5 min of music a day."
    quota = await as_chat(rig, "/quota", rig.alice, rig.group, rig.group)
    assert (quota.text or "").startswith("🎚 You have 5 min of 5 min left")

    rig.ws.faults.add_job(hang=True)
    status = await as_chat(rig, "/song drone | 40", rig.alice, rig.group, rig.group)
    job_id = job_id_of(status)
    await wait_for_job(rig.core, job_id, {JobState.RUNNING})
    # Presses come from the real person. A member who isn't an admin is someone else...
    query = await rig.tg.press_button(rig.group, rig.bob, status, f"cx:{job_id}")
    answer = await rig.tg.wait_for_callback_answer(query, timeout=WAIT)
    assert answer.text == "Only the person who asked for that song can cancel it."
    # ...while any admin of the group acts for its anonymous admins: their own song.
    query = await rig.tg.press_button(rig.group, carol, status, f"cx:{job_id}")
    answer = await rig.tg.wait_for_callback_answer(query, timeout=WAIT)
    assert answer.text == "Cancelled. Your quota has been given back."
    await rig.tg.wait_until(
        lambda: (status.text or "").startswith("✖ Cancelled. Your quota"),
        what="the status says cancelled",
        timeout=WAIT,
    )


async def test_an_admin_re_rolls_the_anonymous_admins_song_on_their_quota(rig: Rig) -> None:
    rig.tg.set_admins(rig.group, [rig.alice.id], anonymous=[rig.alice.id])
    await as_chat(rig, "/song bossa nova | 10", rig.alice, rig.group, rig.group)
    track = await rig.tg.wait_for_audio(rig.group, timeout=WAIT)
    await wait_for_job(rig.core, job_id_of(track), {JobState.DELIVERED})

    query = await rig.tg.press_button(rig.group, rig.bob, track, button_text="New take")
    answer = await rig.tg.wait_for_callback_answer(query, timeout=WAIT)
    assert answer.text == "That's someone else's song; ask for your own with /song."

    query = await rig.tg.press_button(rig.group, rig.alice, track, button_text="New take")
    answer = await rig.tg.wait_for_callback_answer(query, timeout=WAIT)
    assert answer.text == "🎲 New take — queued."
    second = await rig.tg.wait_for_audio(
        rig.group, predicate=lambda m: m is not track, timeout=WAIT
    )
    await wait_for_job(rig.core, job_id_of(second), {JobState.DELIVERED})
    # Charged to the group's anonymous admins, not to Alice by name.
    assert len((await rig.core.service.history(as_requester(rig.group))).jobs) == 2
    assert (await rig.core.service.history(Requester("telegram", str(rig.alice.id)))).jobs == []


async def test_a_channel_is_its_own_requester(rig: Rig) -> None:
    news = rig.tg.channel(-1001234567890, "Bob's news")
    rig.tg.set_admins(rig.group, [rig.alice.id])
    rig.ws.faults.add_job(hang=True)
    status = await as_chat(rig, "/song drone | 40", rig.bob, rig.group, news)
    job_id = job_id_of(status)
    await wait_for_job(rig.core, job_id, {JobState.RUNNING})

    # Bob as himself and another channel are other requesters; a channel is no admin.
    mine = await says(rig, "/queue", rig.bob)
    assert mine.text == NOTHING_QUEUED
    theirs = await as_chat(rig, "/queue", rig.bob, rig.group, news)
    assert f"#{job_id} drone — 40 s: " in (theirs.text or "")
    refused = await as_chat(rig, "/admin quota 5", rig.bob, rig.group, news)
    assert refused.text == "🔒 Sorry, only this chat's admins can change its settings."

    # An admin may stop it, and block the channel by replying to what it wrote.
    answer = await says(rig, f"/admin cancel {job_id}", rig.alice)
    assert answer.text == f"✖ Cancelled #{job_id}; its owner got the quota back."
    request = await rig.say("/song more | 10", rig.bob, sender_chat=news)
    await rig.reply_to(request)
    blocked = await says(rig, "/admin block", rig.alice, reply_to=request)
    assert blocked.text == "✅ Bob's news can't make songs here any more."
    refusal = await as_chat(rig, "/song rock | 10", rig.bob, rig.group, news)
    assert (
        refusal.text == "⚠️ You can't make songs here right now; ask an admin if that's a mistake."
    )
    status = await song_queued(rig, "/song rock | 10", rig.bob)  # Bob himself is not blocked
    assert status.reply_to_message_id is not None


async def test_a_stand_in_without_its_chat_owns_nothing(rig: Rig) -> None:
    # How Telegram once sent posts forwarded from a linked channel: "Telegram" (777000).
    telegram = rig.tg.user(777000, "Telegram")
    answer = await rig.ask("/song rock | 10", telegram)
    assert answer.text == "⚠️ I can't tell who sent that, so it can't have a song or a quota."
    assert (await rig.core.service.history(Requester("telegram", "777000"))).jobs == []
