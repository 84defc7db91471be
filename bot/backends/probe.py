"""A look at a backend that costs nothing: is it there, does it take our key, what does it run.

Read-only requests only (never a submit): `acejam doctor` prints what they find, and the
bot's ``/readyz`` asks them when no job has talked to the backend lately.

- WaveSpeed: ``GET /api/v3/balance`` (authenticated, free) → ``data.balance`` in USD.
- ACE-Step: ``GET /health`` (never authenticated), then ``GET /v1/models`` (authenticated when
  the server has a key). Servers differ in what they say (docs/upstreams.md §2): the documented
  ``{"models": [{"name", "is_default"}], "default_model"}``, newer ones add ``lm_models``,
  ``loaded_lm_model`` and ``llm_initialized`` (``/health`` says the last two as well), and an
  OpenAI-style ``{"object": "list", "data": [{"id"}]}`` exists too. Each is read; what a
  server does not say is reported as unknown, never guessed. The edits it offers are its
  default model's ``supported_task_types`` (newer inventories; where ``/v1/models`` is the
  OpenAI-style list, ``GET /v1/model_inventory``), else a turbo model's, as the bot assumes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx

from bot.backends._http import error_text, json_or_none, scrub
from bot.backends.acestep_edits import offered_edits, task_types_from

WAVESPEED_KEYS_PAGE = "https://wavespeed.ai/accesskey"


@dataclass(frozen=True)
class Finding:
    """One thing checked: ``ok``, what was found, and (when not ok) what to do about it."""

    name: str
    ok: bool
    detail: str
    fix: str = ""


def _host(url: str) -> str:
    return urlsplit(url).netloc or url


def _unreachable(name: str, url: str, exc: httpx.HTTPError, setting: str, hint: str) -> Finding:
    reason = str(exc) or type(exc).__name__
    return Finding(name, False, f"cannot reach {url}: {reason}", f"check {setting} and that {hint}")


async def probe_wavespeed(http: httpx.AsyncClient, *, base_url: str, api_key: str) -> Finding:
    name = "WaveSpeed"
    url = f"{base_url}/api/v3/balance"
    try:
        response = await http.get(url, headers={"Authorization": f"Bearer {api_key}"})
    except httpx.HTTPError as exc:
        return _unreachable(name, base_url, exc, "WAVESPEED_BASE_URL", "this machine is online")
    payload = json_or_none(response)
    if response.status_code in (401, 403):
        reason = scrub(error_text(payload, response), api_key)
        return Finding(
            name,
            False,
            f"{_host(base_url)} refused the key (HTTP {response.status_code}: {reason})",
            f"copy a valid key from {WAVESPEED_KEYS_PAGE} into WAVESPEED_API_KEY",
        )
    data = payload.get("data") if isinstance(payload, dict) else None
    balance = data.get("balance") if isinstance(data, dict) else None
    if response.status_code != 200 or not isinstance(balance, int | float):
        reason = scrub(error_text(payload, response), api_key)[:200]
        return Finding(
            name,
            False,
            f"{_host(base_url)} answered HTTP {response.status_code}: {reason}",
            "check WAVESPEED_BASE_URL (it should be https://api.wavespeed.ai)",
        )
    if balance <= 0:
        return Finding(
            name,
            False,
            f"key accepted at {_host(base_url)}, but the balance is ${balance:.2f}",
            "top up the account at https://wavespeed.ai: every song would fail",
        )
    return Finding(name, True, f"key accepted at {_host(base_url)}, balance ${balance:.2f}")


@dataclass(frozen=True)
class AceStepModels:
    """What a server says it runs; None where it does not say."""

    models: tuple[str, ...]
    default: str | None
    lm_loaded: bool | None
    lm_model: str | None


def read_models(payload: Any, health: Any = None) -> AceStepModels:
    """The model inventory from any of the shapes servers send (see the module's docstring)."""
    data = payload.get("data") if isinstance(payload, dict) else None
    if isinstance(payload, dict) and payload.get("object") == "list":
        data = {"models": payload.get("data")}  # OpenAI-style, not in an envelope
    data = data if isinstance(data, dict) else {}
    entries = data.get("models")
    names: list[str] = []
    default = data.get("default_model") if isinstance(data.get("default_model"), str) else None
    for entry in entries if isinstance(entries, list) else []:
        if isinstance(entry, dict):
            name = entry.get("name") or entry.get("id")
            if isinstance(name, str):
                names.append(name)
                if default is None and entry.get("is_default") is True:
                    default = name
        elif isinstance(entry, str):
            names.append(entry)
    said = [data, health.get("data") if isinstance(health, dict) else None]
    lm_loaded: bool | None = None
    lm_model: str | None = None
    for source in said:
        if not isinstance(source, dict):
            continue
        if lm_loaded is None and isinstance(source.get("llm_initialized"), bool):
            lm_loaded = source["llm_initialized"]
        if lm_model is None and isinstance(source.get("loaded_lm_model"), str):
            lm_model = source["loaded_lm_model"]
    return AceStepModels(tuple(names), default, lm_loaded, lm_model)


async def probe_acestep(
    http: httpx.AsyncClient, *, base_url: str, api_key: str | None
) -> list[Finding]:
    """The server answers (``/health``), takes the key and lists its models (``/v1/models``),
    and whether its language model is loaded."""
    name = "ACE-Step server"
    try:
        health_response = await http.get(f"{base_url}/health")
    except httpx.HTTPError as exc:
        return [
            _unreachable(
                name, base_url, exc, "ACESTEP_API_URL", "the server runs (`uv run acestep-api`)"
            )
        ]
    health = json_or_none(health_response)
    if health_response.status_code != 200:
        reason = error_text(health, health_response)[:200]
        return [
            Finding(
                name,
                False,
                f"{base_url}/health answered HTTP {health_response.status_code}: {reason}",
                "check ACESTEP_API_URL points at an ACE-Step 1.5 API server",
            )
        ]
    found = [Finding(name, True, f"{_host(base_url)} answers /health")]
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    try:
        response = await http.get(f"{base_url}/v1/models", headers=headers)
    except httpx.HTTPError as exc:
        return [*found, _unreachable("ACE-Step models", base_url, exc, "ACESTEP_API_URL", "")]
    payload = json_or_none(response)
    if response.status_code == 401:
        what = "refused the key" if api_key else "wants a key"
        return [
            *found,
            Finding(
                "ACE-Step key",
                False,
                f"{_host(base_url)} {what} (HTTP 401)",
                "set ACESTEP_API_KEY to the server's ACESTEP_API_KEY",
            ),
        ]
    models = read_models(payload if response.status_code == 200 else None, health)
    if response.status_code == 200 and models.models:
        listed = ", ".join(models.models)
        default = f" (default {models.default})" if models.default else ""
        found.append(Finding("ACE-Step models", True, f"{listed}{default}"))
    else:
        found.append(
            Finding(
                "ACE-Step models",
                False,
                f"/v1/models answered HTTP {response.status_code} with no model",
                "start the server with a DiT model (ACESTEP_CONFIG_PATH) and check its log",
            )
        )
    found.append(_language_model(models))
    types = task_types_from(payload) if response.status_code == 200 else None
    if types is None:
        try:  # the OpenAI-style /v1/models hides the inventory newer servers also serve
            inventory = await http.get(f"{base_url}/v1/model_inventory", headers=headers)
        except httpx.HTTPError:
            inventory = None
        if inventory is not None and inventory.status_code == 200:
            types = task_types_from(json_or_none(inventory))
    found.append(_edits(types))
    return found


def _edits(task_types: frozenset[str] | None) -> Finding:
    """What /extend, /repaint and /remix can do here (information: edits are optional)."""
    offered = sorted(task.value for task in offered_edits(task_types))
    if task_types is None:
        said = "not reported by this server version: assuming a turbo model's"
        return Finding("ACE-Step edits", True, f"{', '.join(offered)} ({said})")
    if not offered:
        return Finding("ACE-Step edits", True, "none: its model does neither repaint nor cover")
    return Finding("ACE-Step edits", True, f"{', '.join(offered)} (its model's task types)")


def _language_model(models: AceStepModels) -> Finding:
    name = "ACE-Step language model"
    if models.lm_loaded is None:
        return Finding(name, True, "not reported by this server version")
    if models.lm_loaded:
        return Finding(name, True, f"loaded ({models.lm_model or 'name not reported'})")
    return Finding(
        name,
        False,
        "not loaded: songs that need it fail (older servers fail every song without it)",
        "restart the server with ACESTEP_INIT_LLM=true (and enough GPU memory for it)",
    )
