"""Two bot processes on one PostgreSQL: turns of one conversation at both never lose a write; every outbox
item is delivered exactly once; reminders fire once; one decision wins when two arrive at once."""

from __future__ import annotations

import asyncio
import copy
from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from sqlalchemy import select, update

from adaptive_cards import verbs
from adaptive_cards.common import COPENHAGEN
from storage.db import Database
from storage.forums import ForumRepo, reminders_t
from tests.conftest import free_port
from tests.conversation.helpers import DG_PAGE1, to_dialoggrundlag
from tests.conversation.test_forum_reliability import (
    PSG_SECRETARY,
    SECRETARY,
    BotProcess,
    assert_within_teams_limits,
    case_ids,
    channel_user,
    delivered_markers,
    marker,
    numbers_in,
    outbox_items,
    set_up_forums,
    settled,
    submit_all,
    thread_numbers,
    to_review,
    wait_for,
)
from tests.conversation.test_restart import _start_bot
from tests.support import activities
from tests.support.chat import Chat, texts_of
from tests.support.fake_connector import FakeConnector
from tests.support.forum import AALBORG, PSG, card_text, latest_root_card, threads

pytestmark = pytest.mark.postgres


async def test_two_processes_same_case_concurrently(pg_url: str, connector: FakeConnector) -> None:
    ports = [free_port(), free_port()]
    processes = [await _start_bot(pg_url, port) for port in ports]
    try:
        async with aiohttp.ClientSession() as session:
            urls = [f"http://127.0.0.1:{port}/api/messages" for port in ports]
            first = Chat(session, urls[0], connector, user_id="29:scale-out")
            await to_dialoggrundlag(first)
            await first.press("Næste", DG_PAGE1)
            assert "side 2 af 4" in first.text()
            # The same page open on two devices; each device's turn lands on a different process.
            second = Chat(session, urls[1], connector, user_id="29:scale-out")
            second.conversation_id = first.conversation_id
            second.acts = first.acts
            second.card = copy.deepcopy(first.card)
            verb_a, data_a = first.payload("Næste", {"q2_1": "Fra enhed A", "q2_3": "A: 40 borgere"})
            verb_b, data_b = second.payload("Næste", {"q2_2": "Fra enhed B", "q2_3": "B: 45 borgere"})
            cards = await asyncio.gather(first.execute(verb_a, data_a), second.execute(verb_b, data_b))
            texts = [texts_of(card) for card in cards]
            # Exactly one of the two saw an older card: it is told so, and its conflicting answer is not kept.
            stale = [t for t in texts if "Du brugte et ældre kort" in t]
            assert len(stale) == 1, texts
            assert "nyeste version er beholdt" in stale[0]
        database = Database(pg_url)
        try:
            async with database.transaction() as repo:
                case = await repo.newest_open_case(_aad(first), ["dialoggrundlag"])
                assert case is not None
                loaded = await repo.get_case_and_answers(case.id)
                events = await repo.events(case.id)
        finally:
            await database.dispose()
        assert loaded is not None
        answers = loaded[1].values()["dialoggrundlag"]
        # Both devices' non-conflicting answers are kept; the contested one holds the first writer's value.
        assert answers["q2_1"] == "Fra enhed A"
        assert answers["q2_2"] == "Fra enhed B"
        assert answers["q2_3"] in ("A: 40 borgere", "B: 45 borgere")
        winner = "A" if answers["q2_3"].startswith("A") else "B"
        assert ("Du brugte et ældre kort" in texts[0]) == (winner == "B")
        saves = [e for e in events if e.kind == "svar_gemt" and e.detail["step"] == "dialoggrundlag/opgaven"]
        assert len(saves) == 2, "both turns were recorded, one after the other"
    finally:
        for process in processes:
            process.terminate()
            await process.wait()


def _aad(chat: Chat) -> str:
    from tests.support.activities import aad_object_id_for

    return aad_object_id_for(chat.user_id)


# --- forums on two processes: the outbox, reminders and decisions -------------------------------------


@pytest.fixture
async def nodes(pg_url: str, connector: FakeConnector, tmp_path: Path) -> AsyncIterator[list[BotProcess]]:
    """Two identical bot processes on one PostgreSQL (each with its own delivery worker and reminder loop,
    the reminder loop polling every 0.2 s), the team installed and two forums bound."""
    log = tmp_path / "bots.log"
    started: list[BotProcess] = []
    try:
        for n in (1, 2):  # one after the other: the first migrates the database
            started.append(await BotProcess(pg_url, log, worker_id=f"node-{n}", REMINDER_POLL_SECONDS="0.2").start())
        async with aiohttp.ClientSession() as session:
            await set_up_forums(session, started[0].url, connector)
        yield started
        assert "Traceback" not in log.read_text()
    finally:
        for bot in started:
            await bot.stop()


def at(chat: Chat, bot: BotProcess) -> Chat:
    """The next turns of this conversation arrive at ``bot``."""
    chat.bot_url = bot.url
    return chat


async def case_events(pg_url: str, case_id: int) -> list[Any]:
    database = Database(pg_url)
    try:
        async with database.transaction() as repo:
            return list(await repo.events(case_id))
    finally:
        await database.dispose()


async def test_two_processes_deliver_every_outbox_item_exactly_once(
    pg_url: str, connector: FakeConnector, nodes: list[BotProcess]
) -> None:
    setup = len(connector.calls)
    async with aiohttp.ClientSession() as session:
        chats = [Chat(session, nodes[n % 2].url, connector, user_id=f"29:scale-{n}", user_name=f"Person {n}")
                 for n in range(6)]
        numbers = await asyncio.gather(*(to_review(chat) for chat in chats))
        # Indsend at the other process than the one that took the walk
        await submit_all([at(chat, nodes[(n + 1) % 2]) for n, chat in enumerate(chats)])
        ids = await case_ids(pg_url)
        secretaries = [channel_user(session, bot.url, connector, SECRETARY) for bot in nodes]
        cards = await asyncio.gather(*(
            secretaries[n % 2].execute(verbs.FORUM_DECIDE, {"case": ids[number], "forum": "sf_aalborg",
                                                            "udfald": "loeft"}, AALBORG)
            for n, number in enumerate(numbers)))
        assert all("er registreret" in card_text(card) for card in cards)
        await wait_for(lambda: settled(pg_url), 60, "everything delivered")
        items = await outbox_items(pg_url)

    assert {item.state for item in items} <= {"done", "superseded"}, Counter(item.state for item in items)
    # Which process delivered what depends on who woke first (both poll one table); exactly-once is the
    # property, so the split is printed, not asserted (tests/storage/test_outbox.py has the claim race itself).
    print("delivered by", Counter(item.worker_id for item in items if item.state == "done"))
    delivered = delivered_markers(connector)
    posted = [item for item in items if item.kind != "update" and item.state == "done"]
    assert {item.dedup_key: delivered[item.dedup_key] for item in posted} == {item.dedup_key: 1 for item in posted}
    assert set(delivered) == {item.dedup_key for item in posted}, "nothing posted that the outbox did not hold"
    assert thread_numbers(connector, AALBORG) == Counter(numbers)
    assert thread_numbers(connector, PSG) == Counter(numbers)
    for channel in (AALBORG, PSG):
        for thread in threads(connector, channel):
            (number,) = numbers_in(thread["card"])
            replies = [str(a.get("text") or "") for a in connector.sent(thread["conversation_id"])]
            assert len([r for r in replies if number in r and "har registreret" in r]) == 1, replies
            assert "Løftes til Porteføljestyregruppen" in card_text(latest_root_card(connector, thread))
    for chat in chats:  # sent to the forum; lifted to PSG
        assert len([a for a in connector.sent(chat.conversation_id) if marker(a)]) == 2
    # the rate limits hold across both processes (one request log in the database); from here on, every
    # write is the outbox's (the set-up's answers to @mentions in the channels are in-turn replies)
    assert_within_teams_limits([c for c in connector.calls[setup:] if c["method"] in ("POST", "PUT")])


async def test_reminders_fire_once_with_two_processes_polling(
    pg_url: str, connector: FakeConnector, nodes: list[BotProcess]
) -> None:
    async with aiohttp.ClientSession() as session:
        chat = Chat(session, nodes[0].url, connector, user_id="29:reminded", user_name="Rita Påmindelse")
        number = await to_review(chat, route="psg")
        await submit_all([chat])
        case_id = (await case_ids(pg_url))[number]
        psg_secretary = channel_user(session, nodes[1].url, connector, PSG_SECRETARY)
        answers = {f"q{i}": f"Svar {i}" for i in range(1, 7)}
        card = await psg_secretary.execute(verbs.FORUM_DECIDE, {"case": case_id, "forum": "psg", "udfald": "pilot",
                                                               **answers}, PSG)
        assert "er registreret" in card_text(card), card_text(card)
        responsible = [activities.aad_object_id_for(who[0]) for who in (SECRETARY, PSG_SECRETARY)]
        evaluation = (datetime.now(COPENHAGEN).date() + timedelta(days=20)).isoformat()
        card = await psg_secretary.execute(verbs.FORUM_PLAN, {"case": case_id, "forum": "psg",
                                                             "ansvarlige": ",".join(responsible),
                                                             "evalueringsdato": evaluation}, PSG)
        assert "Planen er gemt" in card_text(card), card_text(card)
        await wait_for(lambda: settled(pg_url), 30, "the plan delivered")

        # the reminders (14 days before the evaluation and on the day) are due now: both processes poll
        database = Database(pg_url)
        try:
            async with database.transaction() as repo:
                pending = await ForumRepo(repo.conn).pending_reminders(case_id)
                assert sorted(r.kind for r in pending) == ["eval_notice", "evaluation"]
                await repo.conn.execute(update(reminders_t).where(reminders_t.c.case_id == case_id)
                                        .values(due_at=datetime.now(UTC) - timedelta(minutes=1)))
            await wait_for(lambda: reminders_taken(database, case_id), 30, "both reminders taken")
            await wait_for(lambda: settled(pg_url), 30, "the reminders delivered")
            async with database.connect() as conn:
                rows = (await conn.execute(select(reminders_t).where(reminders_t.c.case_id == case_id))).all()
        finally:
            await database.dispose()

    reminders = {row._mapping["id"]: row._mapping for row in rows}
    assert {r["state"] for r in reminders.values()} == {"sent"}
    assert {r["sent_by"] for r in reminders.values()} <= {"node-1", "node-2"}
    events = [e for e in await case_events(pg_url, case_id) if e.kind == "paamindelse"]
    assert Counter(e.detail["reminder"] for e in events) == Counter(list(reminders)), "each reminder fired once"
    (thread,) = threads(connector, PSG)
    replies = [str(a.get("text") or "") for a in connector.sent(thread["conversation_id"])]
    assert len([r for r in replies if f"Påmindelse · {number}" in r]) == 2, replies
    delivered = delivered_markers(connector)
    for reminder_id in reminders:
        assert delivered[f"reminder:{reminder_id}:thread"] == 1
        for user_id in responsible:
            assert delivered[f"reminder:{reminder_id}:{user_id}"] == 1, "one 1:1 per responsible person"
    assert not {k: n for k, n in delivered.items() if n > 1}


async def reminders_taken(database: Database, case_id: int) -> bool:
    async with database.transaction() as repo:
        return not await ForumRepo(repo.conn).pending_reminders(case_id)


async def test_submit_and_decide_on_one_case_at_both_processes_at_once(
    pg_url: str, connector: FakeConnector, nodes: list[BotProcess]
) -> None:
    async with aiohttp.ClientSession() as session:
        first = Chat(session, nodes[0].url, connector, user_id="29:two-devices", user_name="Dorte To")
        number = await to_review(first)
        # The review page open on two devices; each presses Indsend, at a different process.
        second = Chat(session, nodes[1].url, connector, user_id=first.user_id)
        second.conversation_id, second.acts, second.card = first.conversation_id, first.acts, copy.deepcopy(first.card)
        await asyncio.gather(first.press("Indsend"), second.press("Indsend"))
        case_id = (await case_ids(pg_url))[number]

        # Two secretaries' cards (or one on two devices): different decisions, at both processes at once.
        secretaries = [channel_user(session, bot.url, connector, SECRETARY) for bot in nodes]
        outcomes = [("loeft", "Løftes til Porteføljestyregruppen", ""),
                    ("orientering", "Ingen grundlag – kun orientering til Porteføljestyregruppen", "Ikke lokalt")]
        cards = await asyncio.gather(*(
            secretary.execute(verbs.FORUM_DECIDE, {"case": case_id, "forum": "sf_aalborg", "udfald": outcome,
                                                   "begrundelse": reason}, AALBORG)
            for secretary, (outcome, _, reason) in zip(secretaries, outcomes, strict=True)))
        await wait_for(lambda: settled(pg_url), 30, "everything delivered")

    texts = [card_text(card) for card in cards]
    assert len([t for t in texts if "er registreret" in t]) == 1, texts
    assert len([t for t in texts if "Det kan ikke registreres nu" in t]) == 1, texts
    events = await case_events(pg_url, case_id)
    assert len([e for e in events if e.kind == "indsendt"]) == 1, "submitted once"
    decisions = [e for e in events if e.kind.startswith("beslutning_")]
    assert len(decisions) == 1, "exactly one decision recorded"
    label = next(label for outcome, label, _ in outcomes if decisions[0].kind == f"beslutning_{outcome}")
    assert f"«{label}» er registreret" in next(t for t in texts if "er registreret" in t)
    for channel in (AALBORG, PSG):
        (thread,) = threads(connector, channel)  # one thread per forum
        replies = [str(a.get("text") or "") for a in connector.sent(thread["conversation_id"])]
        status = [r for r in replies if "har registreret" in r]
        assert len(status) == 1 and label in status[0], replies
        assert label in card_text(latest_root_card(connector, thread))
    assert not {k: n for k, n in delivered_markers(connector).items() if n > 1}
