"""Teams the bot is installed in: remember them (for forum channels) and tell admins about removals."""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from adaptive_cards.common import card_activity
from adaptive_cards.messages import channel_help_card, notice_card, team_welcome_card
from storage.db import Database
from storage.outbox import OutboxRepo
from storage.repositories import Repo
from storage.teams import TeamRepo

log = logging.getLogger(__name__)

_GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")


def is_entra_object_id(value: str) -> bool:
    """An admin configured by Entra object id can be sent a 1:1 message; one configured by UPN cannot."""
    return bool(_GUID.match(value))


@dataclass(frozen=True)
class TeamContext:
    team_id: str
    tenant_id: str
    service_url: str
    bot_id: str
    by: str = ""  # who installed/removed (Entra object id or Teams id)


class TeamService:
    def __init__(self, database: Database, *, admins: Sequence[str] = (),
                 on_installed: Callable[[Repo, str], Awaitable[bool]] | None = None,
                 wake: Callable[[], None] | None = None) -> None:
        self.db = database
        self.admins = list(admins)
        # e.g. ForumService.team_installed: post cases that waited for forums bound in this team
        self.on_installed = on_installed
        self.wake = wake or (lambda: None)

    async def installed(self, ctx: TeamContext, *, team_name: str, channels: dict[str, str],
                        activity_id: str | None) -> bool:
        """Record the team and its channels; greet the team once (a new post in General, via the outbox)."""
        async with self.db.transaction() as repo:
            if activity_id and not await repo.claim_activity(activity_id):
                return False
            new = await TeamRepo(repo.conn).installed(
                team_id=ctx.team_id, tenant_id=ctx.tenant_id, service_url=ctx.service_url, name=team_name,
                by=ctx.by, channels=channels, bot_id=ctx.bot_id)
            if new:
                card = team_welcome_card(team_name)
                await OutboxRepo(repo.conn).enqueue(
                    "create_thread",
                    {"service_url": ctx.service_url, "tenant_id": ctx.tenant_id, "channel_id": ctx.team_id,
                     "team_id": ctx.team_id, "bot_id": ctx.bot_id},
                    card_activity(card, "Opgaveflytning er tilføjet teamet"),
                    dedup_key=f"team-welcome:{ctx.team_id}:{activity_id or ''}",
                    thread_key=ctx.team_id,
                )
                if self.on_installed is not None:
                    await self.on_installed(repo, ctx.team_id)
        if new:
            self.wake()
        log.info("installed in team %s (%d channels, new=%s)", ctx.team_id, len(channels), new)
        return new

    async def removed(self, ctx: TeamContext, *, activity_id: str | None) -> bool:
        """Stop treating the team as installed and tell the admins in their 1:1 chats (via the outbox)."""
        async with self.db.transaction() as repo:
            if activity_id and not await repo.claim_activity(activity_id):
                return False
            teams = TeamRepo(repo.conn)
            was_installed = await teams.removed(ctx.team_id)
            if not was_installed:
                return False
            team = await teams.get(ctx.team_id)
            name = team.name if team and team.name else ctx.team_id
            card = notice_card(
                "Opgaveflytning er fjernet fra et team",
                [f"Botten er fjernet fra teamet **{name}**. Der postes ikke længere sager i teamets kanaler.",
                 "Fora, der var knyttet til kanaler i teamet, skal sættes op igen i et andet team."],
                buttons=False,
            )
            outbox = OutboxRepo(repo.conn)
            for admin in self.admins:
                if not is_entra_object_id(admin):
                    log.warning("admin %r is not an Entra object id; cannot open a 1:1 chat to tell them", admin)
                    continue
                await outbox.enqueue(
                    "send_personal",
                    {"service_url": ctx.service_url, "tenant_id": ctx.tenant_id, "user_id": admin,
                     "bot_id": ctx.bot_id},
                    card_activity(card, "Opgaveflytning er fjernet fra et team"),
                    dedup_key=f"team-removed:{ctx.team_id}:{activity_id or ''}:{admin}",
                    thread_key=f"personal:{admin}",
                )
        log.info("removed from team %s", ctx.team_id)
        return True

    async def channel_changed(self, ctx: TeamContext, channel_id: str, name: str | None,
                              activity_id: str | None) -> None:
        async with self.db.transaction() as repo:
            if activity_id and not await repo.claim_activity(activity_id):
                return
            teams = TeamRepo(repo.conn)
            if await teams.get(ctx.team_id) is not None:
                await teams.channel_changed(ctx.team_id, channel_id, name)

    @staticmethod
    def help_card() -> dict:
        return channel_help_card()

