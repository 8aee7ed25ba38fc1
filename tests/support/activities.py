"""Factories for Teams-shaped inbound activities.

Each factory returns a plain ``dict`` exactly as the Bot Connector POSTs it to the bot's
``/api/messages`` (camelCase keys, ISO timestamps), ready for ``json.dumps`` or
``Activity().deserialize(...)``.

Fields shared by every factory (keyword-only; ``conversation_id``, ``user_id`` and ``service_url`` are
required):

``conversation_id``
    ``conversation.id`` (e.g. ``"a:1..."`` personal, ``"19:...@thread.tacv2;messageid=..."`` channel).
``user_id``
    ``from.id``, used verbatim (Teams user ids look like ``"29:1abc..."``).
``user_name`` (``"Test Bruger"``)
    ``from.name``.
``aad_object_id`` (derived)
    ``from.aadObjectId``; by default a UUID derived deterministically from ``user_id``.
``service_url``
    ``serviceUrl``, normally ``FakeConnector.url``.
``tenant_id`` (``"tenant-1"``)
    ``conversation.tenantId`` and ``channelData.tenant.id``.
``conversation_type`` (``"channel"`` if ``channel_id`` is given, else ``"personal"``)
    ``conversation.conversationType``; ``"channel"`` and ``"groupChat"`` also set ``conversation.isGroup``.
``activity_id`` (unique)
    ``id``.
``bot_id`` (``"28:bot"``), ``bot_name`` (``"Opgaveflytning"``)
    ``recipient``.
``team_id``, ``channel_id`` (``None``)
    Add ``channelData.team``/``channelData.channel`` (and ``teamsTeamId``/``teamsChannelId``).
``reply_to_id`` (``None``)
    ``replyToId``.
``locale`` (``"da-DK"``), ``timestamp`` (now, UTC)
    ``locale`` and ``timestamp`` (a ``datetime`` or an ISO string).

``bind(**shared)`` returns an object with the same factory methods with those fields pre-filled.
"""

from __future__ import annotations

import itertools
import time
import uuid
from datetime import UTC, datetime
from typing import Any, NotRequired, Required, TypedDict, Unpack

__all__ = [
    "ActivityFields",
    "aad_object_id_for",
    "BoundActivities",
    "bind",
    "conversation_update_members_added",
    "execute",
    "installation_update",
    "message",
    "new_activity_id",
    "submit",
]

_ids = itertools.count(int(time.time() * 1000))


class ActivityFields(TypedDict, total=False):
    """The keyword arguments shared by all factories (see the module docstring)."""

    conversation_id: Required[str]
    user_id: Required[str]
    service_url: Required[str]
    user_name: NotRequired[str]
    aad_object_id: NotRequired[str | None]
    tenant_id: NotRequired[str]
    conversation_type: NotRequired[str | None]
    activity_id: NotRequired[str | None]
    bot_id: NotRequired[str]
    bot_name: NotRequired[str]
    team_id: NotRequired[str | None]
    channel_id: NotRequired[str | None]
    reply_to_id: NotRequired[str | None]
    locale: NotRequired[str]
    timestamp: NotRequired[datetime | str | None]


def new_activity_id() -> str:
    """A fresh activity id, unique within the process (Teams-like numeric string)."""
    return str(next(_ids))


def aad_object_id_for(user_id: str) -> str:
    """The default ``from.aadObjectId`` for ``user_id`` (stable UUID derived from it)."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"aad:{user_id}"))


def _iso(ts: datetime | str | None) -> str:
    if isinstance(ts, str):
        return ts
    ts = ts or datetime.now(UTC)
    return ts.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _base(
    activity_type: str,
    *,
    conversation_id: str,
    user_id: str,
    service_url: str,
    user_name: str = "Test Bruger",
    aad_object_id: str | None = None,
    tenant_id: str = "tenant-1",
    conversation_type: str | None = None,
    activity_id: str | None = None,
    bot_id: str = "28:bot",
    bot_name: str = "Opgaveflytning",
    team_id: str | None = None,
    channel_id: str | None = None,
    reply_to_id: str | None = None,
    locale: str = "da-DK",
    timestamp: datetime | str | None = None,
) -> dict[str, Any]:
    if conversation_type is None:
        conversation_type = "channel" if channel_id else "personal"
    conversation: dict[str, Any] = {
        "id": conversation_id,
        "conversationType": conversation_type,
        "tenantId": tenant_id,
    }
    if conversation_type in ("channel", "groupChat"):
        conversation["isGroup"] = True
    channel_data: dict[str, Any] = {"tenant": {"id": tenant_id}}
    if team_id:
        channel_data["teamsTeamId"] = team_id
        channel_data["team"] = {"id": team_id}
    if channel_id:
        channel_data["teamsChannelId"] = channel_id
        channel_data["channel"] = {"id": channel_id}
    activity: dict[str, Any] = {
        "type": activity_type,
        "id": activity_id or new_activity_id(),
        "timestamp": _iso(timestamp),
        "serviceUrl": service_url,
        "channelId": "msteams",
        "from": {
            "id": user_id,
            "name": user_name,
            "aadObjectId": aad_object_id or aad_object_id_for(user_id),
        },
        "conversation": conversation,
        "recipient": {"id": bot_id, "name": bot_name},
        "channelData": channel_data,
        "locale": locale,
    }
    if reply_to_id:
        activity["replyToId"] = reply_to_id
    return activity


def _client_info(locale: str) -> dict[str, Any]:
    return {
        "type": "clientInfo",
        "locale": locale,
        "country": locale.rsplit("-", 1)[-1],
        "platform": "Web",
        "timezone": "Europe/Copenhagen",
    }


def message(
    text: str,
    *,
    conversation_id: str,
    user_id: str,
    service_url: str,
    user_name: str = "Test Bruger",
    aad_object_id: str | None = None,
    tenant_id: str = "tenant-1",
    conversation_type: str | None = None,
    activity_id: str | None = None,
    mention_bot: bool = False,
    bot_id: str = "28:bot",
    bot_name: str = "Opgaveflytning",
    team_id: str | None = None,
    channel_id: str | None = None,
    reply_to_id: str | None = None,
    locale: str = "da-DK",
    timestamp: datetime | str | None = None,
) -> dict[str, Any]:
    """A ``message`` activity with ``text`` (``textFormat`` plain, a ``clientInfo`` entity).

    With ``mention_bot=True`` the text becomes ``"<at>{bot_name}</at> {text}"`` and a ``mention`` entity
    for the bot is added first in ``entities``, as Teams does for channel/group @mentions.
    """
    activity = _base(
        "message",
        conversation_id=conversation_id,
        user_id=user_id,
        service_url=service_url,
        user_name=user_name,
        aad_object_id=aad_object_id,
        tenant_id=tenant_id,
        conversation_type=conversation_type,
        activity_id=activity_id,
        bot_id=bot_id,
        bot_name=bot_name,
        team_id=team_id,
        channel_id=channel_id,
        reply_to_id=reply_to_id,
        locale=locale,
        timestamp=timestamp,
    )
    entities: list[dict[str, Any]] = []
    if mention_bot:
        at = f"<at>{bot_name}</at>"
        text = f"{at} {text}"
        entities.append({"type": "mention", "text": at, "mentioned": {"id": bot_id, "name": bot_name}})
    entities.append(_client_info(locale))
    activity["text"] = text
    activity["textFormat"] = "plain"
    activity["attachments"] = []
    activity["entities"] = entities
    return activity


def submit(
    value: dict[str, Any], *, reply_to_id: str | None = None, **fields: Unpack[ActivityFields]
) -> dict[str, Any]:
    """A ``message`` with ``value`` and no ``text``, as an Adaptive Card ``Action.Submit`` arrives
    (``replyToId`` = the card's activity id if given)."""
    activity = _base("message", reply_to_id=reply_to_id, **fields)
    activity["value"] = value
    channel_data = activity["channelData"]
    channel_data["source"] = {"name": "message"}
    if reply_to_id:
        channel_data["legacy"] = {"replyToId": reply_to_id}
    activity["entities"] = [_client_info(activity["locale"])]
    return activity


def execute(
    verb: str, data: dict[str, Any], *, reply_to_id: str | None = None, **fields: Unpack[ActivityFields]
) -> dict[str, Any]:
    """An ``invoke`` named ``adaptiveCard/action`` (Adaptive Card Universal Action ``Action.Execute``),
    ``value = {"action": {"type": "Action.Execute", "verb": verb, "data": data}, "trigger": "manual"}``."""
    activity = _base("invoke", reply_to_id=reply_to_id, **fields)
    activity["name"] = "adaptiveCard/action"
    activity["value"] = {
        "action": {"type": "Action.Execute", "verb": verb, "data": data},
        "trigger": "manual",
    }
    activity["channelData"]["source"] = {"name": "message"}
    activity["entities"] = [_client_info(activity["locale"])]
    return activity


def installation_update(action: str = "add", **fields: Unpack[ActivityFields]) -> dict[str, Any]:
    """An ``installationUpdate`` with ``action`` ``"add"`` or ``"remove"`` (app installed/uninstalled)."""
    activity = _base("installationUpdate", **fields)
    activity["action"] = action
    activity["channelData"]["source"] = {"name": "message"}
    return activity


def conversation_update_members_added(
    *,
    bot_added: bool = True,
    members_added: list[dict[str, Any]] | None = None,
    **fields: Unpack[ActivityFields],
) -> dict[str, Any]:
    """A ``conversationUpdate`` with ``membersAdded``.

    ``membersAdded`` is ``members_added`` if given, else the bot (``bot_added=True``, as when the app is
    installed) or the sending user (``from``). In channel/team conversations ``channelData.eventType`` is
    ``"teamMemberAdded"``.
    """
    activity = _base("conversationUpdate", **fields)
    if members_added is None:
        if bot_added:
            members_added = [{"id": activity["recipient"]["id"]}]
        else:
            sender = activity["from"]
            members_added = [{"id": sender["id"], "aadObjectId": sender["aadObjectId"]}]
    activity["membersAdded"] = members_added
    if activity["conversation"]["conversationType"] == "channel" or "team" in activity["channelData"]:
        activity["channelData"]["eventType"] = "teamMemberAdded"
    return activity


class BoundActivities:
    """The factories with some shared fields pre-filled; per-call keywords override them::

    acts = activities.bind(conversation_id="a:1", user_id="29:anna", service_url=connector.url)
    acts.message("hej")
    acts.execute("save", {"x": 1}, reply_to_id=card_id)
    """

    def __init__(self, **shared: Any) -> None:
        self.shared = shared

    def message(self, text: str, **kwargs: Any) -> dict[str, Any]:
        return message(text, **{**self.shared, **kwargs})

    def submit(self, value: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        return submit(value, **{**self.shared, **kwargs})

    def execute(self, verb: str, data: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        return execute(verb, data, **{**self.shared, **kwargs})

    def installation_update(self, action: str = "add", **kwargs: Any) -> dict[str, Any]:
        return installation_update(action, **{**self.shared, **kwargs})

    def conversation_update_members_added(self, **kwargs: Any) -> dict[str, Any]:
        return conversation_update_members_added(**{**self.shared, **kwargs})


def bind(**shared: Any) -> BoundActivities:
    """Factories with ``shared`` keyword arguments (any of the common fields) pre-filled."""
    return BoundActivities(**shared)
