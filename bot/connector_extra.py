"""Bot Connector calls of the outbox: new channel threads, thread replies, updates, 1:1 chats.

``DeliveryConnector`` extends ``ConnectorClient`` (same aiohttp session approach; it can share the
session and tokens of the app's client) and reports failures so that the delivery worker can tell
whether a request may have taken effect:

* :class:`ConnectorHTTPError` — the service answered with an error status (``retry_after`` parsed);
* :class:`RequestNotSent` — the request never reached the service (no connection, no token): safe to repeat;
* :class:`OutcomeUnknown` — the request may have been received (timeout, connection lost mid-request).

Teams facts used here (docs/teams-platform.md): a new thread is ``POST /v3/conversations`` with
``isGroup``, ``channelData.channel.id`` and the first activity, answering the thread's conversation id and
root activity id; replies go to conversation ``"{channelId};messageid={rootId}"``; updates are
``PUT …/activities/{id}``. The Bot Connector has no call to read a channel's messages, so a thread whose
creation had an unknown outcome cannot be looked up here (see ``bot.delivery`` for what is guaranteed).
"""

from __future__ import annotations

import json
import time
from email.utils import parsedate_to_datetime
from typing import Any

import aiohttp

from bot.connector import ConnectorClient, ConnectorError
from bot.credentials import OutboundTokenProvider, TokenUnavailableError

#: Key in an activity's ``channelData`` that carries the outbox item's dedup key (a marker that identifies
#: the message among a channel's messages).
MARKER_KEY = "outboxKey"


class ConnectorHTTPError(ConnectorError):
    """The Bot Connector answered ``status`` (>= 300); ``retry_after`` in seconds when it said so."""

    def __init__(self, status: int, body: str, retry_after: float | None = None) -> None:
        super().__init__(status, body)
        self.body = body[:500]
        self.retry_after = retry_after


class RequestNotSent(Exception):
    """The request did not reach the Bot Connector; repeating it cannot duplicate anything."""


class OutcomeUnknown(Exception):
    """The request may have reached the Bot Connector and taken effect (no answer was received)."""


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """``Retry-After`` as seconds: delta-seconds (fractions accepted) or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        seconds = when.timestamp() - (time.time() if now is None else now)
    return max(0.0, seconds)


class DeliveryConnector(ConnectorClient):
    """``ConnectorClient`` plus the calls the outbox needs. Either standalone (``start``/``close`` own a
    session) or :meth:`sharing` another client's session and tokens (then ``start``/``close`` do nothing)."""

    def __init__(self, tokens: OutboundTokenProvider, *, timeout_seconds: float = 10.0) -> None:
        super().__init__(tokens, timeout_seconds=timeout_seconds)
        self._owner: ConnectorClient | None = None

    @classmethod
    def sharing(cls, client: ConnectorClient) -> DeliveryConnector:
        """A DeliveryConnector on ``client``'s session and token provider (``client`` stays the owner)."""
        shared = cls(client._tokens)
        shared._timeout = client._timeout
        shared._owner = client
        return shared

    async def start(self) -> None:
        if self._owner is None:
            await super().start()

    async def close(self) -> None:
        if self._owner is None:
            await super().close()

    def _active_session(self) -> aiohttp.ClientSession:
        session = self._owner._session if self._owner is not None else self._session
        if session is None or session.closed:
            raise RequestNotSent("the Bot Connector client is not started (or already closed)")
        return session

    async def _call(self, method: str, url: str, body: dict[str, Any]) -> dict[str, Any]:
        session = self._active_session()
        try:
            headers = await self._headers()
        except TokenUnavailableError as error:
            raise RequestNotSent(f"no token: {error}") from error
        data = json.dumps(body, ensure_ascii=False).encode("utf-8")
        try:
            async with session.request(method, url, data=data, headers=headers) as response:
                text = await response.text()
                if response.status >= 300:
                    raise ConnectorHTTPError(response.status, text, parse_retry_after(response.headers.get("Retry-After")))
        except (aiohttp.ClientConnectorError, aiohttp.ConnectionTimeoutError) as error:
            raise RequestNotSent(f"{type(error).__name__}: {error}") from error
        except (TimeoutError, aiohttp.ClientError) as error:
            raise OutcomeUnknown(f"{type(error).__name__}: {error}") from error
        return self._parse_body(text)

    @staticmethod
    def _conversations(service_url: str) -> str:
        return f"{service_url.rstrip('/')}/v3/conversations"

    async def create_thread(
        self,
        service_url: str,
        channel_id: str,
        activity: dict[str, Any],
        *,
        tenant_id: str = "",
        team_id: str | None = None,
        bot_id: str | None = None,
    ) -> tuple[str, str | None]:
        """Start a new thread in a channel with ``activity`` as its root: (conversation id, root activity id).

        The conversation id is the thread's (``"{channelId};messageid={rootId}"``).
        """
        channel_data: dict[str, Any] = {"channel": {"id": channel_id}}
        if tenant_id:
            channel_data["tenant"] = {"id": tenant_id}
        if team_id:
            channel_data["team"] = {"id": team_id}
        body: dict[str, Any] = {"isGroup": True, "channelData": channel_data, "activity": activity}
        if tenant_id:
            body["tenantId"] = tenant_id
        if bot_id:
            body["bot"] = {"id": bot_id}
        result = await self._call("POST", self._conversations(service_url), body)
        conversation_id = str(result.get("id") or "")
        activity_id = result.get("activityId")
        if not activity_id and ";messageid=" in conversation_id:
            activity_id = conversation_id.rsplit(";messageid=", 1)[1]
        if not conversation_id:
            if not activity_id:
                raise OutcomeUnknown(f"create conversation answered without ids: {result!r}"[:300])
            conversation_id = f"{channel_id};messageid={activity_id}"
        elif ";messageid=" not in conversation_id and activity_id:
            conversation_id = f"{conversation_id};messageid={activity_id}"
        return conversation_id, (str(activity_id) if activity_id else None)

    async def send_activity(self, service_url: str, conversation_id: str, activity: dict[str, Any]) -> str | None:
        """POST an activity into a conversation (a thread: ``"{channelId};messageid={rootId}"``); its id."""
        return await self.send(service_url, conversation_id, activity)

    async def reply_in_thread(
        self, service_url: str, channel_id: str, root_activity_id: str, activity: dict[str, Any]
    ) -> str | None:
        return await self.send(service_url, f"{channel_id};messageid={root_activity_id}", activity)

    async def update_activity(
        self, service_url: str, conversation_id: str, activity_id: str, activity: dict[str, Any]
    ) -> None:
        await self.update(service_url, conversation_id, activity_id, activity)

    async def create_personal_conversation(
        self, service_url: str, user_id: str, *, tenant_id: str = "", bot_id: str | None = None
    ) -> str:
        """Open (or find: Teams answers the existing one) the bot's 1:1 chat with a user; its id.

        No activity is sent with it, so repeating this call has no visible effect.
        """
        body: dict[str, Any] = {"isGroup": False, "members": [{"id": user_id}]}
        if tenant_id:
            body["tenantId"] = tenant_id
            body["channelData"] = {"tenant": {"id": tenant_id}}
        if bot_id:
            body["bot"] = {"id": bot_id}
        result = await self._call("POST", self._conversations(service_url), body)
        conversation_id = result.get("id")
        if not conversation_id:
            raise OutcomeUnknown(f"create conversation answered without an id: {result!r}"[:300])
        return str(conversation_id)

