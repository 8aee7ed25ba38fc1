"""Bearer tokens for outbound calls to the Bot Connector (bot -> channel).

The token is requested for ``https://api.botframework.com/.default`` with an
azure-identity *async* credential chosen by app type:

* ``SingleTenant``    -> ``ClientSecretCredential(<configured tenant>, app_id, password)``
* ``MultiTenant``     -> ``ClientSecretCredential("botframework.com", app_id, password)``
* ``UserAssignedMSI`` -> ``ManagedIdentityCredential(client_id=app_id)``

Tokens are cached until shortly (five minutes by default) before they expire. Without an
app id (development mode) no credential is created and :meth:`OutboundTokenProvider.get_token`
returns None, i.e. outbound calls carry no Authorization header.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from types import TracebackType

from azure.core.credentials import AccessToken
from azure.core.credentials_async import AsyncTokenCredential
from azure.identity.aio import ClientSecretCredential, ManagedIdentityCredential
from botframework.connector.auth import AuthenticationConstants

BOT_CONNECTOR_SCOPE: str = f"{AuthenticationConstants.TO_CHANNEL_FROM_BOT_OAUTH_SCOPE}/.default"
MULTI_TENANT_TENANT_ID: str = AuthenticationConstants.DEFAULT_CHANNEL_AUTH_TENANT  # "botframework.com"


class TokenUnavailableError(Exception):
    """No token for the Bot Connector could be obtained (the cause is chained)."""


def create_credential(app_id: str, app_password: str, app_type: str, tenant_id: str) -> AsyncTokenCredential:
    """Build the azure-identity async credential for the given app type.

    Raises ValueError for an unknown app type or missing settings.
    """
    app_type = str(app_type)
    if not app_id:
        raise ValueError("an app id is required to create a credential")
    if app_type == "UserAssignedMSI":
        return ManagedIdentityCredential(client_id=app_id)
    if app_type == "SingleTenant":
        if not tenant_id:
            raise ValueError("SingleTenant requires the app's tenant id")
        if not app_password:
            raise ValueError("SingleTenant requires the app password")
        return ClientSecretCredential(tenant_id, app_id, app_password)
    if app_type == "MultiTenant":
        if not app_password:
            raise ValueError("MultiTenant requires the app password")
        return ClientSecretCredential(MULTI_TENANT_TENANT_ID, app_id, app_password)
    raise ValueError(f"unknown app type {app_type!r}")


class OutboundTokenProvider:
    """Supplies (and caches) the bearer token for calls to the Bot Connector.

    ``credential`` replaces the credential that would be built from the settings (tests).
    The provider owns its credential, injected or not: :meth:`close` closes it.
    """

    def __init__(
        self,
        app_id: str,
        app_password: str,
        app_type: str,
        tenant_id: str,
        *,
        credential: AsyncTokenCredential | None = None,
        scope: str = BOT_CONNECTOR_SCOPE,
        refresh_margin_seconds: float = 5 * 60,
        timeout_seconds: float = 30.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._app_id = app_id
        self._scope = scope
        self._refresh_margin = refresh_margin_seconds
        self._timeout = timeout_seconds
        self._clock = clock
        self._credential: AsyncTokenCredential | None = None
        if app_id:
            self._credential = credential or create_credential(app_id, app_password, app_type, tenant_id)
        self._token: str | None = None
        self._refresh_at = 0.0
        self._lock = asyncio.Lock()
        self._closed = False

    @property
    def development_mode(self) -> bool:
        """True when no app id is configured: outbound calls are sent without a token."""
        return not self._app_id

    async def get_token(self) -> str | None:
        """The bearer token (without the ``Bearer`` prefix), or None in development mode.

        Raises :class:`TokenUnavailableError` if the credential cannot provide a token.
        """
        if self._credential is None:
            return None
        if self._closed:
            raise TokenUnavailableError("the token provider is closed")
        token = self._cached()
        if token is not None:
            return token
        async with self._lock:
            # Another caller may have fetched a token while this one waited.
            token = self._cached()
            if token is not None:
                return token
            access_token = await self._fetch(self._credential)
            now = self._clock()
            refresh_at = access_token.expires_on - self._refresh_margin
            if refresh_at <= now:
                # Short-lived token: use it for half of its remaining lifetime.
                refresh_at = now + max(0.0, access_token.expires_on - now) / 2
            self._token = access_token.token
            self._refresh_at = refresh_at
            return self._token

    async def close(self) -> None:
        """Close the credential (idempotent)."""
        if self._closed:
            return
        self._closed = True
        self._token = None
        if self._credential is not None:
            await self._credential.close()

    async def __aenter__(self) -> OutboundTokenProvider:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()

    def _cached(self) -> str | None:
        if self._token is not None and self._clock() < self._refresh_at:
            return self._token
        return None

    async def _fetch(self, credential: AsyncTokenCredential) -> AccessToken:
        try:
            async with asyncio.timeout(self._timeout):
                access_token = await credential.get_token(self._scope)
        except TimeoutError as exc:
            raise TokenUnavailableError("timed out while acquiring a Bot Connector token") from exc
        except Exception as exc:
            raise TokenUnavailableError(
                f"could not acquire a Bot Connector token: {type(exc).__name__}"
            ) from exc
        if not access_token.token:
            raise TokenUnavailableError("the credential returned an empty token")
        return access_token
