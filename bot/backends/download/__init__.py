"""Fetching a finished song onto our disk without trusting the URL it came from.

- :mod:`~bot.download.policy`: which hosts and addresses may be fetched (:class:`DownloadPolicy`);
- :mod:`~bot.download.transport`: the httpx transport that enforces it on every connection;
- :mod:`~bot.download.decoding`: bounded Content-Encoding decoding;
- :mod:`~bot.download.fetch`: :class:`Downloader`, the streamed, size-capped, deadline-bound fetch;
- :mod:`~bot.download.formats`: sniffing the audio format from the first bytes.
"""

from bot.download.fetch import Downloader, redact_url
from bot.download.formats import SNIFF_BYTES, sniff_audio_format
from bot.download.policy import DownloadPolicy, Resolver, is_public, normalize_host

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
