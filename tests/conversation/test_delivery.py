"""The delivery worker (bot/delivery.py) against the fake Bot Connector: limits, retries, crashes."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
import signal
import socket
import sys
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from bot.connector import ConnectorClient
from bot.connector_extra import MARKER_KEY, DeliveryConnector
from bot.credentials import OutboundTokenProvider
from bot.delivery import (
    TEAMS_THREAD_LIMITS,
    DeliveryWorker,
    drop_placeholder_links,
    fill_placeholder,
    start_delivery,
    thread_link,
)
from storage.db import Database
from storage.migrate import upgrade
from storage.outbox import OutboxItem, OutboxRepo, outbox_t
from storage.teams import TeamRepo
from tests.support.fake_connector import Call, FakeConnector

ROOT = Path(__file__).resolve().parents[2]
FORUM = "19:forum-a@thread.tacv2"
TENANT = "tenant-1"


# --- helpers --------------------------------------------------------------------------------------


@pytest.fixture
async def database(sqlite_url: str) -> AsyncIterator[Database]:
    db = Database(sqlite_url)
    try:
        await upgrade(db)
        yield db
    finally:
        await db.dispose()


@pytest.fixture
async def any_database(db_url: str) -> AsyncIterator[Database]:
    db = Database(db_url)
    try:
        await upgrade(db)
        yield db
    finally:
        await db.dispose()


@pytest.fixture
async def transport() -> AsyncIterator[DeliveryConnector]:
    tokens = OutboundTokenProvider("", "", "SingleTenant", "")  # development mode: no token
    client = DeliveryConnector(tokens, timeout_seconds=5.0)
    await client.start()
    try:
        yield client
    finally:
        await client.close()
        await tokens.close()


class Workers:
    """Starts in-process workers and stops them at the end of the test."""

    def __init__(self, database: Database, transport: DeliveryConnector) -> None:
        self.database = database
        self.transport = transport
        self.started: list[DeliveryWorker] = []

    async def start(self, worker_id: str = "w1", **options: Any) -> DeliveryWorker:
        options.setdefault("poll_seconds", 0.2)
        worker = DeliveryWorker(self.database, self.transport, worker_id=worker_id, **options)
        await worker.start()
        self.started.append(worker)
        return worker


@pytest.fixture
async def workers(database: Database, transport: DeliveryConnector) -> AsyncIterator[Workers]:
    pool = Workers(database, transport)
    try:
        yield pool
    finally:
        for worker in pool.started:
            await worker.stop()


class RecordsLocator:
    """A ThreadLocator that can see the channel (here: the fake connector's records of created threads)."""

    def __init__(self, connector: FakeConnector) -> None:
        self.connector = connector
        self.lookups: list[str] = []

    async def locate(self, item: OutboxItem) -> tuple[str, str | None] | None:
        self.lookups.append(item.dedup_key)
        for thread in self.connector.created_conversations():
            if marker_of(thread) == item.dedup_key:
                return thread["id"], thread["activityId"]
        return None


def marker_of(thread: dict[str, Any]) -> str | None:
    return ((thread.get("activity") or {}).get("channelData") or {}).get(MARKER_KEY)


def thread_target(connector: FakeConnector, channel: str = FORUM, tenant: str = TENANT) -> dict[str, Any]:
    return {"service_url": connector.url, "channel_id": channel, "tenant_id": tenant}


def case_card(key: str) -> dict[str, Any]:
    return {"type": "message", "text": f"Ny sag {key}",
            "attachments": [{"contentType": "application/vnd.microsoft.card.adaptive",
                             "content": {"type": "AdaptiveCard", "version": "1.5", "body": []}}]}


async def enqueue(database: Database, kind: str, target: dict[str, Any], payload: dict[str, Any], key: str,
                  thread: str = FORUM) -> None:
    async with database.transaction() as repo:
        assert await OutboxRepo.of(repo).enqueue(kind, target, payload, dedup_key=key, thread_key=thread)


async def enqueue_threads(database: Database, connector: FakeConnector, keys: list[tuple[str, str]]) -> None:
    """(dedup key, channel) pairs as create_thread items, in one transaction."""
    async with database.transaction() as repo:
        out = OutboxRepo.of(repo)
        for key, channel in keys:
            await out.enqueue("create_thread", thread_target(connector, channel), case_card(key), dedup_key=key,
                              thread_key=channel)


async def counts(database: Database) -> dict[str, int]:
    async with database.transaction() as repo:
        return await OutboxRepo.of(repo).counts()


async def items(database: Database) -> dict[str, OutboxItem]:
    async with database.connect() as conn:
        rows = (await conn.execute(select(outbox_t).order_by(outbox_t.c.id))).all()
    return {item.dedup_key: item for item in map(OutboxItem.from_row, rows)}


async def wait_until(condition: Callable[[], Any], timeout: float, what: str) -> None:  # noqa: ASYNC109
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        value = condition()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return
        if loop.time() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        await asyncio.sleep(0.05)


async def settled(database: Database) -> bool:
    """Nothing left to do: no item pending, claimed or sending."""
    c = await counts(database)
    return not any(c.get(state) for state in ("pending", "claimed", "sending"))


def max_in_window(times: list[float], seconds: float) -> int:
    """The most requests in any half-open window [t, t + seconds)."""
    times = sorted(times)
    best, start = 0, 0
    for end, t in enumerate(times):
        while t - times[start] >= seconds:
            start += 1
        best = max(best, end - start + 1)
    return best


def assert_within_teams_limits(calls: list[Call], group: Callable[[Call], str]) -> None:
    by_group: dict[str, list[float]] = {}
    for call in calls:
        by_group.setdefault(group(call), []).append(call["t"])
    for key, times in by_group.items():
        for window in TEAMS_THREAD_LIMITS[:3]:
            assert max_in_window(times, window.seconds) <= window.limit, (key, window)


@contextlib.contextmanager
def steady_timestamps() -> Iterator[None]:
    """The fake connector stamps arrivals (``t``) in this process, which has a large heap by now: a gen-2
    collection here (~0.1 s) would bunch the stamps of requests that worker *processes* sent on time."""
    gc.collect()
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


def writes(connector: FakeConnector, kind: str | None = None) -> list[Call]:
    return [c for c in connector.calls if c["method"] in ("POST", "PUT") and (kind is None or c["kind"] == kind)]


def create_channel(call: Call) -> str:
    return str((((call["body"] or {}).get("channelData") or {}).get("channel") or {}).get("id"))


def assert_each_once(connector: FakeConnector, keys: list[str]) -> None:
    markers = Counter(marker_of(thread) for thread in connector.created_conversations())
    duplicates = {k: n for k, n in markers.items() if n > 1}
    assert not duplicates, f"duplicate threads: {duplicates}"
    assert markers == Counter(keys)


# --- the burst ------------------------------------------------------------------------------------


async def test_burst_of_50_new_threads_with_429_on_every_third_write_keeps_teams_limits(
    database: Database, connector: FakeConnector, workers: Workers
) -> None:
    keys = [f"OF-2026-{n:04d}:post" for n in range(1, 51)]
    await enqueue_threads(database, connector, [(k, FORUM) for k in keys])
    connector.fail_every(3, 429, retry_after=0.05)

    await workers.start()  # Teams' real limits (the defaults)
    await wait_until(lambda: settled(database), 60, "50 threads")

    assert await counts(database) == {"done": 50}
    assert len(connector.created_conversations()) == 50
    assert_each_once(connector, keys)
    attempts = writes(connector, "create_conversation")
    assert sum(1 for c in attempts if c["status"] == 429) >= 24
    # every request counts, throttled ones too: 7 per 1 s, 8 per 2 s, 60 per 30 s in the channel
    assert_within_teams_limits(attempts, create_channel)
    stored = await items(database)
    for thread in connector.created_conversations():
        result = stored[str(marker_of(thread))].result
        assert result == {"conversation_id": thread["id"], "activity_id": thread["activityId"], "channel_id": FORUM}
        assert thread["id"] == f"{FORUM};messageid={thread['activityId']}"


# --- retries and failures ------------------------------------------------------------------------


async def test_412_502_and_504_are_retried_for_replies_updates_and_personal_messages(
    database: Database, connector: FakeConnector, workers: Workers
) -> None:
    thread = f"{FORUM};messageid=1000"
    await enqueue(database, "reply", {"service_url": connector.url, "conversation_id": thread, "tenant_id": TENANT},
                  {"type": "message", "text": "Sagen er vurderet"}, "reply-1", thread)
    await enqueue(database, "update", {"service_url": connector.url, "conversation_id": thread,
                                       "activity_id": "1000", "tenant_id": TENANT},
                  {"type": "message", "text": "Kortet, opdateret"}, "update-1", f"{thread}/u")
    await enqueue(database, "send_personal", {"service_url": connector.url, "conversation_id": "a:anna",
                                              "tenant_id": TENANT},
                  {"type": "message", "text": "Din sag er sendt"}, "dm-1", "a:anna")
    connector.fail_next(412)
    connector.fail_next(502)
    connector.fail_next(504)

    await workers.start(backoff_base=0.05)
    await wait_until(lambda: settled(database), 10, "three deliveries")

    assert await counts(database) == {"done": 3}
    assert [a["text"] for a in connector.sent(thread)] == ["Sagen er vurderet"]
    assert [(a["id"], a["text"]) for a in connector.updates(thread)] == [("1000", "Kortet, opdateret")]
    assert [a["text"] for a in connector.sent("a:anna")] == ["Din sag er sendt"]
    assert sorted(c["status"] for c in writes(connector)) == [200, 200, 200, 412, 502, 504]
    stored = await items(database)
    (reply_call,) = [c for c in writes(connector, "send") if c["conversation_id"] == thread and c["status"] < 300]
    assert stored["reply-1"].result == {"conversation_id": thread, "activity_id": reply_call["result_id"]}
    assert stored["update-1"].result == {"conversation_id": thread, "activity_id": "1000"}
    assert sum(item.attempts for item in stored.values()) == 6


async def test_412_and_429_on_create_thread_are_retried(
    database: Database, connector: FakeConnector, workers: Workers
) -> None:
    await enqueue_threads(database, connector, [("case-1", FORUM)])
    connector.fail_next(412)
    connector.fail_next(429, retry_after=0.05)
    await workers.start(backoff_base=0.05)
    await wait_until(lambda: settled(database), 10, "the thread")
    assert_each_once(connector, ["case-1"])
    assert [c["status"] for c in writes(connector)] == [412, 429, 201]


async def test_ambiguous_create_thread_failure_without_a_locator_is_in_doubt_and_never_repeated(
    database: Database, connector: FakeConnector, workers: Workers
) -> None:
    await enqueue_threads(database, connector, [("case-1", FORUM), ("case-2", FORUM)])
    connector.fail_next(502)
    worker = await workers.start(backoff_base=0.05)
    await wait_until(lambda: settled(database), 10, "both items handled")
    await asyncio.sleep(0.3)

    assert await counts(database) == {"in_doubt": 1, "done": 1}
    assert [c["status"] for c in writes(connector)] == [502, 201], "no second POST for case-1"
    async with database.transaction() as repo:
        (listed,) = await OutboxRepo.of(repo).list_failed()
    assert listed.dedup_key == "case-1" and listed.state == "in_doubt"
    assert "HTTP 502" in (listed.last_error or "") and "case-1" in (listed.last_error or "")
    assert listed.sending_at is not None
    assert_each_once(connector, ["case-2"])

    # the admin looked in the channel: no thread for case-1, so it is sent again
    async with database.transaction() as repo:
        assert await OutboxRepo.of(repo).retry_failed(listed.id)
    worker.wake()
    await wait_until(lambda: settled(database), 10, "the retried thread")
    assert await counts(database) == {"done": 2}
    assert_each_once(connector, ["case-1", "case-2"])


async def test_ambiguous_create_thread_failure_is_reconciled_by_a_locator(
    database: Database, connector: FakeConnector
) -> None:
    locator = RecordsLocator(connector)
    # case-1: 504 (nothing created) -> the locator finds nothing -> sent again
    # case-2: the thread is created but the answer never arrives (client timeout) -> found, not sent again
    await enqueue_threads(database, connector, [("case-1", FORUM), ("case-2", "19:forum-b@thread.tacv2")])
    connector.fail_next(504)

    async def slow_answers_for_case_2() -> None:
        connector.delay = 0.0
        await connector.wait_for(lambda c: c["status"] == 504, timeout=5)
        connector.delay = 1.0
        await connector.wait_for(lambda c: c["kind"] == "create_conversation" and c["status"] == 201, timeout=5)
        connector.delay = 0.0

    # one item at a time, so that the 504 and the slow answer land where intended
    slow = asyncio.create_task(slow_answers_for_case_2())
    tokens = OutboundTokenProvider("", "", "SingleTenant", "")
    impatient = DeliveryConnector(tokens, timeout_seconds=0.3)
    await impatient.start()
    worker = DeliveryWorker(database, impatient, worker_id="w1", poll_seconds=0.2, locator=locator,
                            reconcile_after=0.5, backoff_base=0.05, concurrency=1)
    await worker.start()
    try:
        await asyncio.wait_for(slow, 10)
        await wait_until(lambda: settled(database), 10, "both threads")
    finally:
        await worker.stop()
        await impatient.close()

    assert await counts(database) == {"done": 2}
    assert_each_once(connector, ["case-1", "case-2"])
    assert sorted(locator.lookups) == ["case-1", "case-2"]
    stored = await items(database)
    assert stored["case-2"].result is not None and stored["case-2"].result.get("reconciled") is True
    assert "reconciled" not in (stored["case-1"].result or {})
    assert len(writes(connector, "create_conversation")) == 3  # 504, 201 (answer lost), 201


async def test_403_is_failed_listed_and_can_be_retried_by_an_admin(
    database: Database, connector: FakeConnector, workers: Workers
) -> None:
    await enqueue_threads(database, connector, [("case-1", FORUM)])
    connector.fail_next(403)
    worker = await workers.start()
    await wait_until(lambda: settled(database), 10, "the refusal")
    await asyncio.sleep(0.2)

    assert len(writes(connector)) == 1, "a 403 is not retried"
    async with database.transaction() as repo:
        out = OutboxRepo.of(repo)
        (failed,) = await out.list_failed()
        result = await out.result_of("case-1")
    assert failed.state == "failed" and (failed.last_error or "").startswith("HTTP 403")
    assert "BotNotInConversationRoster" in (failed.last_error or "")
    assert result is not None and result.state == "failed"

    async with database.transaction() as repo:
        assert await OutboxRepo.of(repo).retry_failed(failed.id)
    worker.wake()
    await wait_until(lambda: settled(database), 10, "the retried thread")
    assert_each_once(connector, ["case-1"])


# --- what the forum feature needs -----------------------------------------------------------------


async def test_reply_and_root_update_follow_a_thread_created_in_the_same_transaction(
    database: Database, connector: FakeConnector, workers: Workers
) -> None:
    async with database.transaction() as repo:
        out = OutboxRepo.of(repo)
        await out.enqueue("create_thread", thread_target(connector), case_card("case-7"), dedup_key="case-7:post",
                          thread_key=FORUM)
        await out.enqueue("reply", {"service_url": connector.url, "parent": "case-7:post", "tenant_id": TENANT},
                          {"type": "message", "text": "Første svar"}, dedup_key="case-7:reply-1", thread_key=FORUM)
        await out.enqueue("update", {"service_url": connector.url, "parent": "case-7:post", "tenant_id": TENANT},
                          {"type": "message", "text": "Kort v2"}, dedup_key="case-7:card-2", thread_key=FORUM)
    await workers.start()
    await wait_until(lambda: settled(database), 10, "post, reply, update")

    (thread,) = connector.created_conversations()
    conversation = f"{FORUM};messageid={thread['activityId']}"
    assert [a["text"] for a in connector.sent(conversation)] == ["Første svar"]
    assert [(a["id"], a["text"]) for a in connector.updates(conversation)] == [(thread["activityId"], "Kort v2")]
    assert [c["kind"] for c in writes(connector)] == ["create_conversation", "send", "update"]


async def test_a_reply_whose_thread_failed_fails_too(
    database: Database, connector: FakeConnector, workers: Workers
) -> None:
    await enqueue_threads(database, connector, [("case-8:post", FORUM)])
    await enqueue(database, "reply", {"service_url": connector.url, "parent": "case-8:post"},
                  {"type": "message", "text": "svar"}, "case-8:reply", FORUM)
    connector.fail_next(404)
    await workers.start()
    await wait_until(lambda: settled(database), 10, "both failed")
    async with database.transaction() as repo:
        listed = await OutboxRepo.of(repo).list_failed()
    assert [(i.dedup_key, i.state) for i in listed] == [("case-8:post", "failed"), ("case-8:reply", "failed")]
    assert "parent 'case-8:post' is failed" in (listed[1].last_error or "")


async def test_queued_updates_of_one_card_are_sent_once_with_the_newest_content(
    database: Database, connector: FakeConnector, workers: Workers
) -> None:
    conversation = f"{FORUM};messageid=42"
    for n in range(1, 6):
        await enqueue(database, "update", {"service_url": connector.url, "conversation_id": conversation,
                                           "activity_id": "42", "tenant_id": TENANT},
                      {"type": "message", "text": f"v{n}"}, f"card-42-v{n}", conversation)
    await workers.start()
    await wait_until(lambda: settled(database), 10, "the update")
    assert [a["text"] for a in connector.updates(conversation)] == ["v5"]
    assert await counts(database) == {"done": 1, "superseded": 4}


async def test_send_personal_to_a_user_opens_the_chat_first(
    database: Database, connector: FakeConnector, workers: Workers
) -> None:
    await enqueue(database, "send_personal", {"service_url": connector.url, "user_id": "29:anna",
                                              "tenant_id": TENANT, "bot_id": "28:bot"},
                  {"type": "message", "text": "Hej Anna"}, "dm-anna", "29:anna")
    await workers.start()
    await wait_until(lambda: settled(database), 10, "the message")
    (chat,) = connector.created_conversations()
    assert chat["isGroup"] is False and chat["activity"] is None
    assert chat["members"] == [{"id": "29:anna"}] and chat["tenantId"] == TENANT
    assert [a["text"] for a in connector.sent(chat["id"])] == ["Hej Anna"]


async def test_stop_gives_items_waiting_for_a_slot_back(
    database: Database, connector: FakeConnector, workers: Workers
) -> None:
    keys = [f"case-{n}" for n in range(9)]
    await enqueue_threads(database, connector, [(k, FORUM) for k in keys])
    worker = await workers.start()
    await wait_until(lambda: len(connector.created_conversations()) >= 7, 5, "the first seven")
    await worker.stop()
    c = await counts(database)
    assert c.get("claimed", 0) == 0 and c.get("sending", 0) == 0
    assert c["done"] == len(connector.created_conversations()) and c["done"] + c["pending"] == 9

    await workers.start("w2")
    await wait_until(lambda: settled(database), 10, "the rest")
    assert_each_once(connector, keys)
    assert_within_teams_limits(writes(connector), create_channel)


# --- crashes and several processes (separate worker processes: python -m bot.delivery) -----------


async def start_worker_process(database_url: str, worker_id: str, log: Path, *extra: str) -> asyncio.subprocess.Process:
    env = {**os.environ, "LOG_LEVEL": "WARNING"}
    with log.open("ab") as stderr:
        return await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bot.delivery", "--database-url", database_url, "--worker-id", worker_id,
            "--poll-seconds", "0.1", *extra, cwd=ROOT, env=env, stdout=asyncio.subprocess.DEVNULL, stderr=stderr,
        )


async def stop_process(process: asyncio.subprocess.Process) -> None:
    if process.returncode is None:
        process.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(process.wait(), 20)
        except TimeoutError:
            process.kill()
            await process.wait()


async def test_kill_9_while_posting_never_creates_a_second_thread(
    db_url: str, any_database: Database, connector: FakeConnector, transport: DeliveryConnector, tmp_path: Path
) -> None:
    database = any_database
    channels = [f"19:forum-{c}@thread.tacv2" for c in range(4)]
    keys = [f"case-{c}-{n}" for n in range(6) for c in range(4)]
    await enqueue_threads(database, connector, [(k, channels[int(k.split("-")[1])]) for k in keys])
    connector.delay = 0.3  # requests are in flight most of the time: the kill lands in the middle of one
    postgres = not db_url.startswith("sqlite")
    log = tmp_path / "worker.log"

    with steady_timestamps():
        process = await start_worker_process(db_url, "worker-a", log, "--lease-seconds", "2")
        try:
            await wait_until(lambda: len(writes(connector)) >= 8, 30, "the first threads")
        finally:
            process.send_signal(signal.SIGKILL)
            await process.wait()
        connector.delay = 0.0
        at_kill = await items(database)
        in_flight = {k for k, item in at_kill.items() if item.state == "sending"}
        assert in_flight, {k: i.state for k, i in at_kill.items()}

        # SQLite: the same worker id comes back and takes its items at once; PostgreSQL: another worker
        # takes them when their lease (2 s) has run out
        process = await start_worker_process(db_url, "worker-b" if postgres else "worker-a", log)
        try:
            await wait_until(lambda: settled(database), 30, "the rest of the burst")
        finally:
            await stop_process(process)

    after = await items(database)
    in_doubt = {k for k, item in after.items() if item.state == "in_doubt"}
    assert in_doubt == in_flight, "exactly the items in flight at the kill are in doubt"
    assert {k for k, item in after.items() if item.state == "done"} == set(keys) - in_flight
    markers = Counter(marker_of(t) for t in connector.created_conversations())
    assert max(markers.values()) == 1, "no second thread for any item"
    for key in set(keys) - in_flight:
        assert markers[key] == 1

    # the admin: the thread of an in-doubt item is there -> mark_done; it is missing -> retry_failed
    threads = {marker_of(t): t for t in connector.created_conversations()}
    async with database.transaction() as repo:
        out = OutboxRepo.of(repo)
        for key in in_doubt:
            if key in threads:
                thread = threads[key]
                assert await out.mark_done(after[key].id, {"conversation_id": thread["id"],
                                                           "activity_id": thread["activityId"]})
            else:
                assert await out.retry_failed(after[key].id)
    worker = DeliveryWorker(database, transport, worker_id="admin", poll_seconds=0.1)
    await worker.start()
    try:
        await wait_until(lambda: settled(database), 10, "the retried items")
    finally:
        await worker.stop()
    assert await counts(database) == {"done": 24}
    assert_each_once(connector, keys)
    assert_within_teams_limits(writes(connector), create_channel)
    assert "Traceback" not in log.read_text()


@pytest.mark.postgres
async def test_two_worker_processes_on_postgres_deliver_100_items_exactly_once(
    pg_url: str, connector: FakeConnector, tmp_path: Path
) -> None:
    database = Database(pg_url)
    try:
        await upgrade(database)
        channels = [f"19:forum-{c}@thread.tacv2" for c in range(10)]
        keys = [f"case-{c}-{n}" for n in range(10) for c in range(10)]
        await enqueue_threads(database, connector, [(k, channels[int(k.split("-")[1])]) for k in keys])
        log = tmp_path / "workers.log"
        with steady_timestamps():
            processes = [await start_worker_process(pg_url, f"worker-{n}", log) for n in (1, 2)]
            try:
                await wait_until(lambda: settled(database), 40, "100 threads")
            finally:
                for process in processes:
                    await stop_process(process)

        assert await counts(database) == {"done": 100}
        assert_each_once(connector, keys)
        stored = await items(database)
        assert {item.worker_id for item in stored.values()} == {"worker-1", "worker-2"}, "both took part"
        calls = writes(connector)
        assert_within_teams_limits(calls, create_channel)
        tenant_times = [c["t"] for c in calls]
        assert max_in_window(tenant_times, 1.0) <= 30, "~30 requests/s per tenant, across both processes"
        assert "Traceback" not in log.read_text()
    finally:
        await database.dispose()


async def test_start_delivery_runs_on_the_apps_connector_client(database: Database, connector: FakeConnector) -> None:
    """What bot/app.py's lifetime does: start_delivery(database, connector) ... delivery.stop()."""
    tokens = OutboundTokenProvider("", "", "SingleTenant", "")
    client = ConnectorClient(tokens)
    await client.start()
    delivery = await start_delivery(database, client, poll_seconds=0.1)
    try:
        await enqueue_threads(database, connector, [("case-1", FORUM)])
        delivery.wake()
        await wait_until(lambda: settled(database), 10, "the thread")
    finally:
        await delivery.stop()
        await client.close()
        await tokens.close()
    assert_each_once(connector, ["case-1"])
    assert delivery.worker_id == f"{socket.gethostname()}:{os.getpid()}"


# --- links to a case's thread in 1:1 messages -----------------------------------------------------

LINK_CARD_TEXT = "Din sag er oprettet: {{thread_url}}"


def linked_dm(text: str = LINK_CARD_TEXT) -> dict[str, Any]:
    """A 1:1 message whose card links to the case's thread (placeholder: {{thread_url}})."""
    card = {"type": "AdaptiveCard", "version": "1.5",
            "body": [{"type": "TextBlock", "text": text},
                     {"type": "ActionSet", "actions": [{"type": "Action.OpenUrl", "title": "Åbn tråden",
                                                        "url": "{{thread_url}}"}]}],
            "actions": [{"type": "Action.OpenUrl", "title": "Åbn sagen", "url": "{{thread_url}}"},
                        {"type": "Action.OpenUrl", "title": "Hjælp", "url": "https://example.dk/hjaelp"}]}
    return {"type": "message", "text": text,
            "attachments": [{"contentType": "application/vnd.microsoft.card.adaptive", "content": card}]}


def dm_target(connector: FakeConnector, link_parent: str, **extra: Any) -> dict[str, Any]:
    return {"service_url": connector.url, "user_id": "29:anna", "tenant_id": TENANT, "bot_id": "28:bot",
            "link_parent": link_parent, **extra}


def test_thread_link() -> None:
    channel = "19:abc@thread.tacv2"
    assert thread_link(channel, "1700000000000", tenant_id="tenant-1") == (
        "https://teams.microsoft.com/l/message/19%3Aabc%40thread.tacv2/1700000000000"
        "?tenantId=tenant-1&parentMessageId=1700000000000")
    assert thread_link(channel, "17", tenant_id="t", group_id="g-1") == (
        "https://teams.microsoft.com/l/message/19%3Aabc%40thread.tacv2/17?tenantId=t&parentMessageId=17&groupId=g-1")
    assert thread_link(channel, "17") == (
        "https://teams.microsoft.com/l/message/19%3Aabc%40thread.tacv2/17?parentMessageId=17")
    odd = thread_link('19:a"b\\c;d@thread.tacv2', "17", tenant_id="t&x")
    assert '"' not in odd and "\\" not in odd and ";" not in odd and "tenantId=t%26x&" in odd


def test_fill_placeholder_is_json_safe_and_leaves_the_input_alone() -> None:
    payload = linked_dm()
    filled = fill_placeholder(payload, 'https://x.dk/a"b\\c?d=1&e=2')
    assert filled["text"] == 'Din sag er oprettet: https://x.dk/a"b\\c?d=1&e=2'
    card = filled["attachments"][0]["content"]
    assert card["actions"][0]["url"] == 'https://x.dk/a"b\\c?d=1&e=2'
    assert card["body"][1]["actions"][0]["url"] == 'https://x.dk/a"b\\c?d=1&e=2'
    assert "{{thread_url}}" not in str(filled)
    assert payload == linked_dm(), "the stored payload is not changed"


def test_drop_placeholder_links_removes_the_links_and_blanks_the_rest() -> None:
    payload = linked_dm()
    payload["attachments"][0]["content"]["selectAction"] = {"type": "Action.OpenUrl", "url": "{{thread_url}}"}
    payload["attachments"].append({"contentType": "application/vnd.microsoft.card.hero",
                                   "content": {"buttons": [{"type": "openUrl", "value": "{{thread_url}}"}]}})
    dropped = drop_placeholder_links(payload)
    card = dropped["attachments"][0]["content"]
    assert dropped["text"] == "Din sag er oprettet: "
    assert card["body"] == [{"type": "TextBlock", "text": "Din sag er oprettet: "}], "the empty ActionSet goes"
    assert card["actions"] == [{"type": "Action.OpenUrl", "title": "Hjælp", "url": "https://example.dk/hjaelp"}]
    assert "selectAction" not in card
    assert dropped["attachments"][1]["content"] == {}, "no empty button list"
    assert "{{thread_url}}" not in str(dropped)


async def test_a_personal_message_links_to_the_thread_once_it_exists(
    database: Database, connector: FakeConnector, workers: Workers
) -> None:
    async with database.transaction() as repo:
        out = OutboxRepo.of(repo)
        await out.enqueue("create_thread", {**thread_target(connector), "group_id": "group-1"}, case_card("case-9"),
                          dedup_key="case-9:post", thread_key=FORUM)
        await out.enqueue("send_personal", dm_target(connector, "case-9:post"), linked_dm(),
                          dedup_key="case-9:dm-anna", thread_key="29:anna")
    connector.delay = 0.2  # the thread is still being created when the 1:1 message is first claimed
    await workers.start(parent_poll_seconds=0.05)
    await wait_until(lambda: settled(database), 10, "thread and message")

    assert await counts(database) == {"done": 2}
    thread, chat = connector.created_conversations()
    assert thread["channelId"] == FORUM and chat["isGroup"] is False, "the thread is created first"
    assert chat["members"] == [{"id": "29:anna"}], "the message goes to the 1:1 chat, not into the thread"
    link = (f"https://teams.microsoft.com/l/message/19%3Aforum-a%40thread.tacv2/{thread['activityId']}"
            f"?tenantId={TENANT}&parentMessageId={thread['activityId']}&groupId=group-1")
    (message,) = connector.sent(chat["id"])
    card = message["attachments"][0]["content"]
    assert message["text"] == f"Din sag er oprettet: {link}"
    assert card["actions"][0]["url"] == link and card["body"][1]["actions"][0]["url"] == link
    assert message["channelData"][MARKER_KEY] == "case-9:dm-anna"
    assert connector.sent(thread["id"]) == []
    stored = await items(database)
    assert stored["case-9:dm-anna"].payload == linked_dm(), "the placeholder stays in the outbox"


@pytest.mark.parametrize(("fault", "parent_state"), [(403, "failed"), (502, "in_doubt"), (None, "missing")])
async def test_a_personal_message_whose_thread_was_not_created_is_sent_without_the_link(
    database: Database, connector: FakeConnector, workers: Workers, fault: int | None, parent_state: str
) -> None:
    async with database.transaction() as repo:
        out = OutboxRepo.of(repo)
        if fault is not None:
            await out.enqueue("create_thread", thread_target(connector), case_card("case-10"),
                              dedup_key="case-10:post", thread_key=FORUM)
        await out.enqueue("send_personal", dm_target(connector, "case-10:post",
                                                     fallback_url="https://forum.example.dk/sager/10"),
                          linked_dm(), dedup_key="case-10:dm-anna", thread_key="29:anna")
        await out.enqueue("send_personal", {**dm_target(connector, "case-10:post"), "user_id": "29:bo"},
                          linked_dm(), dedup_key="case-10:dm-bo", thread_key="29:bo")
    if fault is not None:
        connector.fail_next(fault)
    await workers.start(parent_poll_seconds=0.05)
    await wait_until(lambda: settled(database), 10, "the messages")

    stored = await items(database)
    assert stored["case-10:dm-anna"].state == stored["case-10:dm-bo"].state == "done"
    if fault is not None:
        assert stored["case-10:post"].state == parent_state
    chats = {c["members"][0]["id"]: c["id"] for c in connector.created_conversations() if not c["isGroup"]}

    (to_anna,) = connector.sent(chats["29:anna"])  # with the fallback link
    card = to_anna["attachments"][0]["content"]
    assert to_anna["text"] == "Din sag er oprettet: https://forum.example.dk/sager/10"
    assert card["actions"][0]["url"] == "https://forum.example.dk/sager/10"

    (to_bo,) = connector.sent(chats["29:bo"])  # no fallback: without the link
    card = to_bo["attachments"][0]["content"]
    assert to_bo["text"] == "Din sag er oprettet: "
    assert [a["title"] for a in card["actions"]] == ["Hjælp"]
    assert card["body"] == [{"type": "TextBlock", "text": "Din sag er oprettet: "}]
    assert "{{thread_url}}" not in str(connector.sent())


# --- teams the bot was removed from ---------------------------------------------------------------


async def test_nothing_is_posted_into_a_team_the_bot_was_removed_from(
    database: Database, connector: FakeConnector, workers: Workers
) -> None:
    gone, kept = "19:gone@thread.tacv2", "19:kept@thread.tacv2"
    async with database.transaction() as repo:
        teams = TeamRepo(repo.conn)
        for team in (gone, kept):
            await teams.installed(team_id=team, tenant_id=TENANT, service_url=connector.url, name=team, by="",
                                  channels={team: "General"})
    async with database.transaction() as repo:
        out = OutboxRepo.of(repo)
        await out.enqueue("create_thread", {**thread_target(connector, gone), "team_id": gone}, case_card("a"),
                          dedup_key="gone:post", thread_key=gone)
        await out.enqueue("reply", {"service_url": connector.url, "conversation_id": f"{gone};messageid=5",
                                    "tenant_id": TENANT, "team_id": gone},
                          {"type": "message", "text": "svar"}, dedup_key="gone:reply", thread_key=f"{gone}/r")
        await out.enqueue("update", {"service_url": connector.url, "parent": "gone:post", "tenant_id": TENANT},
                          {"type": "message", "text": "v2"}, dedup_key="gone:update", thread_key=f"{gone}/u")
        await out.enqueue("create_thread", {**thread_target(connector, kept), "team_id": kept}, case_card("b"),
                          dedup_key="kept:post", thread_key=kept)
        await out.enqueue("send_personal", {"service_url": connector.url, "conversation_id": "a:anna",
                                            "tenant_id": TENANT, "team_id": gone},
                          {"type": "message", "text": "Botten er fjernet"}, dedup_key="gone:dm", thread_key="a:anna")
    async with database.transaction() as repo:
        assert await TeamRepo(repo.conn).removed(gone)

    await workers.start()
    await wait_until(lambda: settled(database), 10, "all items")

    assert [c["channelId"] for c in connector.created_conversations()] == [kept]
    assert [a["text"] for a in connector.sent("a:anna")] == ["Botten er fjernet"], "1:1 chats are not in the team"
    assert len(writes(connector)) == 2
    async with database.transaction() as repo:
        failed = {i.dedup_key: i for i in await OutboxRepo.of(repo).list_failed()}
    assert set(failed) == {"gone:post", "gone:reply", "gone:update"}
    assert failed["gone:post"].last_error == failed["gone:reply"].last_error == f"bot removed from team {gone}"
    assert failed["gone:post"].state == "failed" and failed["gone:post"].attempts == 0
    assert "parent 'gone:post' is failed" in (failed["gone:update"].last_error or "")


async def test_a_reply_into_a_thread_of_a_removed_team_is_not_sent(
    database: Database, connector: FakeConnector, workers: Workers
) -> None:
    team = "19:team@thread.tacv2"
    async with database.transaction() as repo:
        await TeamRepo(repo.conn).installed(team_id=team, tenant_id=TENANT, service_url=connector.url, name="T",
                                            by="", channels={})
    await enqueue(database, "create_thread", {**thread_target(connector, team), "team_id": team}, case_card("c"),
                  "c:post", team)
    worker = await workers.start()
    await wait_until(lambda: settled(database), 10, "the thread")
    async with database.transaction() as repo:
        assert await TeamRepo(repo.conn).removed(team)
    # the reply names only its parent: the team comes from the parent's target
    await enqueue(database, "reply", {"service_url": connector.url, "parent": "c:post", "tenant_id": TENANT},
                  {"type": "message", "text": "svar"}, "c:reply", team)
    worker.wake()
    await wait_until(lambda: settled(database), 10, "the reply")
    stored = await items(database)
    assert (stored["c:post"].state, stored["c:reply"].state) == ("done", "failed")
    assert stored["c:reply"].last_error == f"bot removed from team {team}"
    assert [c["kind"] for c in writes(connector)] == ["create_conversation"]
