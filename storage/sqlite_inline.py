"""SQLite on the event loop's thread, behind the aiosqlite connection API that SQLAlchemy uses.

Why: a turn runs 5–8 statements of tens of microseconds each. aiosqlite sends every statement to its
worker thread and back; under load each hand-off waits for the GIL (up to the 5 ms switch interval),
and since SQLite allows one writer, those waits add up inside the per-process write lock. Running the
statements inline removes the hand-offs. What could block — fsync — is kept off the loop: commits in
WAL mode with ``synchronous=NORMAL`` do not fsync, automatic checkpoints are switched off, and
:func:`checkpoint` (run in a worker thread by ``storage.db.Database``) moves the WAL into the database
file and fsyncs it in the background. A crash of the process loses nothing committed (the WAL is
in the OS page cache); a power failure may lose the last moments, as with ``synchronous=NORMAL``.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiosqlite

PRAGMAS = (
    "PRAGMA journal_mode=WAL",
    "PRAGMA synchronous=NORMAL",
    "PRAGMA foreign_keys=ON",
    "PRAGMA wal_autocheckpoint=0",
    # The checkpointer never takes the write lock, so a writer here never waits; keep a short
    # timeout as a guard rather than blocking the loop for long.
    "PRAGMA busy_timeout=200",
)


class InlineConnection(aiosqlite.Connection):
    """``aiosqlite.Connection`` whose calls run directly on the calling thread (no worker thread)."""

    async def _execute(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        if not self._running or self._connection is None:
            raise ValueError("Connection closed")
        return fn(*args, **kwargs)

    def __await__(self) -> Any:
        return self._open().__await__()

    async def _open(self) -> InlineConnection:
        if self._connection is None:
            self._connection = self._connector()
        return self

    def stop(self) -> None:  # type: ignore[override]
        self._running = False
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    async def close(self) -> None:
        self.stop()


def connect(path: str) -> InlineConnection:
    def connector() -> sqlite3.Connection:
        connection = sqlite3.connect(path, uri=path.startswith("file:"))
        for pragma in PRAGMAS:
            connection.execute(pragma)
        return connection

    return InlineConnection(connector, 64)


def checkpoint(path: str, *, only_if_exists: bool = False) -> tuple[int, int, int] | None:
    """Copy the WAL into the database file (blocking: call it in a worker thread)."""
    if only_if_exists and not path.startswith("file:") and not Path(path).exists():
        return None
    connection = sqlite3.connect(path, uri=path.startswith("file:"), timeout=5)
    try:
        row = connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        return int(row[0]), int(row[1]), int(row[2])
    finally:
        connection.close()
