"""What a chat shouldn't have to put up with: a silent private chat, personal answers left
lying around a group, limits only admins may read."""

from __future__ import annotations

from adapters.telegram.handlers import PERSONAL_SECONDS
from tests.adapters.telegram.conftest import WAIT, Rig
from tests.harness import POLL_SCALE

HINT = (
    "🎵 To make a song, send /song and a style, like /song lo-fi, rainy piano | 1:30. "
    "/help tells more."
)


async def test_a_private_chat_never_goes_silent_and_a_group_stays_quiet(rig: Rig) -> None:
    private = rig.tg.private_chat(rig.alice)
    for text in ("hello?", "make me a song about cats", "/sing cats"):
        asked = await rig.say(text, chat=private)
        answer = await rig.reply_to(asked, chat=private)
        assert answer.text == HINT, text

    await rig.say("/sing cats")  # an unknown command in the group: no answer there
    help_ = await rig.ask("/help")  # answered after it, so it was seen and passed over
    assert rig.tg.chat_log(rig.group) == [help_]
    assert rig.ws.submits == []


async def test_personal_answers_leave_a_group_after_a_while(rig: Rig) -> None:
    answers = [await rig.ask(command) for command in ("/quota", "/queue", "/history")]
    for answer in answers:
        assert (answer.text or "").endswith("🧹 Removed in 1 min to keep the chat tidy.")
    await rig.tg.wait_until(
        lambda: all(answer.deleted for answer in answers), what="answers tidied", timeout=WAIT
    )
    for answer in answers:
        assert answer.deleted_at is not None
        assert answer.deleted_at - answer.sent_at >= PERSONAL_SECONDS * POLL_SCALE * 0.95

    # In a private chat they are the user's own and stay.
    private = rig.tg.private_chat(rig.alice)
    quota = await rig.reply_to(await rig.say("/quota", chat=private), chat=private)
    assert "Removed" not in (quota.text or "")


async def test_any_member_may_read_the_chats_limits(rig: Rig) -> None:
    rig.tg.set_admins(rig.group, [rig.alice.id])
    limits = await rig.ask("/limits", rig.bob)  # Bob is no admin
    assert limits.text == (
        "📏 Limits in Jam room\n"
        "Daily music per person: 10 min a day (the default)\n"
        "Song length: 5 s to 240 s (without one: 60 s)\n"
        "Songs in the works at once: 2 each, 10 in this chat\n"
        "🎲 / 🔁 under a song: its owner\n"
        "Songs flagged as not safe for work: held back"
    )
    await rig.ask("/admin maxduration 30", rig.alice)
    await rig.ask("/admin buttons on", rig.alice)
    limits = await rig.ask("/limits", rig.bob)
    assert "Song length: 5 s to 30 s (without one: 30 s)" in (limits.text or "")
    assert "🎲 / 🔁 under a song: anyone here" in (limits.text or "")
