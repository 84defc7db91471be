"""REST: interaction callbacks, follow-ups and the interaction webhook's messages (``@original``
and follow-ups by id), with Discord's deadlines and acknowledgement rules."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tests.fakes.discord.interaction import FakeInteraction
from tests.fakes.discord.payloads import message_payload
from tests.fakes.discord.protocol import (
    EPHEMERAL,
    LOADING,
    FormErrors,
    Json,
    api_error,
    as_int,
)
from tests.fakes.discord.records import RecordedMessage
from tests.fakes.discord.routes import Req, Route, RouteArea
from tests.fakes.discord.state import State
from tests.fakes.discord.validation import require_not_empty, validate_message, validate_modal

_WEBHOOK = "/webhooks/{webhook_id}/{webhook_token}"


class InteractionRoutes(RouteArea):
    """An error raised on these routes is also recorded on its interaction (``Server``)."""

    def routes(self) -> list[Route]:
        out: list[Route] = [
            ("POST", "/interactions/{webhook_id}/{webhook_token}/callback", self.callback, False),
            ("POST", _WEBHOOK, self.followup, False),
        ]
        for message in ("@original", "{message_id}"):  # @original first: it also fits {message_id}
            path = f"{_WEBHOOK}/messages/{message}"
            out += [
                ("GET", path, self.webhook_get, False),
                ("PATCH", path, self.webhook_edit, False),
                ("DELETE", path, self.webhook_delete, False),
            ]
        return out

    async def callback(self, req: Req) -> tuple[int, Any]:
        inter = self.state.interaction_by_id.get(as_int(req.params["webhook_id"]))
        if inter is None or inter.token != req.params["webhook_token"]:
            raise api_error("unknown_interaction")
        # Acknowledged in time, the interaction lives on: a second answer is 40060 even after
        # 3 s; never acknowledged within 3 s, it is gone (10062).
        if inter.responses:
            raise api_error("already_acknowledged")
        if self.state.now() > inter.response_deadline:
            raise api_error("unknown_interaction")
        body = req.json if isinstance(req.json, dict) else {}
        ctype = body.get("type")
        data = body.get("data") or {}
        allowed = {1: {1}, 2: {4, 5, 9}, 3: {4, 5, 6, 7, 9}, 4: {8}, 5: {4, 5, 6, 7}}[inter.type]
        if inter.type == 5 and inter.source_message_id is None:
            allowed = {4, 5}
        errors = FormErrors()
        if ctype not in allowed:
            errors.add(
                ["type"], "INTERACTION_RESPONSE_TYPE_INVALID", "Invalid interaction response type"
            )
            errors.raise_if_any()
        if ctype in (4, 7):
            validate_message(data, req.files, errors, ["data"])
        elif ctype == 9:
            validate_modal(data, errors, ["data"])
        elif ctype == 8 and len(data.get("choices") or []) > 25:
            errors.max_len(["data", "choices"], data["choices"], 25)
        errors.raise_if_any()
        if ctype == 4:
            require_not_empty(data, req.files)
        self.messages.check_upload(req.files, inter.guild_id)

        message: RecordedMessage | None = None
        if ctype == 4:
            message = self.messages.for_interaction(inter, "interaction", data, req.files)
            inter.original_id = message.id
        elif ctype == 5:
            flags = LOADING | (int(data.get("flags") or 0) & EPHEMERAL)
            message = self.messages.for_interaction(inter, "interaction", {"flags": flags}, [])
            inter.original_id = message.id
            inter._defer_pending = True
        elif ctype in (6, 7):
            inter.original_id = inter.source_message_id
            if ctype == 7 and inter.source_message_id is not None:
                message = self.state.messages[inter.source_message_id]
                self.messages.apply_edit(message, data, req.files, "interaction")
        inter.responses.append(
            {"type": ctype, "data": data, "files": [f.filename for f in req.files]}
        )
        if message is not None:
            await self.messages.emit("MESSAGE_UPDATE" if ctype == 7 else "MESSAGE_CREATE", message)
        await self.state.clock.notify()
        if req.query.get("with_response") not in ("1", "true", "True"):
            return 204, None
        callback: Json = {"id": str(inter.id), "type": inter.type}
        original = inter.original
        if original is not None and ctype in (4, 5, 7):
            callback["response_message_id"] = str(original.id)
            callback["response_message_loading"] = original.loading
            callback["response_message_ephemeral"] = original.ephemeral
        resource: Json = {"type": ctype}
        if ctype in (4, 7) and original is not None:
            resource["message"] = message_payload(self.state, original)
        return 200, {"interaction": callback, "resource": resource}

    def _token_interaction(self, req: Req) -> FakeInteraction:
        if as_int(req.params["webhook_id"]) != self.state.application_id:
            raise api_error("unknown_webhook")
        inter = self.state.interaction_by_token.get(req.params["webhook_token"])
        if inter is None:
            raise api_error("invalid_webhook_token")
        if self.state.now() > inter.token_expires_at:
            raise api_error("invalid_webhook_token")
        if not inter.responses:
            raise api_error("unknown_webhook")
        return inter

    def _webhook_message(self, inter: FakeInteraction, req: Req) -> RecordedMessage:
        ref = req.params.get("message_id")
        if ref is None:  # @original
            mid = inter.original_id
        else:
            mid = as_int(ref)
            if mid != inter.original_id and mid not in inter.followup_ids:
                mid = None
        msg = self.state.messages.get(mid) if mid else None
        if msg is None or msg.deleted:
            raise api_error("unknown_message")
        return msg

    async def followup(self, req: Req) -> tuple[int, Any]:
        inter = self._token_interaction(req)
        payload = req.json if isinstance(req.json, dict) else {}
        errors = FormErrors()
        validate_message(payload, req.files, errors, [])
        errors.raise_if_any()
        require_not_empty(payload, req.files)
        self.messages.check_upload(req.files, inter.guild_id)
        original = inter.original
        if inter._defer_pending and original is not None and not original.deleted:
            # Discord fills the "thinking" message; its ephemerality was fixed by the defer.
            inter._defer_pending = False
            self.messages.apply_edit(
                original, payload, req.files, "followup", mark_edited=False, clear_loading=True
            )
            msg = original
            event = "MESSAGE_UPDATE"
        else:
            msg = self.messages.for_interaction(inter, "followup", payload, req.files)
            event = "MESSAGE_CREATE"
        inter.followup_ids.append(msg.id)
        await self.messages.emit(event, msg)
        await self.state.clock.notify()
        if req.query.get("wait") in ("1", "true", "True"):
            return 200, message_payload(self.state, msg)
        return 204, None

    async def webhook_get(self, req: Req) -> tuple[int, Any]:
        inter = self._token_interaction(req)
        return 200, message_payload(self.state, self._webhook_message(inter, req))

    async def webhook_edit(self, req: Req) -> tuple[int, Any]:
        inter = self._token_interaction(req)
        msg = self._webhook_message(inter, req)
        payload = req.json if isinstance(req.json, dict) else {}
        errors = FormErrors()
        validate_message(payload, req.files, errors, [])
        errors.raise_if_any()
        self.messages.check_upload(req.files, inter.guild_id)
        was_loading = msg.loading
        if was_loading:
            inter._defer_pending = False
        self.messages.apply_edit(
            msg,
            payload,
            req.files,
            "interaction",
            mark_edited=not was_loading,
            clear_loading=was_loading,
        )
        await self.messages.emit("MESSAGE_UPDATE", msg)
        await self.state.clock.notify()
        return 200, message_payload(self.state, msg)

    async def webhook_delete(self, req: Req) -> tuple[int, Any]:
        inter = self._token_interaction(req)
        msg = self._webhook_message(inter, req)
        msg.deleted = True
        await self.messages.emit("MESSAGE_DELETE", msg)
        await self.state.clock.notify()
        return 204, None


def interaction_of(state: State, params: Mapping[str, str]) -> FakeInteraction | None:
    """The interaction an interaction-callback or webhook-token route is about."""
    token = params.get("webhook_token")
    if token is None:
        return None
    by_id = state.interaction_by_id.get(as_int(params.get("webhook_id")))
    if by_id is not None and by_id.token == token:
        return by_id
    return state.interaction_by_token.get(token)
