"""/admin in a group: only its admins may use it; what they set is what members then meet.

Alice administers the group (``tg.set_admins``), Bob is a member, Carol another member.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from telegram import Chat, User

from adapters.telegram.admin import PRIVATE_TEXT
from adapters.telegram.delivery import TelegramDelivery
from adapters.telegram.permissions import ChatAdmins, person
from adapters.telegram.status import StatusBoard
from bot import messages
from bot.app import open_core
from bot.domain import ChatRules, JobState
from tests.adapters.telegram.conftest import WAIT, Rig, bot_settings, requester
from tests.adapters.telegram.test_commands import job_id_of
from tests.fakes.telegram import FakeTelegram, FakeUser, RecordedMessage
from tests.fakes.wavespeed import FakeWaveSpeed
from tests.harness import wait_for_job

REFUSED = "🔒 Sorry, only this chat's admins can change its settings."


def admin_is_alice(rig: Rig) -> None:
    rig.tg.set_admins(rig.group, [rig.alice.id])


async def says(
    rig: Rig, text: str, user: FakeUser, reply_to: RecordedMessage | int | None = None
) -> RecordedMessage:
    """``user`` sends ``text`` in the group; the bot's answer to it."""
    return await rig.reply_to(await rig.say(text, user, reply_to=reply_to))


async def song_refused(rig: Rig, text: str, user: FakeUser) -> str:
    answer = await says(rig, text, user)
    assert answer.text is not None and answer.text.startswith("⚠️ "), answer
    assert answer.reply_markup is None
    return answer.text


async def song_queued(rig: Rig, text: str, user: FakeUser) -> RecordedMessage:
    status = await says(rig, text, user)
    assert (status.text_history[0] or "").startswith("🎶 Queued"), status
    return status


async def test_members_are_refused_and_nothing_changes(rig: Rig) -> None:
    admin_is_alice(rig)
    commands = ["/admin", "/admin quota 5", "/admin block 42", "/admin nsfw on", "/admin cancel 1"]
    for command in commands:
        answer = await says(rig, command, rig.bob)
        assert answer.text == REFUSED, command
    assert await rig.core.service.admin.chat_rules("telegram", str(rig.group.id)) == ChatRules()
    standing = await rig.core.service.admin.standing(
        "telegram", str(rig.alice.id), str(rig.group.id)
    )
    assert not standing.blocked
    # Asked once, then remembered (the refusals above didn't ask Telegram each time).
    assert len(rig.tg.calls_to("getChatAdministrators")) < len(commands)

    overview = await says(rig, "/admin@AceJamBot", rig.alice)
    assert overview.text is not None
    assert overview.text.startswith("⚙️ Settings for Jam room\n")
    assert "Daily music per person: 10 min a day (the default)" in overview.text
    assert "/admin quota <seconds|unlimited|default>" in overview.text

    chat = rig.tg.private_chat(rig.alice)
    await rig.say("/admin", chat=chat)
    private = await rig.tg.wait_for_message(chat, "/admin is for groups", timeout=WAIT)
    assert private.text == PRIVATE_TEXT

    # Only admins see /admin in the command menu; everyone else keeps the usual list.
    assert "admin" not in rig.tg.command_names()
    assert rig.tg.command_names("all_chat_administrators") == [*rig.tg.command_names(), "admin"]


async def test_the_chat_quota_and_the_admins_own_quota(rig: Rig) -> None:
    admin_is_alice(rig)
    answer = await says(rig, "/admin quota 20", rig.alice)
    assert answer.text == "✅ Everyone here now gets 20 s of music a day."
    sentence = "⚠️ That's longer than your whole daily allowance of 20 s; ask for a shorter song."
    assert await song_refused(rig, "/song rock | 30", rig.bob) == sentence
    assert await song_refused(rig, "/song rock | 30", rig.alice) == sentence

    answer = await says(rig, "/admin adminquota 300", rig.alice)
    assert answer.text == "✅ This chat's admins now get 5 min of music a day."
    alices = await song_queued(rig, "/song rock | 30", rig.alice)
    assert await song_refused(rig, "/song rock | 30", rig.bob) == sentence
    bob_quota = await says(rig, "/quota", rig.bob)
    alice_quota = await says(rig, "/quota", rig.alice)
    assert "of 20 s left" in (bob_quota.text or "")
    assert "of 5 min left" in (alice_quota.text or "")

    answer = await says(rig, "/admin quota lots", rig.alice)
    assert answer.text is not None and answer.text.startswith(
        "⚠️ “lots” isn't a quota. A quota is a number of seconds"
    )
    answer = await says(rig, "/admin quota default", rig.alice)
    assert answer.text == "✅ Everyone here is back to the bot's default: 10 min of music a day."
    bob_quota = await says(rig, "/quota", rig.bob)
    assert "You have 10 min of 10 min left" in (bob_quota.text or "")
    await wait_for_job(rig.core, job_id_of(alices), {JobState.DELIVERED})


async def test_one_persons_quota_and_blocking_by_reply_or_id(rig: Rig) -> None:
    admin_is_alice(rig)
    await says(rig, "/admin quota 20", rig.alice)
    hello = await rig.say("hello everyone", rig.bob)  # privacy mode: the bot never sees it

    answer = await says(rig, "/admin userquota unlimited", rig.alice, reply_to=hello)
    assert answer.text == (  # more than QUOTA_SECONDS_PER_DAY is the operator's to give
        "⚠️ The bot's operator allows at most 10 min a day for them here; only they can raise it."
    )
    answer = await says(rig, "/admin userquota 10m", rig.alice, reply_to=hello)
    assert answer.text == "✅ Bob now gets 10 min of music a day here."
    status = await song_queued(rig, "/song rock | 30", rig.bob)
    await wait_for_job(rig.core, job_id_of(status), {JobState.DELIVERED})
    track = await rig.tg.wait_for_audio(rig.group, timeout=WAIT)

    # A reply to the bot's message about a song names that song's owner.
    answer = await says(rig, "/admin block", rig.alice, reply_to=track)
    assert (
        answer.text == f"✅ The owner of song #{job_id_of(status)} can't make songs here any more."
    )
    refusal = await song_refused(rig, "/song rock | 10", rig.bob)
    assert refusal == "⚠️ You can't make songs here right now; ask an admin if that's a mistake."

    answer = await says(rig, f"/admin unblock {rig.bob.id}", rig.alice)
    assert answer.text == f"✅ User {rig.bob.id} can make songs here again."
    await song_queued(rig, "/song rock | 30", rig.bob)  # still his own 10 min

    answer = await says(rig, "/admin block", rig.alice)
    assert answer.text is not None and answer.text.startswith("⚠️ Reply to one of their messages")


async def test_song_lengths(rig: Rig) -> None:
    admin_is_alice(rig)
    answer = await says(rig, "/admin maxduration 30", rig.alice)
    assert answer.text == "✅ Songs here can now be up to 30 s long."
    refusal = await song_refused(rig, "/song rock | 60", rig.bob)
    assert refusal == "⚠️ In this chat songs can be at most 30 seconds long."

    answer = await says(rig, "/admin defaultduration 45", rig.alice)
    assert answer.text == "⚠️ That's longer than the longest song here (30 s)."
    answer = await says(rig, "/admin maxduration 9999", rig.alice)
    assert answer.text == "⚠️ Give a length from 5 to 240 seconds, or default."
    answer = await says(rig, "/admin defaultduration 15", rig.alice)
    assert answer.text == "✅ Songs with no length asked are now 15 s long."

    status = await song_queued(rig, "/song rock", rig.bob)
    assert "rock · 15 s · #" in (status.text_history[0] or "")
    await rig.tg.wait_until(lambda: rig.ws.submits, what="a submit", timeout=WAIT)
    assert rig.ws.submits[0]["duration"] == 15
    overview = await says(rig, "/admin", rig.alice)
    assert "Longest song: 30 s · default length: 15 s" in (overview.text or "")


async def test_blocked_words(rig: Rig) -> None:
    admin_is_alice(rig)
    answer = await says(rig, "/admin words add grim, dark ages, <b>", rig.alice)
    assert answer.text == "✅ Blocked 3 words here (3 in all)."
    not_allowed = "⚠️ That request uses a word that isn't allowed here."
    assert await song_refused(rig, "/song Grim beats | 10", rig.bob) == not_allowed
    assert await song_refused(rig, "/song folk | 10\n[Verse]\nin the dark ages", rig.bob) == (
        not_allowed
    )
    listed = await says(rig, "/admin words list", rig.alice)
    assert listed.text == "🚫 Blocked words here (3): grim, dark ages, <b>"  # escaped, shown

    answer = await says(rig, "/admin words remove GRIM", rig.alice)
    assert answer.text == "✅ Unblocked 1 word (2 left)."
    await song_queued(rig, "/song grim beats | 10", rig.bob)
    await rig.tg.wait_until(lambda: rig.ws.submits, what="a submit", timeout=WAIT)
    assert [submit["tags"] for submit in rig.ws.submits] == ["grim beats"]


async def test_others_may_press_your_buttons_only_when_the_chat_allows_it(rig: Rig) -> None:
    admin_is_alice(rig)
    await rig.say("/song bossa nova | 10", rig.bob)
    track = await rig.tg.wait_for_audio(rig.group, timeout=WAIT)

    query = await rig.tg.press_button(rig.group, rig.alice, track, button_text="New take")
    answer = await rig.tg.wait_for_callback_answer(query, timeout=WAIT)
    assert answer.text == "That's someone else's song; ask for your own with /song."
    assert answer.show_alert

    reply = await says(rig, "/admin buttons on", rig.alice)
    assert reply.text is not None and reply.text.startswith("✅ Anyone here may now press")
    query = await rig.tg.press_button(rig.group, rig.alice, track, button_text="New take")
    answer = await rig.tg.wait_for_callback_answer(query, timeout=WAIT)
    assert answer.text == "🎲 New take of Bob's song — queued."  # whose take it is
    second = await rig.tg.wait_for_audio(
        rig.group, predicate=lambda m: m is not track, timeout=WAIT
    )
    assert second.reply_to_message_id == track.message_id
    assert "🙋 Alice's take of Bob's song" in (second.caption or "")
    [take] = (await rig.core.service.history(requester(rig.alice))).jobs  # on Alice's quota
    assert take.request.tags == "bossa nova"

    await says(rig, "/admin buttons off", rig.alice)
    query = await rig.tg.press_button(rig.group, rig.alice, track, button_text="Same seed")
    answer = await rig.tg.wait_for_callback_answer(query, timeout=WAIT)
    assert answer.text == "That's someone else's song; ask for your own with /song."


async def test_queue_cancel_and_usage(rig: Rig) -> None:
    admin_is_alice(rig)
    await rig.say("/song lo-fi | 30", rig.alice)
    track = await rig.tg.wait_for_audio(rig.group, timeout=WAIT)
    await wait_for_job(rig.core, job_id_of(track), {JobState.DELIVERED})
    rig.ws.faults.add_job(hang=True)
    status = await song_queued(rig, "/song drone | 20", rig.bob)
    job_id = job_id_of(status)
    await wait_for_job(rig.core, job_id, {JobState.RUNNING})

    queue = await says(rig, "/admin queue", rig.alice)
    assert queue.text is not None and queue.text.startswith("🎶 Songs in line here")
    assert f"#{job_id} drone — 20 s: running" in queue.text and "· Bob" in queue.text
    assert "lo-fi" not in queue.text

    answer = await says(rig, "/admin cancel 99999", rig.alice)
    assert answer.text == "⚠️ I can't find song #99999 in this chat."
    answer = await says(rig, f"/admin cancel {job_id}", rig.alice)
    assert answer.text == f"✖ Cancelled #{job_id}; its owner got the quota back."
    await rig.tg.wait_until(
        lambda: (status.text or "").startswith("✖"), what="Bob's status", timeout=WAIT
    )
    assert (status.text or "").startswith("✖ Cancelled by an admin. The quota has been given back.")
    # Edited straight to the admin wording, never first to the generic "Your quota…" line.
    assert not any("Your quota" in (text or "") for text in status.text_history)
    assert status.reply_markup is None
    assert (await rig.core.service.quota(requester(rig.bob))).used_seconds == 0
    empty = await says(rig, "/admin queue", rig.alice)
    assert empty.text == "📭 Nothing is queued or running in this chat."

    usage = await says(rig, "/admin usage", rig.alice)
    assert usage.text is not None and usage.text.startswith("📊 The last 30 days here\n")
    assert "• Alice: 1 song, 30 s, $0.0090 · last " in usage.text
    assert "• Bob: 1 song, 0 s, " in usage.text
    week = await says(rig, "/admin usage 7", rig.alice)
    assert (week.text or "").startswith("📊 The last 7 days here")


async def test_the_cancel_button_works_for_an_admin_not_for_other_members(rig: Rig) -> None:
    admin_is_alice(rig)
    carol = rig.tg.user(44, "Carol")
    rig.ws.faults.add_job(hang=True)
    status = await song_queued(rig, "/song drone | 40", rig.bob)
    job_id = job_id_of(status)
    await wait_for_job(rig.core, job_id, {JobState.RUNNING})

    query = await rig.tg.press_button(rig.group, carol, status, f"cx:{job_id}")
    answer = await rig.tg.wait_for_callback_answer(query, timeout=WAIT)
    assert answer.text == "Only the person who asked for that song can cancel it."
    assert answer.show_alert
    assert (await rig.core.service.get_job(job_id)).state == JobState.RUNNING  # type: ignore[union-attr]

    query = await rig.tg.press_button(rig.group, rig.alice, status, f"cx:{job_id}")
    answer = await rig.tg.wait_for_callback_answer(query, timeout=WAIT)
    assert answer.text == f"Cancelled #{job_id}; its owner got the quota back."
    await rig.tg.wait_until(
        lambda: (status.text or "").startswith("✖"), what="Bob's status", timeout=WAIT
    )
    assert (status.text or "").startswith("✖ Cancelled by an admin.")
    assert not any("Your quota" in (text or "") for text in status.text_history)
    assert (await rig.core.service.quota(requester(rig.bob))).used_seconds == 0


async def test_a_flagged_song_is_held_back_until_the_chat_allows_it(rig: Rig) -> None:
    admin_is_alice(rig)
    rig.ws.faults.add_job(nsfw=True, times=2)
    status = await song_queued(rig, "/song night club | 10", rig.bob)
    await wait_for_job(rig.core, job_id_of(status), {JobState.FAILED})
    # The hold is a new message that mentions Bob, and says an admin can allow such songs.
    hold = await rig.tg.wait_for_message(rig.group, "not safe", timeout=WAIT)
    assert hold is not status and hold.reply_to_message_id == status.reply_to_message_id
    assert (hold.text or "").startswith(
        f"⚠️ Bob: {messages.failure_message('nsfw')} An admin of this chat can allow such "
        "songs with /admin nsfw on."
    )
    assert [e["user"]["id"] for e in hold.entities if e["type"] == "text_mention"] == [rig.bob.id]
    assert hold.buttons == []  # trying again would be held back the same way
    assert not [m for m in rig.tg.chat_log(rig.group) if m.audio]

    answer = await says(rig, "/admin nsfw on", rig.alice)
    assert answer.text == (
        "✅ Songs the music engine flags as not safe for work will be posted here."
    )
    await song_queued(rig, "/song night club | 10", rig.bob)
    track = await rig.tg.wait_for_audio(rig.group, timeout=WAIT)
    assert "night club" in (track.caption or "")


async def test_if_telegram_cant_say_who_the_admins_are_songs_still_work(rig: Rig) -> None:
    admin_is_alice(rig)
    rig.tg.faults.add("getChatAdministrators", status=500, message="Internal error", times=2)
    answer = await says(rig, "/admin quota 5", rig.alice)
    assert answer.text is not None
    assert answer.text.startswith("⚠️ I couldn't check who the admins here are just now")
    assert await rig.core.service.admin.chat_rules("telegram", str(rig.group.id)) == ChatRules()
    await song_queued(rig, "/song rock | 10", rig.bob)  # without admin powers, but it works


async def test_the_admin_list_is_remembered_briefly_and_asked_once_at_a_time(
    tmp_path: Path, tg: FakeTelegram, ws: FakeWaveSpeed
) -> None:
    group = tg.group_chat(-100777, "Cache room")
    alice, bob = tg.user(42, "Alice"), tg.user(43, "Bob")
    tg.set_admins(group, [alice.id], owner_id=99)
    tg.user(99, "Owner")
    now = [1000.0]
    async with open_core(bot_settings(tmp_path, tg, ws)) as core, tg.bot() as bot:
        delivery = TelegramDelivery(bot, StatusBoard(bot))
        admins = ChatAdmins(core.service, delivery, ttl=60.0, clock=lambda: now[0])
        chat = Chat(group.id, Chat.SUPERGROUP, title=group.title)
        private = Chat(bob.id, Chat.PRIVATE)
        alice_user = person(User(alice.id, alice.first_name, is_bot=False))
        bob_user = person(User(bob.id, bob.first_name, is_bot=False))
        asked = len(tg.calls_to("getChatAdministrators"))

        together = await asyncio.gather(*(admins.is_admin(bot, chat, alice_user) for _ in range(5)))
        assert together == [True] * 5
        assert len(tg.calls_to("getChatAdministrators")) == asked + 1
        assert await admins.admin_ids(bot, group.id) == {alice.id, 99}

        tg.set_admins(group, [alice.id, bob.id])  # Bob promoted
        now[0] += 30
        assert not await admins.is_admin(bot, chat, bob_user)  # still the old list
        now[0] += 31
        assert await admins.is_admin(bot, chat, bob_user)
        assert len(tg.calls_to("getChatAdministrators")) == asked + 2

        # A private chat has no admins, and nobody is asked about it.
        assert not await admins.is_admin(bot, private, bob_user)
        who = await admins.requester(bot, bob_user, chat)
        assert (who.is_admin, who.roles) == (True, frozenset({"admins"}))
        assert len(tg.calls_to("getChatAdministrators")) == asked + 2


async def test_values_spelled_the_clis_way_or_the_chats_way_mean_the_same(rig: Rig) -> None:
    """One admin grammar (bot/admin_grammar.py): `acejam admin`'s 600 and a chat's 10m or
    10:00 are the same quota; what can't be used gets the sentence the CLI and Discord give."""
    admin_is_alice(rig)
    for spelled in ("600", "10m", "10:00"):
        answer = await says(rig, f"/admin quota {spelled}", rig.alice)
        assert answer.text == "✅ Everyone here now gets 10 min of music a day.", spelled
    for spelled in ("90", "1:30"):
        answer = await says(rig, f"/admin maxduration {spelled}", rig.alice)
        assert answer.text == "✅ Songs here can now be up to 90 s long.", spelled
    for spelled in ("true", "on"):
        answer = await says(rig, f"/admin buttons {spelled}", rig.alice)
        assert (answer.text or "").startswith("✅ Anyone here may now press"), spelled
    answer = await says(rig, "/admin nsfw maybe", rig.alice)
    assert answer.text == "⚠️ “maybe” isn't on or off: say on or off."
    rules = await rig.core.service.admin.chat_rules("telegram", str(rig.group.id))
    assert (rules.quota_seconds_per_day, rules.max_duration) == (600, 90)
