"""The streamed fetch: :class:`Downloader` puts an output URL's bytes on our disk, or says why not.

Every hop is checked against the :class:`~bot.backends.download.policy.DownloadPolicy` (the URL
here, the addresses at connect time in :mod:`bot.backends.download.transport`), redirects are
followed by hand
(at most three; credentials go only to the first URL's origin), the body is streamed raw and
decoded in bounded pieces, the decoded size is capped, the first bytes must be audio, and the
whole fetch has a deadline. The body lands in a temporary file beside ``dest`` that is renamed
at the end, so a failed download never leaves a partial file.

Failures: :class:`~bot.errors.TransientBackendError` (``download_unavailable``) when the host
could not be reached or answered 408/425/429/5xx (worth retrying), :class:`~bot.errors.AudioError`
for everything else, with ``code`` one of ``download_refused`` (the policy said no),
``download_expired`` (401/403/404/410), ``download_failed`` (other 4xx, bad redirects, an
encoding we did not ask for), ``download_too_large``, ``download_truncated`` (fewer bytes than
announced, or the connection broke mid-body), ``download_timeout`` (past the deadline),
``empty_audio`` and ``not_audio``.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import ssl
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from types import TracebackType
from typing import BinaryIO, Self

import httpx
from httpcore import AsyncNetworkBackend

from bot.audio.formats import SNIFF_BYTES, sniff_audio_format
from bot.backends._http import retry_after
from bot.backends.download.decoding import decoded
from bot.backends.download.policy import DownloadPolicy, normalize_host
from bot.backends.download.transport import GuardedTransport
from bot.errors import AudioError, TransientBackendError
from bot.ports import DownloadedAudio

logger = logging.getLogger(__name__)

MAX_REDIRECTS = 3
CHUNK_SIZE = 64 * 1024
_REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
_EXPIRED_STATUSES = frozenset({401, 403, 404, 410})  # signed URL expired or object gone
_RETRYABLE_STATUSES = frozenset({408, 425, 429})


def redact_url(url: httpx.URL | str) -> str:
    """The URL without user info and query string: safe to log (queries may be signed)."""
    try:
        parsed = httpx.URL(str(url))
    except httpx.InvalidURL:
        return "<invalid url>"
    port = f":{parsed.port}" if parsed.port else ""
    return f"{parsed.scheme}://{parsed.host}{port}{parsed.path}"


class Downloader:
    """Fetches output URLs under one :class:`DownloadPolicy`, over a client of its own.

    The client is private because its connections are what the policy guards: a shared one
    would pool connections that were never checked. Use it as ``async with``.
    """

    def __init__(
        self,
        policy: DownloadPolicy,
        *,
        timeout: httpx.Timeout | float = 30.0,
        deadline: float = 300.0,
        max_connections: int = 20,
        verify: ssl.SSLContext | bool = True,
        network: AsyncNetworkBackend | None = None,
    ) -> None:
        self.policy = policy
        self.deadline = deadline
        limits = httpx.Limits(max_connections=max_connections, max_keepalive_connections=10)
        transport = GuardedTransport(policy, limits=limits, verify=verify, network=network)
        self._http = httpx.AsyncClient(transport=transport, timeout=timeout, trust_env=False)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def fetch(
        self,
        url: str,
        dest: Path,
        *,
        max_bytes: int,
        headers: Mapping[str, str] | None = None,
    ) -> DownloadedAudio:
        """Download ``url`` to ``dest`` and return what landed there.

        ``headers`` (e.g. a Bearer token) are sent only to the origin of ``url`` itself, never
        to a host a redirect points at.
        """
        try:
            async with asyncio.timeout(self.deadline):
                return await self._fetch(url, dest, max_bytes=max_bytes, headers=headers)
        except TimeoutError:
            raise AudioError(
                f"the download took longer than {self.deadline:g} s (DOWNLOAD_TIMEOUT_SECONDS)",
                code="download_timeout",
            ) from None

    async def _fetch(
        self, url: str, dest: Path, *, max_bytes: int, headers: Mapping[str, str] | None
    ) -> DownloadedAudio:
        current = _parse(url)
        origin = _origin(current)
        for _hop in range(MAX_REDIRECTS + 1):
            self.policy.check_url(current)
            hop_headers = dict(headers or {}) if _origin(current) == origin else {}
            # Identity: a compressed song saves nothing, and what we don't ask for is rarer.
            hop_headers["Accept-Encoding"] = "identity"
            logger.debug("download GET %s", redact_url(current))
            try:
                async with self._http.stream(
                    "GET", current, headers=hop_headers, follow_redirects=False
                ) as response:
                    if response.status_code in _REDIRECT_STATUSES:
                        current = _next_hop(current, response)
                        continue
                    _check_status(response, current)
                    return await _save(response, dest, max_bytes=max_bytes)
            except httpx.TransportError as exc:
                # Only reached before the body started: _save turns body errors into AudioError.
                raise TransientBackendError(
                    f"download from {redact_url(current)} failed: {type(exc).__name__}",
                    code="download_unavailable",
                ) from None
        raise AudioError(f"more than {MAX_REDIRECTS} redirects", code="download_failed")


def _parse(url: str) -> httpx.URL:
    try:
        return httpx.URL(url)
    except (httpx.InvalidURL, TypeError):
        raise AudioError("the output URL is not a valid URL", code="download_refused") from None


def _origin(url: httpx.URL) -> tuple[str, str, int | None]:
    return (url.scheme, normalize_host(url.host), url.port)


def _next_hop(current: httpx.URL, response: httpx.Response) -> httpx.URL:
    location = response.headers.get("location")
    if not location:
        raise AudioError("redirect without a Location", code="download_failed")
    try:
        return current.join(location)
    except httpx.InvalidURL:
        raise AudioError("redirect to an invalid URL", code="download_refused") from None


def _check_status(response: httpx.Response, url: httpx.URL) -> None:
    status = response.status_code
    if 200 <= status < 300:
        return
    where = redact_url(url)
    if status in _EXPIRED_STATUSES:
        raise AudioError(f"{where} answered {status}: link expired", code="download_expired")
    if status in _RETRYABLE_STATUSES or status >= 500:
        raise TransientBackendError(
            f"{where} answered {status}",
            code="download_unavailable",
            retry_after=retry_after(response),
        )
    raise AudioError(f"{where} answered {status}", code="download_failed")


def _declared_length(response: httpx.Response) -> int | None:
    """Content-Length: the bytes on the wire (before any Content-Encoding is undone)."""
    try:
        return int(response.headers["content-length"])
    except (KeyError, ValueError):
        return None


async def _save(response: httpx.Response, dest: Path, *, max_bytes: int) -> DownloadedAudio:
    declared = _declared_length(response)
    encoding = response.headers.get("content-encoding")
    if declared is not None and declared > max_bytes and not encoding:
        raise AudioError(f"output is {declared} bytes, over {max_bytes}", code="download_too_large")
    await asyncio.to_thread(dest.parent.mkdir, parents=True, exist_ok=True)
    tmp = dest.with_name(f".{dest.name}.{secrets.token_hex(4)}.part")
    fh: BinaryIO = await asyncio.to_thread(tmp.open, "wb")
    done = False
    received = 0  # bytes on the wire, to compare with Content-Length

    async def raw() -> AsyncIterator[bytes]:
        nonlocal received
        async for chunk in response.aiter_raw(CHUNK_SIZE):
            received += len(chunk)
            yield chunk

    try:
        size, head, fmt = 0, b"", None
        try:
            async for chunk in decoded(raw(), encoding, piece=CHUNK_SIZE):
                size += len(chunk)
                if size > max_bytes:
                    raise AudioError(f"output is over {max_bytes} bytes", code="download_too_large")
                if fmt is None and len(head) < SNIFF_BYTES:
                    head += chunk[: SNIFF_BYTES - len(head)]
                    if len(head) >= SNIFF_BYTES:
                        fmt = _require_audio(head)  # fail early on an HTML error page
                await asyncio.to_thread(fh.write, chunk)
        except (httpx.TransportError, httpx.StreamError) as exc:
            raise AudioError(
                f"download broke after {received} bytes: {type(exc).__name__}",
                code="download_truncated",
            ) from None
        if declared is not None and received < declared:
            raise AudioError(f"got {received} of {declared} bytes", code="download_truncated")
        if size == 0:
            raise AudioError("the output is empty", code="empty_audio")
        fmt = fmt or _require_audio(head)
        await asyncio.to_thread(fh.close)
        await asyncio.to_thread(os.replace, tmp, dest)
        done = True
    finally:
        if not done:
            # Plain sync calls: an await here could be cancelled and skip the clean-up.
            fh.close()
            tmp.unlink(missing_ok=True)
    logger.info("downloaded %s bytes of %s to %s", size, fmt, dest.name)
    return DownloadedAudio(path=dest, format=fmt, size=size)


def _require_audio(head: bytes) -> str:
    fmt = sniff_audio_format(head)
    if fmt is None:
        raise AudioError("the output is not a known audio format", code="not_audio")
    return fmt
