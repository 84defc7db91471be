"""The Telegram adapter's entry point: build the PTB application, run it until ``stop``.

``acejam run`` starts :func:`serve` when ``TELEGRAM_TOKEN`` is set. PTB's ``run_polling``
would own the event loop, which AceJam shares with the worker and Discord, so :func:`serve`
drives the documented manual lifecycle instead: ``initialize`` → ``start`` →
``updater.start_polling`` → (wait for ``stop``) → ``updater.stop`` → ``stop`` → ``shutdown``.

``TELEGRAM_API_BASE_URL`` points the bot at another Bot API server (``{base}/bot<token>/...``
and ``{base}/file/bot<token>/...``): a self-hosted ``telegram-bot-api``, with
``TELEGRAM_LOCAL_MODE=true`` when it runs with ``--local``, or a test server.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from typing import Any

from telegram import BotCommand, BotCommandScopeAllChatAdministrators, LinkPreviewOptions, Update
from telegram.constants import ParseMode
from telegram.error import InvalidToken, NetworkError, TelegramError
from telegram.ext import Application, ApplicationBuilder, Defaults

from adapters.telegram import edit_texts
from adapters.telegram.admin import ADMIN_COMMAND, TelegramAdmin
from adapters.telegram.delivery import TelegramDelivery
from adapters.telegram.edits import COMMANDS as EDIT_COMMANDS
from adapters.telegram.flood import FloodGate
from adapters.telegram.handlers import TelegramHandlers
from adapters.telegram.jam_messages import JamAnnouncer, JamMessages, TelegramJamListener
from adapters.telegram.jams import JamCommands
from adapters.telegram.permissions import ChatAdmins
from adapters.telegram.status import StatusBoard
from bot.config import Settings
from bot.domain import Task
from bot.service import GenerationService

logger = logging.getLogger(__name__)

COMMANDS = (
    BotCommand("song", "Make a song: /song tags | duration | seed, lyrics below"),
    BotCommand("describe", "A song from one sentence: /describe a sad song about rain"),
    BotCommand("extend", edit_texts.COMMAND_HINTS[Task.EXTEND]),
    BotCommand("remix", edit_texts.COMMAND_HINTS[Task.REMIX]),
    BotCommand("repaint", edit_texts.COMMAND_HINTS[Task.REPAINT]),
    BotCommand("show", "Post one of your songs again: /show 12"),
    BotCommand("history", "All your songs, with their numbers"),
    BotCommand("queue", "Your songs in line"),
    BotCommand("cancel", "Stop your latest song (or reply /cancel to one)"),
    BotCommand("quota", "How much music you have left today"),
    BotCommand("limits", "This chat's limits: song length, daily music, songs at once"),
    BotCommand("jam", "A song the chat writes together: /jam start <theme>"),
    BotCommand("help", "How to use AceJam"),
)
OPTIONAL = {"describe", *EDIT_COMMANDS}  # listed only where the engine can
POLL_TIMEOUT = 30  # seconds a getUpdates long poll may wait for news
MAX_STARTUP_BACKOFF = 60.0

TelegramApp = Application[Any, Any, Any, Any, Any, Any]


@dataclass(frozen=True)
class Built:
    """The PTB application with our handlers, and what the core will call."""

    application: TelegramApp
    delivery: TelegramDelivery  # the Delivery port
    jams: TelegramJamListener  # the JamListener port
    jam_messages: JamMessages  # stopped with the adapter


def build_application(settings: Settings, service: GenerationService) -> Built:
    """The PTB application with our handlers, and the ports the core will call."""
    if settings.telegram_token is None:
        raise ValueError("TELEGRAM_TOKEN is not set")
    base = settings.telegram_api_base_url
    # Tests shrink every interval; the same scale runs the flood windows and status pacing
    # so they match a test server's scaled clock (1.0 in production).
    scale = settings.poll_time_scale
    application = (
        ApplicationBuilder()
        .token(settings.telegram_token.get_secret_value())
        .base_url(f"{base}/bot")
        .base_file_url(f"{base}/file/bot")
        .local_mode(settings.telegram_local_mode)
        .rate_limiter(FloodGate(time_scale=scale))
        .defaults(
            Defaults(
                parse_mode=ParseMode.HTML,
                do_quote=True,
                allow_sending_without_reply=True,
                link_preview_options=LinkPreviewOptions(is_disabled=True),
            )
        )
        # A handler waiting out a flood pause must not hold up everyone else's commands.
        .concurrent_updates(True)
        .job_queue(None)
        .build()
    )
    delivery = TelegramDelivery(
        application.bot,
        StatusBoard(application.bot, time_scale=scale),
        local_mode=settings.telegram_local_mode,
        capabilities=lambda: service.capabilities,
        jam_take=service.jams.take_of,  # a jam's take gets a 🗳 vote button
    )
    admins = ChatAdmins(service, delivery)  # one admin-list cache for every handler
    jam_messages = JamMessages(application.bot, service.jams.get, time_scale=scale)
    announcer = JamAnnouncer(jam_messages)
    # Before the song handlers: their catch-all answers any button no one else took.
    JamCommands(service, admins, jam_messages, announcer).register(application)
    handlers = TelegramHandlers(service, delivery, admins, time_scale=scale)
    handlers.register(application)
    TelegramAdmin(service, admins).register(application)
    handlers.register_fallback(application)  # last: only what no one else handles
    listener = TelegramJamListener(application.bot, jam_messages, announcer)
    return Built(application, delivery, listener, jam_messages)


async def serve(settings: Settings, service: GenerationService, stop: asyncio.Event) -> None:
    """Poll Telegram and post tracks until ``stop`` is set; then shut down cleanly."""
    built = build_application(settings, service)
    application, delivery = built.application, built.delivery
    if not await _initialize(application, stop):
        return
    try:
        # Offered only where the engine can: its language model and edits are known by now
        # (acejam run asks the backend before the adapters start); the commands still
        # answer either way.
        await _register_commands(
            application,
            describes=service.capabilities.describes,
            edits=service.edits_offered,
        )
        await application.start()
        assert application.updater is not None  # the builder makes one by default
        await application.updater.start_polling(
            poll_interval=0.0,
            timeout=POLL_TIMEOUT,
            allowed_updates=[Update.MESSAGE, Update.CALLBACK_QUERY],
        )
        service.register_delivery(delivery)
        service.jams.register_listener(built.jams)
        logger.info("Telegram: polling as @%s", application.bot.username)
        await stop.wait()
    finally:
        if application.updater is not None and application.updater.running:
            await application.updater.stop()
        if application.running:
            await application.stop()
        await delivery.close()
        await built.jam_messages.close()
        await application.shutdown()
        logger.info("Telegram: stopped")


async def _initialize(application: TelegramApp, stop: asyncio.Event) -> bool:
    """``getMe`` until it works (Telegram may be briefly unreachable at start-up); False if
    ``stop`` came first. A wrong token is fatal: no retry fixes it."""
    delay = 1.0
    while True:
        try:
            await application.initialize()
            return True
        except InvalidToken:
            logger.error("Telegram rejected TELEGRAM_TOKEN")
            raise
        except NetworkError as error:
            logger.warning("Telegram unreachable (%s); retrying in %.0f s", error, delay)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), delay)
            return False
        delay = min(delay * 2, MAX_STARTUP_BACKOFF)


async def _register_commands(
    application: TelegramApp, *, describes: bool, edits: frozenset[Task]
) -> None:
    """The menu lists what this engine can do now (the commands answer either way)."""
    offered = {"describe"} if describes else set()
    offered |= {name for name, task in EDIT_COMMANDS.items() if task in edits}
    commands = [c for c in COMMANDS if c.command in offered or c.command not in OPTIONAL]
    try:
        await application.bot.set_my_commands(commands)
        # Admins see this list instead of the default one in groups, so it repeats it; the
        # menu only hides /admin from members, the command checks who calls it.
        await application.bot.set_my_commands(
            (*commands, ADMIN_COMMAND), scope=BotCommandScopeAllChatAdministrators()
        )
    except TelegramError as error:  # the commands still work; only the menu is missing
        logger.warning("Telegram: could not register the command list: %s", error)
