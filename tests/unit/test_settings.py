"""Settings are a contract: every one is documented, and errors name the setting."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from bot.config import Settings, load_settings
from bot.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]


def test_env_example_lists_every_setting_with_a_comment() -> None:
    text = (ROOT / ".env.example").read_text()
    documented = re.findall(r"^(?:# )?([A-Z][A-Z0-9_]+)=", text, flags=re.MULTILINE)
    assert sorted(documented) == sorted(name.upper() for name in Settings.model_fields)
    lines = text.splitlines()
    for index, line in enumerate(lines):
        if re.match(r"^[A-Z][A-Z0-9_]+=", line):
            assert lines[index - 1].startswith("#"), f"{line} has no comment above it"


def test_the_example_file_itself_loads(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".env").write_text((ROOT / ".env.example").read_text())
    settings = Settings()
    assert settings.backend_name == "acestep"  # no key in the example
    assert settings.monthly_budget_usd is None and settings.download_allowed_hosts == []
    assert settings.public_url is None  # an empty line: no jam board


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"MAX_DURATION": "lots"}, "Invalid setting MAX_DURATION"),
        ({"BACKEND": "wavespeed"}, "WAVESPEED_API_KEY is required when BACKEND=wavespeed"),
        ({"BACKEND": "suno"}, "Invalid setting BACKEND"),
        (
            {"ACESTEP_API_URL": "gpu-box:8001"},
            "Invalid setting ACESTEP_API_URL: must start with http",
        ),
        ({"PUBLIC_URL": "jams.example.org"}, "Invalid setting PUBLIC_URL: must start with http"),
    ],
)
def test_bad_settings_stop_with_one_line(
    env: dict[str, str], message: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError) as caught:
        load_settings()
    assert message in str(caught.value) and "\n" not in str(caught.value)


def test_secrets_never_print(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("WAVESPEED_API_KEY", "ws-secret-value-123")
    monkeypatch.setenv("TELEGRAM_TOKEN", "123:secret-telegram")
    settings = load_settings()
    assert "ws-secret-value-123" not in repr(settings) + str(settings.model_dump())
    assert settings.secrets() == ["ws-secret-value-123", "123:secret-telegram"]
