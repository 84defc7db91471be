"""What kind of audio a file is, from its first bytes (never from a name or a header)."""

from __future__ import annotations

SNIFF_BYTES = 12  # enough for every signature below


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
