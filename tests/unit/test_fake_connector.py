"""The fake Bot Connector, the Teams activity factories and the load harness."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Mapping
from typing import Any
from urllib.parse import quote

import aiohttp
import pytest
from aiohttp import web
from botbuilder.schema import Activity, ActivityTypes

from bench.harness import LoadResult, percentile, run_load
from tests.support import activities
from tests.support.fake_connector import FakeConnector, make_member

CHANNEL_THREAD = "19:abc@thread.tacv2;messageid=1700000000000"


@pytest.fixture
async def connector() -> AsyncIterator[FakeConnector]:
    async with FakeConnector() as fc:
        yield fc


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


def conv_url(connector: FakeConnector, conversation_id: str, *rest: str) -> str:
    return "/".join([f"{connector.url}/v3/conversations/{quote(conversation_id, safe='')}", *rest])


async def call(
    http: aiohttp.ClientSession, method: str, url: str, body: Any = None, **headers: str
) -> tuple[int, Any, Mapping[str, str]]:
    async with http.request(method, url, json=body, headers=headers) as resp:
        data = await resp.json() if resp.content_type == "application/json" else None
        return resp.status, data, resp.headers


# ---------------------------------------------------------------------- routes and recording


async def test_url_is_loopback_with_port(connector: FakeConnector) -> None:
    assert connector.url.startswith("http://127.0.0.1:")
    assert connector.port > 0


async def test_send_and_reply_are_recorded(connector: FakeConnector, http: aiohttp.ClientSession) -> None:
    seen: list[dict[str, Any]] = []
    connector.on_send = seen.append
    t0 = time.monotonic()

    status, data, _ = await call(
        http,
        "POST",
        conv_url(connector, "a:1", "activities"),
        {"type": "message", "text": "hej"},
        Authorization="Bearer tok",
    )
    assert status == 200
    first_id = data["id"]
    status, data, _ = await call(
        http,
        "POST",
        conv_url(connector, CHANNEL_THREAD, "activities", "17"),
        {"type": "message", "text": "svar"},
    )
    assert status == 200
    assert data["id"] != first_id

    assert [a["text"] for a in connector.sent()] == ["hej", "svar"]
    assert [a["text"] for a in connector.sent("a:1")] == ["hej"]
    assert [a["text"] for a in connector.sent(CHANNEL_THREAD)] == ["svar"]
    assert [a["text"] for a in seen] == ["hej", "svar"]

    send, reply = connector.calls
    assert send["kind"] == "send" and reply["kind"] == "reply"
    assert send["method"] == "POST"
    assert send["headers"]["Authorization"] == "Bearer tok"
    assert send["result_id"] == first_id
    assert reply["conversation_id"] == CHANNEL_THREAD  # URL-decoded
    assert reply["activity_id"] == "17"
    assert t0 <= send["t"] <= reply["t"] <= time.monotonic()


async def test_update_and_delete(connector: FakeConnector, http: aiohttp.ClientSession) -> None:
    status, data, _ = await call(
        http, "PUT", conv_url(connector, "a:1", "activities", "42"), {"type": "message", "text": "ny"}
    )
    assert (status, data) == (200, {"id": "42"})
    status, _, _ = await call(http, "DELETE", conv_url(connector, "a:1", "activities", "43"))
    assert status == 200

    assert connector.updates() == [{"type": "message", "text": "ny", "id": "42"}]
    assert connector.deletes() == [("a:1", "43")]
    assert connector.sent() == []


async def test_create_channel_thread(connector: FakeConnector, http: aiohttp.ClientSession) -> None:
    body = {
        "isGroup": True,
        "channelData": {"channel": {"id": "19:forum@thread.tacv2"}},
        "activity": {"type": "message", "text": "Ny sag"},
        "tenantId": "tenant-1",
    }
    status, data, _ = await call(http, "POST", f"{connector.url}/v3/conversations", body)
    assert status in (200, 201)
    assert data["id"] == f"19:forum@thread.tacv2;messageid={data['activityId']}"

    (created,) = connector.created_conversations()
    assert created["id"] == data["id"]
    assert created["activityId"] == data["activityId"]
    assert created["channelId"] == "19:forum@thread.tacv2"
    assert created["activity"]["text"] == "Ny sag"


async def test_create_personal_conversation(connector: FakeConnector, http: aiohttp.ClientSession) -> None:
    body = {"isGroup": False, "members": [{"id": "29:anna"}], "tenantId": "tenant-1"}
    status, data, _ = await call(http, "POST", f"{connector.url}/v3/conversations", body)
    assert status in (200, 201)
    assert data["id"].startswith("a:")
    assert "activityId" not in data


async def test_members_and_teams(connector: FakeConnector, http: aiohttp.ClientSession) -> None:
    status, members, _ = await call(http, "GET", conv_url(connector, CHANNEL_THREAD, "members"))
    assert status == 200
    assert members and all(m["id"].startswith("29:") and m["aadObjectId"] for m in members)

    status, member, _ = await call(http, "GET", conv_url(connector, "a:1", "members", members[0]["id"]))
    assert status == 200 and member == members[0]
    status, member, _ = await call(http, "GET", conv_url(connector, "a:1", "members", "29:ukendt"))
    assert status == 200 and member["id"] == "29:ukendt" and member["name"]

    team = quote("19:team@thread.tacv2", safe="")
    status, info, _ = await call(http, "GET", f"{connector.url}/v3/teams/{team}")
    assert status == 200
    assert info["id"] == "19:team@thread.tacv2" and info["name"] and info["aadGroupId"]
    status, channels, _ = await call(http, "GET", f"{connector.url}/v3/teams/{team}/conversations")
    assert status == 200
    ids = [c["id"] for c in channels["conversations"]]
    assert ids[0] == "19:team@thread.tacv2"  # General channel has the team's id
    assert len(ids) >= 2

    assert [c["kind"] for c in connector.calls] == ["members", "member", "member", "team", "channels"]


async def test_strict_members_404(http: aiohttp.ClientSession) -> None:
    async with FakeConnector(strict_members=True) as connector:
        status, data, _ = await call(http, "GET", conv_url(connector, "a:1", "members", "29:ukendt"))
    assert status == 404
    assert data["error"]["code"] == "MemberNotFoundInConversation"


TEAM = "19:team@thread.tacv2"


async def test_paged_members_follow_continuation_tokens(connector: FakeConnector, http: aiohttp.ClientSession) -> None:
    connector.rosters[TEAM] = [make_member(f"29:u{i}", "Bruger", f"Nr{i}") for i in range(5)]
    pages: list[list[str]] = []
    token: str | None = None
    while True:
        url = conv_url(connector, TEAM, "pagedmembers") + "?pageSize=2"
        if token is not None:
            url += f"&continuationToken={quote(token, safe='')}"
        status, page, _ = await call(http, "GET", url)
        assert status == 200
        pages.append([m["id"] for m in page["members"]])
        token = page.get("continuationToken")
        if token is None:
            break
    assert pages == [["29:u0", "29:u1"], ["29:u2", "29:u3"], ["29:u4"]]

    calls = connector.calls
    assert [c["kind"] for c in calls] == ["paged_members"] * 3
    assert all(c["conversation_id"] == TEAM and c["query"]["pageSize"] == "2" for c in calls)
    assert "continuationToken" not in calls[0]["query"] and calls[2]["query"]["continuationToken"]


async def test_paged_members_defaults_and_bad_arguments(connector: FakeConnector, http: aiohttp.ClientSession) -> None:
    status, page, _ = await call(http, "GET", conv_url(connector, "a:1", "pagedmembers"))
    assert status == 200 and "continuationToken" not in page
    assert [m["id"] for m in page["members"]] == [m["id"] for m in connector.members]  # the default roster

    connector.rosters[TEAM] = [make_member(f"29:u{i}", "Bruger", f"Nr{i}") for i in range(3)]
    paged = conv_url(connector, TEAM, "pagedmembers")
    _, page, _ = await call(http, "GET", paged + "?pageSize=1")
    token = quote(page["continuationToken"], safe="")
    status, page, _ = await call(http, "GET", paged + f"?pageSize=5&continuationToken={token}")
    assert status == 200 and [m["id"] for m in page["members"]] == ["29:u1", "29:u2"]

    for query in ("?pageSize=abc", "?pageSize=0", "?continuationToken=nonsense"):
        status, data, _ = await call(http, "GET", paged + query)
        assert status == 400 and data["error"]["code"] == "BadArgument", query
    # a token belongs to its conversation
    status, _, _ = await call(http, "GET", conv_url(connector, "a:1", "pagedmembers") + f"?continuationToken={token}")
    assert status == 400


async def test_rosters_per_team_channel_and_thread(connector: FakeConnector, http: aiohttp.ClientSession) -> None:
    dorte = make_member("29:dorte", "Dorte", "Madsen", aad_object_id="aad-dorte", upn="dorte@contoso.dk")
    connector.rosters[TEAM] = [dorte]
    connector.teams[TEAM] = {"channels": [{"id": TEAM, "name": None}, {"id": "19:forum@thread.tacv2", "name": "Forum"}]}
    connector.rosters["a:chat"] = [make_member("29:anna", "Anna", "Jensen")]

    for conversation in (TEAM, "19:forum@thread.tacv2", "19:forum@thread.tacv2;messageid=17"):
        status, members, _ = await call(http, "GET", conv_url(connector, conversation, "members"))
        assert (status, [m["id"] for m in members]) == (200, ["29:dorte"]), conversation
        for user in ("29:dorte", "aad-dorte", "dorte@contoso.dk"):
            status, member, _ = await call(http, "GET", conv_url(connector, conversation, "members", user))
            assert (status, member) == (200, dorte)
        status, data, _ = await call(http, "GET", conv_url(connector, conversation, "members", "29:anna"))
        assert status == 404 and data["error"]["code"] == "MemberNotFoundInConversation"

    status, member, _ = await call(http, "GET", conv_url(connector, "a:chat", "members", "29:anna"))
    assert status == 200 and member["name"] == "Anna Jensen"
    status, _, _ = await call(http, "GET", conv_url(connector, "a:chat", "members", "29:dorte"))
    assert status == 404
    # other conversations keep the default roster (and synthesize unknown members)
    status, member, _ = await call(http, "GET", conv_url(connector, "a:other", "members", "29:dorte"))
    assert status == 200 and member["id"] == "29:dorte"

    status, info, _ = await call(http, "GET", f"{connector.url}/v3/teams/{quote(TEAM, safe='')}")
    assert info["memberCount"] == 1
    member_calls = [c for c in connector.calls if c["kind"] == "member"]
    assert member_calls[1]["user_id"] == "aad-dorte" and member_calls[1]["status"] == 200
    assert member_calls[3]["status"] == 404


async def test_wait_for_and_clear(connector: FakeConnector, http: aiohttp.ClientSession) -> None:
    async def later() -> None:
        await asyncio.sleep(0.05)
        await call(http, "POST", conv_url(connector, "a:2", "activities"), {"type": "message", "text": "sen"})

    task = asyncio.create_task(later())
    got = await connector.wait_for(lambda c: c["kind"] == "send" and c["conversation_id"] == "a:2", timeout=5)
    await task
    assert got["body"]["text"] == "sen"
    # already-recorded calls match immediately
    assert (await connector.wait_for(lambda c: c["method"] == "POST", timeout=0.01)) is got

    with pytest.raises(TimeoutError):
        await connector.wait_for(lambda c: c["kind"] == "delete", timeout=0.05)

    connector.clear()
    assert connector.calls == [] and connector.sent() == []


# ---------------------------------------------------------------------- faults


async def test_fail_every_third_write_with_retry_after(
    connector: FakeConnector, http: aiohttp.ClientSession
) -> None:
    connector.fail_every(3, 429, retry_after=1)
    statuses = []
    for i in range(7):
        status, data, headers = await call(
            http, "POST", conv_url(connector, "a:1", "activities"), {"type": "message", "text": str(i)}
        )
        statuses.append(status)
        if status == 429:
            assert headers["Retry-After"] == "1"
            assert data["error"]["code"] == "Throttled"
        else:
            assert "Retry-After" not in headers
    assert statuses == [200, 200, 429, 200, 200, 429, 200]

    # reads are not writes: they neither fail nor advance the counter
    status, _, _ = await call(http, "GET", conv_url(connector, "a:1", "members"))
    assert status == 200
    status, _, _ = await call(http, "PUT", conv_url(connector, "a:1", "activities", "1"), {"type": "message"})
    assert status == 200  # 8th write
    status, _, _ = await call(http, "DELETE", conv_url(connector, "a:1", "activities", "1"))
    assert status == 429  # 9th write

    # failed sends are recorded but are not "sent" and do not trigger on_send
    assert [a["text"] for a in connector.sent()] == ["0", "1", "3", "4", "6"]
    assert [c["status"] for c in connector.calls if c["kind"] == "send"] == statuses

    connector.clear_faults()
    status, _, _ = await call(http, "POST", conv_url(connector, "a:1", "activities"), {"type": "message"})
    assert status == 200


async def test_fail_next(connector: FakeConnector, http: aiohttp.ClientSession) -> None:
    seen: list[dict[str, Any]] = []
    connector.on_send = seen.append
    connector.fail_next(503, n=2, retry_after=0.5)
    status, _, _ = await call(http, "GET", conv_url(connector, "a:1", "members"))
    assert status == 200  # writes only by default
    results = []
    for _ in range(3):
        status, _, headers = await call(
            http, "POST", conv_url(connector, "a:1", "activities"), {"type": "message"}
        )
        results.append((status, headers.get("Retry-After")))
    assert results == [(503, "0.5"), (503, "0.5"), (200, None)]
    assert len(seen) == 1

    connector.fail_next(500, writes_only=False)
    status, _, _ = await call(http, "GET", conv_url(connector, "a:1", "members"))
    assert status == 500


async def test_delay(http: aiohttp.ClientSession) -> None:
    async with FakeConnector(delay=0.1) as connector:
        start = time.monotonic()
        status, _, _ = await call(http, "POST", conv_url(connector, "a:1", "activities"), {"type": "message"})
        assert status == 200
        assert time.monotonic() - start >= 0.09
        connector.delay = 0
        start = time.monotonic()
        await call(http, "POST", conv_url(connector, "a:1", "activities"), {"type": "message"})
        assert time.monotonic() - start < 0.09


# ---------------------------------------------------------------------- activity factories

COMMON = {"conversation_id": "a:1", "user_id": "29:anna", "service_url": "http://127.0.0.1:1"}


def check_envelope(activity: dict[str, Any]) -> None:
    assert activity["id"] and activity["timestamp"].endswith("Z")
    assert activity["channelId"] == "msteams"
    assert activity["serviceUrl"] == "http://127.0.0.1:1"
    assert activity["from"]["id"] == "29:anna" and activity["from"]["aadObjectId"]
    assert activity["recipient"] == {"id": "28:bot", "name": "Opgaveflytning"}
    assert activity["conversation"] == {"id": "a:1", "conversationType": "personal", "tenantId": "tenant-1"}
    assert activity["channelData"]["tenant"] == {"id": "tenant-1"}
    assert activity["locale"] == "da-DK"
    # botbuilder can read it
    parsed = Activity().deserialize(activity)
    assert parsed.type == activity["type"]
    assert parsed.conversation.id == "a:1"
    assert parsed.from_property.aad_object_id == activity["from"]["aadObjectId"]


def test_message_shape() -> None:
    a = activities.message("hej", **COMMON)
    check_envelope(a)
    assert a["type"] == ActivityTypes.message and a["text"] == "hej"
    assert not any(e["type"] == "mention" for e in a["entities"])
    b = activities.message("hej", **COMMON)
    assert a["id"] != b["id"]
    assert a["from"]["aadObjectId"] == b["from"]["aadObjectId"]  # stable per user
    assert activities.message("x", activity_id="fixed", aad_object_id="aad-1", **COMMON)["id"] == "fixed"


def test_message_mention_in_channel() -> None:
    a = activities.message(
        "ny sag",
        conversation_id=CHANNEL_THREAD,
        user_id="29:bo",
        service_url="http://127.0.0.1:1",
        mention_bot=True,
        team_id="19:team@thread.tacv2",
        channel_id="19:abc@thread.tacv2",
    )
    assert a["text"] == "<at>Opgaveflytning</at> ny sag"
    mention = a["entities"][0]
    assert mention == {
        "type": "mention",
        "text": "<at>Opgaveflytning</at>",
        "mentioned": {"id": "28:bot", "name": "Opgaveflytning"},
    }
    assert a["conversation"]["conversationType"] == "channel" and a["conversation"]["isGroup"] is True
    assert a["channelData"]["team"] == {"id": "19:team@thread.tacv2"}
    assert a["channelData"]["channel"] == {"id": "19:abc@thread.tacv2"}
    parsed = Activity().deserialize(a)
    assert parsed.entities[0].type == "mention"


def test_submit_shape() -> None:
    a = activities.submit({"verb": "gem", "x": 1}, reply_to_id="card-1", **COMMON)
    check_envelope(a)
    assert a["type"] == "message" and "text" not in a
    assert a["value"] == {"verb": "gem", "x": 1}
    assert a["replyToId"] == "card-1"


def test_execute_shape() -> None:
    a = activities.execute("gem", {"sag": 7}, **COMMON)
    check_envelope(a)
    assert a["type"] == "invoke"
    assert a["name"] == "adaptiveCard/action"
    assert a["value"] == {
        "action": {"type": "Action.Execute", "verb": "gem", "data": {"sag": 7}},
        "trigger": "manual",
    }


def test_installation_and_conversation_update_shape() -> None:
    a = activities.installation_update(**COMMON)
    check_envelope(a)
    assert (a["type"], a["action"]) == ("installationUpdate", "add")
    assert activities.installation_update("remove", **COMMON)["action"] == "remove"

    c = activities.conversation_update_members_added(**COMMON)
    check_envelope(c)
    assert c["type"] == "conversationUpdate"
    assert c["membersAdded"] == [{"id": "28:bot"}]
    u = activities.conversation_update_members_added(bot_added=False, **COMMON)
    assert u["membersAdded"][0]["id"] == "29:anna"


def test_bind() -> None:
    acts = activities.bind(**COMMON)
    assert acts.message("hej")["conversation"]["id"] == "a:1"
    assert acts.message("hej", conversation_id="a:2")["conversation"]["id"] == "a:2"
    assert acts.execute("v", {})["name"] == "adaptiveCard/action"


# ---------------------------------------------------------------------- harness


def test_percentile() -> None:
    assert percentile([1, 2, 3, 4], 50) == 2.5
    assert percentile([5], 99) == 5
    r = LoadResult(turns=10, errors=0, duration=1.0, turns_per_s=10.0, p50_ms=1.0, p99_ms=2.0)
    assert "10.0" in r.row("x")


async def test_run_load_against_tiny_bot(connector: FakeConnector) -> None:
    """A minimal aiohttp 'bot' that replies through the fake connector, except in conversation a:mute."""
    session = aiohttp.ClientSession()

    async def messages(request: web.Request) -> web.Response:
        activity = await request.json()
        conv = activity["conversation"]["id"]
        if conv != "a:mute":
            url = f"{activity['serviceUrl']}/v3/conversations/{quote(conv, safe='')}/activities/{activity['id']}"
            reply = {"type": "message", "text": "Echo: " + activity["text"], "conversation": {"id": conv}}
            async with session.post(url, json=reply) as resp:
                await resp.read()
        return web.Response(status=201)

    app = web.Application()
    app.router.add_post("/api/messages", messages)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    bot_url = f"http://127.0.0.1:{runner.addresses[0][1]}/api/messages"
    previous_hook: list[dict[str, Any]] = []
    connector.on_send = previous_hook.append
    try:

        def make_turn(conv: int, turn: int) -> tuple[dict[str, Any], str]:
            cid = f"a:{conv}"
            return activities.message(
                f"t{turn}", conversation_id=cid, user_id="29:u", service_url=connector.url
            ), cid

        result = await run_load(
            bot_url,
            make_turn,
            conversations=5,
            turns_per_conversation=4,
            connector=connector,
            expect_reply=True,
            warmup_turns=1,
        )
        assert (result.turns, result.errors) == (20, 0)
        assert result.turns_per_s > 0 and 0 < result.p50_ms <= result.p99_ms
        assert len(connector.sent()) == 25  # warm-up included
        assert len(previous_hook) == 25  # the caller's on_send hook is chained ...
        assert connector.on_send == previous_hook.append  # ... and restored

        def mute(conv: int, turn: int) -> tuple[dict[str, Any], str]:
            return activities.message(
                "x", conversation_id="a:mute", user_id="29:u", service_url=connector.url
            ), "a:mute"

        result = await run_load(
            bot_url,
            mute,
            conversations=1,
            turns_per_conversation=2,
            connector=connector,
            expect_reply=True,
            timeout=0.2,
        )
        assert (result.turns, result.errors) == (0, 2)
        assert "no reply" in result.error_samples[0]

        result = await run_load(
            bot_url, mute, conversations=1, turns_per_conversation=2, connector=connector, expect_reply=False
        )
        assert (result.turns, result.errors) == (2, 0)
    finally:
        await session.close()
        await runner.cleanup()
