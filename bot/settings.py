"""Typed settings, read from the environment (and an optional .env file).

Tests construct ``Settings(...)`` directly; nothing reads the environment at import time.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///var/bot.db"
DEFAULT_ORGANISATION_FILE = Path(__file__).resolve().parent.parent / "config" / "organisation.yaml"


class AppType(StrEnum):
    SINGLE_TENANT = "SingleTenant"
    USER_ASSIGNED_MSI = "UserAssignedMSI"
    MULTI_TENANT = "MultiTenant"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")

    host: str = "127.0.0.1"
    port: int = 3978
    database_url: str = DEFAULT_DATABASE_URL
    # PostgreSQL connections per process (and as many again under bursts); SQLite always uses one.
    database_pool_size: int = Field(default=10, ge=1, le=100)

    microsoft_app_id: str = ""
    microsoft_app_password: SecretStr = SecretStr("")
    microsoft_app_type: AppType = AppType.SINGLE_TENANT
    microsoft_app_tenant_id: str = ""

    # Where the Bot Framework's signing keys are published (override only for sovereign clouds or tests).
    openid_metadata_url: str | None = None

    # The first administrators: Entra object ids (or UPNs), comma-separated. They are told when the bot is
    # removed from a team (and will manage forum set-up).
    bot_admins: Annotated[list[str], NoDecode] = Field(default_factory=list)

    max_body_bytes: int = Field(default=256 * 1024, ge=1024)
    answer_max_length: int = Field(default=2000, ge=50, le=20000)
    organisation_file: Path = DEFAULT_ORGANISATION_FILE
    log_level: str = "INFO"
    # How long processed activity ids are remembered for duplicate detection.
    dedup_retention_hours: int = Field(default=48, ge=1)
    # Where outgoing Bot Connector calls may go when no app id is configured (development mode).
    outbound_timeout_seconds: float = Field(default=10.0, gt=0)

    # Reminders after a forum has planned the follow-up: a status reminder every N days (0: none) until
    # the evaluation, one N days before the evaluation date, and one on the day. Checked every N seconds.
    followup_reminder_days: int = Field(default=30, ge=0, le=365)
    evaluation_notice_days: int = Field(default=14, ge=0, le=365)
    reminder_poll_seconds: float = Field(default=300.0, gt=0)

    @field_validator("bot_admins", mode="before")
    @classmethod
    def _admins(cls, value: object) -> object:
        if isinstance(value, str):
            stripped = value.strip()
            if stripped.startswith("["):
                return value  # JSON list
            return [part.strip() for part in stripped.split(",") if part.strip()]
        return value

    @field_validator("microsoft_app_type", mode="before")
    @classmethod
    def _app_type(cls, value: object) -> object:
        if isinstance(value, str):
            for member in AppType:
                if member.value.lower() == value.strip().lower():
                    return member
        return value

    @property
    def development_mode(self) -> bool:
        """No app id: inbound tokens are not validated and outbound calls carry no token."""
        return not self.microsoft_app_id
