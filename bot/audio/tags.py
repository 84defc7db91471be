"""The ID3 text of a generated song, and writing it (with the cover) into an MP3."""

from __future__ import annotations

import io
import re
from pathlib import Path

from mutagen.id3 import APIC, COMM, ID3, TALB, TIT2, TPE1, PictureType

from bot.audio.model import TITLE_MAX, TrackTags


def tags_for(tags: str, seed: int | None, duration: float, album: str | None) -> TrackTags:
    """The ID3 text for a generated song: a tidy title from its style tags, and a comment
    recording tags, seed and length (so a listener can make it again)."""
    parts = [re.sub(r"\s+", " ", part).strip() for part in re.split(r"[,;\n]", tags)]
    # Deduplicate ignoring case, keeping the first spelling ("EDM, edm" → "EDM").
    first: dict[str, str] = {}
    for part in parts:
        if part:
            first.setdefault(part.casefold(), part)
    unique = list(first.values())
    title = _shorten(", ".join(_capitalise(part) for part in unique), TITLE_MAX) or "Untitled"
    seed_text = str(seed) if seed is not None and seed >= 0 else "random"
    comment = f"Tags: {', '.join(unique) or '-'} | Seed: {seed_text} | Duration: {_clock(duration)}"
    album = re.sub(r"\s+", " ", album).strip()[:100] if album else None
    return TrackTags(title=title, album=album or None, comment=comment)


def _capitalise(phrase: str) -> str:
    # Only all-lowercase words: "EDM", "80s" and "McCartney" stay as written.
    return " ".join(
        word[:1].upper() + word[1:] if word.islower() else word for word in phrase.split()
    )


def _shorten(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]  # one character is left for the ellipsis
    if text[limit - 1] not in " ,;" and " " in cut:  # mid-word: drop the partial word
        cut = cut[: cut.rindex(" ")]
    return cut.rstrip(" ,;-") + "…"


def _clock(seconds: float) -> str:
    whole = round(seconds)
    return f"{whole // 60}:{whole % 60:02d}"


def _id3_frames(tags: TrackTags, cover_png: Path | None) -> ID3:
    id3 = ID3()
    id3.add(TIT2(encoding=3, text=tags.title))
    id3.add(TPE1(encoding=3, text=tags.artist))
    if tags.album:
        id3.add(TALB(encoding=3, text=tags.album))
    id3.add(COMM(encoding=3, lang="eng", desc="", text=tags.comment))
    if cover_png is not None:
        id3.add(
            APIC(
                encoding=3,
                mime="image/png",
                type=PictureType.COVER_FRONT,
                desc="Cover",
                data=cover_png.read_bytes(),
            )
        )
    return id3


def _id3_bytes(tags: TrackTags, cover_png: Path | None) -> bytes:
    """The exact tag :func:`write_tags` will put in front of the audio (to budget its size)."""
    buffer = io.BytesIO()
    _id3_frames(tags, cover_png).save(buffer, v2_version=3, padding=_no_padding)
    return buffer.getvalue()


def _no_padding(_info: object) -> int:
    return 0  # every byte counts against the upload limit, and we never edit in place


def write_tags(path: Path, tags: TrackTags, cover_png: Path | None) -> None:
    """Replace any ID3 tags of the MP3 at ``path`` with ours (ID3v2.3, which every player
    reads): title, artist, album, comment and the front cover."""
    _id3_frames(tags, cover_png).save(path, v1=0, v2_version=3, padding=_no_padding)
