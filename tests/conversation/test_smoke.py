from tests.conftest import BotServer


async def test_walk(bot: BotServer) -> None:
    chat = bot.chat()
    cards = await chat.say("ny sag")
    print(chat.text())
    await chat.press("Næste", {"s1": "ja", "s2": "nej", "s3": "nej"})
    print(chat.text())
    await chat.press("Næste", {"need": "ja"})
    print(chat.text())
    await chat.press("Næste", {"h_task": "Sårpleje", "h_initiator_org": "Aalborg Kommune"})
    print(chat.text())
