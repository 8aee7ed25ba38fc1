"""Forum delivery under load and crashes, through the real HTTP endpoint of bot *processes*.

* A burst of 50 cases submitted at once (50 concurrent 1:1 chats pressing Indsend together) to one
  samarbejdsforum, the fake Bot Connector answering 429 to every third write: exactly 50 threads in the
  forum's channel and 50 orientation threads in Porteføljestyregruppen's, no case posted twice, and no
  channel ever gets more than Teams allows (7/1 s, 8/2 s, 60/30 s, counted from the fake connector's
  arrival stamps; throttled requests count too).
* kill -9 of the bot while it delivers new threads, card updates and status replies, then a restart on
  the same database (SQLite and PostgreSQL): every case has one thread per forum, every status reply
  exists once, nothing is left pending, and what was in flight at the kill is either delivered once or
  ``in_doubt`` (reported to an admin, never sent twice).

The helpers here (bot processes, channel set-up, outbox inspection) are shared with ``test_scale_out.py``.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
from sqlalchemy import select

from adaptive_cards import verbs
from bot.connector_extra import MARKER_KEY
from bot.delivery import TEAMS_THREAD_LIMITS
from storage.db import Database
from storage.outbox import OutboxItem, OutboxRepo, outbox_t
from storage.repositories import cases_t
from tests.conftest import free_port
from tests.conversation.helpers import CASE_NUMBER, case_number, through_dialoggrundlag, to_dialoggrundlag
from tests.conversation.test_delivery import max_in_window, steady_timestamps
from tests.support import activities
from tests.support.chat import Chat, actions_of
from tests.support.fake_connector import Call, FakeConnector
from tests.support.forum import AALBORG, PSG, ChannelUser, card_text, install_team, latest_root_card, threads

ROOT = Path(__file__).resolve().parents[2]

ADMIN = ("29:admin", "Ida Admin")
SECRETARY = ("29:sek-aalborg", "Søren Sekretær")
PSG_SECRETARY = ("29:sek-psg", "Pia Portefølje")
PEOPLE = [ADMIN, SECRETARY, PSG_SECRETARY]
UNFINISHED = ("pending", "claimed", "sending")


# --- bot processes ----------------------------------------------------------------------------------


class BotProcess:
    """``python -m bot`` on its own port; its log (stderr) goes to ``log``."""

    def __init__(self, database_url: str, log: Path, *, worker_id: str, **settings: str) -> None:
        self.database_url = database_url
        self.log = log
        self.worker_id = worker_id
        self.settings = settings
        self.port = free_port()
        self.process: asyncio.subprocess.Process | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api/messages"

    async def start(self) -> BotProcess:
        env = {**os.environ, "DATABASE_URL": self.database_url, "PORT": str(self.port), "HOST": "127.0.0.1",
               "LOG_LEVEL": "WARNING", "BOT_ADMINS": activities.aad_object_id_for(ADMIN[0]),
               # unique among running processes; the same id after a restart takes the dead one's items back
               "DELIVERY_WORKER_ID": self.worker_id, **self.settings}
        env.pop("MICROSOFT_APP_ID", None)
        with self.log.open("ab") as stderr:
            self.process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "bot", cwd=ROOT, env=env, stdout=asyncio.subprocess.DEVNULL, stderr=stderr)
        async with aiohttp.ClientSession() as session:
            for _ in range(300):
                try:
                    async with session.get(f"http://127.0.0.1:{self.port}/readyz") as resp:
                        if resp.status == 200:
                            return self
                except aiohttp.ClientError:
                    pass
                if self.process.returncode is not None:
                    raise AssertionError(f"bot exited with {self.process.returncode}: {self.log.read_text()[-2000:]}")
                await asyncio.sleep(0.1)
        self.process.kill()
        raise AssertionError("bot did not become ready")

    async def kill_9(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        await self.process.wait()
        assert self.process.returncode == -signal.SIGKILL

    async def stop(self) -> None:
        if self.process is not None and self.process.returncode is None:
            self.process.terminate()
            try:
                await asyncio.wait_for(self.process.wait(), 20)
            except TimeoutError:
                self.process.kill()
                await self.process.wait()


def channel_user(session: aiohttp.ClientSession, bot_url: str, connector: FakeConnector,
                 who: tuple[str, str]) -> ChannelUser:
    return ChannelUser(session, bot_url, connector, user_id=who[0], name=who[1])


async def bind(admin: ChannelUser, channel: str, forum_id: str, secretaries: list[ChannelUser]) -> None:
    """``@Opgaveflytning opsætning`` in the channel: knyt the forum to it and add its secretariat."""
    card = await admin.say("opsætning", channel)
    assert card is not None and "Opsætning af kanalen" in card_text(card), card
    await admin.press("Knyt til kanalen", channel, {"knyt_forum": forum_id})
    assert "Kanalen er knyttet til" in admin.text(), admin.text()
    await admin.press("Tilføj til sekretariatet", channel,
                      {f"personer_{forum_id}": ",".join(s.aad for s in secretaries)})
    assert "Tilføjet til sekretariatet" in admin.text(), admin.text()


async def set_up_forums(session: aiohttp.ClientSession, bot_url: str, connector: FakeConnector) -> None:
    """The team with the bot installed; Samarbejdsforum Aalborg and Porteføljestyregruppen bound."""
    await install_team(session, bot_url, connector, PEOPLE)
    admin = channel_user(session, bot_url, connector, ADMIN)
    await bind(admin, AALBORG, "sf_aalborg", [channel_user(session, bot_url, connector, SECRETARY)])
    await bind(admin, PSG, "psg", [channel_user(session, bot_url, connector, PSG_SECRETARY)])


async def to_review(chat: Chat, route: str = "samarbejdsforum") -> str:
    """Walk a new case to «Gennemse og indsend»; its case number."""
    await to_dialoggrundlag(chat)
    await through_dialoggrundlag(chat)
    await chat.press("Næste", {"route": route, "hospital": "aalborg"})
    for _ in range(12):  # route psg: the Mini-MTV pages (left empty) come first
        if any(a.get("title") == "Indsend" for a in actions_of(chat.card or {})):
            break
        await chat.press("Næste")
    assert any(a.get("title") == "Indsend" for a in actions_of(chat.card or {})), chat.text()
    return case_number(chat)


async def submit_all(chats: list[Chat]) -> None:
    """Everyone presses Indsend at the same moment."""
    await asyncio.gather(*(chat.press("Indsend") for chat in chats))
    for chat in chats:
        assert "Sagen er indsendt" in chat.text(), chat.text()


# --- what the database and the fake connector hold ----------------------------------------------------


async def outbox_items(database_url: str) -> list[OutboxItem]:
    database = Database(database_url)
    try:
        async with database.connect() as conn:
            rows = (await conn.execute(select(outbox_t).order_by(outbox_t.c.id))).all()
    finally:
        await database.dispose()
    return [OutboxItem.from_row(row) for row in rows]


async def outbox_counts(database_url: str) -> Counter[str]:
    return Counter(item.state for item in await outbox_items(database_url))


async def settled(database_url: str) -> bool:
    counts = await outbox_counts(database_url)
    return not any(counts[state] for state in UNFINISHED)


async def case_ids(database_url: str) -> dict[str, int]:
    database = Database(database_url)
    try:
        async with database.connect() as conn:
            rows = (await conn.execute(select(cases_t.c.number, cases_t.c.id))).all()
    finally:
        await database.dispose()
    return {number: case_id for number, case_id in rows}


async def wait_for(condition: Callable[[], Any], timeout: float, what: str) -> None:  # noqa: ASYNC109
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
        await asyncio.sleep(0.1)


def channel_of(call: Call) -> str | None:
    """The channel a write lands in (new thread, reply or update in a thread); None for 1:1 chats."""
    if call["kind"] == "create_conversation":
        channel = (((call["body"] or {}).get("channelData") or {}).get("channel") or {}).get("id")
        return str(channel) if channel else None
    conversation = str(call["conversation_id"] or "")
    return conversation.split(";messageid=", 1)[0] if conversation.startswith("19:") else None


def busiest_windows(calls: list[Call]) -> dict[str, tuple[int, ...]]:
    """Per channel: the most requests seen in any 1 s, 2 s and 30 s window."""
    by_channel: dict[str, list[float]] = {}
    for call in calls:
        channel = channel_of(call)
        if channel is not None:
            by_channel.setdefault(channel, []).append(call["t"])
    return {channel: tuple(max_in_window(times, w.seconds) for w in TEAMS_THREAD_LIMITS[:3])
            for channel, times in by_channel.items()}


def assert_within_teams_limits(calls: list[Call]) -> None:
    limits = tuple(w.limit for w in TEAMS_THREAD_LIMITS[:3])
    for channel, seen in busiest_windows(calls).items():
        assert all(n <= limit for n, limit in zip(seen, limits, strict=True)), (channel, seen, limits)


def marker(activity: dict[str, Any] | None) -> str | None:
    return ((activity or {}).get("channelData") or {}).get(MARKER_KEY)


def delivered_markers(connector: FakeConnector) -> Counter[str]:
    """How often each outbox item's activity arrived (every activity the worker POSTs carries its key)."""
    found: Counter[str] = Counter()
    for call in connector.calls:
        if call["status"] >= 300:
            continue
        if call["kind"] == "create_conversation":
            key = marker((call["body"] or {}).get("activity"))
        elif call["kind"] in ("send", "reply"):
            key = marker(call["body"])
        else:
            continue
        if key:
            found[key] += 1
    return found


def numbers_in(card: dict[str, Any]) -> list[str]:
    return sorted(set(CASE_NUMBER.findall(card_text(card))))


def thread_numbers(connector: FakeConnector, channel: str) -> Counter[str]:
    """Case numbers on the root cards of the threads in ``channel`` (one number per card)."""
    found: Counter[str] = Counter()
    for thread in threads(connector, channel):
        numbers = numbers_in(thread["card"])
        assert len(numbers) == 1, numbers
        found[numbers[0]] += 1
    return found


# --- 50 cases at once -----------------------------------------------------------------------------------


async def test_50_cases_submitted_at_once_to_one_forum_with_429_on_every_third_write(
    sqlite_url: str, connector: FakeConnector, tmp_path: Path
) -> None:
    bot = await BotProcess(sqlite_url, tmp_path / "bot.log", worker_id="burst").start()
    try:
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=100)) as session:
            await set_up_forums(session, bot.url, connector)
            chats = [Chat(session, bot.url, connector, user_id=f"29:initiativtager-{n}", user_name=f"Person {n}")
                     for n in range(50)]
            numbers = await asyncio.gather(*(to_review(chat) for chat in chats))
            assert len(set(numbers)) == 50
            before = len(connector.calls)
            submitted = datetime.now(UTC)
            connector.fail_every(3, 429, retry_after=0.5)
            with steady_timestamps():
                await submit_all(chats)
                await wait_for(lambda: settled(sqlite_url), 150, "50 cases delivered")
        items = await outbox_items(sqlite_url)
    finally:
        await bot.stop()

    burst = [c for c in connector.calls[before:] if c["method"] in ("POST", "PUT")]  # throttled ones too
    assert {item.state for item in items} == {"done"}, Counter(item.state for item in items)
    # per case: a thread in each forum and a 1:1 message to the initiator (plus the greeting at install)
    assert Counter(item.kind for item in items if item.created_at >= submitted) == Counter(
        {"create_thread": 100, "send_personal": 50})
    # exactly one thread per case in each channel, with the case's card
    assert thread_numbers(connector, AALBORG) == Counter(numbers)
    assert thread_numbers(connector, PSG) == Counter(numbers)
    for thread in threads(connector, PSG):
        assert "Til orientering" in card_text(thread["card"])
    duplicates = {k: n for k, n in delivered_markers(connector).items() if n > 1}
    assert not duplicates, duplicates
    # each initiator is told once where the case went
    for chat in chats:
        told = [a for a in connector.sent(chat.conversation_id) if marker(a)]
        assert len(told) == 1, told
    throttled = [c for c in burst if c["status"] == 429]
    assert len(burst) - len(throttled) == 150 and len(throttled) == len(burst) // 3, "every third write: 429"
    assert {channel_of(c) for c in throttled} >= {AALBORG, PSG}
    # every request counts, throttled ones too: 7 per 1 s, 8 per 2 s, 60 per 30 s in each channel
    assert_within_teams_limits(burst)
    assert max_in_window([c["t"] for c in burst], 1.0) <= 30, "about 30 requests per second per tenant"
    assert "Traceback" not in bot.log.read_text()


# --- kill -9 while delivering -----------------------------------------------------------------------


DECISIONS = [("loeft", ""), ("orientering", "Intet grundlag lokalt")]


async def decide(secretary: ChannelUser, case_id: int, outcome: str, reason: str) -> dict[str, Any]:
    data = {"case": case_id, "forum": "sf_aalborg", "udfald": outcome, "begrundelse": reason}
    return await secretary.execute(verbs.FORUM_DECIDE, data, AALBORG)


async def resolve_as_admin(database_url: str, connector: FakeConnector) -> list[OutboxItem]:
    """What an admin does with ``list_failed()``: an in-doubt item whose activity is there (found by its
    marker) is marked done with its ids, one that is not is queued again; items that failed because their
    thread was in doubt are queued again. Returns the items that needed the admin."""
    found: dict[str, tuple[str, str | None]] = {}
    for call in connector.calls:
        if call["status"] < 300 and call["kind"] == "create_conversation":
            found[str(marker((call["body"] or {}).get("activity")))] = (call["conversation_id"], call["activity_id"])
        elif call["status"] < 300 and call["kind"] in ("send", "reply"):
            found[str(marker(call["body"]))] = (call["conversation_id"], call["result_id"])
    database = Database(database_url)
    try:
        async with database.transaction() as repo:
            out = OutboxRepo.of(repo)
            listed = await out.list_failed()
            for item in listed:
                if item.state == "in_doubt" and item.dedup_key in found:
                    conversation_id, activity_id = found[item.dedup_key]
                    result: dict[str, Any] = {"conversation_id": conversation_id, "activity_id": activity_id}
                    if item.kind == "create_thread":
                        result["channel_id"] = item.target["channel_id"]
                    assert await out.mark_done(item.id, result)
                else:
                    assert await out.retry_failed(item.id)
    finally:
        await database.dispose()
    return listed


def assert_once_after_kill(connector: FakeConnector, items: dict[str, OutboxItem], in_flight: Counter[str]) -> None:
    """Threads and status replies arrived at most once; a 1:1 message (at-least-once: an admin cannot look
    into someone's 1:1 chat) once more only for each kill that cut its request off."""
    twice = {key: n for key, n in delivered_markers(connector).items() if n > 1}
    assert all(items[key].kind == "send_personal" and n <= 1 + in_flight[key] for key, n in twice.items()), twice


def new_thread(call: Call) -> bool:
    return call["kind"] == "create_conversation" and channel_of(call) is not None


def status_reply(call: Call) -> bool:
    return call["kind"] == "send" and ";messageid=" in str(call["conversation_id"])


async def test_kill_9_while_delivering_threads_updates_and_status_replies(
    db_url: str, connector: FakeConnector, tmp_path: Path
) -> None:
    log = tmp_path / "bot.log"
    bot = await BotProcess(db_url, log, worker_id="bot-1").start()
    in_flight: Counter[str] = Counter()  # what was being sent at a kill (the fake has it, the bot no answer)

    async def kill_9_when(sent: Callable[[Call], bool], kind: str, what: str) -> BotProcess:
        """kill -9 the bot as soon as the fake connector has such a request (it answers after 0.3 s), then
        start it again on the same database (same worker id: it takes the dead one's items back at once)."""
        first = len(connector.calls)
        await wait_for(lambda: any(sent(c) for c in connector.calls[first:]), 30, what)
        await bot.kill_9()
        at_kill = await outbox_items(db_url)
        sending = {item.dedup_key: item.kind for item in at_kill if item.state == "sending"}
        assert kind in sending.values(), sending
        assert any(item.state == "pending" for item in at_kill), "the kill came mid-burst"
        in_flight.update(sending.keys())
        return await BotProcess(db_url, log, worker_id="bot-1").start()

    try:
        async with aiohttp.ClientSession() as session:
            await set_up_forums(session, bot.url, connector)
            chats = [Chat(session, bot.url, connector, user_id=f"29:kill-{n}", user_name=f"Person {n}")
                     for n in range(4)]
            numbers = await asyncio.gather(*(to_review(chat) for chat in chats))
            connector.delay = 0.3  # every request is in flight for a while: the kills land in one
            setup = len(connector.calls)
            with steady_timestamps():
                await submit_all(chats)
                bot = await kill_9_when(new_thread, "create_thread", "a new thread in flight")

                # the secretariat decides on every case while the threads are still being posted
                secretary = channel_user(session, bot.url, connector, SECRETARY)
                ids = await case_ids(db_url)
                decided = {number: DECISIONS[n % 2] for n, number in enumerate(numbers)}
                cards = await asyncio.gather(*(decide(secretary, ids[number], *decided[number]) for number in numbers))
                for card in cards:
                    assert "er registreret" in card_text(card), card_text(card)
                bot = await kill_9_when(status_reply, "reply", "a status reply in flight")
                connector.delay = 0.0

                await wait_for(lambda: settled(db_url), 60, "the rest delivered after the restarts")
                after = {item.dedup_key: item for item in await outbox_items(db_url)}
                in_doubt = {key for key, item in after.items() if item.state == "in_doubt"}
                failed = {key: item for key, item in after.items() if item.state == "failed"}
                # only what was in flight at a kill can be in doubt; nothing else needs an admin but what was to
                # go into a thread that is in doubt
                assert in_doubt <= set(in_flight), (in_doubt, in_flight)
                for key, item in failed.items():
                    assert item.parent_key in in_doubt, (key, item.last_error)
                for key in in_doubt:  # the admin is told what to look for
                    assert key in (after[key].last_error or ""), after[key].last_error
                # no thread and no status reply twice; a 1:1 message (at-least-once) only if it was in flight
                assert_once_after_kill(connector, after, in_flight)

                listed = await resolve_as_admin(db_url, connector)
                assert {item.dedup_key for item in listed} == in_doubt | set(failed)
                await wait_for(lambda: settled(db_url), 30, "the admin's retries")
                final = await outbox_counts(db_url)
                assert set(final) <= {"done", "superseded"}, final
    finally:
        await bot.stop()

    assert_once_after_kill(connector, {item.dedup_key: item for item in await outbox_items(db_url)}, in_flight)
    # the request log is in the database: Teams' limits hold across the restarts too
    assert_within_teams_limits([c for c in connector.calls[setup:] if c["method"] in ("POST", "PUT")])
    # one thread per case and forum
    assert thread_numbers(connector, AALBORG) == Counter(numbers)
    assert thread_numbers(connector, PSG) == Counter(numbers)
    label = {"loeft": "Løftes til Porteføljestyregruppen",
             "orientering": "Ingen grundlag – kun orientering til Porteføljestyregruppen"}
    for channel in (AALBORG, PSG):
        for thread in threads(connector, channel):
            (number,) = numbers_in(thread["card"])
            outcome = decided[number][0]
            replies = [str(a.get("text") or "") for a in connector.sent(thread["conversation_id"])]
            status = [r for r in replies if number in r and "har registreret" in r]
            assert len(status) == 1, (channel, number, replies)
            assert label[outcome] in status[0]
            assert label[outcome] in card_text(latest_root_card(connector, thread)), "the card shows the decision"
    for chat, number in zip(chats, numbers, strict=True):  # sent to the forum; the forum's decision
        told = Counter(marker(a) for a in connector.sent(chat.conversation_id) if marker(a))
        assert len(told) == 2, (number, told)
    assert "Traceback" not in log.read_text()
