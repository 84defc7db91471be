"""A loopback fake of the Telegram Bot API that the real python-telegram-bot client can drive.

Usage (PTB's own lifecycle, without ``run_polling``, as AceJam shares its event loop)::

    async with FakeTelegram() as tg:
        alice = tg.user(id=42, first_name="Alice", username="alice")
        group = tg.group_chat(-100123, "Jam room")
        app = tg.application_builder().build()
        app.add_handler(CommandHandler("song", on_song))
        async with app:
            await app.start()
            await app.updater.start_polling(poll_interval=0, timeout=1)
            await tg.send_message(group, alice, "/song@AceJamBot lo-fi")
            reply = await tg.wait_for_message(group, "lo-fi")     # what the user sees
            await app.updater.stop()
            await app.stop()

The server speaks the wire protocol PTB speaks: ``POST {base_url}/bot<token>/<method>`` with a
form-urlencoded body (multipart when files are uploaded) whose non-string values are JSON text,
answered with ``{"ok": true, "result": ...}`` or ``{"ok": false, "error_code", "description",
"parameters"}``. It reproduces the Telegram behaviours a bot has to survive, each with the real
error text so the client raises the same exception it would in production:

* limits: text 4096 / caption 1024 characters (after entity parsing), ``callback_data`` 1-64 bytes,
  uploads 50 MB (2000 MB in ``local_mode``) -> 413, getFile downloads 20 MB ("file is too
  big" past it, as for the audio, voice notes and documents users send with ``send_file``);
* HTML ``parse_mode`` is parsed with a port of tdlib's ``parse_html`` (same tags, entity decoding
  and error texts), and the stored text is what the user sees (tags stripped, whitespace trimmed);
* edits: "message is not modified", "message to edit not found"; an edit without
  ``reply_markup`` removes the inline keyboard, as on Telegram;
* flood control: a per-chat token bucket, a per-group 20/minute window and a global 30/s window,
  all in *nominal* seconds shrunk by ``time_scale``, answering 429 with ``retry_after``;
* ``getUpdates`` long polling with offsets, ``allowed_updates``, the 409 "terminated by other
  getUpdates request" for a superseded poll, and group privacy mode;
* ``sendAudio`` accepts MP3/M4A into the music player (probed with mutagen, which also fills in a
  missing duration/title/performer); anything else arrives as a document, and a thumbnail that is
  not a JPEG <= 200 kB and <= 320 px is silently dropped. Both are noted in ``warnings``;
* ``sendMediaGroup`` sends up to 10 audio files (or documents) as an album: messages sharing a
  ``media_group_id`` (``wait_for_album``, ``album_of``), each with its own caption and title,
  and no buttons (it takes no ``reply_markup``);
* forum topics (``group_chat(..., forum=True)``, ``forum_topic``): a message written in a
  topic (``send_message(..., thread=)``) carries ``message_thread_id`` and
  ``is_topic_message`` and replies to the topic's opening message; the bot's messages go to
  the topic ``message_thread_id`` names ("message thread not found" otherwise), or to the
  topic of the message they reply to, or to General.

Tests inject users' actions (``send_message``, ``send_file``, ``press_button``, ``set_blocked``), read what
the bot did (``chat_log``, ``calls``, ``callback_answers``, ``commands``, ``flood_errors``,
``errors``) and wait for it without sleeping (``wait_for_message``, ``wait_for_audio``, ...),
which fail with a dump of the chat and the last calls. Faults: ``tg.faults.add(...)``, in the
common fault model (``tests/fakes/common``), which also gives the fake its loopback lifecycle.

Where things are: ``server`` (FakeTelegram, lifecycle, routing table, one request's path),
``routes/`` (the Bot API methods by area: ``updates``, ``bot``, ``messages``, ``media``,
``albums``, ``callbacks``, ``chats``), ``state`` (the model of the world), ``scene`` (what
tests set up and users do), ``readback`` (what tests read and wait for), ``records`` (the record types),
``faults``, ``flood``, ``html`` (tdlib's parse_html) and ``protocol`` (the wire format).
"""

from tests.fakes.telegram.flood import FloodLimits
from tests.fakes.telegram.html import HtmlParseError, command_entities, parse_html, utf16_len
from tests.fakes.telegram.records import (
    Button,
    Call,
    CallbackAnswer,
    ChatAction,
    ErrorReply,
    FakeChat,
    FakeUser,
    FloodError,
    MessageEdit,
    RecordedFile,
    RecordedMessage,
    UploadedFile,
)
from tests.fakes.telegram.server import FakeTelegram

__all__ = [
    "Button",
    "Call",
    "CallbackAnswer",
    "ChatAction",
    "ErrorReply",
    "FakeChat",
    "FakeTelegram",
    "FakeUser",
    "FloodError",
    "FloodLimits",
    "HtmlParseError",
    "MessageEdit",
    "RecordedFile",
    "RecordedMessage",
    "UploadedFile",
    "command_entities",
    "parse_html",
    "utf16_len",
]
