"""Forum channels for conversation tests: a team with channels, people in it, and what they see.

``TeamSetup`` installs the bot in a fake team through the real HTTP endpoint; ``ChannelUser`` is one person
in a channel who @mentions the bot and presses buttons on cards (Action.Execute invokes, as in Teams).
Threads the bot creates are read from the fake Bot Connector.
"""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp

from adaptive_cards.common import CARD_CONTENT_TYPE
from tests.support import activities
from tests.support.chat import actions_of, inputs_of, texts_of
from tests.support.fake_connector import FakeConnector, make_member

TEAM = "19:team-fora@thread.tacv2"
GENERAL = TEAM
AALBORG = "19:aalborg@thread.tacv2"
PSG = "19:psg@thread.tacv2"
SSF = "19:ssf@thread.tacv2"
CHANNELS = {GENERAL: "General", AALBORG: "Samarbejdsforum Aalborg", PSG: "Porteføljestyregruppen",
            SSF: "Strategisk Sundhedsforum"}


class ChannelUser:
    """One person acting in the team's channels."""

    def __init__(self, session: aiohttp.ClientSession, bot_url: str, connector: FakeConnector, *, user_id: str,
                 name: str, team_id: str = TEAM) -> None:
        self.session = session
        self.bot_url = bot_url
        self.connector = connector
        self.user_id = user_id
        self.name = name
        self.aad = activities.aad_object_id_for(user_id)
        self.team_id = team_id
        self.card: dict[str, Any] | None = None
        self.last_status = 0

    def _fields(self, channel_id: str, conversation_id: str | None) -> dict[str, Any]:
        return {"conversation_id": conversation_id or channel_id, "user_id": self.user_id, "user_name": self.name,
                "service_url": self.connector.url, "team_id": self.team_id, "channel_id": channel_id}

    async def post(self, activity: dict[str, Any]) -> tuple[int, Any]:
        async with self.session.post(self.bot_url, json=activity) as response:
            self.last_status = response.status
            body = await response.json() if response.content_type == "application/json" else await response.text()
            return response.status, body

    async def say(self, text: str, channel_id: str, *, thread: str | None = None) -> dict[str, Any] | None:
        """@mention the bot in a channel (or a thread, ``thread`` = its conversation id); the card it answers."""
        conversation = thread or channel_id
        before = len(self.connector.sent(conversation))
        activity = activities.message(text, mention_bot=True, **self._fields(channel_id, conversation))
        status, _ = await self.post(activity)
        assert status == 200, status
        new = self.connector.sent(conversation)[before:]
        cards = [a["content"] for act in new for a in act.get("attachments", [])
                 if a.get("contentType") == CARD_CONTENT_TYPE]
        if cards:
            self.card = cards[-1]
        return cards[-1] if cards else None

    async def execute(self, verb: str, data: dict[str, Any], channel_id: str, *, thread: str | None = None,
                      activity_id: str | None = None, trigger: str | None = None) -> dict[str, Any]:
        activity = activities.execute(verb, data, activity_id=activity_id, **self._fields(channel_id, thread))
        if trigger:
            activity["value"]["trigger"] = trigger
        status, body = await self.post(activity)
        assert status == 200, (status, body)
        assert body["statusCode"] == 200 and body["type"] == "application/vnd.microsoft.card.adaptive", body
        self.card = body["value"]
        return self.card

    async def press(self, title: str, channel_id: str, inputs: dict[str, Any] | None = None, *,
                    thread: str | None = None, card: dict[str, Any] | None = None) -> dict[str, Any]:
        """Press a button on ``card`` (default: the card this user sees) with these input values."""
        shown = card if card is not None else self.card
        assert shown is not None, "no card shown"
        matches = [a for a in actions_of(shown) if a.get("title") == title and a.get("type") == "Action.Execute"]
        assert matches, f"no button {title!r}; buttons: {[a.get('title') for a in actions_of(shown)]}"
        action = matches[0]
        data = dict(action.get("data") or {})
        if action.get("associatedInputs", "auto") != "none":
            current = {k: v for k, v in inputs_of(shown).items()}
            for key, value in (inputs or {}).items():
                assert key in current, f"no input {key!r}; inputs: {sorted(current)}"
                current[key] = value
            data.update({k: v for k, v in current.items() if v not in (None, "")})
        return await self.execute(action["verb"], data, channel_id, thread=thread)

    async def refresh(self, root: dict[str, Any], channel_id: str, thread: str) -> dict[str, Any]:
        """What Teams does when the card is shown to a user listed in ``refresh.userIds``."""
        refresh = root["refresh"]["action"]
        return await self.execute(refresh["verb"], dict(refresh.get("data") or {}), channel_id, thread=thread,
                                  trigger="automatic")

    def text(self) -> str:
        return texts_of(self.card or {})


def roster_member(user_id: str, name: str) -> dict[str, Any]:
    given, _, surname = name.partition(" ")
    return make_member(user_id, given, surname or "X", tenant_id="tenant-1",
                       aad_object_id=activities.aad_object_id_for(user_id))


async def install_team(session: aiohttp.ClientSession, bot_url: str, connector: FakeConnector,
                       people: list[tuple[str, str]]) -> None:
    """Install the bot in the team (Teams sends conversationUpdate with the bot added) and set its roster."""
    connector.teams[TEAM] = {"name": "Sundhedssamarbejdet",
                             "channels": [{"id": cid, **({"name": n} if cid != TEAM else {})}
                                          for cid, n in CHANNELS.items()]}
    connector.rosters[TEAM] = [roster_member(uid, name) for uid, name in people]
    activity = activities.conversation_update_members_added(
        conversation_id=TEAM, user_id=people[0][0], service_url=connector.url, team_id=TEAM, channel_id=TEAM,
        bot_added=True)
    async with session.post(bot_url, json=activity) as response:
        assert response.status == 200


def threads(connector: FakeConnector, channel_id: str) -> list[dict[str, Any]]:
    """New threads the bot started in a channel: conversation id, root activity id and root card."""
    out = []
    for created in connector.created_conversations():
        if created["channelId"] == channel_id and created["activity"]:
            attachments = created["activity"].get("attachments") or [{}]
            out.append({"conversation_id": created["id"], "root_id": created["activityId"],
                        "card": attachments[0].get("content") or {}})
    return out


async def wait_threads(connector: FakeConnector, channel_id: str, count: int, timeout: float = 10.0) -> list[dict[str, Any]]:  # noqa: ASYNC109
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        found = threads(connector, channel_id)
        if len(found) >= count or loop.time() > deadline:
            assert len(found) >= count, f"{len(found)} thread(s) in {channel_id}, expected {count}"
            return found
        await asyncio.sleep(0.05)


async def wait_until(predicate: Any, timeout: float = 10.0, what: str = "condition") -> None:  # noqa: ASYNC109
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


def card_text(card: dict[str, Any]) -> str:
    return texts_of(card)


def latest_root_card(connector: FakeConnector, thread: dict[str, Any]) -> dict[str, Any]:
    """The root card as it is now: the last update of the root activity, or the card it was posted with."""
    updates = [u for u in connector.updates(thread["conversation_id"]) if u.get("id") == thread["root_id"]]
    if updates:
        return updates[-1]["attachments"][0]["content"]
    return dict(thread["card"])


def replies_text(connector: FakeConnector, thread: dict[str, Any]) -> list[str]:
    return [str(a.get("text") or "") for a in connector.sent(thread["conversation_id"])]
