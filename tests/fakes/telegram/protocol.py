"""The wire protocol the fake speaks, as python-telegram-bot speaks it.

``POST {base_url}/bot<token>/<method>`` with a form-urlencoded body (multipart when files are
uploaded) whose non-string values are JSON text, answered with ``{"ok": true, "result": ...}``
or ``{"ok": false, "error_code", "description", "parameters"}``; files are downloaded from
``{base_url}/file/bot<token>/<file_path>``.
"""

from __future__ import annotations

import json
import re
from typing import Any

import aiohttp
from aiohttp import web

from tests.fakes.telegram.records import UploadedFile

MB = 1024 * 1024

TOKEN_RE = re.compile(r"\d+:[A-Za-z0-9_-]+")
API_PATH_RE = re.compile(r"/bot([^/]*)/([^/]+)/?")
FILE_PATH_RE = re.compile(r"/file/bot([^/]*)/(.+)")

# Form fields whose value PTB sends as JSON text; decoded once so `calls` reads naturally.
_JSON_FIELDS = frozenset(
    {
        "reply_markup",
        "reply_parameters",
        "entities",
        "caption_entities",
        "link_preview_options",
        "allowed_updates",
        "commands",
        "scope",
    }
)
_INT_FIELDS = frozenset(
    {
        "message_id",
        "offset",
        "limit",
        "timeout",
        "duration",
        "user_id",
        "reply_to_message_id",
        "message_thread_id",
        "cache_time",
    }
)
_BOOL_FIELDS = frozenset(
    {
        "disable_notification",
        "protect_content",
        "show_alert",
        "drop_pending_updates",
        "allow_sending_without_reply",
        "disable_content_type_detection",
    }
)


class ApiError(Exception):
    """An error answer: raised by a method, turned into the JSON error body by the server.
    ``parameters`` keys starting with "_" are for the fake's records, never sent."""

    def __init__(
        self, status: int, description: str, parameters: dict[str, Any] | None = None
    ) -> None:
        super().__init__(description)
        self.status = status
        self.description = description
        self.parameters = parameters


def bad(description: str) -> ApiError:
    return ApiError(400, f"Bad Request: {description}")


def error_response(error: ApiError) -> web.Response:
    body: dict[str, Any] = {
        "ok": False,
        "error_code": error.status,
        "description": error.description,
    }
    if error.parameters:
        body["parameters"] = {k: v for k, v in error.parameters.items() if not k.startswith("_")}
    return web.json_response(body, status=error.status)


async def read_params(request: web.Request, upload_limit: int) -> tuple[dict[str, Any], bool]:
    """All parameters (query string, then body) decoded; and whether an uploaded file
    exceeded ``upload_limit``. Files are streamed so the limit is enforced without
    buffering more than the limit."""
    raw: dict[str, Any] = dict(request.query)
    too_large = False
    if request.content_type == "multipart/form-data":
        reader = await request.multipart()
        while (part := await reader.next()) is not None:
            if not isinstance(part, aiohttp.BodyPartReader) or part.name is None:
                continue
            if part.filename is None:
                raw[part.name] = await part.text()
                continue
            buf = bytearray()
            while chunk := await part.read_chunk(256 * 1024):
                if too_large:
                    continue  # drain, so the client gets our 413 rather than a reset
                buf += chunk
                if len(buf) > upload_limit:
                    too_large, buf = True, bytearray()
            raw[part.name] = UploadedFile(
                part.name, part.filename, part.headers.get("Content-Type"), bytes(buf)
            )
    elif request.content_type == "application/json":
        body = await request.read()
        try:
            decoded = json.loads(body) if body else {}
        except ValueError:
            decoded = {}
        if isinstance(decoded, dict):
            raw.update(decoded)
    elif request.can_read_body:
        raw.update(await request.post())
    return {name: decode_value(name, value) for name, value in raw.items()}, too_large


def decode_value(name: str, value: Any) -> Any:
    """Undo PTB's form encoding where Telegram would (JSON objects, ints, booleans)."""
    if not isinstance(value, str):
        return value
    try:
        if name in _JSON_FIELDS:
            return json.loads(value)
        if name in _INT_FIELDS or name == "chat_id":
            return int(value)
    except ValueError:
        return value
    if name in _BOOL_FIELDS:
        return value.lower() in ("true", "1")
    return value


class Params:
    """Typed access to one request's parameters, raising Telegram's 400s."""

    def __init__(self, values: dict[str, Any]) -> None:
        self.values = values

    def get(self, name: str) -> Any:
        return self.values.get(name)

    def get_str(self, name: str) -> str | None:
        value = self.values.get(name)
        if value is None or isinstance(value, str):
            return value
        return json.dumps(value) if isinstance(value, dict | list) else str(value)

    def get_int(self, name: str, default: int | None = None) -> int | None:
        value = self.values.get(name)
        if value is None or value == "":
            return default
        try:
            return int(value)
        except (TypeError, ValueError):
            raise bad(f"invalid {name} specified") from None

    def required_int(self, name: str, missing: str) -> int:
        value = self.get_int(name)
        if value is None:
            raise bad(missing)
        return value

    def get_bool(self, name: str) -> bool:
        value = self.values.get(name)
        if isinstance(value, str):
            return value.lower() in ("true", "1")
        return bool(value)

    def get_json(self, name: str, what: str) -> Any:
        value = self.values.get(name)
        if isinstance(value, str):
            try:
                return json.loads(value)
            except ValueError:
                raise bad(f"can't parse {what} JSON object") from None
        return value

    def get_input(self, name: str) -> Any:
        """An InputFile parameter, following ``attach://<part>`` to the part it names."""
        value = self.values.get(name)
        if isinstance(value, str) and value.startswith("attach://"):
            value = self.values.get(value[len("attach://") :])
        return value
