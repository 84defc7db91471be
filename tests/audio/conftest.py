"""Real audio files for the audio tests, written to disk with PyAV a chunk at a time.

The signal sounds like a (very plain) song: a bass note pulsing twice a second, a steady
melody tone and a little noise, swelling in the middle, with a near-silent break. Deterministic,
so sizes and pictures are the same on every run.
"""

from __future__ import annotations

import math
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

# container format, encoder, sample format it takes
_ENCODERS = {
    "mp3": ("mp3", "libmp3lame", "fltp"),
    "wav": ("wav", "pcm_s16le", "s16"),
    "flac": ("flac", "flac", "s16"),
    "ogg": ("ogg", "libopus", "flt"),  # Opus: 48 kHz only
    "m4a": ("mp4", "aac", "fltp"),
}
_CHUNK = 4096


def _signal(start: int, count: int, rate: int, seconds: float) -> np.ndarray:
    t = (np.arange(start, start + count) / rate).astype(np.float64)
    swell = 0.3 + 0.7 * np.sin(math.pi * t / seconds) ** 2
    pulse = np.exp(-((t * 2) % 1) * 6)
    noise = np.random.default_rng(start).standard_normal(count) * 0.03
    wave = 0.5 * np.sin(2 * math.pi * 110 * t) * pulse + 0.2 * np.sin(2 * math.pi * 440 * t)
    wave = (wave + noise) * swell
    wave[(t % 20 >= 12) & (t % 20 < 13)] *= 0.05  # a break: the waveform should show it
    return np.clip(wave * 0.9, -1.0, 1.0)


def write_audio(
    path: Path,
    seconds: float,
    fmt: str,
    *,
    rate: int = 48000,
    channels: int = 2,
    kbps: int = 128,
) -> Path:
    """Write ``seconds`` of the test signal to ``path`` as ``fmt`` (a key of ``_ENCODERS``)."""
    container_format, codec, sample_format = _ENCODERS[fmt]
    layout = "stereo" if channels == 2 else "mono"
    total = round(seconds * rate)
    with av.open(str(path), "w", format=container_format) as out:
        stream = out.add_stream(codec, rate=rate)
        assert isinstance(stream, av.audio.stream.AudioStream)
        stream.layout = layout
        stream.format = sample_format
        if fmt == "mp3":
            stream.bit_rate = kbps * 1000
        for start in range(0, total, _CHUNK):
            mono = _signal(start, min(_CHUNK, total - start), rate, seconds)
            planar = np.tile(mono, (channels, 1))
            if sample_format == "s16":
                data = (planar.T.reshape(1, -1) * 32767).astype(np.int16)
            elif sample_format == "flt":  # packed: channels interleaved in one plane
                data = planar.T.reshape(1, -1).astype(np.float32)
            else:
                data = planar.astype(np.float32)
            frame = av.AudioFrame.from_ndarray(
                np.ascontiguousarray(data), format=sample_format, layout=layout
            )
            frame.sample_rate = rate
            frame.pts = start
            frame.time_base = Fraction(1, rate)
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return path


@pytest.fixture(scope="module")
def sources(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A per-module folder to write source clips into."""
    return tmp_path_factory.mktemp("sources")
