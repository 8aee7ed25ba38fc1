"""Reusable load harness for the bot: concurrent conversations against ``POST /api/messages``.

``run_load`` drives ``conversations`` concurrent conversations; each sends its turns strictly one after
the other. A turn is complete when the bot's HTTP response arrived and, with ``expect_reply``, a reply
activity for that conversation arrived at the ``FakeConnector`` (detected through its ``on_send`` hook,
which is chained, not replaced). Latency is measured from the start of the request to completion with
``time.monotonic()`` (the clock ``FakeConnector`` records ``t`` with).

``start_process``/``stop_process`` run a bot in a separate process (e.g. ``bench.echo_baseline``).
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import socket
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from tests.support.fake_connector import FakeConnector

__all__ = [
    "REPO_ROOT",
    "LoadResult",
    "free_port",
    "percentile",
    "python_module_args",
    "run_load",
    "start_process",
    "stop_process",
]

REPO_ROOT = Path(__file__).resolve().parent.parent

MakeTurn = Callable[[int, int], tuple[dict[str, Any], str]]


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0..100) of ``values`` by linear interpolation; NaN when empty."""
    if not values:
        return math.nan
    s = sorted(values)
    pos = (len(s) - 1) * q / 100.0
    lo = math.floor(pos)
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (pos - lo)


@dataclass
class LoadResult:
    """Outcome of one measured ``run_load`` phase.

    ``turns`` counts completed turns, ``errors`` failed ones (non-2xx, transport error, timeout or missing
    reply); ``turns_per_s`` is ``turns / duration``; the percentiles are over completed turns.
    """

    turns: int
    errors: int
    duration: float
    turns_per_s: float
    p50_ms: float
    p99_ms: float
    conversations: int = 0
    latencies_ms: list[float] = field(default_factory=list, repr=False)
    error_samples: list[str] = field(default_factory=list)

    @property
    def mean_ms(self) -> float:
        return sum(self.latencies_ms) / len(self.latencies_ms) if self.latencies_ms else math.nan

    @property
    def max_ms(self) -> float:
        return max(self.latencies_ms) if self.latencies_ms else math.nan

    @staticmethod
    def header(label_width: int = 34) -> str:
        return (
            f"{'scenario':<{label_width}} {'turns':>7} {'errors':>6} {'secs':>7} "
            f"{'turns/s':>9} {'p50 ms':>8} {'p99 ms':>8}"
        )

    def row(self, label: str, label_width: int = 34) -> str:
        return (
            f"{label:<{label_width}} {self.turns:>7} {self.errors:>6} {self.duration:>7.2f} "
            f"{self.turns_per_s:>9.1f} {self.p50_ms:>8.1f} {self.p99_ms:>8.1f}"
        )


class _ReplyTracker:
    """Counts reply activities per conversation id via the connector's ``on_send`` hook."""

    def __init__(self, connector: FakeConnector, is_reply: Callable[[dict[str, Any]], bool]) -> None:
        self.connector = connector
        self.is_reply = is_reply
        self.counts: dict[str, int] = {}
        self.waiters: dict[str, tuple[int, asyncio.Future[None]]] = {}
        self._previous: Callable[[dict[str, Any]], object] | None = None

    def __enter__(self) -> _ReplyTracker:
        self._previous = self.connector.on_send
        self.connector.on_send = self._on_send
        return self

    def __exit__(self, *exc: object) -> None:
        self.connector.on_send = self._previous

    def _on_send(self, activity: dict[str, Any]) -> None:
        if self._previous is not None:
            self._previous(activity)
        if not isinstance(activity, dict) or not self.is_reply(activity):
            return
        conversation_id = (activity.get("conversation") or {}).get("id")
        if conversation_id is None:
            return
        n = self.counts.get(conversation_id, 0) + 1
        self.counts[conversation_id] = n
        waiter = self.waiters.get(conversation_id)
        if waiter is not None and n > waiter[0] and not waiter[1].done():
            waiter[1].set_result(None)

    async def wait_beyond(self, conversation_id: str, baseline: int, limit: float) -> bool:
        if self.counts.get(conversation_id, 0) > baseline:
            return True
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.waiters[conversation_id] = (baseline, fut)
        try:
            await asyncio.wait_for(fut, limit)
            return True
        except TimeoutError:
            return False
        finally:
            self.waiters.pop(conversation_id, None)


def _default_is_reply(activity: dict[str, Any]) -> bool:
    return activity.get("type", "message") != "typing"


async def run_load(
    bot_url: str,
    make_turn: MakeTurn,
    *,
    conversations: int = 50,
    turns_per_conversation: int,
    connector: FakeConnector,
    expect_reply: bool,
    timeout: float = 10,  # noqa: ASYNC109 - per-turn limit, part of the harness API
    warmup_turns: int = 0,
    headers: Mapping[str, str] | None = None,
    is_reply: Callable[[dict[str, Any]], bool] = _default_is_reply,
    session: aiohttp.ClientSession | None = None,
) -> LoadResult:
    """Run ``conversations`` concurrent conversations of sequential turns and measure them.

    :param bot_url: the bot's messaging endpoint, e.g. ``http://127.0.0.1:3978/api/messages``.
    :param make_turn: ``make_turn(conv_index, turn_index) -> (activity_dict, conversation_id)``;
        ``turn_index`` runs from 0 to ``warmup_turns + turns_per_conversation - 1`` per conversation
        (warm-up turns first), so every call can produce a fresh activity.
    :param connector: the fake connector the activities' ``serviceUrl`` points at.
    :param expect_reply: also wait, per turn, for a reply activity (``is_reply``, default: anything but
        ``typing``) for the turn's conversation id to arrive at the connector.
    :param timeout: per-turn limit in seconds (HTTP response + reply); a turn over it counts as an error.
    :param warmup_turns: turns per conversation run first (all conversations concurrently) and not
        measured: warms connection pools, caches, lazy imports, JIT-like first-call costs.
    :param headers: extra request headers (e.g. ``Authorization``).
    :param session: an existing ``aiohttp.ClientSession`` to use; by default one shared session with a
        connection limit of at least ``conversations`` is created for the run.
    """
    if conversations < 1 or turns_per_conversation < 1:
        raise ValueError("conversations and turns_per_conversation must be >= 1")
    request_headers = {"Content-Type": "application/json", **(headers or {})}
    own_session = session is None
    if session is None:
        session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=max(conversations, 100), limit_per_host=0),
            timeout=aiohttp.ClientTimeout(total=None),
        )
    try:
        with _ReplyTracker(connector, is_reply) as tracker:

            async def one_turn(conv: int, turn: int, latencies: list[float], errors: list[str]) -> None:
                activity, conversation_id = make_turn(conv, turn)
                data = json.dumps(activity).encode()
                baseline = tracker.counts.get(conversation_id, 0)
                start = time.monotonic()
                deadline = start + timeout
                try:
                    async with asyncio.timeout(timeout):
                        async with session.post(bot_url, data=data, headers=request_headers) as resp:
                            await resp.read()
                            status = resp.status
                except TimeoutError:
                    errors.append(f"conv {conv} turn {turn}: HTTP timeout after {timeout}s")
                    return
                except aiohttp.ClientError as exc:
                    errors.append(f"conv {conv} turn {turn}: {type(exc).__name__}: {exc}")
                    return
                if not 200 <= status < 300:
                    errors.append(f"conv {conv} turn {turn}: HTTP {status}")
                    return
                if expect_reply and not await tracker.wait_beyond(
                    conversation_id, baseline, max(0.0, deadline - time.monotonic())
                ):
                    errors.append(f"conv {conv} turn {turn}: no reply within {timeout}s")
                    return
                latencies.append((time.monotonic() - start) * 1000.0)

            async def conversation(
                conv: int, first: int, count: int, latencies: list[float], errors: list[str]
            ) -> None:
                for turn in range(first, first + count):
                    await one_turn(conv, turn, latencies, errors)

            async def phase(first: int, count: int) -> tuple[list[float], list[str], float]:
                latencies: list[float] = []
                errors: list[str] = []
                t0 = time.monotonic()
                async with asyncio.TaskGroup() as tg:
                    for conv in range(conversations):
                        tg.create_task(conversation(conv, first, count, latencies, errors))
                return latencies, errors, time.monotonic() - t0

            if warmup_turns > 0:
                await phase(0, warmup_turns)
            latencies, errors, duration = await phase(warmup_turns, turns_per_conversation)
    finally:
        if own_session:
            await session.close()

    turns = len(latencies)
    return LoadResult(
        turns=turns,
        errors=len(errors),
        duration=duration,
        turns_per_s=turns / duration if duration > 0 else math.nan,
        p50_ms=percentile(latencies, 50),
        p99_ms=percentile(latencies, 99),
        conversations=conversations,
        latencies_ms=latencies,
        error_samples=errors[:10],
    )


# ---------------------------------------------------------------------- processes


def free_port() -> int:
    """A currently free TCP port on 127.0.0.1."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def python_module_args(module: str, *args: str) -> list[str]:
    """``[sys.executable, "-m", module, *args]`` (this venv's interpreter)."""
    return [sys.executable, "-m", module, *args]


def _open_log(path: str | os.PathLike[str]) -> Any:
    return open(path, "ab")


async def start_process(
    args: Sequence[str],
    ready_url: str,
    timeout: float = 30.0,  # noqa: ASYNC109
    *,
    env: Mapping[str, str] | None = None,
    cwd: str | os.PathLike[str] | None = REPO_ROOT,
    log_path: str | os.PathLike[str] | None = None,
) -> asyncio.subprocess.Process:
    """Start ``args`` as a subprocess and wait until ``ready_url`` answers an HTTP GET (any status,
    e.g. 405 from a POST-only route, counts as ready).

    ``env`` entries are added to the current environment; ``cwd`` defaults to the repository root so
    ``python -m bench.…`` works. The child's stdout/stderr go to ``log_path`` if given, else are
    inherited. Raises ``RuntimeError`` if the process exits early, ``TimeoutError`` (after killing it)
    if it is not ready within ``timeout`` seconds.
    """
    full_env = {**os.environ, **(env or {})}
    log = _open_log(log_path) if log_path is not None else None
    try:
        proc = await asyncio.create_subprocess_exec(
            *args, cwd=cwd, env=full_env, stdin=asyncio.subprocess.DEVNULL, stdout=log, stderr=log
        )
    finally:
        if log is not None:
            log.close()  # the child has its own copy of the descriptor
    deadline = time.monotonic() + timeout
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2)) as session:
        while True:
            if proc.returncode is not None:
                raise RuntimeError(f"{list(args)} exited with {proc.returncode} before {ready_url} answered")
            try:
                async with session.get(ready_url) as resp:
                    await resp.read()
                    return proc
            except (aiohttp.ClientError, TimeoutError):
                pass
            if time.monotonic() > deadline:
                await stop_process(proc)
                raise TimeoutError(f"{list(args)} did not answer at {ready_url} within {timeout}s")
            try:
                await asyncio.wait_for(proc.wait(), 0.05)
            except TimeoutError:
                pass


async def stop_process(proc: asyncio.subprocess.Process, timeout: float = 5.0) -> int:  # noqa: ASYNC109
    """Terminate (SIGTERM), wait up to ``timeout`` seconds, then kill; return the exit code."""
    if proc.returncode is None:
        try:
            proc.terminate()
        except ProcessLookupError:
            pass
        try:
            await asyncio.wait_for(proc.wait(), timeout)
        except TimeoutError:
            proc.kill()
            await proc.wait()
    return proc.returncode if proc.returncode is not None else -1
