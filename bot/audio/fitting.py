"""An MP3 of a song no bigger than an upload limit: kept, re-encoded or cut to a preview."""

from __future__ import annotations

import dataclasses
import logging
import math
import shutil
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING

from bot.audio.decoding import analyse
from bot.audio.model import (
    MIN_PREVIEW_SECONDS,
    STANDARD_KBPS,
    AudioInfo,
    PreparedTrack,
    Thumbnail,
    TrackTags,
)
from bot.audio.pictures import render_cover, render_thumbnail, render_waveform
from bot.audio.tags import _clock, _id3_bytes, write_tags
from bot.errors import AudioError

if TYPE_CHECKING:
    import av

logger = logging.getLogger(__name__)

_MP3_FRAME = 1152  # samples per MPEG-1 layer III frame
_MP3_EXTRA_FRAMES = 4  # Xing/LAME header frame + encoder delay and padding, rounded up
_SIZE_MARGIN = 1.005  # headroom over the computed CBR size; the result is verified anyway
_SIZE_SLACK = 4096
_PREVIEW_FADE_SECONDS = 2.0


@dataclasses.dataclass(frozen=True)
class _Pictures:
    cover_png: Path
    waveform_png: Path
    thumbnail_jpg: Path | None


def prepare_for_upload(
    source: Path,
    *,
    limit_bytes: int,
    tags: TrackTags,
    workdir: Path,
    floor_kbps: int = 96,
    thumbnail: Thumbnail | None = None,
) -> PreparedTrack:
    """Make an MP3 of ``source`` no bigger than ``limit_bytes``, tagged, plus its pictures
    (a JPEG ``thumbnail`` only when the platform asks for one).

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
    thumb = (
        render_thumbnail(envelope, base.with_name(f"{source.stem}.thumb.jpg"), thumbnail)
        if thumbnail is not None
        else None
    )
    pictures = _Pictures(cover, waveform, thumb)
    out = base.with_name(f"{source.stem}.upload.mp3")

    if info.format == "mp3" and info.codec == "mp3":
        shutil.copyfile(source, out)
        write_tags(out, tags, cover)
        size = out.stat().st_size
        if size <= limit_bytes:
            kbps = round(info.bit_rate / 1000) if info.bit_rate else None
            return _prepared(out, size, kbps, info, pictures, transcoded=False)
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
            return _prepared(out, size, kbps, info, pictures)
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
    pictures: _Pictures,
) -> PreparedTrack:
    out = out.with_name(out.name.replace(".upload.mp3", ".preview.mp3"))
    cover = pictures.cover_png
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
            return _prepared(out, size, kbps, info, pictures, preview_seconds=written)
        seconds *= 0.9
    raise AudioError(f"{source.name}: could not fit a preview into {limit_bytes} bytes")


def _prepared(
    out: Path,
    size: int,
    kbps: int | None,
    info: AudioInfo,
    pictures: _Pictures,
    *,
    transcoded: bool = True,
    preview_seconds: float | None = None,
) -> PreparedTrack:
    """The result: ``out`` holds the whole of ``info``'s track, or its first ``preview_seconds``."""
    return PreparedTrack(
        path=out,
        bitrate=kbps,
        duration=info.duration if preview_seconds is None else preview_seconds,
        full_duration=info.duration,
        size=size,
        is_preview=preview_seconds is not None,
        transcoded=transcoded,
        cover_png=pictures.cover_png,
        waveform_png=pictures.waveform_png,
        thumbnail_jpg=pictures.thumbnail_jpg,
    )


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
