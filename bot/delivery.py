"""The delivery worker: sends what the outbox (``storage.outbox``) holds, within Teams' rate limits.

``DeliveryWorker`` is one asyncio task (plus one task per item in flight) owned by the app. It claims due
items, waits for a free slot in the item's rate-limit buckets, records ``sending`` (committed before the
request is made), makes the Bot Connector call and records the outcome.

Rate limits (docs/teams-platform.md): per thread_key 7 requests/1 s, 8/2 s, 60/30 s, 1800/3600 s and per
tenant 30/1 s, as sliding windows over a request log in the database (``outbox_sends``), so they hold
across worker processes and restarts. Every request counts, throttled ones too ("all requests are
subject to the same rate limiting policy"); each window is widened by ``limit_margin`` (0.25 s): the time
from taking a slot to the request's arrival (commit, event-loop and GC pauses: 10–30 ms measured here,
gen-2 GC pauses up to ~140 ms in a large process) and clock jitter. Items of one thread_key go one at a time, in
order, so a 429 (or any retry) holds back the rest of its thread.

Failures:

* 429 and 412 (the request was not processed) and "could not connect / no token": retried with
  jittered exponential backoff (``backoff_base`` · 2^(n-1), capped at ``backoff_cap`` = 5 min), or after
  ``Retry-After`` (never earlier) when the service gave one; ``failed`` after ``max_attempts``.
* 502, 504 (and 408, 500, 503, timeouts, connection lost mid-request): the request may have taken effect.
  ``update`` (a PUT of the whole activity) is idempotent and is retried. ``reply`` and ``send_personal``
  are retried too: at-least-once (a duplicate message is possible only after such an ambiguous failure).
  ``create_thread`` is never repeated blindly: see below.
* the worker died (kill -9, crash) or lost its lease while a request was in flight (the item is claimed
  again with ``sending_at`` set): ``update`` and ``send_personal`` are sent again; a ``reply`` (the kinds in
  ``in_doubt_after_crash``: a case's status reply in its thread) is not — it goes to ``in_doubt`` at once
  (an admin can see the thread; a 1:1 chat they cannot), so a crash never duplicates a status reply;
  ``create_thread``: see below.
* any other status (400, 401, 403, 404, …): ``failed`` with the status — kept, ``list_failed()``,
  ``retry_failed(id)``.

Guarantee for ``create_thread`` (the kinds in ``at_most_once``): **never a second thread**. Every activity
the worker POSTs (thread roots, replies, personal messages) carries the item's dedup key in
``channelData.outboxKey``. When a request's outcome is unknown
(ambiguous status or timeout above, or the worker died/was killed between committing ``sending`` and
committing the outcome — such an item is found with ``sending_at`` set when it is claimed again), the
worker asks the ``locator`` (a :class:`ThreadLocator`) after ``reconcile_after`` seconds whether the thread
exists: found → ``done`` with its ids, certainly absent → sent again, unknown → ``in_doubt``. The Bot
Connector cannot list a channel's messages, so **without a locator (the default) such an item goes to
``in_doubt`` and is not sent again**: it is listed by ``list_failed()`` for an admin, who looks for the
case in the channel and then calls ``mark_done(id, {"conversation_id": …, "activity_id": …})`` or
``retry_failed(id)``. So create_thread is delivered exactly once unless a request's outcome is unknown;
then it is delivered at most once until an admin decides. A graceful ``stop()`` lets requests in flight
finish (``stop_grace``), so only crashes, kills and network/5xx failures produce ``in_doubt`` items.

Links to a case's thread in 1:1 messages: a ``send_personal`` item may name ``target["link_parent"]``, the
dedup key of the ``create_thread`` item of the case's thread (unlike ``parent``, it does not supply the
conversation: the message still goes to the user's 1:1 chat). The worker waits while that item is pending
or in flight, then replaces ``{{thread_url}}`` (:data:`THREAD_URL_PLACEHOLDER`) everywhere in the payload
with the thread's Teams deep link (:func:`thread_link`; ``target["group_id"]`` adds the team's group id).
If the thread was not created (failed, in doubt, missing), the placeholder becomes ``target["fallback_url"]``,
or, without one, ``Action.OpenUrl`` actions that point at it are dropped and the rest of it becomes "":
the 1:1 message is delivered either way.

Removed from a team: an item whose target names a ``team_id`` (posts, replies and updates in channels) is
checked against the team registry (``storage.teams``) just before its request: if the bot was removed
from that team, it becomes ``failed`` ("bot removed from team …") without a request.

Worker ids must be unique among running workers; a worker that starts with the id of a dead one
(the default ``host:pid`` repeats when a container restarts) takes its items back at once, otherwise they
return when their lease (``lease_seconds``) runs out.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import random
import signal
import socket
import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol, TypeVar
from urllib.parse import quote

from sqlalchemy.exc import SQLAlchemyError

from bot.connector import ConnectorClient
from bot.connector_extra import MARKER_KEY, ConnectorHTTPError, OutcomeUnknown, RequestNotSent
from storage.db import Database
from storage.outbox import (
    DONE,
    THREAD_URL_PLACEHOLDER,
    OutboxItem,
    OutboxRepo,
    RateWindow,
    thread_conversation_id,
)
from storage.teams import TeamRepo

log = logging.getLogger(__name__)

T = TypeVar("T")

#: Per bot per thread (and per channel for new threads): 7/1 s, 8/2 s, 60/30 s, 1800/3600 s.
TEAMS_THREAD_LIMITS: tuple[RateWindow, ...] = (
    RateWindow(7, 1.0), RateWindow(8, 2.0), RateWindow(60, 30.0), RateWindow(1800, 3600.0),
)
#: Per app per tenant: about 30 requests per second.
TEAMS_TENANT_LIMITS: tuple[RateWindow, ...] = (RateWindow(30, 1.0),)

NOT_PROCESSED_STATUSES = frozenset({412, 429})  # refused before taking effect: safe to repeat
AMBIGUOUS_STATUSES = frozenset({408, 500, 502, 503, 504})  # transient, but may have taken effect
MAX_RETRY_AFTER = 3600.0

#: Stands for the Teams link to a case's thread in a ``send_personal`` payload with ``link_parent``.
_OPEN_URL_TYPES = frozenset({"Action.OpenUrl", "openUrl"})  # Adaptive Card action / Bot Framework card button


class DeliveryTransport(Protocol):
    """The Bot Connector calls the worker makes (``bot.connector_extra.DeliveryConnector``)."""

    async def create_thread(
        self, service_url: str, channel_id: str, activity: dict[str, Any], *, tenant_id: str = "",
        team_id: str | None = None, bot_id: str | None = None,
    ) -> tuple[str, str | None]: ...

    async def send_activity(self, service_url: str, conversation_id: str, activity: dict[str, Any]) -> str | None: ...

    async def update_activity(
        self, service_url: str, conversation_id: str, activity_id: str, activity: dict[str, Any]
    ) -> None: ...

    async def create_personal_conversation(
        self, service_url: str, user_id: str, *, tenant_id: str = "", bot_id: str | None = None
    ) -> str: ...


class CannotLocate(Exception):
    """The locator cannot tell whether the thread exists."""


class ThreadLocator(Protocol):
    """Finds the thread a create_thread item may have created (by the marker in ``channelData.outboxKey``).

    Return ``(conversation_id, root_activity_id)`` if it exists, None if it certainly does not; raise
    :class:`CannotLocate` otherwise. Called at least ``reconcile_after`` seconds after the request.
    """

    async def locate(self, item: OutboxItem) -> tuple[str, str | None] | None: ...


class _LostClaim(Exception):
    pass


def default_worker_id() -> str:
    return os.environ.get("DELIVERY_WORKER_ID") or f"{socket.gethostname()}:{os.getpid()}"


def thread_link(channel_id: str, root_id: str, *, tenant_id: str = "", group_id: str | None = None) -> str:
    """The Teams deep link to a channel thread (its root message ``root_id`` in ``channel_id``)."""
    root = quote(root_id, safe="")
    link = f"https://teams.microsoft.com/l/message/{quote(channel_id, safe='')}/{root}?"
    if tenant_id:
        link += f"tenantId={quote(tenant_id, safe='')}&"
    link += f"parentMessageId={root}"
    if group_id:
        link += f"&groupId={quote(group_id, safe='')}"
    return link


def fill_placeholder(payload: dict[str, Any], value: str, placeholder: str = THREAD_URL_PLACEHOLDER) -> dict[str, Any]:
    """``payload`` with every ``placeholder`` (in any string, at any depth) replaced by ``value``."""
    escaped = json.dumps(value, ensure_ascii=False)[1:-1]  # safe inside a JSON string
    filled: dict[str, Any] = json.loads(json.dumps(payload, ensure_ascii=False).replace(placeholder, escaped))
    return filled


def drop_placeholder_links(payload: dict[str, Any], placeholder: str = THREAD_URL_PLACEHOLDER) -> dict[str, Any]:
    """``payload`` without the open-URL actions that point at ``placeholder`` (action sets and action lists
    left empty go too); every other ``placeholder`` becomes ""."""

    def links_to_placeholder(node: Any) -> bool:
        return (isinstance(node, dict) and node.get("type") in _OPEN_URL_TYPES
                and placeholder in str(node.get("url") or node.get("value") or ""))

    def prune(node: Any) -> Any:
        if isinstance(node, list):
            kept = []
            for child in node:
                if links_to_placeholder(child):
                    continue
                pruned = prune(child)
                if isinstance(pruned, dict) and pruned.get("type") == "ActionSet" and not pruned.get("actions"):
                    continue
                kept.append(pruned)
            return kept
        if isinstance(node, dict):
            out: dict[str, Any] = {}
            for key, child in node.items():
                if links_to_placeholder(child):
                    continue  # e.g. a selectAction
                pruned = prune(child)
                if key in ("actions", "buttons") and isinstance(child, list) and child and not pruned:
                    continue  # no empty action lists
                out[key] = pruned
            return out
        return node

    return fill_placeholder(prune(payload), "", placeholder)


def _with_marker(activity: dict[str, Any], key: str) -> dict[str, Any]:
    channel_data = dict(activity.get("channelData") or {})
    channel_data[MARKER_KEY] = key
    return {**activity, "channelData": channel_data}


def _describe(error: BaseException) -> str:
    if isinstance(error, ConnectorHTTPError):
        return f"HTTP {error.status}: {error.body[:300]}"
    return f"{type(error).__name__}: {error}"[:500]


class DeliveryWorker:
    def __init__(
        self,
        database: Database,
        connector: DeliveryTransport,
        *,
        worker_id: str,
        clock: Callable[[], float] = time.time,
        concurrency: int = 8,
        lease_seconds: float = 60.0,
        poll_seconds: float = 1.0,
        thread_limits: Sequence[RateWindow] = TEAMS_THREAD_LIMITS,
        tenant_limits: Sequence[RateWindow] = TEAMS_TENANT_LIMITS,
        limit_margin: float = 0.25,
        max_inline_wait: float = 5.0,
        backoff_base: float = 1.0,
        backoff_cap: float = 300.0,
        max_attempts: int = 20,
        at_most_once: frozenset[str] = frozenset({"create_thread"}),
        in_doubt_after_crash: frozenset[str] = frozenset({"reply"}),
        locator: ThreadLocator | None = None,
        reconcile_after: float = 60.0,
        parent_poll_seconds: float = 1.0,
        stop_grace: float = 15.0,
        rng: random.Random | None = None,
    ) -> None:
        """``clock``: epoch seconds (it is stored: rate-limit windows are shared between processes)."""
        self._db = database
        self._connector = connector
        self.worker_id = worker_id
        self._clock = clock
        self._concurrency = concurrency
        self._lease = timedelta(seconds=lease_seconds)
        self._poll = poll_seconds
        self._thread_limits = tuple(thread_limits)
        self._tenant_limits = tuple(tenant_limits)
        self._margin = limit_margin
        self._max_inline_wait = min(max_inline_wait, lease_seconds / 2)  # never wait out the claim
        self._backoff_base = backoff_base
        self._backoff_cap = backoff_cap
        self._max_attempts = max_attempts
        self._at_most_once = at_most_once
        self._in_doubt_after_crash = in_doubt_after_crash - at_most_once
        self._locator = locator
        self._reconcile_after = reconcile_after
        self._parent_poll = parent_poll_seconds
        self._stop_grace = stop_grace
        self._rng = rng or random.Random()
        self._longest_window = max(w.seconds for w in (*self._thread_limits, *self._tenant_limits))
        self._task: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._timers: set[asyncio.TimerHandle] = set()
        self._kick = asyncio.Event()
        self._stopping = asyncio.Event()
        self._next_prune = 0.0

    # --- lifetime -------------------------------------------------------------------------------
    async def start(self) -> None:
        if self._task is None:
            self._stopping.clear()
            self._task = asyncio.create_task(self._run(), name=f"delivery-{self.worker_id}")

    async def stop(self) -> None:
        """Stop claiming; items waiting for a slot go back to the table, requests in flight may finish
        within ``stop_grace`` seconds (then they are cancelled: their outcome is unknown)."""
        if self._task is None:
            return
        self._stopping.set()
        self._kick.set()
        await self._task
        self._task = None
        if self._tasks:
            _, pending = await asyncio.wait(set(self._tasks), timeout=self._stop_grace)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        for timer in self._timers:
            timer.cancel()
        self._timers.clear()

    def wake(self) -> None:
        """Look for due items now (call after committing an enqueue in this process)."""
        self._kick.set()

    @property
    def in_flight(self) -> int:
        return len(self._tasks)

    # --- the loop -------------------------------------------------------------------------------
    def _dt(self, epoch: float) -> datetime:
        return datetime.fromtimestamp(epoch, UTC)

    def _kick_at(self, epoch: float) -> None:
        delay = max(0.0, epoch - self._clock())
        if delay > 600.0:
            return  # the poll finds it
        loop = asyncio.get_running_loop()
        handle: asyncio.TimerHandle | None = None

        def fire() -> None:
            self._timers.discard(handle)  # type: ignore[arg-type]
            self._kick.set()

        handle = loop.call_later(delay, fire)
        self._timers.add(handle)

    async def _write(self, op: Callable[[OutboxRepo], Awaitable[T]]) -> T:
        """One outbox transaction, repeated a few times on database errors."""
        delay = 0.2
        for attempt in range(5):
            try:
                async with self._db.transaction() as repo:
                    return await op(OutboxRepo.of(repo))
            except (SQLAlchemyError, OSError) as error:
                if attempt == 4:
                    raise
                log.warning("outbox transaction failed (%s); retrying in %.1f s", error, delay)
                await asyncio.sleep(delay)
                delay *= 2
        raise AssertionError("unreachable")

    async def _run(self) -> None:
        try:
            recovered = await self._write(lambda out: out.recover_worker(self.worker_id))
            if recovered:
                log.warning("took back %d outbox item(s) of a previous run of worker %s", recovered, self.worker_id)
        except Exception:
            log.exception("recovering outbox items of worker %s failed", self.worker_id)
        while not self._stopping.is_set():
            self._kick.clear()
            free = self._concurrency - len(self._tasks)
            if free > 0:
                try:
                    items = await self._claim(free)
                except Exception:
                    log.exception("claiming outbox items failed")
                    items = []
                for item in items:
                    task = asyncio.create_task(self._deliver(item), name=f"outbox-{item.id}")
                    self._tasks.add(task)
                    task.add_done_callback(self._task_done)
                if items and len(items) == free:
                    continue
            await self._prune_sends()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._kick.wait(), self._poll)

    async def _claim(self, limit: int) -> list[OutboxItem]:
        now = self._dt(self._clock())
        return await self._write(lambda out: out.claim_due(limit, self.worker_id, now, lease=self._lease))

    async def _release(self, item: OutboxItem, when: float) -> None:
        await self._write(lambda out: out.release(item.id, self.worker_id, self._dt(when)))
        self._kick_at(when)

    def _task_done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        self._kick.set()

    async def _prune_sends(self) -> None:
        now = self._clock()
        if now < self._next_prune:
            return
        self._next_prune = now + 300.0
        keep = self._longest_window + self._margin + 60.0
        try:
            await self._write(lambda out: out.prune_sends(keep, now))
        except Exception:
            log.exception("pruning the rate-limit log failed")

    async def _sleep_or_stop(self, seconds: float) -> bool:
        """Sleep; True if the worker is stopping (then it returns early)."""
        try:
            await asyncio.wait_for(self._stopping.wait(), seconds)
        except TimeoutError:
            return False
        return True

    # --- one item -------------------------------------------------------------------------------
    async def _deliver(self, item: OutboxItem) -> None:
        began = False
        try:
            target = await self._resolve(item)
            if target is None:
                return
            payload = await self._link_thread(item, target)
            if payload is None:
                return
            if item.sending_at is not None and item.kind in self._at_most_once:
                proceed = await self._reconcile(item, "the previous attempt's outcome is unknown "
                                                "(the worker stopped or lost its lease during the request)",
                                                item.sending_at)
                if not proceed:
                    return
            if item.sending_at is not None and item.kind in self._in_doubt_after_crash:
                error = (f"in doubt: the worker stopped or lost its lease during the request. Not repeated, so "
                         f"that no second {item.kind} is posted: look for the message with channelData."
                         f"{MARKER_KEY} = {item.dedup_key!r}, then mark_done(id, ids) or retry_failed(id)")
                await self._write(lambda out: out.mark_in_doubt(item.id, error, worker_id=self.worker_id))
                log.warning("outbox item %s (%s) is in doubt: cut off by a crash", item.id, item.kind)
                return
            if await self._team_gone(item, target):
                return
            count = 2 if item.kind == "send_personal" and not target.get("conversation_id") else 1
            attempt = await self._acquire(item, count)
            if attempt is None:
                return
            began = True
            try:
                result = await self._send(item, target, payload)
            except Exception as error:
                await self._after_failure(item, attempt, error)
                return
            await self._write(lambda out: out.mark_done(item.id, result))
            log.debug("outbox item %s (%s) delivered: %s", item.id, item.kind, result)
        except Exception:
            log.exception("delivering outbox item %s failed unexpectedly", item.id)
            if not began:
                with contextlib.suppress(Exception):
                    await self._release(item, self._clock() + 1.0)

    async def _resolve(self, item: OutboxItem) -> dict[str, Any] | None:
        """The target with conversation / activity ids filled in (from ``parent``); None if handled."""
        target = dict(item.target)
        if item.kind == "reply" and not target.get("conversation_id") and target.get("root_activity_id"):
            target["conversation_id"] = thread_conversation_id(target["channel_id"], target["root_activity_id"])
        needs_parent = item.parent_key and (
            not target.get("conversation_id") or (item.kind == "update" and not target.get("activity_id"))
        )
        if not needs_parent:
            return target
        assert item.parent_key is not None
        parent_key = item.parent_key
        waiting, parent = await self._parent(item, parent_key)
        if waiting:
            return None
        if parent is not None and parent.state == DONE and parent.result:
            conversation_id = parent.result.get("conversation_id")
            root_id = parent.result.get("activity_id")
            if parent.kind == "create_thread" and root_id and ";messageid=" not in (conversation_id or ""):
                conversation_id = thread_conversation_id(parent.target["channel_id"], root_id)
            if not target.get("conversation_id"):
                target["conversation_id"] = conversation_id
            if item.kind == "update" and not target.get("activity_id"):
                target["activity_id"] = root_id
            if parent.target.get("team_id") and not target.get("team_id"):
                target["team_id"] = parent.target["team_id"]  # for the removed-from-team check
        if not target.get("conversation_id") or (item.kind == "update" and not target.get("activity_id")):
            state = parent.state if parent is not None else "missing"
            error = f"parent {parent_key!r} is {state}: no conversation to deliver into"
            await self._write(lambda out: out.mark_failed(item.id, error, worker_id=self.worker_id))
            log.warning("outbox item %s failed: %s", item.id, error)
            return None
        return target

    async def _link_thread(self, item: OutboxItem, target: dict[str, Any]) -> dict[str, Any] | None:
        """The payload to send: for a ``send_personal`` with ``link_parent``, with the thread's link filled
        in (or the fallback); None if the thread is still being created (the item is given back)."""
        link_key = target.get("link_parent") if item.kind == "send_personal" else None
        if not link_key:
            return item.payload
        waiting, parent = await self._parent(item, str(link_key))
        if waiting:
            return None
        link = None
        if parent is not None and parent.state == DONE and parent.result:
            result = parent.result
            channel_id = str(result.get("channel_id") or parent.target.get("channel_id") or "")
            root_id = str(result.get("activity_id") or "")
            if not root_id and ";messageid=" in str(result.get("conversation_id") or ""):
                root_id = str(result["conversation_id"]).rsplit(";messageid=", 1)[1]
            if channel_id and root_id:
                tenant_id = str(target.get("tenant_id") or parent.target.get("tenant_id") or "")
                group_id = target.get("group_id") or parent.target.get("group_id")
                link = thread_link(channel_id, root_id, tenant_id=tenant_id,
                                   group_id=str(group_id) if group_id else None)
        if link is not None:
            return fill_placeholder(item.payload, link)
        state = parent.state if parent is not None else "missing"
        log.info("outbox item %s: thread %r is %s; sending it without the thread's link", item.id, link_key, state)
        fallback = target.get("fallback_url")
        if fallback:
            return fill_placeholder(item.payload, str(fallback))
        return drop_placeholder_links(item.payload)

    async def _parent(self, item: OutboxItem, key: str) -> tuple[bool, OutboxItem | None]:
        """The item ``item`` depends on; (True, …) when that is still being delivered (``item`` is given back
        and tried again shortly)."""
        parent = await self._write(lambda out: out.get_by_key(key))
        if parent is not None and parent.state in ("pending", "claimed", "sending"):
            await self._release(item, self._clock() + self._parent_poll)
            return True, parent
        return False, parent

    async def _team_gone(self, item: OutboxItem, target: dict[str, Any]) -> bool:
        """True (and the item failed) if it posts into a team the bot was removed from."""
        team_id = target.get("team_id")
        if not team_id or item.kind == "send_personal":
            return False
        error = f"bot removed from team {team_id}"

        async def check(out: OutboxRepo) -> bool:
            if await TeamRepo(out.conn).is_installed(str(team_id)) is not False:
                return False
            await out.mark_failed(item.id, error, worker_id=self.worker_id)
            return True

        if not await self._write(check):
            return False
        log.warning("outbox item %s (%s) failed: %s", item.id, item.kind, error)
        return True

    def _buckets(self, item: OutboxItem) -> list[tuple[str, Sequence[RateWindow]]]:
        return [(f"thread:{item.thread_key}", self._thread_limits), (f"tenant:{item.tenant_id}", self._tenant_limits)]

    async def _acquire(self, item: OutboxItem, count: int) -> int | None:
        """Wait for a rate-limit slot and record ``sending``: the attempt number, or None (given back)."""
        buckets = self._buckets(item)
        while True:
            if self._stopping.is_set():
                await self._release(item, self._clock())
                return None
            async def reserve(out: OutboxRepo) -> tuple[float, int | None]:
                wait = await out.reserve(buckets, self._clock, count=count, margin=self._margin)
                if wait > 0:
                    return wait, None
                attempt = await out.begin_send(item.id, self.worker_id, self._dt(self._clock()), lease=self._lease)
                if attempt is None:
                    raise _LostClaim  # rolls the reservation back
                return 0.0, attempt

            try:
                wait, attempt = await self._write(reserve)
            except _LostClaim:
                log.warning("outbox item %s: claim lost (lease ran out); another worker has it", item.id)
                return None
            if attempt is not None:
                return attempt
            if wait > self._max_inline_wait or await self._sleep_or_stop(wait):
                await self._release(item, self._clock() + wait)
                return None

    async def _send(self, item: OutboxItem, target: dict[str, Any], payload: dict[str, Any] | None = None
                    ) -> dict[str, Any]:
        payload = item.payload if payload is None else payload
        service_url = target["service_url"]
        tenant_id = str(target.get("tenant_id") or "")
        if item.kind == "create_thread":
            conversation_id, root_id = await self._connector.create_thread(
                service_url, target["channel_id"], _with_marker(payload, item.dedup_key),
                tenant_id=tenant_id, team_id=target.get("team_id"), bot_id=target.get("bot_id"),
            )
            return {"conversation_id": conversation_id, "activity_id": root_id, "channel_id": target["channel_id"]}
        if item.kind == "update":
            await self._connector.update_activity(
                service_url, target["conversation_id"], target["activity_id"], payload
            )
            return {"conversation_id": target["conversation_id"], "activity_id": target["activity_id"]}
        conversation = str(target.get("conversation_id") or "")
        if item.kind == "send_personal" and not conversation:
            conversation = await self._connector.create_personal_conversation(
                service_url, target["user_id"], tenant_id=tenant_id, bot_id=target.get("bot_id")
            )
        activity_id = await self._connector.send_activity(
            service_url, conversation, _with_marker(payload, item.dedup_key)
        )
        return {"conversation_id": conversation, "activity_id": activity_id}

    def _retry_delay(self, attempt: int, retry_after: float | None) -> float:
        if retry_after is not None:  # never earlier than the service asked
            return min(retry_after, MAX_RETRY_AFTER) * self._rng.uniform(1.0, 1.2)
        return min(self._backoff_cap, self._backoff_base * 2 ** (attempt - 1)) * self._rng.uniform(0.5, 1.0)

    async def _after_failure(self, item: OutboxItem, attempt: int, error: Exception) -> None:
        description = _describe(error)
        retry_after = error.retry_after if isinstance(error, ConnectorHTTPError) else None
        if isinstance(error, ConnectorHTTPError):
            if error.status in NOT_PROCESSED_STATUSES:
                await self._retry(item, attempt, description, retry_after)
                return
            ambiguous = error.status in AMBIGUOUS_STATUSES
        elif isinstance(error, RequestNotSent):
            await self._retry(item, attempt, description, None)
            return
        else:
            ambiguous = isinstance(error, OutcomeUnknown)
        if not ambiguous:
            await self._write(lambda out: out.mark_failed(item.id, description, worker_id=self.worker_id))
            log.warning("outbox item %s (%s) failed: %s", item.id, item.kind, description)
            return
        if item.kind not in self._at_most_once:
            await self._retry(item, attempt, description, retry_after)  # at-least-once
            return
        sent_at = self._clock()
        if await self._reconcile(item, description, self._dt(sent_at), attempt=attempt):
            await self._retry(item, attempt, description + " (checked: it did not take effect)", None)

    async def _retry(self, item: OutboxItem, attempt: int, description: str, retry_after: float | None) -> None:
        if attempt >= self._max_attempts:
            error = f"gave up after {attempt} attempts: {description}"
            await self._write(lambda out: out.mark_failed(item.id, error, worker_id=self.worker_id))
            log.warning("outbox item %s (%s) failed: %s", item.id, item.kind, error)
            return
        when = self._clock() + self._retry_delay(attempt, retry_after)
        await self._write(
            lambda out: out.mark_retry(item.id, attempt, self._dt(when), description, worker_id=self.worker_id)
        )
        self._kick_at(when)

    async def _reconcile(self, item: OutboxItem, reason: str, sent_at: datetime, *, attempt: int | None = None) -> bool:
        """An at-most-once item whose last request may have taken effect. True: it certainly did not (send);
        False: handled (done with the found ids, deferred until the lookup makes sense, or in_doubt)."""
        if self._locator is None:
            error = (f"in doubt: {reason}. Not repeated, so that no second {item.kind} is made: look for the "
                     f"message with channelData.{MARKER_KEY} = {item.dedup_key!r}, then mark_done(id, ids) or "
                     f"retry_failed(id)")
            await self._write(lambda out: out.mark_in_doubt(item.id, error, worker_id=self.worker_id))
            log.warning("outbox item %s (%s) is in doubt: %s", item.id, item.kind, reason)
            return False
        ready = sent_at.timestamp() + self._reconcile_after
        if self._clock() < ready:
            attempts = attempt if attempt is not None else item.attempts
            await self._write(lambda out: out.mark_retry(
                item.id, attempts, self._dt(ready), f"in doubt, checking later: {reason}",
                worker_id=self.worker_id, keep_sending=True,
            ))
            self._kick_at(ready)
            return False
        try:
            found = await self._locator.locate(item)
        except Exception as error:
            message = f"in doubt: {reason}; the lookup failed: {_describe(error)}"
            await self._write(lambda out: out.mark_in_doubt(item.id, message, worker_id=self.worker_id))
            log.warning("outbox item %s (%s) is in doubt: %s", item.id, item.kind, message)
            return False
        if found is None:
            return True
        conversation_id, activity_id = found
        result = {"conversation_id": conversation_id, "activity_id": activity_id, "reconciled": True}
        if item.kind == "create_thread":
            result["channel_id"] = item.target.get("channel_id")
        await self._write(lambda out: out.mark_done(item.id, result))
        log.info("outbox item %s (%s) had been delivered: found %s", item.id, item.kind, conversation_id)
        return False


# --- wiring ---------------------------------------------------------------------------------------


async def start_delivery(database: Database, connector: ConnectorClient, **options: Any) -> DeliveryWorker:
    """Start a worker on the app's database and Bot Connector client (sharing its session and tokens).

    In ``bot/app.py``'s ``lifetime``: ``delivery = await start_delivery(database, connector)`` after
    ``await connector.start()``, and ``await delivery.stop()`` first in the ``finally`` block.
    """
    from bot.connector_extra import DeliveryConnector

    transport = connector if isinstance(connector, DeliveryConnector) else DeliveryConnector.sharing(connector)
    options.setdefault("worker_id", default_worker_id())
    worker = DeliveryWorker(database, transport, **options)
    await worker.start()
    return worker


def main(argv: Sequence[str] | None = None) -> None:
    """``python -m bot.delivery``: a delivery worker process on its own (same settings as the bot).

    Meant for PostgreSQL (any number of worker processes). With SQLite, run the worker inside the bot
    process (``start_delivery``): SQLite has one writer, shared by the bot and a separate worker only
    through short busy waits.
    """
    from bot.connector_extra import DeliveryConnector
    from bot.credentials import OutboundTokenProvider
    from bot.settings import Settings
    from storage.migrate import upgrade

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--database-url", help="default: DATABASE_URL / the bot's setting")
    parser.add_argument("--worker-id", default=None, help="unique among running workers (default host:pid)")
    parser.add_argument("--lease-seconds", type=float, default=60.0)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--poll-seconds", type=float, default=1.0)
    parser.add_argument("--migrate", action="store_true", help="upgrade the database schema first")
    args = parser.parse_args(argv)
    settings = Settings()
    logging.basicConfig(level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    async def run() -> None:
        database = Database(args.database_url or settings.database_url, pool_size=settings.database_pool_size)
        tokens = OutboundTokenProvider(settings.microsoft_app_id, settings.microsoft_app_password.get_secret_value(),
                                       settings.microsoft_app_type.value, settings.microsoft_app_tenant_id)
        connector = DeliveryConnector(tokens, timeout_seconds=settings.outbound_timeout_seconds)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        try:
            if args.migrate:
                await upgrade(database)
            database.start_background()
            await connector.start()
            worker = DeliveryWorker(database, connector, worker_id=args.worker_id or default_worker_id(),
                                    lease_seconds=args.lease_seconds, concurrency=args.concurrency,
                                    poll_seconds=args.poll_seconds)
            await worker.start()
            log.info("delivery worker %s started", worker.worker_id)
            await stop.wait()
            await worker.stop()
        finally:
            await connector.close()
            await tokens.close()
            await database.dispose()

    asyncio.run(run())


if __name__ == "__main__":
    main()
