"""A loopback server in its own process, so its CPU and memory are not the bot's.

    python bench/_fake_server.py wavespeed --runtime 0 --time-scale 0.001
    python bench/_fake_server.py file --path /tmp/x.mp3

Prints ``READY <base_url>`` on stdout, serves until stdin closes, then prints
``CPU <user+system seconds>`` and exits. Used by the other scripts through :class:`ServerProcess`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType

import _common as c  # puts the repository on sys.path


async def _stdin_closed() -> None:
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, sys.stdin.read)


async def _serve_wavespeed(args: argparse.Namespace) -> None:
    from tests.fakes.wavespeed import FakeWaveSpeed

    c.warm_fake_audio(*args.warm)
    async with FakeWaveSpeed(time_scale=args.time_scale, api_key=c.WAVESPEED_KEY) as fake:
        fake.runtime = args.runtime
        print(f"READY {fake.base_url}", flush=True)
        await _stdin_closed()
        # The fake keeps every record in memory; say how much it saw.
        print(json.dumps({"polls": len(fake.polls), "submits": len(fake.submits)}), flush=True)


async def _serve_file(args: argparse.Namespace) -> None:
    # Imported here: the bot processes that import this module for ServerProcess must not
    # carry aiohttp in their measured memory.
    from aiohttp import web

    path = Path(args.path)

    async def handler(request: web.Request) -> web.StreamResponse:
        return web.FileResponse(path, headers={"Content-Type": "audio/mpeg"})

    app = web.Application()
    app.router.add_get("/{name}", handler)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    print(f"READY http://127.0.0.1:{runner.addresses[0][1]}", flush=True)
    await _stdin_closed()
    await runner.cleanup()


def main() -> None:
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="kind", required=True)
    ws = sub.add_parser("wavespeed")
    ws.add_argument("--runtime", type=float, default=0.0, help="nominal seconds per job")
    ws.add_argument("--time-scale", type=float, default=1.0)
    ws.add_argument("--warm", type=float, nargs="*", default=[5.0], help="audio to pre-encode")
    served = sub.add_parser("file")
    served.add_argument("--path", required=True)
    args = parser.parse_args()
    asyncio.run(_serve_wavespeed(args) if args.kind == "wavespeed" else _serve_file(args))
    usage = resource.getrusage(resource.RUSAGE_SELF)
    print(f"CPU {usage.ru_utime + usage.ru_stime:.3f}", flush=True)


class ServerProcess:
    """``with ServerProcess("wavespeed", "--runtime", "0") as server: server.base_url``."""

    def __init__(self, *args: str) -> None:
        self._args = args
        self.base_url = ""
        self.cpu_seconds = float("nan")
        self._proc: subprocess.Popen[str] | None = None

    def __enter__(self) -> ServerProcess:
        self._proc = subprocess.Popen(
            [sys.executable, __file__, *self._args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self._proc.stdout is not None
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            line = self._proc.stdout.readline()
            if line.startswith("READY "):
                self.base_url = line.split()[1]
                return self
            if not line and self._proc.poll() is not None:
                break
        raise RuntimeError(f"server {self._args} did not start")

    @property
    def pid(self) -> int:
        assert self._proc is not None
        return self._proc.pid

    def cpu_now(self) -> float:
        """User + system CPU seconds the server has used so far (from /proc)."""
        fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        ticks = int(fields[11]) + int(fields[12])  # utime, stime
        return ticks / os.sysconf("SC_CLK_TCK")

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        assert self._proc is not None
        # communicate() closes stdin, which tells the server to stop.
        try:
            out, _ = self._proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            out, _ = self._proc.communicate()
        for line in out.splitlines():
            if line.startswith("CPU "):
                self.cpu_seconds = float(line.split()[1])


if __name__ == "__main__":
    main()
