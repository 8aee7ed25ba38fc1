"""Small helpers shared by the storage modules."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects import sqlite as sqlite_dialect


def utcnow() -> datetime:
    return datetime.now(UTC)


def as_utc(value: datetime | None) -> datetime | None:
    """An aware UTC datetime (SQLite hands back naive values: they were stored as UTC)."""
    if value is None:
        return None
    return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)


def dialect_insert(*, sqlite: bool) -> Callable[..., Any]:
    """The dialect's ``insert`` (it has ``on_conflict_do_nothing``/``on_conflict_do_update``)."""
    return sqlite_dialect.insert if sqlite else postgresql.insert
