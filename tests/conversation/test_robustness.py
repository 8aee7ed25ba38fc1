"""Duplicates, stale and foreign cards, Action.Submit fallback: never a second effect, never lost answers."""

from __future__ import annotations

import copy

from tests.conftest import BotServer
from tests.conversation.helpers import DG_PAGE1, through_dialoggrundlag, to_dialoggrundlag
from tests.support.chat import Chat, inputs_of


async def test_repeated_message_has_no_second_effect(bot: BotServer) -> None:
    chat = bot.chat()
    activity = chat.acts.message("ny sag")
    assert (await chat.post(activity))[0] == 200
    assert (await chat.post(activity))[0] == 200
    assert len(chat.replies()) == 1
    await chat.say("mine sager")
    assert chat.text().count("OF-") == 1, "the redelivered 'ny sag' must not create a second case"


async def test_repeated_invoke_answers_the_same_page_without_saving_twice(bot: BotServer) -> None:
    chat = bot.chat()
    await to_dialoggrundlag(chat)
    verb, data = chat.payload("Næste", DG_PAGE1)
    first = await chat.execute(verb, data, activity_id="invoke-42")
    assert "side 2 af 4" in chat.text()
    second = await chat.execute(verb, data, activity_id="invoke-42")
    assert second == first, "the redelivered invoke gets the same card and moves nothing"


async def test_stale_card_does_not_overwrite_newer_answers(bot: BotServer) -> None:
    chat = bot.chat()
    await to_dialoggrundlag(chat)
    old_card = copy.deepcopy(chat.card)
    await chat.press("Næste", {**DG_PAGE1, "q1b": "Ny og nyeste tekst"})
    assert "side 2 af 4" in chat.text()
    # The old page 1 pressed again (e.g. on another device) with an older text for q1b.
    chat.card = old_card
    await chat.press("Næste", {**DG_PAGE1, "q1b": "Gammel tekst fra det gamle kort"})
    assert "Du brugte et ældre kort" in chat.text()
    assert "Kvalitetsforbedringer" in chat.text() and "nyeste version er beholdt" in chat.text()
    await chat.say("fortsæt")
    await chat.press("Tilbage")
    assert inputs_of(chat.card or {})["in_q1b"] == "Ny og nyeste tekst"


async def test_stale_card_keeps_unchanged_fields_from_the_card(bot: BotServer) -> None:
    chat = bot.chat()
    await to_dialoggrundlag(chat)
    old_card = copy.deepcopy(chat.card)
    await chat.press("Gem og fortsæt senere", {"h_task": "Første titel"})
    chat.card = old_card
    await chat.press("Næste", {**DG_PAGE1, "h_task": "Første titel", "q1b": "Skrevet på det gamle kort"})
    await chat.say("fortsæt")
    assert "side 2 af 4" in chat.text(), "page 1 is complete now"
    await chat.press("Tilbage")
    shown = inputs_of(chat.card or {})
    assert shown.get("in_q1b") == "Skrevet på det gamle kort", "non-conflicting answers from an old card are kept"


async def test_card_of_another_users_case_is_refused(bot: BotServer) -> None:
    owner = bot.chat(user_name="Ejer")
    await to_dialoggrundlag(owner)
    intruder = bot.chat(user_name="Fremmed")
    intruder.card = copy.deepcopy(owner.card)
    await intruder.press("Næste", {**DG_PAGE1, "h_task": "Overtaget"})
    assert "ikke har adgang" in intruder.text()
    await owner.say("fortsæt")
    assert inputs_of(owner.card or {}).get("in_h_task", "") == ""


async def test_submitted_case_cannot_be_changed_by_an_old_page(bot: BotServer) -> None:
    chat = bot.chat()
    await to_dialoggrundlag(chat)
    await through_dialoggrundlag(chat)
    page = copy.deepcopy(chat.card)
    await chat.press("Næste", {"route": "samarbejdsforum", "hospital": "aalborg"})
    await chat.press("Indsend")
    assert "Sagen er indsendt" in chat.text()
    chat.card = page
    await chat.press("Næste", {"route": "psg"})
    assert "allerede indsendt" in chat.text()
    await chat.say("mine sager")
    assert "Hos samarbejdsforum" in chat.text()


async def test_submit_of_a_changed_case_asks_for_a_new_review(bot: BotServer) -> None:
    chat = bot.chat()
    await to_dialoggrundlag(chat)
    await through_dialoggrundlag(chat)
    await chat.press("Næste", {"route": "samarbejdsforum", "hospital": "aalborg"})
    review = copy.deepcopy(chat.card)
    verb, data = chat.payload("Vis og ret")
    data[data["pick"]] = "dialoggrundlag/opgaven"
    await chat.execute(verb, data)
    await chat.press("Gem og gennemse", {"q2_2": "Fra 1. marts"})
    chat.card = review
    await chat.press("Indsend")
    assert "ændret, siden kortet blev vist" in chat.text()
    await chat.press("Indsend")
    assert "Sagen er indsendt" in chat.text()


async def test_forged_and_malformed_action_payloads_get_a_clear_card(bot: BotServer) -> None:
    chat = bot.chat()
    await to_dialoggrundlag(chat)
    for verb, data in [
        ("side.naeste", {"case": "1; DROP TABLE cases", "step": "x", "rev": 1}),
        ("side.naeste", {"case": 999999, "step": "dialoggrundlag/stamdata", "rev": 1}),
        ("side.naeste", {"case": True}),
        ("ukendt.verb", {}),
        ("side.naeste", {"case": 1, "step": "../../etc", "rev": "x"}),
        ("side.naeste", {"case": 1, "step": "dialoggrundlag/stamdata", "rev": 99, "in_h_task": {"a": 1}}),
    ]:
        status, body = await chat.post(chat.acts.execute(verb, data))
        assert status == 200, (verb, data)
        assert body["type"] == "application/vnd.microsoft.card.adaptive"
    status, body = await chat.post({**chat.acts.execute("side.naeste", {}), "value": "not a dict"})
    assert status == 200 and body["statusCode"] == 200


async def test_oversized_answer_in_a_forged_payload_never_replaces_a_saved_answer(bot: BotServer) -> None:
    chat = bot.chat()
    await to_dialoggrundlag(chat)
    await chat.press("Gem og fortsæt senere", {"q1a": "Gemt svar"})
    await chat.say("fortsæt")
    await chat.press("Gem og fortsæt senere", {"q1a": "z" * 50_000})
    await chat.say("fortsæt")
    assert inputs_of(chat.card or {})["in_q1a"] == "Gemt svar"


async def test_action_submit_fallback_updates_the_card_in_place(bot: BotServer) -> None:
    chat = bot.chat()
    await chat.say("ny sag")
    card_message_id = "card-activity-1"
    verb, data = chat.payload("Næste", {"s1": "ja", "s2": "nej", "s3": "nej"})
    status, _ = await chat.post(chat.acts.submit({**data, "verb": verb}, reply_to_id=card_message_id))
    assert status == 200
    updates = bot.connector.updates(chat.conversation_id)
    assert updates, "the card is replaced with update_activity"
    assert "Initiativpligt" in str(updates[-1])


async def test_message_in_a_channel_points_to_the_personal_chat(bot: BotServer) -> None:
    chat = Chat(bot.session, bot.url, bot.connector)  # type: ignore[arg-type]
    status, _ = await chat.post(chat.acts.message("ny sag", mention_bot=True, conversation_type="channel",
                                                  team_id="team-1", channel_id="19:abc@thread.tacv2"))
    assert status == 200
    reply = str(chat.replies()[-1])
    assert "1:1-chat" in reply and "https://teams.microsoft.com/l/chat/0/0?users=28%3Abot" in reply
