"""stream_to_file against a small loopback file server: what lands on disk, and what never does."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from aiohttp import web

from bot.download import normalize_host, sniff_audio_format, stream_to_file
from bot.errors import AudioError, TransientBackendError
from tests.backends.conftest import leftovers
from tests.fakes.audio import make_audio, probe_audio
from tests.fakes.backend_common import AUDIO_CONTENT_TYPES, truncated_response

ALLOWED = ("127.0.0.1",)
MAX = 10_000_000


class FileServer:
    """Serves test audio and misbehaves on request; records every request's headers."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, dict[str, str]]] = []
        self.base_url = ""
        app = web.Application(middlewares=[self._record])
        app.router.add_get("/song.{fmt}", self._song)
        app.router.add_get("/status/{code}", self._status)
        app.router.add_get("/truncated", self._truncated)
        app.router.add_get("/chunked", self._chunked)
        app.router.add_get("/html", self._html)
        app.router.add_get("/empty", self._empty)
        app.router.add_get("/redirect", self._redirect)
        app.router.add_get("/loop", self._loop)
        self._runner = web.AppRunner(app, access_log=None)

    @web.middleware
    async def _record(self, request: web.Request, handler: object) -> web.StreamResponse:
        self.requests.append((request.path, dict(request.headers)))
        return await handler(request)  # type: ignore[operator]

    async def start(self) -> None:
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.base_url = f"http://127.0.0.1:{self._runner.addresses[0][1]}"

    async def stop(self) -> None:
        await self._runner.cleanup()

    async def _song(self, request: web.Request) -> web.Response:
        fmt = request.match_info["fmt"]
        return web.Response(body=make_audio(3.0, fmt), content_type=AUDIO_CONTENT_TYPES[fmt])

    async def _status(self, request: web.Request) -> web.Response:
        return web.Response(status=int(request.match_info["code"]), text="error")

    async def _truncated(self, request: web.Request) -> web.StreamResponse:
        return await truncated_response(request, make_audio(3.0, "wav"), "audio/wav")

    async def _chunked(self, request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()  # no Content-Length: only the running count can stop it
        await response.prepare(request)
        await response.write(make_audio(3.0, "wav"))
        return response

    async def _html(self, request: web.Request) -> web.Response:
        return web.Response(text="<html>nope</html>", content_type="text/html")

    async def _empty(self, request: web.Request) -> web.Response:
        return web.Response(body=b"")

    async def _loop(self, request: web.Request) -> web.Response:
        return web.Response(status=302, headers={"Location": "/loop"})

    async def _redirect(self, request: web.Request) -> web.Response:
        return web.Response(status=302, headers={"Location": request.query["to"]})


@pytest.fixture
async def files() -> AsyncIterator[FileServer]:
    server = FileServer()
    await server.start()
    yield server
    await server.stop()


@pytest.mark.parametrize("fmt", ["mp3", "wav", "flac"])
async def test_a_song_lands_on_disk_whole_and_playable(
    http: httpx.AsyncClient, files: FileServer, tmp_path: Path, fmt: str
) -> None:
    dest = tmp_path / "song"
    got = await stream_to_file(
        http, f"{files.base_url}/song.{fmt}", dest, allowed_hosts=ALLOWED, max_bytes=MAX
    )
    assert got.path == dest and got.format == fmt
    assert got.size == dest.stat().st_size == len(make_audio(3.0, fmt))
    duration, rate, _codec = probe_audio(dest)
    assert duration == pytest.approx(3.0, abs=0.1) and rate == 48000
    assert leftovers(tmp_path) == ["song"]


@pytest.mark.parametrize("code", [401, 403, 404, 410])
async def test_an_expired_link_is_an_audio_error_and_leaves_nothing(
    http: httpx.AsyncClient, files: FileServer, tmp_path: Path, code: int
) -> None:
    with pytest.raises(AudioError) as caught:
        await stream_to_file(
            http,
            f"{files.base_url}/status/{code}",
            tmp_path / "s",
            allowed_hosts=ALLOWED,
            max_bytes=MAX,
        )
    assert caught.value.code == "download_expired"
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize(
    ("path", "code"),
    [
        ("/truncated", "download_truncated"),
        ("/html", "not_audio"),
        ("/empty", "empty_audio"),
        ("/status/418", "download_failed"),
        ("/loop", "download_failed"),
    ],
)
async def test_unusable_answers_are_audio_errors_and_leave_nothing(
    http: httpx.AsyncClient, files: FileServer, tmp_path: Path, path: str, code: str
) -> None:
    with pytest.raises(AudioError) as caught:
        await stream_to_file(
            http, files.base_url + path, tmp_path / "s", allowed_hosts=ALLOWED, max_bytes=MAX
        )
    assert caught.value.code == code
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize("path", ["/song.wav", "/chunked"])
async def test_an_oversized_output_is_refused_with_or_without_content_length(
    http: httpx.AsyncClient, files: FileServer, tmp_path: Path, path: str
) -> None:
    with pytest.raises(AudioError) as caught:
        await stream_to_file(
            http, files.base_url + path, tmp_path / "s", allowed_hosts=ALLOWED, max_bytes=100_000
        )
    assert caught.value.code == "download_too_large"
    assert leftovers(tmp_path) == []


async def test_an_answer_without_content_length_is_still_saved(
    http: httpx.AsyncClient, files: FileServer, tmp_path: Path
) -> None:
    got = await stream_to_file(
        http, f"{files.base_url}/chunked", tmp_path / "s", allowed_hosts=ALLOWED, max_bytes=MAX
    )
    assert got.format == "wav" and probe_audio(got.path)[0] == pytest.approx(3.0, abs=0.1)


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.2:9/x.mp3",
        "http://169.254.169.254/latest/meta-data",
        "http://[::1]:9/x.mp3",
        "file:///etc/passwd",
        "ftp://127.0.0.1/x.mp3",
        "not a url",
    ],
)
async def test_hosts_off_the_allowlist_are_never_contacted(
    http: httpx.AsyncClient, tmp_path: Path, url: str
) -> None:
    with pytest.raises(AudioError) as caught:
        await stream_to_file(http, url, tmp_path / "s", allowed_hosts=ALLOWED, max_bytes=MAX)
    assert caught.value.code == "download_refused"
    assert leftovers(tmp_path) == []


async def test_host_matching_ignores_case_and_a_trailing_dot(
    http: httpx.AsyncClient, files: FileServer, tmp_path: Path
) -> None:
    got = await stream_to_file(
        http,
        f"{files.base_url}/song.mp3",
        tmp_path / "s",
        allowed_hosts=["127.0.0.1."],
        max_bytes=MAX,
    )
    assert got.format == "mp3"


@pytest.mark.parametrize(
    ("entry", "host"),
    [
        ("CDN.Example.com", "cdn.example.com"),
        ("cdn.example.com:443", "cdn.example.com"),
        ("https://cdn.example.com/path", "cdn.example.com"),
        ("[::1]:8001", "::1"),
        ("::1", "::1"),
        ("127.0.0.1.", "127.0.0.1"),
    ],
)
def test_allowlist_entries_are_normalised_to_bare_hosts(entry: str, host: str) -> None:
    assert normalize_host(entry) == host


@pytest.mark.parametrize(
    "target", ["http://169.254.169.254/latest/meta-data", "http://127.0.0.2:9/x.mp3"]
)
async def test_a_redirect_to_a_disallowed_host_is_refused(
    http: httpx.AsyncClient, files: FileServer, tmp_path: Path, target: str
) -> None:
    url = str(httpx.URL(f"{files.base_url}/redirect", params={"to": target}))
    with pytest.raises(AudioError) as caught:
        await stream_to_file(http, url, tmp_path / "s", allowed_hosts=ALLOWED, max_bytes=MAX)
    assert caught.value.code == "download_refused"
    assert leftovers(tmp_path) == []


async def test_a_redirect_within_allowed_hosts_is_followed_without_the_credentials(
    http: httpx.AsyncClient, files: FileServer, tmp_path: Path
) -> None:
    other = FileServer()  # same host, other port: a different origin
    await other.start()
    try:
        url = str(
            httpx.URL(f"{files.base_url}/redirect", params={"to": f"{other.base_url}/song.mp3"})
        )
        got = await stream_to_file(
            http,
            url,
            tmp_path / "s",
            allowed_hosts=ALLOWED,
            max_bytes=MAX,
            headers={"Authorization": "Bearer origin-only"},
        )
    finally:
        await other.stop()
    assert got.format == "mp3"
    assert files.requests[0][1].get("Authorization") == "Bearer origin-only"
    assert "Authorization" not in other.requests[0][1]


@pytest.mark.parametrize("code", [429, 500, 502, 503])
async def test_a_busy_or_broken_file_host_is_transient(
    http: httpx.AsyncClient, files: FileServer, tmp_path: Path, code: int
) -> None:
    with pytest.raises(TransientBackendError):
        await stream_to_file(
            http,
            f"{files.base_url}/status/{code}",
            tmp_path / "s",
            allowed_hosts=ALLOWED,
            max_bytes=MAX,
        )
    assert leftovers(tmp_path) == []


async def test_an_unreachable_file_host_is_transient(
    http: httpx.AsyncClient, closed_port_url: str, tmp_path: Path
) -> None:
    with pytest.raises(TransientBackendError):
        await stream_to_file(
            http, f"{closed_port_url}/x.mp3", tmp_path / "s", allowed_hosts=ALLOWED, max_bytes=MAX
        )


async def test_signed_query_strings_stay_out_of_logs_and_errors(
    http: httpx.AsyncClient, files: FileServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="bot")
    await stream_to_file(
        http,
        f"{files.base_url}/song.mp3?sig=SIGNED-SECRET",
        tmp_path / "a",
        allowed_hosts=ALLOWED,
        max_bytes=MAX,
    )
    with pytest.raises(AudioError) as caught:
        await stream_to_file(
            http,
            f"{files.base_url}/status/403?sig=SIGNED-SECRET",
            tmp_path / "b",
            allowed_hosts=ALLOWED,
            max_bytes=MAX,
        )
    ours = [r.getMessage() for r in caplog.records if r.name.startswith("bot")]
    assert ours and not any("SIGNED-SECRET" in line for line in ours)
    assert "SIGNED-SECRET" not in str(caught.value)


@pytest.mark.parametrize(
    ("head", "fmt"),
    [
        (b"ID3\x04\x00\x00\x00\x00\x00\x00\x00\x00", "mp3"),
        (b"\xff\xfb\x90\x64" + bytes(8), "mp3"),  # MPEG-1 layer III frame
        (b"\xff\xf3\x90\x64" + bytes(8), "mp3"),  # MPEG-2 layer III frame
        (b"\xff\xf1\x50\x80" + bytes(8), None),  # AAC ADTS shares the sync word
        (b"RIFF\x24\x00\x00\x00WAVEfmt ", "wav"),
        (b"RIFF\x24\x00\x00\x00AVI LIST", None),
        (b"fLaC\x00\x00\x00\x22" + bytes(4), "flac"),
        (b"OggS\x00\x02" + bytes(6), "ogg"),
        (b"\x00\x00\x00\x20ftypM4A ", "m4a"),
        (b"<!DOCTYPE html>", None),
        (b'{"error": "x"}', None),
        (b"", None),
    ],
)
def test_formats_are_recognised_from_their_first_bytes(head: bytes, fmt: str | None) -> None:
    assert sniff_audio_format(head) == fmt
