"""The Telegram fake is faithful: the real python-telegram-bot client, unmodified, sees what it
would see from Telegram (objects, errors, long polling, flood control)."""

from __future__ import annotations

import asyncio
import datetime as dtm
import io
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from PIL import Image
from telegram import Bot, InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.constants import ParseMode
from telegram.error import (
    BadRequest,
    EndPointNotFound,
    InvalidToken,
    NetworkError,
    RetryAfter,
    TimedOut,
)
from telegram.ext import Application, CallbackQueryHandler, CommandHandler, ContextTypes

from tests.fakes.audio import make_audio
from tests.fakes.telegram import FakeTelegram, FloodLimits, UploadedFile, parse_html

TOKEN = "123456:TEST-TOKEN"


class ManualClock:
    """A clock the test moves by hand, so flood windows are exact without sleeping."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
async def tg() -> AsyncIterator[FakeTelegram]:
    # time_scale=0.001: a nominal second of flood window is 1 ms, so sequential sends never
    # trip it, while concurrent bursts still would.
    async with FakeTelegram(token=TOKEN, bot_username="AceJamBot", time_scale=0.001) as fake:
        yield fake


@pytest.fixture
async def bot(tg: FakeTelegram) -> AsyncIterator[Bot]:
    async with tg.bot() as client:
        yield client


@asynccontextmanager
async def polling(app: Application) -> AsyncIterator[Application]:
    """PTB's documented manual lifecycle (what AceJam does, sharing the loop with Discord)."""
    async with app:
        await app.start()
        assert app.updater is not None
        await app.updater.start_polling(poll_interval=0, timeout=1)
        try:
            yield app
        finally:
            await app.updater.stop()
            await app.stop()


def keyboard(*pairs: tuple[str, str]) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup([[InlineKeyboardButton(t, callback_data=d) for t, d in pairs]])


def jpeg(size: int = 64) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (size, size), (200, 40, 90)).save(buf, "JPEG")
    return buf.getvalue()


async def test_get_me_token_and_unknown_method(tg: FakeTelegram, bot: Bot) -> None:
    assert (bot.id, bot.username, bot.first_name) == (123456, "AceJamBot", "AceJam")
    assert bot.bot.is_bot and bot.can_join_groups

    with pytest.raises(EndPointNotFound):
        await bot.do_api_request("flyToTheMoon")

    wrong = Bot("123456:WRONG-TOKEN", base_url=f"{tg.base_url}/bot")
    with pytest.raises(InvalidToken):
        await wrong.initialize()


async def test_polling_delivers_a_group_command_to_its_handler(tg: FakeTelegram) -> None:
    alice = tg.user(id=42, first_name="Alice", username="alice")
    group = tg.group_chat(-100777, "Jam room")

    async def on_song(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        assert update.effective_message is not None
        prompt = " ".join(context.args or [])
        await update.effective_message.reply_text(f"Making a {prompt} song", do_quote=True)

    app = tg.application_builder().build()
    app.add_handler(CommandHandler("song", on_song))
    async with polling(app):
        sent = await tg.send_message(group, alice, "/song@AceJamBot lo-fi")
        reply = await tg.wait_for_message(group, "Making a lo-fi song")
        await tg.wait_until(lambda: tg.pending_updates == 0, what="the update confirmed")

    assert sent["entities"] == [{"type": "bot_command", "offset": 0, "length": 15}]
    assert reply.reply_to_message_id == sent["message_id"]
    assert reply.message_id == sent["message_id"] + 1  # ids are per chat, shared with users
    assert reply.from_bot and reply.chat.title == "Jam room"
    assert [m for m, _ in tg.calls][:2] == ["getMe", "deleteWebhook"]


async def test_long_poll_returns_as_soon_as_an_update_arrives(tg: FakeTelegram, bot: Bot) -> None:
    alice = tg.user(id=42, first_name="Alice")
    chat = tg.private_chat(alice)

    poll = asyncio.create_task(bot.get_updates(timeout=30))
    await tg.wait_until(lambda: tg.calls_to("getUpdates"), what="a long poll")
    assert not poll.done()
    await tg.send_message(chat, alice, "hello 😀 /start")
    updates = await asyncio.wait_for(poll, 5)  # long before the 30 s poll timeout

    assert len(updates) == 1
    message = updates[0].message
    assert message is not None and message.text == "hello 😀 /start"
    assert message.entities[0].offset == 9  # UTF-16 units: the emoji counts twice
    assert tg.pending_updates == 1  # delivered but not confirmed yet
    assert await bot.get_updates(offset=updates[0].update_id + 1, timeout=0) == ()
    assert tg.pending_updates == 0


async def test_group_privacy_mode_filters_what_the_bot_receives(tg: FakeTelegram, bot: Bot) -> None:
    alice = tg.user(id=42, first_name="Alice")
    group = tg.group_chat(-100777, "Jam room")
    await tg.send_message(group, alice, "just chatting")
    await tg.send_message(group, alice, "/song@OtherBot jazz")
    assert tg.pending_updates == 0

    ours = await bot.send_message(group.id, "Want a song?")
    await tg.send_message(group, alice, "yes please", reply_to=ours.message_id)
    await tg.send_message(group, alice, "/song jazz")
    updates = await bot.get_updates(timeout=0)
    assert [u.message.text for u in updates if u.message] == ["yes please", "/song jazz"]


async def test_send_edit_round_trip_and_not_modified(tg: FakeTelegram, bot: Bot) -> None:
    alice = tg.user(id=42, first_name="Alice")
    chat = tg.private_chat(alice)
    cancel = keyboard(("Cancel", "cancel:7"))

    sent = await bot.send_message(
        chat.id, "<b>Queued</b>  ", parse_mode=ParseMode.HTML, reply_markup=cancel
    )
    assert sent.text == "Queued"  # tags parsed, whitespace trimmed, as Telegram stores it
    assert sent.entities[0].type == "bold"
    assert sent.reply_markup == cancel

    progress = "Generating… 40%"
    edited = await bot.edit_message_text(progress, chat.id, sent.message_id, reply_markup=cancel)
    assert isinstance(edited, type(sent)) and edited.edit_date is not None

    with pytest.raises(BadRequest, match=r"(?i)message is not modified"):
        await bot.edit_message_text(progress, chat.id, sent.message_id, reply_markup=cancel)
    with pytest.raises(BadRequest, match=r"(?i)message to edit not found"):
        await bot.edit_message_text("Done", chat.id, 999)

    # An edit without reply_markup drops the keyboard, as on Telegram.
    await bot.edit_message_text("Done", chat.id, sent.message_id)
    [message] = tg.chat_log(chat)
    assert message.text == "Done" and message.reply_markup is None
    assert message.text_history == ["Queued", "Generating… 40%", "Done"]
    assert [b.text for b in message.edits[0].buttons] == ["Cancel"]  # kept by the 1st edit

    assert await bot.delete_message(chat.id, sent.message_id)
    assert message.deleted
    with pytest.raises(BadRequest, match=r"(?i)message to delete not found"):
        await bot.delete_message(chat.id, sent.message_id)


async def test_send_audio_multipart_with_thumbnail(
    tg: FakeTelegram, bot: Bot, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PTB_TIMEDELTA", "true")  # PTB 22.2+ warns unless durations are timedeltas
    alice = tg.user(id=42, first_name="Alice")
    chat = tg.private_chat(alice)
    song, cover = make_audio(2.0, "mp3"), jpeg()

    sent = await bot.send_audio(
        chat.id,
        song,
        filename="lofi.mp3",
        title="Lo-fi rain",
        performer="AceJam",
        thumbnail=cover,
        caption="<i>Your song</i>",
        parse_mode=ParseMode.HTML,
        reply_markup=keyboard(("🔁 Reroll", "rr:7")),
    )
    assert sent.audio is not None and sent.audio.title == "Lo-fi rain"
    assert sent.audio.duration == dtm.timedelta(seconds=2)  # probed from the MP3
    assert sent.audio.thumbnail is not None and sent.audio.thumbnail.width == 64
    assert sent.caption == "Your song"

    recorded = await tg.wait_for_audio(chat)
    assert recorded.audio is not None
    assert recorded.audio.data == song and recorded.thumbnail == cover
    assert (recorded.audio.filename, recorded.audio.mime_type) == ("lofi.mp3", "audio/mpeg")
    assert (recorded.audio.title, recorded.audio.performer, recorded.audio.duration) == (
        "Lo-fi rain",
        "AceJam",
        2,
    )
    assert recorded.button("Reroll").callback_data == "rr:7"
    # PTB uploads the audio as a part named "audio" and the thumbnail via attach://
    params = tg.calls_to("sendAudio")[0]
    assert isinstance(params["audio"], UploadedFile)
    assert params["thumbnail"].startswith("attach://")

    file = await bot.get_file(sent.audio.file_id)
    assert bytes(await file.download_as_bytearray()) == song

    await bot.edit_message_caption(chat.id, sent.message_id, caption="Your song (v2)")
    assert recorded.caption == "Your song (v2)" and recorded.reply_markup is None
    with pytest.raises(BadRequest, match=r"(?i)message is not modified"):
        await bot.edit_message_reply_markup(chat.id, sent.message_id)
    with pytest.raises(BadRequest, match=r"(?i)there is no text in the message to edit"):
        await bot.edit_message_text("text?", chat.id, sent.message_id)

    # Not MP3/M4A: Telegram shows it as a document, not in the music player.
    wav = await bot.send_audio(chat.id, make_audio(1.0, "wav"), filename="take.wav")
    assert wav.audio is None and wav.document is not None
    assert "not MP3/M4A" in tg.chat_log(chat)[-1].warnings[0]


async def test_upload_over_the_limit_is_413(tg: FakeTelegram, bot: Bot) -> None:
    chat = tg.private_chat(tg.user(id=42, first_name="Alice"))
    tg.upload_limit = 10_000
    with pytest.raises(NetworkError, match=r"Request Entity Too Large"):
        await bot.send_audio(chat.id, b"\xff" * 20_000, filename="big.mp3")
    assert tg.chat_log(chat) == []


async def test_scripted_429_raises_retry_after(
    tg: FakeTelegram, bot: Bot, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PTB_TIMEDELTA", "true")
    chat = tg.private_chat(tg.user(id=42, first_name="Alice"))
    tg.faults.add("sendAudio", status=429, retry_after=7, times=1)

    with pytest.raises(RetryAfter) as caught:
        await bot.send_audio(chat.id, make_audio(1.0, "mp3"), filename="a.mp3")
    assert caught.value.retry_after == dtm.timedelta(seconds=7)
    assert [(e.method, e.retry_after, e.scope) for e in tg.flood_errors] == [
        ("sendAudio", 7, "fault")
    ]
    await bot.send_audio(chat.id, make_audio(1.0, "mp3"), filename="a.mp3")  # once only
    assert len(tg.chat_log(chat)) == 1


async def test_flood_control_per_chat_bucket_and_per_group_window(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PTB_TIMEDELTA", "true")
    clock = ManualClock()
    async with FakeTelegram(token=TOKEN, clock=clock) as tg, tg.bot() as bot:
        chat = tg.private_chat(tg.user(id=42, first_name="Alice"))
        results = await asyncio.gather(
            *(bot.send_message(chat.id, f"progress {n}") for n in range(10)),
            return_exceptions=True,
        )
        floods = [r for r in results if isinstance(r, RetryAfter)]
        assert len(floods) == 7 and len(tg.chat_log(chat)) == 3  # burst of 3
        assert {f.retry_after for f in floods} == {dtm.timedelta(seconds=1)}
        assert len(tg.flood_errors) == 7 and tg.flood_errors[0].scope == "chat"

        clock.advance(1.0)  # a token back after a second, not more
        await bot.send_message(chat.id, "after waiting")
        with pytest.raises(RetryAfter):
            await bot.edit_message_text("edits count too", chat.id, 1)

        tg.flood_limits = FloodLimits(chat_burst=100, chat_per_second=100)
        group = tg.group_chat(-100777, "Jam room")
        for n in range(20):
            await bot.send_message(group.id, f"msg {n}")
            clock.advance(1.0)
        with pytest.raises(RetryAfter) as caught:
            await bot.send_message(group.id, "one too many")
        assert caught.value.retry_after == dtm.timedelta(seconds=40)  # 60 s after the first
        assert tg.flood_errors[-1].scope == "group"


async def test_button_press_reaches_callback_handler_and_answer_is_recorded(
    tg: FakeTelegram,
) -> None:
    alice = tg.user(id=42, first_name="Alice")
    chat = tg.private_chat(alice)

    async def on_reroll(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        query = update.callback_query
        assert query is not None and query.data is not None
        await query.answer("Rerolling…")
        await query.edit_message_text(f"Rerolled job {query.data.split(':')[1]}")

    app = tg.application_builder().build()
    app.add_handler(CallbackQueryHandler(on_reroll, pattern=r"^rr:\d+$"))
    async with polling(app):
        sent = await app.bot.send_message(chat.id, "Done", reply_markup=keyboard(("🔁", "rr:7")))
        query_id = await tg.press_button(chat, alice, sent.message_id, "rr:7")
        answer = await tg.wait_for_callback_answer(query_id)
        await tg.wait_for_message(chat, "Rerolled job 7")

        with pytest.raises(BadRequest, match=r"(?i)query is too old"):
            await app.bot.answer_callback_query(query_id)
        with pytest.raises(AssertionError, match=r"no button"):
            await tg.press_button(chat, alice, sent.message_id, "rr:8")

    assert (answer.text, answer.show_alert) == ("Rerolling…", False)


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("1 < 2", 'unsupported start tag "" at byte offset 2'),
        ("<b>bold", "can't find end tag corresponding to start tag b"),
        ("<br>", 'unsupported start tag "br" at byte offset 0'),
        ("<b>x</i>", 'unmatched end tag at byte offset 4, expected "</b>", found "</i>"'),
        ("<span>x</span>", 'tag "span" must have class "tg-spoiler" at byte offset 0'),
    ],
)
async def test_malformed_html_is_rejected(
    tg: FakeTelegram, bot: Bot, text: str, reason: str
) -> None:
    chat = tg.private_chat(tg.user(id=42, first_name="Alice"))
    with pytest.raises(BadRequest) as caught:
        await bot.send_message(chat.id, text, parse_mode=ParseMode.HTML)
    # PTB strips "Bad Request: " and capitalize()s the rest, lower-casing Telegram's text.
    assert caught.value.message == f"Can't parse entities: {reason}".capitalize()


def test_html_parsing_matches_telegram() -> None:
    # An unknown "&name" stays literal text in tdlib; only "<" must be escaped.
    assert parse_html("rock &amp; roll &copy; &lt;3") == ("rock & roll &copy; <3", [])
    assert parse_html('<a href="https://x.io/?a=1&amp;b=2">link</a> 😀<b>é</b>') == (
        "link 😀é",
        [
            {"offset": 0, "length": 4, "type": "text_link", "url": "https://x.io/?a=1&b=2"},
            {"offset": 7, "length": 1, "type": "bold"},
        ],
    )
    text, [entity] = parse_html('<pre><code class="language-py">x = 1</code></pre>')
    assert (text, entity["type"], entity["language"]) == ("x = 1", "pre", "py")


async def test_limits_text_caption_and_callback_data(tg: FakeTelegram, bot: Bot) -> None:
    chat = tg.private_chat(tg.user(id=42, first_name="Alice"))
    with pytest.raises(BadRequest, match=r"^Message is too long$"):
        await bot.send_message(chat.id, "x" * 4097)
    # The limit applies to the visible text, after entity parsing.
    await bot.send_message(chat.id, "<b>" + "x" * 4096 + "</b>", parse_mode=ParseMode.HTML)
    with pytest.raises(BadRequest, match=r"^Message caption is too long$"):
        await bot.send_document(chat.id, b"data", filename="a.txt", caption="c" * 1025)
    with pytest.raises(BadRequest, match=r"(?i)^button_data_invalid$"):
        await bot.send_message(chat.id, "pick", reply_markup=keyboard(("x", "d" * 65)))
    with pytest.raises(BadRequest, match=r"(?i)chat not found"):
        await bot.send_message(987654, "hello?")
    assert len(tg.chat_log(chat)) == 1


async def test_server_faults_and_lost_responses(tg: FakeTelegram, bot: Bot) -> None:
    chat = tg.private_chat(tg.user(id=42, first_name="Alice"))
    tg.faults.add("sendMessage", status=500)
    with pytest.raises(NetworkError, match=r"Internal Server Error"):
        await bot.send_message(chat.id, "one")
    tg.faults.add("sendMessage", status=502)
    with pytest.raises(NetworkError, match=r"Bad Gateway"):
        await bot.send_message(chat.id, "two")
    assert tg.chat_log(chat) == []

    # Carried out, but the answer is too late: the client times out, the user sees it anyway.
    tg.faults.add("sendMessage", delay_response=0.3)
    with pytest.raises(TimedOut):
        await bot.send_message(chat.id, "three", read_timeout=0.05)
    assert [m.text for m in tg.chat_log(chat)] == ["three"]


async def test_commands_chat_info_and_admins(tg: FakeTelegram, bot: Bot) -> None:
    from telegram import BotCommand, BotCommandScopeAllChatAdministrators

    alice = tg.user(id=42, first_name="Alice")
    bob = tg.user(id=43, first_name="Bob")
    group = tg.group_chat(-100777, "Jam room")
    tg.set_admins(group, [alice.id, tg.bot_id])

    assert await bot.set_my_commands([BotCommand("song", "Make a song")])
    admin_scope = BotCommandScopeAllChatAdministrators()
    assert await bot.set_my_commands([BotCommand("quota", "Set quotas")], scope=admin_scope)
    assert [c.command for c in await bot.get_my_commands()] == ["song"]
    assert tg.command_names() == ["song"]
    assert tg.command_names("all_chat_administrators") == ["quota"]
    with pytest.raises(BadRequest, match=r"(?i)bot_command_invalid"):
        await bot.set_my_commands([BotCommand("Song!", "bad")])
    assert await bot.delete_my_commands(scope=admin_scope)
    assert tg.command_names("all_chat_administrators") == []

    info = await bot.get_chat(group.id)
    assert (info.title, info.type) == ("Jam room", "supergroup")
    admins = await bot.get_chat_administrators(group.id)
    assert sorted(a.user.id for a in admins) == [alice.id, tg.bot_id]
    assert (await bot.get_chat_member(group.id, bob.id)).status == "left"
    await tg.send_message(group, bob, "/song hi")
    assert (await bot.get_chat_member(group.id, bob.id)).status == "member"

    await bot.send_chat_action(group.id, "upload_voice")
    assert [(a.chat_id, a.action) for a in tg.chat_actions] == [(group.id, "upload_voice")]


async def test_writing_as_the_group_or_a_channel_hides_the_person(
    tg: FakeTelegram, bot: Bot
) -> None:
    from telegram.constants import ChatID

    alice = tg.user(id=42, first_name="Alice")
    bob = tg.user(id=43, first_name="Bob")
    group = tg.group_chat(-100777, "Jam room")
    news = tg.channel(-1001234567890, "Bob's news")
    tg.set_admins(group, [alice.id], anonymous=[alice.id])
    with pytest.raises(AssertionError, match="not an anonymous admin"):
        await tg.send_message(group, bob, "/song hi", sender_chat=group)

    await tg.send_message(group, alice, "/song as the group", sender_chat=group)
    await tg.send_message(group, bob, "/song as my channel", sender_chat=news)
    updates = await bot.get_updates(timeout=0)
    messages = [u.message for u in updates if u.message]
    assert [(m.from_user.id, m.from_user.username) for m in messages if m.from_user] == [
        (ChatID.ANONYMOUS_ADMIN, "GroupAnonymousBot"),
        (ChatID.FAKE_CHANNEL, "Channel_Bot"),
    ]
    assert [(m.sender_chat.id, m.sender_chat.type) for m in messages if m.sender_chat] == [
        (group.id, "supergroup"),
        (news.id, "channel"),
    ]
    [member] = await bot.get_chat_administrators(group.id)
    assert member.user.id == alice.id and getattr(member, "is_anonymous", False)
    assert not any(m.from_bot for m in tg.chat_log(group))


async def test_waiters_fail_loudly_with_the_chat_contents(tg: FakeTelegram, bot: Bot) -> None:
    chat = tg.private_chat(tg.user(id=42, first_name="Alice"))
    await bot.send_message(chat.id, "Queued (position 2)")
    with pytest.raises(AssertionError) as caught:
        await tg.wait_for_message(chat, "Done", timeout=0.05)
    assert "Queued (position 2)" in str(caught.value)
    assert "sendMessage" in str(caught.value)


async def test_blocked_user_and_kicked_bot_are_forbidden(tg: FakeTelegram, bot: Bot) -> None:
    from telegram.error import Forbidden

    chat = tg.private_chat(tg.user(id=42, first_name="Alice"))
    group = tg.group_chat(-100777, "Jam room")
    tg.set_blocked(chat)
    tg.set_blocked(group)
    with pytest.raises(Forbidden, match=r"bot was blocked by the user"):
        await bot.send_message(chat.id, "your song is ready")
    with pytest.raises(Forbidden, match=r"bot was kicked from the supergroup chat"):
        await bot.send_chat_action(group.id, "typing")
    tg.set_blocked(chat, blocked=False)
    await bot.send_message(chat.id, "welcome back")


async def test_local_mode_sends_files_by_path(tmp_path: Path) -> None:
    song = tmp_path / "song.mp3"
    song.write_bytes(make_audio(1.0, "mp3"))
    async with (
        FakeTelegram(token=TOKEN, local_mode=True, time_scale=0.001) as tg,
        tg.bot() as bot,
    ):
        assert tg.upload_limit == 2000 * 1024 * 1024
        chat = tg.private_chat(tg.user(id=42, first_name="Alice"))
        await bot.send_audio(chat.id, song, title="Local")
        # PTB in local mode sends a file:// URI instead of uploading the bytes.
        assert tg.calls_to("sendAudio")[0]["audio"] == song.as_uri()
        recorded = await tg.wait_for_audio(chat)
        assert recorded.audio is not None
        assert (recorded.audio.data, recorded.audio.filename) == (song.read_bytes(), "song.mp3")
