"""REST: channels and their messages (send with nonces and replies, edit, delete, history)."""

from __future__ import annotations

from typing import Any

from tests.fakes.discord.guild import FakeGuild
from tests.fakes.discord.payloads import message_payload
from tests.fakes.discord.protocol import NONCE_WINDOW, FormErrors, Json, Perm, api_error, as_int
from tests.fakes.discord.records import RecordedMessage
from tests.fakes.discord.routes import Req, Route, RouteArea
from tests.fakes.discord.validation import require_not_empty, validate_message

_MESSAGE = "/channels/{channel_id}/messages/{message_id}"


class ChannelRoutes(RouteArea):
    def routes(self) -> list[Route]:
        return [
            ("GET", "/channels/{channel_id}", self.get_channel, True),
            ("GET", "/channels/{channel_id}/messages", self.history, True),
            ("POST", "/channels/{channel_id}/messages", self.send, True),
            ("GET", _MESSAGE, self.get_message, True),
            ("PATCH", _MESSAGE, self.edit_message, True),
            ("DELETE", _MESSAGE, self.delete_message, True),
            ("POST", "/channels/{channel_id}/typing", self.typing, True),
        ]

    def _channel(self, req: Req) -> tuple[Json, FakeGuild | None]:
        found = self.state.find_channel(as_int(req.params["channel_id"]))
        if found is None:
            raise api_error("unknown_channel")
        return found

    def _require(self, guild: FakeGuild | None, channel_id: int, bits: int) -> None:
        if guild is None:
            return
        if self.state.permissions(guild.id, self.state.bot_user_id, channel_id) & bits != bits:
            raise api_error("missing_permissions")

    async def get_channel(self, req: Req) -> tuple[int, Any]:
        channel, _ = self._channel(req)
        return 200, channel

    async def typing(self, req: Req) -> tuple[int, Any]:
        channel, guild = self._channel(req)
        self._require(guild, int(channel["id"]), Perm.VIEW_CHANNEL | Perm.SEND_MESSAGES)
        return 204, None

    async def history(self, req: Req) -> tuple[int, Any]:
        channel, guild = self._channel(req)
        cid = int(channel["id"])
        self._require(guild, cid, Perm.VIEW_CHANNEL | Perm.READ_MESSAGE_HISTORY)
        limit = max(1, min(100, int(req.query.get("limit", 50))))
        msgs = [m for m in self.state.channel_messages(cid, include_ephemeral=False)]
        if "before" in req.query:
            msgs = [m for m in msgs if m.id < int(req.query["before"])]
        if "after" in req.query:
            msgs = [m for m in msgs if m.id > int(req.query["after"])]
            msgs = msgs[:limit]
        msgs = sorted(msgs, key=lambda m: m.id, reverse=True)[:limit]
        return 200, [message_payload(self.state, m) for m in msgs]

    def _message(self, req: Req) -> RecordedMessage:
        channel, _ = self._channel(req)
        m = self.state.messages.get(as_int(req.params["message_id"]))
        if m is None or m.deleted or m.channel_id != int(channel["id"]) or m.ephemeral:
            raise api_error("unknown_message")
        return m

    async def get_message(self, req: Req) -> tuple[int, Any]:
        channel, guild = self._channel(req)
        self._require(guild, int(channel["id"]), Perm.VIEW_CHANNEL | Perm.READ_MESSAGE_HISTORY)
        return 200, message_payload(self.state, self._message(req))

    async def send(self, req: Req) -> tuple[int, Any]:
        channel, guild = self._channel(req)
        cid = int(channel["id"])
        payload = req.json if isinstance(req.json, dict) else {}
        in_thread = guild is not None and guild.is_thread(cid)
        send = Perm.SEND_MESSAGES_IN_THREADS if in_thread else Perm.SEND_MESSAGES
        needed = Perm.VIEW_CHANNEL | send | (Perm.ATTACH_FILES if req.files else 0)
        self._require(guild, cid, needed)
        errors = FormErrors()
        validate_message(payload, req.files, errors, [])
        nonce = payload.get("nonce")
        if nonce is not None and len(str(nonce)) > 25:
            errors.max_len(["nonce"], str(nonce), 25)
        ref = payload.get("message_reference")
        replied_author = None
        if ref:
            target = self.state.messages.get(as_int(ref.get("message_id")))
            if target is None or target.deleted or target.ephemeral:
                if ref.get("fail_if_not_exists", True):
                    errors.add(
                        ["message_reference"],
                        "MESSAGE_REFERENCE_UNKNOWN_MESSAGE",
                        "Unknown message",
                    )
            else:
                replied_author = target.author_id
        errors.raise_if_any()
        require_not_empty(payload, req.files)
        self.messages.check_upload(req.files, guild.id if guild else None)
        if nonce is not None and payload.get("enforce_nonce"):
            key = (cid, self.state.bot_user_id, str(nonce))
            seen = self.state.nonces.get(key)
            if (
                seen
                and self.state.now() - seen[1] <= NONCE_WINDOW
                and seen[0] in self.state.messages
            ):
                return 200, message_payload(self.state, self.state.messages[seen[0]])
        msg = self.messages.new(
            cid,
            guild.id if guild else None,
            self.state.bot_user_id,
            "channel",
            payload,
            req.files,
            type_=19 if ref else 0,
        )
        msg._replied_author = replied_author
        if ref:
            msg.message_reference = {
                k: (str(v) if k.endswith("_id") else v) for k, v in ref.items()
            }
        if nonce is not None:
            msg.nonce = str(nonce)
            if payload.get("enforce_nonce"):
                self.state.nonces[(cid, self.state.bot_user_id, str(nonce))] = (
                    msg.id,
                    self.state.now(),
                )
        await self.messages.emit("MESSAGE_CREATE", msg)
        return 200, message_payload(self.state, msg)

    async def edit_message(self, req: Req) -> tuple[int, Any]:
        msg = self._message(req)
        if msg.author_id != self.state.bot_user_id:
            raise api_error("cannot_edit_others")
        payload = req.json if isinstance(req.json, dict) else {}
        errors = FormErrors()
        validate_message(payload, req.files, errors, [])
        errors.raise_if_any()
        self.messages.check_upload(req.files, msg.guild_id)
        self.messages.apply_edit(msg, payload, req.files, "channel")
        await self.messages.emit("MESSAGE_UPDATE", msg)
        return 200, message_payload(self.state, msg)

    async def delete_message(self, req: Req) -> tuple[int, Any]:
        msg = self._message(req)
        if msg.author_id != self.state.bot_user_id and msg.guild_id:
            self._require(self.state.guilds[msg.guild_id], msg.channel_id, Perm.MANAGE_MESSAGES)
        msg.deleted = True
        await self.messages.emit("MESSAGE_DELETE", msg)
        return 204, None
