"""Fetch a finished song from its output URL onto our disk, without trusting the URL.

The output URL comes from upstream JSON, so it is treated as hostile: only http(s), only hosts
on the caller's allowlist (checked again at every redirect hop), a hard size cap, and a format
check on the first bytes. The body is streamed to a temporary file beside ``dest`` and renamed
at the end, so a failed download never leaves a partial file.

Failures: :class:`~bot.errors.TransientBackendError` when the host could not be reached or
answered 408/429/5xx (worth retrying), :class:`~bot.errors.AudioError` for everything else,
with ``code`` one of ``download_refused`` (scheme/host not allowed), ``download_expired``
(401/403/404/410), ``download_failed`` (other 4xx, bad redirects), ``download_too_large``,
``download_truncated`` (fewer bytes than announced, or the connection broke mid-body),
``empty_audio`` and ``not_audio``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import BinaryIO

import httpx

from bot.errors import AudioError, TransientBackendError
from bot.ports import DownloadedAudio

logger = logging.getLogger(__name__)

MAX_REDIRECTS = 3
CHUNK_SIZE = 64 * 1024
SNIFF_BYTES = 12  # enough for every signature below
_REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
_EXPIRED_STATUSES = frozenset({401, 403, 404, 410})  # signed URL expired or object gone
_RETRYABLE_STATUSES = frozenset({408, 425, 429})


def sniff_audio_format(head: bytes) -> str | None:
    """``"mp3" | "wav" | "flac" | "ogg" | "m4a"`` from a file's first bytes, else None."""
    if head.startswith(b"ID3"):
        return "mp3"
    if len(head) >= 2 and head[0] == 0xFF and _is_mpeg_audio_frame(head[1]):
        return "mp3"
    if head.startswith(b"RIFF") and head[8:12] == b"WAVE":
        return "wav"
    if head.startswith(b"fLaC"):
        return "flac"
    if head.startswith(b"OggS"):
        return "ogg"
    if head[4:8] == b"ftyp":
        return "m4a"
    return None


def _is_mpeg_audio_frame(second: int) -> bool:
    # 11 sync bits, a version that is not "reserved" (01), and a layer that is not 00:
    # layer 00 is how AAC/ADTS shares the same sync word.
    sync = second & 0xE0 == 0xE0
    version = (second >> 3) & 0b11
    layer = (second >> 1) & 0b11
    return sync and version != 0b01 and layer != 0b00


def redact_url(url: httpx.URL | str) -> str:
    """The URL without user info and query string: safe to log (queries may be signed)."""
    try:
        parsed = httpx.URL(str(url))
    except httpx.InvalidURL:
        return "<invalid url>"
    port = f":{parsed.port}" if parsed.port else ""
    return f"{parsed.scheme}://{parsed.host}{port}{parsed.path}"


def normalize_host(host: str) -> str:
    """Lower-case host without brackets, port or trailing dot; accepts a full URL too.

    Operators write allowlist entries as ``cdn.example.com``, ``cdn.example.com:443`` or
    ``https://cdn.example.com``; all mean the same host.
    """
    text = host.strip()
    if "://" in text:
        with contextlib.suppress(httpx.InvalidURL):
            text = httpx.URL(text).host
    elif text.startswith("["):  # "[::1]" or "[::1]:8001"
        text = text[1:].partition("]")[0]
    elif text.count(":") == 1:  # "host:port" (a bare IPv6 address has several colons)
        text = text.partition(":")[0]
    return text.strip("[]").rstrip(".").lower()


async def stream_to_file(
    http: httpx.AsyncClient,
    url: str,
    dest: Path,
    *,
    allowed_hosts: Collection[str],
    max_bytes: int,
    headers: Mapping[str, str] | None = None,
) -> DownloadedAudio:
    """Download ``url`` to ``dest`` and return what landed there.

    ``headers`` (e.g. a Bearer token) are sent only to the origin of ``url`` itself, never to
    a host a redirect points at.
    """
    allowed = frozenset(normalize_host(h) for h in allowed_hosts if h.strip())
    current = _parse(url)
    origin = _origin(current)
    for _hop in range(MAX_REDIRECTS + 1):
        _check_target(current, allowed)
        hop_headers = dict(headers or {}) if _origin(current) == origin else {}
        logger.debug("download GET %s", redact_url(current))
        try:
            async with http.stream(
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


def _check_target(url: httpx.URL, allowed: frozenset[str]) -> None:
    # Exact matching also settles IP literals: a private, loopback or link-local address
    # (169.254.169.254, 10.x, ::1...) is reachable only if that very literal is listed.
    if url.scheme not in ("http", "https"):
        raise AudioError(f"refusing {url.scheme or 'schemeless'} URL", code="download_refused")
    host = normalize_host(url.host)
    if not host or host not in allowed:
        raise AudioError(f"host {host or '(none)'} is not allowed", code="download_refused")


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
            retry_after=_retry_after(response),
        )
    raise AudioError(f"{where} answered {status}", code="download_failed")


def _retry_after(response: httpx.Response) -> float | None:
    try:
        return max(0.0, float(response.headers.get("retry-after", "")))
    except ValueError:
        return None


def _declared_length(response: httpx.Response) -> int | None:
    # With a Content-Encoding the header counts compressed bytes, not what we write.
    if response.headers.get("content-encoding", "identity") != "identity":
        return None
    try:
        return int(response.headers["content-length"])
    except (KeyError, ValueError):
        return None


async def _save(response: httpx.Response, dest: Path, *, max_bytes: int) -> DownloadedAudio:
    declared = _declared_length(response)
    if declared is not None and declared > max_bytes:
        raise AudioError(f"output is {declared} bytes, over {max_bytes}", code="download_too_large")
    await asyncio.to_thread(dest.parent.mkdir, parents=True, exist_ok=True)
    tmp = dest.with_name(f".{dest.name}.{secrets.token_hex(4)}.part")
    fh: BinaryIO = await asyncio.to_thread(tmp.open, "wb")
    done = False
    try:
        size, head, fmt = 0, b"", None
        try:
            async for chunk in response.aiter_bytes(CHUNK_SIZE):
                size += len(chunk)
                if size > max_bytes:
                    raise AudioError(f"output is over {max_bytes} bytes", code="download_too_large")
                if fmt is None and len(head) < SNIFF_BYTES:
                    head += chunk[: SNIFF_BYTES - len(head)]
                    if len(head) >= SNIFF_BYTES:
                        fmt = _require_audio(head)  # fail early on an HTML error page
                await asyncio.to_thread(fh.write, chunk)
        except (httpx.TransportError, httpx.StreamError, httpx.DecodingError) as exc:
            raise AudioError(
                f"download broke after {size} bytes: {type(exc).__name__}",
                code="download_truncated",
            ) from None
        if size == 0:
            raise AudioError("the output is empty", code="empty_audio")
        if declared is not None and size < declared:
            raise AudioError(f"got {size} of {declared} bytes", code="download_truncated")
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
