"""Admins see the messages the bot could not deliver (failed or outcome unknown) and queue them again."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from adaptive_cards import verbs
from adaptive_cards.messages import FailedDelivery, deliveries_card, notice_card
from dialogs.forums import ForumActor, ForumService, Outgoing
from storage.forums import ForumRepo
from storage.outbox import IN_DOUBT, OutboxItem, OutboxRepo

SHOWN = 10

_WHAT = {"create_thread": "Ny tråd", "reply": "Svar i tråd", "update": "Opdatering af kort",
         "send_personal": "1:1-besked"}


def _about(item: OutboxItem) -> str:
    payload = item.payload
    text = payload.get("summary") or payload.get("text") or ""
    return str(text)


class DeliveryAdmin:
    def __init__(self, forums: ForumService, *, wake: Callable[[], None] | None = None) -> None:
        self.forums = forums
        self.db = forums.db
        self._wake = wake

    async def handle(self, actor: ForumActor, verb: str, data: Mapping[str, Any]) -> Outgoing:
        notices: list[str] = []
        info: list[str] = []
        retried = False
        async with self.db.transaction() as repo:
            if not await self.forums.is_admin(ForumRepo(repo.conn), actor):
                return Outgoing(*_not_admin())
            outbox = OutboxRepo(repo.conn)
            if verb == verbs.DELIVERIES_RETRY:
                item_id = data.get("item")
                if isinstance(item_id, int) and not isinstance(item_id, bool) and await outbox.retry_failed(item_id):
                    info.append("Beskeden er sat i kø igen og sendes om lidt.")
                    retried = True
                else:
                    notices.append("Beskeden er allerede sat i kø igen eller leveret.")
            counts = await outbox.counts()
            total = counts.get("failed", 0) + counts.get(IN_DOUBT, 0)
            items = [
                FailedDelivery(i.id, _WHAT.get(i.kind, i.kind), _about(i), i.last_error or "", i.state == IN_DOUBT,
                               i.attempts, i.updated_at)
                for i in await outbox.list_failed(limit=SHOWN)
            ]
        if retried:
            (self._wake or self.forums.on_queued)()
        return Outgoing(deliveries_card(items, total=total, notices=notices, info=info), "Leveringer")


def _not_admin() -> tuple[dict[str, Any], str]:
    return notice_card("Kun administratorer kan se leveringer",
                       ["Oversigten over beskeder, der ikke kunne leveres, er for administratorer af Opgaveflytning."],
                       buttons=False), "Ingen adgang"
