"""Forums in Teams through the real HTTP endpoint: set-up, routing, decisions, notifications."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from adaptive_cards import verbs
from tests.conftest import BotServer, make_settings
from tests.conversation.helpers import case_number, through_dialoggrundlag, to_dialoggrundlag
from tests.support import activities
from tests.support.fake_connector import FakeConnector
from tests.support.forum import (
    AALBORG,
    PSG,
    SSF,
    ChannelUser,
    card_text,
    install_team,
    latest_root_card,
    replies_text,
    wait_threads,
    wait_until,
)

ADMIN = ("29:admin", "Ida Admin")
SECRETARY = ("29:sek-aalborg", "Søren Sekretær")
PSG_SECRETARY = ("29:sek-psg", "Pia Portefølje")
SSF_SECRETARY = ("29:sek-ssf", "Sanne Strategi")
OUTSIDER = ("29:outsider", "Ole Udenfor")
INITIATOR = ("29:initiator", "Bent Hansen")
PEOPLE = [ADMIN, SECRETARY, PSG_SECRETARY, SSF_SECRETARY, OUTSIDER, INITIATOR]


@pytest.fixture
async def forum_bot(db_url: str, connector: FakeConnector) -> AsyncIterator[BotServer]:
    settings = make_settings(db_url, bot_admins=[activities.aad_object_id_for(ADMIN[0])])
    server = BotServer(settings, connector)
    await server.start()
    try:
        assert server.session is not None
        await install_team(server.session, server.url, connector, PEOPLE)
        yield server
    finally:
        await server.stop()


def user(bot: BotServer, who: tuple[str, str]) -> ChannelUser:
    assert bot.session is not None
    return ChannelUser(bot.session, bot.url, bot.connector, user_id=who[0], name=who[1])


async def bind(admin: ChannelUser, channel: str, forum_id: str, secretaries: list[ChannelUser]) -> None:
    card = await admin.say("opsætning", channel)
    assert card is not None and "Opsætning af kanalen" in card_text(card), card
    await admin.press("Knyt til kanalen", channel, {"knyt_forum": forum_id})
    assert "Kanalen er knyttet til" in admin.text(), admin.text()
    await admin.press("Tilføj til sekretariatet", channel,
                      {f"personer_{forum_id}": ",".join(s.aad for s in secretaries)})
    assert "Tilføjet til sekretariatet" in admin.text(), admin.text()


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
