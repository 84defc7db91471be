"""Making, editing and announcing messages: attachments from multipart uploads, the edit rules
(which flags may change), and MESSAGE_* dispatches as the bot's intents allow."""

from __future__ import annotations

import mimetypes
from collections.abc import Sequence
from typing import TYPE_CHECKING

from tests.fakes.discord.gateway import Gateway
from tests.fakes.discord.payloads import message_payload
from tests.fakes.discord.protocol import (
    EPHEMERAL,
    INTENT_DIRECT_MESSAGES,
    INTENT_GUILD_MESSAGES,
    INTENT_MESSAGE_CONTENT,
    IS_COMPONENTS_V2,
    LOADING,
    SUPPRESS_EMBEDS,
    Json,
    api_error,
    as_int,
)
from tests.fakes.discord.records import (
    MessageVia,
    RecordedAttachment,
    RecordedEdit,
    RecordedMessage,
    UploadedFile,
)
from tests.fakes.discord.state import State

if TYPE_CHECKING:
    from tests.fakes.discord.interaction import FakeInteraction


class Messages:
    """What every route that posts or edits a message shares."""

    def __init__(self, state: State, gateway: Gateway) -> None:
        self.state = state
        self.gateway = gateway

    def check_upload(self, files: Sequence[UploadedFile], guild_id: int | None) -> None:
        """Each file within the guild's upload limit, and all of them within one request's."""
        limit = self.state.filesize_limit(guild_id)
        if any(len(f.data) > limit for f in files):
            raise api_error("too_large")
        if sum(len(f.data) for f in files) > max(limit, self.state.max_request_bytes):
            raise api_error("too_large")

    def new(
        self,
        channel_id: int,
        guild_id: int | None,
        author_id: int,
        via: MessageVia,
        payload: Json,
        files: Sequence[UploadedFile],
        *,
        type_: int = 0,
        interaction: FakeInteraction | None = None,
    ) -> RecordedMessage:
        msg = RecordedMessage(
            id=self.state.snowflake(),
            channel_id=channel_id,
            guild_id=guild_id,
            author_id=author_id,
            via=via,
            type=type_,
            created_at=self.state.now(),
            created_wall=self.state.clock.wall(),
        )
        if interaction is not None:
            msg.interaction_id = interaction.id
            msg.interaction_user_id = interaction.user_id
        msg.content = payload.get("content") or ""
        msg.embeds = list(payload.get("embeds") or [])
        msg.raw_components = list(payload.get("components") or [])
        msg.flags = int(payload.get("flags") or 0)
        if via == "channel":
            msg.flags &= ~EPHEMERAL  # only interaction messages can be ephemeral
        msg.allowed_mentions = payload.get("allowed_mentions")
        msg.tts = bool(payload.get("tts"))
        msg.attachments = self._attachments_for(msg, payload, files)
        self.state.messages[msg.id] = msg
        self.state.channel_order.setdefault(channel_id, []).append(msg.id)
        return msg

    def for_interaction(
        self,
        inter: FakeInteraction,
        via: MessageVia,
        payload: Json,
        files: Sequence[UploadedFile],
    ) -> RecordedMessage:
        """A message the bot makes by answering ``inter`` (a reply to a slash command is type 20)."""
        return self.new(
            inter.channel_id,
            inter.guild_id,
            self.state.bot_user_id,
            via,
            payload,
            files,
            type_=20 if inter.type == 2 else 0,
            interaction=inter,
        )

    def _attachments_for(
        self, msg: RecordedMessage, payload: Json, files: Sequence[UploadedFile]
    ) -> list[RecordedAttachment]:
        by_field = {f.field: f for f in files}
        existing = {a.id: a for a in msg.attachments}
        out: list[RecordedAttachment] = []
        used: set[str] = set()
        specs = payload.get("attachments")
        if specs is None:
            specs = [] if files else [{"id": a.id} for a in msg.attachments]
        for spec in specs:
            sid = spec.get("id")
            upload = by_field.get(f"files[{sid}]")
            if upload is not None and f"files[{sid}]" not in used:
                used.add(f"files[{sid}]")
                out.append(self.store_attachment(msg.channel_id, upload, spec))
            elif sid is not None and as_int(sid) in existing:
                out.append(existing[as_int(sid)])
        # Parts the attachments array did not mention still get attached, in order.
        for f in files:
            if f.field not in used:
                out.append(self.store_attachment(msg.channel_id, f, {}))
        return out

    def store_attachment(
        self, channel_id: int, upload: UploadedFile, spec: Json
    ) -> RecordedAttachment:
        aid = self.state.snowflake()
        filename = spec.get("filename") or upload.filename
        guessed, _ = mimetypes.guess_type(filename)
        att = RecordedAttachment(
            id=aid,
            filename=filename,
            data=upload.data,
            content_type=guessed,
            upload_content_type=upload.content_type,
            description=spec.get("description"),
            url=f"{self.state.cdn_url}/attachments/{channel_id}/{aid}/{filename}",
            spoiler=filename.startswith("SPOILER_"),
        )
        self.state.attachments[aid] = att
        return att

    def apply_edit(
        self,
        msg: RecordedMessage,
        payload: Json,
        files: Sequence[UploadedFile],
        via: str,
        *,
        mark_edited: bool = True,
        clear_loading: bool = False,
    ) -> None:
        if "content" in payload:
            msg.content = payload["content"] or ""
        if "embeds" in payload:
            msg.embeds = list(payload["embeds"] or [])
        if "components" in payload:
            msg.raw_components = list(payload["components"] or [])
        if payload.get("flags") is not None:
            new = int(payload["flags"])
            # An edit may only toggle SUPPRESS_EMBEDS (and opt into components v2); EPHEMERAL
            # and LOADING belong to the server (a defer's ephemerality sticks).
            changeable = SUPPRESS_EMBEDS | IS_COMPONENTS_V2
            msg.flags = (msg.flags & ~SUPPRESS_EMBEDS) | (new & changeable)
        if clear_loading:
            msg.flags &= ~LOADING
        if "allowed_mentions" in payload:
            msg.allowed_mentions = payload["allowed_mentions"]
        if "attachments" in payload or files:
            msg.attachments = self._attachments_for(msg, payload, files)
        if mark_edited:
            msg.edited_wall = self.state.clock.wall()
        msg.edits.append(
            RecordedEdit(dict(payload), [f.filename for f in files], via, self.state.now())
        )

    async def emit(self, event: str, msg: RecordedMessage) -> None:
        """Gateway MESSAGE_* to the bot, as Discord does for non-ephemeral messages."""
        if msg.ephemeral:
            return
        session = self.gateway.session_for(msg.guild_id, required=False)
        if session is None:
            return
        wanted = INTENT_GUILD_MESSAGES if msg.guild_id else INTENT_DIRECT_MESSAGES
        if not session.intents & wanted:
            return
        if event == "MESSAGE_DELETE":
            data: Json = {"id": str(msg.id), "channel_id": str(msg.channel_id)}
            if msg.guild_id:
                data["guild_id"] = str(msg.guild_id)
        else:
            data = message_payload(self.state, msg, for_gateway=True)
            content_visible = (
                msg.author_id == self.state.bot_user_id
                or session.intents & INTENT_MESSAGE_CONTENT
                or self.state.bot_user_id in msg.pings.users
            )
            if not content_visible:
                data.update(content="", embeds=[], attachments=[], components=[])
        await self.gateway.dispatch(session, event, data)

    # ---- user actions ---------------------------------------------------------------------
