"""Forums in Teams through the real HTTP endpoint: set-up, routing, decisions, notifications."""

from __future__ import annotations

import asyncio
import copy
import re
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from typing import Any
from urllib.parse import quote

import pytest

from adaptive_cards import verbs
from adaptive_cards.common import COPENHAGEN
from tests.conftest import BotServer
from tests.conversation.helpers import case_number, through_dialoggrundlag, to_dialoggrundlag
from tests.support.chat import Chat, actions_of, inputs_of, walk
from tests.support.fake_connector import FakeConnector
from tests.support.forum import (
    AALBORG,
    ADMIN,
    COLLEAGUE,
    GENERAL,
    INITIATOR,
    OUTSIDER,
    PEOPLE,
    PSG,
    PSG_SECRETARY,
    PSG_SECRETARY_2,
    SECRETARY,
    SSF,
    SSF_SECRETARY,
    ChannelUser,
    aad,
    activity_cards,
    activity_text,
    assert_thread_link,
    bind,
    button_titles,
    card_text,
    channel_user,
    facts_of,
    fill_dialoggrundlag,
    forum_server,
    latest_root_card,
    open_urls,
    outbox_size,
    personal_messages,
    reminders_of,
    replies_text,
    set_due,
    stored_case,
    submit_forum_case,
    submit_psg_case,
    text_blocks,
    thread_for,
    threads,
    wait_for_thread,
    wait_messages,
    wait_outbox_settled,
    wait_threads,
    wait_until,
)


@pytest.fixture
async def forum_bot(db_url: str, connector: FakeConnector) -> AsyncIterator[BotServer]:
    async with forum_server(db_url, connector) as server:
        yield server


def user(bot: BotServer, who: tuple[str, str]) -> ChannelUser:
    return channel_user(bot, who)


async def test_samarbejdsforum_route_lift_psg_decision_body_plan_evaluate(forum_bot: BotServer) -> None:
    connector = forum_bot.connector
    admin, secretary, psg_sec, ssf_sec, outsider = (user(forum_bot, p) for p in PEOPLE[:5])
    await bind(admin, AALBORG, "sf_aalborg", [secretary])
    await bind(admin, PSG, "psg", [psg_sec])
    await bind(admin, SSF, "ssf", [ssf_sec])

    chat = forum_bot.chat(user_id=INITIATOR[0], user_name=INITIATOR[1])
    await to_dialoggrundlag(chat)
    await through_dialoggrundlag(chat)
    await chat.press("Næste", {"route": "samarbejdsforum", "hospital": "aalborg"})
    number = case_number(chat)
    await chat.press("Indsend")
    assert "Sagen er indsendt" in chat.text()

    [forum_thread] = await wait_threads(connector, AALBORG, 1)
    [psg_thread] = await wait_threads(connector, PSG, 1)
    assert number in card_text(forum_thread["card"]) and "Hos samarbejdsforum" in card_text(forum_thread["card"])
    assert "Til orientering" in card_text(psg_thread["card"])
    assert secretary.aad in str(forum_thread["card"]["refresh"]) or "29:sek-aalborg" in str(forum_thread["card"]["refresh"])

    # The outsider sees no decision actions and cannot decide with a forged payload.
    view = await outsider.refresh(forum_thread["card"], AALBORG, forum_thread["conversation_id"])
    assert "Registrér beslutning" not in str(view)
    data = {"case": forum_thread["card"]["refresh"]["action"]["data"]["case"], "forum": "sf_aalborg",
            "udfald": "loeft", "begrundelse": "forfalsket"}
    refused = await outsider.execute(verbs.FORUM_DECIDE, data, AALBORG, thread=forum_thread["conversation_id"])
    assert "Kun sekretariatet" in card_text(refused)

    # The secretary lifts the case to PSG.
    view = await secretary.refresh(forum_thread["card"], AALBORG, forum_thread["conversation_id"])
    await secretary.press("Registrér beslutning", AALBORG, thread=forum_thread["conversation_id"])
    await secretary.press("Registrér beslutning", AALBORG, {"udfald": "loeft", "begrundelse": "Større end lokalt"},
                          thread=forum_thread["conversation_id"])
    assert "er registreret" in secretary.text(), secretary.text()
    await wait_until(lambda: any("løftet" in t for t in replies_text(connector, forum_thread)), what="status reply")
    await wait_until(lambda: "Mini-MTV" in card_text(latest_root_card(connector, forum_thread)), what="card update")
    # Teams refreshes the updated card for the secretariat: the one who decided still sees it was recorded.
    again = await secretary.refresh(latest_root_card(connector, forum_thread), AALBORG, forum_thread["conversation_id"])
    assert "Du har registreret: Samarbejdsforum ved Aalborg Universitetshospital" in card_text(again)
    assert "Du har registreret" not in card_text(
        await outsider.refresh(latest_root_card(connector, forum_thread), AALBORG, forum_thread["conversation_id"]))

    # The initiator is told in 1:1 and fills in the Mini-MTV, then submits again: the PSG thread takes over.
    await wait_until(lambda: any("løftet" in str(a) for a in connector.sent(chat.conversation_id)), what="1:1 notice")
    await chat.say("fortsæt")
    assert "Mini-MTV" in chat.text(), chat.text()
    for _ in range(10):
        if "Gennemse og indsend" in chat.text():
            break
        await chat.press("Næste")
    await chat.press("Indsend")
    await wait_until(lambda: "Hos Porteføljestyregruppen" in card_text(latest_root_card(connector, psg_thread)),
                     what="PSG card updated")
    assert len(await wait_threads(connector, PSG, 1)) == 1, "no second thread in PSG"

    # PSG answers its six questions and sends it to the decision body.
    await psg_sec.refresh(latest_root_card(connector, psg_thread), PSG, psg_thread["conversation_id"])
    await psg_sec.press("Registrér Porteføljestyregruppens behandling", PSG, thread=psg_thread["conversation_id"])
    answers = {f"q{i}": f"Svar {i}" for i in range(1, 7)}
    await psg_sec.press("Registrér beslutning", PSG, {**answers, "udfald": "afgoerelse"},
                        thread=psg_thread["conversation_id"])
    assert "er registreret" in psg_sec.text(), psg_sec.text()
    [ssf_thread] = await wait_threads(connector, SSF, 1)
    assert "Til afgørelse" in card_text(ssf_thread["card"])

    await ssf_sec.refresh(ssf_thread["card"], SSF, ssf_thread["conversation_id"])
    await ssf_sec.press("Registrér afgørelse", SSF, thread=ssf_thread["conversation_id"])
    await ssf_sec.press("Registrér beslutning", SSF, {"udfald": "enighed"}, thread=ssf_thread["conversation_id"])
    assert "Skriv en begrundelse" in ssf_sec.text(), "an agreement is recorded with its reasons"
    await ssf_sec.press("Registrér beslutning", SSF, {"udfald": "enighed", "begrundelse": "Aftale indgået"},
                        thread=ssf_thread["conversation_id"])
    await ssf_sec.press("Planlæg opfølgning", SSF, thread=ssf_thread["conversation_id"])
    await ssf_sec.press("Gem plan", SSF, {"ansvarlige": secretary.aad, "evalueringsdato": "2030-06-01"},
                        thread=ssf_thread["conversation_id"])
    assert "Planen er gemt" in ssf_sec.text(), ssf_sec.text()
    await ssf_sec.press("Registrér evaluering", SSF, thread=ssf_thread["conversation_id"])
    await ssf_sec.press("Registrér evaluering", SSF, {"evaluering": "Det virkede."},
                        thread=ssf_thread["conversation_id"])
    assert "Afsluttet – evalueret" in ssf_sec.text()
    await chat.say("mine sager")
    assert "Afsluttet – evalueret" in chat.text()
    # Opening the case in 1:1 shows where it ended and why.
    await chat.execute(verbs.CASE_OPEN, {"case": forum_thread["card"]["refresh"]["action"]["data"]["case"]})
    assert "Seneste beslutning" in chat.text() and "Evalueret – sagen er afsluttet" in chat.text()
    assert "Evaluering" in chat.text() and "Det virkede." in chat.text(), chat.text()



INITIATOR_AAD = aad(INITIATOR)
# Flows whose storage is already covered on PostgreSQL by the tests that run on both: SQLite only (fast).
sqlite_only = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)


# ---------------------------------------------------------------------------------------------- route PSG
LONG_ANSWER = ("Drøftet med kommunens hjemmesygepleje og almen praksis i klyngen " * 40)[:1996] + "SLUT"
DATE_TIME = re.compile(r"^\d{1,2}\.\d{1,2}\.20\d\d kl\. \d\d:\d\d$")


async def test_route_psg_one_thread_with_the_case_card_all_answers_and_history(forum_bot: BotServer,
                                                                             db_url: str) -> None:
    connector = forum_bot.connector
    admin, psg_sec = user(forum_bot, ADMIN), user(forum_bot, PSG_SECRETARY)
    await bind(admin, AALBORG, "sf_aalborg", [user(forum_bot, SECRETARY)])
    await bind(admin, PSG, "psg", [psg_sec])
    chat = forum_bot.chat(user_id=INITIATOR[0], user_name=INITIATOR[1])
    number = await submit_psg_case(chat, {"q3": LONG_ANSWER, "q4": "Ja, under indsatsområde 2."})
    assert "Porteføljestyregruppen (dialoggrundlag og Mini-MTV)" in chat.text()
    assert "4 af 31 spørgsmål besvaret" in chat.text()

    [thread] = await wait_threads(connector, PSG, 1)
    await wait_outbox_settled(db_url)  # anything queued with it has gone out by now
    assert len(threads(connector, PSG)) == 1
    assert threads(connector, AALBORG) == [] and threads(connector, SSF) == []
    root = thread["card"]
    facts = facts_of(root)
    assert facts["Sag"] == number
    assert facts["Opgave"] == "Sårpleje i eget hjem"
    assert facts["Fase"] == "Hos Porteføljestyregruppen"
    assert facts["Forum"] == "Porteføljestyregruppen"
    assert facts["Initiativtager"] == "Bent Hansen, Aalborg Universitetshospital"
    assert facts["Mini-MTV"] == "4 af 31 spørgsmål besvaret"
    assert DATE_TIME.match(facts["Senest ændret"]), facts
    assert "Til orientering" not in card_text(root)
    assert LONG_ANSWER[:100] not in str(root), "the compact card holds no answers"
    # The root card is the same for everyone (no secretariat buttons); the secretary's own view has them.
    assert button_titles(root) == ["Vis alle svar", "Historik"]
    assert psg_sec.user_id in root["refresh"]["userIds"]
    own = await psg_sec.refresh(root, PSG, thread["conversation_id"])
    assert "Registrér Porteføljestyregruppens behandling" in button_titles(own)

    # The initiator is told in 1:1, with a link to the new thread.
    [sent] = await wait_messages(connector, INITIATOR_AAD, f"Sag {number} er slået op hos Porteføljestyregruppen",
                                 1, chat.conversation_id)
    assert_thread_link(sent, thread)

    # «Vis alle svar»: every answer in full, over as many parts as needed; Forrige/Næste move between them.
    reader = user(forum_bot, OUTSIDER)
    first = await reader.press("Vis alle svar", PSG, thread=thread["conversation_id"], card=root)
    parts = [first]
    while "Næste" in button_titles(reader.card or {}):
        parts.append(await reader.press("Næste", PSG, thread=thread["conversation_id"]))
        assert len(parts) < 10
    assert len(parts) >= 2, "the answers need more than one card"
    assert f"Del 1 af {len(parts)}" in card_text(parts[0]) and f"Del {len(parts)} af {len(parts)}" in card_text(parts[-1])
    assert "Forrige" not in button_titles(parts[0]) and "Næste" not in button_titles(parts[-1])
    back = await reader.press("Forrige", PSG, thread=thread["conversation_id"])
    assert back == parts[-2]
    blocks = [b for part in parts for b in text_blocks(part)]
    assert LONG_ANSWER in blocks, "the 2000-character answer is shown whole"
    for answer in ("Sårpleje i eget hjem", "Færre indlæggelser og bedre forløb for borgeren.",
                   "Kommunens sygeplejersker overtager sårplejen.", "Borgeren slipper for transport.",
                   "Ingen driftsmidler følger med.", "Ja, under indsatsområde 2.", "Bent Hansen"):
        assert answer in blocks, answer
    # Mini-MTV questions carry their seed number once («3: Hvilke parter …», not «3. 3: …»).
    assert "3: Hvilke parter er forslaget drøftet med?" in blocks
    assert not [b for b in blocks if re.match(r"^(\d+)\. \1[:.]", b)], "question numbers are doubled"
    await reader.press("Tilbage til sagen", PSG, thread=thread["conversation_id"])
    assert facts_of(reader.card or {})["Sag"] == number

    history = await reader.press("Historik", PSG, thread=thread["conversation_id"])
    lines = text_blocks(history)
    assert any("Bent Hansen: Sagen er oprettet" in line for line in lines), lines
    assert any("Bent Hansen: Sagen er indsendt" in line for line in lines), lines
    assert "svar gemt" not in card_text(history).lower()


# ---------------------------------------------------------------------------------------------- decisions
PSG_QUESTIONS_SEED_001 = [  # seed 001 l.311–339, verbatim
    "Skal der arbejdes videre med opgaveflytning – og hvordan?",
    "Er dialoggrundlaget og mini-mtv fyldestgørende?",
    "Afklare evaluering af opgaveflytning",
    "Skal opgaveflytningen afprøves lokalt før den evt. løftes til regionalt niveau?",
    "Afklares om der er behov for nye underliggende aftaler ved flytning til almen praksis?",
    "Afklare eventuelle behov for kompetenceudvikling?",
]
PSG_ANSWERS = {f"q{i}": f"PSG-svar {i}" for i in range(1, 7)}
OPEN_DECISION = {"sf_aalborg": "Registrér beslutning", "psg": "Registrér Porteføljestyregruppens behandling",
                 "ssf": "Registrér afgørelse"}
NOT_RECORDED = "Beslutningen er ikke registreret"


def choices_of(card: dict[str, Any], input_id: str) -> dict[str, str]:
    [found] = [el for el in walk(card.get("body", [])) if el.get("id") == input_id]
    return {c["value"]: c["title"] for c in found.get("choices", [])}


def input_labels(card: dict[str, Any]) -> list[str]:
    return [str(el.get("label")) for el in walk(card.get("body", [])) if str(el.get("type", "")).startswith("Input.")]


async def open_decision(sec: ChannelUser, channel: str, thread: dict[str, Any], forum_id: str) -> dict[str, Any]:
    """The secretary opens the decision form from their own view of the thread's root card."""
    await sec.refresh(latest_root_card(sec.connector, thread), channel, thread["conversation_id"])
    return await sec.press(OPEN_DECISION[forum_id], channel, thread=thread["conversation_id"])


async def snapshot(db_url: str, number: str) -> tuple[str, int, list[str], int]:
    """What must not change on a refusal: phase, revision, events, outbox."""
    case, events = await stored_case(db_url, number)
    return case.phase, case.revision, [e.kind for e in events], await outbox_size(db_url)


async def wait_reply(connector: FakeConnector, thread: dict[str, Any], text: str, count: int = 1) -> list[str]:
    await wait_until(lambda: len([r for r in replies_text(connector, thread) if text in r]) >= count,
                     what=f"status reply with {text!r}")
    return [r for r in replies_text(connector, thread) if text in r]


async def psg_case_in_thread(bot: BotServer, psg_sec: ChannelUser, chat: Chat) -> tuple[str, dict[str, Any]]:
    number = await submit_psg_case(chat)
    return number, await wait_for_thread(bot.connector, PSG, number)


@sqlite_only
async def test_samarbejdsforum_orientation_only_needs_a_reason_and_closes_the_case(
        forum_bot: BotServer, db_url: str) -> None:
    connector = forum_bot.connector
    admin, secretary, psg_sec = user(forum_bot, ADMIN), user(forum_bot, SECRETARY), user(forum_bot, PSG_SECRETARY)
    await bind(admin, AALBORG, "sf_aalborg", [secretary])
    await bind(admin, PSG, "psg", [psg_sec])
    chat = forum_bot.chat(user_id=INITIATOR[0], user_name=INITIATOR[1])
    number = await submit_forum_case(chat)
    forum_thread = await wait_for_thread(connector, AALBORG, number)
    psg_thread = await wait_for_thread(connector, PSG, number)
    assert "Til orientering" in card_text(psg_thread["card"])

    form = await open_decision(secretary, AALBORG, forum_thread, "sf_aalborg")
    assert choices_of(form, "udfald") == {"loeft": "Løftes til Porteføljestyregruppen",
                                          "orientering": "Ingen grundlag – kun orientering til Porteføljestyregruppen"}
    assert not set(PSG_QUESTIONS_SEED_001) & set(input_labels(form)), "the six questions are PSG's"
    before = await snapshot(db_url, number)
    await secretary.press("Registrér beslutning", AALBORG, {"udfald": "orientering"},
                          thread=forum_thread["conversation_id"])
    assert NOT_RECORDED in secretary.text() and "Skriv en begrundelse – den sendes til initiativtager." in secretary.text()
    assert await snapshot(db_url, number) == before, "a refused decision changes nothing"

    reason = "Opgaven er allerede dækket af den eksisterende aftale."
    await secretary.press("Registrér beslutning", AALBORG, {"udfald": "orientering", "begrundelse": reason},
                          thread=forum_thread["conversation_id"])
    assert "Beslutningen «Ingen grundlag – kun orientering til Porteføljestyregruppen» er registreret." in secretary.text()
    assert "Sagen er afsluttet." in secretary.text()
    assert facts_of(secretary.card or {})["Fase"] == "Lukket – kun orientering til PSG"
    assert button_titles(secretary.card or {}) == ["Vis alle svar", "Historik"], "nothing left to decide"

    # PSG's orientation thread: a status reply and its root card updated in place.
    [reply] = await wait_reply(connector, psg_thread, "Samarbejdsforum fandt ikke grundlag")
    assert number in reply and f"Begrundelse: {reason}" in reply
    assert "Ingen grundlag – kun orientering til Porteføljestyregruppen" in reply
    await wait_until(lambda: "Lukket – kun orientering til PSG" in card_text(latest_root_card(connector, psg_thread)),
                     what="PSG's root card updated")
    assert "Til orientering" in card_text(latest_root_card(connector, psg_thread))
    await wait_reply(connector, forum_thread, "Samarbejdsforum fandt ikke grundlag")
    assert len(threads(connector, PSG)) == 1 and len(threads(connector, AALBORG)) == 1

    # The initiator is told in 1:1 with a link to a thread of the case, and sees it closed under «mine sager».
    [told] = await wait_messages(connector, INITIATOR_AAD, "kun orientering", 1, chat.conversation_id)
    assert f"Sag {number}" in activity_text(told) and f"Begrundelse: {reason}" in activity_text(told)
    assert "Åbn sagen" not in button_titles(activity_cards(told)[0]), "nothing for the initiator to do"
    linked = [t for t in (forum_thread, psg_thread) if any(u.startswith(
        f"https://teams.microsoft.com/l/message/{quote(t['conversation_id'].split(';')[0], safe='')}/{t['root_id']}?")
        for u in open_urls(told))]
    assert len(linked) == 1 and "{{thread_url}}" not in str(told), open_urls(told)
    await chat.say("mine sager")
    assert f"**{number}**" in chat.text() and "Lukket – kun orientering til PSG" in chat.text()

    case, events = await stored_case(db_url, number)
    assert case.phase == "kun_orientering" and case.closed_reason == reason
    [decided] = [e for e in events if e.kind.startswith("beslutning_")]
    assert decided.kind == "beslutning_orientering" and decided.detail["reason"] == reason
    assert decided.actor_id == secretary.aad


async def test_psg_returns_for_completion_and_the_case_comes_back_to_the_same_thread(
        forum_bot: BotServer, db_url: str) -> None:
    connector = forum_bot.connector
    admin, psg_sec = user(forum_bot, ADMIN), user(forum_bot, PSG_SECRETARY)
    await bind(admin, PSG, "psg", [psg_sec])
    chat = forum_bot.chat(user_id=INITIATOR[0], user_name=INITIATOR[1])
    number, thread = await psg_case_in_thread(forum_bot, psg_sec, chat)

    form = await open_decision(psg_sec, PSG, thread, "psg")
    first_form = copy.deepcopy(form)
    labels = input_labels(form)
    assert labels[:6] == PSG_QUESTIONS_SEED_001, labels
    assert choices_of(form, "udfald") == {
        "retur": "Returneres til supplering", "pilot": "Afprøves lokalt først", "gensidig": "Kun gensidig orientering",
        "afgoerelse": "Til afgørelse i Strategisk Sundhedsforum", "afvist": "Afvises"}
    before = await snapshot(db_url, number)
    # No reason and no answers: each of the six questions and the reason are asked for.
    await psg_sec.press("Registrér beslutning", PSG, {"udfald": "retur"}, thread=thread["conversation_id"])
    text = psg_sec.text()
    assert NOT_RECORDED in text and "Skriv en begrundelse" in text
    assert text.count("Besvar spørgsmålet") == 6, text
    # Five answers and a reason: the sixth is still required.
    await psg_sec.press("Registrér beslutning", PSG,
                        {**{k: v for k, v in PSG_ANSWERS.items() if k != "q6"}, "udfald": "retur",
                         "begrundelse": "Økonomien mangler."}, thread=thread["conversation_id"])
    assert NOT_RECORDED in psg_sec.text() and psg_sec.text().count("Besvar spørgsmålet") == 1
    assert inputs_of(psg_sec.card or {})["q1"] == "PSG-svar 1", "what was typed is kept"
    assert await snapshot(db_url, number) == before

    await psg_sec.press("Registrér beslutning", PSG, {**PSG_ANSWERS, "udfald": "retur",
                                                      "begrundelse": "Økonomien mangler."},
                        thread=thread["conversation_id"])
    assert "Beslutningen «Returneres til supplering» er registreret." in psg_sec.text()
    assert facts_of(psg_sec.card or {})["Fase"] == "Returneret til supplering"
    await wait_reply(connector, thread, "har returneret sagen til supplering")

    # The initiator gets a 1:1 message with «Åbn sagen» and a link to the thread.
    [told] = await wait_messages(connector, INITIATOR_AAD, "Returneres til supplering", 1, chat.conversation_id)
    assert "Begrundelse: Økonomien mangler." in activity_text(told)
    assert_thread_link(told, thread)
    chat.card = activity_cards(told)[0]
    await chat.press("Åbn sagen")
    assert "Gennemse og indsend" in chat.text(), chat.text()
    verb, data = chat.payload("Vis og ret")
    data[data["pick"]] = "dialoggrundlag/konsekvenser"
    await chat.execute(verb, data)
    assert "Dialoggrundlag · side 3 af 4" in chat.text()
    await chat.press("Gem og gennemse", {"q4_2": "Oplæring af 12 sygeplejersker."})
    assert "Gennemse og indsend" in chat.text() and "Oplæring af 12 sygeplejersker" in chat.text()
    await chat.press("Indsend")
    assert "Sagen er indsendt" in chat.text()

    [resubmitted] = await wait_reply(connector, thread, "suppleret og indsendt igen")
    assert f"**{number}** er suppleret og indsendt igen af Bent Hansen." in resubmitted
    await wait_until(lambda: facts_of(latest_root_card(connector, thread))["Fase"] == "Hos Porteføljestyregruppen"
                     and "Returneres til supplering" in facts_of(latest_root_card(connector, thread)).get(
                         "Seneste beslutning", ""), what="root card updated")
    assert len(threads(connector, PSG)) == 1, "no new thread: the case is back in the same one"
    updates = [u for u in connector.updates(thread["conversation_id"]) if u["id"] == thread["root_id"]]
    assert len(updates) >= 2, "the root card was updated in place (returned, then resubmitted)"
    # The decision form opened before the return is outdated: it cannot decide on the supplemented case.
    before = await snapshot(db_url, number)
    stale = await psg_sec.press("Registrér beslutning", PSG, {**PSG_ANSWERS, "udfald": "afgoerelse"},
                                thread=thread["conversation_id"], card=first_form)
    assert "Det kan ikke registreres nu" in card_text(stale) and "Intet er ændret." in card_text(stale)
    assert facts_of(stale)["Fase"] == "Hos Porteføljestyregruppen"
    assert await snapshot(db_url, number) == before
    # A fresh form decides.
    form = await open_decision(psg_sec, PSG, thread, "psg")
    assert "retur" in choices_of(form, "udfald")
    await psg_sec.press("Registrér beslutning", PSG, {**PSG_ANSWERS, "udfald": "afgoerelse"},
                        thread=thread["conversation_id"])
    assert "Beslutningen «Til afgørelse i Strategisk Sundhedsforum» er registreret." in psg_sec.text()
    case, events = await stored_case(db_url, number)
    assert case.phase == "afgoerelse" and [e.kind for e in events if e.kind in (
        "indsendt", "beslutning_retur", "genindsendt", "beslutning_afgoerelse")] == [
        "indsendt", "beslutning_retur", "genindsendt", "beslutning_afgoerelse"]


def today() -> date:
    return datetime.now(COPENHAGEN).date()


def da(day: date) -> str:
    return f"{day.day}.{day.month}.{day.year}"


@sqlite_only
async def test_psg_local_pilot_plan_validation_evaluation_then_mutual_orientation(
        forum_bot: BotServer, db_url: str) -> None:
    connector = forum_bot.connector
    admin, psg_sec, outsider = user(forum_bot, ADMIN), user(forum_bot, PSG_SECRETARY), user(forum_bot, OUTSIDER)
    await bind(admin, PSG, "psg", [psg_sec])
    chat = forum_bot.chat(user_id=INITIATOR[0], user_name=INITIATOR[1])
    number, thread = await psg_case_in_thread(forum_bot, psg_sec, chat)
    conversation = thread["conversation_id"]

    await open_decision(psg_sec, PSG, thread, "psg")
    await psg_sec.press("Registrér beslutning", PSG, {**PSG_ANSWERS, "udfald": "pilot"}, thread=conversation)
    assert "Beslutningen «Afprøves lokalt først» er registreret." in psg_sec.text()
    assert facts_of(psg_sec.card or {})["Fase"] == "Lokal afprøvning"
    assert "Registrér evaluering" not in button_titles(psg_sec.card or {}), "no evaluation before a plan"
    await wait_reply(connector, thread, "afprøves lokalt først")

    plan_form = await psg_sec.press("Planlæg opfølgning", PSG, thread=conversation)
    assert "Lokal afprøvning – plan" in card_text(plan_form)
    evaluation = today() + timedelta(days=40)
    before = await snapshot(db_url, number)
    for inputs, error in (
        ({"evalueringsdato": evaluation.isoformat()}, "Vælg mindst én ansvarlig for opfølgningen."),
        ({"ansvarlige": outsider.aad, "evalueringsdato": (today() - timedelta(days=1)).isoformat()},
         "Evalueringsdatoen skal ligge efter i dag."),
        ({"ansvarlige": outsider.aad, "evalueringsdato": today().isoformat()},
         "Evalueringsdatoen skal ligge efter i dag."),
        ({"ansvarlige": outsider.aad, "evalueringsdato": "1. juni næste år"}, "Vælg datoen for evalueringen."),
        ({"ansvarlige": outsider.aad, "evalueringsdato": "2030-02-30"}, "Vælg datoen for evalueringen."),
    ):
        psg_sec.card = plan_form
        await psg_sec.press("Gem plan", PSG, inputs, thread=conversation)
        assert "Planen er ikke gemt" in psg_sec.text() and error in psg_sec.text(), (inputs, psg_sec.text())
        assert await snapshot(db_url, number) == before, inputs
    case, _ = await stored_case(db_url, number)
    assert "plan" not in case.flags

    psg_sec.card = plan_form
    await psg_sec.press("Gem plan", PSG, {"ansvarlige": outsider.aad, "evalueringsdato": evaluation.isoformat(),
                                          "note": "Status på hvert møde."}, thread=conversation)
    assert "Planen er gemt, og påmindelser er sat op." in psg_sec.text(), psg_sec.text()
    facts = facts_of(psg_sec.card or {})
    assert facts["Fase"] == "Lokal afprøvning" and facts["Ansvarlige for opfølgning"] == "Ole Udenfor"
    assert facts["Evaluering"] == da(evaluation)
    [plan_reply] = await wait_reply(connector, thread, "Plan for opfølgning registreret")
    assert f"evaluering {da(evaluation)}" in plan_reply and "Aftaler: Status på hvert møde." in plan_reply
    [responsible] = await wait_messages(connector, outsider.aad, f"Du er ansvarlig for opfølgning på sag {number}")
    assert_thread_link(responsible, thread)

    await psg_sec.press("Registrér evaluering", PSG, thread=conversation)
    assert "Lokal afprøvning – resultat" in psg_sec.text()
    before = await snapshot(db_url, number)
    await psg_sec.press("Registrér evaluering", PSG, {"evaluering": "   "}, thread=conversation)
    assert "Evalueringen er ikke registreret" in psg_sec.text() and "Skriv evalueringen." in psg_sec.text()
    assert await snapshot(db_url, number) == before
    await psg_sec.press("Registrér evaluering", PSG, {"evaluering": "Afprøvningen gik godt i to kommuner."},
                        thread=conversation)
    assert "Evalueringen er registreret." in psg_sec.text()
    facts = facts_of(psg_sec.card or {})
    assert facts["Fase"] == "Hos Porteføljestyregruppen" and "Ansvarlige for opfølgning" not in facts
    [back] = await wait_reply(connector, thread, "Sagen er tilbage hos Porteføljestyregruppen")
    assert "Evaluering: Afprøvningen gik godt i to kommuner." in back
    case, _ = await stored_case(db_url, number)
    assert case.phase == "psg"
    assert await reminders_of(db_url, case.id) == [], "the pilot's reminders are cancelled once it is evaluated"

    # Back at PSG: «Kun gensidig orientering» closes the case.
    await open_decision(psg_sec, PSG, thread, "psg")
    await psg_sec.press("Registrér beslutning", PSG, {**PSG_ANSWERS, "udfald": "gensidig"}, thread=conversation)
    assert "Beslutningen «Kun gensidig orientering» er registreret." in psg_sec.text()
    assert "Sagen er afsluttet." in psg_sec.text()
    assert facts_of(psg_sec.card or {})["Fase"] == "Lukket – gensidig orientering"
    assert button_titles(psg_sec.card or {}) == ["Vis alle svar", "Historik"]
    await wait_reply(connector, thread, "blot skal ske en gensidig orientering. Sagen er lukket.")
    await wait_messages(connector, INITIATOR_AAD, "Kun gensidig orientering", 1, chat.conversation_id)
    case, events = await stored_case(db_url, number)
    assert case.phase == "gensidig_orientering"
    assert [e.kind for e in events if e.kind.startswith("beslutning_") or e.kind in ("plan", "evaluering")] == [
        "beslutning_pilot", "plan", "evaluering", "beslutning_gensidig"]


@sqlite_only
async def test_psg_rejection_and_no_agreement_need_a_reason_and_close_the_case(
        forum_bot: BotServer, db_url: str) -> None:
    connector = forum_bot.connector
    admin, psg_sec, ssf_sec = user(forum_bot, ADMIN), user(forum_bot, PSG_SECRETARY), user(forum_bot, SSF_SECRETARY)
    await bind(admin, PSG, "psg", [psg_sec])
    await bind(admin, SSF, "ssf", [ssf_sec])
    chat = forum_bot.chat(user_id=INITIATOR[0], user_name=INITIATOR[1])

    # «Afvises» needs a reason.
    rejected, thread = await psg_case_in_thread(forum_bot, psg_sec, chat)
    await open_decision(psg_sec, PSG, thread, "psg")
    before = await snapshot(db_url, rejected)
    await psg_sec.press("Registrér beslutning", PSG, {**PSG_ANSWERS, "udfald": "afvist"},
                        thread=thread["conversation_id"])
    assert NOT_RECORDED in psg_sec.text() and "Skriv en begrundelse" in psg_sec.text()
    assert await snapshot(db_url, rejected) == before
    await psg_sec.press("Registrér beslutning", PSG, {**PSG_ANSWERS, "udfald": "afvist", "begrundelse": "For dyrt."},
                        thread=thread["conversation_id"])
    assert facts_of(psg_sec.card or {})["Fase"] == "Lukket – afvist" and "Sagen er afsluttet." in psg_sec.text()
    [reply] = await wait_reply(connector, thread, "har afvist sagen")
    assert "Begrundelse: For dyrt." in reply
    case, _ = await stored_case(db_url, rejected)
    assert case.phase == "afvist" and case.closed_reason == "For dyrt."

    # To the decision body, which finds no agreement (a reason is required).
    number, thread = await psg_case_in_thread(forum_bot, psg_sec, chat)
    await open_decision(psg_sec, PSG, thread, "psg")
    await psg_sec.press("Registrér beslutning", PSG, {**PSG_ANSWERS, "udfald": "afgoerelse"},
                        thread=thread["conversation_id"])
    assert facts_of(psg_sec.card or {})["Fase"] == "Til afgørelse i Strategisk Sundhedsforum"
    ssf_thread = await wait_for_thread(connector, SSF, number)
    form = await open_decision(ssf_sec, SSF, ssf_thread, "ssf")
    assert choices_of(form, "udfald") == {"enighed": "Enighed – aftale om opgaveflytning",
                                          "uenighed": "Ikke enighed – ingen aftale"}
    before = await snapshot(db_url, number)
    await ssf_sec.press("Registrér beslutning", SSF, {"udfald": "uenighed"}, thread=ssf_thread["conversation_id"])
    assert NOT_RECORDED in ssf_sec.text() and "Skriv en begrundelse" in ssf_sec.text()
    assert await snapshot(db_url, number) == before
    await ssf_sec.press("Registrér beslutning", SSF, {"udfald": "uenighed", "begrundelse": "Kommunerne siger nej."},
                        thread=ssf_thread["conversation_id"])
    assert "Beslutningen «Ikke enighed – ingen aftale» er registreret." in ssf_sec.text()
    assert facts_of(ssf_sec.card or {})["Fase"] == "Lukket – ingen aftale"
    assert button_titles(ssf_sec.card or {}) == ["Vis alle svar", "Historik"], "no plan without an agreement"
    await wait_reply(connector, ssf_thread, "Strategisk Sundhedsforum indgik ikke aftale om opgaveflytningen.")
    await wait_reply(connector, thread, "Strategisk Sundhedsforum indgik ikke aftale om opgaveflytningen.")
    await wait_until(lambda: facts_of(latest_root_card(connector, thread))["Fase"] == "Lukket – ingen aftale",
                     what="PSG's root card updated too")
    [told] = await wait_messages(connector, INITIATOR_AAD, "Ikke enighed – ingen aftale", 1, chat.conversation_id)
    assert_thread_link(told, ssf_thread)
    case, _ = await stored_case(db_url, number)
    assert case.phase == "ingen_aftale" and case.closed_reason == "Kommunerne siger nej."
    await chat.say("mine sager")
    assert "Lukket – afvist" in chat.text() and "Lukket – ingen aftale" in chat.text()


# ---------------------------------------------------------------------------------------------- refusals
async def test_forged_stale_duplicate_and_concurrent_decisions_change_nothing(
        forum_bot: BotServer, db_url: str) -> None:
    connector = forum_bot.connector
    admin, secretary = user(forum_bot, ADMIN), user(forum_bot, SECRETARY)
    psg_sec, psg_sec_2, outsider = (user(forum_bot, p) for p in (PSG_SECRETARY, PSG_SECRETARY_2, OUTSIDER))
    await bind(admin, AALBORG, "sf_aalborg", [secretary])
    await bind(admin, PSG, "psg", [psg_sec, psg_sec_2])
    chat = forum_bot.chat(user_id=INITIATOR[0], user_name=INITIATOR[1])
    number, thread = await psg_case_in_thread(forum_bot, psg_sec, chat)
    conversation = thread["conversation_id"]
    case_id = thread["card"]["refresh"]["action"]["data"]["case"]
    draft = forum_bot.chat(user_id=COLLEAGUE[0], user_name=COLLEAGUE[1])
    draft_number = await fill_dialoggrundlag(draft)
    draft_id = (await stored_case(db_url, draft_number))[0].id
    reject = {**PSG_ANSWERS, "udfald": "afvist", "begrundelse": "Forfalsket"}
    form = await open_decision(psg_sec, PSG, thread, "psg")
    before = await snapshot(db_url, number)
    draft_before = await snapshot(db_url, draft_number)

    async def refused(who: ChannelUser, channel: str, data: dict[str, Any], expected: str) -> None:
        card = await who.execute(verbs.FORUM_DECIDE, data, channel, thread=conversation if channel == PSG else None)
        assert expected in card_text(card), (data, card_text(card))
        assert "er registreret" not in card_text(card)

    not_secretariat = "Kun sekretariatet for Porteføljestyregruppen kan registrere beslutninger på denne sag. Intet er ændret."
    not_here = "Dette kort hører ikke til et forum i denne kanal."
    unreadable = "Kortet kunne ikke læses."
    await refused(outsider, PSG, {"case": case_id, "forum": "psg", **reject}, not_secretariat)
    await refused(secretary, PSG, {"case": case_id, "forum": "psg", **reject}, not_secretariat)  # another forum's
    await refused(secretary, AALBORG, {"case": case_id, "forum": "sf_aalborg", **reject}, not_here)
    await refused(psg_sec, AALBORG, {"case": case_id, "forum": "psg", **reject}, not_here)
    await refused(psg_sec, PSG, {"case": draft_id, "forum": "psg", **reject}, not_here)
    await refused(psg_sec, PSG, {"case": 987654, "forum": "psg", **reject}, not_here)
    await refused(psg_sec, PSG, {"case": case_id, "forum": "psg_x", **reject}, unreadable)
    await refused(psg_sec, PSG, {"case": str(case_id), "forum": "psg", **reject}, unreadable)
    await refused(psg_sec, PSG, {"case": True, "forum": "psg", **reject}, unreadable)
    form_rev = next(a["data"]["rev"] for a in actions_of(form) if a.get("verb") == verbs.FORUM_DECIDE)
    await refused(psg_sec, PSG, {"case": case_id, "forum": "psg", **reject, "rev": form_rev - 1},
                  "Det kan ikke registreres nu")  # a form of an older revision of the case
    for foreign in ("loeft", "orientering", "enighed", "uenighed", "ukendt"):
        await refused(psg_sec, PSG, {"case": case_id, "forum": "psg", **reject, "udfald": foreign}, NOT_RECORDED)
        assert "Vælg en beslutning." in psg_sec.text()
    # Secretariat-only views of other verbs are refused the same way.
    card = await outsider.execute(verbs.FORUM_PLAN, {"case": case_id, "forum": "psg", "ansvarlige": outsider.aad,
                                                     "evalueringsdato": "2031-01-01"}, PSG, thread=conversation)
    assert not_secretariat in card_text(card)
    assert await snapshot(db_url, number) == before
    assert await snapshot(db_url, draft_number) == draft_before

    # A redelivered invoke (same activity id) records the decision once.
    pilot = {**PSG_ANSWERS, "udfald": "pilot", "begrundelse": "", "case": case_id, "forum": "psg"}
    first = await psg_sec.execute(verbs.FORUM_DECIDE, pilot, PSG, thread=conversation, activity_id="decide-1")
    assert "Beslutningen «Afprøves lokalt først» er registreret." in card_text(first)
    again = await psg_sec.execute(verbs.FORUM_DECIDE, pilot, PSG, thread=conversation, activity_id="decide-1")
    assert facts_of(again)["Fase"] == "Lokal afprøvning" and "er registreret" not in card_text(again)
    assert "Det kan ikke registreres nu" not in card_text(again), "recognised as the same invoke, not run again"
    # A plan may be saved again in this phase («Ret plan»): only the activity id keeps a redelivery from doing so.
    plan = {"case": case_id, "forum": "psg", "ansvarlige": outsider.aad,
            "evalueringsdato": (today() + timedelta(days=60)).isoformat()}
    saved = await psg_sec.execute(verbs.FORUM_PLAN, plan, PSG, thread=conversation, activity_id="plan-1")
    assert "Planen er gemt" in card_text(saved)
    again = await psg_sec.execute(verbs.FORUM_PLAN, plan, PSG, thread=conversation, activity_id="plan-1")
    assert "Planen er gemt" not in card_text(again)
    await wait_outbox_settled(db_url)
    assert len(await wait_reply(connector, thread, "afprøves lokalt først")) == 1
    assert len(await wait_reply(connector, thread, "Plan for opfølgning registreret")) == 1
    after_pilot = await snapshot(db_url, number)
    assert after_pilot[2].count("beslutning_pilot") == 1 and after_pilot[0] == "lokal_afproevning"
    assert after_pilot[2].count("plan") == 1

    # The old decision form, pressed again after the phase moved on: not now, nothing changes.
    stale = await psg_sec.press("Registrér beslutning", PSG, {"udfald": "afvist", "begrundelse": "Gammelt kort"},
                                thread=conversation, card=form)
    assert "Det kan ikke registreres nu: sagen er i fasen «Lokal afprøvning»" in card_text(stale)
    assert "Intet er ændret." in card_text(stale) and facts_of(stale)["Fase"] == "Lokal afprøvning"
    assert await snapshot(db_url, number) == after_pilot

    # Two secretaries decide at the same moment: exactly one decision is recorded.
    other_chat = forum_bot.chat(user_id=INITIATOR[0], user_name=INITIATOR[1])
    raced, raced_thread = await psg_case_in_thread(forum_bot, psg_sec, other_chat)
    raced_id = raced_thread["card"]["refresh"]["action"]["data"]["case"]
    base = {**PSG_ANSWERS, "case": raced_id, "forum": "psg"}
    one, two = await asyncio.gather(
        psg_sec.execute(verbs.FORUM_DECIDE, {**base, "udfald": "gensidig"}, PSG,
                        thread=raced_thread["conversation_id"]),
        psg_sec_2.execute(verbs.FORUM_DECIDE, {**base, "udfald": "afvist", "begrundelse": "Nej"}, PSG,
                          thread=raced_thread["conversation_id"]))
    recorded = [c for c in (one, two) if "er registreret" in card_text(c)]
    not_now = [c for c in (one, two) if "Det kan ikke registreres nu" in card_text(c)]
    assert len(recorded) == 1 and len(not_now) == 1, [card_text(c) for c in (one, two)]
    case, events = await stored_case(db_url, raced)
    decisions = [e.kind for e in events if e.kind.startswith("beslutning_")]
    assert len(decisions) == 1
    assert case.phase == {"beslutning_gensidig": "gensidig_orientering", "beslutning_afvist": "afvist"}[decisions[0]]
    await wait_outbox_settled(db_url)
    assert len([r for r in replies_text(connector, raced_thread) if "har registreret" in r]) == 1


@sqlite_only
async def test_a_waiting_case_cannot_be_decided_from_a_channel_that_does_not_hold_it(
        forum_bot: BotServer, db_url: str) -> None:
    admin, secretary = user(forum_bot, ADMIN), user(forum_bot, SECRETARY)
    await bind(admin, AALBORG, "sf_aalborg", [secretary])
    await bind(admin, PSG, "psg", [user(forum_bot, PSG_SECRETARY)])
    await admin.say("opsætning", AALBORG)
    await admin.press("Ja, fjern forummet", AALBORG)
    assert "er fjernet fra kanalen" in admin.text(), admin.text()
    chat = forum_bot.chat(user_id=INITIATOR[0], user_name=INITIATOR[1])
    number = await submit_forum_case(chat)
    assert "har endnu ingen kanal i Teams" in chat.text()
    case, _ = await stored_case(db_url, number)
    before = await snapshot(db_url, number)
    # The samarbejdsforum's secretary forges its decision from the PSG channel and from the old channel.
    for channel in (PSG, AALBORG):
        card = await secretary.execute(verbs.FORUM_DECIDE, {"case": case.id, "forum": "sf_aalborg", "udfald": "loeft"},
                                       channel)
        assert "Dette kort hører ikke til et forum i denne kanal." in card_text(card), card_text(card)
    assert await snapshot(db_url, number) == before


# ---------------------------------------------------------------------------------------------- status, help
@sqlite_only
async def test_status_command_shows_the_case_card_only_where_the_case_belongs(
        forum_bot: BotServer, db_url: str) -> None:
    connector = forum_bot.connector
    admin, secretary, psg_sec = user(forum_bot, ADMIN), user(forum_bot, SECRETARY), user(forum_bot, PSG_SECRETARY)
    outsider = user(forum_bot, OUTSIDER)
    await bind(admin, AALBORG, "sf_aalborg", [secretary])
    await bind(admin, PSG, "psg", [psg_sec])
    await bind(admin, SSF, "ssf", [user(forum_bot, SSF_SECRETARY)])
    chat = forum_bot.chat(user_id=INITIATOR[0], user_name=INITIATOR[1])
    local = await submit_forum_case(chat)
    direct = await submit_psg_case(chat)
    draft = await fill_dialoggrundlag(chat)
    await wait_for_thread(connector, AALBORG, local)
    await wait_for_thread(connector, PSG, direct)

    # The samarbejdsforum's channel: its own case, with the secretary's buttons for the secretary only.
    card = await secretary.say(f"status {local}", AALBORG)
    assert card is not None and facts_of(card)["Sag"] == local and facts_of(card)["Fase"] == "Hos samarbejdsforum"
    assert "Registrér beslutning" in button_titles(card)
    card = await outsider.say(f"status {local.lower()}", AALBORG)
    assert card is not None and facts_of(card)["Sag"] == local and "Registrér beslutning" not in button_titles(card)
    # … but not a case of another forum, nor a draft, nor an unknown number.
    for number in (direct, draft):
        card = await secretary.say(f"status {number}", AALBORG)
        assert card is not None and "Sagen hører ikke til et forum i denne kanal" in card_text(card), card_text(card)
        assert number not in str(facts_of(card))
    card = await secretary.say("status OF-2026-9999", AALBORG)
    assert card is not None and "Sagen findes ikke" in card_text(card) and "OF-2026-9999" in card_text(card)
    card = await secretary.say("status", AALBORG)
    assert card is not None and "Sagen findes ikke" in card_text(card)

    # PSG's channel sees every sent case: the direct one and the samarbejdsforum's (as an orientation copy).
    card = await psg_sec.say(f"status {direct}", PSG)
    assert card is not None and facts_of(card)["Fase"] == "Hos Porteføljestyregruppen"
    assert "Registrér Porteføljestyregruppens behandling" in button_titles(card)
    card = await psg_sec.say(f"status {local}", PSG)
    assert card is not None and facts_of(card)["Sag"] == local and "Til orientering" in card_text(card)
    assert "Registrér Porteføljestyregruppens behandling" not in button_titles(card), "PSG only orients here"
    card = await psg_sec.say(f"status {draft}", PSG)
    assert card is not None and "Sagen hører ikke til et forum i denne kanal" in card_text(card)
    # The decision body's channel has none of them yet; General has no forum at all.
    card = await psg_sec.say(f"status {direct}", SSF)
    assert card is not None and "Sagen hører ikke til et forum i denne kanal" in card_text(card)
    card = await admin.say(f"status {direct}", GENERAL)
    assert card is not None and "Sagen hører ikke til et forum i denne kanal" in card_text(card)

    # Asked inside a case's thread, the answer comes in that thread.
    thread = thread_for(connector, PSG, direct)
    card = await psg_sec.say(f"status {direct}", PSG, thread=thread["conversation_id"])
    assert card is not None and facts_of(card)["Sag"] == direct

    # Help in a channel tells about status and opsætning.
    card = await outsider.say("hjælp", AALBORG)
    assert card is not None
    text = card_text(card)
    assert "Opgaveflytning i kanaler" in text and "status OF-" in text and "opsætning" in text


# ---------------------------------------------------------------------------------------------- reminders
@pytest.fixture
async def reminder_bot(db_url: str, connector: FakeConnector) -> AsyncIterator[BotServer]:
    async with forum_server(db_url, connector, reminder_poll_seconds=0.2) as server:
        yield server


async def test_a_due_reminder_is_posted_in_the_thread_and_sent_to_the_responsible_once(
        reminder_bot: BotServer, db_url: str) -> None:
    connector = reminder_bot.connector
    admin, psg_sec, outsider = (user(reminder_bot, p) for p in (ADMIN, PSG_SECRETARY, OUTSIDER))
    await bind(admin, PSG, "psg", [psg_sec])
    chat = reminder_bot.chat(user_id=INITIATOR[0], user_name=INITIATOR[1])
    number, thread = await psg_case_in_thread(reminder_bot, psg_sec, chat)
    conversation = thread["conversation_id"]
    await open_decision(psg_sec, PSG, thread, "psg")
    await psg_sec.press("Registrér beslutning", PSG, {**PSG_ANSWERS, "udfald": "pilot"}, thread=conversation)
    await psg_sec.press("Planlæg opfølgning", PSG, thread=conversation)
    evaluation = today() + timedelta(days=3)  # too close for follow-up and notice reminders: one on the day
    await psg_sec.press("Gem plan", PSG, {"ansvarlige": outsider.aad, "evalueringsdato": evaluation.isoformat()},
                        thread=conversation)
    assert "Planen er gemt" in psg_sec.text()
    case, _ = await stored_case(db_url, number)
    [(reminder_id, kind, due)] = await reminders_of(db_url, case.id)
    assert kind == "evaluation" and due.startswith((evaluation.isoformat(), (evaluation - timedelta(days=1)).isoformat()))
    await asyncio.sleep(0.5)
    assert not [r for r in replies_text(connector, thread) if "Påmindelse" in r], "not due yet"

    await set_due(db_url, reminder_id, datetime.now(UTC) - timedelta(minutes=1))
    [reply] = await wait_reply(connector, thread, "Påmindelse")
    assert f"**Påmindelse · {number}**: evalueringen er sat til i dag ({da(evaluation)})." in reply
    assert "Ansvarlige: Ole Udenfor." in reply
    [personal] = await wait_messages(connector, outsider.aad, f"Påmindelse: sag {number}")
    assert_thread_link(personal, thread)
    await asyncio.sleep(1.0)  # several more polls
    assert len([r for r in replies_text(connector, thread) if "Påmindelse" in r]) == 1
    assert len([m for m in personal_messages(connector, outsider.aad) if "Påmindelse" in activity_text(m)]) == 1
    assert await reminders_of(db_url, case.id) == []
    _, events = await stored_case(db_url, number)
    [event] = [e for e in events if e.kind == "paamindelse"]
    assert event.detail["kind"] == "evaluation" and event.actor_name == "Opgaveflytning"
    history = await outsider.press("Historik", PSG, thread=conversation, card=latest_root_card(connector, thread))
    assert any(f"Påmindelse sendt (evalueringen er sat til i dag ({da(evaluation)}))" in line
               for line in text_blocks(history)), text_blocks(history)
