"""People picked in a people picker are looked up in Teams outside the turn's transaction.

On SQLite one connection serves every turn; a lookup that opened a second transaction inside the turn's
own would wait for itself forever (every later request, /readyz included, would hang)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from tests.conftest import BotServer, make_settings
from tests.support import activities
from tests.support.fake_connector import FakeConnector
from tests.support.forum import AALBORG, ChannelUser, install_team, roster_member

ADMIN = ("29:admin", "Ida Admin")
MEMBER = ("29:member", "Mette Medlem")


@pytest.fixture
async def team_bot(sqlite_url: str, connector: FakeConnector) -> AsyncIterator[BotServer]:
    server = BotServer(make_settings(sqlite_url, bot_admins=[activities.aad_object_id_for(ADMIN[0])]), connector)
    await server.start()
    try:
        assert server.session is not None
        await install_team(server.session, server.url, connector, [ADMIN])
        yield server
    finally:
        await server.stop()


async def test_a_person_outside_the_cached_roster_is_looked_up_without_blocking(team_bot: BotServer) -> None:
    assert team_bot.session is not None
    connector = team_bot.connector
    admin = ChannelUser(team_bot.session, team_bot.url, connector, user_id=ADMIN[0], name=ADMIN[1])
    await admin.say("opsætning", AALBORG)  # caches the roster: only the admin
    await admin.press("Knyt til kanalen", AALBORG, {"knyt_forum": "sf_aalborg"})
    # Mette joins the team after the roster was read: the bot must ask Teams who she is.
    connector.rosters[next(iter(connector.rosters))].append(roster_member(*MEMBER))
    member_aad = activities.aad_object_id_for(MEMBER[0])
    await asyncio.wait_for(
        admin.press("Tilføj til sekretariatet", AALBORG, {"personer_sf_aalborg": member_aad}), timeout=10)
    assert "Mette Medlem" in admin.text(), admin.text()
    assert any(c["kind"] == "member" and member_aad in c["path"] for c in connector.calls)
    async with team_bot.session.get(f"{team_bot.base}/readyz") as response:
        assert response.status == 200
