"""The facts bot/audio passes around: what a file is (AudioInfo), how loud it is over time
(Envelope), the ID3 text of a song (TrackTags), the thumbnail a platform takes (Thumbnail), a
finished upload (PreparedTrack), and the public constants."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    Floats = npt.NDArray[np.float32]

ARTIST = "AceJam"
STANDARD_KBPS = (320, 256, 224, 192, 160, 128, 112, 96, 80, 64, 56, 48, 40, 32)
TITLE_MAX = 60
MIN_PREVIEW_SECONDS = 10.0

_TRUNCATION_TOLERANCE = 0.1  # seconds a declared length may exceed what decodes


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
class Thumbnail:
    """The JPEG thumbnail a platform shows with a track: its adapter says how big it may be
    (the core knows no platform's numbers)."""

    side: int  # pixels, the longest side at most
    max_bytes: int


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
    thumbnail_jpg: Path | None  # the JPEG Thumbnail asked for; None when none was
