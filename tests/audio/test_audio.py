"""bot/audio/ with real audio in and real audio out.

Every result is decoded again with FFmpeg (PyAV) and checked the way a listener's player
would see it: length, sample rate, bitrate, size against the limit, tags, pictures.
"""

from __future__ import annotations

import asyncio
import os
import sys
import tracemalloc
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import av
import pytest
from mutagen.id3 import ID3
from PIL import Image

from bot.audio import (
    STANDARD_KBPS,
    PreparedTrack,
    Thumbnail,
    TrackTags,
    analyse,
    prepare_for_upload,
    probe,
    remove_expired_audio,
    render_waveform,
    tags_for,
    write_tags,
)
from bot.errors import AudioError
from tests.audio.conftest import write_audio

MiB = 1024 * 1024
TAGS = tags_for("dreamy synthwave, night drive, 80s", 4242, 30.0, "Test Guild")
THUMBNAIL = Thumbnail(side=320, max_bytes=200_000)  # what a platform (Telegram) may ask for


@dataclass(frozen=True)
class Decoded:
    duration: float
    sample_rate: int
    channels: int
    bit_rate: int
    codec: str


def decode(path: Path) -> Decoded:
    """Decode every frame: the length a player would actually play."""
    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        samples = sum(frame.samples for frame in container.decode(stream))
        ctx = stream.codec_context
        return Decoded(
            duration=samples / ctx.sample_rate,
            sample_rate=ctx.sample_rate,
            channels=ctx.channels,
            bit_rate=ctx.bit_rate or 0,
            codec=ctx.codec.canonical_name,
        )


def assert_pictures(track: PreparedTrack) -> None:
    with Image.open(track.waveform_png) as image:
        assert (image.format, image.size) == ("PNG", (640, 160))
    with Image.open(track.cover_png) as image:
        assert (image.format, image.size) == ("PNG", (500, 500))
    assert track.thumbnail_jpg is not None
    with Image.open(track.thumbnail_jpg) as image:
        assert image.format == "JPEG"
        assert max(image.size) <= 320
    assert track.thumbnail_jpg.stat().st_size <= 200_000


def assert_tagged(path: Path, tags: TrackTags, cover: Path) -> None:
    id3 = ID3(path)
    assert id3["TIT2"].text == [tags.title]
    assert id3["TPE1"].text == ["AceJam"]
    assert id3["TALB"].text == [tags.album]
    assert id3.getall("COMM")[0].text == [tags.comment]
    (apic,) = id3.getall("APIC")
    assert (apic.mime, apic.type) == ("image/png", 3)  # 3: front cover
    assert apic.data == cover.read_bytes()


# ---------------------------------------------------------------- probing


@pytest.mark.parametrize(
    ("fmt", "rate", "codec"),
    [
        ("mp3", 44100, "mp3"),
        ("wav", 44100, "pcm_s16le"),
        ("flac", 44100, "flac"),
        ("ogg", 48000, "opus"),
        ("m4a", 48000, "aac"),
    ],
)
def test_probe_reads_the_real_format_not_the_file_name(
    sources: Path, fmt: str, rate: int, codec: str
) -> None:
    path = write_audio(sources / f"disguised-{fmt}.bin", 3.0, fmt, rate=rate)

    info = probe(path)

    assert (info.format, info.codec) == (fmt, codec)
    assert info.duration == pytest.approx(3.0, abs=0.1)
    assert (info.sample_rate, info.channels) == (rate, 2)
    assert info.size == path.stat().st_size


def _truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _scribble(path: Path) -> None:
    data = bytearray(path.read_bytes())
    middle = len(data) // 3
    data[middle : middle + 4000] = bytes((i * 37) % 251 for i in range(4000))
    path.write_bytes(bytes(data))


# Damage that headers show: the worker's probe refuses these before calling the job a success.
SEEN_IN_HEADERS = [
    ("zero-length", "wav", lambda p: p.write_bytes(b""), "empty"),
    ("truncated WAV", "wav", _truncate, "truncated"),
    ("truncated MP3", "mp3", _truncate, "truncated"),
    ("truncated M4A", "m4a", _truncate, "truncated"),
    (
        "an error page",
        "mp3",
        lambda p: p.write_text("<html>502 Bad Gateway</html>"),
        "not an audio file",
    ),
]
# Only decoding finds these; prepare_for_upload decodes every track it sends.
SEEN_BY_DECODING = [
    ("truncated FLAC", "flac", _truncate, "truncated"),
    ("corrupt MP3", "mp3", _scribble, "corrupt"),
    ("corrupt FLAC", "flac", _scribble, "corrupt"),
]
BROKEN = SEEN_IN_HEADERS + SEEN_BY_DECODING


@pytest.mark.parametrize(
    ("case", "fmt", "damage", "reason"), BROKEN, ids=[case for case, *_ in BROKEN]
)
def test_broken_files_are_never_sent(
    tmp_path: Path, case: str, fmt: str, damage: Callable[[Path], object], reason: str
) -> None:
    path = write_audio(tmp_path / f"song.{fmt}", 6.0, fmt)
    damage(path)

    with pytest.raises(AudioError) as prepared:
        prepare_for_upload(path, limit_bytes=8 * MiB, tags=TAGS, workdir=tmp_path / "out")

    assert prepared.value.code == "bad_audio"
    assert "song." in prepared.value.detail and reason in prepared.value.detail
    assert not (tmp_path / "out").exists()  # nothing half-made is left behind


@pytest.mark.parametrize(
    ("case", "fmt", "damage", "reason"),
    SEEN_IN_HEADERS,
    ids=[case for case, *_ in SEEN_IN_HEADERS],
)
def test_probe_refuses_what_the_headers_show(
    tmp_path: Path, case: str, fmt: str, damage: Callable[[Path], object], reason: str
) -> None:
    path = write_audio(tmp_path / f"song.{fmt}", 6.0, fmt)
    damage(path)

    with pytest.raises(AudioError) as probed:
        probe(path)

    assert probed.value.code == "bad_audio"
    assert "song." in probed.value.detail and reason in probed.value.detail


def test_a_picture_is_not_audio(tmp_path: Path) -> None:
    path = tmp_path / "song.mp3"
    Image.new("RGB", (64, 64), "red").save(path, format="PNG")

    with pytest.raises(AudioError, match="not an audio file"):
        probe(path)


def test_a_missing_file_is_an_audio_error(tmp_path: Path) -> None:
    with pytest.raises(AudioError, match="cannot read"):
        probe(tmp_path / "never-downloaded.mp3")


async def test_a_worker_process_never_loads_the_decoders(sources: Path) -> None:
    # probe is all the worker does with audio: PyAV, NumPy and Pillow (~45 MB of RSS) stay
    # out of a process that does not deliver.
    path = write_audio(sources / "worker.mp3", 2.0, "mp3")
    check = (
        "import sys\n"
        "from pathlib import Path\n"
        "import bot.cli\n"
        "from bot.audio import probe\n"
        "print(round(probe(Path(sys.argv[1])).duration))\n"
        "print(sorted(name for name in ('av', 'numpy', 'PIL') if name in sys.modules))\n"
    )
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-c", check, str(path), stdout=asyncio.subprocess.PIPE
    )
    out, _ = await asyncio.wait_for(process.communicate(), 60)

    assert process.returncode == 0
    assert out.decode().split("\n")[:2] == ["2", "[]"]


# ---------------------------------------------------------------- fitting to the limit


def test_an_mp3_that_fits_is_kept_byte_for_byte_and_tagged(sources: Path, tmp_path: Path) -> None:
    source = write_audio(sources / "fits.mp3", 8.0, "mp3", kbps=128)
    original = source.read_bytes()

    track = prepare_for_upload(
        source, limit_bytes=8 * MiB, tags=TAGS, workdir=tmp_path, thumbnail=THUMBNAIL
    )

    assert not track.transcoded and not track.is_preview
    assert track.bitrate == 128
    assert track.size == track.path.stat().st_size <= 8 * MiB
    # Same MPEG frames: only the tag in front changed (FFmpeg's "Lavf" tag is gone).
    out = track.path.read_bytes()
    assert out[ID3(track.path).size :] == original[ID3(source).size :]
    assert "TSSE" not in ID3(track.path)
    assert decode(track.path).duration == pytest.approx(8.0, abs=0.1)
    assert_tagged(track.path, TAGS, track.cover_png)
    assert_pictures(track)
    assert source.read_bytes() == original  # the source is never modified


@pytest.fixture(scope="module")
def thirty_seconds_wav(sources: Path) -> Path:
    return write_audio(sources / "thirty.wav", 30.0, "wav")  # 5.8 MB


def test_a_wav_too_big_is_encoded_at_the_highest_bitrate_that_fits(
    thirty_seconds_wav: Path, tmp_path: Path
) -> None:
    source = thirty_seconds_wav
    limit = 950_000  # 256 kbps × 30 s alone is 960 kB: 224 is the best possible

    track = prepare_for_upload(
        source, limit_bytes=limit, tags=TAGS, workdir=tmp_path, thumbnail=THUMBNAIL
    )

    assert track.transcoded and not track.is_preview
    assert track.bitrate == 224
    assert track.path.suffix == ".mp3" and track.size == track.path.stat().st_size <= limit
    heard = decode(track.path)
    assert heard.codec == "mp3"
    assert heard.duration == pytest.approx(30.0, abs=0.1)
    assert (heard.sample_rate, heard.channels) == (48000, 2)
    assert heard.bit_rate <= 224_000
    assert_tagged(track.path, TAGS, track.cover_png)
    assert_pictures(track)


def test_a_flac_is_encoded_as_stereo_44k1_mp3_at_320(sources: Path, tmp_path: Path) -> None:
    # Mono at 22.05 kHz: the output is still a standard 44.1 kHz stereo MP3.
    source = write_audio(sources / "mono.flac", 10.0, "flac", rate=22050, channels=1)

    track = prepare_for_upload(source, limit_bytes=50_000_000, tags=TAGS, workdir=tmp_path)

    assert track.transcoded and track.bitrate == 320
    heard = decode(track.path)
    assert heard.duration == pytest.approx(10.0, abs=0.1)
    assert (heard.sample_rate, heard.channels) == (44100, 2)
    assert heard.bit_rate <= 320_000
    assert track.size <= 50_000_000
    assert_tagged(track.path, TAGS, track.cover_png)


def test_an_mp3_too_big_is_re_encoded_smaller(sources: Path, tmp_path: Path) -> None:
    source = write_audio(sources / "big.mp3", 12.0, "mp3", kbps=256)  # 384 kB
    limit = 300_000  # 192 kbps is 288 kB before ~40 kB of tags; 160 kbps leaves room

    track = prepare_for_upload(source, limit_bytes=limit, tags=TAGS, workdir=tmp_path)

    assert track.transcoded and track.bitrate == 160
    assert track.size <= limit
    assert decode(track.path).duration == pytest.approx(12.0, abs=0.1)


def test_four_minutes_of_wav_fit_10_mib_at_320_kbps_streaming(
    sources: Path, tmp_path: Path
) -> None:
    source = write_audio(sources / "four-minutes.wav", 240.0, "wav")
    assert source.stat().st_size > 45_000_000
    limit = 10 * MiB
    # The first call imports PyAV, NumPy and Pillow's plugins: memory kept for the process,
    # not what one song costs, so it is made before measuring.
    short = write_audio(sources / "warm-up.wav", 1.0, "wav")
    prepare_for_upload(short, limit_bytes=limit, tags=TAGS, workdir=tmp_path / "warm-up")

    tracemalloc.start()
    try:
        track = prepare_for_upload(source, limit_bytes=limit, tags=TAGS, workdir=tmp_path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    # 320 kbps × 240 s = 9.6 MB, plus ~40 kB of tags and cover: fits under 10.49 MB.
    assert track.bitrate == 320 and not track.is_preview
    assert track.size == track.path.stat().st_size <= limit
    heard = decode(track.path)
    assert heard.duration == pytest.approx(240.0, abs=0.1)
    assert heard.sample_rate == 48000
    assert heard.bit_rate <= 320_000
    # Streamed: Python never holds more than a sliver of the 46 MB file.
    assert peak < 4 * MiB, f"peak traced allocation {peak / MiB:.1f} MiB"


def test_below_the_floor_a_labelled_preview_is_sent(
    thirty_seconds_wav: Path, tmp_path: Path
) -> None:
    source = thirty_seconds_wav
    before = source.stat()
    limit = 200_000  # 96 kbps × 30 s would be 360 kB

    track = prepare_for_upload(source, limit_bytes=limit, tags=TAGS, workdir=tmp_path)

    assert track.is_preview and track.transcoded
    assert track.bitrate == 96
    assert 10.0 <= track.duration < track.full_duration == pytest.approx(30.0, abs=0.1)
    assert track.size <= limit
    heard = decode(track.path)
    assert heard.duration == pytest.approx(track.duration, abs=0.1)
    assert heard.bit_rate <= 96_000
    title = ID3(track.path)["TIT2"].text[0]
    assert title == f"{TAGS.title} (preview)"
    assert "Preview: first" in ID3(track.path).getall("COMM")[0].text[0]
    # The full file stays where it was, for an admin to fetch.
    assert source.stat().st_size == before.st_size


def test_a_limit_too_small_for_any_preview_fails_clearly(sources: Path, tmp_path: Path) -> None:
    source = write_audio(sources / "short.wav", 12.0, "wav")

    with pytest.raises(AudioError) as caught:
        prepare_for_upload(source, limit_bytes=60_000, tags=TAGS, workdir=tmp_path)

    assert caught.value.code == "audio_too_large"
    assert "preview" in caught.value.detail


def test_the_floor_must_be_a_real_mp3_bitrate(sources: Path, tmp_path: Path) -> None:
    source = write_audio(sources / "short.wav", 12.0, "wav")
    assert 100 not in STANDARD_KBPS
    with pytest.raises(ValueError, match="floor_kbps"):
        prepare_for_upload(source, limit_bytes=MiB, tags=TAGS, workdir=tmp_path, floor_kbps=100)


# ---------------------------------------------------------------- tags and pictures


def test_write_tags_replaces_old_tags_and_embeds_the_cover(tmp_path: Path) -> None:
    path = write_audio(tmp_path / "song.mp3", 3.0, "mp3")
    assert "TSSE" in ID3(path)  # FFmpeg's own "Lavf…" encoder tag
    cover = tmp_path / "cover.png"
    Image.new("RGB", (500, 500), (20, 20, 30)).save(cover)
    tags = TrackTags(title="Night Drive", album=None, comment="Tags: synthwave | Seed: 1")

    write_tags(path, tags, cover)

    id3 = ID3(path)
    assert id3["TIT2"].text == ["Night Drive"] and id3["TPE1"].text == ["AceJam"]
    assert "TALB" not in id3  # no album when none is known
    assert "TSSE" not in id3
    assert id3.getall("APIC")[0].data == cover.read_bytes()
    assert decode(path).duration == pytest.approx(3.0, abs=0.1)  # still plays


def test_the_waveform_shows_the_music(sources: Path, tmp_path: Path) -> None:
    source = write_audio(sources / "shape.flac", 20.0, "flac")

    picture = render_waveform(source, tmp_path / "wave.png", width=400, height=100)

    with Image.open(picture) as image:
        assert (image.format, image.size) == ("PNG", (400, 100))
        rgb = image.convert("RGB")
    background = rgb.getpixel((0, 0))
    lit = [x for x in range(400) if rgb.getpixel((x, 50)) != background]
    assert len(lit) > 250  # bars across the track...

    # ...and the near-silent break at 12-13 s is visibly lower than the music around it.
    def height_at(second: float) -> int:
        x = round(second / 20 * 400)
        heights = []
        for column in range(x - 3, x + 4):
            heights.append(sum(rgb.getpixel((column, y)) != background for y in range(100)))
        return max(heights)

    assert height_at(12.5) * 4 < height_at(10.0)


def test_silence_still_draws_a_line(tmp_path: Path) -> None:
    path = tmp_path / "silence.wav"
    with av.open(str(path), "w") as out:
        stream = out.add_stream("pcm_s16le", rate=48000)
        frame = av.AudioFrame(format="s16", layout="stereo", samples=48000)
        for plane in frame.planes:
            plane.update(bytes(plane.buffer_size))
        frame.sample_rate = 48000
        for packet in [*stream.encode(frame), *stream.encode(None)]:
            out.mux(packet)
    _, envelope = analyse(path)

    picture = render_waveform(envelope, tmp_path / "wave.png")

    with Image.open(picture) as image:
        rgb = image.convert("RGB")
        assert rgb.getpixel((320, 80)) != rgb.getpixel((320, 10))


@pytest.mark.parametrize(
    ("tags", "seed", "title", "comment"),
    [
        ("lofi hip hop, chill", 7, "Lofi Hip Hop, Chill", "Tags: lofi hip hop, chill | Seed: 7"),
        ("EDM,  80s synth ,edm", None, "EDM, 80s Synth", "Seed: random"),
        ("  ", -1, "Untitled", "Tags: - | Seed: random"),
        (
            "orchestral, epic trailer music, massive drums, choir, brass, cinematic build",
            1,
            "Orchestral, Epic Trailer Music, Massive Drums, Choir, Brass…",
            "cinematic build",
        ),
    ],
)
def test_tags_for_makes_a_tidy_title(tags: str, seed: int | None, title: str, comment: str) -> None:
    made = tags_for(tags, seed, 95.4, "  My   Server ")

    assert made.title == title and len(made.title) <= 60
    assert comment in made.comment and "Duration: 1:35" in made.comment
    assert made.artist == "AceJam" and made.album == "My Server"


# ---------------------------------------------------------------- retention


def test_old_audio_is_removed_but_undelivered_audio_is_kept(tmp_path: Path) -> None:
    now = datetime(2025, 6, 1, tzinfo=UTC)
    old = (now - timedelta(days=31)).timestamp()
    fresh = (now - timedelta(days=2)).timestamp()

    def file(relative: str, mtime: float) -> Path:
        path = tmp_path / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"ID3")
        os.utime(path, (mtime, mtime))
        return path

    expired = file("job-1/song.mp3", old)
    expired_cover = file("job-1/song.cover.png", old)
    recent = file("job-2/song.mp3", fresh)
    undelivered = file("job-3/song.wav", old)
    undelivered_dir = file("job-4/song.wav", old)

    removed = remove_expired_audio(
        tmp_path,
        older_than=timedelta(days=30),
        keep=[undelivered, tmp_path / "job-4"],
        now=now,
    )

    assert sorted(removed) == sorted([expired, expired_cover])
    assert not (tmp_path / "job-1").exists()  # emptied folders go too
    assert recent.exists() and undelivered.exists() and undelivered_dir.exists()
    assert remove_expired_audio(tmp_path, older_than=timedelta(days=30), keep=[], now=now) == [
        undelivered,
        undelivered_dir,
    ]
    assert remove_expired_audio(tmp_path / "missing", older_than=timedelta(days=1), keep=[]) == []
