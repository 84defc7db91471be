"""The fake Bot API server: ``FakeTelegram``, its aiohttp app on 127.0.0.1, its lifecycle and
the routing table from Bot API method names to the functions in ``routes/``.

Every request goes the same way (``_dispatch``): token check, parameters decoded and recorded
in ``calls``, then the method run under its scripted fault, if any (``faults``, the common
fault model): flood control for the methods that make a message appear or change, the method
itself, and its answer or Telegram's JSON error. The lifecycle is the common
``LoopbackServer``'s.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from aiohttp import web

from tests.fakes.common import Fault, LoopbackServer, answer
from tests.fakes.telegram.faults import fault_error, fault_plan, gateway_page, malformed_answer
from tests.fakes.telegram.flood import FLOOD_METHODS, FloodControl, FloodLimits
from tests.fakes.telegram.protocol import (
    API_PATH_RE,
    FILE_PATH_RE,
    MB,
    TOKEN_RE,
    ApiError,
    Params,
    error_response,
    read_params,
)
from tests.fakes.telegram.readback import Readback
from tests.fakes.telegram.records import Call, ErrorReply, FakeUser
from tests.fakes.telegram.routes import albums, bot, callbacks, chats, media, messages, updates
from tests.fakes.telegram.scene import Scene
from tests.fakes.telegram.state import World

if TYPE_CHECKING:
    from telegram import Bot
    from telegram.ext import ApplicationBuilder

CLOUD_UPLOAD_LIMIT = 50 * MB
LOCAL_UPLOAD_LIMIT = 2000 * MB

Route = Callable[[World, Params], Any]  # returns the result, or a coroutine giving it

# The Bot API methods the fake answers, by lower-case name (Telegram's names are
# case-insensitive); anything else is a 404, as on Telegram.
METHODS: Mapping[str, Route] = MappingProxyType(
    {
        "getme": bot.get_me,
        "setmycommands": bot.set_my_commands,
        "getmycommands": bot.get_my_commands,
        "deletemycommands": bot.delete_my_commands,
        "getupdates": updates.get_updates,
        "deletewebhook": updates.delete_webhook,
        "setwebhook": updates.set_webhook,
        "getwebhookinfo": updates.get_webhook_info,
        "sendmessage": messages.send_message,
        "editmessagetext": messages.edit_message_text,
        "editmessagecaption": messages.edit_message_caption,
        "editmessagereplymarkup": messages.edit_message_reply_markup,
        "deletemessage": messages.delete_message,
        "sendchataction": messages.send_chat_action,
        "sendaudio": media.send_audio,
        "senddocument": media.send_document,
        "sendmediagroup": albums.send_media_group,
        "getfile": media.get_file,
        "answercallbackquery": callbacks.answer_callback_query,
        "getchat": chats.get_chat,
        "getchatmember": chats.get_chat_member,
        "getchatadministrators": chats.get_chat_administrators,
    }
)


class FakeTelegram(Scene, Readback, LoopbackServer):
    """The fake Bot API server. Use as ``async with FakeTelegram(...) as tg``.

    token: the one token accepted (others get 401 Unauthorized; malformed ones 404).
    bot_username / bot_name: the bot's @username and first name (its id is the token's prefix).
    time_scale: multiplies nominal flood windows and callback query lifetimes; 0.01 makes
        Telegram's "1 message per second" a 10 ms affair.
    flood: FloodLimits (default: Telegram's) or FloodLimits.off().
    local_mode: behave like ``telegram-bot-api --local``: 2000 MB uploads, ``file://`` inputs.
    privacy_mode: in groups the bot only receives commands, replies to it, or everything when
        it is an admin (as Telegram's default privacy mode).
    callback_query_ttl: nominal seconds after which a callback query can no longer be
        answered (None: forever).
    """

    def __init__(
        self,
        token: str = "123456:TEST-TOKEN",
        bot_username: str = "AceJamBot",
        *,
        bot_name: str = "AceJam",
        time_scale: float = 1.0,
        flood: FloodLimits | None = None,
        local_mode: bool = False,
        upload_limit: int | None = None,
        privacy_mode: bool = True,
        callback_query_ttl: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not TOKEN_RE.fullmatch(token):
            raise ValueError(f"{token!r} is not shaped like a bot token (<digits>:<secret>)")
        if time_scale <= 0:
            raise ValueError("time_scale must be positive")
        bot_user = FakeUser(
            id=int(token.split(":", 1)[0]),
            first_name=bot_name,
            username=bot_username,
            language_code=None,
            is_bot=True,
        )
        default_limit = LOCAL_UPLOAD_LIMIT if local_mode else CLOUD_UPLOAD_LIMIT
        # Multipart uploads are streamed (see read_params), so the size cap only bounds the
        # urlencoded/JSON bodies of ordinary methods.
        LoopbackServer.__init__(self, time_scale, client_max_size=16 * MB, shutdown_timeout=2.0)
        self.app.router.add_route("*", "/{tail:.*}", self._dispatch)
        World.__init__(
            self,
            bot_user,
            time_scale=time_scale,
            local_mode=local_mode,
            upload_limit=upload_limit or default_limit,
            privacy_mode=privacy_mode,
            callback_query_ttl=callback_query_ttl,
            clock=clock,
        )
        self.token = token
        self.faults = fault_plan()
        self._flood = FloodControl(flood or FloodLimits(), time_scale, clock)

    async def close(self) -> None:
        self.closing.set()
        self.touch()  # long polls wait for changes: release them so the server stops at once
        await super().close()

    def application_builder(self) -> ApplicationBuilder:
        """A PTB ApplicationBuilder already pointed at this server (add handlers, then build)."""
        from telegram.ext import ApplicationBuilder

        builder = (
            ApplicationBuilder()
            .token(self.token)
            .base_url(f"{self.base_url}/bot")
            .base_file_url(f"{self.base_url}/file/bot")
        )
        return builder.local_mode(True) if self.local_mode else builder

    def bot(self, **kwargs: Any) -> Bot:
        """A plain PTB Bot pointed at this server (``async with tg.bot() as bot``)."""
        from telegram import Bot

        return Bot(
            self.token,
            base_url=f"{self.base_url}/bot",
            base_file_url=f"{self.base_url}/file/bot",
            local_mode=self.local_mode,
            **kwargs,
        )

    @property
    def flood_limits(self) -> FloodLimits:
        return self._flood.limits

    @flood_limits.setter
    def flood_limits(self, limits: FloodLimits) -> None:
        """Replace the limits and forget past sends."""
        self._flood = FloodControl(limits, self.time_scale, self.clock)

    # -- one request -------------------------------------------------------------------------

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        if request.path.startswith("/file/"):
            return self._serve_file(request)
        match = API_PATH_RE.fullmatch(request.path)
        if match is None or not TOKEN_RE.fullmatch(match.group(1)):
            return error_response(ApiError(404, "Not Found"))
        if match.group(1) != self.token:
            return error_response(ApiError(401, "Unauthorized"))
        method = match.group(2)
        route = METHODS.get(method.lower())
        if route is None:
            self.errors.append(ErrorReply(method, 404, "Not Found"))
            return error_response(ApiError(404, "Not Found"))

        values, too_large = await read_params(request, self.upload_limit)
        params = Params(values)
        self.calls.append(Call(method, values))
        self.touch()
        chat_id = self._chat_id_or_none(params)
        if too_large:
            error = ApiError(413, "Request Entity Too Large")
            self.record_error(method, error, chat_id, "")
            return error_response(error)

        about = () if chat_id is None else (chat_id,)

        async def handle() -> web.StreamResponse:
            return await self._answer(method, route, params, chat_id)

        return await answer(
            request,
            self.faults.take(method, about=about),
            handle,
            error=lambda fault: self._fault_response(method, fault, chat_id),
            malformed=malformed_answer,
            sleep=self.sleep,
        )

    async def _answer(
        self, method: str, route: Route, params: Params, chat_id: int | None
    ) -> web.Response:
        """The method's answer: its result, or Telegram's JSON error (recorded)."""
        flood_chat = chat_id if method.lower() in FLOOD_METHODS else None
        try:
            result = await self._run(route, params, flood_chat)
        except ApiError as error:
            scope = error.parameters.pop("_scope", "") if error.parameters else ""
            self.record_error(method, error, chat_id, scope)
            return error_response(error)
        return web.json_response({"ok": True, "result": result})

    async def _run(self, route: Route, params: Params, flood_chat: int | None) -> Any:
        """The method's result, after flood control admitted it (for ``flood_chat``)."""
        if flood_chat is not None:
            verdict = self._flood.admit(flood_chat)
            if verdict is not None:
                scope, retry_after = verdict
                raise ApiError(
                    429,
                    f"Too Many Requests: retry after {retry_after}",
                    {"retry_after": retry_after, "_scope": scope},
                )
        try:
            result = route(self, params)
            if asyncio.iscoroutine(result):
                result = await result
        except ApiError:
            if flood_chat is not None:
                self._flood.refund(flood_chat)  # only what reached the chat counts
            raise
        return result

    def _fault_response(self, method: str, fault: Fault, chat_id: int | None) -> web.Response:
        """A status fault's answer, recorded like any error the fake gives."""
        page = gateway_page(fault)
        if page is not None:
            phrase, response = page
            self.errors.append(ErrorReply(method, response.status, phrase))
            self.touch()
            return response
        error = fault_error(fault)
        self.record_error(method, error, chat_id, "fault")
        if fault.body is not None:  # the fault replaces the whole error body
            return web.json_response(fault.body, status=error.status)
        return error_response(error)

    def _chat_id_or_none(self, params: Params) -> int | None:
        """The request's chat, for flood control and fault matching (None if it names none)."""
        try:
            return self.chat_of(params).id
        except ApiError:
            return None

    def _serve_file(self, request: web.Request) -> web.StreamResponse:
        match = FILE_PATH_RE.fullmatch(request.path)
        if match is None:
            return error_response(ApiError(404, "Not Found"))
        if match.group(1) != self.token:
            return error_response(ApiError(401, "Unauthorized"))
        for file in self.files.values():
            if file.file_path == match.group(2):
                return web.Response(
                    body=file.data, content_type=file.mime_type or "application/octet-stream"
                )
        return error_response(ApiError(404, "Not Found"))
