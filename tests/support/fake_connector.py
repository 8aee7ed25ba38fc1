"""An in-process fake of the Bot Connector REST service, for tests and benchmarks.

``FakeConnector`` is a small aiohttp server bound to 127.0.0.1 that runs inside the caller's event
loop. Point the activities you send to the bot at it (``serviceUrl = connector.url``) and every outgoing
Bot Connector call the bot makes (send, reply, update, delete, create conversation, members, team
details) lands here, is answered with plausible Teams data and is recorded.

Usage::

    async with FakeConnector() as connector:
        activity = activities.message("hej", conversation_id="a:1", user_id="29:anna",
                                      service_url=connector.url)
        ...  # POST the activity to the bot
        call = await connector.wait_for(lambda c: c["kind"] == "send")
        assert connector.sent("a:1")[0]["text"] == "..."

Every call is recorded as a dict (see ``FakeConnector.calls``) with the keys

``method``, ``path``
    HTTP method and the raw request path.
``kind``
    ``"send"`` (POST .../activities), ``"reply"`` (POST .../activities/{id}), ``"update"`` (PUT),
    ``"delete"``, ``"create_conversation"``, ``"members"``, ``"member"``, ``"paged_members"``,
    ``"team"``, ``"channels"``.
``conversation_id``, ``activity_id``, ``user_id``, ``team_id``
    The (URL-decoded) path parameters, ``None`` where the route has none.
``query``
    The (URL-decoded) query parameters as a plain dict, e.g. ``{"pageSize": "50"}``.
``body``
    The parsed JSON body (``None`` for requests without one).
``headers``
    The request headers as a plain dict (so ``headers.get("Authorization")``).
``t``
    ``time.monotonic()`` when the request was received (before any injected delay).
``status``
    The status the fake answered with (injected faults included).
``result_id``
    The id the fake assigned: the new activity id for send/reply, the activity id for update, the
    new conversation id for create_conversation; otherwise ``None``.

Faults (``fail_next``/``fail_every``) apply to *writes* (POST/PUT/DELETE) by default; failed calls are
recorded with their status but do not appear in ``sent()``/``updates()``/``created_conversations()`` and
do not trigger ``on_send``. Nothing is logged per request, so the fake sustains thousands of requests
per second.

Rosters: ``members`` is the default roster of every conversation. ``rosters[team_or_conversation_id]``
replaces it for one team or conversation (``make_member`` builds the Teams dicts)::

    connector.rosters["19:team@thread.tacv2"] = [make_member("29:anna", "Anna", "Jensen"), ...]

A roster of a team also answers for the team's channels (listed in ``teams``) and for threads in them
(``"{channelId};messageid={rootId}"``). ``GET .../pagedmembers`` pages it (``pageSize``, default 200, at most
500; a ``continuationToken`` while more follow; an unknown token is a 400). ``GET .../members/{userId}``
finds a member by Teams id, Entra object id or UPN; in a configured roster an unknown user is a 404
(``MemberNotFoundInConversation``), in the default roster a synthesized member unless ``strict_members``.
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
import time
import uuid
from collections.abc import Callable
from typing import Any, Self

from aiohttp import web

__all__ = ["Call", "FakeConnector", "Predicate", "make_member"]

Call = dict[str, Any]
Predicate = Callable[[Call], bool]

_WRITE_METHODS = frozenset({"POST", "PUT", "DELETE"})

_DEFAULT_MEMBERS: tuple[tuple[str, str, str, str], ...] = (
    # (id suffix, given name, surname, role)
    ("anna", "Anna", "Jensen", "user"),
    ("bo", "Bo", "Nielsen", "user"),
    ("carla", "Carla", "Hansen", "user"),
)


def _member(user_id: str, tenant_id: str, given: str = "Test", surname: str = "Bruger") -> dict[str, Any]:
    """A Teams channel account as ``GET .../members`` returns it."""
    return make_member(user_id, given, surname, tenant_id=tenant_id)


def make_member(
    user_id: str,
    given: str = "Test",
    surname: str = "Bruger",
    *,
    tenant_id: str = "tenant-1",
    aad_object_id: str | None = None,
    upn: str | None = None,
) -> dict[str, Any]:
    """A Teams channel account (``TeamsChannelAccount``) as the member routes return it. The Entra object id
    is derived from ``user_id`` unless given; the UPN (and e-mail) from the name unless given."""
    local = (given + "." + surname).lower().replace(" ", "")
    address = upn if upn is not None else f"{local}@example.dk"
    return {
        "id": user_id,
        "name": f"{given} {surname}",
        "aadObjectId": aad_object_id or str(uuid.uuid5(uuid.NAMESPACE_URL, f"aad:{user_id}")),
        "givenName": given,
        "surname": surname,
        "email": address,
        "userPrincipalName": address,
        "tenantId": tenant_id,
        "userRole": "user",
    }


class FakeConnector:
    """Fake Bot Connector on ``127.0.0.1`` (see the module docstring for the record format).

    :param port: TCP port; ``0`` (default) picks a free one. ``url`` is valid after ``start()``.
    :param delay: seconds to wait before answering every request (settable at any time).
    :param on_send: sync callable invoked with the activity dict of every accepted send/reply
        (cheap hook for benchmarks to timestamp replies). Settable at any time.
    :param tenant_id: tenant id used in synthesized members.
    :param members: the default roster (Teams channel-account dicts): what the member routes answer for
        a conversation without a roster of its own. Defaults to three test users. ``GET .../members/{userId}``
        answers with the matching member, or a synthesized one for unknown ids (unless ``strict_members``,
        then 404 like Teams' ``MemberNotFoundInConversation``).
    :param rosters: ``{team_or_conversation_id: [member, ...]}``: the roster of one team (also its channels
        and their threads) or conversation; unknown users are a 404 there. Settable at any time.
    :param teams: ``{team_id: {"name": ..., "channels": [{"id": ..., "name": ...}, ...]}}`` for the team
        routes; unknown teams get a synthesized team with a General channel (id == team id) and one more.
    """

    def __init__(
        self,
        *,
        port: int = 0,
        delay: float = 0.0,
        on_send: Callable[[dict[str, Any]], object] | None = None,
        tenant_id: str = "tenant-1",
        members: list[dict[str, Any]] | None = None,
        strict_members: bool = False,
        teams: dict[str, dict[str, Any]] | None = None,
        rosters: dict[str, list[dict[str, Any]]] | None = None,
    ) -> None:
        self.delay = delay
        self.on_send = on_send
        self.tenant_id = tenant_id
        self.members: list[dict[str, Any]] = (
            members
            if members is not None
            else [_member(f"29:{s}", tenant_id, g, n) for s, g, n, _ in _DEFAULT_MEMBERS]
        )
        self.strict_members = strict_members
        self.teams: dict[str, dict[str, Any]] = teams if teams is not None else {}
        self.rosters: dict[str, list[dict[str, Any]]] = rosters if rosters is not None else {}
        #: Every recorded call, in arrival order.
        self.calls: list[Call] = []

        self._port = port
        self._runner: web.AppRunner | None = None
        self._url: str | None = None
        self._ids = itertools.count(int(time.time() * 1000))
        self._waiters: list[tuple[Predicate, asyncio.Future[Call]]] = []
        # fault injection
        self._fail_queue: list[tuple[int, float | None, bool]] = []
        self._fail_every: tuple[int, int, float | None, bool] | None = None
        self._write_count = 0

    # ------------------------------------------------------------------ lifecycle

    @property
    def url(self) -> str:
        """Base URL (``http://127.0.0.1:<port>``, no trailing slash) to use as ``serviceUrl``."""
        if self._url is None:
            raise RuntimeError("FakeConnector is not started")
        return self._url

    @property
    def port(self) -> int:
        return int(self.url.rsplit(":", 1)[1])

    async def start(self) -> None:
        if self._runner is not None:
            return
        app = web.Application(client_max_size=16 * 1024 * 1024)
        r = app.router
        r.add_post("/v3/conversations", self._create_conversation)
        r.add_post("/v3/conversations/{conversationId}/activities", self._send)
        r.add_post("/v3/conversations/{conversationId}/activities/{activityId}", self._reply)
        r.add_put("/v3/conversations/{conversationId}/activities/{activityId}", self._update)
        r.add_delete("/v3/conversations/{conversationId}/activities/{activityId}", self._delete)
        r.add_get("/v3/conversations/{conversationId}/members", self._members)
        r.add_get("/v3/conversations/{conversationId}/pagedmembers", self._paged_members)
        r.add_get("/v3/conversations/{conversationId}/members/{userId}", self._member)
        r.add_get("/v3/teams/{teamId}", self._team)
        r.add_get("/v3/teams/{teamId}/conversations", self._channels)
        runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=1.0)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", self._port, backlog=1024)
        await site.start()
        self._runner = runner
        self._url = f"http://127.0.0.1:{runner.addresses[0][1]}"

    async def stop(self) -> None:
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()
        for _, fut in self._waiters:
            if not fut.done():
                fut.cancel()
        self._waiters.clear()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # ------------------------------------------------------------------ inspection

    def sent(self, conversation_id: str | None = None) -> list[dict[str, Any]]:
        """Activities accepted by send/reply (POST .../activities[/{id}]), optionally for one conversation
        (exact match on the path's conversation id, e.g. ``"19:x@thread.tacv2;messageid=1"``)."""
        return [
            c["body"]
            for c in self.calls
            if c["kind"] in ("send", "reply")
            and c["status"] < 300
            and (conversation_id is None or c["conversation_id"] == conversation_id)
        ]

    def updates(self, conversation_id: str | None = None) -> list[dict[str, Any]]:
        """Activities accepted by update (PUT .../activities/{id}); ``activity["id"]`` is the path id."""
        out = []
        for c in self.calls:
            if c["kind"] == "update" and c["status"] < 300:
                if conversation_id is None or c["conversation_id"] == conversation_id:
                    activity = dict(c["body"] or {})
                    activity.setdefault("id", c["activity_id"])
                    out.append(activity)
        return out

    def deletes(self) -> list[tuple[str, str]]:
        """``(conversation_id, activity_id)`` of accepted deletes."""
        return [
            (c["conversation_id"], c["activity_id"])
            for c in self.calls
            if c["kind"] == "delete" and c["status"] < 300
        ]

    def created_conversations(self) -> list[dict[str, Any]]:
        """Conversations created via POST /v3/conversations, each as
        ``{"id", "activityId", "channelId", "isGroup", "tenantId", "activity", "members", "body"}``
        (``channelId`` is ``channelData.channel.id`` or ``None``; ``activity`` is the root activity)."""
        out = []
        for c in self.calls:
            if c["kind"] == "create_conversation" and c["status"] < 300:
                body = c["body"] or {}
                out.append(
                    {
                        "id": c["result_id"],
                        "activityId": c["activity_id"],
                        "channelId": ((body.get("channelData") or {}).get("channel") or {}).get("id"),
                        "isGroup": body.get("isGroup"),
                        "tenantId": body.get("tenantId"),
                        "activity": body.get("activity"),
                        "members": body.get("members"),
                        "body": body,
                    }
                )
        return out

    async def wait_for(self, predicate: Predicate, timeout: float = 5.0) -> Call:  # noqa: ASYNC109
        """Return the first recorded call (already recorded or arriving within ``timeout`` seconds)
        for which ``predicate(call)`` is true; raise ``TimeoutError`` otherwise."""
        for call in self.calls:
            if predicate(call):
                return call
        fut: asyncio.Future[Call] = asyncio.get_running_loop().create_future()
        entry = (predicate, fut)
        self._waiters.append(entry)
        try:
            return await asyncio.wait_for(fut, timeout)
        except TimeoutError:
            raise TimeoutError(
                f"no matching Bot Connector call within {timeout}s; {len(self.calls)} calls recorded: "
                + ", ".join(f"{c['method']} {c['path']} -> {c['status']}" for c in self.calls[-10:])
            ) from None
        finally:
            if entry in self._waiters:
                self._waiters.remove(entry)

    def clear(self) -> None:
        """Forget recorded calls and injected faults (the ``delay`` and ``on_send`` settings stay)."""
        self.calls.clear()
        self.clear_faults()

    # ------------------------------------------------------------------ fault injection

    def fail_next(
        self, status: int, n: int = 1, retry_after: float | None = None, *, writes_only: bool = True
    ) -> None:
        """Answer the next ``n`` writes (POST/PUT/DELETE; every request if ``writes_only=False``) with
        ``status`` and a Bot Connector error body, plus ``Retry-After: <retry_after>`` if given."""
        self._fail_queue.extend([(status, retry_after, writes_only)] * n)

    def fail_every(
        self, k: int, status: int, retry_after: float | None = None, *, writes_only: bool = True
    ) -> None:
        """Answer every ``k``-th write (the k-th, 2k-th, ... counted from now; every request if
        ``writes_only=False``) with ``status`` (+ ``Retry-After`` if given). ``k <= 0`` turns it off."""
        self._write_count = 0
        self._fail_every = (k, status, retry_after, writes_only) if k > 0 else None

    def clear_faults(self) -> None:
        self._fail_queue.clear()
        self._fail_every = None
        self._write_count = 0

    def _fault(self, method: str) -> tuple[int, float | None] | None:
        is_write = method in _WRITE_METHODS
        if self._fail_queue:
            status, retry_after, writes_only = self._fail_queue[0]
            if is_write or not writes_only:
                del self._fail_queue[0]
                if is_write:
                    self._write_count += 1
                return status, retry_after
        if self._fail_every is not None:
            k, status, retry_after, writes_only = self._fail_every
            if is_write or not writes_only:
                self._write_count += 1
                if self._write_count % k == 0:
                    return status, retry_after
        return None

    # ------------------------------------------------------------------ request handling

    def _next_id(self) -> str:
        return str(next(self._ids))

    async def _handle(
        self,
        request: web.Request,
        kind: str,
        respond: Callable[[Call], tuple[int, Any]],
    ) -> web.StreamResponse:
        t = time.monotonic()
        match = request.match_info
        body: Any = None
        if request.body_exists:
            raw = await request.read()
            if raw:
                try:
                    body = json.loads(raw)
                except ValueError:
                    body = raw.decode("utf-8", "replace")
        call: Call = {
            "method": request.method,
            "path": request.path,
            "kind": kind,
            "conversation_id": match.get("conversationId"),
            "activity_id": match.get("activityId"),
            "user_id": match.get("userId"),
            "team_id": match.get("teamId"),
            "query": dict(request.query),
            "body": body,
            "headers": dict(request.headers),
            "t": t,
            "status": 0,
            "result_id": None,
        }
        fault = self._fault(request.method)
        if fault is not None:
            status, retry_after = fault
            call["status"] = status
            payload: Any = {"error": {"code": _error_code(status), "message": f"Injected fault {status}"}}
            headers = {"Retry-After": _fmt_retry_after(retry_after)} if retry_after is not None else None
        else:
            status, payload = respond(call)
            call["status"] = status
            headers = None
        self._record(call)
        if fault is None and kind in ("send", "reply") and self.on_send is not None:
            self.on_send(body)
        if self.delay:
            await asyncio.sleep(self.delay)
        if status == 204 or payload is None:
            return web.Response(status=status, headers=headers)
        return web.Response(
            status=status, body=json.dumps(payload).encode(), content_type="application/json", headers=headers
        )

    def _record(self, call: Call) -> None:
        self.calls.append(call)
        if self._waiters:
            for predicate, fut in list(self._waiters):
                if not fut.done() and predicate(call):
                    fut.set_result(call)

    # routes

    async def _send(self, request: web.Request) -> web.StreamResponse:
        return await self._handle(request, "send", self._respond_new_activity)

    async def _reply(self, request: web.Request) -> web.StreamResponse:
        return await self._handle(request, "reply", self._respond_new_activity)

    def _respond_new_activity(self, call: Call) -> tuple[int, Any]:
        new_id = self._next_id()
        call["result_id"] = new_id
        return 200, {"id": new_id}

    async def _update(self, request: web.Request) -> web.StreamResponse:
        def respond(call: Call) -> tuple[int, Any]:
            call["result_id"] = call["activity_id"]
            return 200, {"id": call["activity_id"]}

        return await self._handle(request, "update", respond)

    async def _delete(self, request: web.Request) -> web.StreamResponse:
        return await self._handle(request, "delete", lambda call: (200, None))

    async def _create_conversation(self, request: web.Request) -> web.StreamResponse:
        def respond(call: Call) -> tuple[int, Any]:
            body = call["body"] if isinstance(call["body"], dict) else {}
            channel_id = ((body.get("channelData") or {}).get("channel") or {}).get("id")
            root_id = self._next_id()
            if channel_id:
                conversation_id = f"{channel_id};messageid={root_id}"
            elif body.get("isGroup"):
                conversation_id = f"19:{uuid.uuid4().hex}@thread.v2"
            else:
                conversation_id = f"a:{uuid.uuid4().hex}"
            call["conversation_id"] = conversation_id
            call["activity_id"] = root_id if body.get("activity") else None
            call["result_id"] = conversation_id
            result: dict[str, Any] = {"id": conversation_id}
            if body.get("activity"):
                result["activityId"] = root_id
            return 201, result

        return await self._handle(request, "create_conversation", respond)

    def roster(self, conversation_id: str) -> tuple[list[dict[str, Any]], bool]:
        """The members of a team or conversation and whether that roster was configured (``rosters``):
        the conversation's own, its channel's (for a thread), its team's (for a channel), else ``members``."""
        base = conversation_id.split(";messageid=", 1)[0]
        for key in (conversation_id, base):
            if key in self.rosters:
                return self.rosters[key], True
        for team_id, roster in self.rosters.items():
            channels = (self.teams.get(team_id) or {}).get("channels") or []
            if base == team_id or any(c.get("id") == base for c in channels):
                return roster, True
        return self.members, False

    async def _members(self, request: web.Request) -> web.StreamResponse:
        return await self._handle(request, "members", lambda call: (200, self.roster(call["conversation_id"])[0]))

    async def _paged_members(self, request: web.Request) -> web.StreamResponse:
        def respond(call: Call) -> tuple[int, Any]:
            members, _ = self.roster(call["conversation_id"])
            query = call["query"]
            try:
                size = min(int(query.get("pageSize") or _DEFAULT_PAGE_SIZE), _MAX_PAGE_SIZE)
                start = _page_offset(query.get("continuationToken"), call["conversation_id"])
            except ValueError as error:
                return 400, {"error": {"code": "BadArgument", "message": str(error)}}
            if size <= 0:
                return 400, {"error": {"code": "BadArgument", "message": "pageSize must be positive"}}
            end = start + size
            page: dict[str, Any] = {"members": members[start:end]}
            if end < len(members):
                page["continuationToken"] = _page_token(call["conversation_id"], end)
            return 200, page

        return await self._handle(request, "paged_members", respond)

    async def _member(self, request: web.Request) -> web.StreamResponse:
        def respond(call: Call) -> tuple[int, Any]:
            user_id = call["user_id"]
            members, configured = self.roster(call["conversation_id"])
            for m in members:
                if user_id in (m.get("id"), m.get("aadObjectId"), m.get("userPrincipalName")):
                    return 200, m
            if configured or self.strict_members:
                return 404, {"error": {"code": "MemberNotFoundInConversation", "message": "Member not found"}}
            return 200, _member(user_id, self.tenant_id)

        return await self._handle(request, "member", respond)

    def _team_info(self, team_id: str) -> dict[str, Any]:
        team = self.teams.get(team_id) or {}
        return {
            "id": team_id,
            "name": team.get("name", "Opgaveflytning Test"),
            "aadGroupId": team.get("aadGroupId", str(uuid.uuid5(uuid.NAMESPACE_URL, f"group:{team_id}"))),
            "channelCount": len(self._team_channels(team_id)),
            "memberCount": len(self.roster(team_id)[0]),
            "type": "standard",
        }

    def _team_channels(self, team_id: str) -> list[dict[str, Any]]:
        team = self.teams.get(team_id) or {}
        if "channels" in team:
            return list(team["channels"])
        # Teams lists the General channel with the team's id and no name.
        return [{"id": team_id, "name": None}, {"id": "19:forum@thread.tacv2", "name": "Forum"}]

    async def _team(self, request: web.Request) -> web.StreamResponse:
        return await self._handle(request, "team", lambda call: (200, self._team_info(call["team_id"])))

    async def _channels(self, request: web.Request) -> web.StreamResponse:
        return await self._handle(
            request, "channels", lambda call: (200, {"conversations": self._team_channels(call["team_id"])})
        )


_DEFAULT_PAGE_SIZE = 200
_MAX_PAGE_SIZE = 500


def _page_token(conversation_id: str, offset: int) -> str:
    """An opaque continuation token (the offset of the next page, bound to the conversation)."""
    raw = json.dumps([conversation_id, offset]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _page_offset(token: str | None, conversation_id: str) -> int:
    if not token:
        return 0
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        bound_to, offset = json.loads(raw)
    except (ValueError, TypeError) as error:
        raise ValueError("invalid continuationToken") from error
    if bound_to != conversation_id or not isinstance(offset, int) or offset < 0:
        raise ValueError("invalid continuationToken")
    return offset


def _error_code(status: int) -> str:
    return {
        400: "BadArgument",
        401: "Unauthorized",
        403: "BotNotInConversationRoster",
        404: "ConversationNotFound",
        412: "PreconditionFailed",
        429: "Throttled",
        500: "ServiceError",
        502: "ServiceError",
        503: "ServiceUnavailable",
    }.get(status, "ServiceError")


def _fmt_retry_after(seconds: float) -> str:
    return str(int(seconds)) if float(seconds).is_integer() else f"{seconds:g}"
