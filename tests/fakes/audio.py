"""Real, decodable test audio made with PyAV, and a probe to check what came back.

``make_audio(12.0, "mp3")`` returns the bytes of a 12-second stereo clip (a few tones, so it is
not silence and survives any "is this just noise/silence?" check), ``probe_audio`` reads duration,
sample rate and codec back from a path or from bytes. Encoding is cached because fakes serve the
same clip many times per test run.
"""

from __future__ import annotations

import functools
import io
import math
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

# container format, codec, sample format the encoder wants
_FORMATS: dict[str, tuple[str, str, str]] = {
    "mp3": ("mp3", "libmp3lame", "s16p"),
    "wav": ("wav", "pcm_s16le", "s16"),
    "flac": ("flac", "flac", "s16"),
}
_TONES_HZ = (220.0, 277.18, 329.63, 440.0)  # an A major arpeggio, one note per quarter
_FRAME = 1152  # samples per encoder frame (mp3's size; fine for the others too)


def _tone_samples(duration: float, sample_rate: int, channels: int) -> np.ndarray:
    total = round(duration * sample_rate)
    t = np.arange(total, dtype=np.float64) / sample_rate
    # Switch note every 0.25 s so the signal changes over time.
    note = (t // 0.25).astype(np.int64) % len(_TONES_HZ)
    freqs = np.asarray(_TONES_HZ)[note]
    mono = 0.3 * np.sin(2 * math.pi * freqs * t)
    pcm = (mono * 32767).astype(np.int16)
    return np.tile(pcm, (channels, 1))  # (channels, samples)


@functools.lru_cache(maxsize=64)
def make_audio(
    duration: float, fmt: str = "mp3", sample_rate: int = 48000, channels: int = 2
) -> bytes:
    """Encode ``duration`` seconds of tones as ``fmt`` ("mp3", "wav" or "flac")."""
    if fmt not in _FORMATS:
        raise ValueError(f"unsupported format {fmt!r}; pick one of {sorted(_FORMATS)}")
    container_fmt, codec, sample_fmt = _FORMATS[fmt]
    layout = "stereo" if channels == 2 else "mono"
    pcm = _tone_samples(duration, sample_rate, channels)

    buf = io.BytesIO()
    with av.open(buf, mode="w", format=container_fmt) as out:
        # compression_level 9 is LAME's fastest setting: quality is irrelevant here.
        options = {"compression_level": "9"} if fmt == "mp3" else {}
        stream = out.add_stream(codec, rate=sample_rate, options=options)
        assert isinstance(stream, av.AudioStream)
        stream.layout = layout
        if fmt == "mp3":
            stream.bit_rate = 64_000  # small files; quality is irrelevant here
        stream.time_base = Fraction(1, sample_rate)
        pts = 0
        for start in range(0, pcm.shape[1], _FRAME):
            chunk = pcm[:, start : start + _FRAME]
            data = chunk if sample_fmt.endswith("p") else chunk.T.reshape(1, -1)
            frame = av.AudioFrame.from_ndarray(
                np.ascontiguousarray(data), format=sample_fmt, layout=layout
            )
            frame.sample_rate = sample_rate
            frame.pts = pts
            frame.time_base = Fraction(1, sample_rate)
            pts += chunk.shape[1]
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return buf.getvalue()


def probe_audio(source: Path | str | bytes) -> tuple[float, int, str]:
    """``(duration_s, sample_rate, codec_name)`` of a file or of encoded bytes, e.g.
    ``(12.0, 48000, "mp3")``; codec names are "mp3", "pcm_s16le" (wav) and "flac".

    Duration is counted from the decoded samples, so it does not depend on container headers
    (an mp3 without a Xing header would otherwise be estimated from its bitrate).
    """
    opened = io.BytesIO(source) if isinstance(source, bytes) else str(source)
    with av.open(opened, mode="r") as container:
        stream = container.streams.audio[0]
        samples = 0
        rate = stream.codec_context.sample_rate
        for frame in container.decode(stream):
            samples += frame.samples
            rate = frame.sample_rate
        # canonical_name is the codec ("mp3"), not the decoder picked for it ("mp3float").
        return samples / rate, rate, stream.codec_context.codec.canonical_name
