"""The Bot Framework activity as it arrives over HTTP, parsed with pydantic (only what we use)."""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from adaptive_cards.common import CARD_CONTENT_TYPE, card_activity


class _Lenient(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)


class ChannelAccount(_Lenient):
    id: str = Field(max_length=512)
    name: str | None = Field(default=None, max_length=512)
    aad_object_id: str | None = Field(default=None, alias="aadObjectId", max_length=128)


class ConversationAccount(_Lenient):
    id: str = Field(max_length=1024)
    conversation_type: str | None = Field(default=None, alias="conversationType")
    tenant_id: str | None = Field(default=None, alias="tenantId")
    is_group: bool | None = Field(default=None, alias="isGroup")


class IncomingActivity(_Lenient):
    type: str = Field(max_length=64)
    id: str | None = Field(default=None, max_length=512)
    name: str | None = Field(default=None, max_length=256)
    text: str | None = None
    value: Any = None
    action: str | None = None
    channel_id: str | None = Field(default=None, alias="channelId")
    service_url: str | None = Field(default=None, alias="serviceUrl", max_length=2048)
    from_: ChannelAccount | None = Field(default=None, alias="from")
    recipient: ChannelAccount | None = None
    conversation: ConversationAccount | None = None
    reply_to_id: str | None = Field(default=None, alias="replyToId", max_length=512)
    entities: list[dict[str, Any]] | None = None
    channel_data: dict[str, Any] | None = Field(default=None, alias="channelData")
    members_added: list[ChannelAccount] | None = Field(default=None, alias="membersAdded")
    members_removed: list[ChannelAccount] | None = Field(default=None, alias="membersRemoved")
    locale: str | None = None

    @property
    def tenant_id(self) -> str:
        tenant = (self.channel_data or {}).get("tenant")
        if isinstance(tenant, dict) and isinstance(tenant.get("id"), str):
            return tenant["id"]
        return (self.conversation.tenant_id if self.conversation else None) or ""

    @property
    def team_id(self) -> str | None:
        team = (self.channel_data or {}).get("team")
        if isinstance(team, dict) and isinstance(team.get("id"), str) and team["id"]:
            return str(team["id"])
        return None

    @property
    def is_personal(self) -> bool:
        return self.conversation is not None and (self.conversation.conversation_type or "personal") == "personal"

    def text_without_mention(self) -> str:
        """The text with the bot's own @mention removed (as ``TurnContext.remove_recipient_mention``)."""
        text = self.text or ""
        recipient_id = self.recipient.id if self.recipient else None
        for entity in self.entities or []:
            if entity.get("type") != "mention":
                continue
            mentioned = entity.get("mentioned") or {}
            if recipient_id and mentioned.get("id") == recipient_id and isinstance(entity.get("text"), str):
                text = text.replace(entity["text"], " ")
        text = re.sub(r"<at>[^<]*</at>", " ", text)
        return " ".join(text.split())


def card_message(card: dict[str, Any], incoming: IncomingActivity, summary: str = "") -> dict[str, Any]:
    """A reply activity carrying one Adaptive Card, addressed back to the sender's conversation."""
    activity = card_activity(card, summary)
    if incoming.recipient:
        activity["from"] = {"id": incoming.recipient.id, "name": incoming.recipient.name}
    if incoming.from_:
        activity["recipient"] = {"id": incoming.from_.id, "name": incoming.from_.name}
    if incoming.conversation:
        activity["conversation"] = {"id": incoming.conversation.id}
    if incoming.id:
        activity["replyToId"] = incoming.id
    return activity


def invoke_card_response(card: dict[str, Any]) -> dict[str, Any]:
    """Body of the HTTP response to an ``adaptiveCard/action`` invoke: the card replaces the pressed one."""
    return {"statusCode": 200, "type": CARD_CONTENT_TYPE, "value": card}
