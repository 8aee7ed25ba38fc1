"""The bot in a team: remembers the team and its channels, greets once, tells admins when removed."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from storage.db import Database
from storage.teams import TeamRepo
from tests.conftest import BotServer, make_settings
from tests.support import activities
from tests.support.fake_connector import FakeConnector

TEAM = "19:team-sundhed@thread.tacv2"
PSG_CHANNEL = "19:psg@thread.tacv2"
ADMIN = "0f3c1b9e-1111-4222-8333-944445555666"


@pytest.fixture
async def team_bot(sqlite_url: str, connector: FakeConnector) -> AsyncIterator[BotServer]:
    connector.teams[TEAM] = {
        "name": "Sundhedsaftalen",
        "channels": [{"id": TEAM}, {"id": PSG_CHANNEL, "name": "Porteføljestyregruppen"}],
    }
    server = BotServer(make_settings(sqlite_url, bot_admins=[ADMIN, "someone@example.org"]), connector)
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


def _team_activity(factory: Any, connector: FakeConnector, **kwargs: Any) -> dict[str, Any]:
    activity: dict[str, Any] = factory(conversation_id=TEAM, user_id="29:owner", service_url=connector.url,
                                       team_id=TEAM, channel_id=TEAM, **kwargs)
    return activity


async def _team(bot: BotServer) -> Any:
    database = Database(bot.settings.database_url)
    try:
        async with database.transaction() as repo:
            return await TeamRepo(repo.conn).get(TEAM)
    finally:
        await database.dispose()


async def _post(bot: BotServer, activity: dict[str, Any]) -> int:
    assert bot.session is not None
    async with bot.session.post(bot.url, json=activity) as response:
        return response.status


async def test_install_in_a_team_remembers_team_and_channels_and_greets_once(team_bot: BotServer) -> None:
    connector = team_bot.connector
    added = _team_activity(activities.conversation_update_members_added, connector, bot_added=True)
    assert await _post(team_bot, added) == 200
    assert await _post(team_bot, added) == 200  # redelivered
    install = _team_activity(activities.installation_update, connector, action="add")
    assert await _post(team_bot, install) == 200  # Teams sends both events
    team = await _team(team_bot)
    assert team is not None and team.installed and team.name == "Sundhedsaftalen"
    assert team.service_url == connector.url and team.tenant_id == "tenant-1"
    assert team.channels == {TEAM: "General", PSG_CHANNEL: "Porteføljestyregruppen"}
    # The greeting is a new post in General, sent through the outbox.
    await connector.wait_for(lambda call: call["kind"] == "create_conversation", timeout=10)
    created = connector.created_conversations()
    assert len(created) == 1 and created[0]["channelId"] == TEAM
    assert "Opgaveflytning er klar" in str(created[0]["activity"])


async def test_channel_events_keep_the_channel_list_current(team_bot: BotServer) -> None:
    connector = team_bot.connector
    await _post(team_bot, _team_activity(activities.conversation_update_members_added, connector, bot_added=True))

    def channel_event(event: str, channel_id: str, name: str | None) -> dict[str, Any]:
        activity = _team_activity(activities.conversation_update_members_added, connector, members_added=[])
        activity["membersAdded"] = []
        activity["channelData"]["eventType"] = event
        activity["channelData"]["channel"] = {"id": channel_id, **({"name": name} if name else {})}
        return activity

    await _post(team_bot, channel_event("channelCreated", "19:new@thread.tacv2", "Samarbejdsforum Aalborg"))
    await _post(team_bot, channel_event("channelRenamed", PSG_CHANNEL, "PSG"))
    await _post(team_bot, channel_event("channelDeleted", "19:new@thread.tacv2", None))
    team = await _team(team_bot)
    assert team.channels == {TEAM: "General", PSG_CHANNEL: "PSG"}


async def test_removal_stops_the_team_and_tells_the_admins(team_bot: BotServer) -> None:
    connector = team_bot.connector
    await _post(team_bot, _team_activity(activities.conversation_update_members_added, connector, bot_added=True))
    removed = _team_activity(activities.conversation_update_members_added, connector, members_added=[])
    removed["membersAdded"] = []
    removed["membersRemoved"] = [{"id": removed["recipient"]["id"]}]
    removed["channelData"]["eventType"] = "teamMemberRemoved"
    assert await _post(team_bot, removed) == 200
    assert await _post(team_bot, removed) == 200  # redelivered: one message only
    team = await _team(team_bot)
    assert team is not None and not team.installed and team.removed_at is not None
    # The admin with an Entra object id gets a 1:1 message (the UPN admin cannot be reached this way).
    await connector.wait_for(lambda call: call["kind"] in ("send", "reply") and "fjernet" in str(call["body"]),
                             timeout=10)
    personal = [c for c in connector.created_conversations() if not c.get("isGroup")]
    assert len(personal) == 1 and ADMIN in str(personal[0]["members"])
    messages = [a for a in connector.sent() if "fjernet fra teamet" in str(a)]
    assert len(messages) == 1 and "Sundhedsaftalen" in str(messages[0])


async def test_help_in_a_channel(team_bot: BotServer) -> None:
    connector = team_bot.connector
    activity = activities.message("hjælp", mention_bot=True, conversation_id=f"{PSG_CHANNEL};messageid=1",
                                  user_id="29:someone", service_url=connector.url, team_id=TEAM,
                                  channel_id=PSG_CHANNEL)
    assert await _post(team_bot, activity) == 200
    reply = connector.sent(f"{PSG_CHANNEL};messageid=1")[-1]
    assert "Opgaveflytning i kanaler" in str(reply)
