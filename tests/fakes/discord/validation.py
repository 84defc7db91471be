"""Discord's form checks (400/50035 "Invalid Form Body" and friends) for messages, modals and
application commands, and what a user can type into a modal."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from tests.fakes.discord.protocol import (
    IS_COMPONENTS_V2,
    FakeDiscordError,
    FormErrors,
    Json,
    api_error,
)
from tests.fakes.discord.records import UploadedFile


def require_not_empty(payload: Json, files: Sequence[UploadedFile]) -> None:
    if not (
        payload.get("content")
        or payload.get("embeds")
        or files
        or payload.get("attachments")
        or payload.get("components")
        or payload.get("sticker_ids")
        or payload.get("poll")
    ):
        raise api_error("empty_message")


def validate_message(
    payload: Json, files: Sequence[UploadedFile], errors: FormErrors, prefix: list[str | int]
) -> None:
    content = payload.get("content")
    if content is not None:
        errors.max_len([*prefix, "content"], str(content), 2000)
    embeds = payload.get("embeds") or []
    errors.max_len([*prefix, "embeds"], embeds, 10)
    total = 0
    for i, embed in enumerate(embeds):
        total += _validate_embed(embed, errors, [*prefix, "embeds", i])
    if total > 6000:
        errors.add(
            [*prefix, "embeds"],
            "MAX_EMBED_SIZE_EXCEEDED",
            "Embed size exceeds maximum size of 6000",
        )
    flags = int(payload.get("flags") or 0)
    components = payload.get("components") or []
    if flags & IS_COMPONENTS_V2:
        if content or embeds:
            errors.add(
                [*prefix, "content" if content else "embeds"],
                "MESSAGE_CANNOT_USE_LEGACY_FIELDS_WITH_COMPONENTS_V2",
                "The 'content' and 'embeds' fields cannot be used when using "
                "MessageFlags.IS_COMPONENTS_V2",
            )
        count = sum(1 for _ in _iter_all(components))
        if count > 40:
            errors.add(
                [*prefix, "components"], "BASE_TYPE_MAX_LENGTH", "Must be 40 or fewer in length."
            )
    else:
        errors.max_len([*prefix, "components"], components, 5)
        for i, row in enumerate(components):
            path = [*prefix, "components", i]
            if row.get("type") != 1:
                errors.add(
                    [*path, "type"],
                    "UNION_TYPE_CHOICES",
                    'Value of field "type" must be one of (1,).',
                )
                continue
            kids = row.get("components") or []
            if not kids:
                errors.add(
                    [*path, "components"], "BASE_TYPE_MIN_LENGTH", "Must be 1 or more in length."
                )
            errors.max_len([*path, "components"], kids, 5)
            if any(k.get("type") != 2 for k in kids) and len(kids) > 1:
                errors.add(
                    [*path, "components"],
                    "COMPONENT_LAYOUT_WIDTH_EXCEEDED",
                    "The specified component exceeds the maximum width",
                )
    seen: set[str] = set()
    for c, path in _iter_all(components, [*prefix, "components"]):
        _validate_leaf(c, errors, path, seen)
    attachments = payload.get("attachments") or []
    if len(attachments) > 10 or len(files) > 10:
        errors.add(
            [*prefix, "attachments"], "BASE_TYPE_MAX_LENGTH", "Must be 10 or fewer in length."
        )


def _iter_all(
    components: Iterable[Json], path: list[str | int] | None = None
) -> Iterator[tuple[Json, list[str | int]]]:
    """Every component, nested ones included, with its path for error reports."""
    base: list[str | int] = path if path is not None else ["components"]
    for i, c in enumerate(components):
        yield from _iter_one(c, [*base, i])


def _iter_one(c: Json, here: list[str | int]) -> Iterator[tuple[Json, list[str | int]]]:
    yield c, here
    if isinstance(c.get("components"), list):
        yield from _iter_all(c["components"], [*here, "components"])
    for key in ("component", "accessory"):
        if isinstance(c.get(key), dict):
            yield from _iter_one(c[key], [*here, key])


def _validate_leaf(c: Json, errors: FormErrors, path: list[str | int], seen: set[str]) -> None:
    kind = c.get("type")
    custom_id = c.get("custom_id")
    if kind == 2:
        errors.max_len([*path, "label"], c.get("label"), 80)
        if c.get("style") == 5:
            if not c.get("url") or custom_id:
                errors.add(
                    [*path, "url"],
                    "BUTTON_COMPONENT_URL_REQUIRED",
                    "A url is required (and custom_id not allowed) for link buttons",
                )
            return
        if c.get("style") == 6:
            return
    if kind in (2, 3, 4, 5, 6, 7, 8):
        if not custom_id:
            errors.add([*path, "custom_id"], "BASE_TYPE_REQUIRED", "This field is required")
            return
        errors.max_len([*path, "custom_id"], custom_id, 100)
        if custom_id in seen:
            errors.add(
                [*path, "custom_id"],
                "COMPONENT_CUSTOM_ID_DUPLICATED",
                "Component custom id cannot be duplicated",
            )
        seen.add(custom_id)
    if kind == 3:
        errors.max_len([*path, "options"], c.get("options") or [], 25)


def _validate_embed(embed: Json, errors: FormErrors, path: list[str | int]) -> int:
    """Validate one embed's limits; return its size as Discord counts it."""
    size = 0
    for key, limit in (("title", 256), ("description", 4096)):
        value = embed.get(key)
        if value:
            errors.max_len([*path, key], value, limit)
            size += len(value)
    fields = embed.get("fields") or []
    errors.max_len([*path, "fields"], fields, 25)
    for i, f in enumerate(fields):
        errors.max_len([*path, "fields", i, "name"], f.get("name") or "", 256)
        errors.max_len([*path, "fields", i, "value"], f.get("value") or "", 1024)
        size += len(f.get("name") or "") + len(f.get("value") or "")
    footer = (embed.get("footer") or {}).get("text")
    if footer:
        errors.max_len([*path, "footer", "text"], footer, 2048)
        size += len(footer)
    author = (embed.get("author") or {}).get("name")
    if author:
        errors.max_len([*path, "author", "name"], author, 256)
        size += len(author)
    return size


def validate_modal(data: Json, errors: FormErrors, prefix: list[str | int]) -> None:
    title = data.get("title") or ""
    if not 1 <= len(title) <= 45:
        errors.add(
            [*prefix, "title"], "BASE_TYPE_BAD_LENGTH", "Must be between 1 and 45 in length."
        )
    custom_id = data.get("custom_id") or ""
    if not 1 <= len(custom_id) <= 100:
        errors.add(
            [*prefix, "custom_id"], "BASE_TYPE_BAD_LENGTH", "Must be between 1 and 100 in length."
        )
    components = data.get("components") or []
    if not 1 <= len(components) <= 5:
        errors.add(
            [*prefix, "components"], "BASE_TYPE_BAD_LENGTH", "Must be between 1 and 5 in length."
        )
    for i, top in enumerate(components):
        path = [*prefix, "components", i]
        if top.get("type") == 1:
            kids = top.get("components") or []
            if len(kids) != 1 or kids[0].get("type") != 4:
                errors.add(
                    path,
                    "COMPONENT_LAYOUT_WIDTH_EXCEEDED",
                    "A modal action row holds exactly one text input",
                )
                continue
            _validate_text_input(kids[0], errors, [*path, "components", 0], in_row=True)
        elif top.get("type") == 18:
            errors.max_len([*path, "label"], top.get("label") or "", 45)
            inner = top.get("component") or {}
            if inner.get("type") == 4:
                _validate_text_input(inner, errors, [*path, "component"], in_row=False)
        elif top.get("type") != 10:
            errors.add([*path, "type"], "UNION_TYPE_CHOICES", "Invalid modal component type")


def _validate_text_input(
    c: Json, errors: FormErrors, path: list[str | int], *, in_row: bool
) -> None:
    if not c.get("custom_id"):
        errors.add([*path, "custom_id"], "BASE_TYPE_REQUIRED", "This field is required")
    if c.get("style") not in (1, 2):
        errors.add([*path, "style"], "BASE_TYPE_CHOICES", "Value must be one of {1, 2}.")
    if in_row:
        label = c.get("label") or ""
        if not 1 <= len(label) <= 45:
            errors.add(
                [*path, "label"], "BASE_TYPE_BAD_LENGTH", "Must be between 1 and 45 in length."
            )
    lo, hi = c.get("min_length"), c.get("max_length")
    if lo is not None and not 0 <= lo <= 4000:
        errors.add([*path, "min_length"], "NUMBER_TYPE_MAX", "int value should be <= 4000.")
    if hi is not None and not 1 <= hi <= 4000:
        errors.add([*path, "max_length"], "NUMBER_TYPE_MAX", "int value should be <= 4000.")
    errors.max_len([*path, "value"], c.get("value"), 4000)
    errors.max_len([*path, "placeholder"], c.get("placeholder"), 100)


def modal_submission(components: list[Json], values: dict[str, str]) -> list[Json]:
    """Mirror the modal's layout with what the user typed, checking what the UI would.
    Pops used entries from ``values`` so the caller can spot unknown ones."""
    out: list[Json] = []
    for top in components:
        if top.get("type") == 1:
            out.append(
                {
                    "type": 1,
                    "components": [
                        _submitted_input(c, values) for c in top.get("components") or []
                    ],
                }
            )
        elif top.get("type") == 18 and isinstance(top.get("component"), dict):
            item: Json = {"type": 18, "component": _submitted_input(top["component"], values)}
            if "id" in top:
                item["id"] = top["id"]
            out.append(item)
    return out


def _submitted_input(c: Json, values: dict[str, str]) -> Json:
    cid = c.get("custom_id", "")
    if c.get("type") != 4:
        picked: Any = values.pop(cid, [])
        return {"type": c.get("type"), "custom_id": cid, "values": list(picked)}
    value = values.pop(cid, c.get("value") or "")
    required = c.get("required", True)
    label = c.get("label") or cid
    if required and not value:
        raise FakeDiscordError(f"modal field {label!r} ({cid}) is required")
    if value:
        lo, hi = c.get("min_length", 0), c.get("max_length", 4000)
        if not lo <= len(value) <= hi:
            raise FakeDiscordError(
                f"modal field {label!r} takes {lo}..{hi} characters, got {len(value)}"
            )
    out: Json = {"type": 4, "custom_id": cid, "value": value}
    if "id" in c:
        out["id"] = c["id"]
    return out


def validate_command(cmd: Json, errors: FormErrors, path: list[str | int]) -> None:
    name = cmd.get("name") or ""
    kind = cmd.get("type", 1)
    if kind == 1:
        if not re.fullmatch(r"[-_\w]{1,32}", name) or name != name.lower():
            errors.add(
                [*path, "name"], "APPLICATION_COMMAND_INVALID_NAME", "Command name is invalid"
            )
        description = cmd.get("description") or ""
        if not 1 <= len(description) <= 100:
            errors.add(
                [*path, "description"],
                "BASE_TYPE_BAD_LENGTH",
                "Must be between 1 and 100 in length.",
            )
        _validate_options(cmd.get("options") or [], errors, [*path, "options"])
    elif not 1 <= len(name) <= 32:
        errors.add([*path, "name"], "BASE_TYPE_BAD_LENGTH", "Must be between 1 and 32 in length.")


def _validate_options(options: list[Json], errors: FormErrors, path: list[str | int]) -> None:
    errors.max_len(path, options, 25)
    seen_optional = False
    names: set[str] = set()
    for i, o in enumerate(options):
        p = [*path, i]
        name = o.get("name") or ""
        if not re.fullmatch(r"[-_\w]{1,32}", name) or name != name.lower():
            errors.add([*p, "name"], "APPLICATION_COMMAND_INVALID_NAME", "Command name is invalid")
        if name in names:
            errors.add(
                [*p, "name"],
                "APPLICATION_COMMAND_OPTIONS_NAME_ALREADY_EXISTS",
                "Option names must be unique",
            )
        names.add(name)
        description = o.get("description") or ""
        if not 1 <= len(description) <= 100:
            errors.add(
                [*p, "description"], "BASE_TYPE_BAD_LENGTH", "Must be between 1 and 100 in length."
            )
        if o.get("type") in (1, 2):
            _validate_options(o.get("options") or [], errors, [*p, "options"])
            continue
        if o.get("required"):
            if seen_optional:
                errors.add(
                    [*p, "required"],
                    "APPLICATION_COMMAND_OPTIONS_REQUIRED_INVALID",
                    "Required options must be placed before non-required options",
                )
        else:
            seen_optional = True
        errors.max_len([*p, "choices"], o.get("choices") or [], 25)
        if o.get("choices") and o.get("autocomplete"):
            errors.add(
                [*p, "autocomplete"],
                "AUTOCOMPLETE_CHOICES_CONFLICT",
                "Autocomplete cannot be enabled with choices",
            )
