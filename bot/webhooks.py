"""WaveSpeed webhooks: hear about a finished prediction at once instead of polling.

WaveSpeed POSTs the bare prediction object to ``WAVESPEED_WEBHOOK_URL`` when a job ends,
signed ``webhook-signature: v3,<hex>`` = HMAC-SHA256 over ``"{id}.{timestamp}.{body}"``.
We verify it, refuse stale timestamps (replays), and hand the status to the worker; polls
stay on as a slow safety net for lost deliveries. Deliveries may repeat: the worker's state
machine makes a second one a no-op. Until the signing secret is fetched (retried with
back-off, never fatal), deliveries are answered 503 and polls run at their usual pace.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import logging
import re
import time
from collections.abc import Awaitable, Callable, Mapping
from urllib.parse import urlsplit

from aiohttp import web

from bot.errors import BackendError
from bot.ports import RemoteStatus, WebhookSource
from bot.retry import backoff

logger = logging.getLogger(__name__)

TOLERANCE_SECONDS = 300
MAX_BODY_BYTES = 1024 * 1024
SECRET_RETRY_FIRST = 1.0  # seconds after the first failed fetch of the signing secret
SECRET_RETRY_MAX = 300.0  # ... doubling up to this

OnStatus = Callable[[str, RemoteStatus], Awaitable[None]]


# The shapes a delivery's headers may take. Anything else is malformed (400), checked
# before any arithmetic: a 5,000-digit timestamp would make int() raise, a non-ASCII
# signature hmac.compare_digest().
_WEBHOOK_ID = re.compile(r"[\x21-\x7e]{1,256}")
_TIMESTAMP = re.compile(r"[0-9]{1,12}")  # Unix seconds
_SIGNATURE = r"v[0-9]{1,3},[A-Za-z0-9+/=_-]{1,256}"  # "v3,<hex>"; other versions: base64
_SIGNATURES = re.compile(rf"{_SIGNATURE}( +{_SIGNATURE}){{0,15}}")


def malformed_header(headers: Mapping[str, str]) -> str | None:
    """The name of the first missing or malformed webhook header, or None."""
    for name, shape in (
        ("webhook-id", _WEBHOOK_ID),
        ("webhook-timestamp", _TIMESTAMP),
        ("webhook-signature", _SIGNATURES),
    ):
        if not shape.fullmatch(headers.get(name, "").strip()):
            return name
    return None


def verify_signature(secret: str, headers: Mapping[str, str], body: bytes, *, now: float) -> bool:
    if malformed_header(headers) is not None:
        return False
    webhook_id = headers["webhook-id"].strip()
    timestamp = headers["webhook-timestamp"].strip()
    if abs(now - int(timestamp)) > TOLERANCE_SECONDS:
        return False
    signed = f"{webhook_id}.{timestamp}.".encode() + body
    expected = hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
    signatures = headers["webhook-signature"].split()
    offered = [part.split(",", 1)[1] for part in signatures if part.startswith("v3,")]
    return any(hmac.compare_digest(expected, candidate) for candidate in offered)


class WebhookReceiver:
    """The route for the path of the public URL, served by the bot's listener (bot/web.py),
    and the signing secret it checks deliveries with."""

    def __init__(
        self,
        *,
        backend: WebhookSource,
        public_url: str,
        on_status: OnStatus,
        time_scale: float = 1.0,
    ) -> None:
        self._backend = backend
        self._path = urlsplit(public_url).path or "/"
        self._on_status = on_status
        self._time_scale = time_scale  # shrinks the secret's retry pauses (tests only)
        self._secret: str | None = None
        self._fetching: asyncio.Task[None] | None = None

    @property
    def route(self) -> tuple[str, str, Callable[[web.Request], Awaitable[web.Response]]]:
        """(method, path, handler) for the listener."""
        return ("POST", self._path, self._handle)

    async def start(self) -> None:
        # Asked once now; if WaveSpeed won't hand it over, again in the background: that must
        # never stop the bot. Until it comes, the backend reports webhooks as unusable
        # (``uses_webhook``) and jobs are polled at the usual pace.
        if not await self._try_secret(failures=0):
            self._fetching = asyncio.create_task(self._fetch_secret())

    async def stop(self) -> None:
        if self._fetching is not None:
            self._fetching.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._fetching

    async def _fetch_secret(self) -> None:
        failures = 1
        while True:
            pause = backoff(failures, base=SECRET_RETRY_FIRST, cap=SECRET_RETRY_MAX)
            await asyncio.sleep(pause * self._time_scale)
            if await self._try_secret(failures=failures):
                return
            failures += 1

    async def _try_secret(self, *, failures: int) -> bool:
        """One request for the signing secret; ``failures``: how many came before."""
        try:
            self._secret = await self._backend.webhook_secret()
        except BackendError as exc:
            pause = backoff(failures + 1, base=SECRET_RETRY_FIRST, cap=SECRET_RETRY_MAX)
            logger.warning(
                "could not fetch the WaveSpeed webhook secret (%s); polling meanwhile, "
                "next try in %.0f s",
                exc.detail,
                pause * self._time_scale,
            )
            return False
        if failures:
            logger.info("WaveSpeed webhook secret fetched; webhooks in use from now on")
        return True

    async def _handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        if self._secret is None:
            # Can't be verified yet; the job's polls will find it.
            return web.Response(status=503)
        malformed = malformed_header(request.headers)
        if malformed is not None:
            logger.warning("rejected a webhook with a missing or malformed %s header", malformed)
            return web.Response(status=400)
        if not verify_signature(self._secret, request.headers, body, now=time.time()):
            logger.warning("rejected a webhook with a bad or stale signature")
            return web.Response(status=401)
        try:
            payload = json.loads(body)
        except ValueError:
            return web.Response(status=400)
        parsed = self._backend.parse_webhook(payload) if isinstance(payload, dict) else None
        if parsed is None:
            return web.Response(status=400)
        remote_id, status = parsed
        await self._on_status(remote_id, status)
        return web.Response(status=204)
