"""The HTTP edge: bad input gets a 4xx (never a 500), tokens are checked when an app id is set."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import aiohttp
import pytest

from tests.conftest import BotServer, make_settings
from tests.support import activities
from tests.support.fake_connector import FakeConnector
from tests.unit.test_auth import (  # noqa: F401  (fixtures)
    APP_ID,
    TEAMS_KID,
    FakeIdentityServer,
    Keys,
    _token,
    identity_server,
    keys,
)


def _activity(connector: FakeConnector, **kwargs: object) -> dict:
    return activities.message("hjælp", conversation_id="a:edge", user_id="29:edge", service_url=connector.url,
                              **kwargs)  # type: ignore[arg-type]


async def _post_raw(bot: BotServer, data: bytes, headers: dict[str, str] | None = None) -> tuple[int, str]:
    assert bot.session is not None
    async with bot.session.post(bot.url, data=data, headers=headers or {"Content-Type": "application/json"}) as resp:
        return resp.status, await resp.text()


@pytest.mark.parametrize(
    "body",
    [
        b"{not json",
        b"",
        b"\xff\xfe\x00garbage",
        b"[1, 2, 3]",
        b'"a string"',
        b"{}",
        b'{"type": 42}',
        b'{"type": "message", "from": "nobody"}',
        b"[" * 100_000,
        json.dumps({"type": "message", "conversation": {"id": 5}}).encode(),
    ],
)
async def test_malformed_bodies_get_400(bot: BotServer, body: bytes) -> None:
    status, text = await _post_raw(bot, body)
    assert status == 400, (status, text)
    assert "error" in json.loads(text)


async def test_activity_without_conversation_or_service_url_gets_400(bot: BotServer) -> None:
    activity = _activity(bot.connector)
    del activity["serviceUrl"]
    status, _ = await _post_raw(bot, json.dumps(activity).encode())
    assert status == 400


async def test_oversized_body_gets_413(bot: BotServer) -> None:
    activity = _activity(bot.connector)
    activity["text"] = "x" * (300 * 1024)
    status, _ = await _post_raw(bot, json.dumps(activity).encode())
    assert status == 413


async def test_oversized_chunked_body_gets_413(bot: BotServer) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"type": "message", "text": "'
        for _ in range(40):
            yield b"y" * 8192
        yield b'"}'

    assert bot.session is not None
    async with bot.session.post(bot.url, data=chunks(), headers={"Content-Type": "application/json"}) as resp:
        assert resp.status == 413


async def test_body_limit_is_configurable(sqlite_url: str, connector: FakeConnector) -> None:
    server = BotServer(make_settings(sqlite_url, max_body_bytes=4096), connector)
    await server.start()
    try:
        activity = _activity(connector)
        activity["text"] = "hjælp " + "x" * 5000
        assert (await _post_raw(server, json.dumps(activity).encode()))[0] == 413
    finally:
        await server.stop()


async def test_odd_text_gets_an_answer(bot: BotServer) -> None:
    chat = bot.chat()
    for text in ["\u202eny sag\u202c", "🙂" * 500, "<script>alert(1)</script>", "ny\x00sag", "a" * 20000]:
        await chat.say(text)
        assert chat.card is not None
    assert len(chat.replies()) == 5


async def test_unknown_invoke_gets_a_4xx_invoke_response(bot: BotServer) -> None:
    chat = bot.chat()
    activity = chat.acts.execute("hjaelp", {})
    activity["name"] = "composeExtension/query"
    status, body = await chat.post(activity)
    assert status == 200 and body["statusCode"] == 400


async def test_health_and_readiness(bot: BotServer) -> None:
    assert bot.session is not None
    async with bot.session.get(bot.base + "/healthz") as resp:
        assert resp.status == 200
    async with bot.session.get(bot.base + "/readyz") as resp:
        assert resp.status == 200 and (await resp.json())["database"] == "ok"
    async with bot.session.get(bot.url) as resp:
        assert resp.status == 405


async def test_readiness_reports_an_unreachable_database(tmp_path, connector: FakeConnector) -> None:  # type: ignore[no-untyped-def]
    settings = make_settings("postgresql+asyncpg://nobody@127.0.0.1:1/nothing")
    from aiohttp import web

    from bot.app import create_app

    app = create_app(settings, migrate=False)
    runner = web.AppRunner(app)
    await runner.setup()
    from tests.conftest import free_port

    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        async with aiohttp.ClientSession() as session, session.get(f"http://127.0.0.1:{port}/readyz") as resp:
            assert resp.status == 503
    finally:
        await runner.cleanup()


@pytest.fixture
async def secured_bot(sqlite_url: str, connector: FakeConnector, identity_server: FakeIdentityServer  # noqa: F811
                      ) -> AsyncIterator[BotServer]:
    settings = make_settings(
        sqlite_url,
        microsoft_app_id=APP_ID,
        microsoft_app_password="not-a-real-secret",
        microsoft_app_tenant_id="tenant-1",
        openid_metadata_url=identity_server.metadata_url,
    )
    server = BotServer(settings, connector)
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


async def test_with_an_app_id_missing_or_forged_tokens_get_401(secured_bot: BotServer, keys: Keys) -> None:  # noqa: F811
    activity = _activity(secured_bot.connector)
    body = json.dumps(activity).encode()
    assert (await _post_raw(secured_bot, body))[0] == 401
    forged = {
        "garbage": "Bearer abc.def.ghi",
        "wrong key": "Bearer " + _token(keys.rogue, serviceurl=secured_bot.connector.url),
        "wrong audience": "Bearer " + _token(keys.teams, aud="someone-else", serviceurl=secured_bot.connector.url),
        "expired": "Bearer " + _token(keys.teams, exp=1_000_000, serviceurl=secured_bot.connector.url),
        "other service url": "Bearer " + _token(keys.teams, serviceurl="https://evil.example/"),
        "basic": "Basic dXNlcjpwYXNz",
    }
    for label, header in forged.items():
        status, _ = await _post_raw(secured_bot, body, {"Content-Type": "application/json", "Authorization": header})
        assert status == 401, label
    assert secured_bot.connector.sent() == [], "nothing is processed for unauthenticated requests"


async def test_with_an_app_id_a_valid_token_is_served(secured_bot: BotServer, keys: Keys) -> None:  # noqa: F811
    chat = secured_bot.chat()
    activity = chat.acts.execute("hjaelp", {})
    token = _token(keys.teams, kid=TEAMS_KID, serviceurl=secured_bot.connector.url)
    assert secured_bot.session is not None
    async with secured_bot.session.post(secured_bot.url, json=activity,
                                        headers={"Authorization": f"Bearer {token}"}) as resp:
        assert resp.status == 200
        body = await resp.json()
    assert body["type"] == "application/vnd.microsoft.card.adaptive"
