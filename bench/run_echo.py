"""Baseline benchmark: bare botbuilder echo bot (``bench.echo_baseline``) in a subprocess.

Starts the ``FakeConnector`` in-process, the echo bot in a separate process, warms up, then runs
``--conversations`` concurrent conversations x ``--turns`` message turns; a turn completes when the
bot answered the POST and its ``Echo: ...`` reply reached the fake connector.

    python -m bench.run_echo [--conversations 50] [--turns 20] [--warmup 2] [--repeat 1]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from typing import Any

from bench.harness import (
    LoadResult,
    free_port,
    python_module_args,
    run_load,
    start_process,
    stop_process,
)
from tests.support import activities
from tests.support.fake_connector import FakeConnector


async def run(conversations: int, turns: int, warmup: int, repeat: int, port: int | None) -> list[LoadResult]:
    port = port or free_port()
    bot_url = f"http://127.0.0.1:{port}/api/messages"
    results: list[LoadResult] = []
    async with FakeConnector() as connector:
        proc = await start_process(
            python_module_args("bench.echo_baseline", "--port", str(port)), bot_url, 30
        )
        try:
            for run_no in range(repeat):

                def make_turn(conv: int, turn: int, run_no: int = run_no) -> tuple[dict[str, Any], str]:
                    conversation_id = f"a:echo-{run_no}-{conv}"
                    activity = activities.message(
                        f"besked {turn}",
                        conversation_id=conversation_id,
                        user_id=f"29:user-{conv}",
                        service_url=connector.url,
                    )
                    return activity, conversation_id

                result = await run_load(
                    bot_url,
                    make_turn,
                    conversations=conversations,
                    turns_per_conversation=turns,
                    connector=connector,
                    expect_reply=True,
                    warmup_turns=warmup,
                )
                results.append(result)
                connector.clear()
        finally:
            await stop_process(proc)
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--conversations", type=int, default=50)
    parser.add_argument("--turns", type=int, default=20, help="measured turns per conversation")
    parser.add_argument("--warmup", type=int, default=2, help="unmeasured warm-up turns per conversation")
    parser.add_argument("--repeat", type=int, default=1, help="measured runs (same bot process)")
    parser.add_argument("--port", type=int, default=None, help="port for the echo bot (default: free port)")
    args = parser.parse_args(argv)

    load_before = os.getloadavg()[0]
    results = asyncio.run(run(args.conversations, args.turns, args.warmup, args.repeat, args.port))
    label = f"echo baseline {args.conversations}x{args.turns}"
    print(LoadResult.header())
    for i, result in enumerate(results, 1):
        print(result.row(label if len(results) == 1 else f"{label} #{i}"))
        for sample in result.error_samples:
            print(f"  error: {sample}")
    # The figures are only comparable on an otherwise idle machine (2 cores: bot + harness).
    print(f"load average (1 min) before {load_before:.2f}, after {os.getloadavg()[0]:.2f}")
    return 1 if any(r.errors for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
