"""Routing benchmark: N cases submitted at once to one forum through the bot's HTTP endpoint.

    python -m bench.run_routing                       # 50 cases, 429 on every third write, and a baseline
    python -m bench.run_routing --cases 20 --retry-after 1
    python -m bench.run_routing --route psg           # one channel only (Porteføljestyregruppen)
    python -m bench.run_routing --postgres            # a pgserver PostgreSQL instead of a SQLite file

The bot runs as its own process (``python -m bot``) against the fake Bot Connector in this process. The team
is installed and the forums' channels are bound through ``@Opgaveflytning opsætning``; N 1:1 chats walk a
case each to «Gennemse og indsend», then all press Indsend at once. Route samarbejdsforum (the default)
posts each case in Samarbejdsforum Aalborg's channel and, for orientation, in Porteføljestyregruppen's.

Printed per run: the time from the first Indsend to the last thread created and until the outbox is empty,
the requests made and how many were answered 429, and per channel the busiest 1 s / 2 s / 30 s windows
(every request counts, throttled ones too) against Teams' limits, with the time the limits alone would
need for that many requests. Then the ratios of the throttled run to the baseline (no 429s).
Figures only: it asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from sqlalchemy import func, select

from bench.harness import free_port, python_module_args, start_process, stop_process
from bot.connector_extra import MARKER_KEY
from bot.delivery import TEAMS_THREAD_LIMITS
from storage.db import Database
from storage.outbox import outbox_t
from tests.conversation.helpers import case_number, through_dialoggrundlag, to_dialoggrundlag
from tests.support import activities
from tests.support.chat import Chat, actions_of
from tests.support.fake_connector import Call, FakeConnector
from tests.support.forum import AALBORG, PSG, ChannelUser, install_team

WINDOWS = TEAMS_THREAD_LIMITS[:3]  # 7/1 s, 8/2 s, 60/30 s
ADMIN = ("29:admin", "Ida Admin")
SECRETARY = ("29:sek-aalborg", "Søren Sekretær")
PSG_SECRETARY = ("29:sek-psg", "Pia Portefølje")
NAMES = {AALBORG: "Samarbejdsforum Aalborg", PSG: "Porteføljestyregruppen"}


@dataclass
class RunResult:
    label: str
    cases: int
    to_last_thread: float
    to_empty_outbox: float
    writes: int
    throttled: int
    threads: dict[str, int] = field(default_factory=dict)
    duplicates: int = 0
    busiest: dict[str, tuple[int, ...]] = field(default_factory=dict)
    requests_per_channel: dict[str, int] = field(default_factory=dict)
    span_per_channel: dict[str, float] = field(default_factory=dict)


def busiest(times: list[float], seconds: float) -> int:
    times = sorted(times)
    best, start = 0, 0
    for end, t in enumerate(times):
        while t - times[start] >= seconds:
            start += 1
        best = max(best, end - start + 1)
    return best


def ideal_seconds(requests: int) -> float:
    """From the first to the last of ``requests`` requests in one thread, sent as early as the limits allow."""
    times: list[float] = []
    for n in range(requests):
        t = 0.0
        for window in WINDOWS:
            if n >= window.limit:
                t = max(t, times[n - window.limit] + window.seconds)
        times.append(max(t, times[-1] if times else 0.0))
    return times[-1] if times else 0.0


def channel_of(call: Call) -> str | None:
    if call["kind"] == "create_conversation":
        channel = (((call["body"] or {}).get("channelData") or {}).get("channel") or {}).get("id")
        return str(channel) if channel else None
    conversation = str(call["conversation_id"] or "")
    return conversation.split(";messageid=", 1)[0] if conversation.startswith("19:") else None


async def _bind(admin: ChannelUser, channel: str, forum_id: str, secretary: ChannelUser) -> None:
    await admin.say("opsætning", channel)
    await admin.press("Knyt til kanalen", channel, {"knyt_forum": forum_id})
    await admin.press("Tilføj til sekretariatet", channel, {f"personer_{forum_id}": secretary.aad})
    assert "Tilføjet til sekretariatet" in admin.text(), admin.text()


async def _to_review(chat: Chat, route: str) -> str:
    await to_dialoggrundlag(chat)
    await through_dialoggrundlag(chat)
    await chat.press("Næste", {"route": route, "hospital": "aalborg"})
    for _ in range(12):  # route psg: the Mini-MTV pages first
        if any(a.get("title") == "Indsend" for a in actions_of(chat.card or {})):
            break
        await chat.press("Næste")
    return case_number(chat)


async def _outbox_busy(database: Database) -> bool:
    async with database.connect() as conn:
        row = (await conn.execute(select(func.count()).where(
            outbox_t.c.state.in_(("pending", "claimed", "sending"))))).first()
    return bool(row and row[0])


async def _when_outbox_empty(database: Database) -> float:
    """Poll the outbox until nothing is left to send; the time it was found empty."""
    busy = True
    while busy:
        busy = await _outbox_busy(database)
        if busy:
            await asyncio.sleep(0.05)
    return time.monotonic()


async def run_once(label: str, database_url: str, cases: int, route: str, fail_every: int,
                   retry_after: float | None, log: Path) -> RunResult:
    channels = [AALBORG, PSG] if route == "samarbejdsforum" else [PSG]
    async with FakeConnector() as connector:
        port = free_port()
        url = f"http://127.0.0.1:{port}/api/messages"
        env = {"DATABASE_URL": database_url, "PORT": str(port), "HOST": "127.0.0.1", "LOG_LEVEL": "WARNING",
               "MICROSOFT_APP_ID": "", "BOT_ADMINS": activities.aad_object_id_for(ADMIN[0]),
               "DELIVERY_WORKER_ID": f"bench-{label}"}
        bot = await start_process(python_module_args("bot"), f"http://127.0.0.1:{port}/readyz", 60, env=env,
                                  log_path=log)
        database = Database(database_url)
        try:
            async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=max(cases, 100))) as session:
                await install_team(session, url, connector, [ADMIN, SECRETARY, PSG_SECRETARY])
                admin = ChannelUser(session, url, connector, user_id=ADMIN[0], name=ADMIN[1])
                if route == "samarbejdsforum":
                    await _bind(admin, AALBORG, "sf_aalborg",
                                ChannelUser(session, url, connector, user_id=SECRETARY[0], name=SECRETARY[1]))
                await _bind(admin, PSG, "psg",
                            ChannelUser(session, url, connector, user_id=PSG_SECRETARY[0], name=PSG_SECRETARY[1]))
                chats = [Chat(session, url, connector, user_id=f"29:bench-{n}", user_name=f"Person {n}")
                         for n in range(cases)]
                await asyncio.gather(*(_to_review(chat, route) for chat in chats))
                first = len(connector.calls)
                if fail_every:
                    connector.fail_every(fail_every, 429, retry_after=retry_after)
                started = time.monotonic()
                await asyncio.gather(*(chat.press("Indsend") for chat in chats))
                emptied = await _when_outbox_empty(database)
        finally:
            await database.dispose()
            await stop_process(bot)
        burst = [c for c in connector.calls[first:] if c["method"] in ("POST", "PUT")]
        created = [c for c in burst if c["kind"] == "create_conversation" and c["status"] < 300 and channel_of(c)]
        markers = Counter(((c["body"] or {}).get("activity") or {}).get("channelData", {}).get(MARKER_KEY)
                          for c in created)
        by_channel: dict[str, list[float]] = {}
        for call in burst:
            channel = channel_of(call)
            if channel is not None:
                by_channel.setdefault(channel, []).append(call["t"])
        return RunResult(
            label=label, cases=cases,
            to_last_thread=max((c["t"] for c in created), default=started) - started,
            to_empty_outbox=emptied - started,
            writes=len(burst), throttled=sum(1 for c in burst if c["status"] == 429),
            threads={ch: sum(1 for c in created if channel_of(c) == ch) for ch in channels},
            duplicates=sum(n - 1 for n in markers.values() if n > 1),
            busiest={ch: tuple(busiest(ts, w.seconds) for w in WINDOWS) for ch, ts in by_channel.items()},
            requests_per_channel={ch: len(ts) for ch, ts in by_channel.items()},
            span_per_channel={ch: max(ts) - min(ts) for ch, ts in by_channel.items()},
        )


def report(result: RunResult) -> None:
    print(f"\n== {result.label}")
    print(f"cases submitted at once     {result.cases}")
    print(f"first Indsend → last thread  {result.to_last_thread:6.2f} s")
    print(f"first Indsend → outbox empty {result.to_empty_outbox:6.2f} s  (threads and 1:1 messages)")
    print(f"requests (POST/PUT)         {result.writes}, of which 429: {result.throttled}")
    print(f"duplicate threads           {result.duplicates}")
    limits = "/".join(f"{w.limit}" for w in WINDOWS)
    for channel, seen in result.busiest.items():
        requests = result.requests_per_channel[channel]
        span, ideal = result.span_per_channel[channel], ideal_seconds(requests)
        print(f"{NAMES.get(channel, channel):<27} {result.threads.get(channel, 0)} threads, {requests} requests "
              f"in {span:.1f} s; busiest 1 s/2 s/30 s: {'/'.join(map(str, seen))} (limits {limits})")
        print(f"{'':<27} the limits alone need {ideal:.1f} s for {requests} requests: "
              f"{span / ideal if ideal else float('nan'):.2f}× that")


async def main_async(args: argparse.Namespace) -> None:
    tmp = Path(tempfile.mkdtemp(prefix="bench-routing-"))
    server: Any = None
    try:
        def database_url(name: str) -> str:
            if server is not None:
                server.psql(f"CREATE DATABASE {name};")
                return str(server.get_uri(name)).replace("postgresql://", "postgresql+asyncpg://", 1)
            return f"sqlite+aiosqlite:///{tmp / name}.db"

        if args.postgres:
            import pgserver

            server = pgserver.get_server(str(tmp / "pg"), cleanup_mode="stop")
        log = tmp / "bot.log"
        runs = []
        if args.fail_every:
            label = (f"429 on every {args.fail_every}. write"
                     + (f", Retry-After {args.retry_after:g} s" if args.retry_after is not None else ", no Retry-After"))
            runs.append(await run_once(label, database_url("throttled"), args.cases, args.route, args.fail_every,
                                       args.retry_after, log))
        if not args.no_baseline:
            runs.append(await run_once("baseline, no 429", database_url("baseline"), args.cases, args.route, 0,
                                       None, log))
        backend = "PostgreSQL" if server is not None else "SQLite"
        print(f"\n{args.cases} cases, route {args.route}, {backend}, bot process + fake Bot Connector on loopback")
        for result in runs:
            report(result)
        if len(runs) == 2 and runs[1].to_last_thread > 0:
            throttled, baseline = runs
            print("\n== throttled / baseline")
            print(f"time to last thread         {throttled.to_last_thread / baseline.to_last_thread:.2f}×")
            print(f"time to empty outbox        {throttled.to_empty_outbox / baseline.to_empty_outbox:.2f}×")
            print(f"requests                    {throttled.writes / baseline.writes:.2f}×")
        errors = [line for line in log.read_text(errors="replace").splitlines() if "Traceback" in line]
        if errors:
            print(f"\n{len(errors)} traceback(s) in the bot's log")
    finally:
        if server is not None:
            server.cleanup()
        shutil.rmtree(tmp, ignore_errors=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", type=int, default=50)
    parser.add_argument("--route", choices=("samarbejdsforum", "psg"), default="samarbejdsforum")
    parser.add_argument("--fail-every", type=int, default=3, help="answer every k-th write with 429 (0: never)")
    parser.add_argument("--retry-after", type=float, default=None, help="Retry-After on the 429s (default: none)")
    parser.add_argument("--no-baseline", action="store_true", help="skip the run without 429s")
    parser.add_argument("--postgres", action="store_true", help="a pgserver PostgreSQL instead of SQLite")
    asyncio.run(main_async(parser.parse_args(argv)))


if __name__ == "__main__":
    main()
