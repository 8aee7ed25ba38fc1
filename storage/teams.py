"""Teams the bot is installed in and their channels (so forums can later be bound to channels)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import cast

from sqlalchemy import Boolean, DateTime, ForeignKey, String, Table, delete, select, update
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.orm import Mapped, mapped_column

from storage.common import as_utc, dialect_insert, utcnow
from storage.models import Base


class TeamRow(Base):
    __tablename__ = "teams"

    team_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(String(64), default="")
    service_url: Mapped[str] = mapped_column(String(2048))
    name: Mapped[str] = mapped_column(String(300), default="")
    installed: Mapped[bool] = mapped_column(Boolean, default=True)
    installed_by: Mapped[str] = mapped_column(String(128), default="")
    installed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    removed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    bot_id: Mapped[str | None] = mapped_column(String(200), nullable=True)  # the bot's id in this team


class TeamChannelRow(Base):
    __tablename__ = "team_channels"

    channel_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    team_id: Mapped[str] = mapped_column(ForeignKey("teams.team_id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(300), default="")
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


teams_t = cast(Table, TeamRow.__table__)
channels_t = cast(Table, TeamChannelRow.__table__)


@dataclass
class Team:
    team_id: str
    tenant_id: str
    service_url: str
    name: str
    installed: bool
    installed_by: str
    installed_at: datetime
    removed_at: datetime | None
    channels: dict[str, str]  # channel id → name
    bot_id: str = ""


class TeamRepo:
    """Reads and writes of the team registry inside one transaction (``Repo.conn``)."""

    def __init__(self, conn: AsyncConnection) -> None:
        self.conn = conn
        self._insert = dialect_insert(sqlite=conn.dialect.name == "sqlite")

    async def installed(self, *, team_id: str, tenant_id: str, service_url: str, name: str, by: str,
                        channels: dict[str, str], bot_id: str = "") -> bool:
        """Record an installation (or a re-installation); True if the team was not installed before."""
        now = utcnow()
        before = await self.get(team_id)
        stmt = self._insert(teams_t).values(
            team_id=team_id, tenant_id=tenant_id, service_url=service_url, name=name, installed=True,
            installed_by=by, installed_at=now, removed_at=None, updated_at=now, bot_id=bot_id,
        )
        await self.conn.execute(stmt.on_conflict_do_update(
            index_elements=["team_id"],
            set_={"tenant_id": tenant_id, "service_url": service_url, "name": name or (before.name if before else ""),
                  "installed": True, "removed_at": None, "updated_at": now, "bot_id": bot_id or teams_t.c.bot_id,
                  **({} if before and before.installed else {"installed_by": by, "installed_at": now})},
        ))
        if channels:
            await self.set_channels(team_id, channels)
        return before is None or not before.installed

    async def set_channels(self, team_id: str, channels: dict[str, str]) -> None:
        now = utcnow()
        await self.conn.execute(delete(channels_t).where(
            channels_t.c.team_id == team_id, channels_t.c.channel_id.not_in(list(channels))))
        for channel_id, name in channels.items():
            stmt = self._insert(channels_t).values(channel_id=channel_id, team_id=team_id, name=name, updated_at=now)
            await self.conn.execute(stmt.on_conflict_do_update(
                index_elements=["channel_id"], set_={"name": name, "team_id": team_id, "updated_at": now}))

    async def channel_changed(self, team_id: str, channel_id: str, name: str | None) -> None:
        """A channel was created or renamed (``name``) or deleted (``None``)."""
        if name is None:
            await self.conn.execute(delete(channels_t).where(channels_t.c.channel_id == channel_id))
            return
        now = utcnow()
        stmt = self._insert(channels_t).values(channel_id=channel_id, team_id=team_id, name=name, updated_at=now)
        await self.conn.execute(stmt.on_conflict_do_update(
            index_elements=["channel_id"], set_={"name": name, "updated_at": now}))

    async def removed(self, team_id: str) -> bool:
        """Record that the bot was removed; True if it was installed until now."""
        now = utcnow()
        result = await self.conn.execute(
            update(teams_t).where(teams_t.c.team_id == team_id, teams_t.c.installed.is_(True))
            .values(installed=False, removed_at=now, updated_at=now))
        return result.rowcount == 1

    async def is_installed(self, team_id: str) -> bool | None:
        """Whether the bot is installed in the team (None: the team is unknown)."""
        row = (await self.conn.execute(select(teams_t.c.installed).where(teams_t.c.team_id == team_id))).first()
        return None if row is None else bool(row[0])

    async def any_contact(self) -> tuple[str, str]:
        """A service URL and the bot's id from a known team (for 1:1 messages to people the bot has not met;
        the installed teams first): ``("", "")`` when no team is known."""
        row = (await self.conn.execute(
            select(teams_t.c.service_url, teams_t.c.bot_id)
            .order_by(teams_t.c.installed.desc(), teams_t.c.bot_id.is_(None), teams_t.c.updated_at.desc())
            .limit(1))).first()
        return (str(row[0] or ""), str(row[1] or "")) if row else ("", "")

    async def installed_teams(self, limit: int = 10) -> list[tuple[str, str]]:
        """(team id, service URL) of teams the bot is installed in."""
        rows = await self.conn.execute(
            select(teams_t.c.team_id, teams_t.c.service_url).where(teams_t.c.installed.is_(True)).limit(limit))
        return [(str(t), str(u)) for t, u in rows.all()]

    async def channel_team(self, channel_id: str) -> Team | None:
        """The team a channel belongs to."""
        row = (await self.conn.execute(
            select(channels_t.c.team_id).where(channels_t.c.channel_id == channel_id))).first()
        return await self.get(row[0]) if row else None

    async def get(self, team_id: str) -> Team | None:
        row = (await self.conn.execute(select(teams_t).where(teams_t.c.team_id == team_id))).first()
        if row is None:
            return None
        channels = await self.conn.execute(
            select(channels_t.c.channel_id, channels_t.c.name).where(channels_t.c.team_id == team_id)
            .order_by(channels_t.c.name))
        m = row._mapping
        return Team(
            team_id=m["team_id"], tenant_id=m["tenant_id"], service_url=m["service_url"], name=m["name"],
            installed=bool(m["installed"]), installed_by=m["installed_by"],
            installed_at=as_utc(m["installed_at"]),  # type: ignore[arg-type]
            removed_at=as_utc(m["removed_at"]), channels={cid: name for cid, name in channels.all()},
            bot_id=m["bot_id"] or "",
        )
