"""Forums in Teams: channel bindings, secretariats, admins, people, case threads, co-authors, reminders.

All inside the caller's transaction (``ForumRepo(repo.conn)``). Tables:

- ``forum_bindings``: forum id → the channel (and team) its cases are posted to.
- ``forum_members``: the secretariat of each forum (Entra object ids), who may record its decisions.
- ``bot_admins``: admins added in Teams (the first admins come from the setting ``BOT_ADMINS``).
- ``people``: what the bot knows about a person: Teams id (MRI), name, UPN, and how to reach their 1:1 chat.
- ``case_threads``: per case and forum, the thread the case lives in (``queued``: its create_thread outbox item
  is ``parent_key``) or that it waits for (``waiting``: the forum has no channel yet).
- ``case_participants``: co-authors of a case.
- ``reminders``: follow-up and evaluation reminders; a reminder is taken by exactly one process
  (``take_due``: ``FOR UPDATE SKIP LOCKED`` on PostgreSQL, the single writer on SQLite).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import DateTime, Index, Integer, String, Table, and_, delete, select, update
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.orm import Mapped, mapped_column

from storage.common import as_utc, dialect_insert, utcnow
from storage.models import Base


class ForumBindingRow(Base):
    __tablename__ = "forum_bindings"

    forum_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    team_id: Mapped[str] = mapped_column(String(200))
    channel_id: Mapped[str] = mapped_column(String(200), index=True)
    bound_by: Mapped[str] = mapped_column(String(128))
    bound_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class ForumMemberRow(Base):
    __tablename__ = "forum_members"

    forum_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    added_by: Mapped[str] = mapped_column(String(128))
    added_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class BotAdminRow(Base):
    __tablename__ = "bot_admins"

    user_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    added_by: Mapped[str] = mapped_column(String(128))
    added_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class PersonRow(Base):
    __tablename__ = "people"

    user_id: Mapped[str] = mapped_column(String(128), primary_key=True)  # Entra object id (or Teams id)
    mri: Mapped[str] = mapped_column(String(200), default="")  # 29:… Teams id
    name: Mapped[str] = mapped_column(String(200), default="")
    upn: Mapped[str] = mapped_column(String(300), default="")
    tenant_id: Mapped[str] = mapped_column(String(64), default="")
    service_url: Mapped[str] = mapped_column(String(2048), default="")
    conversation_id: Mapped[str] = mapped_column(String(300), default="")  # their 1:1 chat with the bot
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class CaseThreadRow(Base):
    __tablename__ = "case_threads"

    case_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    forum_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))  # case | orientation
    state: Mapped[str] = mapped_column(String(16))  # waiting | queued
    parent_key: Mapped[str] = mapped_column(String(300), default="")  # the create_thread outbox item
    team_id: Mapped[str] = mapped_column(String(200), default="")
    channel_id: Mapped[str] = mapped_column(String(200), default="")
    service_url: Mapped[str] = mapped_column(String(2048), default="")
    tenant_id: Mapped[str] = mapped_column(String(64), default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))

    __table_args__ = (Index("ix_case_threads_forum_state", "forum_id", "state"),)


class CaseParticipantRow(Base):
    __tablename__ = "case_participants"

    case_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    user_id: Mapped[str] = mapped_column(String(128), primary_key=True, index=True)
    role: Mapped[str] = mapped_column(String(16), default="coauthor")
    added_by: Mapped[str] = mapped_column(String(128))
    added_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class ReminderRow(Base):
    __tablename__ = "reminders"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    case_id: Mapped[int] = mapped_column(Integer, index=True)
    kind: Mapped[str] = mapped_column(String(16))  # followup | evaluation
    due_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    state: Mapped[str] = mapped_column(String(16))  # pending | sent | cancelled
    sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    sent_by: Mapped[str | None] = mapped_column(String(200), nullable=True)  # the worker/process that took it
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))

    __table_args__ = (Index("ix_reminders_state_due", "state", "due_at"),)


bindings_t = cast(Table, ForumBindingRow.__table__)
members_t = cast(Table, ForumMemberRow.__table__)
admins_t = cast(Table, BotAdminRow.__table__)
people_t = cast(Table, PersonRow.__table__)
threads_t = cast(Table, CaseThreadRow.__table__)
participants_t = cast(Table, CaseParticipantRow.__table__)
reminders_t = cast(Table, ReminderRow.__table__)

WAITING, QUEUED = "waiting", "queued"


@dataclass
class Binding:
    forum_id: str
    team_id: str
    channel_id: str
    bound_by: str
    bound_at: datetime


@dataclass
class Person:
    user_id: str
    mri: str = ""
    name: str = ""
    upn: str = ""
    tenant_id: str = ""
    service_url: str = ""
    conversation_id: str = ""


@dataclass
class CaseThread:
    case_id: int
    forum_id: str
    kind: str
    state: str
    parent_key: str
    team_id: str
    channel_id: str
    service_url: str
    tenant_id: str


@dataclass
class Reminder:
    id: int
    case_id: int
    kind: str
    due_at: datetime


def _binding(row: Any) -> Binding:
    m = row._mapping
    return Binding(m["forum_id"], m["team_id"], m["channel_id"], m["bound_by"], as_utc(m["bound_at"]))  # type: ignore[arg-type]


def _thread(row: Any) -> CaseThread:
    m = row._mapping
    return CaseThread(m["case_id"], m["forum_id"], m["kind"], m["state"], m["parent_key"], m["team_id"],
                      m["channel_id"], m["service_url"], m["tenant_id"])


class ForumRepo:
    def __init__(self, conn: AsyncConnection) -> None:
        self.conn = conn
        self._sqlite = conn.dialect.name == "sqlite"
        self._insert = dialect_insert(sqlite=self._sqlite)

    # --- bindings -------------------------------------------------------------------------
    async def bind(self, forum_id: str, *, team_id: str, channel_id: str, by: str) -> Binding | None:
        """Bind a forum to a channel (moving it if it was bound elsewhere); returns the previous binding."""
        before = await self.binding(forum_id)
        now = utcnow()
        stmt = self._insert(bindings_t).values(forum_id=forum_id, team_id=team_id, channel_id=channel_id,
                                               bound_by=by, bound_at=now)
        await self.conn.execute(stmt.on_conflict_do_update(
            index_elements=["forum_id"], set_={"team_id": team_id, "channel_id": channel_id, "bound_by": by,
                                               "bound_at": now}))
        return before

    async def unbind(self, forum_id: str, channel_id: str) -> bool:
        result = await self.conn.execute(delete(bindings_t).where(
            and_(bindings_t.c.forum_id == forum_id, bindings_t.c.channel_id == channel_id)))
        return result.rowcount == 1

    async def binding(self, forum_id: str) -> Binding | None:
        row = (await self.conn.execute(select(bindings_t).where(bindings_t.c.forum_id == forum_id))).first()
        return _binding(row) if row else None

    async def bindings(self) -> dict[str, Binding]:
        bindings = [_binding(row) for row in (await self.conn.execute(select(bindings_t))).all()]
        return {b.forum_id: b for b in bindings}

    async def forums_in_channel(self, channel_id: str) -> list[str]:
        rows = await self.conn.execute(
            select(bindings_t.c.forum_id).where(bindings_t.c.channel_id == channel_id).order_by(bindings_t.c.forum_id))
        return [r[0] for r in rows.all()]

    # --- secretariats ---------------------------------------------------------------------
    async def add_member(self, forum_id: str, user_id: str, *, by: str) -> bool:
        stmt = self._insert(members_t).values(forum_id=forum_id, user_id=user_id, added_by=by, added_at=utcnow())
        result = await self.conn.execute(stmt.on_conflict_do_nothing(index_elements=["forum_id", "user_id"]))
        return result.rowcount == 1

    async def remove_member(self, forum_id: str, user_id: str) -> bool:
        result = await self.conn.execute(delete(members_t).where(
            and_(members_t.c.forum_id == forum_id, members_t.c.user_id == user_id)))
        return result.rowcount == 1

    async def members(self, forum_id: str) -> list[str]:
        rows = await self.conn.execute(
            select(members_t.c.user_id).where(members_t.c.forum_id == forum_id).order_by(members_t.c.added_at))
        return [r[0] for r in rows.all()]

    async def is_member(self, forum_id: str, user_id: str) -> bool:
        row = (await self.conn.execute(select(members_t.c.user_id).where(
            and_(members_t.c.forum_id == forum_id, members_t.c.user_id == user_id)))).first()
        return row is not None

    # --- admins ---------------------------------------------------------------------------
    async def add_admin(self, user_id: str, *, by: str) -> bool:
        stmt = self._insert(admins_t).values(user_id=user_id, added_by=by, added_at=utcnow())
        result = await self.conn.execute(stmt.on_conflict_do_nothing(index_elements=["user_id"]))
        return result.rowcount == 1

    async def remove_admin(self, user_id: str) -> bool:
        result = await self.conn.execute(delete(admins_t).where(admins_t.c.user_id == user_id))
        return result.rowcount == 1

    async def admins(self) -> list[str]:
        rows = await self.conn.execute(select(admins_t.c.user_id).order_by(admins_t.c.added_at))
        return [r[0] for r in rows.all()]

    # --- people ---------------------------------------------------------------------------
    async def remember_person(self, person: Person) -> None:
        """Upsert what is known; empty fields never overwrite known values."""
        now = utcnow()
        values = {k: v for k, v in person.__dict__.items() if v or k == "user_id"}
        stmt = self._insert(people_t).values(
            **{"mri": "", "name": "", "upn": "", "tenant_id": "", "service_url": "", "conversation_id": "",
               **values, "updated_at": now})
        update_set = {k: v for k, v in values.items() if k != "user_id"}
        update_set["updated_at"] = now
        await self.conn.execute(stmt.on_conflict_do_update(index_elements=["user_id"], set_=update_set))

    async def people(self, user_ids: list[str]) -> dict[str, Person]:
        if not user_ids:
            return {}
        rows = await self.conn.execute(select(people_t).where(people_t.c.user_id.in_(user_ids)))
        found: dict[str, Person] = {}
        for row in rows.all():
            m = row._mapping
            found[m["user_id"]] = Person(m["user_id"], m["mri"], m["name"], m["upn"], m["tenant_id"],
                                         m["service_url"], m["conversation_id"])
        return found

    # --- case threads ---------------------------------------------------------------------
    async def add_thread(self, thread: CaseThread) -> bool:
        now = utcnow()
        stmt = self._insert(threads_t).values(**thread.__dict__, created_at=now, updated_at=now)
        result = await self.conn.execute(stmt.on_conflict_do_nothing(index_elements=["case_id", "forum_id"]))
        return result.rowcount == 1

    async def queue_thread(self, case_id: int, forum_id: str, *, parent_key: str, team_id: str, channel_id: str,
                           service_url: str, tenant_id: str, kind: str | None = None) -> None:
        values: dict[str, Any] = {"state": QUEUED, "parent_key": parent_key, "team_id": team_id,
                                  "channel_id": channel_id, "service_url": service_url, "tenant_id": tenant_id,
                                  "updated_at": utcnow()}
        if kind:
            values["kind"] = kind
        await self.conn.execute(update(threads_t).where(
            and_(threads_t.c.case_id == case_id, threads_t.c.forum_id == forum_id)).values(**values))

    async def set_thread_kind(self, case_id: int, forum_id: str, kind: str) -> None:
        await self.conn.execute(update(threads_t).where(
            and_(threads_t.c.case_id == case_id, threads_t.c.forum_id == forum_id)).values(kind=kind,
                                                                                          updated_at=utcnow()))

    async def threads(self, case_id: int) -> list[CaseThread]:
        rows = await self.conn.execute(
            select(threads_t).where(threads_t.c.case_id == case_id).order_by(threads_t.c.created_at))
        return [_thread(r) for r in rows.all()]

    async def posted_threads(self, forum_id: str, *, limit: int = 500) -> list[CaseThread]:
        """The forum's threads that were posted (queued), newest cases first."""
        rows = await self.conn.execute(select(threads_t).where(
            and_(threads_t.c.forum_id == forum_id, threads_t.c.state == QUEUED))
            .order_by(threads_t.c.case_id.desc()).limit(limit))
        return [_thread(r) for r in rows.all()]

    async def waiting_threads(self, forum_id: str) -> list[CaseThread]:
        rows = await self.conn.execute(select(threads_t).where(
            and_(threads_t.c.forum_id == forum_id, threads_t.c.state == WAITING)).order_by(threads_t.c.case_id))
        return [_thread(r) for r in rows.all()]

    async def waiting_counts(self) -> dict[str, int]:
        rows = await self.conn.execute(select(threads_t.c.forum_id).where(threads_t.c.state == WAITING))
        counts: dict[str, int] = {}
        for (forum_id,) in rows.all():
            counts[forum_id] = counts.get(forum_id, 0) + 1
        return counts

    async def case_ids_in_forums(self, forum_ids: list[str]) -> set[int]:
        if not forum_ids:
            return set()
        rows = await self.conn.execute(select(threads_t.c.case_id).where(threads_t.c.forum_id.in_(forum_ids)))
        return {r[0] for r in rows.all()}

    # --- co-authors -----------------------------------------------------------------------
    async def add_participant(self, case_id: int, user_id: str, *, by: str) -> bool:
        stmt = self._insert(participants_t).values(case_id=case_id, user_id=user_id, role="coauthor", added_by=by,
                                                   added_at=utcnow())
        result = await self.conn.execute(stmt.on_conflict_do_nothing(index_elements=["case_id", "user_id"]))
        return result.rowcount == 1

    async def remove_participant(self, case_id: int, user_id: str) -> bool:
        result = await self.conn.execute(delete(participants_t).where(
            and_(participants_t.c.case_id == case_id, participants_t.c.user_id == user_id)))
        return result.rowcount == 1

    async def participants(self, case_id: int) -> list[str]:
        rows = await self.conn.execute(select(participants_t.c.user_id).where(participants_t.c.case_id == case_id)
                                       .order_by(participants_t.c.added_at))
        return [r[0] for r in rows.all()]

    async def cases_of_participant(self, user_id: str) -> list[int]:
        rows = await self.conn.execute(select(participants_t.c.case_id).where(participants_t.c.user_id == user_id))
        return [r[0] for r in rows.all()]

    # --- reminders ------------------------------------------------------------------------
    async def schedule_reminders(self, case_id: int, due: list[tuple[str, datetime]]) -> None:
        """Replace the case's pending reminders with these (kind, due) pairs."""
        await self.cancel_reminders(case_id)
        now = utcnow()
        for kind, at in due:
            await self.conn.execute(reminders_t.insert().values(case_id=case_id, kind=kind, due_at=at,
                                                                state="pending", created_at=now))

    async def cancel_reminders(self, case_id: int) -> None:
        await self.conn.execute(update(reminders_t).where(
            and_(reminders_t.c.case_id == case_id, reminders_t.c.state == "pending")).values(state="cancelled"))

    async def pending_reminders(self, case_id: int) -> list[Reminder]:
        rows = await self.conn.execute(select(reminders_t).where(
            and_(reminders_t.c.case_id == case_id, reminders_t.c.state == "pending")).order_by(reminders_t.c.due_at))
        return [Reminder(r._mapping["id"], case_id, r._mapping["kind"], as_utc(r._mapping["due_at"]))  # type: ignore[arg-type]
                for r in rows.all()]

    async def take_due(self, now: datetime, *, worker: str, limit: int = 50) -> list[Reminder]:
        """Mark due reminders sent and return them: each is taken by exactly one process."""
        r = reminders_t.c
        pick = select(r.id).where(and_(r.state == "pending", r.due_at <= now)).order_by(r.due_at).limit(limit)
        if not self._sqlite:
            pick = pick.with_for_update(skip_locked=True)
        ids = [row[0] for row in (await self.conn.execute(pick)).all()]
        if not ids:
            return []
        result = await self.conn.execute(
            update(reminders_t).where(and_(r.id.in_(ids), r.state == "pending"))
            .values(state="sent", sent_at=now, sent_by=worker)
            .returning(r.id, r.case_id, r.kind, r.due_at))
        return [Reminder(i, c, k, as_utc(d)) for i, c, k, d in result.all()]  # type: ignore[arg-type]
