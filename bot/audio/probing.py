"""The finished song, made fit for a chat: probed, sized to the upload limit, tagged, pictured.

Everything here is synchronous CPU and file work; callers run it in ``asyncio.to_thread``.

    probe(path)              AudioInfo from the file's headers, without decoding (the worker's)
    analyse(path)            one full decode: AudioInfo (validated) + Envelope (for pictures)
    prepare_for_upload(...)  an MP3 ≤ limit_bytes, tagged, with its pictures (PreparedTrack)
    render_waveform / render_cover / render_thumbnail      PNG/JPEG pictures of a track
    write_tags(...)          ID3v2.3 title, artist, album, comment, front cover
    tags_for(...)            the TrackTags for a generated song
    remove_expired_audio(...) retention sweep over the audio directory

Each song is decoded once. The worker only ``probe``s headers (a few kB read), and the full
decode, the only way to find damage in the middle of a file, is the ``analyse`` inside
``prepare_for_upload``, which needs the loudness envelope for the pictures anyway. PyAV, NumPy
and Pillow (~45 MB of RSS once imported) are imported inside the functions that decode, encode or
draw, so a process that only runs the worker never loads them.

Audio is streamed from disk (decode → resample → encode), so a 4-minute 48 kHz WAV (~46 MB)
is never held in memory: Python-level allocations stay under 4 MB, whatever the length.
"""

from __future__ import annotations

import dataclasses
import io
import logging
import math
import re
import shutil
import struct
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

import mutagen
from mutagen.flac import FLAC
from mutagen.id3 import APIC, COMM, ID3, TALB, TIT2, TPE1, PictureType
from mutagen.mp3 import MP3, BitrateMode
from mutagen.mp4 import MP4
from mutagen.oggflac import OggFLAC
from mutagen.oggopus import OggOpus
from mutagen.oggvorbis import OggVorbis

from bot.download import SNIFF_BYTES, sniff_audio_format
from bot.errors import AudioError

if TYPE_CHECKING:
    import av
    import numpy as np
    import numpy.typing as npt
    from PIL import Image

    Floats = npt.NDArray[np.float32]

logger = logging.getLogger(__name__)

ARTIST = "AceJam"
STANDARD_KBPS = (320, 256, 224, 192, 160, 128, 112, 96, 80, 64, 56, 48, 40, 32)
TITLE_MAX = 60
MIN_PREVIEW_SECONDS = 10.0
TELEGRAM_THUMB_SIDE = 320
TELEGRAM_THUMB_BYTES = 200_000

_MP3_FRAME = 1152  # samples per MPEG-1 layer III frame
_MP3_EXTRA_FRAMES = 4  # Xing/LAME header frame + encoder delay and padding, rounded up
_SIZE_MARGIN = 1.005  # headroom over the computed CBR size; the result is verified anyway
_SIZE_SLACK = 4096
_PREVIEW_FADE_SECONDS = 2.0
_TRUNCATION_TOLERANCE = 0.1  # seconds a declared length may exceed what decodes
_BLOCKS_PER_SECOND = 100  # envelope resolution: 10 ms
_BACKGROUND = (14, 15, 20)
_ACCENT_FROM = (139, 92, 246)  # violet
_ACCENT_TO = (34, 211, 238)  # cyan


@dataclass(frozen=True)
class AudioInfo:
    """What a file really is, found from its content (never its name): from its headers by
    :func:`probe`, by decoding it by :func:`analyse`."""

    format: str  # container: "mp3", "wav", "flac", "ogg", "m4a"; after analyse, FFmpeg's name
    codec: str  # as FFmpeg names it: "mp3", "pcm_s16le", "flac", "vorbis", "aac", ...
    duration: float  # seconds: declared by the headers (probe), counted when decoded (analyse)
    sample_rate: int
    channels: int
    bit_rate: int | None  # bits per second, when known
    size: int  # bytes on disk


@dataclass(frozen=True, eq=False)
class Envelope:
    """Loudness over time, one value per 10 ms block: enough to draw any picture of the track."""

    peak: Floats  # max |sample| over all channels, 0..1
    rms: Floats  # root mean square, 0..1
    duration: float

    def columns(self, count: int) -> tuple[Floats, Floats]:
        """Peak and RMS re-binned to ``count`` equal slices of the track."""
        import numpy as np

        if len(self.peak) == 0:
            zeros = np.zeros(count, dtype=np.float32)
            return zeros, zeros
        # reduceat over repeated start indices returns that single block, so short clips
        # (fewer blocks than columns) stretch instead of failing.
        starts = (np.arange(count) * len(self.peak)) // count
        peak = np.maximum.reduceat(self.peak, starts)
        power = np.add.reduceat(self.rms**2, starts)
        widths = np.diff(np.append(starts, len(self.peak)))
        rms = np.sqrt(power / np.maximum(widths, 1))
        return peak.astype(np.float32), rms.astype(np.float32)


@dataclass(frozen=True)
class TrackTags:
    title: str
    album: str | None
    comment: str
    artist: str = ARTIST


@dataclass(frozen=True)
class PreparedTrack:
    """An MP3 ready to upload, and the pictures that go with it (all inside ``workdir``)."""

    path: Path
    bitrate: int | None  # kbps; for a kept MP3, its own (average) bitrate
    duration: float  # seconds of audio in ``path``
    full_duration: float  # seconds of the source; > duration when this is a preview
    size: int  # bytes of ``path``, tags included; always ≤ the limit asked for
    is_preview: bool  # True: only the first ``duration`` seconds, title ends " (preview)"
    transcoded: bool  # False: the source MP3's audio frames, untouched, re-tagged
    cover_png: Path  # 500×500 radial waveform, also embedded as the ID3 front cover
    waveform_png: Path  # 640×160 waveform (Discord embed image)
    thumbnail_jpg: Path  # ≤ 320×320 JPEG ≤ 200 kB (Telegram sendAudio thumbnail)


# ---------------------------------------------------------------- probing headers


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


# ---------------------------------------------------------------- decoding


def analyse(path: Path) -> tuple[AudioInfo, Envelope]:
    """Decode ``path`` fully: its real format and length, and its loudness envelope.

    Raises :class:`AudioError` for a missing, empty, non-audio, corrupt or truncated file.
    A full decode is the only way to find damage in the middle of a file; it costs about
    0.1 s for a minute of MP3.
    """
    import av

    # Damage the headers show first, with probe's words; other formats FFmpeg alone judges.
    # (FFmpeg silently plays a WAV cut short, so for that one the header is the only witness.)
    _from_headers(path)
    size = _size_of(path)
    try:
        container = av.open(str(path))
    except av.error.FFmpegError as exc:
        raise AudioError(f"{path.name}: not an audio file ({exc.strerror})") from exc
    with container:
        if not container.streams.audio:
            kind = container.format.name
            raise AudioError(f"{path.name}: not audio (FFmpeg reads it as {kind!r})")
        stream = container.streams.audio[0]
        fmt = container.format.name
        declared = _declared_duration(path, fmt, stream)
        builder = _EnvelopeBuilder()
        try:
            for frame in container.decode(stream):
                builder.add(frame)
        except av.error.FFmpegError as exc:
            at = builder.samples / (builder.sample_rate or 1)
            raise AudioError(
                f"{path.name}: corrupt or truncated: decoding fails at {at:.2f} s ({exc.strerror})"
            ) from exc
        codec = stream.codec_context.codec.canonical_name
        bit_rate = stream.codec_context.bit_rate or container.bit_rate or None
    if builder.samples == 0:
        raise AudioError(f"{path.name}: contains no audio samples")
    duration = builder.samples / builder.sample_rate
    if declared is not None and duration < declared - _TRUNCATION_TOLERANCE - declared / 1000:
        raise AudioError(
            f"{path.name}: corrupt or truncated: its header says {declared:.2f} s "
            f"but only {duration:.2f} s decodes"
        )
    info = AudioInfo(
        format=fmt,
        codec=codec,
        duration=duration,
        sample_rate=builder.sample_rate,
        channels=builder.channels,
        bit_rate=bit_rate,
        size=size,
    )
    return info, builder.finish(duration)


def _declared_duration(path: Path, fmt: str, stream: av.audio.stream.AudioStream) -> float | None:
    """The length the file's own header promises, if it promises one (else None)."""
    if fmt == "mp3":
        # FFmpeg guesses an MP3's length from its size unless a Xing/VBRI header states it;
        # mutagen tells us whether such a header exists.
        try:
            info = MP3(path).info
        except Exception:  # mutagen raises a zoo of types on junk; FFmpeg will judge
            return None
        if info is None or info.bitrate_mode is BitrateMode.UNKNOWN:
            return None
        return float(info.length)
    if fmt == "wav":
        return None  # checked against the RIFF header instead
    if stream.duration and stream.time_base:
        return float(stream.duration * stream.time_base)
    return None


def _as_float(array: npt.NDArray[np.generic]) -> Floats:
    """Samples as floats in [-1, 1], whatever their sample format."""
    import numpy as np

    if array.dtype == np.uint8:
        return (array.astype(np.float32) - 128.0) / np.float32(128.0)
    if array.dtype.kind == "i":
        full_scale = np.float32(2.0 ** (8 * array.dtype.itemsize - 1))  # 32768 for s16
        return array.astype(np.float32) / full_scale
    return array.astype(np.float32, copy=False)


class _EnvelopeBuilder:
    """Per-block peak and power of a decoded stream, a few floats per 10 ms.

    Frames queue in an ``AudioFifo`` and NumPy sees a second of audio at a time, in the layout
    the decoder made: NumPy calls per decoded frame (~2,500 a minute of MP3) cost four times
    the decoding itself, and a transposing copy per second more than the sums.
    """

    def __init__(self) -> None:
        self.samples = 0
        self.sample_rate = 0
        self.channels = 0
        self._block = 0
        self._planar = False
        self._shape: tuple[int, int, str] = (0, 0, "")  # sample rate, channels, sample format
        self._fifo: av.AudioFifo | None = None
        self._peaks: list[Floats] = []
        self._powers: list[Floats] = []

    def add(self, frame: av.AudioFrame) -> None:
        shape = (frame.sample_rate, frame.layout.nb_channels, frame.format.name)
        if self._fifo is None:
            import av

            self._fifo = av.AudioFifo()
            self._shape = shape
            self.sample_rate, self.channels, _ = shape
            self._block = max(1, frame.sample_rate // _BLOCKS_PER_SECOND)
            self._planar = frame.format.is_planar
        elif shape != self._shape:
            # The FIFO (like the MP3 encoder's resampler) takes one layout per stream.
            raise AudioError(
                "the sample rate, channels or format change mid-stream "
                f"({'/'.join(map(str, self._shape))} → {'/'.join(map(str, shape))})"
            )
        self.samples += frame.samples
        frame.pts = None  # the FIFO checks timestamps are contiguous; gaps are no concern here
        self._fifo.write(frame)
        chunk = self._block * _BLOCKS_PER_SECOND  # whole blocks: none straddles two chunks
        while self._fifo.samples >= chunk:
            self._reduce(self._fifo.read(chunk))

    def _reduce(self, frame: av.AudioFrame | None) -> None:
        """Blocks of the samples in ``frame``; a short last one only at the end of the stream."""
        import numpy as np

        if frame is None:  # nothing left in the FIFO
            return
        samples = _as_float(frame.to_ndarray())
        whole = frame.samples // self._block * self._block
        blocks: Floats
        axes: tuple[int, ...]
        if self._planar:  # (channels, samples): a block spans all channels
            blocks = samples[:, :whole].reshape(self.channels, -1, self._block)
            rest, axes = samples[:, whole:], (0, 2)
        else:  # (1, samples × channels), interleaved: a block is one flat run
            flat = samples.reshape(-1)
            blocks = flat[: whole * self.channels].reshape(-1, self._block * self.channels)
            rest, axes = flat[whole * self.channels :], (1,)
        if whole:
            self._peaks.append(np.abs(blocks).max(axis=axes))
            self._powers.append(np.square(blocks).mean(axis=axes))
        if rest.size:
            self._peaks.append(np.abs(rest).max(keepdims=True).reshape(1))
            self._powers.append(np.square(rest).mean(keepdims=True).reshape(1))

    def finish(self, duration: float) -> Envelope:
        import numpy as np

        if self._fifo is not None:
            self._reduce(self._fifo.read())  # what is left: less than a second
        peak = np.concatenate(self._peaks) if self._peaks else np.zeros(0, dtype=np.float32)
        power = np.concatenate(self._powers) if self._powers else np.zeros(0, dtype=np.float32)
        return Envelope(
            peak=np.clip(peak, 0.0, 1.0).astype(np.float32),
            rms=np.sqrt(np.clip(power, 0.0, 1.0)).astype(np.float32),
            duration=duration,
        )


# ---------------------------------------------------------------- fitting to the limit


def prepare_for_upload(
    source: Path,
    *,
    limit_bytes: int,
    tags: TrackTags,
    workdir: Path,
    floor_kbps: int = 96,
) -> PreparedTrack:
    """Make an MP3 of ``source`` no bigger than ``limit_bytes``, tagged, plus its pictures.

    * An MP3 that fits once tagged is kept: its audio frames are copied, never re-encoded.
    * Otherwise it is encoded as CBR MP3 (stereo, 44.1 or 48 kHz) at the highest of
      ``STANDARD_KBPS`` ≥ ``floor_kbps`` whose size fits; the size is checked afterwards and
      the next bitrate down tried if needed.
    * If even ``floor_kbps`` cannot hold the whole track, the result is a preview: the first
      seconds that fit at ``floor_kbps``, faded out, titled "… (preview)". ``source`` is left
      untouched so the full file stays available.

    Outputs are named after ``source`` inside ``workdir``: ``<stem>.upload.mp3`` (or
    ``<stem>.preview.mp3``), ``<stem>.cover.png``, ``<stem>.waveform.png``, ``<stem>.thumb.jpg``.
    Raises :class:`AudioError` if ``source`` is not usable audio (code ``bad_audio``), or if
    the limit cannot hold even a ``MIN_PREVIEW_SECONDS`` preview (code ``audio_too_large``).
    """
    if floor_kbps not in STANDARD_KBPS:
        raise ValueError(f"floor_kbps must be one of {STANDARD_KBPS}, not {floor_kbps}")
    info, envelope = analyse(source)
    workdir.mkdir(parents=True, exist_ok=True)
    base = workdir / source.stem
    cover = render_cover(envelope, base.with_name(f"{source.stem}.cover.png"))
    waveform = render_waveform(envelope, base.with_name(f"{source.stem}.waveform.png"))
    thumbnail = render_thumbnail(envelope, base.with_name(f"{source.stem}.thumb.jpg"))
    pictures = {"cover_png": cover, "waveform_png": waveform, "thumbnail_jpg": thumbnail}
    out = base.with_name(f"{source.stem}.upload.mp3")

    if info.format == "mp3" and info.codec == "mp3":
        shutil.copyfile(source, out)
        write_tags(out, tags, cover)
        size = out.stat().st_size
        if size <= limit_bytes:
            kbps = round(info.bit_rate / 1000) if info.bit_rate else None
            return PreparedTrack(
                path=out,
                bitrate=kbps,
                duration=info.duration,
                full_duration=info.duration,
                size=size,
                is_preview=False,
                transcoded=False,
                **pictures,
            )
        out.unlink()

    rate = _output_rate(info.sample_rate)
    overhead = len(_id3_bytes(tags, cover))
    for kbps in (kbps for kbps in STANDARD_KBPS if kbps >= floor_kbps):
        if _expected_size(info.duration, kbps, rate) + overhead > limit_bytes:
            continue
        _encode_mp3(source, out, kbps=kbps, rate=rate)
        write_tags(out, tags, cover)
        size = out.stat().st_size
        if size <= limit_bytes:
            return PreparedTrack(
                path=out,
                bitrate=kbps,
                duration=info.duration,
                full_duration=info.duration,
                size=size,
                is_preview=False,
                transcoded=True,
                **pictures,
            )
        logger.warning("%s at %d kbps came out %d bytes > %d", source.name, kbps, size, limit_bytes)

    return _prepare_preview(source, info, out, limit_bytes, tags, floor_kbps, rate, pictures)


def _prepare_preview(
    source: Path,
    info: AudioInfo,
    out: Path,
    limit_bytes: int,
    tags: TrackTags,
    kbps: int,
    rate: int,
    pictures: dict[str, Path],
) -> PreparedTrack:
    out = out.with_name(out.name.replace(".upload.mp3", ".preview.mp3"))
    cover = pictures["cover_png"]
    # Budget with the longest comment the preview can get; the real one is no longer.
    draft = _preview_tags(tags, info.duration, info.duration)
    budget = limit_bytes - len(_id3_bytes(draft, cover))
    seconds = min(_seconds_that_fit(budget, kbps, rate), info.duration)
    for _ in range(3):  # the estimate is conservative; shrink if it ever is not
        if seconds < MIN_PREVIEW_SECONDS:
            raise AudioError(
                f"{source.name}: {limit_bytes} bytes cannot hold even a "
                f"{MIN_PREVIEW_SECONDS:.0f} s preview at {kbps} kbps",
                code="audio_too_large",
            )
        written = _encode_mp3(source, out, kbps=kbps, rate=rate, max_seconds=seconds)
        write_tags(out, _preview_tags(tags, written, info.duration), cover)
        size = out.stat().st_size
        if size <= limit_bytes:
            return PreparedTrack(
                path=out,
                bitrate=kbps,
                duration=written,
                full_duration=info.duration,
                size=size,
                is_preview=True,
                transcoded=True,
                **pictures,
            )
        seconds *= 0.9
    raise AudioError(f"{source.name}: could not fit a preview into {limit_bytes} bytes")


def _preview_tags(tags: TrackTags, seconds: float, full: float) -> TrackTags:
    note = f"Preview: first {_clock(seconds)} of {_clock(full)}"
    return dataclasses.replace(
        tags, title=f"{tags.title} (preview)", comment=f"{tags.comment} | {note}"
    )


def _output_rate(source_rate: int) -> int:
    """Keep 44.1/48 kHz; otherwise the one of the two in the source's family."""
    if source_rate in (44100, 48000):
        return source_rate
    return 44100 if source_rate % 11025 == 0 else 48000


def _frame_bytes(kbps: int, rate: int) -> float:
    return 144 * kbps * 1000 / rate  # MPEG-1 layer III, averaged over padding slots


def _expected_size(seconds: float, kbps: int, rate: int) -> int:
    """Bytes of a CBR MP3 of that length, with headroom (tags not included)."""
    frames = math.ceil(seconds * rate / _MP3_FRAME) + _MP3_EXTRA_FRAMES
    return math.ceil(frames * _frame_bytes(kbps, rate) * _SIZE_MARGIN) + _SIZE_SLACK


def _seconds_that_fit(budget: int, kbps: int, rate: int) -> float:
    """Inverse of :func:`_expected_size`: the longest clip whose MP3 fits in ``budget``."""
    frames = math.floor((budget - _SIZE_SLACK) / _SIZE_MARGIN / _frame_bytes(kbps, rate))
    return max(0, frames - _MP3_EXTRA_FRAMES - 1) * _MP3_FRAME / rate


def _encode_mp3(
    source: Path, dest: Path, *, kbps: int, rate: int, max_seconds: float | None = None
) -> float:
    """Stream ``source`` into a CBR stereo MP3 at ``dest``; returns the seconds written.

    With ``max_seconds`` only the start is encoded, and its last seconds fade out so the cut
    does not click.
    """
    import av

    limit = round(max_seconds * rate) if max_seconds is not None else None
    fade = round(_PREVIEW_FADE_SECONDS * rate)
    time_base = Fraction(1, rate)
    written = 0
    try:
        with (
            av.open(str(source)) as src,
            # No ID3 from FFmpeg: mutagen writes ours; keep the Xing/LAME header (exact length).
            av.open(str(dest), "w", format="mp3", options={"id3v2_version": "0"}) as out,
        ):
            stream = out.add_stream("libmp3lame", rate=rate)
            stream.layout = "stereo"
            stream.format = "fltp"
            stream.bit_rate = kbps * 1000  # with no quality flag, libmp3lame encodes CBR
            resampler = av.AudioResampler(format="fltp", layout="stereo", rate=rate)
            for frame in _resampled(src, resampler):
                if limit is not None:
                    if written >= limit:
                        break
                    frame = _trim_and_fade(frame, written, limit, fade)
                frame.pts = written
                frame.time_base = time_base
                written += frame.samples
                for packet in stream.encode(frame):
                    out.mux(packet)
            for packet in stream.encode(None):
                out.mux(packet)
    except (av.error.FFmpegError, ValueError) as exc:
        dest.unlink(missing_ok=True)
        raise AudioError(f"{source.name}: could not encode to MP3 ({exc})") from exc
    return written / rate


def _resampled(
    src: av.container.InputContainer, resampler: av.AudioResampler
) -> Iterator[av.AudioFrame]:
    stream = src.streams.audio[0]
    for decoded in src.decode(stream):
        yield from resampler.resample(decoded)
    yield from resampler.resample(None)


def _trim_and_fade(frame: av.AudioFrame, start: int, limit: int, fade: int) -> av.AudioFrame:
    end = start + frame.samples
    if end <= limit - fade:
        return frame  # before the fade: untouched, no copy
    import av
    import numpy as np

    data = frame.to_ndarray()[:, : min(frame.samples, limit - start)]
    positions = np.arange(start, start + data.shape[1])
    gain = np.clip((limit - positions) / fade, 0.0, 1.0).astype(np.float32)
    faded = av.AudioFrame.from_ndarray(
        np.ascontiguousarray(data * gain), format="fltp", layout="stereo"
    )
    faded.sample_rate = frame.sample_rate
    return faded


# ---------------------------------------------------------------- tags


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


# ---------------------------------------------------------------- pictures


def render_waveform(
    source: Path | Envelope, dest: Path, *, width: int = 640, height: int = 160
) -> Path:
    """A mirrored bar waveform (peak in a soft, RMS in the full accent colour) on a dark PNG."""
    import numpy as np
    from PIL import Image

    envelope = analyse(source)[1] if isinstance(source, Path) else source
    scale = 2  # draw at double size, then downsample: anti-aliased edges for free
    w, h = width * scale, height * scale
    pitch = 4 * scale  # a 3 px bar and a 1 px gap
    bars = max(1, w // pitch)
    peak, rms = _normalised(envelope, bars)
    background = np.asarray(_BACKGROUND, np.float32)
    colours = _gradient(np.linspace(0.0, 1.0, bars))
    full = np.round(colours).astype(np.uint8)
    soft = np.round(colours * 0.5 + background * 0.5).astype(np.uint8)
    # Each bar's colour in each pixel row, all at once: the full colour within the RMS, the
    # soft one within the peak (never thinner than a line), the background beyond.
    distance = np.abs(np.arange(h, dtype=np.float32) + 0.5 - h / 2)[:, None]  # from the centre
    half = h / 2 * 0.9
    in_rms = (distance <= rms * half)[..., None]
    in_peak = (distance <= np.maximum(peak * half, scale))[..., None]
    dark = np.asarray(_BACKGROUND, np.uint8)
    rows = np.where(in_rms, full, np.where(in_peak, soft, dark))  # (h, bars, 3)
    # Which bar each pixel column shows (a bar, then a gap; centred); `bars` is "none".
    x = np.arange(w) - (w - bars * pitch) // 2
    in_bar = (x >= 0) & (x < bars * pitch) & (x % pitch < pitch - scale)
    shown = np.where(in_bar, x // pitch, bars)
    columns = np.concatenate([rows, np.broadcast_to(dark, (h, 1, 3))], axis=1)
    canvas = np.take(columns, shown, axis=1)  # uint8, contiguous: floats would be 5 MB
    image = Image.fromarray(canvas).resize((width, height), Image.Resampling.LANCZOS)
    _save_png(image, dest)
    return dest


def render_cover(source: Path | Envelope, dest: Path, *, size: int = 500) -> Path:
    """A square radial waveform (time runs clockwise from the top) on a dark PNG: the ID3
    front cover. Palette-quantised, so it adds only some tens of kB to every upload."""
    _save_png(_draw_cover(source, size), dest)
    return dest


def render_thumbnail(source: Path | Envelope, dest: Path, *, size: int = 320) -> Path:
    """The cover as a JPEG of at most 320×320 and 200 kB: what Telegram accepts as an audio
    thumbnail (its Bot API asks for JPEG)."""
    image = _draw_cover(source, min(size, TELEGRAM_THUMB_SIDE))
    for quality in (90, 75, 60, 40):
        buffer = io.BytesIO()
        image.save(buffer, format="JPEG", quality=quality, optimize=True)
        if buffer.tell() <= TELEGRAM_THUMB_BYTES:
            break
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_bytes(buffer.getvalue())
    return dest


def _save_png(image: Image.Image, dest: Path) -> None:
    from PIL import Image

    # 64 colours are plenty for flat art on a flat background, and cut the file ~5x.
    paletted = image.quantize(colors=64, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
    dest.parent.mkdir(parents=True, exist_ok=True)
    # zlib's default level: optimize=True (level 9) took 3x as long for files ~3 % smaller.
    paletted.save(dest, format="PNG")


def _draw_cover(source: Path | Envelope, size: int) -> Image.Image:
    import numpy as np
    from PIL import Image, ImageDraw

    envelope = analyse(source)[1] if isinstance(source, Path) else source
    scale = 2
    side = size * scale
    centre = side / 2
    image = Image.new("RGB", (side, side), _BACKGROUND)
    draw = ImageDraw.Draw(image)
    bars = 96
    peak, rms = _normalised(envelope, bars)
    angles = 2 * np.pi * np.arange(bars) / bars - np.pi / 2
    # Violet at the top, cyan at the bottom, symmetric: no seam where the end meets the start.
    colours = _gradient((1 + np.sin(angles)) / 2)
    background = np.asarray(_BACKGROUND, np.float32)
    inner, reach = side * 0.2, side * 0.26
    stroke = max(2, round(side * 0.014))
    for i, angle in enumerate(angles):
        cos, sin = math.cos(angle), math.sin(angle)
        for length, mix in ((peak[i], 0.5), (rms[i], 1.0)):
            end = inner + max(float(length) * reach, stroke)
            draw.line(
                [
                    (centre + cos * inner, centre + sin * inner),
                    (centre + cos * end, centre + sin * end),
                ],
                fill=_rgb(colours[i] * mix + background * (1 - mix)),
                width=stroke,
            )
    dot = inner * 0.35
    draw.ellipse([centre - dot, centre - dot, centre + dot, centre + dot], fill=_rgb(colours[0]))
    return image.resize((size, size), Image.Resampling.LANCZOS)


def _rgb(colour: Floats) -> tuple[int, int, int]:
    red, green, blue = (round(float(c)) for c in colour)
    return red, green, blue


def _normalised(envelope: Envelope, count: int) -> tuple[Floats, Floats]:
    """Column values scaled so the loudest reaches the edge, without blowing up near-silence."""
    import numpy as np

    peak, rms = envelope.columns(count)
    loudest = float(peak.max()) if len(peak) else 0.0
    gain = min(1.0 / loudest, 8.0) if loudest > 0 else 1.0
    return np.clip(peak * gain, 0, 1), np.clip(rms * gain, 0, 1)


def _gradient(positions: npt.ArrayLike) -> Floats:
    """Accent colours for positions 0..1 (violet → cyan)."""
    import numpy as np

    t = np.asarray(positions, dtype=np.float32)[:, None]
    start, end = np.asarray(_ACCENT_FROM, np.float32), np.asarray(_ACCENT_TO, np.float32)
    return (start * (1 - t) + end * t).astype(np.float32)


# ---------------------------------------------------------------- retention


def remove_expired_audio(
    audio_dir: Path,
    *,
    older_than: timedelta,
    keep: Collection[Path],
    now: datetime | None = None,
) -> list[Path]:
    """Delete files under ``audio_dir`` last modified before ``now - older_than``.

    Anything in ``keep`` (files, or directories whose whole content is kept: the caller passes
    undelivered jobs' audio) is never touched, however old. Directories emptied by the sweep
    are removed too. Returns the files removed.
    """
    cutoff = ((now or datetime.now(UTC)) - older_than).timestamp()
    kept = {path.resolve() for path in keep}
    removed: list[Path] = []
    emptied: set[Path] = set()
    if not audio_dir.is_dir():
        return removed
    for path in sorted(audio_dir.rglob("*")):
        if path.is_symlink() or not path.is_file():
            continue
        resolved = path.resolve()
        if resolved in kept or not kept.isdisjoint(resolved.parents):
            continue
        try:
            if path.stat().st_mtime >= cutoff:
                continue
            path.unlink()
        except FileNotFoundError:
            continue  # removed by someone else meanwhile: fine
        removed.append(path)
        emptied.add(path.parent)
    root = audio_dir.resolve()
    for directory in sorted(emptied, key=lambda p: len(p.parts), reverse=True):
        while directory.resolve() != root and directory.is_dir() and not any(directory.iterdir()):
            directory.rmdir()
            directory = directory.parent
    return removed
