"""The outbox table (storage/outbox.py) on SQLite and PostgreSQL: enqueue, claims, coalescing, bookkeeping."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import delete, inspect, select

from storage.db import Database
from storage.migrate import upgrade
from storage.outbox import OutboxItem, OutboxRepo, RateWindow, outbox_t, sends_t, utcnow

ROOT = Path(__file__).resolve().parents[2]
T0 = datetime(2026, 3, 14, 9, 0, 0, tzinfo=UTC)
SERVICE = "https://smba.trafficmanager.net/emea/"
FORUM = "19:forum@thread.tacv2"
TIMEOUT = 30.0


@pytest.fixture(scope="module")
def migrated_pg_url(pg_server: Any) -> str:
    """One migrated PostgreSQL database for the module (``python -m storage.migrate``, as an operator
    would); each test starts with empty outbox tables."""
    name = f"outbox_{os.getpid()}"
    pg_server.psql(f"CREATE DATABASE {name};")
    url = str(pg_server.get_uri(name)).replace("postgresql://", "postgresql+asyncpg://", 1)
    subprocess.run([sys.executable, "-m", "storage.migrate"], env={**os.environ, "DATABASE_URL": url}, cwd=ROOT,
                   check=True, capture_output=True, timeout=60)
    return url


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def db(request: pytest.FixtureRequest, sqlite_url: str) -> AsyncIterator[Database]:
    if request.param == "sqlite":
        database = Database(sqlite_url)
        await upgrade(database)
    else:
        database = Database(request.getfixturevalue("migrated_pg_url"))
        async with database.transaction() as repo:
            await repo.conn.execute(delete(outbox_t))
            await repo.conn.execute(delete(sends_t))
    try:
        yield database
    finally:
        await database.dispose()


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def thread_target(channel: str = FORUM, tenant: str = "tenant-1") -> dict[str, Any]:
    return {"service_url": SERVICE, "channel_id": channel, "tenant_id": tenant}


def update_target(conversation: str, activity_id: str) -> dict[str, Any]:
    return {"service_url": SERVICE, "conversation_id": conversation, "activity_id": activity_id, "tenant_id": "tenant-1"}


async def enqueue(
    db: Database,
    key: str,
    thread: str = FORUM,
    *,
    kind: str = "create_thread",
    target: dict[str, Any] | None = None,
    payload: dict[str, Any] | None = None,
    not_before: datetime | None = None,
    now: datetime = T0,
) -> bool:
    async with db.transaction() as repo:
        return await OutboxRepo.of(repo).enqueue(
            kind, target or thread_target(thread), payload or {"type": "message", "text": key},
            dedup_key=key, thread_key=thread, not_before=not_before, now=now,
        )


async def claim(db: Database, limit: int = 10, worker: str = "w1", now: datetime = T0,
                lease: timedelta = timedelta(seconds=60)) -> list[OutboxItem]:
    async with db.transaction() as repo:
        return await OutboxRepo.of(repo).claim_due(limit, worker, now, lease=lease)


async def keys(db: Database, **kwargs: Any) -> list[str]:
    return [item.dedup_key for item in await claim(db, **kwargs)]


async def done(db: Database, item_id: int, result: dict[str, Any] | None = None) -> None:
    async with db.transaction() as repo:
        assert await OutboxRepo.of(repo).mark_done(item_id, result or {})


async def get(db: Database, item_id: int) -> OutboxItem:
    async with db.transaction() as repo:
        item = await OutboxRepo.of(repo).get(item_id)
    assert item is not None
    return item


# --- schema ---------------------------------------------------------------------------------------


async def test_migration_creates_the_outbox_tables(db: Database) -> None:
    def schema(sync_conn: Any) -> tuple[set[str], list[list[str]], set[str]]:
        inspector = inspect(sync_conn)
        uniques = [u["column_names"] for u in inspector.get_unique_constraints("outbox")]
        indexes = {i["name"] for i in inspector.get_indexes("outbox")} | {
            i["name"] for i in inspector.get_indexes("outbox_sends")
        }
        return set(inspector.get_table_names()), uniques, indexes

    async with db.connect() as conn:
        tables, uniques, indexes = await conn.run_sync(schema)
    assert {"outbox", "outbox_sends"} <= tables
    assert ["dedup_key"] in uniques
    assert {"ix_outbox_state_due", "ix_outbox_thread_state_id", "ix_outbox_coalesce", "ix_outbox_sends_bucket_at"} <= indexes


# --- enqueue --------------------------------------------------------------------------------------


async def test_enqueue_with_an_existing_dedup_key_is_a_no_op(db: Database) -> None:
    assert await enqueue(db, "case-1:post", payload={"type": "message", "text": "første"})
    assert not await enqueue(db, "case-1:post", payload={"type": "message", "text": "anden"})
    assert not await enqueue(db, "case-1:post", "another-thread")
    async with db.connect() as conn:
        rows = (await conn.execute(select(outbox_t.c.dedup_key, outbox_t.c.payload))).all()
    assert len(rows) == 1
    assert "første" in rows[0].payload
    items = await claim(db)
    assert [i.payload["text"] for i in items] == ["første"]


async def test_enqueue_is_part_of_the_callers_transaction(db: Database) -> None:
    class Boom(Exception):
        pass

    with pytest.raises(Boom):
        async with db.transaction() as repo:
            await OutboxRepo.of(repo).enqueue("create_thread", thread_target(), {"type": "message"},
                                              dedup_key="rolled-back", thread_key=FORUM)
            raise Boom
    async with db.transaction() as repo:
        assert await OutboxRepo.of(repo).result_of("rolled-back") is None
    assert await enqueue(db, "rolled-back"), "the key is free again"


async def test_enqueue_rejects_unknown_kinds_and_incomplete_targets(db: Database) -> None:
    async with db.transaction() as repo:
        out = OutboxRepo.of(repo)
        with pytest.raises(ValueError, match="unknown outbox kind"):
            await out.enqueue("delete", thread_target(), {}, dedup_key="x", thread_key=FORUM)
        with pytest.raises(ValueError, match="service_url"):
            await out.enqueue("create_thread", {"channel_id": FORUM}, {}, dedup_key="x", thread_key=FORUM)
        with pytest.raises(ValueError, match="channel_id"):
            await out.enqueue("create_thread", {"service_url": SERVICE}, {}, dedup_key="x", thread_key=FORUM)
        with pytest.raises(ValueError, match="activity_id"):
            await out.enqueue("update", {"service_url": SERVICE, "conversation_id": "c"}, {}, dedup_key="x",
                              thread_key=FORUM)
        with pytest.raises(ValueError, match="user_id"):
            await out.enqueue("send_personal", {"service_url": SERVICE}, {}, dedup_key="x", thread_key="u")


# --- claims ---------------------------------------------------------------------------------------


async def test_claim_returns_due_items_oldest_first_and_respects_not_before(db: Database) -> None:
    await enqueue(db, "later", "t-later", not_before=at(10))
    await enqueue(db, "b", "t-b", now=at(0))
    await enqueue(db, "a", "t-a", now=at(-5))  # enqueued after b, but due earlier
    await enqueue(db, "c", "t-c", now=at(0))

    assert await keys(db, now=at(0)) == ["a", "b", "c"]
    assert await keys(db, now=at(5)) == [], "claimed items are not handed out again"
    assert await keys(db, now=at(9.999)) == []
    assert await keys(db, now=at(10)) == ["later"]


async def test_claim_limit(db: Database) -> None:
    for n in range(5):
        await enqueue(db, f"k{n}", f"t{n}")
    assert await keys(db, limit=2) == ["k0", "k1"]
    assert await keys(db, limit=10) == ["k2", "k3", "k4"]


async def test_items_of_one_thread_go_one_at_a_time_in_order(db: Database) -> None:
    for n in range(3):
        await enqueue(db, f"post-{n}")
    first = await claim(db)
    assert [i.dedup_key for i in first] == ["post-0"]
    assert await keys(db, now=at(1)) == [], "post-1 waits while post-0 is in flight"

    await done(db, first[0].id)
    second = await claim(db, now=at(2))
    assert [i.dedup_key for i in second] == ["post-1"]
    async with db.transaction() as repo:
        await OutboxRepo.of(repo).mark_retry(second[0].id, 1, at(30), "HTTP 429")
    assert await keys(db, now=at(3)) == [], "post-2 waits while post-1 waits for its retry"
    assert await keys(db, now=at(30)) == ["post-1"]


async def test_a_scheduled_item_does_not_hold_up_its_thread(db: Database) -> None:
    await enqueue(db, "reminder", not_before=at(3600))
    await enqueue(db, "now")
    assert await keys(db) == ["now"]


async def test_failed_and_in_doubt_items_do_not_hold_up_their_thread(db: Database) -> None:
    await enqueue(db, "refused")
    await enqueue(db, "unknown")
    await enqueue(db, "fine")
    (refused,) = await claim(db)
    async with db.transaction() as repo:
        await OutboxRepo.of(repo).mark_failed(refused.id, "HTTP 403")
    (unknown,) = await claim(db)
    async with db.transaction() as repo:
        await OutboxRepo.of(repo).mark_in_doubt(unknown.id, "timeout")
    assert await keys(db) == ["fine"]


async def test_pending_updates_of_one_activity_coalesce_into_one_carrying_the_newest(db: Database) -> None:
    conversation = f"{FORUM};messageid=111"
    for n in range(1, 4):
        await enqueue(db, f"card-v{n}", kind="update", target=update_target(conversation, "111"),
                      payload={"type": "message", "text": f"v{n}"})
    await enqueue(db, "other-card", "t-other", kind="update", target=update_target(conversation, "222"),
                  payload={"type": "message", "text": "other"})

    items = await claim(db)
    assert [(i.dedup_key, i.payload["text"]) for i in items] == [("card-v1", "v3"), ("other-card", "other")]
    assert (await get(db, items[0].id)).payload["text"] == "v3"
    async with db.transaction() as repo:
        out = OutboxRepo.of(repo)
        for key in ("card-v2", "card-v3"):
            result = await out.result_of(key)
            assert result is not None and result.state == "superseded"
            assert result.result == {"coalesced_into": "card-v1"}

    # an update queued while the carrier is in flight is sent after it, not merged into it
    await enqueue(db, "card-v4", kind="update", target=update_target(conversation, "111"),
                  payload={"type": "message", "text": "v4"})
    assert await keys(db, now=at(1)) == []
    await done(db, items[0].id, {"activity_id": "111"})
    later = await claim(db, now=at(2))
    assert [(i.dedup_key, i.payload["text"]) for i in later] == [("card-v4", "v4")]


async def test_updates_scheduled_for_later_are_not_coalesced(db: Database) -> None:
    conversation = f"{FORUM};messageid=111"
    await enqueue(db, "now", kind="update", target=update_target(conversation, "111"), payload={"text": "now"})
    await enqueue(db, "later", kind="update", target=update_target(conversation, "111"), payload={"text": "later"},
                  not_before=at(60))
    assert [(i.dedup_key, i.payload["text"]) for i in await claim(db)] == [("now", "now")]


# --- bookkeeping ----------------------------------------------------------------------------------


async def test_sending_retry_and_done_bookkeeping(db: Database) -> None:
    await enqueue(db, "post")
    (item,) = await claim(db)
    assert (item.state, item.worker_id, item.attempts, item.sending_at) == ("claimed", "w1", 0, None)
    async with db.transaction() as repo:
        assert await OutboxRepo.of(repo).begin_send(item.id, "w1", at(1)) == 1
    sending = await get(db, item.id)
    assert (sending.state, sending.attempts, sending.sending_at) == ("sending", 1, at(1))

    async with db.transaction() as repo:
        assert await OutboxRepo.of(repo).mark_retry(item.id, 1, at(30), "HTTP 429: Throttled", worker_id="w1")
    waiting = await get(db, item.id)
    assert (waiting.state, waiting.attempts, waiting.due_at, waiting.last_error, waiting.sending_at) == (
        "pending", 1, at(30), "HTTP 429: Throttled", None)
    assert await keys(db, now=at(29)) == []

    (again,) = await claim(db, now=at(30), worker="w2")
    async with db.transaction() as repo:
        out = OutboxRepo.of(repo)
        assert await out.begin_send(again.id, "w2", at(31)) == 2
        assert await out.mark_done(again.id, {"conversation_id": f"{FORUM};messageid=9", "activity_id": "9"})
    async with db.transaction() as repo:
        result = await OutboxRepo.of(repo).result_of("post")
    assert result is not None and result.done and result.attempts == 2
    assert result.result == {"conversation_id": f"{FORUM};messageid=9", "activity_id": "9"}


async def test_failed_and_in_doubt_items_are_listed_and_can_be_retried(db: Database) -> None:
    for key in ("refused", "unknown", "ok"):
        await enqueue(db, key, f"t-{key}")
    items = {i.dedup_key: i for i in await claim(db)}
    async with db.transaction() as repo:
        out = OutboxRepo.of(repo)
        assert await out.mark_failed(items["refused"].id, "HTTP 403: BotNotInConversationRoster", worker_id="w1")
        await out.begin_send(items["unknown"].id, "w1", at(1))
        assert await out.mark_in_doubt(items["unknown"].id, "in doubt: timeout", worker_id="w1")
        await out.mark_done(items["ok"].id, {})
    async with db.transaction() as repo:
        out = OutboxRepo.of(repo)
        listed = await out.list_failed()
        assert [(i.dedup_key, i.state, i.last_error) for i in listed] == [
            ("refused", "failed", "HTTP 403: BotNotInConversationRoster"),
            ("unknown", "in_doubt", "in doubt: timeout"),
        ]
        assert listed[1].sending_at == at(1), "in doubt keeps when the request was made"
        refused = await out.result_of("refused")
        assert refused is not None and refused.state == "failed" and "403" in (refused.error or "")
        # the admin: retries the refused one, and found the thread of the one in doubt
        assert await out.retry_failed(items["refused"].id, now=at(100))
        assert not await out.retry_failed(items["ok"].id), "only failed/in_doubt items"
        assert await out.mark_done(items["unknown"].id, {"conversation_id": "found", "activity_id": "1"})
        assert await out.list_failed() == []
    again = await claim(db, now=at(100))
    assert [(i.dedup_key, i.attempts, i.sending_at) for i in again] == [("refused", 0, None)]


async def test_retrying_a_thread_queues_again_what_failed_for_want_of_it(db: Database) -> None:
    await enqueue(db, "thread")
    reply = {"service_url": SERVICE, "parent": "thread", "tenant_id": "tenant-1"}
    await enqueue(db, "reply", kind="reply", target=reply)
    await enqueue(db, "other-reply", kind="reply", target=reply)
    [thread] = await claim(db)
    async with db.transaction() as repo:
        out = OutboxRepo.of(repo)
        await out.begin_send(thread.id, "w1", at(1))
        assert await out.mark_in_doubt(thread.id, "in doubt: timeout", worker_id="w1")
    async with db.transaction() as repo:
        out = OutboxRepo.of(repo)
        children = {key: item for key in ("reply", "other-reply") if (item := await out.get_by_key(key))}
        assert await out.mark_failed(children["reply"].id, "parent 'thread' is in_doubt: no conversation")
        assert await out.mark_failed(children["other-reply"].id, "HTTP 403: Forbidden")
        assert await out.retry_failed(thread.id, now=at(100))
    states = {key: (await get(db, item.id)).state for key, item in children.items()}
    assert states == {"reply": "pending", "other-reply": "failed"}, "only what failed for want of its parent"


async def test_an_expired_lease_is_claimed_again_and_the_old_worker_is_fenced_off(db: Database) -> None:
    await enqueue(db, "post")
    (mine,) = await claim(db, worker="w1", lease=timedelta(seconds=30))
    assert await keys(db, worker="w2", now=at(29)) == []
    (theirs,) = await claim(db, worker="w2", now=at(31))
    assert theirs.id == mine.id and theirs.worker_id == "w2"
    async with db.transaction() as repo:
        out = OutboxRepo.of(repo)
        assert await out.begin_send(mine.id, "w1", at(32)) is None, "w1 lost its claim"
        assert not await out.mark_retry(mine.id, 1, at(40), "late", worker_id="w1")
        assert not await out.release(mine.id, "w1", at(40))
        assert await out.begin_send(theirs.id, "w2", at(32)) == 1


async def test_an_item_interrupted_while_sending_comes_back_with_sending_at(db: Database) -> None:
    await enqueue(db, "sent", "t1")
    await enqueue(db, "claimed", "t2")
    items = {i.dedup_key: i for i in await claim(db, worker="host:1")}
    async with db.transaction() as repo:
        await OutboxRepo.of(repo).begin_send(items["sent"].id, "host:1", at(1))
    # the process dies; its next run (same worker id) takes its items back at once
    async with db.transaction() as repo:
        assert await OutboxRepo.of(repo).recover_worker("host:1") == 2
    again = {i.dedup_key: i for i in await claim(db, worker="host:1", now=at(2))}
    assert again["sent"].sending_at == at(1) and again["sent"].attempts == 1
    assert again["claimed"].sending_at is None


async def test_an_expired_sending_item_keeps_sending_at_for_the_next_worker(db: Database) -> None:
    await enqueue(db, "post")
    (item,) = await claim(db, worker="w1", lease=timedelta(seconds=10))
    async with db.transaction() as repo:
        await OutboxRepo.of(repo).begin_send(item.id, "w1", at(1), lease=timedelta(seconds=10))
    assert await keys(db, worker="w2", now=at(10)) == []
    (again,) = await claim(db, worker="w2", now=at(12))
    assert again.sending_at == at(1)


# --- rate-limit log -------------------------------------------------------------------------------


async def reserve(db: Database, now: float, buckets: list[tuple[str, list[RateWindow]]], count: int = 1) -> float:
    async with db.transaction() as repo:
        return await OutboxRepo.of(repo).reserve(buckets, lambda: 1_000_000.0 + now, count=count)


async def test_reserve_keeps_every_sliding_window(db: Database) -> None:
    windows = [RateWindow(2, 1.0), RateWindow(3, 10.0)]
    b = [("thread:a", windows)]
    assert await reserve(db, 0.0, b) == 0.0
    assert await reserve(db, 0.1, b) == 0.0
    assert await reserve(db, 0.2, b) == pytest.approx(0.8)
    assert await reserve(db, 1.0, b) == 0.0
    assert await reserve(db, 1.05, b) == pytest.approx(8.95), "three in 10 s"
    assert await reserve(db, 10.0, b) == 0.0
    assert await reserve(db, 0.0, [("thread:other", windows)]) == 0.0, "buckets are independent"


async def test_reserve_needs_room_in_every_bucket_and_takes_nothing_otherwise(db: Database) -> None:
    tenant = ("tenant:t", [RateWindow(2, 1.0)])
    assert await reserve(db, 0.0, [("thread:a", [RateWindow(7, 1.0)]), tenant]) == 0.0
    assert await reserve(db, 0.0, [("thread:b", [RateWindow(7, 1.0)]), tenant]) == 0.0
    assert await reserve(db, 0.5, [("thread:c", [RateWindow(7, 1.0)]), tenant]) == pytest.approx(0.5)
    async with db.connect() as conn:
        rows = (await conn.execute(select(sends_t.c.bucket))).all()
    assert Counter(r[0] for r in rows) == {"thread:a": 1, "thread:b": 1, "tenant:t": 2}
    assert await reserve(db, 0.0, [("thread:d", [RateWindow(3, 1.0)])], count=2) == 0.0
    assert await reserve(db, 0.1, [("thread:d", [RateWindow(3, 1.0)])], count=2) == pytest.approx(0.9)
    async with db.transaction() as repo:
        assert await OutboxRepo.of(repo).prune_sends(0.5, 1_000_001.0) == 6


# --- PostgreSQL: two processes --------------------------------------------------------------------


@pytest.mark.postgres
async def test_pg_two_processes_claiming_concurrently_claim_each_item_once(pg_url: str) -> None:
    first, second = Database(pg_url), Database(pg_url)
    try:
        await upgrade(first)
        keys_: list[str] = []
        for n in range(150):  # separate threads
            keys_.append(f"solo-{n}")
        for t in range(10):  # five in each of ten threads: one at a time, in order
            keys_.extend(f"thread-{t}-{n}" for n in range(5))
        async with first.transaction() as repo:
            out = OutboxRepo.of(repo)
            for key in keys_:
                thread = key.rsplit("-", 1)[0] if key.startswith("thread-") else key
                await out.enqueue("create_thread", thread_target(thread), {"text": key}, dedup_key=key,
                                  thread_key=thread, now=utcnow() - timedelta(seconds=1))
        claims: list[tuple[str, str, int]] = []

        async def claimer(database: Database, name: str) -> None:
            idle = 0
            while idle < 20:
                async with database.transaction() as repo:
                    items = await OutboxRepo.of(repo).claim_due(7, name, utcnow())
                if not items:
                    idle += 1
                    await asyncio.sleep(0.01)
                    continue
                idle = 0
                claims.extend((name, item.dedup_key, item.id) for item in items)
                await asyncio.sleep(0)  # let the other process interleave
                async with database.transaction() as repo:
                    for item in items:
                        await OutboxRepo.of(repo).mark_done(item.id, {"by": name})

        await asyncio.wait_for(asyncio.gather(claimer(first, "p1"), claimer(second, "p2")), TIMEOUT)
        claimed = Counter(key for _, key, _ in claims)
        assert len(keys_) == 200
        assert claimed == Counter(keys_), "every item claimed exactly once"
        assert {name for name, _, _ in claims} == {"p1", "p2"}, "both processes took part"
        order = [key for _, key, _ in claims if key.startswith("thread-3-")]
        assert order == [f"thread-3-{n}" for n in range(5)], "one thread's items in order"
        async with first.transaction() as repo:
            assert await OutboxRepo.of(repo).counts() == {"done": 200}
    finally:
        await first.dispose()
        await second.dispose()
