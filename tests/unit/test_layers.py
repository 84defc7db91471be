"""The import contracts (pyproject.toml, run by `lint-imports` in `make test`) name every
module of bot/: a new one can't slip past the dependency rules by being in no list."""

from __future__ import annotations

import pkgutil
import re
import tomllib
from pathlib import Path
from typing import cast

import bot

PYPROJECT = Path(__file__).resolve().parents[2] / "pyproject.toml"


def _contracts() -> dict[str, dict[str, object]]:
    config = tomllib.loads(PYPROJECT.read_text())["tool"]["importlinter"]
    return {contract["id"]: contract for contract in config["contracts"]}


def _layers() -> list[str]:
    return cast(list[str], _contracts()["layers"]["layers"])


def _modules(layer: str) -> set[str]:
    return {name.strip() for name in re.split(r"[|:]", layer)}


def test_every_module_of_bot_is_in_exactly_one_layer() -> None:
    layers = [_modules(layer) for layer in _layers()]
    named = [name for layer in layers for name in layer if name.startswith("bot.")]
    assert len(named) == len(set(named)), "a module is in two layers"
    modules = {f"bot.{m.name}" for m in pkgutil.iter_modules(bot.__path__)}
    assert modules == set(named)


def test_the_core_layer_and_the_core_contract_name_the_same_modules() -> None:
    contracts = _contracts()
    core = _modules(_layers()[-1])
    assert core == set(cast(list[str], contracts["core"]["source_modules"]))
