"""Co-authors of a case through the real HTTP endpoint: added from the case's cards, told in 1:1, editing until the
case is submitted, never overwriting each other."""

from __future__ import annotations

import copy
from collections.abc import AsyncIterator

import pytest

from adaptive_cards import verbs
from tests.conftest import BotServer
from tests.conversation.helpers import DG_PAGE1, case_number, to_dialoggrundlag
from tests.support.chat import Chat, inputs_of
from tests.support.fake_connector import FakeConnector
from tests.support.forum import (
    ADMIN,
    COLLEAGUE,
    INITIATOR,
    OUTSIDER,
    PSG,
    PSG_SECRETARY,
    aad,
    activity_cards,
    activity_text,
    assert_thread_link,
    bind,
    button_titles,
    channel_user,
    facts_of,
    forum_server,
    stored_case,
    wait_for_thread,
    wait_messages,
)

NO_ACCESS = "Dette kort hører til en sag, du ikke har adgang til."
LOCKED = "Sagen er indsendt; medforfattere kan ikke længere ændres."


@pytest.fixture
async def coauthor_bot(db_url: str, connector: FakeConnector) -> AsyncIterator[BotServer]:
    async with forum_server(db_url, connector) as server:
        admin = channel_user(server, ADMIN)
        await bind(admin, PSG, "psg", [channel_user(server, PSG_SECRETARY)])
        await bind(admin, "19:aalborg@thread.tacv2", "sf_aalborg", [])
        yield server


def person(bot: BotServer, who: tuple[str, str]) -> Chat:
    return bot.chat(user_id=who[0], user_name=who[1])


async def press_with(chat: Chat, title: str, inputs: dict[str, str] | None = None) -> None:
    """Press a button on a card whose inputs carry no «in_» prefix (the co-authors card), with these values."""
    verb, data = chat.payload(title)
    assert all(key in data for key in inputs or {}), (inputs, sorted(data))
    data.update(inputs or {})
    await chat.execute(verb, data)


async def open_from_message(chat: Chat, message: dict[str, object]) -> None:
    """Press «Åbn sagen» on a 1:1 message the bot sent."""
    [card] = activity_cards(message)  # type: ignore[arg-type]
    chat.card = card
    await chat.press("Åbn sagen")


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_a_coauthor_is_told_sees_and_edits_the_case_until_it_is_submitted(coauthor_bot: BotServer) -> None:
    connector = coauthor_bot.connector
    initiator, colleague, stranger = (person(coauthor_bot, p) for p in (INITIATOR, COLLEAGUE, OUTSIDER))
    await to_dialoggrundlag(initiator)
    number = case_number(initiator)
    case_id = (await stored_case(coauthor_bot.settings.database_url, number))[0].id

    # «Medforfattere» on the paused card.
    await initiator.press("Gem og fortsæt senere", {"h_task": "Sårpleje i eget hjem"})
    assert "Dine svar er gemt" in initiator.text() and "Medforfattere" in button_titles(initiator.card or {})
    await initiator.press("Medforfattere")
    assert f"Medforfattere – {number}" in initiator.text() and "Sagen har ingen medforfattere endnu." in initiator.text()
    await press_with(initiator, "Tilføj")
    assert "Vælg de personer, du vil tilføje." in initiator.text()
    await press_with(initiator, "Tilføj", {"personer": aad(COLLEAGUE)})
    assert "Tilføjet: Karen Kontakt." in initiator.text(), initiator.text()
    assert "Karen Kontakt" in initiator.text() and button_titles(initiator.card or {}).count("Fjern") == 1
    await press_with(initiator, "Tilføj", {"personer": aad(COLLEAGUE)})
    assert "De valgte personer var allerede medforfattere." in initiator.text()

    # The co-author is told in 1:1 with «Åbn sagen» (no thread yet, so no link to one).
    [told] = await wait_messages(connector, aad(COLLEAGUE), f"Du er medforfatter på sag {number}", 1,
                                 colleague.conversation_id)
    assert "Bent Hansen har tilføjet dig som medforfatter" in activity_text(told)
    assert "Åbn sagen" in button_titles(activity_cards(told)[0]) and "{{thread_url}}" not in str(told)
    # … sees it under «mine sager», marked as a co-author …
    await colleague.say("mine sager")
    assert f"**{number}** · Sårpleje i eget hjem" in colleague.text() and "· medforfatter" in colleague.text()
    # … and opens and edits it.
    await open_from_message(colleague, told)
    assert "Dialoggrundlag · side 1 af 4" in colleague.text()
    await colleague.press("Næste", {**DG_PAGE1, "q1b": "Færre genindlæggelser (skrevet af Karen)."})
    assert "Dialoggrundlag · side 2 af 4" in colleague.text()

    # A stranger cannot open it, not even with the card's data; it is not in their list.
    await stranger.say("mine sager")
    assert number not in stranger.text()
    await stranger.execute(verbs.CASE_OPEN, {"case": case_id})
    assert NO_ACCESS in stranger.text()
    await stranger.execute(verbs.COAUTHORS_ADD, {"case": case_id, "personer": aad(OUTSIDER)})
    assert NO_ACCESS in stranger.text()
    # A co-author added and removed again loses access.
    await press_with(initiator, "Tilføj", {"personer": aad(OUTSIDER)})
    assert "Tilføjet: Ole Udenfor." in initiator.text()
    await stranger.execute(verbs.CASE_OPEN, {"case": case_id})
    assert "Dialoggrundlag · side" in stranger.text()
    await initiator.execute(verbs.COAUTHORS_REMOVE, {"case": case_id, "user": aad(OUTSIDER)})
    assert "Ole Udenfor er fjernet." in initiator.text() and "Karen Kontakt" in initiator.text()
    await stranger.execute(verbs.CASE_OPEN, {"case": case_id})
    assert NO_ACCESS in stranger.text()

    # The initiator continues with Karen's answer in place and reaches the review, which has «Medforfattere» too.
    await initiator.press("Tilbage til sagen")
    await initiator.say("fortsæt")
    assert "Dialoggrundlag · side 2 af 4" in initiator.text()
    await initiator.press("Tilbage")
    assert inputs_of(initiator.card or {})["in_q1b"] == "Færre genindlæggelser (skrevet af Karen)."
    old_page = copy.deepcopy(colleague.card)
    await initiator.press("Næste")
    await initiator.press("Næste", {"q2_1": "Kommunens sygeplejersker overtager sårplejen."})
    await initiator.press("Næste", {"q3": "Borgeren slipper for transport."})
    await initiator.press("Næste", {"q6": "Ingen driftsmidler følger med."})
    await initiator.press("Næste", {"route": "samarbejdsforum", "hospital": "aalborg"})
    assert "Gennemse og indsend" in initiator.text() and "Medforfattere" in button_titles(initiator.card or {})
    await initiator.press("Indsend")
    assert "Sagen er indsendt" in initiator.text()

    # The co-author hears of the submission, with a link to the thread.
    thread = await wait_for_thread(connector, "19:aalborg@thread.tacv2", number)
    [sent] = await wait_messages(connector, aad(COLLEAGUE), f"Sag {number} er indsendt af Bent Hansen", 1,
                                 colleague.conversation_id)
    assert ("Sendt til: Samarbejdsforum ved Aalborg Universitetshospital; Porteføljestyregruppen til orientering."
            in activity_text(sent)), activity_text(sent)
    assert_thread_link(sent, thread)
    # After submission nobody edits it or changes its co-authors.
    colleague.card = old_page
    await colleague.press("Næste", {"q2_1": "Sent ændret"})
    assert f"Sag {number} er allerede indsendt" in colleague.text()
    await colleague.execute(verbs.COAUTHORS_SHOW, {"case": case_id})
    assert "Sagen er indsendt, så medforfatterne kan ikke længere ændres." in colleague.text()
    assert "Tilføj" not in button_titles(colleague.card or {}) and "Fjern" not in button_titles(colleague.card or {})
    await colleague.execute(verbs.COAUTHORS_ADD, {"case": case_id, "personer": aad(OUTSIDER)})
    assert LOCKED in colleague.text()
    await initiator.execute(verbs.COAUTHORS_REMOVE, {"case": case_id, "user": aad(COLLEAGUE)})
    assert LOCKED in initiator.text() and "Karen Kontakt" in initiator.text()
    await stranger.execute(verbs.CASE_OPEN, {"case": case_id})
    assert NO_ACCESS in stranger.text()
    await colleague.execute(verbs.CASE_OPEN, {"case": case_id})
    assert f"Sag {number}" in colleague.text() and "Hos samarbejdsforum" in colleague.text()
    case, events = await stored_case(coauthor_bot.settings.database_url, number)
    assert case.phase == "samarbejdsforum"
    assert [e.detail.get("name") for e in events if e.kind.startswith("medforfatter_")] == [
        "Karen Kontakt", "Ole Udenfor", "Ole Udenfor"]
    # The forum's card names the co-author.
    assert facts_of(thread["card"])["Medforfattere"] == "Karen Kontakt"


async def test_two_editors_of_the_same_page_never_overwrite_the_newer_answer(coauthor_bot: BotServer) -> None:
    initiator, colleague = person(coauthor_bot, INITIATOR), person(coauthor_bot, COLLEAGUE)
    await to_dialoggrundlag(initiator)
    number = case_number(initiator)
    await initiator.press("Gem og fortsæt senere", {"h_task": "Sårpleje i eget hjem"})
    await initiator.press("Medforfattere")
    await press_with(initiator, "Tilføj", {"personer": aad(COLLEAGUE)})
    case_id = (await stored_case(coauthor_bot.settings.database_url, number))[0].id

    # Both open the case at the same revision: the same page.
    await initiator.execute(verbs.CASE_OPEN, {"case": case_id})
    await colleague.execute(verbs.CASE_OPEN, {"case": case_id})
    assert "Dialoggrundlag · side 1 af 4" in initiator.text() and "Dialoggrundlag · side 1 af 4" in colleague.text()
    assert initiator.card == colleague.card
    # Karen saves first; Bent's save of the same page comes later, from his now outdated card.
    await colleague.press("Gem og fortsæt senere", {"q1b": "Karens nyeste tekst"})
    assert "Dine svar er gemt" in colleague.text()
    await initiator.press("Næste", {**DG_PAGE1, "q1b": "Bents ældre tekst", "q1a": "Bent retter også a."})
    text = initiator.text()
    assert "Du brugte et ældre kort. Her er sagen, som den ser ud nu." in text, text
    assert "«Kvalitetsforbedringer» er ændret siden dette kort blev vist; den nyeste version er beholdt." in text
    assert text.count("er ændret siden dette kort blev vist") == 1, "only the answer Karen changed"
    _, events = await stored_case(coauthor_bot.settings.database_url, number)
    await colleague.execute(verbs.CASE_OPEN, {"case": case_id})
    assert "Dialoggrundlag · side 2 af 4" in colleague.text(), "page 1 is complete with Bent's other answers"
    await colleague.press("Tilbage")
    shown = inputs_of(colleague.card or {})
    assert shown["in_q1b"] == "Karens nyeste tekst", "the newer answer is kept"
    assert shown["in_q1a"] == "Bent retter også a.", "an answer nobody else changed is taken from the old card"
    saves = [e for e in events if e.kind == "svar_gemt"]
    assert saves[-1].actor_id == aad(INITIATOR) and "q1b" not in saves[-1].detail["items"]
