"""A process of the bot working on one jam, to be killed (-9) by tests/reliability/
test_jam_crash.py: it prints ``ack <n>`` once each contribution or vote is committed, or
``ack rendered`` once a render returned, and goes on until it is killed.

    python -m tests.reliability.jam_child DATA_DIR ACESTEP_URL collect|render|vote JAM_ID
"""

from __future__ import annotations

import asyncio
import itertools
import sys
from pathlib import Path

from bot.app import open_core
from bot.jams.model import Added, JamChanged, Part, Voted
from bot.service import Requester
from tests.harness import acestep_settings

HOST = Requester("telegram", "host", "Hana")


async def main(data_dir: str, url: str, phase: str, jam_id: int) -> None:
    settings = acestep_settings(Path(data_dir), url, lease_seconds=1.0)
    async with open_core(settings) as core:
        jams = core.service.jams
        if phase == "collect":
            for n in itertools.count():
                member = Requester("telegram", f"u{n % 5}", f"U{n % 5}")
                added = await jams.add(member, jam_id, Part.LINE, f"line {n}")
                assert isinstance(added, Added), added
                print(f"ack {n}", flush=True)
        elif phase == "render":
            stop = asyncio.Event()
            worker = asyncio.create_task(core.worker.run(stop))
            rendered = await jams.render(HOST, jam_id)
            assert isinstance(rendered, JamChanged), rendered
            print("ack rendered", flush=True)
            await worker
        else:
            for n in itertools.count():
                voter = Requester("telegram", f"v{n}", None)
                voted = await jams.vote(voter, jam_id, 1, 1 + n % 2)
                assert isinstance(voted, Voted), voted
                print(f"ack {n}", flush=True)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])))
