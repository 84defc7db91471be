"""The finished song, made fit for a chat: probed, sized to the upload limit, tagged, pictured.

Everything here is synchronous CPU and file work; callers run it in ``asyncio.to_thread``.
Audio is streamed frame by frame from disk (decode → resample → encode), so a 4-minute 48 kHz
WAV (~46 MB) is never held in memory: preparing one peaks ~13 MB above the interpreter's
resident size, and Python-level allocations stay under 3 MB, whatever the length.

    analyse(path)            one full decode: AudioInfo (validated) + Envelope (for pictures)
    probe(path)              the AudioInfo alone
    prepare_for_upload(...)  an MP3 ≤ limit_bytes, tagged, with its pictures (PreparedTrack)
    render_waveform / render_cover / render_thumbnail      PNG/JPEG pictures of a track
    write_tags(...)          ID3v2.3 title, artist, album, comment, front cover
    tags_for(...)            the TrackTags for a generated song
    remove_expired_audio(...) retention sweep over the audio directory
"""

from __future__ import annotations

import dataclasses
import io
import logging
import math
import re
import shutil
import struct
from collections.abc import Collection, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import numpy.typing as npt
from mutagen.id3 import APIC, COMM, ID3, TALB, TIT2, TPE1, PictureType
from mutagen.mp3 import MP3, BitrateMode
from PIL import Image, ImageDraw

from bot.errors import AudioError

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

Floats = npt.NDArray[np.float32]


@dataclass(frozen=True)
class AudioInfo:
    """What a file really is, found by decoding it (never by its name)."""

    format: str  # container, as FFmpeg names it: "mp3", "wav", "flac", ...
    codec: str  # "mp3", "pcm_s16le", "flac", ...
    duration: float  # seconds, counted from decoded samples
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


# ---------------------------------------------------------------- probing


def analyse(path: Path) -> tuple[AudioInfo, Envelope]:
    """Decode ``path`` fully: its real format and length, and its loudness envelope.

    Raises :class:`AudioError` for a missing, empty, non-audio, corrupt or truncated file.
    A full decode is the only way to find damage in the middle of a file; it costs about
    0.3 s for four minutes of WAV or FLAC.
    """
    try:
        size = path.stat().st_size
        wav_problem = _wav_truncation(path, size)
    except OSError as exc:
        raise AudioError(f"{path.name}: cannot read the file ({exc.strerror})") from exc
    if size == 0:
        raise AudioError(f"{path.name}: the file is empty (0 bytes)")
    if wav_problem:
        raise AudioError(f"{path.name}: truncated WAV: {wav_problem}")
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


def probe(path: Path) -> AudioInfo:
    """:func:`analyse` without the envelope (same cost, same errors)."""
    return analyse(path)[0]


def _wav_truncation(path: Path, size: int) -> str | None:
    """FFmpeg silently shortens a WAV whose data chunk is cut off; its RIFF header tells."""
    with path.open("rb") as fh:
        head = fh.read(12)
        if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
            return None
        offset = 12
        for _ in range(64):  # a WAV has a handful of chunks; stop on nonsense
            chunk = fh.read(8)
            if len(chunk) < 8:
                return "the header ends before the audio data starts"
            chunk_id, chunk_size = struct.unpack("<4sI", chunk)
            offset += 8
            if chunk_id == b"data":
                # 0 and 0xFFFFFFFF mean "length unknown" (written by a streaming encoder).
                if chunk_size in (0, 0xFFFFFFFF) or offset + chunk_size <= size:
                    return None
                return f"it declares {chunk_size} bytes of audio but holds {size - offset}"
            offset += chunk_size + (chunk_size & 1)
            fh.seek(offset)
    return None


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


def _as_float(frame: av.AudioFrame) -> Floats:
    """A decoded frame as (samples, channels) floats in [-1, 1], whatever its sample format."""
    array = frame.to_ndarray()
    channels = frame.layout.nb_channels
    if frame.format.is_planar:
        array = array[:, : frame.samples].T
    else:
        array = array.reshape(-1, channels)[: frame.samples]
    if array.dtype == np.uint8:
        return (array.astype(np.float32) - 128.0) / np.float32(128.0)
    if array.dtype.kind == "i":
        full_scale = 2.0 ** (8 * array.dtype.itemsize - 1)  # 32768 for s16
        return (array.astype(np.float32) / full_scale).astype(np.float32)
    return array.astype(np.float32, copy=False)


class _EnvelopeBuilder:
    """Accumulates per-block peak and power while frames stream past (a few floats per 10 ms)."""

    def __init__(self) -> None:
        self.samples = 0
        self.sample_rate = 0
        self.channels = 0
        self._block = 0
        self._pending: Floats = np.zeros((0, 0), dtype=np.float32)  # < one block, (n, channels)
        self._peaks: list[Floats] = []
        self._powers: list[Floats] = []

    def add(self, frame: av.AudioFrame) -> None:
        data = _as_float(frame)
        if not self.sample_rate:
            self.sample_rate = frame.sample_rate
            self.channels = data.shape[1]
            self._block = max(1, frame.sample_rate // _BLOCKS_PER_SECOND)
            self._pending = np.zeros((0, self.channels), dtype=np.float32)
        if data.shape[1] != self.channels:
            raise AudioError(
                f"the channel count changes mid-stream ({self.channels} → {data.shape[1]})"
            )
        self.samples += len(data)
        # Sample-major and contiguous, so a block is one flat run of block × channels values.
        samples = np.concatenate([self._pending, data])
        whole = len(samples) // self._block * self._block
        if whole:
            blocks = samples[:whole].reshape(whole // self._block, -1)
            self._peaks.append(np.abs(blocks).max(axis=1))
            self._powers.append(np.square(blocks).mean(axis=1))
        self._pending = samples[whole:]

    def finish(self, duration: float) -> Envelope:
        peaks, powers = list(self._peaks), list(self._powers)
        if self._pending.size:
            peaks.append(np.abs(self._pending).max(keepdims=True).reshape(1))
            powers.append(np.square(self._pending).mean(keepdims=True).reshape(1))
        peak = np.concatenate(peaks) if peaks else np.zeros(0, dtype=np.float32)
        power = np.concatenate(powers) if powers else np.zeros(0, dtype=np.float32)
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
    envelope = analyse(source)[1] if isinstance(source, Path) else source
    scale = 2  # draw at double size, then downsample: anti-aliased edges for free
    w, h = width * scale, height * scale
    pitch = 4 * scale  # a 3 px bar and a 1 px gap
    bars = max(1, w // pitch)
    peak, rms = _normalised(envelope, bars)
    background = np.asarray(_BACKGROUND, np.float32)
    canvas = np.empty((h, w, 3), dtype=np.uint8)  # uint8: a float canvas would be 5 MB
    canvas[:] = _BACKGROUND
    distance = np.abs(np.arange(h, dtype=np.float32) + 0.5 - h / 2)  # from the centre line
    half = h / 2 * 0.9
    colours = _gradient(np.linspace(0.0, 1.0, bars))
    for i in range(bars):
        x = i * pitch + (w - bars * pitch) // 2
        column = canvas[:, x : x + pitch - scale]
        column[distance <= max(peak[i] * half, scale)] = _rgb(colours[i] * 0.5 + background * 0.5)
        column[distance <= rms[i] * half] = _rgb(colours[i])
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
    # 64 colours are plenty for flat art on a flat background, and cut the file ~5x.
    paletted = image.quantize(colors=64, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
    dest.parent.mkdir(parents=True, exist_ok=True)
    paletted.save(dest, format="PNG", optimize=True)


def _draw_cover(source: Path | Envelope, size: int) -> Image.Image:
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
    peak, rms = envelope.columns(count)
    loudest = float(peak.max()) if len(peak) else 0.0
    gain = min(1.0 / loudest, 8.0) if loudest > 0 else 1.0
    return np.clip(peak * gain, 0, 1), np.clip(rms * gain, 0, 1)


def _gradient(positions: npt.ArrayLike) -> Floats:
    """Accent colours for positions 0..1 (violet → cyan)."""
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
