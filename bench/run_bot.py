"""Benchmark: the bot vs a bare botbuilder CloudAdapter echo bot, at N concurrent conversations.

Everything runs on this machine over loopback: the fake Bot Connector and the load generator in this
process, each bot in its own process. Two kinds of turn are measured for the bot:

* message turn: ``mine sager`` — the command is read from the database and the reply card goes out
  through the (fake) Bot Connector; the turn ends when the reply arrived there;
* card turn: ``Action.Execute`` ``Næste`` on Dialoggrundlag page 1 with a changed answer — the answer is
  stored (one transaction: dedup row, case + answers read, upsert, case update, event, state) and the
  next page comes back in the invoke response.

The bare echo bot answers a message by sending ``Echo: …`` through the connector (msrest client per
turn, ``requests`` in threads). Targets from the issue: ≥ 5× the echo's turns/s on SQLite, ≥ 3× on
PostgreSQL, p99 < 250 ms, at 50 concurrent conversations. This script prints figures; it asserts nothing.

    python -m bench.run_bot [--conversations 50] [--turns 20] [--skip-postgres]
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import tempfile
from typing import Any

import aiohttp

from bench.harness import LoadResult, free_port, python_module_args, run_load, start_process, stop_process
from tests.support import activities
from tests.support.chat import Chat, actions_of
from tests.support.fake_connector import FakeConnector


async def _echo(connector: FakeConnector, conversations: int, turns: int, warmup: int) -> LoadResult:
    port = free_port()
    url = f"http://127.0.0.1:{port}/api/messages"
    proc = await start_process(python_module_args("bench.echo_baseline", "--port", str(port)), url, 30)
    try:
        def make_turn(conv: int, turn: int) -> tuple[dict[str, Any], str]:
            cid = f"a:echo-{conv}"
            return activities.message(f"besked {turn}", conversation_id=cid, user_id=f"29:e{conv}",
                                      service_url=connector.url), cid

        return await run_load(url, make_turn, conversations=conversations, turns_per_conversation=turns,
                              connector=connector, expect_reply=True, warmup_turns=warmup)
    finally:
        await stop_process(proc)


async def _prepare_cases(url: str, connector: FakeConnector, conversations: int, tag: str) -> list[dict[str, Any]]:
    """Walk each conversation to Dialoggrundlag page 1; return the Næste action data per conversation."""
    prepared: list[dict[str, Any]] = []
    async with aiohttp.ClientSession() as session:
        for conv in range(conversations):
            chat = Chat(session, url, connector, user_id=f"29:{tag}-{conv}")
            await chat.say("ny sag")
            await chat.press("Næste", {"s1": "ja", "s2": "nej", "s3": "nej"})
            await chat.press("Næste", {"need": "ja"})
            verb, data = chat.payload("Næste", {"h_task": f"Opgave {conv}", "h_initiator_org": "Kommune"})
            assert verb == "side.naeste" and data["step"] == "dialoggrundlag/stamdata"
            prepared.append({"chat": chat, "data": data})
            assert actions_of(chat.card or {})
    return prepared


async def _bot(connector: FakeConnector, database_url: str, conversations: int, turns: int, warmup: int,
               tag: str) -> tuple[LoadResult, LoadResult]:
    port = free_port()
    url = f"http://127.0.0.1:{port}/api/messages"
    env = {"DATABASE_URL": database_url, "PORT": str(port), "LOG_LEVEL": "WARNING", "MICROSOFT_APP_ID": "",
           **({"DATABASE_POOL_SIZE": str(POOL)} if POOL else {})}
    proc = await start_process(python_module_args("bot"), f"http://127.0.0.1:{port}/readyz", 60, env=env)
    try:
        prepared = await _prepare_cases(url, connector, conversations, tag)

        def message_turn(conv: int, turn: int) -> tuple[dict[str, Any], str]:
            chat: Chat = prepared[conv]["chat"]
            return chat.acts.message("mine sager"), chat.conversation_id

        messages = await run_load(url, message_turn, conversations=conversations, turns_per_conversation=turns,
                                  connector=connector, expect_reply=True, warmup_turns=warmup)

        def card_turn(conv: int, turn: int) -> tuple[dict[str, Any], str]:
            entry = prepared[conv]
            chat: Chat = entry["chat"]
            data = dict(entry["data"])
            data["in_q1a"] = f"Begrundelse, version {turn}"  # a changed answer: stored every turn
            data["rev"] = entry["data"]["rev"] + turn  # each stored turn bumps the case revision by one
            return chat.acts.execute("side.naeste", data), chat.conversation_id

        cards = await run_load(url, card_turn, conversations=conversations, turns_per_conversation=turns,
                               connector=connector, expect_reply=False, warmup_turns=warmup)
        return messages, cards
    finally:
        await stop_process(proc)


POOL = 0


def _verdict(result: LoadResult, echo: LoadResult, factor: float) -> str:
    ratio = result.turns_per_s / echo.turns_per_s if echo.turns_per_s else float("nan")
    ok = ratio >= factor and result.p99_ms < 250 and result.errors == 0
    return f"{ratio:5.1f}× echo (target ≥ {factor:.0f}×, p99 < 250 ms): {'met' if ok else 'NOT met'}"


async def main_async(args: argparse.Namespace) -> None:
    async with FakeConnector() as connector:
        echo = await _echo(connector, args.conversations, args.turns, args.warmup)
        connector.clear()
        rows: list[tuple[str, LoadResult, float]] = []
        tmp = tempfile.mkdtemp(prefix="bench-")
        try:
            if not args.skip_sqlite:
                sqlite_url = f"sqlite+aiosqlite:///{tmp}/bench.db"
                msg, card = await _bot(connector, sqlite_url, args.conversations, args.turns, args.warmup, "sq")
                rows += [("bot message turn, SQLite", msg, 5.0), ("bot card turn, SQLite", card, 5.0)]
                connector.clear()
            if not args.skip_postgres:
                import pgserver

                server = pgserver.get_server(f"{tmp}/pg", cleanup_mode="stop")
                try:
                    server.psql("CREATE DATABASE bench;")
                    pg_url = server.get_uri("bench").replace("postgresql://", "postgresql+asyncpg://", 1)
                    msg, card = await _bot(connector, pg_url, args.conversations, args.turns, args.warmup, "pg")
                    rows += [("bot message turn, PostgreSQL", msg, 3.0), ("bot card turn, PostgreSQL", card, 3.0)]
                finally:
                    server.cleanup()
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    print(f"\n{args.conversations} concurrent conversations, {args.turns} measured turns each "
          f"({args.warmup} warm-up), loopback, fake Bot Connector\n")
    print(LoadResult.header(36))
    print(echo.row("bare CloudAdapter echo (baseline)", 36))
    for label, result, _ in rows:
        print(result.row(label, 36))
    print()
    for label, result, factor in rows:
        print(f"{label:<36} {_verdict(result, echo, factor)}")
        for sample in result.error_samples[:3]:
            print(f"    error: {sample}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--conversations", type=int, default=50)
    parser.add_argument("--turns", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--skip-postgres", action="store_true")
    parser.add_argument("--skip-sqlite", action="store_true")
    parser.add_argument("--pool", type=int, default=0, help="DATABASE_POOL_SIZE for the bot (default: its own)")
    args = parser.parse_args(argv)
    global POOL
    POOL = args.pool
    asyncio.run(main_async(args))


if __name__ == "__main__":
    main()
