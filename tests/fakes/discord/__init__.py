"""A loopback fake of Discord (REST v10 + gateway websocket) that the real discord.py 2.7 talks to.

Start it, point discord.py at it, drive the bot like a user would, and look at what users see::

    async with FakeDiscord(application_id=APP_ID) as dc:
        dc.add_user(USER, "alice")
        dc.add_guild(GUILD, "Test Guild", channels=[(CHANNEL, "general")], members=[USER])
        with point_discord_at(dc):
            task = asyncio.create_task(bot.start(dc.token))
            await dc.wait_until_ready()
            await dc.wait_for_commands_synced("song", guild_id=GUILD)
            inter = await dc.invoke_slash(GUILD, CHANNEL, USER, "song", {"tags": "lo-fi"})
            msg = await inter.wait_for_original(lambda m: m.attachments)
            await bot.close()

What it is faithful to (each point checked against discord.py 2.7.1's source):

* REST under ``/api/v10``: bot routes need ``Authorization: Bot <token>`` (else 401), interaction
  callbacks and webhook routes need none (as on Discord). JSON answers carry
  ``Content-Type: application/json`` *exactly* - discord.py's ``json_or_text`` compares the whole
  header, so aiohttp's usual ``; charset=utf-8`` would make it see a ``str`` and crash.
* Discord's error codes: 10062 late/unknown interaction, 40060 second initial response, 50027
  expired interaction token (15 min), 10015 follow-up before the interaction was acknowledged,
  50035 form errors (content > 2000, > 10 embeds, embed limits, > 5 action rows, ...), 50006 empty
  message, 40005/413 a file over the guild's limit or a message's files over a request's 25 MiB
  (``dc.max_request_bytes``), 50013 missing permissions.
* ``enforce_nonce`` (discord.py sends it with every ``nonce``): a create-message with the nonce
  of one the same author made in that channel within ``NONCE_WINDOW`` returns that message and
  makes none. Faults can be ``processed``: the request is carried out, then its answer fails.
* ``app_permissions`` as Discord resolves them: the bot's, overwrites included, in a guild; in
  a DM only Attach Files, Embed Links, Mention Everyone and Use External Emojis.
* Rate limits: every answer carries ``X-RateLimit-*`` headers from per-route buckets (nominal
  windows scaled by ``time_scale``); 429s carry ``Via`` (discord.py only retries a 429 that has
  one) and a JSON body with ``retry_after``/``global``.
* Gateway: HELLO, IDENTIFY/READY/GUILD_CREATE per shard (``(guild_id >> 22) % shard_count``),
  heartbeats, RESUME with replay of missed dispatches then RESUMED, op 7/op 9 on demand, server
  side closes; zlib-stream compressed frames when the URL asks for them.
* Threads (``routes/threads.py``): ``POST /channels/{id}/threads`` answers the thread channel
  (201, Create Public/Private Threads checked) and sends THREAD_CREATE; a thread then takes
  messages and interactions like a channel, with its parent's permissions (Send Messages in
  Threads for posting); ``dc.threads_of(channel_id)``.
* After a type-5 defer the first follow-up *edits* the "thinking" message (it stays ``@original``
  and keeps the defer's ephemerality); after a component's type-6/7 answer ``@original`` is the
  message the component is on.

Time: ``time_scale`` maps nominal Discord seconds to real ones (0.01 → the 3 s deadline is 30 ms);
``await dc.advance_time(seconds)`` jumps the fake's clock (deterministic expiry tests). The clock
only governs the fake's own rules - discord.py's ``Interaction.is_expired()`` reads the wall clock
through the snowflake and does not see either.

discord.py's own real-time waits, worth knowing in tests: ``on_ready`` fires
``guild_ready_timeout`` (2 s) after the last GUILD_CREATE - pass ``guild_ready_timeout=0.05``;
``before_identify_hook`` sleeps 5 s before every re-IDENTIFY (op 9, extra shards) - override it;
5xx retries sleep 1, 3, 5, 7 s. Rate limits default to Discord-like buckets (``DEFAULT_RATE_LIMITS``,
e.g. 5 messages per 5 nominal s per channel); loosen them with
``FakeDiscord(rate_limits={"POST /channels/{channel_id}/messages": (50, 1.0)})`` - keys are
discord.py ``Route.key`` strings.

The package, by responsibility:

* ``fake`` - ``FakeDiscord``, the object tests hold; ``pointing`` - ``point_discord_at``.
* ``state`` - the world (users, guilds, channels, messages, interactions) and what tests read
  back; ``records`` - the recorded shapes; ``interaction`` - ``FakeInteraction``.
* ``server`` - the aiohttp app, routing, auth; ``routes/`` - REST handlers by area (users,
  commands, interactions and webhooks, channels and messages, guilds); ``messages`` - making,
  editing and announcing messages; ``gateway`` - the websocket.
* ``actions`` and ``options`` - what users do; ``faults`` - injected failures in the common
  fault model (``tests/fakes/common``), ``ratelimits`` - Discord's buckets; ``protocol``, ``validation``, ``payloads``, ``clock`` - Discord's
  constants and checks, JSON shapes, the nominal clock.
"""

from tests.fakes.discord.fake import FakeDiscord
from tests.fakes.discord.faults import DiscordFault
from tests.fakes.discord.guild import FakeGuild
from tests.fakes.discord.interaction import FakeInteraction
from tests.fakes.discord.pointing import point_discord_at
from tests.fakes.discord.protocol import (
    EPHEMERAL,
    LOADING,
    SUPPRESS_EMBEDS,
    DiscordAPIError,
    FakeDiscordError,
    FakeDiscordTimeout,
    Perm,
)
from tests.fakes.discord.ratelimits import DEFAULT_RATE_LIMITS
from tests.fakes.discord.records import (
    GatewayEvent,
    Pings,
    RecordedAttachment,
    RecordedComponent,
    RecordedEdit,
    RecordedMessage,
    RecordedRequest,
    Rejection,
    UploadedFile,
)

__all__ = [
    "DEFAULT_RATE_LIMITS",
    "EPHEMERAL",
    "LOADING",
    "SUPPRESS_EMBEDS",
    "DiscordAPIError",
    "DiscordFault",
    "FakeDiscord",
    "FakeDiscordError",
    "FakeDiscordTimeout",
    "FakeGuild",
    "FakeInteraction",
    "GatewayEvent",
    "Perm",
    "Pings",
    "RecordedAttachment",
    "RecordedComponent",
    "RecordedEdit",
    "RecordedMessage",
    "RecordedRequest",
    "Rejection",
    "UploadedFile",
    "point_discord_at",
]
