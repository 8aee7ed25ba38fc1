"""A Teams-like client for conversation tests: talks to the real HTTP endpoint, keeps the shown card.

It behaves like the Teams client does with Adaptive Cards: pressing a button sends the action's data
merged with the current values of all inputs on the card (``associatedInputs: auto``), an
``Action.Execute`` arrives as an ``adaptiveCard/action`` invoke, and the invoke response replaces
the card in place.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any

import aiohttp

from tests.support import activities
from tests.support.fake_connector import FakeConnector

INPUT_PREFIX = "in_"
_conversations = itertools.count(1)


def walk(node: Any) -> Iterator[dict[str, Any]]:
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from walk(value)
    elif isinstance(node, list):
        for value in node:
            yield from walk(value)


def inputs_of(card: dict[str, Any]) -> dict[str, Any]:
    return {el["id"]: el.get("value", "") for el in walk(card.get("body", [])) if str(el.get("type", "")).startswith("Input.")}


def actions_of(card: dict[str, Any]) -> list[dict[str, Any]]:
    found = [el for el in walk(card) if el.get("type") == "Action.Execute"]
    return found


def texts_of(card: dict[str, Any]) -> str:
    parts = []
    for el in walk(card):
        if el.get("type") == "TextBlock":
            parts.append(el.get("text", ""))
        elif el.get("type") == "FactSet":
            parts += [f"{f['title']}: {f['value']}" for f in el.get("facts", [])]
        elif str(el.get("type", "")).startswith("Input."):
            parts.append(el.get("label", ""))
    return "\n".join(parts)


class Chat:
    """One user's 1:1 conversation with the bot."""

    def __init__(self, session: aiohttp.ClientSession, bot_url: str, connector: FakeConnector, *,
                 user_id: str | None = None, user_name: str = "Anna Andersen") -> None:
        n = next(_conversations)
        self.session = session
        self.bot_url = bot_url
        self.connector = connector
        self.user_id = user_id or f"29:user-{n}"
        self.conversation_id = f"a:personal-{n}-{self.user_id}"
        self.acts = activities.bind(conversation_id=self.conversation_id, user_id=self.user_id,
                                    service_url=connector.url, user_name=user_name)
        self.card: dict[str, Any] | None = None
        self.last_status: int | None = None

    async def post(self, activity: dict[str, Any]) -> tuple[int, Any]:
        async with self.session.post(self.bot_url, json=activity) as response:
            self.last_status = response.status
            body = await response.json() if response.content_type == "application/json" else await response.text()
            return response.status, body

    def replies(self) -> list[dict[str, Any]]:
        return self.connector.sent(self.conversation_id)

    async def say(self, text: str, **kwargs: Any) -> list[dict[str, Any]]:
        """Send a message; return the cards the bot sent in reply (the last becomes the shown card)."""
        before = len(self.replies())
        status, _ = await self.post(self.acts.message(text, **kwargs))
        assert status == 200, status
        new = self.replies()[before:]
        cards = [att["content"] for act in new for att in act.get("attachments", [])]
        if cards:
            self.card = cards[-1]
        return cards

    def action(self, title: str) -> dict[str, Any]:
        assert self.card is not None, "no card shown"
        matches = [a for a in actions_of(self.card) if a.get("title") == title]
        assert matches, f"no button {title!r} on the card; buttons: {[a.get('title') for a in actions_of(self.card)]}"
        return matches[0]

    def payload(self, title: str, answers: dict[str, Any] | None = None) -> tuple[str, dict[str, Any]]:
        act = self.action(title)
        data = dict(act.get("data", {}))
        if act.get("associatedInputs", "auto") != "none":
            current = inputs_of(self.card or {})
            for key, value in (answers or {}).items():
                input_id = INPUT_PREFIX + key
                assert input_id in current, f"no input {key!r} on the card; inputs: {sorted(current)}"
                current[input_id] = value
            data.update(current)
        return act["verb"], data

    async def press(self, title: str, answers: dict[str, Any] | None = None, *, activity_id: str | None = None
                    ) -> dict[str, Any]:
        """Press a button (Action.Execute); the invoke response's card replaces the shown card."""
        verb, data = self.payload(title, answers)
        return await self.execute(verb, data, activity_id=activity_id)

    async def execute(self, verb: str, data: dict[str, Any], *, activity_id: str | None = None) -> dict[str, Any]:
        status, body = await self.post(self.acts.execute(verb, data, activity_id=activity_id))
        assert status == 200, (status, body)
        assert body["statusCode"] == 200 and body["type"] == "application/vnd.microsoft.card.adaptive", body
        self.card = body["value"]
        return self.card

    def text(self) -> str:
        return texts_of(self.card or {})
