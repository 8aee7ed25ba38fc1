"""Engine and per-turn transactions for SQLite (default) and PostgreSQL."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, nullcontext
from pathlib import Path
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from storage import sqlite_inline
from storage.repositories import Repo

log = logging.getLogger(__name__)


def _prepare_sqlite_path(url: str) -> None:
    database = make_url(url).database
    if database and database != ":memory:" and not database.startswith("file:"):
        Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)


class Database:
    """Owns the engine. ``transaction()`` gives one transaction (a :class:`Repo`) per turn.

    SQLite allows one writer at a time, so the process uses a single connection and serialises
    transactions with an asyncio lock; its statements run inline on the loop and checkpoints in the
    background (see ``storage.sqlite_inline`` for why).
    PostgreSQL uses a connection pool; concurrent writers are kept apart by row locks and
    optimistic revision checks, so several bot processes can share one database.
    """

    def __init__(self, url: str, *, echo: bool = False, pool_size: int = 10) -> None:
        self.url = url
        self.is_sqlite = make_url(url).get_backend_name() == "sqlite"
        kwargs: dict[str, Any] = {"echo": echo}
        self._sqlite_path: str | None = None
        self._checkpointer: asyncio.Task[None] | None = None
        if self.is_sqlite:
            _prepare_sqlite_path(url)
            self._sqlite_path = make_url(url).database or ":memory:"
            path = self._sqlite_path

            async def creator() -> Any:
                return await sqlite_inline.connect(path)

            kwargs.update(pool_size=1, max_overflow=0, pool_timeout=60, async_creator=creator)
        else:
            # No pre-ping: it costs a round trip per turn; connections are recycled instead and a turn
            # that meets a dropped connection fails cleanly (the Bot Connector redelivers).
            kwargs.update(pool_size=pool_size, max_overflow=pool_size, pool_recycle=1800)
        self.engine: AsyncEngine = create_async_engine(url, **kwargs)
        self._lock = asyncio.Lock() if self.is_sqlite else None

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Repo]:
        async with self._lock if self._lock is not None else nullcontext():
            async with self.engine.begin() as conn:
                yield Repo(conn, sqlite=self.is_sqlite)

    @asynccontextmanager
    async def connect(self) -> AsyncIterator[AsyncConnection]:
        async with self._lock if self._lock is not None else nullcontext():
            async with self.engine.connect() as conn:
                yield conn

    async def ping(self) -> None:
        async with self.connect() as conn:
            await conn.execute(text("SELECT 1"))

    def start_background(self, interval_seconds: float = 2.0) -> None:
        """Start the SQLite checkpointer (a task of the running loop); nothing to do for PostgreSQL."""
        if self._sqlite_path and self._sqlite_path != ":memory:" and self._checkpointer is None:
            self._checkpointer = asyncio.create_task(self._checkpoint_loop(interval_seconds))

    async def _checkpoint_loop(self, interval_seconds: float) -> None:
        assert self._sqlite_path is not None
        while True:
            await asyncio.sleep(interval_seconds)
            try:
                await asyncio.to_thread(sqlite_inline.checkpoint, self._sqlite_path)
            except sqlite3.Error as error:
                log.warning("SQLite checkpoint failed: %s", error)

    async def dispose(self) -> None:
        if self._checkpointer is not None:
            self._checkpointer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._checkpointer
            self._checkpointer = None
        await self.engine.dispose()
        if self._sqlite_path and self._sqlite_path != ":memory:":
            with contextlib.suppress(sqlite3.Error):
                await asyncio.to_thread(sqlite_inline.checkpoint, self._sqlite_path, only_if_exists=True)
