"""Is ``WAVESPEED_WEBHOOK_URL`` reachable from outside, and does it reach this listener?

With the bot stopped, the check binds the listen address itself for a moment and asks the
public URL for a one-off token: an answer carrying it proves the proxy in front routes to
this port. With the port taken (the bot running), any HTTP answer from the URL counts.
"""

from __future__ import annotations

import secrets
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import httpx

from bot.backends.probe import Finding

if TYPE_CHECKING:
    from aiohttp import web

NAME = "Webhook URL"
MARK = "X-AceJam-Doctor"


async def check_webhook(http: httpx.AsyncClient, *, public_url: str, listen: str) -> Finding:
    # Imported here: aiohttp (~10 MB) is needed by no other command.
    from aiohttp import web

    token = secrets.token_hex(8)

    async def answer(_request: web.Request) -> web.Response:
        return web.Response(status=200, headers={MARK: token})

    app = web.Application()
    app.router.add_route("*", urlsplit(public_url).path or "/", answer)
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
            response = await http.get(public_url)
        except httpx.HTTPError as exc:
            reason = str(exc) or type(exc).__name__
            return Finding(
                NAME,
                False,
                f"cannot reach {public_url}: {reason}",
                f"route that URL (HTTPS proxy, port forward) to {listen}",
            )
    finally:
        await runner.cleanup()
    if not bound:
        return Finding(NAME, True, f"{public_url} answers (HTTP {response.status_code})")
    if response.headers.get(MARK) == token:
        return Finding(NAME, True, f"{public_url} reaches this machine's {listen}")
    return Finding(
        NAME,
        False,
        f"{public_url} answered HTTP {response.status_code}, but not from {listen}",
        f"route that URL to {listen} (WEB_LISTEN, else WAVESPEED_WEBHOOK_LISTEN)",
    )
