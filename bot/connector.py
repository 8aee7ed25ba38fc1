"""A lean async Bot Connector client (send, reply, update, team and member look-ups) on one shared aiohttp session.

The SDK's ConnectorClient (msrest) is built anew for every turn and sends through ``requests`` in a
thread pool; this client reuses connections and never blocks the event loop.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import aiohttp

from bot.credentials import OutboundTokenProvider

log = logging.getLogger(__name__)


class ConnectorError(Exception):
    def __init__(self, status: int, body: str) -> None:
        super().__init__(f"Bot Connector answered {status}: {body[:200]}")
        self.status = status


@dataclass(frozen=True)
class Member:
    """A member of a team or conversation as the Bot Connector describes it.

    ``id`` is the Teams id (``29:…``), ``aad_object_id`` the Entra object id, ``upn`` the user principal
    name (or the e-mail address when Teams gives no UPN; ``""`` when it gives neither).
    """

    id: str
    aad_object_id: str
    name: str
    upn: str

    @classmethod
    def from_json(cls, data: Any) -> Member | None:
        """A ``TeamsChannelAccount`` dict as a Member; None if it is not one (no ``id``)."""
        if not isinstance(data, dict):
            return None

        def text(*keys: str) -> str:
            for key in keys:
                value = data.get(key)
                if isinstance(value, str) and value.strip():
                    return value.strip()
            return ""

        member_id = text("id")
        if not member_id:
            return None
        return cls(id=member_id, aad_object_id=text("aadObjectId", "objectId"), name=text("name"),
                   upn=text("userPrincipalName", "email"))


class ConnectorClient:
    def __init__(self, tokens: OutboundTokenProvider, *, timeout_seconds: float = 10.0) -> None:
        self._tokens = tokens
        self._timeout = aiohttp.ClientTimeout(total=timeout_seconds)
        self._session: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        connector = aiohttp.TCPConnector(limit=200, limit_per_host=100, ttl_dns_cache=300)
        self._session = aiohttp.ClientSession(connector=connector, timeout=self._timeout,
                                              json_serialize=lambda o: json.dumps(o, ensure_ascii=False))

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def _headers(self) -> dict[str, str]:
        headers = {"Content-Type": "application/json; charset=utf-8"}
        token = await self._tokens.get_token()
        if token:
            headers["Authorization"] = f"Bearer {token}"
        return headers

    async def _call(self, method: str, url: str, body: dict[str, Any]) -> dict[str, Any]:
        assert self._session is not None, "ConnectorClient.start() was not called"
        data = json.dumps(body, ensure_ascii=False).encode("utf-8")
        async with self._session.request(method, url, data=data, headers=await self._headers()) as response:
            text = await response.text()
            if response.status >= 300:
                raise ConnectorError(response.status, text)
        return self._parse_body(text)

    async def _get(self, url: str) -> dict[str, Any]:
        assert self._session is not None, "ConnectorClient.start() was not called"
        async with self._session.get(url, headers=await self._headers()) as response:
            text = await response.text()
            if response.status >= 300:
                raise ConnectorError(response.status, text)
        return self._parse_body(text)

    async def team_details(self, service_url: str, team_id: str) -> dict[str, Any]:
        """``GET /v3/teams/{teamId}``: the team's name and AAD group id (async; not TeamsInfo's blocking call)."""
        return await self._get(f"{service_url.rstrip('/')}/v3/teams/{quote(team_id, safe='')}")

    async def team_channels(self, service_url: str, team_id: str) -> dict[str, str]:
        """``GET /v3/teams/{teamId}/conversations``: channel id → name (General has no name: "General")."""
        result = await self._get(f"{service_url.rstrip('/')}/v3/teams/{quote(team_id, safe='')}/conversations")
        channels = result.get("conversations") or []
        return {
            str(c["id"]): str(c.get("name") or "General")
            for c in channels
            if isinstance(c, dict) and c.get("id")
        }

    async def team_members(
        self, service_url: str, team_id: str, *, limit: int = 200, page_size: int | None = None
    ) -> list[Member]:
        """``GET /v3/conversations/{teamId}/pagedmembers``: up to ``limit`` members of a team (or chat),
        following ``continuationToken`` page by page. ``page_size`` defaults to ``limit`` within the
        50–500 Teams accepts. Entries that are not members (no id) are skipped."""
        if limit <= 0:
            return []
        size = page_size if page_size is not None else min(max(limit, 50), 500)
        base = f"{service_url.rstrip('/')}/v3/conversations/{quote(team_id, safe='')}/pagedmembers?pageSize={size}"
        members: list[Member] = []
        token: str | None = None
        seen: set[str] = set()
        while True:
            url = base if token is None else f"{base}&continuationToken={quote(token, safe='')}"
            page = await self._get(url)
            entries = page.get("members")
            for entry in entries if isinstance(entries, list) else []:
                member = Member.from_json(entry)
                if member is not None:
                    members.append(member)
                    if len(members) >= limit:
                        return members
            next_token = page.get("continuationToken")
            if not isinstance(next_token, str) or not next_token or next_token in seen:
                return members
            seen.add(next_token)
            token = next_token

    async def member(self, service_url: str, conversation_id: str, user_id: str) -> Member | None:
        """``GET /v3/conversations/{id}/members/{userId}``: one member of a team or conversation, by Teams id
        (``29:…``) or Entra object id; None if Teams does not know them there (404)."""
        url = (f"{service_url.rstrip('/')}/v3/conversations/{quote(conversation_id, safe='')}"
               f"/members/{quote(user_id, safe='')}")
        try:
            result = await self._get(url)
        except ConnectorError as error:
            if error.status == 404:
                return None
            raise
        return Member.from_json(result)

    @staticmethod
    def _parse_body(text: str) -> dict[str, Any]:
        """The JSON object of a Bot Connector answer ({} when there is none)."""
        if not text:
            return {}
        try:
            parsed = json.loads(text)
        except ValueError:
            return {}
        return parsed if isinstance(parsed, dict) else {}

    @staticmethod
    def _base(service_url: str, conversation_id: str) -> str:
        return f"{service_url.rstrip('/')}/v3/conversations/{quote(conversation_id, safe='')}/activities"

    async def send(self, service_url: str, conversation_id: str, activity: dict[str, Any],
                   reply_to_id: str | None = None) -> str | None:
        url = self._base(service_url, conversation_id)
        if reply_to_id:
            url += f"/{quote(reply_to_id, safe='')}"
        result = await self._call("POST", url, activity)
        return result.get("id")

    async def update(self, service_url: str, conversation_id: str, activity_id: str, activity: dict[str, Any]) -> None:
        body = {**activity, "id": activity_id}
        await self._call("PUT", f"{self._base(service_url, conversation_id)}/{quote(activity_id, safe='')}", body)
