"""Who is asking: OIDC bearer tokens, API keys, or nobody (anonymous).

Tokens are JWTs signed by the configured issuer (Keycloak-style), checked against its published
keys (JWKS), its name and, when set, the audience. Roles read `access:<vo>:<level>` (Keycloak's
`realm_access.roles`, or a top-level `roles` or `groups` claim); EGI Check-in entitlements
(`urn:mace:egi.eu:group:<vo>:role=<level>#aai.egi.eu`) count as the same. Membership of a VO at
any level lets an agent read that VO's assets; the role in Settings.admin_role makes a platform
administrator, who reads everything and may write.

A request without credentials is anonymous. A request with credentials that do not verify gets
401: credentials are never silently ignored.
"""

from __future__ import annotations

import json
import re
import urllib.request
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import anyio.to_thread
import jwt
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from ..config import Settings
from ..credentials import PREFIX as API_KEY_PREFIX
from ..credentials import ApiKey, KeyStore
from .problems import MEDIA_TYPE, Problem

_ROLE = re.compile(r"^access:(?P<vo>[^:]+):(?P<level>[^:]+)$")
_ENTITLEMENT = re.compile(r"^urn:[a-z0-9:._-]+:group:(?P<vo>[A-Za-z0-9._-]+)(?::[^#]*?)?(?::role=(?P<level>[^#]+))?#.+$")
_ALGORITHMS = ["RS256", "RS384", "RS512", "ES256", "ES384", "PS256"]


@dataclass(frozen=True)
class Identity:
    subject: str
    vos: frozenset[str]
    admin: bool
    via: str
    """oidc or api-key"""


def key_identity(key: ApiKey) -> Identity:
    """The agent an API key stands for."""
    return Identity(f"api-key:{key.id}", key.vos, key.admin, "api-key")


class AuthenticationFailed(Exception):
    pass


def identity_from_claims(claims: dict[str, Any], admin_role: str) -> Identity:
    roles = list(claims.get("realm_access", {}).get("roles", []) or [])
    roles += list(claims.get("roles", []) or []) + list(claims.get("groups", []) or [])
    vos = {match["vo"] for role in roles if isinstance(role, str) and (match := _ROLE.match(role))}
    entitlements = claims.get("eduperson_entitlement", []) or []
    vos |= {match["vo"] for e in entitlements if isinstance(e, str) and (match := _ENTITLEMENT.match(e))}
    vos.discard("platform")
    return Identity(str(claims.get("sub", "")), frozenset(vos), admin_role in roles, "oidc")


class Authenticator:
    def __init__(self, settings: Settings, keys: KeyStore):
        self.settings, self.keys = settings, keys

    @cached_property
    def _jwks(self) -> jwt.PyJWKClient:
        url = self.settings.oidc_jwks_url
        if url is None:  # the issuer's discovery document says where its keys are
            discovery = self.settings.oidc_issuer.rstrip("/") + "/.well-known/openid-configuration"  # type: ignore[union-attr]
            with urllib.request.urlopen(discovery, timeout=10) as response:  # noqa: S310 - configured issuer
                url = json.load(response)["jwks_uri"]
        return jwt.PyJWKClient(url, cache_keys=True, lifespan=300, timeout=10)

    def identify(self, authorization: str | None) -> Identity | None:
        """The agent behind an Authorization header; None when there is none (anonymous)."""
        if not authorization:
            return None
        scheme, _, credentials = authorization.partition(" ")
        if scheme.lower() != "bearer" or not credentials.strip():
            raise AuthenticationFailed("use 'Authorization: Bearer <token or API key>'")
        credentials = credentials.strip()
        if credentials.startswith(API_KEY_PREFIX):
            key = self.keys.verify(credentials)
            if key is None:
                raise AuthenticationFailed("unknown or revoked API key")
            return key_identity(key)
        if not self.settings.oidc_issuer:
            raise AuthenticationFailed("this server accepts no OIDC tokens (AI4KG_OIDC_ISSUER is not set)")
        try:
            signing_key = self._jwks.get_signing_key_from_jwt(credentials)
            claims = jwt.decode(credentials, signing_key.key, algorithms=_ALGORITHMS, issuer=self.settings.oidc_issuer,
                                audience=self.settings.oidc_audience,
                                options={"verify_aud": self.settings.oidc_audience is not None,
                                         "require": ["exp", "iss", "sub"]})
        except jwt.PyJWKClientError as exc:
            raise AuthenticationFailed(f"the token's signing key is not the issuer's: {exc}") from None
        except jwt.InvalidTokenError as exc:
            raise AuthenticationFailed(f"invalid token: {exc}") from None
        return identity_from_claims(claims, self.settings.admin_role)


_NOT_IN_QUOTED_STRING = re.compile(r'[^\x20-\x7e]|["\\]')
MAX_HEADER_TEXT = 200


def header_text(text: str) -> str:
    """Untrusted text (an error that quotes a token's `kid`, say) made safe for a quoted-string of a
    header: printable ASCII only, no quote or backslash, at most MAX_HEADER_TEXT characters. A CR
    or LF would otherwise end the header (uvicorn then drops the connection rather than send it)."""
    safe = _NOT_IN_QUOTED_STRING.sub("?", text)
    return safe if len(safe) <= MAX_HEADER_TEXT else safe[:MAX_HEADER_TEXT - 3] + "..."


def install(app: FastAPI, authenticator: Authenticator) -> None:
    """Every request carries request.state.identity (None: anonymous); bad credentials get 401."""
    app.add_middleware(Authentication, authenticator=authenticator)


class Authentication:
    """ASGI middleware: who is asking goes into the request's state; bad credentials end it with 401.

    A plain ASGI callable rather than `@app.middleware("http")` (Starlette's BaseHTTPMiddleware),
    which runs the rest of the app in a task of its own behind memory streams on every request.
    Anonymous requests and API keys (a local SQLite lookup) are answered on the event loop; an
    OIDC token is verified in a worker thread, since fetching the issuer's keys (on first use and
    when they rotate) is a network call that must not stall the loop.
    """

    def __init__(self, app: ASGIApp, authenticator: Authenticator):
        self.app, self.authenticator = app, authenticator

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        authorization = next((value.decode("latin-1") for name, value in scope["headers"] if name == b"authorization"),
                             None)
        try:
            if authorization and not authorization.partition(" ")[2].strip().startswith(API_KEY_PREFIX):
                identity = await anyio.to_thread.run_sync(self.authenticator.identify, authorization)
            else:
                identity = self.authenticator.identify(authorization)
        except AuthenticationFailed as exc:
            problem = Problem(401, "Unauthorized", str(exc), "Authorization")
            challenge = f'Bearer error="invalid_token", error_description="{header_text(str(exc))}"'
            response = JSONResponse(problem.body(Request(scope).url.path), status_code=401, media_type=MEDIA_TYPE,
                                    headers={"WWW-Authenticate": challenge})
            await response(scope, receive, send)
            return
        scope.setdefault("state", {})["identity"] = identity
        await self.app(scope, receive, send)


def identity_of(request: Request) -> Identity | None:
    return getattr(request.state, "identity", None)
