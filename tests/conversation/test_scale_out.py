"""Two bot processes on one PostgreSQL: turns of one conversation at both never lose a write."""

from __future__ import annotations

import asyncio
import copy

import aiohttp
import pytest

from storage.db import Database
from tests.conftest import free_port
from tests.conversation.helpers import DG_PAGE1, to_dialoggrundlag
from tests.conversation.test_restart import _start_bot
from tests.support.chat import Chat, texts_of
from tests.support.fake_connector import FakeConnector

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
