"""Tests for bot.auth (inbound JWT validation) and bot.credentials (outbound tokens).

A fake OpenID metadata + JWKS server runs on 127.0.0.1 (random port); tokens are signed
with RSA keys generated for the test session.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import jwt
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from azure.core.credentials import AccessToken
from azure.core.exceptions import ClientAuthenticationError
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

from bot import credentials as credentials_module
from bot.auth import BOT_FRAMEWORK_TOKEN_ISSUER, AuthError, RequestAuthenticator
from bot.credentials import BOT_CONNECTOR_SCOPE, OutboundTokenProvider, TokenUnavailableError

APP_ID = "00000000-1111-2222-3333-444444444444"
SERVICE_URL = "https://smba.trafficmanager.net/emea/"
TEAMS_KID = "teams-key"
WEBCHAT_KID = "webchat-only-key"


# --------------------------------------------------------------------------- fixtures


@dataclass
class Keys:
    teams: rsa.RSAPrivateKey
    webchat_only: rsa.RSAPrivateKey
    rogue: rsa.RSAPrivateKey


@pytest.fixture(scope="module")
def keys() -> Keys:
    def new() -> rsa.RSAPrivateKey:
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)

    return Keys(teams=new(), webchat_only=new(), rogue=new())


def _jwk(private_key: rsa.RSAPrivateKey, kid: str, endorsements: list[str]) -> dict[str, Any]:
    jwk = RSAAlgorithm.to_jwk(private_key.public_key(), as_dict=True)
    jwk.update({"kid": kid, "use": "sig", "endorsements": endorsements})
    return jwk


@dataclass
class FakeIdentityServer:
    """OpenID metadata + JWKS endpoints; counts every request it receives."""

    server: TestServer
    requests: list[str] = field(default_factory=list)
    fail: bool = False
    delay: float = 0.0

    @property
    def metadata_url(self) -> str:
        return str(self.server.make_url("/v1/.well-known/openidconfiguration"))

    @property
    def request_count(self) -> int:
        return len(self.requests)


@pytest.fixture
async def identity_server(keys: Keys) -> AsyncIterator[FakeIdentityServer]:
    jwks = {
        "keys": [
            _jwk(keys.teams, TEAMS_KID, ["msteams", "webchat", "skype"]),
            _jwk(keys.webchat_only, WEBCHAT_KID, ["webchat"]),
        ]
    }
    state: dict[str, FakeIdentityServer] = {}

    async def metadata(request: web.Request) -> web.Response:
        fake = state["fake"]
        fake.requests.append(request.path)
        if fake.delay:
            await asyncio.sleep(fake.delay)
        if fake.fail:
            return web.Response(status=500)
        return web.json_response(
            {
                "issuer": BOT_FRAMEWORK_TOKEN_ISSUER,
                "jwks_uri": str(request.url.with_path("/v1/.well-known/keys")),
                "id_token_signing_alg_values_supported": ["RS256"],
            }
        )

    async def keyset(request: web.Request) -> web.Response:
        state["fake"].requests.append(request.path)
        return web.json_response(jwks)

    app = web.Application()
    app.router.add_get("/v1/.well-known/openidconfiguration", metadata)
    app.router.add_get("/v1/.well-known/keys", keyset)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    fake = FakeIdentityServer(server=server)
    state["fake"] = fake
    try:
        yield fake
    finally:
        await server.close()


@pytest.fixture
def authenticator(identity_server: FakeIdentityServer) -> RequestAuthenticator:
    return RequestAuthenticator(
        app_id=APP_ID,
        app_password="secret",
        app_type="SingleTenant",
        tenant_id="contoso.onmicrosoft.com",
        openid_metadata_url=identity_server.metadata_url,
        http_timeout_seconds=2.0,
    )


def _claims(**overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    claims: dict[str, Any] = {
        "iss": BOT_FRAMEWORK_TOKEN_ISSUER,
        "aud": APP_ID,
        "serviceurl": SERVICE_URL,
        "nbf": now - 60,
        "iat": now - 60,
        "exp": now + 3600,
    }
    claims.update(overrides)
    return {k: v for k, v in claims.items() if v is not None}


def _token(
    key: rsa.RSAPrivateKey,
    kid: str | None = TEAMS_KID,
    algorithm: str = "RS256",
    **claim_overrides: Any,
) -> str:
    headers = {"kid": kid} if kid is not None else {}
    return jwt.encode(_claims(**claim_overrides), key, algorithm=algorithm, headers=headers)


def _activity(channel_id: str | None = "msteams", service_url: str | None = SERVICE_URL) -> dict[str, Any]:
    activity: dict[str, Any] = {"type": "message", "id": "1", "text": "hej"}
    if channel_id is not None:
        activity["channelId"] = channel_id
    if service_url is not None:
        activity["serviceUrl"] = service_url
    return activity


# --------------------------------------------------------------------------- inbound: accepted


async def test_valid_token_is_accepted(
    authenticator: RequestAuthenticator, identity_server: FakeIdentityServer, keys: Keys
) -> None:
    await authenticator.authenticate(f"Bearer {_token(keys.teams)}", _activity())
    assert identity_server.requests == ["/v1/.well-known/openidconfiguration", "/v1/.well-known/keys"]


async def test_signing_keys_are_cached(
    authenticator: RequestAuthenticator, identity_server: FakeIdentityServer, keys: Keys
) -> None:
    for _ in range(3):
        await authenticator.authenticate(f"Bearer {_token(keys.teams)}", _activity())
    assert identity_server.request_count == 2


async def test_concurrent_requests_fetch_keys_once(
    authenticator: RequestAuthenticator, identity_server: FakeIdentityServer, keys: Keys
) -> None:
    header = f"Bearer {_token(keys.teams)}"
    await asyncio.gather(*(authenticator.authenticate(header, _activity()) for _ in range(5)))
    assert identity_server.request_count == 2


async def test_expiry_within_clock_skew_is_accepted(authenticator: RequestAuthenticator, keys: Keys) -> None:
    token = _token(keys.teams, exp=int(time.time()) - 120)
    await authenticator.authenticate(f"Bearer {token}", _activity())


async def test_key_endorsed_for_the_activity_channel_is_accepted(
    authenticator: RequestAuthenticator, keys: Keys
) -> None:
    token = _token(keys.webchat_only, kid=WEBCHAT_KID)
    await authenticator.authenticate(f"Bearer {token}", _activity(channel_id="webchat"))


async def test_development_mode_accepts_everything(identity_server: FakeIdentityServer) -> None:
    authenticator = RequestAuthenticator(
        app_id="",
        app_password="",
        app_type="MultiTenant",
        tenant_id="",
        openid_metadata_url=identity_server.metadata_url,
    )
    assert authenticator.development_mode
    await authenticator.authenticate(None, _activity())
    await authenticator.authenticate("Bearer garbage", {})
    assert identity_server.request_count == 0


def test_production_mode_flag_and_default_metadata_url() -> None:
    authenticator = RequestAuthenticator(APP_ID, "secret", "UserAssignedMSI", "tenant")
    assert not authenticator.development_mode
    assert (
        authenticator.openid_metadata_url
        == "https://login.botframework.com/v1/.well-known/openidconfiguration"
    )


def test_unknown_app_type_is_refused() -> None:
    with pytest.raises(ValueError, match="app type"):
        RequestAuthenticator(APP_ID, "secret", "Tenantless", "tenant")


# --------------------------------------------------------------------------- inbound: structural, offline


def _now() -> int:
    return int(time.time())


# Headers that must be refused without contacting the metadata server.
FORGED_HEADERS: dict[str, Callable[[Keys], str | None]] = {
    "missing header": lambda k: None,
    "empty header": lambda k: "",
    "no scheme": lambda k: _token(k.teams),
    "basic scheme": lambda k: "Basic dXNlcjpwYXNz",
    "bearer without token": lambda k: "Bearer",
    "three parts": lambda k: f"Bearer {_token(k.teams)} extra",
    "garbage": lambda k: "Bearer not-a-jwt",
    "garbage with dots": lambda k: "Bearer aaa.bbb.ccc",
    "huge token": lambda k: "Bearer " + "a" * 20000,
    "wrong audience": lambda k: f"Bearer {_token(k.teams, aud='someone-else')}",
    "audience list": lambda k: f"Bearer {_token(k.teams, aud=[APP_ID])}",
    "missing audience": lambda k: f"Bearer {_token(k.teams, aud=None)}",
    "wrong issuer": lambda k: f"Bearer {_token(k.teams, iss='https://sts.windows.net/evil/')}",
    "missing issuer": lambda k: f"Bearer {_token(k.teams, iss=None)}",
    "expired": lambda k: f"Bearer {_token(k.teams, exp=_now() - 10 * 60)}",
    "missing expiry": lambda k: f"Bearer {_token(k.teams, exp=None)}",
    "not yet valid": lambda k: f"Bearer {_token(k.teams, nbf=_now() + 10 * 60)}",
    "hs256": lambda k: (
        "Bearer " + jwt.encode(_claims(), "secret" * 8, algorithm="HS256", headers={"kid": TEAMS_KID})
    ),
    "alg none": lambda k: (
        "Bearer " + jwt.encode(_claims(), None, algorithm="none", headers={"kid": TEAMS_KID})
    ),
    "missing kid": lambda k: f"Bearer {_token(k.teams, kid=None)}",
    "serviceurl mismatch": lambda k: f"Bearer {_token(k.teams, serviceurl='https://evil.example/')}",
    "serviceurl missing": lambda k: f"Bearer {_token(k.teams, serviceurl=None)}",
}


@pytest.mark.parametrize("case", list(FORGED_HEADERS))
async def test_structural_rejections_are_offline(
    case: str, authenticator: RequestAuthenticator, identity_server: FakeIdentityServer, keys: Keys
) -> None:
    header = FORGED_HEADERS[case](keys)
    with pytest.raises(AuthError) as info:
        await authenticator.authenticate(header, _activity())
    assert info.value.reason
    assert identity_server.request_count == 0


@pytest.mark.parametrize(
    "activity",
    [
        _activity(channel_id=None),
        _activity(service_url=None),
        _activity(service_url="https://other.example/"),
    ],
    ids=["no channelId", "no serviceUrl", "other serviceUrl"],
)
async def test_activity_fields_are_required_and_matched(
    activity: dict[str, Any],
    authenticator: RequestAuthenticator,
    identity_server: FakeIdentityServer,
    keys: Keys,
) -> None:
    with pytest.raises(AuthError):
        await authenticator.authenticate(f"Bearer {_token(keys.teams)}", activity)
    assert identity_server.request_count == 0


async def test_activity_that_is_not_an_object_is_refused(
    authenticator: RequestAuthenticator, keys: Keys
) -> None:
    with pytest.raises(AuthError):
        await authenticator.authenticate(f"Bearer {_token(keys.teams)}", None)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- inbound: needs the keys


async def test_token_signed_by_another_key_is_refused(
    authenticator: RequestAuthenticator, identity_server: FakeIdentityServer, keys: Keys
) -> None:
    token = _token(keys.rogue, kid=TEAMS_KID)
    with pytest.raises(AuthError, match="signature"):
        await authenticator.authenticate(f"Bearer {token}", _activity())
    assert identity_server.request_count == 2


async def test_key_not_endorsed_for_msteams_is_refused(
    authenticator: RequestAuthenticator, keys: Keys
) -> None:
    token = _token(keys.webchat_only, kid=WEBCHAT_KID)
    with pytest.raises(AuthError, match="endorsed"):
        await authenticator.authenticate(f"Bearer {token}", _activity(channel_id="msteams"))


async def test_unknown_key_id_is_refused_and_refresh_is_rate_limited(
    authenticator: RequestAuthenticator, identity_server: FakeIdentityServer, keys: Keys
) -> None:
    for _ in range(3):
        with pytest.raises(AuthError, match="not found"):
            await authenticator.authenticate(f"Bearer {_token(keys.rogue, kid='random-kid')}", _activity())
    assert identity_server.request_count == 2


async def test_unknown_key_id_triggers_refresh_once_interval_passed(
    identity_server: FakeIdentityServer, keys: Keys
) -> None:
    authenticator = RequestAuthenticator(
        APP_ID,
        "secret",
        "MultiTenant",
        "",
        identity_server.metadata_url,
        unknown_kid_refresh_interval_seconds=0,
    )
    await authenticator.authenticate(f"Bearer {_token(keys.teams)}", _activity())
    with pytest.raises(AuthError):
        await authenticator.authenticate(f"Bearer {_token(keys.rogue, kid='new-kid')}", _activity())
    assert identity_server.request_count == 4


async def test_metadata_server_error_is_auth_error(
    authenticator: RequestAuthenticator, identity_server: FakeIdentityServer, keys: Keys
) -> None:
    identity_server.fail = True
    with pytest.raises(AuthError, match="unavailable"):
        await authenticator.authenticate(f"Bearer {_token(keys.teams)}", _activity())
    # The failure is remembered for a while: no request storm while the endpoint is down.
    with pytest.raises(AuthError, match="unavailable"):
        await authenticator.authenticate(f"Bearer {_token(keys.teams)}", _activity())
    assert identity_server.request_count == 1


async def test_metadata_fetch_times_out_quickly(identity_server: FakeIdentityServer, keys: Keys) -> None:
    identity_server.delay = 2.0
    authenticator = RequestAuthenticator(
        APP_ID, "secret", "SingleTenant", "tenant", identity_server.metadata_url, http_timeout_seconds=0.2
    )
    started = time.monotonic()
    with pytest.raises(AuthError):
        await authenticator.authenticate(f"Bearer {_token(keys.teams)}", _activity())
    assert time.monotonic() - started < 1.5


async def test_unreachable_metadata_server_is_auth_error(keys: Keys) -> None:
    authenticator = RequestAuthenticator(
        APP_ID, "secret", "SingleTenant", "tenant", "http://127.0.0.1:1/openid", http_timeout_seconds=1.0
    )
    with pytest.raises(AuthError):
        await authenticator.authenticate(f"Bearer {_token(keys.teams)}", _activity())


def test_http_timeout_is_capped() -> None:
    with pytest.raises(ValueError, match="timeout"):
        RequestAuthenticator(APP_ID, "secret", "SingleTenant", "tenant", http_timeout_seconds=30)


# --------------------------------------------------------------------------- outbound token provider


class StubCredential:
    """Stands in for an azure-identity async credential."""

    def __init__(self, clock: Callable[[], float], lifetime: float = 3600) -> None:
        self._clock = clock
        self.lifetime = lifetime
        self.calls: list[tuple[str, ...]] = []
        self.closed = 0
        self.error: Exception | None = None

    async def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        self.calls.append(scopes)
        await asyncio.sleep(0)
        if self.error is not None:
            raise self.error
        return AccessToken(f"token-{len(self.calls)}", int(self._clock() + self.lifetime))

    async def close(self) -> None:
        self.closed += 1


class FakeClock:
    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


def _provider(credential: StubCredential, clock: FakeClock, app_id: str = APP_ID) -> OutboundTokenProvider:
    return OutboundTokenProvider(
        app_id,
        "secret",
        "SingleTenant",
        "tenant",
        credential=credential,
        clock=clock,  # type: ignore[arg-type]
    )


async def test_token_is_cached() -> None:
    clock = FakeClock()
    credential = StubCredential(clock)
    provider = _provider(credential, clock)
    assert await provider.get_token() == "token-1"
    clock.now += 1800
    assert await provider.get_token() == "token-1"
    assert credential.calls == [(BOT_CONNECTOR_SCOPE,)]
    assert BOT_CONNECTOR_SCOPE == "https://api.botframework.com/.default"


async def test_token_is_refreshed_five_minutes_before_expiry() -> None:
    clock = FakeClock()
    credential = StubCredential(clock)
    provider = _provider(credential, clock)
    start = clock.now
    assert await provider.get_token() == "token-1"
    clock.now = start + 3600 - 301
    assert await provider.get_token() == "token-1"
    clock.now = start + 3600 - 299
    assert await provider.get_token() == "token-2"
    assert len(credential.calls) == 2


async def test_short_lived_token_is_used_for_half_its_lifetime() -> None:
    clock = FakeClock()
    credential = StubCredential(clock, lifetime=120)
    provider = _provider(credential, clock)
    assert await provider.get_token() == "token-1"
    clock.now += 59
    assert await provider.get_token() == "token-1"
    clock.now += 2
    assert await provider.get_token() == "token-2"


async def test_concurrent_callers_share_one_fetch() -> None:
    clock = FakeClock()
    credential = StubCredential(clock)
    provider = _provider(credential, clock)
    tokens = await asyncio.gather(*(provider.get_token() for _ in range(5)))
    assert tokens == ["token-1"] * 5
    assert len(credential.calls) == 1


async def test_development_mode_returns_none() -> None:
    clock = FakeClock()
    credential = StubCredential(clock)
    provider = _provider(credential, clock, app_id="")
    assert provider.development_mode
    assert await provider.get_token() is None
    assert credential.calls == []
    await provider.close()


async def test_development_mode_creates_no_credential() -> None:
    provider = OutboundTokenProvider("", "", "SingleTenant", "")
    assert await provider.get_token() is None
    await provider.close()


async def test_credential_failure_becomes_token_unavailable() -> None:
    clock = FakeClock()
    credential = StubCredential(clock)
    credential.error = ClientAuthenticationError("AADSTS7000215: invalid client secret")
    provider = _provider(credential, clock)
    with pytest.raises(TokenUnavailableError):
        await provider.get_token()
    credential.error = None
    assert await provider.get_token() == "token-2"


async def test_close_closes_the_credential() -> None:
    clock = FakeClock()
    credential = StubCredential(clock)
    async with _provider(credential, clock) as provider:
        await provider.get_token()
    await provider.close()
    assert credential.closed == 1
    with pytest.raises(TokenUnavailableError):
        await provider.get_token()


@pytest.mark.parametrize(
    ("app_type", "tenant_id", "expected"),
    [
        ("SingleTenant", "contoso-tenant", ("ClientSecretCredential", ("contoso-tenant", APP_ID, "pw"), {})),
        ("MultiTenant", "ignored", ("ClientSecretCredential", ("botframework.com", APP_ID, "pw"), {})),
        ("UserAssignedMSI", "ignored", ("ManagedIdentityCredential", (), {"client_id": APP_ID})),
    ],
)
async def test_credential_type_follows_app_type(
    app_type: str,
    tenant_id: str,
    expected: tuple[str, tuple[Any, ...], dict[str, Any]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    created: list[tuple[str, tuple[Any, ...], dict[str, Any]]] = []

    def recorder(name: str) -> Callable[..., StubCredential]:
        def factory(*args: Any, **kwargs: Any) -> StubCredential:
            created.append((name, args, kwargs))
            return StubCredential(time.time)

        return factory

    monkeypatch.setattr(credentials_module, "ClientSecretCredential", recorder("ClientSecretCredential"))
    monkeypatch.setattr(
        credentials_module, "ManagedIdentityCredential", recorder("ManagedIdentityCredential")
    )
    provider = OutboundTokenProvider(APP_ID, "pw", app_type, tenant_id)
    assert created == [expected]
    await provider.close()


@pytest.mark.parametrize("app_type", ["SingleTenant", "MultiTenant", "UserAssignedMSI"])
async def test_real_azure_credentials_can_be_built_and_closed(app_type: str) -> None:
    provider = OutboundTokenProvider(APP_ID, "pw", app_type, "contoso.onmicrosoft.com")
    await provider.close()


@pytest.mark.parametrize(
    ("app_type", "password", "tenant_id"),
    [
        ("SingleTenant", "pw", ""),
        ("SingleTenant", "", "tenant"),
        ("MultiTenant", "", ""),
        ("Other", "pw", "t"),
    ],
)
def test_incomplete_settings_are_refused(app_type: str, password: str, tenant_id: str) -> None:
    with pytest.raises(ValueError):
        OutboundTokenProvider(APP_ID, password, app_type, tenant_id)
