"""Messages: ``sendMessage``, the ``editMessage*`` family, ``deleteMessage`` and
``sendChatAction``; and what every sent or edited message goes through: its text or caption
rendered as Telegram stores it (limits, HTML, trimming, mentions), its inline keyboard checked,
its reply target found."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from tests.fakes.telegram.html import HtmlParseError, parse_html, trim
from tests.fakes.telegram.protocol import Params, bad
from tests.fakes.telegram.records import ChatAction, FakeChat, MessageEdit, RecordedMessage
from tests.fakes.telegram.state import World

TEXT_LIMIT = 4096
CAPTION_LIMIT = 1024
CALLBACK_DATA_LIMIT = 64
NOT_MODIFIED = (
    "message is not modified: specified new message content and reply markup are exactly the "
    "same as a current content and reply markup of the message"
)
_CHAT_ACTIONS = frozenset(
    {
        "typing",
        "upload_photo",
        "record_video",
        "upload_video",
        "record_voice",
        "upload_voice",
        "upload_document",
        "choose_sticker",
        "find_location",
        "record_video_note",
        "upload_video_note",
    }
)

Rendered = tuple[str | None, list[dict[str, Any]]]  # (visible text, entities)


# -- what a message carries ----------------------------------------------------------------


def render_text(world: World, params: Params, warnings: list[str]) -> tuple[str, list[Any]]:
    """A message's text as Telegram stores it; it must not be empty."""
    text, entities = _render(
        world, params, "text", "entities", TEXT_LIMIT, "message is too long", warnings
    )
    if not text:
        raise bad("message text is empty")
    return text, entities


def render_caption(world: World, params: Params, warnings: list[str]) -> Rendered:
    """A media message's caption as Telegram stores it (None when absent)."""
    return _render(
        world,
        params,
        "caption",
        "caption_entities",
        CAPTION_LIMIT,
        "message caption is too long",
        warnings,
    )


def _render(
    world: World,
    params: Params,
    text_field: str,
    entities_field: str,
    limit: int,
    too_long: str,
    warnings: list[str],
) -> Rendered:
    source = params.get_str(text_field)
    if source is None:
        return None, []
    explicit = params.get_json(entities_field, "entities")
    parse_mode = params.get_str("parse_mode")
    if isinstance(explicit, list):  # explicit entities win over parse_mode
        text, entities = source, explicit
    elif parse_mode and parse_mode.lower() == "html":
        try:
            text, entities = parse_html(source)
        except HtmlParseError as error:
            raise bad(f"can't parse entities: {error}") from None
    elif parse_mode and parse_mode.lower() in ("markdown", "markdownv2"):
        text, entities = source, []
        warnings.append(f"parse_mode {parse_mode} is not parsed by the fake; text kept as sent")
    elif parse_mode:
        raise bad("unsupported parse_mode")
    else:
        text, entities = source, []
    text, entities = trim(text, entities)
    if len(text) > limit:
        raise bad(too_long)
    return text, _mentions(world, entities)


def _mentions(world: World, entities: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A ``tg://user?id=`` link names a user the bot has met: Telegram shows it as a
    mention (which notifies them) with the whole user; one it doesn't know stays text."""
    kept = []
    for entity in entities:
        if entity["type"] == "text_mention":
            user = world.users.get(entity["user"]["id"])
            if user is None:
                continue
            entity = {**entity, "user": user.to_api()}
        kept.append(entity)
    return kept


@dataclass
class ParsedMarkup:
    keyboard: list[list[dict[str, Any]]] | None  # inline keyboard, the only kind a message keeps


def parse_reply_markup(params: Params, *, inline_only: bool) -> ParsedMarkup:
    raw = params.get_json("reply_markup", "reply keyboard markup")
    if raw is None:
        return ParsedMarkup(None)
    if not isinstance(raw, dict):
        raise bad("can't parse reply keyboard markup JSON object")
    if "inline_keyboard" not in raw:
        if inline_only or not {"keyboard", "remove_keyboard", "force_reply"} & raw.keys():
            raise bad("can't parse reply keyboard markup JSON object")
        return ParsedMarkup(None)  # reply keyboards live on the client, not in the message
    rows = raw["inline_keyboard"]
    if not isinstance(rows, list) or not all(isinstance(row, list) for row in rows):
        raise bad("can't parse inline keyboard markup JSON object")
    return ParsedMarkup([[_inline_button(button) for button in row] for row in rows])


def _inline_button(button: Any) -> dict[str, Any]:
    if not isinstance(button, dict) or not isinstance(button.get("text"), str):
        raise bad('can\'t parse inline keyboard button: Field "text" must be of type String')
    if "callback_data" in button:
        data = button["callback_data"]
        if not isinstance(data, str) or not 1 <= len(data.encode()) <= CALLBACK_DATA_LIMIT:
            raise bad("BUTTON_DATA_INVALID")
        return {"text": button["text"], "callback_data": data}
    if "url" in button:
        return {"text": button["text"], "url": button["url"]}
    if len(button) > 1:  # other kinds (web_app, switch_inline_query...): keep as sent
        return dict(button)
    raise bad(
        "can't parse inline keyboard button: Text buttons are unallowed in the inline keyboard"
    )


def reply_target(world: World, params: Params, chat: FakeChat) -> RecordedMessage | None:
    reply = params.get_json("reply_parameters", "reply parameters")
    message_id = params.get_int("reply_to_message_id")
    allow_missing = params.get_bool("allow_sending_without_reply")
    if isinstance(reply, dict):
        message_id = reply.get("message_id")
        allow_missing = bool(reply.get("allow_sending_without_reply"))
        if reply.get("chat_id") not in (None, chat.id):
            raise bad("cross-chat replies are not supported by the fake")
    if message_id is None:
        return None
    target = world.find_message(chat.id, int(message_id))
    if target is None or target.deleted:
        if allow_missing:
            return None
        raise bad("message to be replied not found")
    return target


def placed(
    world: World, params: Params, chat: FakeChat
) -> tuple[RecordedMessage | None, int | None]:
    """Where a new bot message goes: the message it replies to and its forum topic.

    In a forum a message goes to ``message_thread_id``'s topic (it must be one: "message
    thread not found"), or, without one, where the message it replies to is, or else to
    General. As on Telegram, a message in a topic that replies to nothing else replies to
    the topic's opening message. Outside forums ``message_thread_id`` names a reply thread,
    which the fake does not model."""
    reply_to = reply_target(world, params, chat)
    if not chat.is_forum:
        return reply_to, None
    thread = params.get_int("message_thread_id")
    if thread is None and reply_to is not None:
        thread = reply_to.thread_id
    if thread is None:
        return reply_to, None
    root = world.find_message(chat.id, thread)
    if root is None or root.topic_name is None:
        raise bad("message thread not found")
    return reply_to or root, thread


# -- the methods ---------------------------------------------------------------------------


def send_message(world: World, params: Params) -> dict[str, Any]:
    chat = world.writable_chat(params)
    warnings: list[str] = []
    text, entities = render_text(world, params, warnings)
    markup = parse_reply_markup(params, inline_only=False)
    reply_to, thread = placed(world, params, chat)
    message = world.add_message(
        chat,
        world.bot_user,
        text=text,
        entities=entities,
        source_text=params.get_str("text"),
        parse_mode=params.get_str("parse_mode"),
        keyboard=markup.keyboard,
        reply_to=reply_to,
        thread_id=thread,
        warnings=warnings,
    )
    return message.to_api()


def _editable(world: World, params: Params) -> RecordedMessage:
    if params.get("inline_message_id") is not None:
        raise bad("inline messages are not supported by the fake")
    chat = world.writable_chat(params)
    message_id = params.required_int("message_id", "message identifier is not specified")
    message = world.find_message(chat.id, message_id)
    if message is None or message.deleted:
        raise bad("message to edit not found")
    if not message.from_bot:
        raise bad("message can't be edited")
    return message


def _apply_edit(
    world: World,
    params: Params,
    message: RecordedMessage,
    method: str,
    warnings: list[str],
    changes: dict[str, Any],
) -> dict[str, Any]:
    """Edit ``message`` to ``changes`` (its text or caption and their entities) and the
    request's keyboard; the request's text or caption becomes the source text."""
    # No reply_markup in an edit means "no keyboard": Telegram drops the old one.
    keyboard = parse_reply_markup(params, inline_only=True).keyboard
    message.warnings.extend(warnings)  # kept even when the edit turns out "not modified"
    # Telegram compares what the user would see (parsed text, entities, keyboard), so
    # "<b>x</b>" -> "<strong>x</strong>" is "not modified" too.
    unchanged = keyboard == message.keyboard and all(
        getattr(message, name) == value for name, value in changes.items()
    )
    if unchanged:
        raise bad(NOT_MODIFIED)
    for name, value in changes.items():
        setattr(message, name, value)
    source_field = next((name for name in ("text", "caption") if name in changes), None)
    source = params.get_str(source_field) if source_field else None
    if source is not None:  # removing a caption leaves the last source text
        message.source_text = source
    message.keyboard = keyboard
    message.edit_date = int(time.time())
    message.edits.append(
        MessageEdit(method, message.text, message.caption, message.reply_markup, world.clock())
    )
    world.touch()
    return message.to_api()


def edit_message_text(world: World, params: Params) -> dict[str, Any]:
    message = _editable(world, params)
    if message.text is None:
        raise bad("there is no text in the message to edit")
    warnings: list[str] = []
    text, entities = render_text(world, params, warnings)
    changes = {"text": text, "entities": entities}
    return _apply_edit(world, params, message, "editMessageText", warnings, changes)


def edit_message_caption(world: World, params: Params) -> dict[str, Any]:
    message = _editable(world, params)
    if message.audio is None and message.document is None:
        raise bad("there is no caption in the message to edit")
    warnings: list[str] = []
    caption, entities = render_caption(world, params, warnings)
    changes = {"caption": caption or None, "caption_entities": entities}
    return _apply_edit(world, params, message, "editMessageCaption", warnings, changes)


def edit_message_reply_markup(world: World, params: Params) -> dict[str, Any]:
    message = _editable(world, params)
    return _apply_edit(world, params, message, "editMessageReplyMarkup", [], {})


def delete_message(world: World, params: Params) -> bool:
    chat = world.writable_chat(params)
    message_id = params.required_int("message_id", "message identifier is not specified")
    message = world.find_message(chat.id, message_id)
    if message is None or message.deleted:
        raise bad("message to delete not found")
    if not message.from_bot and chat.is_group and not world.is_admin(chat.id, world.bot_id):
        raise bad("message can't be deleted")
    message.deleted = True
    message.deleted_at = world.clock()
    world.touch()
    return True


def send_chat_action(world: World, params: Params) -> bool:
    chat = world.writable_chat(params)
    action = params.get_str("action")
    if action not in _CHAT_ACTIONS:
        raise bad("wrong parameter action in request")
    world.chat_actions.append(ChatAction(chat.id, action))
    world.touch()
    return True
