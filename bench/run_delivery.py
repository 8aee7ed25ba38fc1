"""Delivery benchmark: a burst of new forum threads through the outbox, against the fake Bot Connector.

    python -m bench.run_delivery                 # 50 cases into one forum, 429 on every third write
    python -m bench.run_delivery --fail-every 0  # the same without throttling
    python -m bench.run_delivery --database-url postgresql+asyncpg://...

Teams' real rate limits (the DeliveryWorker defaults). Prints the time from the worker's start until every
item is delivered, items/s, the requests made and the busiest 1 s / 2 s / 30 s windows seen by the fake
connector. Asserts nothing. ``bench.run_routing`` does the same end to end: cases submitted through the
bot's HTTP endpoint (a bot process), routed to forum threads.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

from bot.connector_extra import DeliveryConnector
from bot.credentials import OutboundTokenProvider
from bot.delivery import DeliveryWorker
from storage.db import Database
from storage.migrate import upgrade
from storage.outbox import OutboxRepo
from tests.support.fake_connector import FakeConnector

FORUM = "19:forum-bench@thread.tacv2"


def busiest(times: list[float], seconds: float) -> int:
    times = sorted(times)
    best, start = 0, 0
    for end, t in enumerate(times):
        while t - times[start] >= seconds:
            start += 1
        best = max(best, end - start + 1)
    return best


async def run(database_url: str, items: int, fail_every: int, retry_after: float) -> None:
    database = Database(database_url)
    tokens = OutboundTokenProvider("", "", "SingleTenant", "")
    transport = DeliveryConnector(tokens)
    async with FakeConnector() as connector:
        await upgrade(database)
        await transport.start()
        async with database.transaction() as repo:
            out = OutboxRepo.of(repo)
            for n in range(1, items + 1):
                card = {"type": "message", "text": f"Ny sag OF-2026-{n:04d}"}
                await out.enqueue("create_thread", {"service_url": connector.url, "channel_id": FORUM,
                                                    "tenant_id": "tenant-1"}, card,
                                  dedup_key=f"bench-{n}", thread_key=FORUM)
        if fail_every:
            connector.fail_every(fail_every, 429, retry_after=retry_after)
        worker = DeliveryWorker(database, transport, worker_id="bench", poll_seconds=0.2)
        started = time.monotonic()
        await worker.start()
        while True:
            async with database.transaction() as repo:
                counts = await OutboxRepo.of(repo).counts()
            if not any(counts.get(s) for s in ("pending", "claimed", "sending")):
                break
            await asyncio.sleep(0.02)
        elapsed = time.monotonic() - started
        await worker.stop()
        await transport.close()
        await tokens.close()
        calls = [c for c in connector.calls if c["kind"] == "create_conversation"]
        times = [c["t"] for c in calls]
        throttled = sum(1 for c in calls if c["status"] == 429)
        print(f"backend           {database_url.split(':', 1)[0]}")
        print(f"items             {items} create_thread into one channel ({counts})")
        print(f"threads created   {len(connector.created_conversations())}")
        print(f"requests          {len(calls)} ({throttled} answered 429"
              + (f", 1 in {fail_every} writes, Retry-After {retry_after:g} s)" if fail_every else ")"))
        print(f"delivery time     {elapsed:.2f} s")
        print(f"items/s           {items / elapsed:.2f}")
        print(f"busiest windows   {busiest(times, 1.0)}/1 s (limit 7), {busiest(times, 2.0)}/2 s (limit 8), "
              f"{busiest(times, 30.0)}/30 s (limit 60)")
    await database.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database-url", default=None, help="default: a fresh SQLite file")
    parser.add_argument("--items", type=int, default=50)
    parser.add_argument("--fail-every", type=int, default=3, help="answer every k-th write with 429 (0: never)")
    parser.add_argument("--retry-after", type=float, default=0.05)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-delivery-") as directory:
        url = args.database_url or f"sqlite+aiosqlite:///{Path(directory) / 'bench.db'}"
        asyncio.run(run(url, args.items, args.fail_every, args.retry_after))


if __name__ == "__main__":
    main()
