"""Fetching a finished song onto our disk without trusting the URL it came from.

- :mod:`~bot.backends.download.policy`: which hosts and addresses may be fetched
  (:class:`DownloadPolicy`);
- :mod:`~bot.backends.download.transport`: the httpx transport that enforces it on every connection;
- :mod:`~bot.backends.download.decoding`: bounded Content-Encoding decoding;
- :mod:`~bot.backends.download.fetch`: :class:`Downloader`, the streamed, size-capped,
  deadline-bound fetch
  (it checks the first bytes with the core's :func:`bot.audio.formats.sniff_audio_format`).

It is part of the backends' edge: it does network I/O, and only backends and the shell use it.
"""

from bot.audio.formats import SNIFF_BYTES, sniff_audio_format
from bot.backends.download.fetch import Downloader, redact_url
from bot.backends.download.policy import DownloadPolicy, Resolver, is_public, normalize_host

__all__ = [
    "SNIFF_BYTES",
    "DownloadPolicy",
    "Downloader",
    "Resolver",
    "is_public",
    "normalize_host",
    "redact_url",
    "sniff_audio_format",
]
