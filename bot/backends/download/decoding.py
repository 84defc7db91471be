"""Undo a response's ``Content-Encoding`` in bounded steps.

httpx decodes each network chunk in one call, so a few KB of ``gzip, gzip`` can become
gigabytes in memory before any size check sees them. We read raw bytes and inflate them here
with ``zlib``'s ``max_length``: no step ever holds more than ``piece`` decoded bytes, so the
size cap applies to decoded bytes as they appear, whatever the encoding.
"""

from __future__ import annotations

import zlib
from collections.abc import AsyncIterator, Iterator

from bot.errors import AudioError

_GZIP_WBITS = 16 + zlib.MAX_WBITS
_SUPPORTED = ("identity", "gzip", "x-gzip", "deflate")


def encodings(header: str | None) -> list[str]:
    """The encodings in the order they were applied; refuses what we did not ask for."""
    names = [part.strip().lower() for part in (header or "").split(",") if part.strip()]
    for name in names:
        if name not in _SUPPORTED:
            raise AudioError(f"unsupported Content-Encoding {name}", code="download_failed")
    return [name for name in names if name != "identity"]


class _Inflater:
    """One layer of gzip/deflate, fed compressed bytes, giving at most ``piece`` at a time."""

    def __init__(self, encoding: str, piece: int) -> None:
        self._gzip = encoding in ("gzip", "x-gzip")
        self._piece = piece
        self._first = True
        self._z = self._new()

    def _new(self) -> zlib._Decompress:
        return zlib.decompressobj(_GZIP_WBITS if self._gzip else zlib.MAX_WBITS)

    def feed(self, data: bytes) -> Iterator[bytes]:
        while data:
            try:
                out = self._z.decompress(data, self._piece)
            except zlib.error:
                if self._first and not self._gzip:
                    # Some servers send raw deflate without the zlib header (as httpx allows).
                    self._z, self._first = zlib.decompressobj(-zlib.MAX_WBITS), False
                    continue
                raise AudioError("the download's compression is corrupt", code="not_audio") from (
                    None
                )
            self._first = False
            if out:
                yield out
            if self._z.eof:
                data = self._z.unused_data  # a second gzip member follows
                self._z = self._new()
            else:
                data = self._z.unconsumed_tail

    def finish(self) -> Iterator[bytes]:
        out = self._z.flush()
        if out:
            yield out


async def decoded(
    raw: AsyncIterator[bytes], content_encoding: str | None, *, piece: int
) -> AsyncIterator[bytes]:
    """The decoded body of ``raw``, in pieces of at most ``piece`` bytes (raw pieces as they
    come when there is no encoding)."""
    layers = [_Inflater(name, piece) for name in reversed(encodings(content_encoding))]
    async for chunk in raw:
        for out in _through(layers, chunk):
            yield out
    for index, layer in enumerate(layers):
        for tail in layer.finish():
            for out in _through(layers[index + 1 :], tail):
                yield out


def _through(layers: list[_Inflater], chunk: bytes) -> Iterator[bytes]:
    if not layers:
        yield chunk
        return
    first, rest = layers[0], layers[1:]
    for piece in first.feed(chunk):
        yield from _through(rest, piece)
