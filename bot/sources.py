"""The audio an edit starts from (docs/edits.md): a user's upload, checked and kept, or a
copy of one of our tracks, under ``DATA_DIR/sources``.

A user's file goes through three places, and nothing is left behind on any path:

1. ``incoming(key)``: where the adapter downloads it (``sources/incoming/<key>``), after
   checking the size the platform reports against :data:`MAX_UPLOAD_BYTES`;
2. ``take_in(path, key=key)``: its size checked again, its first bytes sniffed, decoded
   fully with PyAV in a thread (a real audio stream, not damaged, at most ``max_seconds``),
   then moved to ``sources/<key>.<format>``; the incoming file is removed either way, and
   a refusal is a sentence for the user (:class:`~bot.domain.Invalid`);
3. the job owns it from then on: the backend reads it, and the retention sweep
   (``bot/worker/retention.py``) removes it with the audio once the job has ended.

``copy_of`` makes a job's source from one of our tracks: a hard link where the filesystem
allows (no bytes copied), so the parent's own sweep can't take the edit's source away.
The name of a source comes from its key (a platform event id): a chat event delivered
twice lands on the same file, as it lands on the same job.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import re
import secrets
import shutil
from dataclasses import dataclass
from pathlib import Path

from bot.audio.formats import SNIFF_BYTES, sniff_audio_format
from bot.domain import Invalid
from bot.errors import AudioError

logger = logging.getLogger(__name__)

MAX_UPLOAD_BYTES = 20 * 1024 * 1024  # what a user may send to edit (checked before download)
KINDS = "MP3, WAV, FLAC, OGG (voice messages too) or M4A"
_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")
_KEY_CHARS = 80


@dataclass(frozen=True)
class SourceAudio:
    """A user's audio, checked and stored: what an edit of it starts from."""

    path: str  # DATA_DIR/sources/<key>.<format>
    seconds: float  # as decoded
    format: str  # "mp3" | "wav" | "flac" | "ogg" | "m4a"
    size: int  # bytes


def too_big(size: int, limit: int = MAX_UPLOAD_BYTES) -> str:
    """The sentence for a file over ``limit`` bytes (adapters say it before downloading)."""
    return (
        f"That file is {size / 1024 / 1024:.1f} MB; audio to edit can be at most "
        f"{limit // 1024 // 1024} MB."
    )


def not_audio() -> str:
    return f"That file isn't audio I can read; send {KINDS}."


def too_long(seconds: float, limit: int) -> str:
    return (
        f"That audio is {_clock(seconds)} long; audio to edit can be at most {_clock(limit)}. "
        "Send a shorter part."
    )


def damaged() -> str:
    return "That audio file is damaged or cut short, so I can't use it; try sending it again."


def empty() -> str:
    return f"That file is empty; send the audio itself ({KINDS})."


def not_received() -> str:
    return "I couldn't get that file from the chat; please send it again."


class SourceFiles:
    """Sources of edits under ``data_dir/sources`` (one per job)."""

    def __init__(
        self, data_dir: Path, max_bytes: int = MAX_UPLOAD_BYTES, max_seconds: int = 240
    ) -> None:
        self.root = Path(data_dir) / "sources"
        self.incoming_dir = self.root / "incoming"
        self.max_bytes = max_bytes
        self.max_seconds = max_seconds

    def incoming(self, key: str) -> Path:
        """Where the adapter downloads the file for event ``key``: a new name each time (an
        event handled twice at once never writes into the other's download), in a folder
        that exists."""
        # 0700: users' audio, like the database beside it.
        self.incoming_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        return self.incoming_dir / f"{safe_key(key)}.{secrets.token_hex(4)}"

    async def take_in(self, path: Path, *, key: str) -> SourceAudio | Invalid:
        """Check the downloaded ``path`` and keep it as the source for ``key``, or say why
        not. ``path`` is gone afterwards either way."""
        try:
            return await asyncio.to_thread(self._take_in, Path(path), key)
        finally:
            # Also when the check itself was cancelled: no upload outlives its request.
            with contextlib.suppress(OSError):
                Path(path).unlink(missing_ok=True)

    def _take_in(self, path: Path, key: str) -> SourceAudio | Invalid:
        try:
            size = path.stat().st_size
            with path.open("rb") as file:
                head = file.read(SNIFF_BYTES)
        except OSError:
            return Invalid(not_received())
        if size == 0:
            return Invalid(empty())
        if size > self.max_bytes:
            return Invalid(too_big(size, self.max_bytes))
        fmt = sniff_audio_format(head)
        if fmt is None:  # a renamed text file, a picture, a video: never decoded
            return Invalid(not_audio())
        from bot.audio import analyse, probe  # PyAV loads only where audio is sent

        try:
            # The headers first: a long file is refused without decoding all of it.
            declared = probe(path).duration
            if declared > self.max_seconds + 1:
                return Invalid(too_long(declared, self.max_seconds))
            info, _ = analyse(path)
        except AudioError as error:
            logger.info("source %s refused: %s", safe_key(key), error)
            # bot/audio's own words: the first bytes looked right, but there is no audio
            # behind them (a video without sound, a mislabelled file), or it breaks off.
            missing = ("not an audio file", "not audio", "no audio samples")
            return Invalid(not_audio() if any(m in str(error) for m in missing) else damaged())
        if info.duration > self.max_seconds + 0.5:  # a rounding's grace, not a second more
            return Invalid(too_long(info.duration, self.max_seconds))
        kept = self.root / f"{safe_key(key)}.{fmt}"
        os.replace(path, kept)  # the same filesystem: sources/incoming is under sources
        return SourceAudio(str(kept), info.duration, fmt, size)

    async def copy_of(self, track_path: Path | str, key: str) -> Path:
        """A source for ``key`` from one of our tracks (FileNotFoundError if it is gone)."""
        return await asyncio.to_thread(self._copy_of, Path(track_path), key)

    def _copy_of(self, track: Path, key: str) -> Path:
        self.root.mkdir(mode=0o700, parents=True, exist_ok=True)
        suffix = track.suffix if re.fullmatch(r"\.[A-Za-z0-9]{1,5}", track.suffix) else ""
        kept = self.root / f"{safe_key(key)}{suffix}"
        # Made beside its final name, then renamed over it: a repeated event replaces the
        # file whole, never leaves half a copy.
        temporary = self.incoming_dir / f"{kept.name}.{secrets.token_hex(4)}.part"
        self.incoming_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        try:
            try:
                os.link(track, temporary)
            except FileNotFoundError:  # the track is gone: the caller says so
                raise
            except OSError:  # another filesystem, or links not allowed: copy the bytes
                shutil.copyfile(track, temporary)
            # Its age starts now: the sweep keeps a source for the audio retention after its
            # job ends (🎲 under an edit runs it again). A link shares the track's times, so
            # the track itself is kept that long too, which an edited track deserves.
            os.utime(temporary)
            os.replace(temporary, kept)
        finally:
            temporary.unlink(missing_ok=True)
        return kept

    def remove(self, path: str | Path) -> None:
        """Forget a source no job will use (its edit was refused). Only files under
        ``sources`` are removed."""
        target = Path(path)
        if self.root.resolve() not in target.resolve().parents:
            return
        with contextlib.suppress(OSError):
            target.unlink(missing_ok=True)


def safe_key(key: str) -> str:
    """``key`` as a file name: letters, digits, ``-`` and ``_``; a short hash keeps keys
    that differ only in other characters (or past the length kept) apart."""
    safe = _UNSAFE.sub("_", key)[:_KEY_CHARS] or "source"
    if safe != key:
        safe += "-" + hashlib.sha256(key.encode()).hexdigest()[:10]
    return safe


def _clock(seconds: float) -> str:
    whole = round(seconds)
    return f"{whole // 60}:{whole % 60:02d}"
