"""Runtime settings: one class, read from FXDESK_* environment variables and an optional .env."""

from __future__ import annotations

import ipaddress
import json
import secrets
from functools import cached_property
from ipaddress import IPv4Network, IPv6Network
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from fxdesk.auth.origins import normalize_origin

SECRET_FILE_NAME = "secret_key"  # noqa: S105  (a file name, not a secret)
MIN_SECRET_LENGTH = 32
PLACEHOLDER_SECRETS = frozenset(
    {"changeme", "change-me", "secret", "please-change-me", "your-secret-key", "dev", "test"}
)


class ConfigError(RuntimeError):
    """A setting makes it unsafe or impossible to start; the message says what to fix."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="FXDESK_", env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )

    environment: Literal["development", "production"] = "development"
    data_dir: Path = Path("./data")
    database_url: str | None = None
    # Per instance; on PostgreSQL, instances x (size + overflow) must stay below max_connections.
    # Overflow connections are opened for one checkout and closed after it (on PostgreSQL a new
    # server process each time), so the pool itself holds what a busy instance uses at once.
    database_pool_size: int = Field(default=20, ge=1, le=200)
    database_max_overflow: int = Field(default=5, ge=0, le=200)
    nats_url: str | None = None  # comma-separated seed URLs; unset = embedded nats-server
    nats_creds_file: Path | None = None
    nats_token: str | None = Field(default=None, repr=False)
    nats_user: str | None = None
    nats_password: str | None = Field(default=None, repr=False)
    nats_tls_ca_file: Path | None = None
    nats_tls_cert_file: Path | None = None
    nats_tls_key_file: Path | None = None
    nats_stream: str = "FXDESK"
    nats_stream_max_age_seconds: int = Field(default=7200, ge=3600)
    nats_stream_max_bytes: int = Field(default=1_073_741_824, ge=1_048_576)
    nats_stream_duplicate_window_seconds: int = Field(default=600, ge=1)
    # Copies of the stream in a cluster; only ever raised on an existing stream, never lowered.
    nats_stream_replicas: int = Field(default=1, ge=1, le=5)
    secret_key: str | None = Field(default=None, repr=False)
    cbr_base_url: str = "https://www.cbr.ru/scripts/"
    cbr_mirror_url: str = "https://www.cbr-xml-daily.ru/"
    rates_poll_seconds: int = Field(default=600, ge=10)
    # The origin fxdesk is served at (`https://fx.example.com`); unset: the address it listens on.
    public_url: str | None = None
    allowed_origins: list[str] = Field(default_factory=list)  # other pages allowed to call in
    # Host header values answered besides the public URL's host and loopback (`*.example.com`).
    allowed_hosts: list[str] = Field(default_factory=list)
    cookie_secure: bool = True
    apilayer_api_key: str | None = Field(default=None, repr=False)
    apilayer_base_url: str = "https://api.apilayer.com/exchangerates_data"
    # Off: no automatic polling (tests, or an instance that must never call out); fetches then
    # happen only through POST /api/v1/rates/refresh, /tasks/run or `fxdesk rates fetch`.
    rates_autostart: bool = True
    rates_poll_jitter_seconds: float = Field(default=30.0, ge=0)
    cbr_timeout_seconds: float = Field(default=15.0, gt=0, le=120)
    cbr_retries: int = Field(default=3, ge=0, le=10)
    cbr_backoff_seconds: float = Field(default=0.5, ge=0, le=60)
    log_level: str = "INFO"
    log_format: Literal["console", "json"] = "console"
    log_file: bool = False
    demo: bool = False

    session_lifetime_seconds: int = Field(default=86_400, ge=60)
    jwt_audience: str = "fxdesk"
    # Failed logins per window: the strict limit counts one account from one client address;
    # the other two are ceilings over all addresses of one account and all accounts of one
    # address.
    login_max_failures_per_account: int = Field(default=5, ge=1)
    login_max_failures_per_account_total: int = Field(default=50, ge=1)
    login_max_failures_per_address: int = Field(default=20, ge=1)
    login_failure_window_seconds: int = Field(default=900, ge=1)
    # Proxies (IPs or CIDRs) whose X-Forwarded-For is believed; JSON list or comma-separated.
    trusted_proxies: Annotated[list[IPv4Network | IPv6Network], NoDecode] = Field(
        default_factory=list
    )
    password_hash_concurrency: int = Field(default=2, ge=1)
    chat_messages_per_window: int = Field(default=10, ge=1)
    chat_window_seconds: float = Field(default=10.0, gt=0)
    ws_queue_size: int = Field(default=512, ge=8)
    # A socket is cut (1013) when its live backlog passes either limit: frames or bytes (what
    # waits in fxdesk plus what its transport holds; the kernel buffer is pinned small).
    ws_queue_bytes: int = Field(default=1_048_576, ge=65_536)
    ws_replay_buffer: int = Field(default=100_000, ge=100)
    ws_ping_seconds: float = Field(default=20.0, gt=0)
    relay_sweep_seconds: float = Field(default=1.0, gt=0)
    # A larger request body gets 413 before it is read (WebSocket frames: ws_max_size).
    max_body_bytes: int = Field(default=1_048_576, ge=1024, le=1_073_741_824)

    @field_validator("allowed_origins")
    @classmethod
    def _normalize_origins(cls, origins: list[str]) -> list[str]:
        normalized = []
        for origin in origins:
            value = normalize_origin(origin)
            if value is None:
                raise ValueError(f"not an http(s) origin (scheme://host[:port]): {origin!r}")
            normalized.append(value)
        return normalized

    @field_validator("public_url")
    @classmethod
    def _check_public_url(cls, url: str | None) -> str | None:
        if url is None or not url.strip():
            return None
        parts = urlsplit(url.strip())
        if normalize_origin(f"{parts.scheme}://{parts.netloc}") is None or "@" in parts.netloc:
            raise ValueError(f"not an http(s) URL such as https://fx.example.com: {url!r}")
        return url.strip()

    @field_validator("allowed_hosts")
    @classmethod
    def _lower_hosts(cls, hosts: list[str]) -> list[str]:
        return [host.strip().lower() for host in hosts if host.strip()]

    @field_validator("trusted_proxies", mode="before")
    @classmethod
    def _parse_networks(cls, value: Any) -> Any:
        """`10.0.0.1, 10.1.0.0/16` or a JSON list; a bare address is a network of one."""
        if isinstance(value, str):
            text = value.strip()
            value = json.loads(text) if text.startswith("[") else text.split(",")
        if isinstance(value, list | tuple):
            try:
                return [
                    ipaddress.ip_network(str(item).strip(), strict=False)
                    for item in value
                    if str(item).strip()
                ]
            except ValueError as exc:
                raise ValueError(f"FXDESK_TRUSTED_PROXIES: {exc}") from None
        return value

    @field_validator("log_level")
    @classmethod
    def _upper_level(cls, level: str) -> str:
        return level.upper()

    @property
    def public_origin(self) -> str | None:
        """`FXDESK_PUBLIC_URL` as an origin (scheme://host[:port], default port left out)."""
        if self.public_url is None:
            return None
        parts = urlsplit(self.public_url)
        return normalize_origin(f"{parts.scheme}://{parts.netloc}")

    @property
    def public_host(self) -> str | None:
        return urlsplit(self.public_url).hostname if self.public_url else None

    @property
    def is_production(self) -> bool:
        return self.environment == "production"

    @property
    def is_shared(self) -> bool:
        """Other instances may use the same state: a server database or an external NATS."""
        url = self.database_url or ""
        return bool(self.nats_url) or (bool(url) and not url.startswith("sqlite"))

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{(self.data_dir / 'fxdesk.db').resolve()}"

    @cached_property
    def jwt_secret(self) -> str:
        """The signing secret; call `prepare()` first so a development secret exists."""
        if self.secret_key is None:
            raise ConfigError("secret key is not prepared; call Settings.prepare() first")
        return self.secret_key

    def prepare(self) -> None:
        """Create the data dir and make sure a usable secret exists (or refuse to start)."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if self.secret_key:
            if self.is_production and _is_weak(self.secret_key):
                raise ConfigError(
                    f"FXDESK_SECRET_KEY is too weak for production: use at least "
                    f"{MIN_SECRET_LENGTH} random characters "
                    "(for example: python -c 'import secrets; print(secrets.token_urlsafe(48))')"
                )
            return
        if self.is_production:
            raise ConfigError("FXDESK_SECRET_KEY must be set in production")
        if self.is_shared:
            # A generated secret lives in this instance's data dir: sessions issued here would
            # be refused by every other instance of the same database and NATS.
            raise ConfigError(
                "FXDESK_SECRET_KEY must be set when the database is not the local SQLite file "
                "or NATS is external: every instance of one deployment needs the same key "
                "(for example: python -c 'import secrets; print(secrets.token_urlsafe(48))')"
            )
        secret_file = self.data_dir / SECRET_FILE_NAME
        if secret_file.exists():
            self.secret_key = secret_file.read_text(encoding="utf-8").strip()
        else:
            self.secret_key = secrets.token_urlsafe(48)
            secret_file.touch(mode=0o600)
            secret_file.write_text(self.secret_key, encoding="utf-8")


def _is_weak(secret: str) -> bool:
    lowered = secret.strip().lower()
    return (
        len(secret) < MIN_SECRET_LENGTH
        or lowered in PLACEHOLDER_SECRETS
        or "change" in lowered
        or len(set(secret)) < 8
    )
