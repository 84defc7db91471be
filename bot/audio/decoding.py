"""One full decode of a file: its real format and length, and its loudness envelope."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from mutagen.mp3 import MP3, BitrateMode

from bot.audio.model import _TRUNCATION_TOLERANCE, AudioInfo, Envelope
from bot.audio.probing import _from_headers, _size_of
from bot.errors import AudioError

if TYPE_CHECKING:
    import av
    import numpy as np
    import numpy.typing as npt

    from bot.audio.model import Floats

_BLOCKS_PER_SECOND = 100  # envelope resolution: 10 ms


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
