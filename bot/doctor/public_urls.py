"""Do the bot's public URLs reach its listener: ``WAVESPEED_WEBHOOK_URL`` (WaveSpeed posts
finished songs there) and ``PUBLIC_URL`` (the jam board's links start with it)?

With the bot stopped, the check binds the listen address itself for a moment and asks the
public URL for a one-off token: an answer carrying it proves the proxy in front routes to
this port. With the port taken (the bot running), any HTTP answer from the URL counts.
"""

from __future__ import annotations

import secrets
from typing import TYPE_CHECKING

import httpx

from bot.backends.probe import Finding

if TYPE_CHECKING:
    from aiohttp import web

WEBHOOK = "Webhook URL"
BOARD = "Jam board URL"
MARK = "X-AceJam-Doctor"
# A board page's path (PUBLIC_URL + /jam/<token>): what a proxy in front must pass on.
BOARD_PROBE = "/jam/acejam-doctor"


async def check_webhook(http: httpx.AsyncClient, *, public_url: str, listen: str) -> Finding:
    return await _reaches(
        http, WEBHOOK, public_url, listen, "WEB_LISTEN, else WAVESPEED_WEBHOOK_LISTEN"
    )


async def check_board(http: httpx.AsyncClient, *, public_url: str, listen: str | None) -> Finding:
    if listen is None:
        return Finding(
            BOARD,
            False,
            f"PUBLIC_URL is {public_url}, but WEB_LISTEN is not set: nothing serves the board",
            "set WEB_LISTEN (e.g. 127.0.0.1:8080) and route PUBLIC_URL's /jam/ to it",
        )
    return await _reaches(http, BOARD, public_url + BOARD_PROBE, listen, "WEB_LISTEN")


async def _reaches(
    http: httpx.AsyncClient, name: str, url: str, listen: str, setting: str
) -> Finding:
    # Imported here: aiohttp (~10 MB) is needed by no other command.
    from aiohttp import web

    token = secrets.token_hex(8)

    async def answer(_request: web.Request) -> web.Response:
        return web.Response(status=200, headers={MARK: token})

    app = web.Application()
    # Every path: a proxy may strip a prefix of the public URL's (docs/jamboard.md).
    app.router.add_route("*", "/{tail:.*}", answer)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    host, _, port = listen.rpartition(":")
    try:
        await web.TCPSite(runner, host or "0.0.0.0", int(port)).start()
        bound = True
    except OSError:
        bound = False  # the bot (or something else) listens there
    try:
        try:
            response = await http.get(url)
        except httpx.HTTPError as exc:
            reason = str(exc) or type(exc).__name__
            return Finding(
                name,
                False,
                f"cannot reach {url}: {reason}",
                f"route that URL (HTTPS proxy, port forward) to {listen}",
            )
    finally:
        await runner.cleanup()
    if not bound:
        return Finding(name, True, f"{url} answers (HTTP {response.status_code})")
    if response.headers.get(MARK) == token:
        return Finding(name, True, f"{url} reaches this machine's {listen}")
    return Finding(
        name,
        False,
        f"{url} answered HTTP {response.status_code}, but not from {listen}",
        f"route that URL to {listen} ({setting})",
    )
