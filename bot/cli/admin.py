"""`acejam admin`: the operator's controls (quotas, blocks, queue, usage, a chat's settings).

Values are read by the core's grammar (`bot.admin_grammar`), the one the chat admins'
/admin uses in Discord and Telegram: what works there works here, and the other way round."""

from __future__ import annotations

import getpass
from collections.abc import Awaitable, Callable
from typing import Annotated, TypeVar

import typer
from rich.table import Table

from bot import admin_grammar as grammar
from bot.admin import AdminService
from bot.app import open_core
from bot.cli.common import admin_app, console, err_console, load, run_async
from bot.config import Settings
from bot.domain import EVERYWHERE, LOCAL_PLATFORM, ChatRules
from bot.service import Done, Refused, Requester

T = TypeVar("T")

Platform = Annotated[str, typer.Option("--platform", help="telegram or discord.")]
Scope = Annotated[
    str, typer.Option("--scope", help="Guild id (Discord) or chat id (Telegram); * = everywhere.")
]


def _with_admin(settings: Settings, action: Callable[[AdminService], Awaitable[T]]) -> T:
    async def _run() -> T:
        async with open_core(settings) as core:
            return await action(core.admin)

    return run_async(_run())


@admin_app.command("quota")
def admin_quota(
    platform: Platform,
    user: Annotated[str, typer.Option("--user", help="The user's platform id.")],
    value: Annotated[
        str,
        typer.Argument(
            help="Seconds a day: 600, 600s, 10m, 1h or 10:00; unlimited; or default (back to "
            "the chat's quota). As in the chats' /admin."
        ),
    ],
    scope: Scope = EVERYWHERE,
) -> None:
    """Set one user's daily quota (in one chat, or everywhere)."""
    settings = load()
    seconds = _parsed(grammar.parse_quota, value)
    _with_admin(settings, lambda admin: admin.set_user_quota(platform, user, scope, seconds))
    console.print(
        f"{platform} user {user}: quota {value} ({'everywhere' if scope == EVERYWHERE else scope})"
    )


@admin_app.command("block")
def admin_block(
    platform: Platform,
    user: Annotated[str, typer.Option("--user", help="The user's platform id.")],
    scope: Scope = EVERYWHERE,
    note: Annotated[str | None, typer.Option(help="Why (kept for other admins).")] = None,
) -> None:
    """Stop a user from making songs."""
    settings = load()
    _with_admin(settings, lambda admin: admin.set_blocked(platform, user, scope, True, note))
    console.print(f"{platform} user {user} is blocked")


@admin_app.command("unblock")
def admin_unblock(
    platform: Platform,
    user: Annotated[str, typer.Option("--user", help="The user's platform id.")],
    scope: Scope = EVERYWHERE,
) -> None:
    """Let a blocked user make songs again."""
    settings = load()
    _with_admin(settings, lambda admin: admin.set_blocked(platform, user, scope, False))
    console.print(f"{platform} user {user} is unblocked")


@admin_app.command("queue")
def admin_queue(
    platform: Annotated[str | None, typer.Option(help="Only this platform.")] = None,
    scope: Annotated[str | None, typer.Option(help="Only this guild/chat.")] = None,
) -> None:
    """Every unfinished job, in the order they will be served."""
    settings = load()
    entries = _with_admin(settings, lambda admin: admin.queue(platform, scope))
    table = Table("id", "position", "state", "platform", "scope", "user", "duration", "tags")
    for entry in entries:
        job = entry.job
        table.add_row(
            str(job.id),
            str(entry.position or "-"),
            job.state.value,
            job.destination.platform,
            job.destination.scope,
            job.destination.user_id,
            f"{job.request.duration} s",
            job.request.tags[:40],
        )
    console.print(table)


@admin_app.command("cancel")
def admin_cancel(job_id: Annotated[int, typer.Argument(help="The job to cancel.")]) -> None:
    """Cancel any job; its owner gets the quota back."""
    settings = load()
    operator = Requester(LOCAL_PLATFORM, getpass.getuser(), is_admin=True)

    async def _cancel(admin: AdminService) -> Done | Refused:
        job = await admin.job(job_id)
        if job is None:
            return Refused("No such job.", "not_found")
        as_admin = Requester(
            job.destination.platform, operator.user_id, is_admin=True, admin_scope=EVERYWHERE
        )
        return await admin.cancel(job_id, as_admin)

    outcome = _with_admin(settings, _cancel)
    if isinstance(outcome, Refused):
        err_console.print(outcome.message)
        raise typer.Exit(1)
    console.print(f"job {job_id} cancelled")


@admin_app.command("usage")
def admin_usage(
    days: Annotated[int, typer.Option(help="How many days back.")] = 30,
    platform: Annotated[str | None, typer.Option(help="Only this platform.")] = None,
    scope: Annotated[str | None, typer.Option(help="Only this guild/chat.")] = None,
) -> None:
    """Per user: jobs, seconds of audio, cost and GPU time."""
    settings = load()
    rows = _with_admin(
        settings, lambda admin: admin.usage(days=days, platform=platform, scope_id=scope)
    )
    table = Table("platform", "user", "name", "jobs", "seconds", "cost (USD)", "GPU s", "last job")
    for row in rows:
        table.add_row(
            row.platform,
            row.user_id,
            row.display_name or "",
            str(row.jobs),
            str(row.seconds),
            f"{row.cost_usd:.4f}",
            f"{row.gpu_seconds:.1f}",
            row.last_job_at.strftime("%Y-%m-%d %H:%M") if row.last_job_at else "",
        )
    console.print(table)


@admin_app.command("settings")
def admin_settings(
    platform: Platform,
    scope: Scope,
    changes: Annotated[
        list[str] | None,
        typer.Argument(
            help="name=value pairs, e.g. max_duration=120 blocked_words=a,b "
            "quota_seconds_per_day=10m role_quotas=admins:1h,vip:unlimited allow_nsfw=on. "
            "Quotas: seconds (600, 10m, 1h, 10:00), unlimited or default; lengths: seconds "
            "(90, 1:30) or default; songs at once: a number or default; budget: dollars or "
            "none; switches: on or off (own_audio: on, off or default, which is on in direct "
            "messages and off in groups); lists: comma-separated (empty clears); role_quotas: "
            "role:quota pairs split by commas (role=quota;... works too), empty clears."
        ),
    ] = None,
) -> None:
    """Show a guild's/chat's settings, or change some (name=value ...)."""
    settings = load()
    parsed = dict(_parsed(grammar.parse_setting, item) for item in changes or [])

    async def _apply(admin: AdminService) -> ChatRules:
        if parsed:
            return await admin.update_chat_rules(platform, scope, **parsed)
        return await admin.chat_rules(platform, scope)

    try:
        rules = _with_admin(settings, _apply)
    except ValueError as exc:
        err_console.print(str(exc))
        raise typer.Exit(2) from None
    for name, value in vars(rules).items():
        shown = grammar.own_audio_word(value) if name == "own_audio" else value
        console.print(f"{name} = {shown}")


def _parsed(parse: Callable[[str], T], value: str) -> T:
    """``value`` read by the admin grammar, or its sentence and exit 2."""
    try:
        return parse(value)
    except grammar.BadValue as exc:
        err_console.print(str(exc), markup=False, highlight=False)
        raise typer.Exit(2) from None
