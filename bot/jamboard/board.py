"""The jam board's routes on the bot's listener (bot/web.py), docs/jamboard.md:

- ``GET /jam/<token>``: the page (bot/jamboard/page.py), readable without JavaScript;
- ``GET /jam/<token>.json``: the same data, with an ETag (board.js polls it with
  If-None-Match and gets 304 while nothing changed);
- ``GET /jam/<token>/audio/<round>/<take>``: one take's file, with Range, only that jam's;
- ``GET /jam-static/<file>``: board.css, board.js, icon.svg.

Safe to face the internet: an unknown or revoked token, a take of another jam and a file the
retention sweep removed all answer the same 404 as any unknown address (nothing tells a
guesser that a jam exists); every answer carries a strict Content-Security-Policy; each
address has a request budget (bot/jamboard/limits.py).

The board reads jams through ``find`` (the shell hands it ``service.jams.by_token``): this
edge knows no database."""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Awaitable, Callable
from importlib import resources
from pathlib import Path

from aiohttp import web

from bot.jamboard.limits import RateLimit, client_address, retry_after
from bot.jamboard.page import render_page
from bot.jamboard.view import audio_type, board_data
from bot.jams.model import Jam, JamTake

logger = logging.getLogger(__name__)

Find = Callable[[str], Awaitable[Jam | None]]
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; media-src 'self'; "
    "img-src 'self'; connect-src 'self'; base-uri 'none'; form-action 'none'; "
    "frame-ancestors 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Resource-Policy": "same-origin",
    "X-Frame-Options": "DENY",
}
# Board tokens are URL-safe base64 (secrets.token_urlsafe); anything else is no jam's.
TOKEN = r"{token:[A-Za-z0-9_-]{1,128}}"
STATIC_TYPES = {
    "board.css": "text/css; charset=utf-8",
    "board.js": "text/javascript; charset=utf-8",
    "icon.svg": "image/svg+xml",
}


def _static_files() -> dict[str, tuple[bytes, str]]:
    """The board's own files and their ETags, read once."""
    folder = resources.files("bot.jamboard") / "static"
    files = {}
    for name in STATIC_TYPES:
        body = (folder / name).read_bytes()
        files[name] = (body, f'"{hashlib.sha256(body).hexdigest()[:20]}"')
    return files


def _exists(take: JamTake) -> bool:
    return take.audio_path is not None and Path(take.audio_path).is_file()


class JamBoard:
    """The board's routes; one per listener. ``limit``: the per-address request budget;
    ``poll_seconds``: how often an open page asks whether the jam changed."""

    def __init__(
        self, find: Find, *, limit: RateLimit | None = None, poll_seconds: float = 3.0
    ) -> None:
        self._find = find
        self._limit = limit or RateLimit()
        self._poll_ms = round(poll_seconds * 1000)
        self._static = _static_files()

    @property
    def routes(self) -> tuple[tuple[str, str, Handler], ...]:
        """(method, path, handler) for bot.web.WebListener; the JSON before the page, whose
        pattern would not take the ``.json`` anyway."""
        return (
            ("GET", f"/jam/{TOKEN}.json", self._guarded(self._json)),
            ("GET", f"/jam/{TOKEN}", self._guarded(self._page)),
            (
                "GET",
                f"/jam/{TOKEN}/audio/{{round:[0-9]{{1,4}}}}/{{take:[0-9]{{1,2}}}}",
                self._guarded(self._audio),
            ),
            ("GET", "/jam-static/{name}", self._guarded(self._file)),
        )

    def _guarded(self, handler: Handler) -> Handler:
        """``handler`` within the rate limit, every answer (errors too) with the headers."""

        async def guarded(request: web.Request) -> web.StreamResponse:
            address = client_address(request.remote, request.headers.get("X-Forwarded-For"))
            wait = self._limit.take(address)
            if wait is not None:
                raise web.HTTPTooManyRequests(
                    headers={**SECURITY_HEADERS, "Retry-After": retry_after(wait)}
                )
            try:
                response = await handler(request)
            except web.HTTPException as exc:
                exc.headers.update(SECURITY_HEADERS)
                raise
            response.headers.update(SECURITY_HEADERS)
            return response

        return guarded

    async def _jam(self, request: web.Request) -> tuple[Jam, str]:
        token = request.match_info["token"]
        jam = await self._find(token)
        if jam is None or jam.token != token or not jam.rounds:
            raise web.HTTPNotFound()  # the same body as any unknown address
        return jam, token

    async def _data(self, request: web.Request) -> tuple[dict[str, object], bytes, str]:
        jam, token = await self._jam(request)
        data = board_data(jam, token, _exists)
        body = json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode()
        return data, body, f'"{hashlib.sha256(body).hexdigest()[:32]}"'

    async def _json(self, request: web.Request) -> web.StreamResponse:
        _data, body, etag = await self._data(request)
        headers = {"ETag": etag, "Cache-Control": "no-cache"}
        if etag in request.headers.get("If-None-Match", ""):
            return web.Response(status=304, headers=headers)
        return web.Response(
            body=body, content_type="application/json", charset="utf-8", headers=headers
        )

    async def _page(self, request: web.Request) -> web.StreamResponse:
        data, _body, etag = await self._data(request)
        page = render_page(
            data,
            json_name=f"{request.match_info['token']}.json",
            etag=etag,
            poll_ms=self._poll_ms,
        )
        return web.Response(
            text=page,
            content_type="text/html",
            charset="utf-8",
            headers={"Cache-Control": "no-cache"},
        )

    async def _audio(self, request: web.Request) -> web.StreamResponse:
        jam, _token = await self._jam(request)
        round = jam.round_of(int(request.match_info["round"]))
        take = round.take(int(request.match_info["take"])) if round else None
        if take is None or not take.made or not _exists(take):
            raise web.HTTPNotFound()
        assert take.audio_path is not None  # _exists
        # FileResponse answers Range (206), If-Range and HEAD itself.
        return web.FileResponse(
            take.audio_path,
            headers={"Content-Type": audio_type(take), "Cache-Control": "private, max-age=3600"},
        )

    async def _file(self, request: web.Request) -> web.StreamResponse:
        found = self._static.get(request.match_info["name"])
        if found is None:
            raise web.HTTPNotFound()
        body, etag = found
        headers = {"ETag": etag, "Cache-Control": "no-cache"}
        if etag in request.headers.get("If-None-Match", ""):
            return web.Response(status=304, headers=headers)
        return web.Response(
            body=body,
            headers={**headers, "Content-Type": STATIC_TYPES[request.match_info["name"]]},
        )
