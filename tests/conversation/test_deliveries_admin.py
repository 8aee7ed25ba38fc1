"""Admins see messages the bot could not deliver and queue them again («leveringer»)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from adaptive_cards.common import CARD_BUDGET_BYTES, size_utf16
from storage.db import Database
from storage.outbox import OutboxRepo
from tests.conftest import BotServer, make_settings
from tests.support import activities
from tests.support.card_schema import card_errors
from tests.support.fake_connector import FakeConnector

ADMIN = "29:admin-lev"


@pytest.fixture
async def admin_bot(sqlite_url: str, connector: FakeConnector) -> AsyncIterator[BotServer]:
    server = BotServer(make_settings(sqlite_url, bot_admins=[activities.aad_object_id_for(ADMIN)]), connector)
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


async def _enqueue_personal(bot: BotServer, key: str) -> None:
    database = Database(bot.settings.database_url)
    try:
        async with database.transaction() as repo:
            await OutboxRepo(repo.conn).enqueue(
                "send_personal",
                {"service_url": bot.connector.url, "conversation_id": "a:somebody", "tenant_id": "tenant-1"},
                {"type": "message", "text": "Sag OF-2026-0042 er sendt", "summary": "Sag OF-2026-0042 er sendt"},
                dedup_key=key, thread_key="personal:somebody")
    finally:
        await database.dispose()


async def test_admin_sees_a_failed_delivery_and_retries_it(admin_bot: BotServer) -> None:
    connector = admin_bot.connector
    admin = admin_bot.chat(user_id=ADMIN, user_name="Ida Admin")
    await admin.say("leveringer")
    assert "Alt er leveret" in admin.text()

    connector.fail_next(403, 1)  # Teams refuses: not retried automatically, kept visible
    await _enqueue_personal(admin_bot, "lev-1")
    await connector.wait_for(lambda c: c["kind"] == "send" and c["status"] == 403, timeout=10)
    for _ in range(50):
        await admin.say("leveringer")
        if "Prøv igen" in str(admin.card):
            break
    card = admin.card or {}
    assert card_errors(card) == [] and size_utf16(card) < CARD_BUDGET_BYTES
    assert "1:1-besked" in admin.text() and "OF-2026-0042" in admin.text() and "Afvist af Teams" in admin.text()

    await admin.press("Prøv igen")
    assert "sat i kø igen" in admin.text()
    await connector.wait_for(lambda c: c["kind"] == "send" and c["status"] < 300
                             and "OF-2026-0042" in str(c["body"]), timeout=10)
    await admin.press("Opdatér")
    assert "Alt er leveret" in admin.text()


async def test_others_cannot_see_deliveries(admin_bot: BotServer) -> None:
    other = admin_bot.chat(user_name="Ole Udenfor")
    await other.say("leveringer")
    assert "Kun administratorer" in other.text()
    status, body = await other.post(other.acts.execute("leveringer.proev_igen", {"item": 1}))
    assert status == 200 and "Kun administratorer" in str(body)
