"""What an audio file is and how long it plays, from its headers alone (no decoding)."""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import mutagen
from mutagen.flac import FLAC
from mutagen.mp3 import MP3
from mutagen.mp4 import MP4
from mutagen.oggflac import OggFLAC
from mutagen.oggopus import OggOpus
from mutagen.oggvorbis import OggVorbis

from bot.audio.formats import SNIFF_BYTES, sniff_audio_format
from bot.audio.model import _TRUNCATION_TOLERANCE, AudioInfo
from bot.errors import AudioError


def probe(path: Path) -> AudioInfo:
    """What ``path`` is and how long it plays, from its headers alone (no decoding).

    Accepts what the downloader accepts: MP3, WAV, FLAC, Ogg (Vorbis, Opus, FLAC) and MP4
    audio. Raises :class:`AudioError` for a missing, empty or non-audio file, and for one cut
    short where its headers show it: a WAV's RIFF or an MP4's box sizes, an MP3's Xing/Info
    byte count. Damage in the middle of a file, or a FLAC or Ogg cut short, only a full decode
    finds: :func:`analyse`, which :func:`prepare_for_upload` runs.
    """
    info = _from_headers(path)
    if info is None:
        raise AudioError(
            f"{path.name}: not an audio file (it starts like no MP3, WAV, FLAC, Ogg or MP4 file)"
        )
    return info


def _from_headers(path: Path) -> AudioInfo | None:
    """:func:`probe`'s checks; None for a file in none of the formats it reads."""
    size = _size_of(path)
    try:
        with path.open("rb") as fh:
            fmt = sniff_audio_format(fh.read(SNIFF_BYTES))
            return None if fmt is None else _HEADER_PROBES[fmt](fh, path.name, size)
    except OSError as exc:
        raise AudioError(f"{path.name}: cannot read the file ({exc.strerror})") from exc


def _size_of(path: Path) -> int:
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise AudioError(f"{path.name}: cannot read the file ({exc.strerror})") from exc
    if size == 0:
        raise AudioError(f"{path.name}: the file is empty (0 bytes)")
    return size


def _parsed(
    kind: Callable[[BinaryIO], mutagen.FileType], fh: BinaryIO, name: str, what: str
) -> tuple[mutagen.FileType, Any]:
    """The file as mutagen reads it, and its stream facts (which mutagen leaves untyped)."""
    fh.seek(0)
    try:
        parsed = kind(fh)
    except Exception as exc:  # mutagen raises a zoo of types on junk
        raise AudioError(f"{name}: not an audio file (not a readable {what}: {exc})") from exc
    return parsed, parsed.info


def _probe_mp3(fh: BinaryIO, name: str, size: int) -> AudioInfo:
    _, info = _parsed(MP3, fh, name, "MP3")
    declared = _xing_bytes(fh, info)
    # Some encoders count the ID3 tag in too, so compare with the whole file: a cut-off
    # download still falls short of it.
    slack = info.bitrate * _TRUNCATION_TOLERANCE / 8
    if declared is not None and declared > size + slack:
        raise AudioError(
            f"{name}: truncated MP3: its Xing header declares {declared} bytes of audio, "
            f"but the file has {size}"
        )
    codec = {1: "mp1", 2: "mp2"}.get(info.layer, "mp3")
    rate, channels = info.sample_rate, info.channels
    return AudioInfo("mp3", codec, info.length, rate, channels, info.bitrate or None, size)


def _xing_bytes(fh: BinaryIO, info: Any) -> int | None:
    """The byte count in an MP3's Xing/Info header (LAME and FFmpeg write one), if any."""
    offset = getattr(info, "frame_offset", None)  # where mutagen found the first frame
    if info.layer != 3 or offset is None:
        return None
    # The header follows the 4-byte frame header and the side information, whose size
    # depends on the MPEG version and mono/stereo.
    stereo = info.channels == 2
    side = (32 if stereo else 17) if info.version == 1 else (17 if stereo else 9)
    fh.seek(offset + 4 + side)
    data = fh.read(16)
    if len(data) < 16 or data[:4] not in (b"Xing", b"Info"):
        return None
    flags = int.from_bytes(data[4:8], "big")
    if not flags & 0x2:  # no byte count
        return None
    at = 12 if flags & 0x1 else 8  # after the frame count, when there is one
    return int.from_bytes(data[at : at + 4], "big") or None


def _probe_wav(fh: BinaryIO, name: str, size: int) -> AudioInfo:
    wav = _read_wav(fh, name, size)
    if wav is None or len(wav.fmt) < 16:
        raise AudioError(f"{name}: not an audio file (a WAV without a usable fmt chunk)")
    tag, channels, rate, byte_rate, _align, bits = struct.unpack("<HHIIHH", wav.fmt[:16])
    if tag == 0xFFFE and len(wav.fmt) >= 26:  # WAVE_FORMAT_EXTENSIBLE: the real tag is later
        (tag,) = struct.unpack("<H", wav.fmt[24:26])
    if not (channels and rate and byte_rate):
        raise AudioError(f"{name}: not an audio file (its WAV header has no sample layout)")
    if wav.data_bytes == 0:
        raise AudioError(f"{name}: contains no audio samples")
    return AudioInfo(
        format="wav",
        codec=_wav_codec(tag, bits),
        duration=wav.data_bytes / byte_rate,
        sample_rate=rate,
        channels=channels,
        bit_rate=byte_rate * 8,
        size=size,
    )


def _wav_codec(tag: int, bits: int) -> str:
    if tag == 1:
        return "pcm_u8" if bits == 8 else f"pcm_s{bits}le"
    if tag == 3:
        return f"pcm_f{bits}le"
    return {6: "pcm_alaw", 7: "pcm_mulaw", 0x55: "mp3"}.get(tag, f"wav_format_0x{tag:04x}")


@dataclass(frozen=True)
class _Wav:
    fmt: bytes  # the "fmt " chunk (empty if the file has none before its audio)
    data_bytes: int  # bytes of audio the file holds


def _read_wav(fh: BinaryIO, name: str, size: int) -> _Wav | None:
    """A RIFF/WAVE file's format chunk and audio size; None if it is no WAV.

    Raises :class:`AudioError` if the header promises more audio than the file holds: FFmpeg
    silently plays such a WAV shorter, so decoding it would not tell.
    """
    fh.seek(0)
    head = fh.read(12)
    if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
        return None
    offset, fmt = 12, b""
    for _ in range(64):  # a WAV has a handful of chunks; stop on nonsense
        chunk = fh.read(8)
        if len(chunk) < 8:
            raise AudioError(f"{name}: truncated WAV: the header ends before the audio data starts")
        chunk_id, chunk_size = struct.unpack("<4sI", chunk)
        offset += 8
        if chunk_id == b"fmt ":
            fmt = fh.read(min(chunk_size, 64))
        elif chunk_id == b"data":
            held = size - offset
            # 0 and 0xFFFFFFFF mean "length unknown" (written by a streaming encoder).
            if chunk_size in (0, 0xFFFFFFFF):
                return _Wav(fmt, held)
            if chunk_size > held:
                raise AudioError(
                    f"{name}: truncated WAV: it declares {chunk_size} bytes of audio "
                    f"but holds {held}"
                )
            return _Wav(fmt, chunk_size)
        offset += chunk_size + (chunk_size & 1)
        fh.seek(offset)
    return None


def _probe_flac(fh: BinaryIO, name: str, size: int) -> AudioInfo:
    _, info = _parsed(FLAC, fh, name, "FLAC")
    # STREAMINFO states the sample count (0: not known, as from a streaming encoder).
    return AudioInfo(
        "flac", "flac", info.length, info.sample_rate, info.channels, info.bitrate or None, size
    )


_OGG_CODECS: dict[type[mutagen.FileType], str] = {
    OggVorbis: "vorbis",
    OggOpus: "opus",
    OggFLAC: "flac",
}


def _probe_ogg(fh: BinaryIO, name: str, size: int) -> AudioInfo:
    def ogg_audio(fh: BinaryIO) -> mutagen.FileType:
        parsed = mutagen.File(fh, options=list(_OGG_CODECS))
        if parsed is None:
            raise ValueError("no Vorbis, Opus or FLAC stream")
        return parsed

    parsed, info = _parsed(ogg_audio, fh, name, "Ogg audio stream")
    return AudioInfo(
        format="ogg",
        codec=_OGG_CODECS[type(parsed)],
        duration=info.length,
        sample_rate=getattr(info, "sample_rate", 48000),  # Opus always decodes at 48 kHz
        channels=info.channels,
        bit_rate=getattr(info, "bitrate", 0) or None,
        size=size,
    )


def _probe_mp4(fh: BinaryIO, name: str, size: int) -> AudioInfo:
    problem = _box_truncation(fh, size)
    if problem:
        raise AudioError(f"{name}: truncated MP4: {problem}")
    _, info = _parsed(MP4, fh, name, "MP4 file")
    # FFmpeg's name for AAC ("mp4a.40.2" is AAC LC); any other codec as MP4 spells it.
    codec = "aac" if info.codec.startswith("mp4a.40") else info.codec
    return AudioInfo(
        "m4a", codec, info.length, info.sample_rate, info.channels, info.bitrate or None, size
    )


def _box_truncation(fh: BinaryIO, size: int) -> str | None:
    """An MP4's top-level boxes tile the file; one running past its end was cut off."""
    offset = 0
    for _ in range(64):  # ftyp, moov, mdat and a few more; stop on nonsense
        if offset + 8 > size:
            return None
        fh.seek(offset)
        header = fh.read(16)
        box_size, kind = struct.unpack(">I4s", header[:8])
        if box_size == 1 and len(header) == 16:  # a 64-bit size follows
            (box_size,) = struct.unpack(">Q", header[8:])
        if box_size == 0:  # "to the end of the file"
            return None
        if box_size < 8:
            return None  # not a box: mutagen will judge
        if offset + box_size > size:
            label = kind.decode("latin-1")
            return f"its {label!r} box declares {box_size} bytes but {size - offset} remain"
        offset += box_size
    return None


_HEADER_PROBES: dict[str, Callable[[BinaryIO, str, int], AudioInfo]] = {
    "mp3": _probe_mp3,
    "wav": _probe_wav,
    "flac": _probe_flac,
    "ogg": _probe_ogg,
    "m4a": _probe_mp4,
}
