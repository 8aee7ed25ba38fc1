"""A user's whole case in the 1:1 chat, through the real HTTP endpoint and a fake Bot Connector."""

from __future__ import annotations

from tests.conftest import BotServer
from tests.conversation.helpers import CASE_NUMBER, case_number, through_dialoggrundlag, to_dialoggrundlag
from tests.support.chat import inputs_of


async def test_install_greets_once_in_danish(bot: BotServer) -> None:
    chat = bot.chat(user_name="Anna Andersen")
    status, _ = await chat.post(chat.acts.installation_update("add"))
    assert status == 200
    status, _ = await chat.post(chat.acts.conversation_update_members_added(bot_added=True))
    assert status == 200
    replies = chat.replies()
    assert len(replies) == 1, "installationUpdate and conversationUpdate must give one greeting"
    text = str(replies[0]["attachments"][0]["content"])
    assert "Hej Anna!" in text and "ny sag" in text
    assert replies[0]["replyToId"]


async def test_commands_are_case_and_accent_insensitive_and_unknown_text_gets_help(bot: BotServer) -> None:
    chat = bot.chat()
    for text in ("HJÆLP", "hjaelp", "Hjælp!"):
        cards = await chat.say(text)
        assert "Det kan du skrive til mig" in chat.text(), text
        assert len(cards) == 1
    await chat.say("hvad er klokken?")
    assert "Jeg forstod ikke" in chat.text() and "Det kan du skrive til mig" in chat.text()
    await chat.say("FORTSÆT")
    assert "ingen uafsluttede sager" in chat.text()
    await chat.say("Mine Sager")
    assert "ingen sager endnu" in chat.text()
    await chat.say("")
    assert "Det kan du skrive til mig" in chat.text()


async def test_mention_is_stripped(bot: BotServer) -> None:
    chat = bot.chat()
    await chat.say("ny sag", mention_bot=True)
    assert "Screening · side 1 af 2" in chat.text()


async def test_full_case_psg_route_with_mini_mtv(bot_any_db: BotServer) -> None:
    """The whole case on SQLite and on a real PostgreSQL."""
    bot = bot_any_db
    chat = bot.chat(user_name="Bent Hansen")
    await to_dialoggrundlag(chat)
    inputs = inputs_of(chat.card or {})
    assert inputs["in_h_initiator_name"] == "Bent Hansen", "initiator name is pre-filled from Teams"
    assert inputs["in_h_date"], "date is pre-filled"
    number = case_number(chat)
    await through_dialoggrundlag(chat)
    assert "Porteføljestyregruppen" in chat.text()
    await chat.press("Næste", {"route": "psg"})
    assert "Mini-MTV · side 1 af 10" in chat.text()
    mtv = inputs_of(chat.card or {})
    assert mtv["in_q1"] == "Bent Hansen, Aalborg Universitetshospital"
    assert mtv["in_q2"] == "Sårpleje i eget hjem"
    await chat.press("Næste", {"q3": "Hjørring Kommune og PLO"})
    for page in range(2, 11):
        assert f"Mini-MTV · side {page} af 10" in chat.text()
        await chat.press("Næste")
    assert "Gennemse og indsend" in chat.text()
    text = chat.text()
    assert "Mini-MTV – 3 af 31 spørgsmål besvaret" in text, text
    assert "kun 3 af 31 spørgsmål er besvaret" in text, "a nearly empty Mini-MTV is pointed out before submitting"
    assert "Ikke besvaret: 4" in text or "Ikke besvaret: 4," in text
    assert "Sårpleje i eget hjem" in text and "Kommunens sygeplejersker" in text
    await chat.press("Indsend")
    assert "Sagen er indsendt" in chat.text() and number in chat.text()
    assert "Porteføljestyregruppen" in chat.text()
    await chat.say("mine sager")
    assert number in chat.text() and "Hos Porteføljestyregruppen" in chat.text()
    # Who did what when: the case's history is in the database.
    from storage.db import Database

    database = Database(bot.settings.database_url)
    try:
        async with database.transaction() as repo:
            case = await repo.get_case_by_number(number)
            assert case is not None and case.route == "psg" and case.submitted_at is not None
            events = await repo.events(case.id)
    finally:
        await database.dispose()
    kinds = [e.kind for e in events]
    assert kinds[0] == "oprettet" and kinds[-1] == "indsendt" and kinds.count("svar_gemt") >= 8
    assert {e.actor_name for e in events} == {"Bent Hansen"}
    assert events[-1].detail["route"] == "psg"
    assert [e.at for e in events] == sorted(e.at for e in events)


async def test_samarbejdsforum_route_skips_mini_mtv_and_names_hospital(bot: BotServer) -> None:
    chat = bot.chat()
    await to_dialoggrundlag(chat)
    await through_dialoggrundlag(chat)
    await chat.press("Næste", {"route": "samarbejdsforum"})
    assert "Hvilket hospitals samarbejdsforum?" in chat.text() and "skal besvares" in chat.text()
    await chat.press("Næste", {"route": "samarbejdsforum", "hospital": "aalborg"})
    assert "Gennemse og indsend" in chat.text()
    assert "Mini-MTV" not in chat.text()
    assert "Samarbejdsforum ved Aalborg Universitetshospital" in chat.text()
    assert "Porteføljestyregruppen til orientering" in chat.text()
    await chat.press("Indsend")
    assert "Sagen er indsendt" in chat.text()


async def test_all_no_records_no_duty_and_allows_continuing(bot: BotServer) -> None:
    chat = bot.chat()
    await chat.say("ny sag")
    await chat.press("Næste", {"s1": "nej", "s2": "nej", "s3": "nej"})
    assert "Ingen initiativpligt" in chat.text()
    await chat.say("mine sager")
    assert "Lukket – ingen initiativpligt" in chat.text()
    await chat.press("Åbn")
    await chat.press("Fortsæt alligevel")
    assert "Dialoggrundlag · side 1 af 4" in chat.text()


async def test_assessment_no_closes_with_reason(bot: BotServer) -> None:
    chat = bot.chat()
    await chat.say("ny sag")
    await chat.press("Næste", {"s1": "nej", "s2": "ja", "s3": "nej"})
    assert "initiativpligten" in chat.text()
    await chat.press("Næste", {"need": "nej"})
    assert "skal besvares" in chat.text(), "a reason is required when no Dialoggrundlag is needed"
    await chat.press("Næste", {"need": "nej", "need_reason": "Ændringen er aftalt i eksisterende aftale."})
    assert "Sagen er lukket" in chat.text() and "eksisterende aftale" in chat.text()
    await chat.say("fortsæt")
    assert "ingen uafsluttede sager" in chat.text()


async def test_required_answers_block_next_only(bot: BotServer) -> None:
    chat = bot.chat()
    await chat.say("ny sag")
    await chat.press("Næste", {"s1": "ja"})
    assert "Screening · side 1 af 2" in chat.text()
    assert chat.text().count("skal besvares, før du kan gå videre") == 2
    # The answer given is kept on the page shown again.
    assert inputs_of(chat.card or {})["in_s1"] == "ja"


async def test_back_and_pause_save_without_validation_and_resume_at_first_open_page(bot: BotServer) -> None:
    chat = bot.chat()
    await to_dialoggrundlag(chat)
    # Tilbage with required fields empty is not blocked, and what was typed is saved.
    await chat.press("Tilbage", {"q1a": "Begrundelse skrevet før Tilbage"})
    assert "Initiativpligt" in chat.text()
    await chat.press("Næste")
    assert inputs_of(chat.card or {})["in_q1a"] == "Begrundelse skrevet før Tilbage"
    await chat.press("Gem og fortsæt senere", {"h_task": "Kateterpleje"})
    assert "Dine svar er gemt" in chat.text()
    # Another device: a new conversation of the same user.
    other = bot.chat(user_id=chat.user_id)
    await other.say("fortsæt")
    assert "Dialoggrundlag · side 1 af 4" in other.text(), "first page with unanswered questions"
    shown = inputs_of(other.card or {})
    assert shown["in_h_task"] == "Kateterpleje"
    assert shown["in_q1a"] == "Begrundelse skrevet før Tilbage"


async def test_edit_from_review_returns_to_review(bot: BotServer) -> None:
    chat = bot.chat()
    await to_dialoggrundlag(chat)
    await through_dialoggrundlag(chat)
    await chat.press("Næste", {"route": "samarbejdsforum", "hospital": "nord"})
    assert "Gennemse og indsend" in chat.text()
    pickers = [k for k in inputs_of(chat.card or {}) if k.startswith("ret_")]
    assert len(pickers) == 3, "each form has a page picker with Vis og ret"
    verb, data = chat.payload("Vis og ret")
    data[data["pick"]] = "dialoggrundlag/konsekvenser"
    await chat.execute(verb, data)
    assert "Dialoggrundlag · side 3 af 4" in chat.text()
    await chat.press("Gem og gennemse", {"q4_2": "Oplæring af 12 sygeplejersker."})
    assert "Gennemse og indsend" in chat.text() and "Oplæring af 12 sygeplejersker" in chat.text()


async def test_long_answer_limit_and_cpr_warning(bot: BotServer) -> None:
    chat = bot.chat()
    await to_dialoggrundlag(chat)
    await chat.press("Næste", {**_page1(), "q1a": "x" * 2001})
    assert "Svaret er for langt: 2.001 tegn. Højst 2.000 tegn." in chat.text()
    assert "Dialoggrundlag · side 1 af 4" in chat.text()
    await chat.press("Næste", {**_page1(), "q1a": "Patient 010190-1234 har haft mange indlæggelser."})
    assert "Dialoggrundlag · side 2 af 4" in chat.text()
    assert "ligner et CPR-nummer" in chat.text()


async def test_answer_limit_is_configurable(sqlite_url: str, connector) -> None:  # type: ignore[no-untyped-def]
    from tests.conftest import make_settings

    server = BotServer(make_settings(sqlite_url, answer_max_length=100), connector)
    await server.start()
    try:
        chat = server.chat()
        await to_dialoggrundlag(chat)
        assert inputs_of(chat.card or {}) is not None
        await chat.press("Næste", {**_page1(), "q1a": "y" * 101})
        assert "Højst 100 tegn" in chat.text()
    finally:
        await server.stop()


async def test_case_numbers_are_sequential_and_listed(bot: BotServer) -> None:
    chat = bot.chat()
    numbers = []
    for _ in range(3):
        await chat.say("ny sag")
        numbers.append(case_number(chat))
    years = {n[3:7] for n in numbers}
    assert len(years) == 1
    assert [int(n[-4:]) for n in numbers] == [1, 2, 3]
    await chat.say("mine sager")
    for number in numbers:
        assert number in chat.text()
    assert chat.text().count("Screening") >= 3


def _page1() -> dict[str, str]:
    return {"h_task": "Sårpleje", "h_initiator_org": "Hjørring Kommune"}


def _case_id(chat) -> int:  # type: ignore[no-untyped-def]
    from tests.support.chat import actions_of

    for act in actions_of(chat.card):
        if "case" in act.get("data", {}):
            return int(act["data"]["case"])
    raise AssertionError("no case id on the card")


assert CASE_NUMBER


async def test_conversation_reference_is_kept_for_proactive_messages(bot: BotServer) -> None:
    from storage.db import Database

    chat = bot.chat(user_name="Clara Clausen")
    await chat.say("hjælp")
    await chat.say("mine sager")
    database = Database(bot.settings.database_url)
    try:
        async with database.transaction() as repo:
            state, etag = await repo.load_state(f"msteams:{chat.conversation_id}")
    finally:
        await database.dispose()
    assert etag == 1, "written once, not on every turn"
    assert state["service_url"] == bot.connector.url
    assert state["conversation_id"] == chat.conversation_id
    assert state["user_name"] == "Clara Clausen" and state["tenant_id"] == "tenant-1"


async def test_fortsaet_resumes_where_the_user_stopped_not_at_skipped_optional_questions(bot: BotServer) -> None:
    chat = bot.chat()
    await to_dialoggrundlag(chat)
    await chat.press("Næste", DG_PAGE1_WITHOUT_Q1B)  # q1b (optional) left empty
    await chat.press("Næste", {"q2_1": "a", "q2_2": "b", "q2_3": "c", "q2_4": "d"})
    assert "side 3 af 4" in chat.text()
    await chat.press("Gem og fortsæt senere")
    assert "Du er nået til: Dialoggrundlag – Konsekvenser" in chat.text()
    await chat.say("fortsæt")
    assert "Dialoggrundlag · side 3 af 4" in chat.text()
    # A page the user stopped on that is complete leads to the next page with open questions.
    await chat.press("Gem og fortsæt senere", {"q3": "x", "q4_1": "y", "q4_2": "z"})
    await chat.say("fortsæt")
    assert "Dialoggrundlag · side 4 af 4" in chat.text()
    # The review still lists the skipped optional question.
    await chat.press("Næste", {"q5": "Forbindinger", "q6": "Ingen"})
    await chat.press("Næste", {"route": "samarbejdsforum", "hospital": "aalborg"})
    assert "Gennemse og indsend" in chat.text() and "Kvalitetsforbedringer" in chat.text()


DG_PAGE1_WITHOUT_Q1B = {"h_task": "Sårpleje", "h_initiator_org": "Hjørring Kommune", "q1a": "Færre indlæggelser"}
