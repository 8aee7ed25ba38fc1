"""ConnectorClient.team_members / member against the fake Bot Connector, and Member parsing."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from bot.connector import ConnectorClient, ConnectorError, Member
from bot.connector_extra import DeliveryConnector
from bot.credentials import OutboundTokenProvider
from tests.support.fake_connector import FakeConnector, make_member

TEAM = "19:team@thread.tacv2"
CHANNEL = "19:forum@thread.tacv2"


@pytest.fixture
async def client() -> AsyncIterator[ConnectorClient]:
    tokens = OutboundTokenProvider("", "", "SingleTenant", "")  # development mode: no token
    connector = ConnectorClient(tokens, timeout_seconds=5.0)
    await connector.start()
    try:
        yield connector
    finally:
        await connector.close()
        await tokens.close()


def roster(n: int) -> list[dict[str, Any]]:
    return [make_member(f"29:user-{i:03d}", "Bruger", f"Nr{i:03d}") for i in range(n)]


def paged_calls(connector: FakeConnector) -> list[dict[str, Any]]:
    return [c for c in connector.calls if c["kind"] == "paged_members"]


# --- Member ---------------------------------------------------------------------------------------


def test_member_from_teams_channel_account() -> None:
    data = make_member("29:anna", "Anna", "Jensen", aad_object_id="aad-anna", upn="anna@contoso.dk")
    assert Member.from_json(data) == Member(id="29:anna", aad_object_id="aad-anna", name="Anna Jensen",
                                            upn="anna@contoso.dk")


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ({"id": "29:a", "email": "a@x.dk"}, Member("29:a", "", "", "a@x.dk")),  # no UPN: the e-mail
        ({"id": "29:a", "userPrincipalName": "", "email": "a@x.dk"}, Member("29:a", "", "", "a@x.dk")),
        ({"id": "29:a", "objectId": "oid", "name": " Anna "}, Member("29:a", "oid", "Anna", "")),
        ({"id": "29:a", "aadObjectId": None, "name": 7, "email": ["x"]}, Member("29:a", "", "", "")),
        ({"name": "Uden id"}, None),
        ({"id": ""}, None),
        ({"id": 29}, None),
        ("29:a", None),
        (None, None),
    ],
)
def test_member_is_parsed_defensively(data: Any, expected: Member | None) -> None:
    assert Member.from_json(data) == expected


def test_member_is_frozen() -> None:
    member = Member("29:a", "oid", "Anna", "")
    with pytest.raises(AttributeError):
        member.name = "Bo"  # type: ignore[misc]


# --- team_members ---------------------------------------------------------------------------------


async def test_team_members_follows_continuation_tokens(connector: FakeConnector, client: ConnectorClient) -> None:
    connector.rosters[TEAM] = roster(120)
    members = await client.team_members(connector.url, TEAM, page_size=50)

    assert [m.id for m in members] == [f"29:user-{i:03d}" for i in range(120)]
    assert members[0] == Member.from_json(connector.rosters[TEAM][0])
    calls = paged_calls(connector)
    assert [c["conversation_id"] for c in calls] == [TEAM] * 3
    assert [c["query"].get("pageSize") for c in calls] == ["50"] * 3
    assert "continuationToken" not in calls[0]["query"]
    assert calls[1]["query"]["continuationToken"] and calls[2]["query"]["continuationToken"]
    assert all(c["status"] == 200 for c in calls)


async def test_team_members_stops_at_the_limit(connector: FakeConnector, client: ConnectorClient) -> None:
    connector.rosters[TEAM] = roster(120)
    members = await client.team_members(connector.url, TEAM, limit=60, page_size=50)
    assert [m.id for m in members] == [f"29:user-{i:03d}" for i in range(60)]
    assert len(paged_calls(connector)) == 2, "no page after the limit is reached"

    connector.clear()
    assert len(await client.team_members(connector.url, TEAM, limit=50, page_size=50)) == 50
    assert len(paged_calls(connector)) == 1


@pytest.mark.parametrize(("limit", "page_size"), [(200, "200"), (10, "50"), (2000, "500")])
async def test_team_members_page_size_follows_the_limit_within_teams_bounds(
    connector: FakeConnector, client: ConnectorClient, limit: int, page_size: str
) -> None:
    connector.rosters[TEAM] = roster(3)
    assert len(await client.team_members(connector.url, TEAM, limit=limit)) == 3
    (call,) = paged_calls(connector)
    assert call["query"]["pageSize"] == page_size


async def test_team_members_without_a_limit_asks_nothing(connector: FakeConnector, client: ConnectorClient) -> None:
    assert await client.team_members(connector.url, TEAM, limit=0) == []
    assert connector.calls == []


async def test_team_members_skips_entries_that_are_not_members(
    connector: FakeConnector, client: ConnectorClient
) -> None:
    connector.rosters[TEAM] = [{"name": "uden id"}, make_member("29:anna", "Anna", "Jensen"), {"id": ""}]
    assert [m.id for m in await client.team_members(connector.url, TEAM)] == ["29:anna"]


async def test_team_members_errors_raise_connector_error(connector: FakeConnector, client: ConnectorClient) -> None:
    connector.fail_next(403, writes_only=False)
    with pytest.raises(ConnectorError) as raised:
        await client.team_members(connector.url, TEAM)
    assert raised.value.status == 403


async def test_team_members_on_the_delivery_connector(connector: FakeConnector) -> None:
    tokens = OutboundTokenProvider("", "", "SingleTenant", "")
    client = DeliveryConnector(tokens, timeout_seconds=5.0)
    await client.start()
    try:
        connector.rosters[TEAM] = roster(2)
        assert len(await client.team_members(connector.url, TEAM)) == 2
        assert (await client.member(connector.url, TEAM, "29:user-001")) is not None
        assert await client.member(connector.url, TEAM, "29:ukendt") is None
    finally:
        await client.close()
        await tokens.close()


# --- member ---------------------------------------------------------------------------------------


async def test_member_by_teams_id_or_entra_object_id(connector: FakeConnector, client: ConnectorClient) -> None:
    dorte = make_member("29:dorte", "Dorte", "Madsen", aad_object_id="0d7f0b52-5b8e-4c1a-9a4e-1f2d3c4b5a69",
                        upn="dorte.madsen@contoso.dk")
    connector.rosters[TEAM] = [dorte, make_member("29:bo", "Bo", "Nielsen")]
    expected = Member("29:dorte", "0d7f0b52-5b8e-4c1a-9a4e-1f2d3c4b5a69", "Dorte Madsen", "dorte.madsen@contoso.dk")

    assert await client.member(connector.url, TEAM, "29:dorte") == expected
    assert await client.member(connector.url, TEAM, dorte["aadObjectId"]) == expected
    connector.strict_members = True
    assert await client.member(connector.url, f"{CHANNEL};messageid=17", "29:dorte") is None  # default roster
    connector.teams[TEAM] = {"channels": [{"id": TEAM, "name": None}, {"id": CHANNEL, "name": "Forum"}]}
    assert await client.member(connector.url, f"{CHANNEL};messageid=17", "29:dorte") == expected

    calls = [c for c in connector.calls if c["kind"] == "member"]
    assert [c["user_id"] for c in calls] == ["29:dorte", dorte["aadObjectId"], "29:dorte", "29:dorte"]
    assert calls[0]["conversation_id"] == TEAM


async def test_member_not_found_is_none(connector: FakeConnector, client: ConnectorClient) -> None:
    connector.rosters[TEAM] = [make_member("29:anna", "Anna", "Jensen")]
    assert await client.member(connector.url, TEAM, "29:ukendt") is None
    (call,) = connector.calls
    assert call["status"] == 404


async def test_member_errors_other_than_404_raise(connector: FakeConnector, client: ConnectorClient) -> None:
    connector.fail_next(500, writes_only=False)
    with pytest.raises(ConnectorError) as raised:
        await client.member(connector.url, TEAM, "29:anna")
    assert raised.value.status == 500
    connector.fail_next(401, writes_only=False)
    with pytest.raises(ConnectorError):
        await client.member(connector.url, TEAM, "29:anna")
