"""Pictures of a track drawn from its loudness envelope: waveform, cover, thumbnail."""

from __future__ import annotations

import io
import math
from pathlib import Path
from typing import TYPE_CHECKING

from bot.audio.decoding import analyse
from bot.audio.model import Envelope, Thumbnail

if TYPE_CHECKING:
    import numpy.typing as npt
    from PIL import Image

    from bot.audio.model import Floats

_BACKGROUND = (14, 15, 20)
_ACCENT_FROM = (139, 92, 246)  # violet
_ACCENT_TO = (34, 211, 238)  # cyan


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


def render_thumbnail(source: Path | Envelope, dest: Path, thumbnail: Thumbnail) -> Path:
    """The cover as a JPEG within ``thumbnail``'s side and bytes: what the platform that
    asked for it shows with a track."""
    image = _draw_cover(source, thumbnail.side)
    for quality in (90, 75, 60, 40):
        buffer = io.BytesIO()
        image.save(buffer, format="JPEG", quality=quality, optimize=True)
        if buffer.tell() <= thumbnail.max_bytes:
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
