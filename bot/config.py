"""All settings, in one pydantic-settings class read from the environment and `.env`.

The environment names (``BACKEND``, ``WAVESPEED_API_KEY``, ...) are a contract with operators:
add new ones, never rename. Secrets are ``SecretStr`` so they never print.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from bot.errors import ConfigError

BackendName = Literal["wavespeed", "acestep"]


@dataclass(frozen=True)
class AceStepServer:
    """One server of ACESTEP_API_URL, with its own key and concurrency."""

    url: str
    api_key: str | None
    max_concurrency: int


def _split_commas(value: object) -> object:
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_file=".env", env_file_encoding="utf-8", extra="ignore", case_sensitive=False
    )

    # Which generation service runs the songs; resolved in `_pick_backend`.
    backend: BackendName | None = None

    wavespeed_api_key: SecretStr | None = None
    wavespeed_base_url: str = "https://api.wavespeed.ai"
    wavespeed_model: str = "wavespeed-ai/ace-step-1.5"
    wavespeed_max_concurrency: int = Field(default=2, ge=1, le=1000)
    # Public URL WaveSpeed posts finished predictions to, and where we listen for it.
    wavespeed_webhook_url: str | None = None
    wavespeed_webhook_listen: str = "0.0.0.0:8080"
    # The bot's HTTP listener (/healthz, /readyz, and the webhooks when set); None: only
    # when the webhooks are set, on WAVESPEED_WEBHOOK_LISTEN.
    web_listen: str | None = None
    # Where people reach the bot's listener from the internet (https://jams.example.org):
    # the jam board's links start with it; None: no jam board (docs/jamboard.md).
    public_url: str | None = None

    # One ACE-Step API server, or a pool of them, comma-separated: each job goes to the one
    # that will finish it soonest (docs/operations.md, "A pool of ACE-Step servers").
    acestep_api_url: str = "http://127.0.0.1:8001"
    acestep_api_key: SecretStr | None = None
    # A pool's keys, comma-separated in ACESTEP_API_URL's order (one for all, or one per
    # server, empty for a server without one); unset: ACESTEP_API_KEY for every server.
    acestep_api_keys: SecretStr | None = None
    # Jobs in flight at once on each server: one number for all, or one per server.
    acestep_max_concurrency: Annotated[list[int], NoDecode] = Field(default_factory=lambda: [1])
    # A pool's server that refuses connections this long has died: its jobs go to another.
    acestep_failover_seconds: float = Field(default=60.0, gt=0)

    data_dir: Path = Path("./data")
    database_url: str | None = None
    download_allowed_hosts: Annotated[list[str], NoDecode] = Field(default_factory=list)
    max_download_mb: int = Field(default=200, ge=1)
    # A whole download (all bytes, every redirect) must finish within this many seconds.
    download_timeout_seconds: float = Field(default=300.0, gt=0)

    max_duration: int = Field(default=240, ge=5, le=600)
    # The longest an edit's result may be: an extended track, and the tracks edits start from.
    max_extended_duration: int = Field(default=600, ge=5, le=3600)
    # Versions of a song one request may ask for (each counts against quota and cost).
    max_takes: int = Field(default=4, ge=1, le=8)
    quota_seconds_per_day: int = Field(default=600, ge=0)
    max_active_jobs_per_user: int = Field(default=2, ge=1)
    max_active_jobs_per_chat: int = Field(default=10, ge=1)
    # Cost accounting and budgets (WaveSpeed bills per second of audio).
    wavespeed_price_per_second: float = Field(default=0.0003, ge=0)
    # WaveSpeed's ACE-Step edit models offered (extend, repaint, remix), comma-separated;
    # empty: no edits on WaveSpeed. Each is priced per second it generates, by its own setting.
    wavespeed_edit_models: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: [
            "wavespeed-ai/ace-step/audio-outpaint",
            "wavespeed-ai/ace-step/audio-inpaint",
            "wavespeed-ai/ace-step/audio-to-audio",
        ]
    )
    wavespeed_outpaint_price_per_second: float = Field(default=0.0002, ge=0)
    wavespeed_inpaint_price_per_second: float = Field(default=0.0002, ge=0)
    wavespeed_audio_to_audio_price_per_second: float = Field(default=0.0002, ge=0)
    monthly_budget_usd: float | None = Field(default=None, ge=0)
    # Words refused in tags and lyrics everywhere, comma-separated (chats add their own).
    blocked_words: Annotated[list[str], NoDecode] = Field(default_factory=list)

    # How long an upstream task may take before we give up on it (the ACE-Step server
    # answers "queued" forever for ids it forgot after a restart).
    job_timeout_seconds: float = Field(default=1800, gt=0)
    # Worker leases: a dead process's jobs are taken over once its lease runs out.
    lease_seconds: float = Field(default=30.0, gt=0)
    http_timeout_seconds: float = Field(default=30.0, gt=0)
    # Multiplies the bot's poll intervals; only tests and benchmarks change it.
    poll_time_scale: float = Field(default=1.0, gt=0, le=1.0)

    discord_token: SecretStr | None = None
    discord_api_base_url: str = "https://discord.com/api/v10"
    discord_guild_ids: Annotated[list[int], NoDecode] = Field(default_factory=list)
    # Sharding: None asks Discord for its recommended count (GET /gateway/bot).
    discord_shard_count: int | None = Field(default=None, ge=1)
    # The shards this process runs (others run elsewhere); empty: all of them.
    discord_shard_ids: Annotated[list[int], NoDecode] = Field(default_factory=list)

    telegram_token: SecretStr | None = None
    telegram_api_base_url: str = "https://api.telegram.org"
    telegram_local_mode: bool = False

    # `acejam doctor` fails below this much free space where DATA_DIR is (songs, database).
    min_free_disk_mb: int = Field(default=1024, ge=0)
    audio_retention_days: int = Field(default=30, ge=1)
    # Days to keep the job event feed (progress, notices); jobs and the ledger are kept.
    event_retention_days: int = Field(default=30, ge=1)
    log_level: str = "INFO"
    # text: lines for people; json: one object per line for log shippers (docs/operations.md).
    log_format: Literal["text", "json"] = "text"

    @field_validator("download_allowed_hosts", mode="before")
    @classmethod
    def _hosts(cls, value: object) -> object:
        hosts = _split_commas(value)
        return [h.lower() for h in hosts] if isinstance(hosts, list) else hosts

    @field_validator("blocked_words", "wavespeed_edit_models", mode="before")
    @classmethod
    def _words(cls, value: object) -> object:
        return _split_commas(value)

    @field_validator("discord_guild_ids", mode="before")
    @classmethod
    def _guilds(cls, value: object) -> object:
        return _split_commas(value)

    @field_validator("discord_shard_ids", mode="before")
    @classmethod
    def _shard_ids(cls, value: object) -> object:
        return _split_commas(value)

    @field_validator("wavespeed_base_url", "discord_api_base_url", "telegram_api_base_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value.rstrip("/")

    @field_validator("acestep_api_url")
    @classmethod
    def _http_urls(cls, value: str) -> str:
        urls = [cls._http_url(url.strip()) for url in value.split(",") if url.strip()]
        if not urls:
            raise ValueError("must name a server, e.g. http://127.0.0.1:8001")
        if len(set(urls)) != len(urls):
            raise ValueError("names a server twice")
        return ",".join(urls)

    @field_validator("acestep_max_concurrency", mode="before")
    @classmethod
    def _concurrencies(cls, value: object) -> object:
        return [value] if isinstance(value, int) else _split_commas(value)

    @field_validator("acestep_max_concurrency")
    @classmethod
    def _concurrency_range(cls, value: list[int]) -> list[int]:
        if not value or not all(1 <= each <= 100 for each in value):
            raise ValueError("each must be 1..100")
        return value

    @field_validator("public_url")
    @classmethod
    def _public_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://, e.g. https://jams.example.org")
        return value.rstrip("/")

    @field_validator(
        "wavespeed_api_key",
        "acestep_api_key",
        "acestep_api_keys",
        "discord_token",
        "telegram_token",
    )
    @classmethod
    def _blank_is_unset(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not value.get_secret_value().strip():
            return None
        return value

    @field_validator("wavespeed_webhook_listen", "web_listen")
    @classmethod
    def _listen(cls, value: str | None) -> str | None:
        if value is None:
            return None
        _host, sep, port = value.rpartition(":")
        if not sep or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError("must be host:port, e.g. 0.0.0.0:8080")
        return value

    @field_validator(
        "monthly_budget_usd",
        "database_url",
        "backend",
        "wavespeed_webhook_url",
        "discord_shard_count",
        "web_listen",
        "public_url",
        mode="before",
    )
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        # `.env.example` lists every name; an empty line there means "not set".
        return None if isinstance(value, str) and not value.strip() else value

    @model_validator(mode="after")
    def _check_shards(self) -> Settings:
        ids = self.discord_shard_ids
        if not ids:
            return self
        count = self.discord_shard_count
        if count is None:
            raise ValueError("DISCORD_SHARD_IDS needs DISCORD_SHARD_COUNT (the total) to be set")
        if len(set(ids)) != len(ids) or not all(0 <= i < count for i in ids):
            raise ValueError(
                f"DISCORD_SHARD_IDS must be distinct numbers from 0 to {count - 1} "
                "(DISCORD_SHARD_COUNT - 1)"
            )
        return self

    @model_validator(mode="after")
    def _check_pool(self) -> Settings:
        servers = len(self.acestep_urls)
        for name, count in (
            ("ACESTEP_API_KEYS", len(self._acestep_keys_given())),
            ("ACESTEP_MAX_CONCURRENCY", len(self.acestep_max_concurrency)),
        ):
            if count not in (0, 1, servers):
                raise ValueError(
                    f"{name} names {count} values for {servers} servers in ACESTEP_API_URL "
                    "(give one for all, or one per server)"
                )
        return self

    @model_validator(mode="after")
    def _pick_backend(self) -> Settings:
        if self.backend is None:
            self.backend = "wavespeed" if self.wavespeed_api_key else "acestep"
        if self.backend == "wavespeed" and self.wavespeed_api_key is None:
            raise ValueError("WAVESPEED_API_KEY is required when BACKEND=wavespeed")
        return self

    @property
    def backend_name(self) -> BackendName:
        assert self.backend is not None  # resolved by _pick_backend
        return self.backend

    @property
    def acestep_urls(self) -> list[str]:
        """ACESTEP_API_URL's servers, in order (one for a single server)."""
        return self.acestep_api_url.split(",")

    @property
    def acestep_servers(self) -> list[AceStepServer]:
        """Each ACE-Step server with its key and concurrency (a value given once: for all)."""
        urls = self.acestep_urls
        keys = self._acestep_keys_given()
        if not keys:
            common = self.acestep_api_key.get_secret_value() if self.acestep_api_key else None
            keys = [common] * len(urls)
        limits = self.acestep_max_concurrency
        return [
            AceStepServer(
                url=url,
                api_key=keys[0 if len(keys) == 1 else i] or None,
                max_concurrency=limits[0 if len(limits) == 1 else i],
            )
            for i, url in enumerate(urls)
        ]

    def _acestep_keys_given(self) -> list[str | None]:
        if self.acestep_api_keys is None:
            return []
        return [
            part.strip() or None for part in self.acestep_api_keys.get_secret_value().split(",")
        ]

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{(self.data_dir / 'acejam.db').resolve()}"

    @property
    def audio_dir(self) -> Path:
        return self.data_dir / "audio"

    def secrets(self) -> list[str]:
        """Every configured secret value, for log redaction."""
        values = [
            self.wavespeed_api_key,
            self.acestep_api_key,
            self.discord_token,
            self.telegram_token,
        ]
        found = [v.get_secret_value() for v in values if v is not None]
        return found + [key for key in self._acestep_keys_given() if key]


def load_settings(**overrides: object) -> Settings:
    """Read the settings, turning a validation error into one line naming the setting."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        error = exc.errors()[0]
        name = "_".join(str(p) for p in error.get("loc", ()) if p != "__root__").upper()
        reason = str(error.get("msg", "invalid")).removeprefix("Value error, ")
        if name:
            raise ConfigError(f"Invalid setting {name}: {reason}") from None
        raise ConfigError(f"Invalid settings: {reason}") from None
