"""Forum channels for conversation tests: a team with channels, people in it, and what they see.

``TeamSetup`` installs the bot in a fake team through the real HTTP endpoint; ``ChannelUser`` is one person
in a channel who @mentions the bot and presses buttons on cards (Action.Execute invokes, as in Teams).
Threads the bot creates are read from the fake Bot Connector.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import quote

import aiohttp
from sqlalchemy import update

from adaptive_cards.common import CARD_CONTENT_TYPE
from storage.db import Database
from storage.forums import ForumRepo, reminders_t
from storage.outbox import OutboxRepo
from tests.conftest import BotServer, make_settings
from tests.conversation.helpers import case_number, through_dialoggrundlag, to_dialoggrundlag
from tests.support import activities
from tests.support.chat import Chat, actions_of, inputs_of, texts_of, walk
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


# ---------------------------------------------------------------------------------------------- more helpers
THREAD_LINK_PREFIX = "https://teams.microsoft.com/l/message/"


def personal_conversations(connector: FakeConnector, user_id: str) -> set[str]:
    """The 1:1 conversations the bot opened with ``user_id`` (an Entra object id) to message them."""
    return {created["id"] for created in connector.created_conversations()
            if not created["channelId"] and not created["isGroup"]
            and any(member.get("id") == user_id for member in created["members"] or [])}


def personal_messages(connector: FakeConnector, user_id: str, *known: str) -> list[dict[str, Any]]:
    """What the bot sent to ``user_id`` in 1:1: into chats it opened for them and into ``known`` chats (e.g. the
    user's own Chat, which the bot remembers once the user has written to it), in order."""
    conversations = personal_conversations(connector, user_id) | set(known)
    return [call["body"] for call in connector.calls
            if call["kind"] in ("send", "reply") and call["status"] < 300
            and call["conversation_id"] in conversations]


def activity_cards(activity: dict[str, Any]) -> list[dict[str, Any]]:
    return [a["content"] for a in activity.get("attachments") or [] if a.get("contentType") == CARD_CONTENT_TYPE]


def activity_text(activity: dict[str, Any]) -> str:
    """The text a user reads in a message: its text and the texts of its cards."""
    return "\n".join([str(activity.get("text") or ""), *(texts_of(c) for c in activity_cards(activity))])


def open_urls(activity: dict[str, Any]) -> list[str]:
    return [str(el.get("url")) for el in walk(activity) if el.get("type") == "Action.OpenUrl"]


def facts_of(card: dict[str, Any]) -> dict[str, str]:
    """The facts (FactSet title → value) on a card."""
    return {f["title"]: f["value"] for el in walk(card) if el.get("type") == "FactSet" for f in el["facts"]}


def text_blocks(card: dict[str, Any]) -> list[str]:
    return [str(el.get("text", "")) for el in walk(card) if el.get("type") == "TextBlock"]


def button_titles(card: dict[str, Any]) -> list[str]:
    """The buttons on a card (Action.Execute and Action.OpenUrl; not fallbacks, not the refresh action)."""
    return [str(el.get("title")) for el in walk([card.get("body", []), card.get("actions", [])])
            if el.get("type") in ("Action.Execute", "Action.OpenUrl")]


def assert_thread_link(activity: dict[str, Any], thread: dict[str, Any]) -> None:
    """The 1:1 message links to ``thread``: the placeholder was replaced by the Teams link to its root."""
    assert "{{thread_url}}" not in str(activity), activity
    urls = open_urls(activity)
    channel = thread["conversation_id"].split(";messageid=", 1)[0]
    expected = f"{THREAD_LINK_PREFIX}{quote(channel, safe='')}/{thread['root_id']}?"
    assert any(url.startswith(expected) for url in urls), (urls, expected)


def thread_for(connector: FakeConnector, channel_id: str, number: str) -> dict[str, Any]:
    """The one thread of case ``number`` in a channel."""
    found = [t for t in threads(connector, channel_id) if number in card_text(t["card"])]
    assert len(found) == 1, f"{len(found)} threads of {number} in {channel_id}"
    return found[0]


async def wait_for_thread(connector: FakeConnector, channel_id: str, number: str) -> dict[str, Any]:
    """Wait for the thread of case ``number`` in a channel; that thread."""
    await wait_until(lambda: any(number in card_text(t["card"]) for t in threads(connector, channel_id)),
                     what=f"the thread of {number} in {channel_id}")
    return thread_for(connector, channel_id, number)


def channel_calls(connector: FakeConnector, channel_ids: set[str]) -> list[dict[str, Any]]:
    """Every accepted write the bot made into these channels (new threads, replies, updates)."""
    out = []
    for call in connector.calls:
        if call["status"] >= 300 or call["method"] not in ("POST", "PUT", "DELETE"):
            continue
        body = call["body"] if isinstance(call["body"], dict) else {}
        channel = ((body.get("channelData") or {}).get("channel") or {}).get("id")
        conversation = str(call["conversation_id"] or "").split(";messageid=", 1)[0]
        if channel in channel_ids or conversation in channel_ids:
            out.append(call)
    return out


async def wait_messages(connector: FakeConnector, user_id: str, text: str, count: int = 1, *known: str,
                        timeout: float = 10.0) -> list[dict[str, Any]]:  # noqa: ASYNC109
    """Wait until ``user_id`` has at least ``count`` 1:1 messages containing ``text``; those messages."""
    def matching() -> list[dict[str, Any]]:
        return [a for a in personal_messages(connector, user_id, *known) if text in activity_text(a)]

    await wait_until(lambda: len(matching()) >= count, timeout, f"{count} 1:1 message(s) with {text!r}")
    return matching()


# ---------------------------------------------------------------------------------------------- the database
async def stored_case(database_url: str, number: str) -> tuple[Any, list[Any]]:
    """The case (storage.repositories.Case) and its events, read from the database."""
    database = Database(database_url)
    try:
        async with database.transaction() as repo:
            case = await repo.get_case_by_number(number)
            assert case is not None, number
            return case, await repo.events(case.id)
    finally:
        await database.dispose()


async def outbox_size(database_url: str) -> int:
    """How many items the outbox holds (every state): what the bot has decided to send so far."""
    database = Database(database_url)
    try:
        async with database.transaction() as repo:
            return sum((await OutboxRepo(repo.conn).counts()).values())
    finally:
        await database.dispose()


# ---------------------------------------------------------------------------------------------- a bot in a team
ADMIN = ("29:admin", "Ida Admin")
SECRETARY = ("29:sek-aalborg", "Søren Sekretær")
PSG_SECRETARY = ("29:sek-psg", "Pia Portefølje")
SSF_SECRETARY = ("29:sek-ssf", "Sanne Strategi")
OUTSIDER = ("29:outsider", "Ole Udenfor")
INITIATOR = ("29:initiator", "Bent Hansen")
PSG_SECRETARY_2 = ("29:sek-psg-2", "Per Portefølje")
COLLEAGUE = ("29:kollega", "Karen Kontakt")
PEOPLE = [ADMIN, SECRETARY, PSG_SECRETARY, SSF_SECRETARY, OUTSIDER, INITIATOR, PSG_SECRETARY_2, COLLEAGUE]


def aad(who: tuple[str, str]) -> str:
    """The Entra object id of a person of ``PEOPLE`` (what the bot stores and the people picker sends)."""
    return activities.aad_object_id_for(who[0])


@asynccontextmanager
async def forum_server(database_url: str, connector: FakeConnector, *, admins: list[str] | None = None,
                       people: list[tuple[str, str]] | None = None, install: bool = True,
                       **overrides: Any) -> AsyncIterator[BotServer]:
    """The bot on a real port with ``BOT_ADMINS`` = ``admins`` (default: ADMIN's Entra id), installed in TEAM."""
    settings = make_settings(database_url, bot_admins=[aad(ADMIN)] if admins is None else admins, **overrides)
    server = BotServer(settings, connector)
    await server.start()
    try:
        assert server.session is not None
        if install:
            await install_team(server.session, server.url, connector, people or PEOPLE)
        yield server
    finally:
        await server.stop()


def channel_user(bot: BotServer, who: tuple[str, str]) -> ChannelUser:
    assert bot.session is not None
    return ChannelUser(bot.session, bot.url, bot.connector, user_id=who[0], name=who[1])


async def bind(admin: ChannelUser, channel: str, forum_id: str, secretaries: list[ChannelUser]) -> None:
    """An admin binds ``forum_id`` to ``channel`` and adds its secretariat, through the set-up card."""
    card = await admin.say("opsætning", channel)
    assert card is not None and "Opsætning af kanalen" in card_text(card), card
    await admin.press("Knyt til kanalen", channel, {"knyt_forum": forum_id})
    assert "Kanalen er knyttet til" in admin.text(), admin.text()
    if secretaries:
        await admin.press("Tilføj til sekretariatet", channel,
                          {f"personer_{forum_id}": ",".join(s.aad for s in secretaries)})
        assert "Tilføjet til sekretariatet" in admin.text(), admin.text()


# ---------------------------------------------------------------------------------------------- 1:1 walks
async def fill_dialoggrundlag(chat: Chat, extra: dict[str, Any] | None = None) -> str:
    """A new case through screening and the Dialoggrundlag, up to the route page; its number."""
    await to_dialoggrundlag(chat)
    await through_dialoggrundlag(chat, extra)
    return case_number(chat)


async def to_review(chat: Chat, first_page: dict[str, Any] | None = None) -> None:
    """From a Mini-MTV page: the first page with ``first_page``'s answers, then «Næste» to the review."""
    await chat.press("Næste", first_page or {})
    for _ in range(15):
        if "Gennemse og indsend" in chat.text():
            return
        await chat.press("Næste")
    raise AssertionError(chat.text())


async def submit_psg_case(chat: Chat, mtv: dict[str, Any] | None = None) -> str:
    """A case sent directly to Porteføljestyregruppen (route «psg», Mini-MTV page 1 with ``mtv``); its number."""
    number = await fill_dialoggrundlag(chat)
    await chat.press("Næste", {"route": "psg"})
    assert "Mini-MTV" in chat.text(), chat.text()
    await to_review(chat, mtv)
    await chat.press("Indsend")
    assert "Sagen er indsendt" in chat.text(), chat.text()
    return number


async def submit_forum_case(chat: Chat, hospital: str = "aalborg") -> str:
    """A case sent to a hospital's samarbejdsforum (with a copy to PSG); its number."""
    number = await fill_dialoggrundlag(chat)
    await chat.press("Næste", {"route": "samarbejdsforum", "hospital": hospital})
    assert "Gennemse og indsend" in chat.text(), chat.text()
    await chat.press("Indsend")
    assert "Sagen er indsendt" in chat.text(), chat.text()
    return number


async def reminders_of(database_url: str, case_id: int) -> list[tuple[int, str, str]]:
    """The case's pending reminders: (id, kind, due_at ISO)."""
    database = Database(database_url)
    try:
        async with database.transaction() as repo:
            return [(r.id, r.kind, r.due_at.isoformat()) for r in await ForumRepo(repo.conn).pending_reminders(case_id)]
    finally:
        await database.dispose()


async def set_due(database_url: str, reminder_id: int, when: Any) -> None:
    """Move a reminder's due time (e.g. into the past), as time passing would."""
    database = Database(database_url)
    try:
        async with database.transaction() as repo:
            await repo.conn.execute(update(reminders_t).where(reminders_t.c.id == reminder_id).values(due_at=when))
    finally:
        await database.dispose()


async def outbox_states(database_url: str) -> dict[str, int]:
    database = Database(database_url)
    try:
        async with database.transaction() as repo:
            return await OutboxRepo(repo.conn).counts()
    finally:
        await database.dispose()


async def wait_outbox_settled(database_url: str, timeout: float = 10.0) -> dict[str, int]:  # noqa: ASYNC109
    """Wait until nothing in the outbox is pending or in flight; the counts per state."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        counts = await outbox_states(database_url)
        if not {"pending", "claimed", "sending"} & {state for state, n in counts.items() if n}:
            return counts
        assert loop.time() < deadline, f"outbox not settled: {counts}"
        await asyncio.sleep(0.1)
