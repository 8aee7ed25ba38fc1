"""A lean async Bot Connector client (send, reply, update) on one shared aiohttp session.

The SDK's ConnectorClient (msrest) is built anew for every turn and sends through ``requests`` in a
thread pool; this client reuses connections and never blocks the event loop.
"""

from __future__ import annotations

import json
import logging
from typing import Any
from urllib.parse import quote

import aiohttp

from bot.credentials import OutboundTokenProvider

log = logging.getLogger(__name__)


class ConnectorError(Exception):
    def __init__(self, status: int, body: str) -> None:
        super().__init__(f"Bot Connector answered {status}: {body[:200]}")
        self.status = status


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
