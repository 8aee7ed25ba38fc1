"""Shared fixtures: databases (SQLite and a real PostgreSQL via pgserver), the bot on a real port."""

from __future__ import annotations

import asyncio
import itertools
import os
import shutil
import socket
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from bot.app import create_app
from bot.settings import Settings
from tests.support.chat import Chat
from tests.support.fake_connector import FakeConnector

_db_names = itertools.count(1)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="session")
def pg_server() -> Iterator[Any]:
    """A real PostgreSQL for the whole test session (the pgserver wheel; no system service)."""
    pgserver = pytest.importorskip("pgserver")
    directory = tempfile.mkdtemp(prefix="bot-pg-")
    server = pgserver.get_server(directory, cleanup_mode="stop")
    try:
        yield server
    finally:
        server.cleanup()
        shutil.rmtree(directory, ignore_errors=True)


def _pg_async_url(server: Any, database: str) -> str:
    uri = server.get_uri(database)  # postgresql://postgres:@/db?host=/socket/dir
    return uri.replace("postgresql://", "postgresql+asyncpg://", 1)


@pytest.fixture
def pg_url(pg_server: Any) -> str:
    name = f"test_{os.getpid()}_{next(_db_names)}"
    pg_server.psql(f"CREATE DATABASE {name};")
    return _pg_async_url(pg_server, name)


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite+aiosqlite:///{tmp_path / 'bot.db'}"


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest) -> str:
    if request.param == "sqlite":
        return request.getfixturevalue("sqlite_url")
    return request.getfixturevalue("pg_url")


@pytest.fixture
async def connector() -> AsyncIterator[FakeConnector]:
    fake = FakeConnector()
    await fake.start()
    try:
        yield fake
    finally:
        await fake.stop()


class BotServer:
    def __init__(self, settings: Settings, connector: FakeConnector) -> None:
        self.settings = settings
        self.connector = connector
        self.runner: web.AppRunner | None = None
        self.port = free_port()
        self.session: aiohttp.ClientSession | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api/messages"

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        self.runner = web.AppRunner(create_app(self.settings), access_log=None)
        await self.runner.setup()
        await web.TCPSite(self.runner, "127.0.0.1", self.port).start()
        self.session = aiohttp.ClientSession()

    async def stop(self) -> None:
        if self.session is not None:
            await self.session.close()
        if self.runner is not None:
            await self.runner.cleanup()

    def chat(self, **kwargs: Any) -> Chat:
        assert self.session is not None
        return Chat(self.session, self.url, self.connector, **kwargs)


def make_settings(database_url: str, **overrides: Any) -> Settings:
    return Settings(_env_file=None, database_url=database_url, **overrides)  # type: ignore[call-arg]


@pytest.fixture
async def bot(sqlite_url: str, connector: FakeConnector) -> AsyncIterator[BotServer]:
    server = BotServer(make_settings(sqlite_url), connector)
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


@pytest.fixture
async def bot_any_db(db_url: str, connector: FakeConnector) -> AsyncIterator[BotServer]:
    server = BotServer(make_settings(db_url), connector)
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


@pytest.fixture(autouse=True)
def _no_real_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in ("MICROSOFT_APP_ID", "MICROSOFT_APP_PASSWORD", "DATABASE_URL", "MICROSOFT_APP_TENANT_ID"):
        monkeypatch.delenv(key, raising=False)


__all__ = ["BotServer", "make_settings", "free_port", "asyncio"]
