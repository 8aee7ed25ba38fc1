"""Authentication of inbound Bot Framework requests (channel -> bot).

Every activity the Bot Connector posts to the messaging endpoint carries an
``Authorization: Bearer <jwt>`` header. The token is accepted only when:

* it is a well-formed JWT signed with an allowed RSA algorithm and carries a ``kid``;
* ``iss`` is ``https://api.botframework.com`` and ``aud`` is the bot's app id;
* it is not expired (five minutes of clock skew are tolerated, as in the SDK);
* its ``serviceurl`` claim equals the activity's ``serviceUrl``;
* the signing key is published in the Bot Framework's OpenID metadata (JWKS) and its
  ``endorsements`` list contains the activity's ``channelId``;
* the signature verifies against that key.

The rules, constants and clock skew are those of ``botframework.connector.auth``
(``ChannelValidation`` + ``JwtTokenExtractor``). The SDK classes themselves are not
used because they fetch the signing keys with blocking ``requests.get`` calls without a
timeout (stalling the event loop), keep the keys in a process-wide class attribute, skip
the endorsement check for keys without an ``endorsements`` list and let unexpected
exceptions (e.g. an unknown ``kid``) escape. This module performs the same checks with
PyJWT and an asynchronous aiohttp fetch with a short timeout, a per-instance key cache,
and fails closed.

All claims that can be checked without the signing keys are checked first, so forged or
stale tokens are refused without any network traffic.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TypeGuard

import aiohttp
import jwt
from botframework.connector.auth import AuthenticationConstants, ChannelValidation

logger = logging.getLogger(__name__)

# Public-cloud values, taken from the SDK so they stay in step with it.
BOT_FRAMEWORK_OPENID_METADATA_URL: str = AuthenticationConstants.TO_BOT_FROM_CHANNEL_OPENID_METADATA_URL
BOT_FRAMEWORK_TOKEN_ISSUER: str = AuthenticationConstants.TO_BOT_FROM_CHANNEL_TOKEN_ISSUER
ALLOWED_SIGNING_ALGORITHMS: tuple[str, ...] = tuple(AuthenticationConstants.ALLOWED_SIGNING_ALGORITHMS)
SERVICE_URL_CLAIM: str = ChannelValidation.SERVICE_URL_CLAIM
CLOCK_SKEW_SECONDS: int = 5 * 60

VALID_APP_TYPES: frozenset[str] = frozenset({"SingleTenant", "UserAssignedMSI", "MultiTenant"})

# Tokens from the Bot Connector are about 1-2 KB; anything far larger is not one of them.
_MAX_TOKEN_LENGTH = 16 * 1024
# Upper bound for the metadata and JWKS documents (the real ones are a few KB).
_MAX_DOCUMENT_BYTES = 1024 * 1024


class AuthError(Exception):
    """The request must be answered with HTTP 401.

    ``reason`` is a short, fixed English text meant for logs; it never contains the
    token or other attacker-controlled values.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class _SigningKey:
    key: Any  # a cryptography RSA public key
    endorsements: frozenset[str]


class _SigningKeyCache:
    """Signing keys from the OpenID metadata's ``jwks_uri``, cached per authenticator.

    Keys are refreshed when older than ``ttl``; a token with an unknown ``kid`` triggers
    an early refresh at most once per ``unknown_kid_refresh_interval`` (forged tokens with
    random key ids can therefore not be used to hammer the metadata endpoint). After a
    failed fetch no new attempt is made for ``failure_backoff`` seconds, and previously
    fetched keys stay in use.
    """

    def __init__(
        self,
        metadata_url: str,
        *,
        timeout_seconds: float,
        ttl: float,
        unknown_kid_refresh_interval: float,
        failure_backoff: float,
    ) -> None:
        self._metadata_url = metadata_url
        self._timeout = aiohttp.ClientTimeout(total=timeout_seconds)
        self._ttl = ttl
        self._unknown_kid_refresh_interval = unknown_kid_refresh_interval
        self._failure_backoff = failure_backoff
        self._keys: dict[str, _SigningKey] = {}
        self._fetched_at: float | None = None
        self._failed_at: float | None = None
        self._lock = asyncio.Lock()

    async def get(self, kid: str) -> _SigningKey | None:
        """The key with id ``kid``, or None if the key set does not contain it.

        Raises :class:`AuthError` when no key set could be fetched at all.
        """
        if self._needs_refresh(kid):
            async with self._lock:
                # Re-check: another request may have refreshed while this one waited.
                if self._needs_refresh(kid):
                    await self._refresh()
        if self._fetched_at is None:
            raise AuthError("Bot Framework signing keys are unavailable")
        return self._keys.get(kid)

    def _needs_refresh(self, kid: str) -> bool:
        now = time.monotonic()
        if self._failed_at is not None and now - self._failed_at < self._failure_backoff:
            return False
        if self._fetched_at is None or now - self._fetched_at >= self._ttl:
            return True
        return kid not in self._keys and now - self._fetched_at >= self._unknown_kid_refresh_interval

    async def _refresh(self) -> None:
        """Fetch the key set; on failure keep the previous keys and start the backoff."""
        try:
            keys = await self._fetch()
        except Exception as exc:
            self._failed_at = time.monotonic()
            logger.warning(
                "Could not fetch Bot Framework signing keys from %s: %s: %s",
                self._metadata_url,
                type(exc).__name__,
                exc,
            )
            return
        self._keys = keys
        self._fetched_at = time.monotonic()
        self._failed_at = None

    async def _fetch(self) -> dict[str, _SigningKey]:
        async with aiohttp.ClientSession(timeout=self._timeout) as session:
            metadata = await _get_json(session, self._metadata_url)
            jwks_uri = metadata.get("jwks_uri") if isinstance(metadata, dict) else None
            if not isinstance(jwks_uri, str) or not jwks_uri:
                raise ValueError("OpenID metadata has no jwks_uri")
            jwks = await _get_json(session, jwks_uri)
        raw_keys = jwks.get("keys") if isinstance(jwks, dict) else None
        if not isinstance(raw_keys, list):
            raise ValueError("JWKS document has no keys list")
        return _parse_keys(raw_keys)


async def _get_json(session: aiohttp.ClientSession, url: str) -> Any:
    async with session.get(url, headers={"Accept": "application/json"}) as response:
        response.raise_for_status()
        body = await response.content.read(_MAX_DOCUMENT_BYTES + 1)
        if len(body) > _MAX_DOCUMENT_BYTES:
            raise ValueError("document too large")
        return json.loads(body)


def _parse_keys(raw_keys: list[Any]) -> dict[str, _SigningKey]:
    """Turn JWKS entries into RSA public keys; unusable entries are skipped."""
    keys: dict[str, _SigningKey] = {}
    for raw in raw_keys:
        if not isinstance(raw, dict):
            continue
        kid = raw.get("kid")
        if not isinstance(kid, str) or not kid or raw.get("kty") != "RSA":
            continue
        if raw.get("use", "sig") != "sig":
            continue
        endorsements = raw.get("endorsements", [])
        if not isinstance(endorsements, list):
            continue
        try:
            public_key = jwt.PyJWK(raw, algorithm="RS256").key
        except Exception:  # noqa: S112 - one malformed key must not hide the others
            continue
        keys[kid] = _SigningKey(
            key=public_key,
            endorsements=frozenset(e for e in endorsements if isinstance(e, str)),
        )
    return keys


class RequestAuthenticator:
    """Validates the ``Authorization`` header of activities posted by the Bot Connector.

    Without an app id (development mode) every request is accepted; the caller is
    expected to log a warning at start-up (see :attr:`development_mode`).
    """

    def __init__(
        self,
        app_id: str,
        app_password: str,
        app_type: str,
        tenant_id: str,
        openid_metadata_url: str | None = None,
        *,
        http_timeout_seconds: float = 5.0,
        key_cache_ttl_seconds: float = 24 * 60 * 60,
        unknown_kid_refresh_interval_seconds: float = 5 * 60,
        fetch_failure_backoff_seconds: float = 30.0,
    ) -> None:
        """Create an authenticator.

        ``app_password`` and ``tenant_id`` are not needed to validate Bot Connector tokens
        (their issuer and keys are the same for every app type); they are accepted so that
        all authentication settings are handed over in one place.
        ``openid_metadata_url`` overrides the Bot Framework's OpenID metadata URL (tests).
        """
        if str(app_type) not in VALID_APP_TYPES:
            raise ValueError(f"unknown app type {app_type!r}; expected one of {sorted(VALID_APP_TYPES)}")
        if not 0 < http_timeout_seconds <= 5.0:
            raise ValueError("http_timeout_seconds must be in (0, 5]")
        self._app_id = app_id
        self._app_password = app_password
        self._app_type = str(app_type)
        self._tenant_id = tenant_id
        self._metadata_url = openid_metadata_url or BOT_FRAMEWORK_OPENID_METADATA_URL
        self._keys = _SigningKeyCache(
            self._metadata_url,
            timeout_seconds=http_timeout_seconds,
            ttl=key_cache_ttl_seconds,
            unknown_kid_refresh_interval=unknown_kid_refresh_interval_seconds,
            failure_backoff=fetch_failure_backoff_seconds,
        )

    @property
    def development_mode(self) -> bool:
        """True when no app id is configured: requests are not authenticated at all."""
        return not self._app_id

    @property
    def openid_metadata_url(self) -> str:
        return self._metadata_url

    async def authenticate(self, auth_header: str | None, activity: dict[str, Any]) -> None:
        """Return if the request is authentic; raise :class:`AuthError` (-> HTTP 401) otherwise."""
        if self.development_mode:
            return
        try:
            await self._authenticate(auth_header, activity)
        except AuthError:
            raise
        except Exception as exc:
            # Whatever went wrong, the answer is 401, never 500.
            raise AuthError("token verification failed") from exc

    async def _authenticate(self, auth_header: str | None, activity: Mapping[str, Any]) -> None:
        token = _bearer_token(auth_header)
        header, claims = _decode_unverified(token)
        self._check_structure(header, claims)
        channel_id, service_url = _activity_fields(activity)
        if claims.get(SERVICE_URL_CLAIM) != service_url:
            raise AuthError("serviceurl claim does not match the activity's serviceUrl")

        # Only now is the network (or the key cache) consulted.
        signing_key = await self._keys.get(header["kid"])
        if signing_key is None:
            raise AuthError("signing key not found in the Bot Framework key set")
        if channel_id not in signing_key.endorsements:
            raise AuthError("signing key is not endorsed for the activity's channel")

        try:
            jwt.decode(
                token,
                signing_key.key,
                algorithms=list(ALLOWED_SIGNING_ALGORITHMS),
                audience=self._app_id,
                issuer=BOT_FRAMEWORK_TOKEN_ISSUER,
                leeway=CLOCK_SKEW_SECONDS,
                options={
                    "require": ["exp", "iss", "aud"],
                    "strict_aud": True,
                    "enforce_minimum_key_length": True,
                },
            )
        except jwt.InvalidSignatureError as exc:
            raise AuthError("token signature is invalid") from exc
        except jwt.PyJWTError as exc:
            raise AuthError("token failed verification") from exc

    def _check_structure(self, header: Mapping[str, Any], claims: Mapping[str, Any]) -> None:
        """Checks that need no key material; they run before any key fetch."""
        if header.get("alg") not in ALLOWED_SIGNING_ALGORITHMS:
            raise AuthError("token signing algorithm is not allowed")
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise AuthError("token has no key id")
        if claims.get("iss") != BOT_FRAMEWORK_TOKEN_ISSUER:
            raise AuthError("token issuer is not the Bot Framework")
        if claims.get("aud") != self._app_id:
            raise AuthError("token audience does not match the app id")
        now = time.time()
        exp = claims.get("exp")
        if not _is_number(exp):
            raise AuthError("token has no valid expiry")
        if exp + CLOCK_SKEW_SECONDS <= now:
            raise AuthError("token has expired")
        nbf = claims.get("nbf")
        if nbf is not None and (not _is_number(nbf) or nbf - CLOCK_SKEW_SECONDS > now):
            raise AuthError("token is not yet valid")


def _bearer_token(auth_header: str | None) -> str:
    if not auth_header or not auth_header.strip():
        raise AuthError("missing Authorization header")
    parts = auth_header.split()
    if len(parts) != 2 or parts[0].lower() != "bearer":
        raise AuthError("Authorization header is not a Bearer token")
    token = parts[1]
    if len(token) > _MAX_TOKEN_LENGTH:
        raise AuthError("token is too long")
    return token


def _decode_unverified(token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    try:
        header = jwt.get_unverified_header(token)
        claims = jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError as exc:
        raise AuthError("token is not a decodable JWT") from exc
    if not isinstance(header, dict) or not isinstance(claims, dict):
        raise AuthError("token is not a decodable JWT")
    return header, claims


def _activity_fields(activity: Mapping[str, Any]) -> tuple[str, str]:
    if not isinstance(activity, Mapping):
        raise AuthError("activity is not a JSON object")
    channel_id = activity.get("channelId")
    service_url = activity.get("serviceUrl")
    if not isinstance(channel_id, str) or not channel_id:
        raise AuthError("activity has no channelId")
    if not isinstance(service_url, str) or not service_url:
        raise AuthError("activity has no serviceUrl")
    return channel_id, service_url


def _is_number(value: object) -> TypeGuard[int | float]:
    return isinstance(value, int | float) and not isinstance(value, bool)
