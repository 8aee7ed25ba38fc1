"""The persistent outbox: every proactive post, thread reply and card update is queued here first.

A turn enqueues inside its own transaction (``OutboxRepo.of(repo).enqueue(...)``), so a message is queued
exactly when the turn's writes commit, and an enqueue with a ``dedup_key`` that exists is a no-op (a
retried turn never queues twice). ``bot.delivery.DeliveryWorker`` claims due items and sends them.

States of an item::

    pending ──claim──▶ claimed ──begin_send──▶ sending ──▶ done
       ▲                  │                       │ ├───▶ pending    (mark_retry: not delivered, try later)
       │                  └──release──▶ pending   │ ├───▶ failed     (mark_failed: visible, retry_failed)
       └────────── retry_failed ◀─────────────────┘ └───▶ in_doubt   (outcome unknown, see bot/delivery.py)
    pending (update) ──coalesced into an older pending update of the same activity──▶ superseded

Ordering: items of one ``thread_key`` are delivered one at a time in enqueue order. An item is claimable
only when no earlier item of its thread is in flight (``claimed``/``sending``) or waiting to be retried; an
earlier item that was never tried and is scheduled for later (``not_before``) does not hold the thread up.
Finished items (``done``, ``failed``, ``in_doubt``, ``superseded``) never hold a thread up.

Claims are exclusive across processes: PostgreSQL picks rows with ``SELECT … FOR UPDATE SKIP LOCKED`` and
then flips them to ``claimed`` with a lease; SQLite has one writer at a time. A claimed item whose lease ran
out (its worker died) can be claimed again; ``sending_at`` stays set on such an item, so the next worker
knows that a request may already have been made.

``outbox_sends`` is the shared log of requests made per rate-limit bucket (sliding windows, see
:meth:`OutboxRepo.reserve`): limits hold across worker processes and across restarts.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, cast

from sqlalchemy import (
    BigInteger,
    DateTime,
    Index,
    Integer,
    String,
    Table,
    Text,
    and_,
    delete,
    exists,
    func,
    insert,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.orm import Mapped, mapped_column

from storage.common import as_utc, dialect_insert, utcnow
from storage.models import Base

if TYPE_CHECKING:
    from storage.repositories import Repo

KINDS = frozenset({"create_thread", "reply", "update", "send_personal"})

PENDING = "pending"
CLAIMED = "claimed"
SENDING = "sending"
DONE = "done"
FAILED = "failed"
IN_DOUBT = "in_doubt"
SUPERSEDED = "superseded"
IN_FLIGHT = (CLAIMED, SENDING)
FINISHED = (DONE, FAILED, IN_DOUBT, SUPERSEDED)

DEFAULT_LEASE = timedelta(seconds=60)


class OutboxRow(Base):
    """One outgoing Bot Connector call (see the module docstring for the states)."""

    __tablename__ = "outbox"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(20))  # create_thread | reply | update | send_personal
    dedup_key: Mapped[str] = mapped_column(String(300), unique=True)
    thread_key: Mapped[str] = mapped_column(String(300))  # rate-limit bucket and ordering scope
    tenant_id: Mapped[str] = mapped_column(String(64), default="")
    # updates of one activity ("{conversation or parent:key}|{activity id or root}"), for coalescing
    coalesce_key: Mapped[str | None] = mapped_column(String(700), nullable=True)
    # dedup key of the create_thread item whose result supplies the conversation / root activity
    parent_key: Mapped[str | None] = mapped_column(String(300), nullable=True)
    target: Mapped[str] = mapped_column(Text)  # JSON: service_url, channel/conversation id, tenant, activity id
    payload: Mapped[str] = mapped_column(Text)  # JSON: the activity
    state: Mapped[str] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(Integer, default=0)  # requests made (begin_send)
    due_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    claimed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    lease_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    worker_id: Mapped[str | None] = mapped_column(String(200), nullable=True)
    # set before a request is made, cleared once its outcome is known: set on a claimed item = "a request
    # may have reached the Bot Connector" (the previous worker died or the outcome was ambiguous)
    sending_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    result: Mapped[str | None] = mapped_column(Text, nullable=True)  # JSON, e.g. conversation_id, activity_id
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))

    __table_args__ = (
        Index("ix_outbox_state_due", "state", "due_at"),
        Index("ix_outbox_thread_state_id", "thread_key", "state", "id"),
        Index("ix_outbox_coalesce", "coalesce_key", "state"),
    )


class OutboxSendRow(Base):
    """One request counted against a rate-limit bucket (``thread:…`` or ``tenant:…``) at ``at_us``."""

    __tablename__ = "outbox_sends"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    bucket: Mapped[str] = mapped_column(String(300))
    at_us: Mapped[int] = mapped_column(BigInteger)  # microseconds since the epoch (the worker's clock)

    __table_args__ = (Index("ix_outbox_sends_bucket_at", "bucket", "at_us"),)


outbox_t = cast(Table, OutboxRow.__table__)
sends_t = cast(Table, OutboxSendRow.__table__)
_earlier = outbox_t.alias("earlier")


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


# A 1:1 message about a case may name the case's thread item (target ``link_parent``); the delivery worker
# replaces this placeholder in its payload with the deep link to that thread once it exists.
THREAD_URL_PLACEHOLDER = "{{thread_url}}"


def thread_conversation_id(channel_id: str, root_activity_id: str) -> str:
    """The conversation id of a channel thread (replies go there; ReplyToActivity does not thread)."""
    return f"{channel_id};messageid={root_activity_id}"


@dataclass
class OutboxItem:
    id: int
    kind: str
    dedup_key: str
    thread_key: str
    tenant_id: str
    coalesce_key: str | None
    parent_key: str | None
    target: dict[str, Any]
    payload: dict[str, Any]
    state: str
    attempts: int
    due_at: datetime
    claimed_at: datetime | None
    lease_until: datetime | None
    worker_id: str | None
    sending_at: datetime | None
    last_error: str | None
    result: dict[str, Any] | None
    created_at: datetime
    updated_at: datetime

    @classmethod
    def from_row(cls, row: Any) -> OutboxItem:
        m = row._mapping
        return cls(
            id=m["id"],
            kind=m["kind"],
            dedup_key=m["dedup_key"],
            thread_key=m["thread_key"],
            tenant_id=m["tenant_id"],
            coalesce_key=m["coalesce_key"],
            parent_key=m["parent_key"],
            target=json.loads(m["target"]),
            payload=json.loads(m["payload"]),
            state=m["state"],
            attempts=m["attempts"],
            due_at=as_utc(m["due_at"]),  # type: ignore[arg-type]
            claimed_at=as_utc(m["claimed_at"]),
            lease_until=as_utc(m["lease_until"]),
            worker_id=m["worker_id"],
            sending_at=as_utc(m["sending_at"]),
            last_error=m["last_error"],
            result=json.loads(m["result"]) if m["result"] else None,
            created_at=as_utc(m["created_at"]),  # type: ignore[arg-type]
            updated_at=as_utc(m["updated_at"]),  # type: ignore[arg-type]
        )


@dataclass
class OutboxResult:
    """What became of an enqueued item (``result_of``)."""

    id: int
    kind: str
    state: str
    result: dict[str, Any] | None
    error: str | None
    attempts: int

    @property
    def done(self) -> bool:
        return self.state == DONE


@dataclass(frozen=True)
class RateWindow:
    """At most ``limit`` requests in any ``seconds``-long window."""

    limit: int
    seconds: float


def _validate(kind: str, target: dict[str, Any]) -> None:
    if kind not in KINDS:
        raise ValueError(f"unknown outbox kind {kind!r} (expected one of {sorted(KINDS)})")
    if not target.get("service_url"):
        raise ValueError("target needs service_url")
    has_conversation = bool(target.get("conversation_id") or target.get("parent"))
    if kind == "create_thread" and not target.get("channel_id"):
        raise ValueError("create_thread needs target channel_id")
    if kind == "reply" and not (has_conversation or (target.get("channel_id") and target.get("root_activity_id"))):
        raise ValueError("reply needs target conversation_id, parent, or channel_id + root_activity_id")
    if kind == "update":
        if not has_conversation:
            raise ValueError("update needs target conversation_id or parent")
        if not (target.get("activity_id") or target.get("parent")):
            raise ValueError("update needs target activity_id (or parent: the thread's root activity)")
    if kind == "send_personal" and not (target.get("conversation_id") or target.get("user_id")):
        raise ValueError("send_personal needs target conversation_id or user_id")


def _coalesce_key(kind: str, target: dict[str, Any]) -> str | None:
    if kind != "update":
        return None
    conversation = target.get("conversation_id") or f"parent:{target['parent']}"
    return f"{conversation}|{target.get('activity_id') or 'root'}"


class OutboxRepo:
    """Outbox reads and writes on one connection, inside the caller's transaction."""

    def __init__(self, conn: AsyncConnection) -> None:
        self.conn = conn
        self._sqlite = conn.dialect.name == "sqlite"
        self._insert = dialect_insert(sqlite=self._sqlite)

    @classmethod
    def of(cls, repo: Repo) -> OutboxRepo:
        """The outbox of a turn's transaction: ``OutboxRepo.of(repo).enqueue(...)``."""
        return cls(repo.conn)

    # --- producers ------------------------------------------------------------------------------
    async def enqueue(
        self,
        kind: str,
        target: dict[str, Any],
        payload: dict[str, Any],
        *,
        dedup_key: str,
        thread_key: str,
        not_before: datetime | None = None,
        now: datetime | None = None,
    ) -> bool:
        """Queue one call; False (and nothing changes) if ``dedup_key`` was queued before.

        ``target``: ``service_url``, ``tenant_id`` and, per kind — create_thread: ``channel_id`` (optional
        ``team_id``, ``bot_id``); reply: ``conversation_id`` (a thread: ``"{channelId};messageid={rootId}"``)
        or ``channel_id`` + ``root_activity_id``; update: ``conversation_id`` + ``activity_id``;
        send_personal: ``conversation_id``, or ``user_id`` (+ ``bot_id``) to open the 1:1 chat first.
        A reply or update may name ``parent`` (the dedup key of a create_thread item) instead: its
        conversation (and, for an update without ``activity_id``, its root activity) is taken from that
        item's result when it is sent. ``thread_key`` is the rate-limit bucket and ordering scope: use the
        channel id for everything posted in one channel (its new threads and their replies/updates).
        """
        _validate(kind, target)
        now = as_utc(now) or utcnow()
        due = as_utc(not_before) or now
        values = {
            "kind": kind,
            "dedup_key": dedup_key,
            "thread_key": thread_key,
            "tenant_id": str(target.get("tenant_id") or ""),
            "coalesce_key": _coalesce_key(kind, target),
            "parent_key": target.get("parent"),
            "target": _dumps(target),
            "payload": _dumps(payload),
            "state": PENDING,
            "attempts": 0,
            "due_at": due,
            "created_at": now,
            "updated_at": now,
        }
        stmt = self._insert(outbox_t).values(**values).on_conflict_do_nothing(index_elements=["dedup_key"])
        result = await self.conn.execute(stmt)
        return result.rowcount == 1

    # --- the worker -----------------------------------------------------------------------------
    def _due(self, now: datetime) -> Any:
        o = outbox_t.c
        return or_(
            and_(o.state == PENDING, o.due_at <= now),
            and_(o.state.in_(IN_FLIGHT), o.lease_until < now),
        )

    async def claim_due(
        self, limit: int, worker_id: str, now: datetime, *, lease: timedelta = DEFAULT_LEASE
    ) -> list[OutboxItem]:
        """Claim up to ``limit`` due items (at most one per thread, in order) for ``lease``.

        An update claimed while newer due updates of the same activity are pending carries the newest
        payload; the newer items become ``superseded`` (their ``result`` names the carrier).
        """
        if limit <= 0:
            return []
        now = as_utc(now)  # type: ignore[assignment]
        o, e = outbox_t, _earlier
        holds_thread = or_(
            e.c.state.in_(IN_FLIGHT),
            and_(e.c.state == PENDING, or_(e.c.due_at <= now, e.c.claimed_at.is_not(None))),
        )
        blocked = exists().where(e.c.thread_key == o.c.thread_key, e.c.id < o.c.id, holds_thread)
        pick = select(o.c.id).where(self._due(now), ~blocked).order_by(o.c.due_at, o.c.id).limit(limit)
        if not self._sqlite:
            pick = pick.with_for_update(skip_locked=True, of=o)
        ids = [row[0] for row in (await self.conn.execute(pick)).all()]
        if not ids:
            return []
        claimed = await self.conn.execute(
            update(o)
            .where(o.c.id.in_(ids), self._due(now))
            .values(state=CLAIMED, worker_id=worker_id, claimed_at=now, lease_until=now + lease, updated_at=now)
            .returning(o)
        )
        items = sorted((OutboxItem.from_row(row) for row in claimed.all()), key=lambda i: (i.due_at, i.id))
        for item in items:
            if item.kind == "update" and item.coalesce_key is not None:
                await self._coalesce(item, now)
        return items

    async def _coalesce(self, item: OutboxItem, now: datetime) -> None:
        o = outbox_t
        newer = (
            select(o.c.id, o.c.payload)
            .where(o.c.coalesce_key == item.coalesce_key, o.c.state == PENDING, o.c.id > item.id, o.c.due_at <= now)
            .order_by(o.c.id)
        )
        if not self._sqlite:
            newer = newer.with_for_update(skip_locked=True)
        rows = (await self.conn.execute(newer)).all()
        if not rows:
            return
        newest_payload = rows[-1][1]
        ids = [row[0] for row in rows]
        await self.conn.execute(
            update(o)
            .where(o.c.id.in_(ids), o.c.state == PENDING)
            .values(state=SUPERSEDED, result=_dumps({"coalesced_into": item.dedup_key}), updated_at=now)
        )
        await self.conn.execute(update(o).where(o.c.id == item.id).values(payload=newest_payload, updated_at=now))
        item.payload = json.loads(newest_payload)

    async def begin_send(
        self, item_id: int, worker_id: str, now: datetime, *, lease: timedelta = DEFAULT_LEASE
    ) -> int | None:
        """Record that a request is about to be made (commit before making it); the attempt number, or
        None if this worker no longer holds the claim (its lease ran out and another worker took over)."""
        now = as_utc(now)  # type: ignore[assignment]
        o = outbox_t
        result = await self.conn.execute(
            update(o)
            .where(o.c.id == item_id, o.c.worker_id == worker_id, o.c.state == CLAIMED)
            .values(state=SENDING, sending_at=now, attempts=o.c.attempts + 1, lease_until=now + lease, updated_at=now)
            .returning(o.c.attempts)
        )
        row = result.first()
        return int(row[0]) if row else None

    async def release(self, item_id: int, worker_id: str, due_at: datetime) -> bool:
        """Give a claimed item back without an attempt (e.g. its rate-limit slot is far off, or shutdown)."""
        o = outbox_t
        result = await self.conn.execute(
            update(o)
            .where(o.c.id == item_id, o.c.worker_id == worker_id, o.c.state == CLAIMED)
            .values(state=PENDING, due_at=as_utc(due_at), lease_until=None, worker_id=None, updated_at=utcnow())
        )
        return result.rowcount == 1

    def _fenced(self, item_id: int, worker_id: str | None) -> Any:
        o = outbox_t.c
        if worker_id is None:
            return o.id == item_id
        return and_(o.id == item_id, o.worker_id == worker_id, o.state.in_(IN_FLIGHT))

    async def mark_done(self, item_id: int, result: dict[str, Any] | None = None) -> bool:
        """The call succeeded (also for an admin who found an ``in_doubt`` item's thread): store ``result``.

        Not fenced by worker: a worker that got an answer knows the truth, even after losing its lease.
        """
        o = outbox_t
        done = await self.conn.execute(
            update(o)
            .where(o.c.id == item_id, o.c.state != SUPERSEDED)
            .values(state=DONE, result=_dumps(result or {}), sending_at=None, lease_until=None, updated_at=utcnow())
        )
        return done.rowcount == 1

    async def mark_retry(
        self, item_id: int, attempts: int, next_at: datetime, last_error: str, *, worker_id: str | None = None,
        keep_sending: bool = False,
    ) -> bool:
        """The call did not take effect: try again at ``next_at``. ``keep_sending``: its outcome is unknown
        (``sending_at`` stays, so whoever claims it next reconciles instead of repeating it blindly)."""
        values: dict[str, Any] = {
            "state": PENDING, "attempts": attempts, "due_at": as_utc(next_at), "last_error": last_error[:2000],
            "lease_until": None, "worker_id": None, "updated_at": utcnow(),
        }
        if not keep_sending:
            values["sending_at"] = None
        result = await self.conn.execute(update(outbox_t).where(self._fenced(item_id, worker_id)).values(values))
        return result.rowcount == 1

    async def mark_failed(self, item_id: int, error: str, *, worker_id: str | None = None) -> bool:
        """The call was refused for good (e.g. 403): kept, listed by ``list_failed``."""
        result = await self.conn.execute(
            update(outbox_t)
            .where(self._fenced(item_id, worker_id))
            .values(state=FAILED, last_error=error[:2000], sending_at=None, lease_until=None, updated_at=utcnow())
        )
        return result.rowcount == 1

    async def mark_in_doubt(self, item_id: int, error: str, *, worker_id: str | None = None) -> bool:
        """A request may or may not have taken effect and must not be repeated blindly: kept for an admin
        (``list_failed``; then ``mark_done`` with what was found, or ``retry_failed``)."""
        result = await self.conn.execute(
            update(outbox_t)
            .where(self._fenced(item_id, worker_id))
            .values(state=IN_DOUBT, last_error=error[:2000], lease_until=None, updated_at=utcnow())
        )
        return result.rowcount == 1

    async def recover_worker(self, worker_id: str) -> int:
        """Release everything a previous incarnation of ``worker_id`` held (call once at start-up, before
        claiming; worker ids must be unique among running workers). ``sending_at`` is kept."""
        o = outbox_t
        result = await self.conn.execute(
            update(o)
            .where(o.c.worker_id == worker_id, o.c.state.in_(IN_FLIGHT))
            .values(state=PENDING, lease_until=None, worker_id=None, updated_at=utcnow())
        )
        return result.rowcount or 0

    # --- admins and callers ---------------------------------------------------------------------
    async def get(self, item_id: int) -> OutboxItem | None:
        row = (await self.conn.execute(select(outbox_t).where(outbox_t.c.id == item_id))).first()
        return OutboxItem.from_row(row) if row else None

    async def get_by_key(self, dedup_key: str) -> OutboxItem | None:
        row = (await self.conn.execute(select(outbox_t).where(outbox_t.c.dedup_key == dedup_key))).first()
        return OutboxItem.from_row(row) if row else None

    async def result_of(self, dedup_key: str) -> OutboxResult | None:
        o = outbox_t.c
        row = (
            await self.conn.execute(
                select(o.id, o.kind, o.state, o.result, o.last_error, o.attempts).where(o.dedup_key == dedup_key)
            )
        ).first()
        if row is None:
            return None
        return OutboxResult(row.id, row.kind, row.state, json.loads(row.result) if row.result else None,
                            row.last_error, row.attempts)

    async def list_failed(self, limit: int = 100) -> list[OutboxItem]:
        """Items that need an admin: ``failed`` (refused) and ``in_doubt`` (outcome unknown), oldest first."""
        rows = await self.conn.execute(
            select(outbox_t).where(outbox_t.c.state.in_((FAILED, IN_DOUBT))).order_by(outbox_t.c.id).limit(limit)
        )
        return [OutboxItem.from_row(row) for row in rows.all()]

    async def retry_failed(self, item_id: int, now: datetime | None = None) -> bool:
        """Queue a ``failed`` or ``in_doubt`` item again (for ``in_doubt``: the admin checked that the call
        did not take effect, e.g. no thread with this case exists in the channel). Items that failed only
        because this one had not delivered (their ``parent``) are queued again with it."""
        o = outbox_t
        now = as_utc(now) or utcnow()
        again = {"state": PENDING, "due_at": now, "attempts": 0, "sending_at": None, "claimed_at": None,
                 "worker_id": None, "lease_until": None, "updated_at": now}
        result = await self.conn.execute(
            update(o).where(o.c.id == item_id, o.c.state.in_((FAILED, IN_DOUBT))).values(**again)
            .returning(o.c.dedup_key)
        )
        row = result.first()
        if row is None:
            return False
        await self._requeue_children(row[0], now)
        return True

    async def _requeue_children(self, parent_key: str, now: datetime) -> None:
        o = outbox_t
        await self.conn.execute(
            update(o)
            .where(o.c.parent_key == parent_key, o.c.state == FAILED, o.c.last_error.like("parent %"))
            .values(state=PENDING, due_at=now, attempts=0, sending_at=None, claimed_at=None, worker_id=None,
                    lease_until=None, updated_at=now)
        )

    async def counts(self) -> dict[str, int]:
        rows = await self.conn.execute(select(outbox_t.c.state, func.count()).group_by(outbox_t.c.state))
        return {state: int(n) for state, n in rows.all()}

    async def prune(self, older_than: timedelta, now: datetime | None = None) -> int:
        """Delete ``done``/``superseded`` items last changed before ``now - older_than`` (their results go)."""
        cutoff = (as_utc(now) or utcnow()) - older_than
        result = await self.conn.execute(
            delete(outbox_t).where(outbox_t.c.state.in_((DONE, SUPERSEDED)), outbox_t.c.updated_at < cutoff)
        )
        return result.rowcount or 0

    # --- rate limits ----------------------------------------------------------------------------
    async def reserve(
        self,
        buckets: Sequence[tuple[str, Sequence[RateWindow]]],
        clock: Callable[[], float],
        *,
        count: int = 1,
        margin: float = 0.0,
    ) -> float:
        """Reserve ``count`` requests now (``clock()``: epoch seconds, read once the buckets are locked) in
        every bucket if all their sliding windows allow it; otherwise reserve nothing and return the seconds
        to wait. Every request counts, throttled ones too. ``margin`` widens every window: it must cover the
        time from here to the request's arrival (commit, network) and the jitter of the clocks.

        PostgreSQL serialises reservations per bucket with transaction-scoped advisory locks (several
        workers share a tenant bucket); SQLite has one writer.
        """
        if not self._sqlite:
            for bucket in sorted({b for b, _ in buckets}):
                await self.conn.execute(text("SELECT pg_advisory_xact_lock(hashtext(:key))"), {"key": f"outbox:{bucket}"})
        now_us = int(clock() * 1_000_000)
        ready_us = now_us
        s = sends_t.c
        for bucket, windows in buckets:
            for window in windows:
                if count > window.limit:
                    raise ValueError(f"cannot reserve {count} requests in a window of {window.limit}")
                span_us = int((window.seconds + margin) * 1_000_000)
                # the (limit - count + 1)-th most recent request in the window must leave it first
                nth = (
                    select(s.at_us)
                    .where(s.bucket == bucket, s.at_us > now_us - span_us)
                    .order_by(s.at_us.desc())
                    .offset(window.limit - count)
                    .limit(1)
                )
                row = (await self.conn.execute(nth)).first()
                if row is not None:
                    ready_us = max(ready_us, int(row[0]) + span_us)
        if ready_us > now_us:
            return (ready_us - now_us) / 1_000_000
        await self.conn.execute(
            insert(sends_t), [{"bucket": bucket, "at_us": now_us} for bucket, _ in buckets for _ in range(count)]
        )
        return 0.0

    async def prune_sends(self, older_than_seconds: float, now: float) -> int:
        cutoff = int((now - older_than_seconds) * 1_000_000)
        result = await self.conn.execute(delete(sends_t).where(sends_t.c.at_us < cutoff))
        return result.rowcount or 0
