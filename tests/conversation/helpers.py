"""Walk helpers for conversation tests (through the real HTTP endpoint)."""

from __future__ import annotations

import re
from typing import Any

from tests.support.chat import Chat

CASE_NUMBER = re.compile(r"OF-\d{4}-\d{4}")

DG_PAGE1 = {
    "h_task": "Sårpleje i eget hjem",
    "h_initiator_org": "Aalborg Universitetshospital",
    "q1a": "Færre indlæggelser og bedre forløb for borgeren.",
}


async def to_dialoggrundlag(chat: Chat) -> None:
    await chat.say("ny sag")
    await chat.press("Næste", {"s1": "ja", "s2": "nej", "s3": "nej"})
    assert "Initiativpligt" in chat.text()
    await chat.press("Næste", {"need": "ja"})
    assert "Dialoggrundlag · side 1 af 4" in chat.text()


async def through_dialoggrundlag(chat: Chat, extra: dict[str, Any] | None = None) -> None:
    await chat.press("Næste", {**DG_PAGE1, **(extra or {})})
    assert "Dialoggrundlag · side 2 af 4" in chat.text(), chat.text()
    await chat.press("Næste", {"q2_1": "Kommunens sygeplejersker overtager sårplejen."})
    assert "Dialoggrundlag · side 3 af 4" in chat.text()
    await chat.press("Næste", {"q3": "Borgeren slipper for transport."})
    assert "Dialoggrundlag · side 4 af 4" in chat.text()
    await chat.press("Næste", {"q6": "Ingen driftsmidler følger med."})
    assert "Vælg forum for sagen" in chat.text() and "side 1 af 1" not in chat.text()


def case_number(chat: Chat) -> str:
    match = CASE_NUMBER.search(chat.text())
    assert match, chat.text()
    return match.group(0)
