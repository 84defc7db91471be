"""Peak memory and time of preparing a 4-minute 48 kHz stereo WAV (~46 MB) for upload.

    .venv/bin/python bench/audio_memory.py [seconds]

Writes the WAV to a temporary folder, then measures in a fresh child process (so the peak
is ours alone): resident set before and at peak (VmHWM), Python-level allocations
(tracemalloc, in a second run), and how long each step takes (wall clock, and CPU time of this
process, which other load on the machine disturbs less). Not a test: it only prints.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bot.audio import (  # noqa: E402
    Thumbnail,
    analyse,
    prepare_for_upload,
    render_cover,
    render_thumbnail,
    render_waveform,
    tags_for,
)
from bot.audio.fitting import _encode_mp3  # noqa: E402

LIMIT = 10 * 1024 * 1024
THUMBNAIL = Thumbnail(side=320, max_bytes=200_000)  # Telegram's: the most work a track gets

# bot.audio loads its decoders on first use: load them now, so the RSS measured below is the
# work's, not the imports'.
import av  # noqa: E402, F401
import numpy  # noqa: E402, F401
import PIL.Image  # noqa: E402, F401


def _status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def measure(source: Path, workdir: Path, traced: bool) -> dict[str, float]:
    tags = tags_for("benchmark, synthwave", 1, 240.0, "Bench")
    baseline = _status_kib("VmRSS")
    if traced:
        tracemalloc.start()
    started, cpu = time.perf_counter(), time.process_time()
    track = prepare_for_upload(
        source, limit_bytes=LIMIT, tags=tags, workdir=workdir, thumbnail=THUMBNAIL
    )
    result = {
        "total_s": time.perf_counter() - started,
        "total_cpu_s": time.process_time() - cpu,
        "bitrate_kbps": float(track.bitrate or 0),
        "size_bytes": float(track.size),
        "rss_before_mib": baseline / 1024,
        "rss_peak_mib": _status_kib("VmHWM") / 1024,
    }
    if traced:
        result["traced_peak_mib"] = tracemalloc.get_traced_memory()[1] / 2**20
        tracemalloc.stop()
        return result
    # The steps one by one (same work as inside prepare_for_upload).
    started = time.perf_counter()
    _, envelope = analyse(source)
    result["analyse_s"] = time.perf_counter() - started
    started = time.perf_counter()
    render_cover(envelope, workdir / "c.png")
    render_waveform(envelope, workdir / "w.png")
    render_thumbnail(envelope, workdir / "t.jpg", THUMBNAIL)
    result["pictures_s"] = time.perf_counter() - started
    started, cpu = time.perf_counter(), time.process_time()
    _encode_mp3(source, workdir / "e.mp3", kbps=320, rate=48000)
    result["encode_320_s"] = time.perf_counter() - started
    result["encode_320_cpu_s"] = time.process_time() - cpu
    return result


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        source, workdir, traced = Path(sys.argv[2]), Path(sys.argv[3]), sys.argv[4] == "1"
        print(json.dumps(measure(source, workdir, traced)))
        return
    seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 240.0
    from tests.audio.conftest import write_audio

    with tempfile.TemporaryDirectory() as tmp:
        source = write_audio(Path(tmp) / "song.wav", seconds, "wav")
        print(f"source: {seconds:.0f} s WAV, {source.stat().st_size / 2**20:.1f} MiB")
        for traced in (False, True):
            child = subprocess.run(
                [sys.executable, __file__, "--child", str(source), f"{tmp}/out{traced:d}",
                 "1" if traced else "0"],
                check=True, capture_output=True, text=True,
            )  # fmt: skip
            for key, value in json.loads(child.stdout).items():
                print(f"  {'traced ' if traced else ''}{key:>16}: {value:,.2f}")


if __name__ == "__main__":
    main()
