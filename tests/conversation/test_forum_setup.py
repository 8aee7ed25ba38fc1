"""Setting up forum channels through the real HTTP endpoint: admins, bindings, secretariats, cases that wait for a
channel, and the bot being removed from a team."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from adaptive_cards import verbs
from tests.conftest import BotServer
from tests.support import activities
from tests.support.chat import actions_of
from tests.support.fake_connector import FakeConnector
from tests.support.forum import (
    AALBORG,
    ADMIN,
    CHANNELS,
    COLLEAGUE,
    GENERAL,
    INITIATOR,
    OUTSIDER,
    PSG,
    PSG_SECRETARY,
    PSG_SECRETARY_2,
    SECRETARY,
    TEAM,
    ChannelUser,
    aad,
    activity_text,
    assert_thread_link,
    bind,
    button_titles,
    card_text,
    channel_calls,
    channel_user,
    forum_server,
    personal_messages,
    stored_case,
    submit_forum_case,
    submit_psg_case,
    threads,
    wait_for_thread,
    wait_messages,
    wait_outbox_settled,
    wait_threads,
    wait_until,
)

AALBORG_FORUM = "Samarbejdsforum ved Aalborg Universitetshospital"
NOT_ADMIN = "Kun administratorer kan sætte kanaler op"


@pytest.fixture
async def setup_bot(sqlite_url: str, connector: FakeConnector) -> AsyncIterator[BotServer]:
    async with forum_server(sqlite_url, connector) as server:
        yield server


def text_of(card: dict[str, Any] | None) -> str:
    assert card is not None
    return card_text(card)


async def decide_psg(sec: ChannelUser, thread: dict[str, Any]) -> str:
    """PSG's secretary (or who claims to be) rejects the case with a complete decision payload; the card's text."""
    case_id = thread["card"]["refresh"]["action"]["data"]["case"]
    card = await sec.execute(verbs.FORUM_DECIDE, {"case": case_id, "forum": "psg", "udfald": "afvist",
                                                  "begrundelse": "Nej", **{f"q{i}": "Svar" for i in range(1, 7)}},
                             PSG, thread=thread["conversation_id"])
    return card_text(card)


# ---------------------------------------------------------------------------------------------- waiting cases
async def test_cases_wait_for_a_channel_admins_are_asked_once_and_binding_sends_them(
        db_url: str, connector: FakeConnector) -> None:
    async with forum_server(db_url, connector) as bot:
        admin = channel_user(bot, ADMIN)
        await bind(admin, PSG, "psg", [channel_user(bot, PSG_SECRETARY)])
        first = bot.chat(user_id=INITIATOR[0], user_name=INITIATOR[1])
        one = await submit_forum_case(first)
        text = first.text()
        assert f"• {AALBORG_FORUM}" in text and "• Porteføljestyregruppen til orientering" in text
        assert (f"{AALBORG_FORUM} har endnu ingen kanal i Teams. Sagen venter og sendes, så snart en administrator "
                "har knyttet en kanal til forummet; administratorerne har fået besked.") in text
        second = bot.chat(user_id=COLLEAGUE[0], user_name=COLLEAGUE[1])
        two = await submit_forum_case(second)
        assert "har endnu ingen kanal i Teams" in second.text()

        # PSG gets its orientation copies; the samarbejdsforum has no thread yet.
        await wait_threads(connector, PSG, 2)
        [asked] = await wait_messages(connector, aad(ADMIN), f"{AALBORG_FORUM} mangler en kanal")
        assert "opsætning" in activity_text(asked) and "Ventende sager sendes straks" in activity_text(asked)
        await wait_outbox_settled(db_url)
        assert len([m for m in personal_messages(connector, aad(ADMIN)) if "mangler en kanal" in activity_text(m)]) == 1
        assert threads(connector, AALBORG) == []
        for number in (one, two):
            case, _ = await stored_case(db_url, number)
            assert case.phase == "samarbejdsforum"
        # No 1:1 claims the case is posted while part of it waits (the submitter saw the warning in place).
        assert not [m for m in personal_messages(connector, aad(INITIATOR), first.conversation_id)
                    if "er slået op hos" in activity_text(m)]

        # The admin runs opsætning in the samarbejdsforum's channel: the waiting cases are shown and sent.
        card = await admin.say("opsætning", AALBORG)
        assert f"{AALBORG_FORUM} (2 sager venter)" in str(card)
        await admin.press("Knyt til kanalen", AALBORG, {"knyt_forum": "sf_aalborg"})
        assert f"Kanalen er knyttet til {AALBORG_FORUM}." in admin.text()
        assert "2 ventende sager sendes nu til kanalen." in admin.text()
        posted = await wait_threads(connector, AALBORG, 2)
        assert sorted(one if one in card_text(t["card"]) else two for t in posted) == sorted([one, two])
        assert all("Hos samarbejdsforum" in card_text(t["card"]) for t in posted)
        for chat, number, who in ((first, one, INITIATOR), (second, two, COLLEAGUE)):
            [told] = await wait_messages(connector, aad(who), "Nu er sagen sendt.", 1, chat.conversation_id)
            assert f"Sag {number} er sendt til {AALBORG_FORUM}" in activity_text(told)
            assert_thread_link(told, next(t for t in posted if number in card_text(t["card"])))
        await wait_outbox_settled(db_url)
        assert len(threads(connector, AALBORG)) == 2 and len(threads(connector, PSG)) == 2


# ---------------------------------------------------------------------------------------------- admins
async def test_only_admins_set_up_and_admins_are_added_and_removed(setup_bot: BotServer) -> None:
    admin, colleague, outsider = (channel_user(setup_bot, p) for p in (ADMIN, COLLEAGUE, OUTSIDER))
    card = await colleague.say("opsætning", PSG)
    assert NOT_ADMIN in text_of(card) and "Opsætning af kanalen" not in text_of(card)
    # A forged set-up action by a non-admin is refused and binds nothing.
    forged = await colleague.execute(verbs.SETUP_BIND, {"channel": PSG, "knyt_forum": "psg"}, PSG)
    assert NOT_ADMIN in card_text(forged)
    forged = await colleague.execute(verbs.SETUP_ADMIN_ADD, {"channel": PSG, "admins": colleague.aad}, PSG)
    assert NOT_ADMIN in card_text(forged)
    assert NOT_ADMIN in text_of(await colleague.say("opsætning", PSG)), "she did not make herself an admin"

    card = await admin.say("opsætning", PSG)
    assert "Opsætning af kanalen «Porteføljestyregruppen»" in text_of(card) and "Team: Sundhedssamarbejdet" in text_of(card)
    assert "Ingen fora er knyttet til kanalen endnu." in text_of(card)
    assert "Ida Admin · fra konfigurationen" in text_of(card), "the configured admin is shown by name"
    assert aad(ADMIN) not in text_of(card)
    assert button_titles(card or {}).count("Fjern") == 0, "admins from the configuration cannot be removed"
    await admin.press("Tilføj administrator", PSG, {"admins": colleague.aad})
    assert "Karen Kontakt er nu administrator." in admin.text()
    assert "Karen Kontakt" in admin.text() and button_titles(admin.card or {}).count("Fjern") == 1

    # The new admin can set up now, but cannot remove herself nor the configured admin.
    card = await colleague.say("opsætning", GENERAL)
    assert "Opsætning af kanalen «General»" in text_of(card)
    await colleague.execute(verbs.SETUP_ADMIN_REMOVE, {"channel": GENERAL, "user": colleague.aad}, GENERAL)
    assert "Du kan ikke fjerne dig selv som administrator." in colleague.text()
    await colleague.execute(verbs.SETUP_ADMIN_REMOVE, {"channel": GENERAL, "user": aad(ADMIN)}, GENERAL)
    assert "fjernet" not in colleague.text() and "Ida Admin · fra konfigurationen" in colleague.text()
    assert "Opsætning af kanalen" in text_of(await admin.say("opsætning", GENERAL)), "still an admin"

    # Removal with the button (data «user»): she is refused again.
    await admin.say("opsætning", PSG)
    await admin.press("Fjern", PSG)
    assert "Administratoren er fjernet." in admin.text() and "Karen Kontakt" not in admin.text()
    assert NOT_ADMIN in text_of(await colleague.say("opsætning", PSG))
    # Removal with the checklist (input «admins_fjern», several at once).
    await admin.press("Tilføj administrator", PSG, {"admins": f"{colleague.aad},{outsider.aad}"})
    assert "Karen Kontakt er nu administrator." in admin.text() and "Ole Udenfor er nu administrator." in admin.text()
    assert "Opsætning af kanalen" in text_of(await outsider.say("opsætning", PSG))
    await admin.execute(verbs.SETUP_ADMIN_REMOVE, {"channel": PSG, "admins_fjern": f"{colleague.aad},{outsider.aad}"},
                        PSG)
    assert admin.text().count("Administratoren er fjernet.") == 2, admin.text()
    for person in (colleague, outsider):
        assert NOT_ADMIN in text_of(await person.say("opsætning", PSG))


@pytest.mark.parametrize("configured", ["Ole.Udenfor@Example.DK", "ole.udenfor@example.dk"])
async def test_an_admin_configured_by_upn_is_recognised(sqlite_url: str, connector: FakeConnector,
                                                       configured: str) -> None:
    async with forum_server(sqlite_url, connector, admins=[configured]) as bot:
        outsider, colleague = channel_user(bot, OUTSIDER), channel_user(bot, COLLEAGUE)
        card = await outsider.say("opsætning", PSG)
        assert "Opsætning af kanalen «Porteføljestyregruppen»" in text_of(card)
        await outsider.press("Knyt til kanalen", PSG, {"knyt_forum": "psg"})
        assert "Kanalen er knyttet til Porteføljestyregruppen." in outsider.text()
        assert NOT_ADMIN in text_of(await colleague.say("opsætning", PSG))


# ---------------------------------------------------------------------------------------------- bindings
async def test_bind_move_unbind_and_secretariat_removal(setup_bot: BotServer) -> None:
    connector = setup_bot.connector
    admin, pia, per = (channel_user(setup_bot, p) for p in (ADMIN, PSG_SECRETARY, PSG_SECRETARY_2))
    chat = setup_bot.chat(user_id=INITIATOR[0], user_name=INITIATOR[1])

    # PSG first in General, then moved to its own channel: old threads stay, new cases go to the new channel.
    await bind(admin, GENERAL, "psg", [pia, per])
    first = await submit_psg_case(chat)
    await wait_for_thread(connector, GENERAL, first)
    card = await admin.say("opsætning", PSG)
    assert "Porteføljestyregruppen (nu i Sundhedssamarbejdet › General – flyttes hertil)" in str(card)
    await admin.press("Knyt til kanalen", PSG, {"knyt_forum": "psg"})
    assert "Forummet er flyttet hertil; eksisterende tråde bliver i den gamle kanal." in admin.text()
    assert "Pia Portefølje" in admin.text() and "Per Portefølje" in admin.text(), "the secretariat moves along"
    second = await submit_psg_case(chat)
    new = await wait_for_thread(connector, PSG, second)
    assert len(threads(connector, PSG)) == 1 and len(threads(connector, GENERAL)) == 2, "General: welcome + first"
    card = await admin.say("opsætning", GENERAL)
    assert "Ingen fora er knyttet til kanalen endnu." in text_of(card)
    # A forged «Fjern forummet» from the old channel does not unbind it.
    await admin.execute(verbs.SETUP_UNBIND, {"channel": GENERAL, "forum": "psg"}, GENERAL)
    assert "er fjernet fra kanalen" not in admin.text()

    # Secretariat removal: the «Fjern» button (data «user») and the checklist (input «fjern_psg»).
    card = await admin.say("opsætning", PSG)
    remove_pia = [a for a in _actions(card) if a.get("title") == "Fjern" and a["data"].get("user") == pia.aad]
    assert len(remove_pia) == 1 and remove_pia[0]["data"]["forum"] == "psg"
    await admin.execute(remove_pia[0]["verb"], remove_pia[0]["data"], PSG)
    assert "Pia Portefølje er fjernet fra sekretariatet for Porteføljestyregruppen." in admin.text()
    assert "Per Portefølje" in admin.text() and "Pia Portefølje" not in admin.text().replace(
        "Pia Portefølje er fjernet", "")
    refused = await decide_psg(pia, new)
    assert "Kun sekretariatet for Porteføljestyregruppen" in refused
    await admin.execute(verbs.SETUP_MEMBER_REMOVE, {"channel": PSG, "forum": "psg", "fjern_psg": per.aad}, PSG)
    assert "Per Portefølje er fjernet fra sekretariatet for Porteføljestyregruppen." in admin.text()
    assert "Ingen i sekretariatet endnu" in admin.text()
    assert "Kun sekretariatet for Porteføljestyregruppen" in await decide_psg(per, new)
    await admin.execute(verbs.SETUP_MEMBER_REMOVE, {"channel": PSG, "forum": "psg"}, PSG)
    assert "Vælg de personer, der skal fjernes fra sekretariatet." in admin.text()

    # Unbound: the next case waits (no thread anywhere) until PSG has a channel again.
    await admin.press("Ja, fjern forummet", PSG)
    assert ("Porteføljestyregruppen er fjernet fra kanalen. Nye sager til forummet venter, til det knyttes til en "
            "kanal igen.") in admin.text()
    third = await submit_psg_case(chat)
    assert "Porteføljestyregruppen har endnu ingen kanal i Teams" in chat.text()
    await wait_outbox_settled(setup_bot.settings.database_url)
    assert len(threads(connector, PSG)) == 1 and len(threads(connector, GENERAL)) == 2
    await admin.say("opsætning", PSG)
    await admin.press("Knyt til kanalen", PSG, {"knyt_forum": "psg"})
    assert "1 ventende sag sendes nu til kanalen." in admin.text()
    posted = await wait_threads(connector, PSG, 2)
    assert third in card_text(posted[-1]["card"])


def _actions(card: dict[str, Any] | None) -> list[dict[str, Any]]:
    assert card is not None
    return actions_of(card)


async def test_bindings_secretariats_and_admins_survive_a_restart(sqlite_url: str, connector: FakeConnector) -> None:
    async with forum_server(sqlite_url, connector) as bot:
        admin = channel_user(bot, ADMIN)
        await bind(admin, PSG, "psg", [channel_user(bot, PSG_SECRETARY)])
        await admin.press("Tilføj administrator", PSG, {"admins": aad(COLLEAGUE)})
        assert "Karen Kontakt er nu administrator." in admin.text()
    # A new process on the same database (the team is not installed again).
    async with forum_server(sqlite_url, connector, install=False) as bot:
        colleague, pia = channel_user(bot, COLLEAGUE), channel_user(bot, PSG_SECRETARY)
        card = await colleague.say("opsætning", PSG)
        assert "Opsætning af kanalen" in text_of(card), "the admin added in Teams is still an admin"
        assert "Ja, fjern forummet" in button_titles(card or {}) and "Pia Portefølje" in text_of(card)
        chat = bot.chat(user_id=INITIATOR[0], user_name=INITIATOR[1])
        number = await submit_psg_case(chat)
        thread = await wait_for_thread(connector, PSG, number)
        assert "er registreret" in await decide_psg(pia, thread)


# ---------------------------------------------------------------------------------------------- removed from a team
async def test_after_removal_from_the_team_cases_wait_and_nothing_is_posted_there(
        setup_bot: BotServer) -> None:
    connector = setup_bot.connector
    admin, secretary = channel_user(setup_bot, ADMIN), channel_user(setup_bot, SECRETARY)
    await bind(admin, AALBORG, "sf_aalborg", [secretary])
    await bind(admin, PSG, "psg", [channel_user(setup_bot, PSG_SECRETARY)])
    chat = setup_bot.chat(user_id=INITIATOR[0], user_name=INITIATOR[1])
    before = await submit_forum_case(chat)
    await wait_threads(connector, AALBORG, 1)
    await wait_threads(connector, PSG, 1)

    removed = activities.conversation_update_members_added(
        conversation_id=TEAM, user_id=ADMIN[0], service_url=connector.url, team_id=TEAM, channel_id=TEAM,
        members_added=[])
    removed["membersRemoved"] = [{"id": removed["recipient"]["id"]}]
    removed["channelData"]["eventType"] = "teamMemberRemoved"
    status, _ = await admin.post(removed)
    assert status == 200
    await wait_messages(connector, aad(ADMIN), "fjernet fra teamet")
    writes_before = len(channel_calls(connector, set(CHANNELS)))

    after = await submit_forum_case(chat)
    text = chat.text()
    assert f"{AALBORG_FORUM} har endnu ingen kanal i Teams" in text
    assert "Porteføljestyregruppen har endnu ingen kanal i Teams" in text
    # An earlier case's forum decides (say from an old card): its threads in the removed team get nothing either.
    case_id = (await stored_case(setup_bot.settings.database_url, before))[0].id
    card = await secretary.execute(verbs.FORUM_DECIDE, {"case": case_id, "forum": "sf_aalborg", "udfald": "loeft"},
                                   AALBORG)
    assert "er registreret" in card_text(card)
    await wait_messages(connector, aad(INITIATOR), "Løftes til Porteføljestyregruppen", 1, chat.conversation_id)
    await wait_messages(connector, aad(ADMIN), f"{AALBORG_FORUM} mangler en kanal")
    counts = await wait_outbox_settled(setup_bot.settings.database_url)
    assert counts.get("failed", 0) >= 2, counts  # the card update and status reply of the earlier case's threads
    assert len(channel_calls(connector, set(CHANNELS))) == writes_before, "nothing went to the removed team"
    assert [t for t in threads(connector, AALBORG) if after in card_text(t["card"])] == []
    case, _ = await stored_case(setup_bot.settings.database_url, after)
    assert case.phase == "samarbejdsforum"

    # Installed again: the cases that waited for the team's forums are posted.
    installed = activities.conversation_update_members_added(
        conversation_id=TEAM, user_id=ADMIN[0], service_url=connector.url, team_id=TEAM, channel_id=TEAM,
        bot_added=True)
    status, _ = await admin.post(installed)
    assert status == 200
    await wait_until(lambda: any(after in card_text(t["card"]) for t in threads(connector, AALBORG)),
                     what="the waiting case posted after reinstalling")
    await wait_until(lambda: any(after in card_text(t["card"]) for t in threads(connector, PSG)),
                     what="its orientation copy too")
    # ... and the initiator is told that it has now been sent.
    await wait_messages(connector, aad(INITIATOR), f"Sag {after} er sendt til {AALBORG_FORUM}", 1,
                        chat.conversation_id)


async def test_a_new_secretary_gets_the_open_cases_cards_refreshed_for_them(setup_bot: BotServer) -> None:
    """Teams refreshes a card automatically only for the users in its ``refresh.userIds``: when the secretariat
    changes, the root cards of the forum's open cases are updated to list the new members."""
    connector = setup_bot.connector
    admin, secretary, colleague = (channel_user(setup_bot, who) for who in (ADMIN, SECRETARY, COLLEAGUE))
    await bind(admin, AALBORG, "sf_aalborg", [secretary])
    await bind(admin, PSG, "psg", [])
    chat = setup_bot.chat(user_id=INITIATOR[0], user_name=INITIATOR[1])
    number = await submit_forum_case(chat)
    [thread] = await wait_threads(connector, AALBORG, 1)
    assert COLLEAGUE[0] not in str(thread["card"]["refresh"]["userIds"])

    await admin.say("opsætning", AALBORG)
    await admin.press("Tilføj til sekretariatet", AALBORG, {"personer_sf_aalborg": colleague.aad})
    assert "Tilføjet til sekretariatet" in admin.text(), admin.text()

    def refreshed_for(user: str) -> bool:
        updates = [u for u in connector.updates(thread["conversation_id"]) if u.get("id") == thread["root_id"]]
        return bool(updates) and user in str(updates[-1]["attachments"][0]["content"]["refresh"]["userIds"])

    await wait_until(lambda: refreshed_for(COLLEAGUE[0]), what="the root card listing the new secretary")
    # ... and the new secretary's view of it has the decision button
    latest = [u for u in connector.updates(thread["conversation_id"]) if u.get("id") == thread["root_id"]][-1]
    view = await colleague.refresh(latest["attachments"][0]["content"], AALBORG, thread["conversation_id"])
    assert "Registrér beslutning" in button_titles(view) and number in card_text(view)
