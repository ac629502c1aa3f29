"""Sign-in and sign-out: the configured OIDC issuer (authorization code with PKCE), or an API key.

    GET  /sign-in?next=/path     the page: "Sign in with <issuer>" (with AI4KG_OIDC_ISSUER and
                                 AI4KG_OIDC_CLIENT_ID) and a form for an API key
    POST /sign-in                the API key form (csrf, api_key, next)
    GET  /sign-in/oidc?next=...  starts the issuer's sign-in: redirects to its authorization endpoint
    GET  /sign-in/callback       where the issuer sends the browser back (code and state, or an error)
    POST /sign-out               ends the session (csrf)

The OIDC flow (OpenID Connect Core 1.0 §3.1, RFC 7636): `/sign-in/oidc` reads the issuer's
discovery document (cached for a few minutes), keeps a random state, nonce and PKCE code verifier
and the page to return to in the session (at most a few flows at once, each for ten minutes), and
sends the browser to the authorization endpoint with the verifier's S256 challenge. The callback
takes the flow its state names out of the session (a state is used once), exchanges the code at the
token endpoint with the verifier (and the client's secret for a confidential client), verifies the
access token as the API does (`Authenticator.identify`: signature against the issuer's JWKS, issuer,
audience, expiry), and the ID token when one comes back (signature, issuer, audience = the client,
the flow's nonce, at_hash, the same subject), then signs the session in until the access token
expires. Anything wrong leaves the visitor on a page that says what, and signed in as before.

`next` is a path on this server: anything else (another host, a scheme, `//host`, a backslash or
a control character, which browsers read as one) is replaced by `/`, so no sign-in sends anyone
elsewhere. Calls to the issuer are httpx's async client; token checks, which may fetch the JWKS,
run in a worker thread: the event loop never waits on the network.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import secrets
import time
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

import anyio.to_thread
import httpx
import jwt
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from ..api.auth import AuthenticationFailed, Authenticator, Identity
from ..credentials import PREFIX as API_KEY_PREFIX
from ..graph.store import KnowledgeGraph
from .session import SESSION_SECONDS, check_csrf, sign_in, sign_out
from .templating import render

log = logging.getLogger("ai4kg.dashboard")

FLOWS = "oidc_flows"
"""The session's pending OIDC sign-ins: state -> {nonce, verifier, next, started}."""
MOST_FLOWS = 3
"""Sign-ins one session may have started at once (tabs); the oldest is dropped."""
FLOW_SECONDS = 600
"""How long the visitor may take at the issuer."""
DISCOVERY_SECONDS = 300
HTTP_TIMEOUT = 10.0
SCOPE = "openid profile email"
_ALGORITHMS = ["RS256", "RS384", "RS512", "ES256", "ES384", "ES512", "PS256", "PS384", "PS512"]
_MAX_KEY = 200
_MAX_SHOWN = 300
"""Characters of an issuer's error description shown on the page."""


class SignInFailed(Exception):
    def __init__(self, status: int, heading: str, message: str):
        super().__init__(message)
        self.status, self.heading, self.message = status, heading, message


def local_path(candidate: str | None) -> str:
    """`candidate` when it is a path on this server, else `/`."""
    if not candidate or not candidate.startswith("/") or candidate.startswith("//") or len(candidate) > 2000:
        return "/"
    if "\\" in candidate or any(ord(c) < 0x21 or ord(c) == 0x7F for c in candidate):
        return "/"  # browsers read `/\host` as `//host`, and drop tabs and newlines from a URL
    parts = urlsplit(candidate)
    if parts.scheme or parts.netloc or not parts.path.startswith("/"):
        return "/"
    if parts.path.rstrip("/") in ("/sign-in", "/sign-out", "/sign-in/oidc", "/sign-in/callback"):
        return "/"
    return candidate


def issuer_name(issuer: str) -> str:
    """How the sign-in button names the issuer: its host."""
    return urlsplit(issuer).netloc or issuer


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def code_challenge(verifier: str) -> str:
    """RFC 7636 §4.2, S256: BASE64URL(SHA256(ASCII(code_verifier)))."""
    return _b64url(hashlib.sha256(verifier.encode("ascii")).digest())


def router(graph: KnowledgeGraph) -> APIRouter:
    routes = APIRouter(include_in_schema=False)
    settings = graph.settings
    oidc = _Oidc(settings.oidc_issuer, settings.oidc_client_id, settings.oidc_client_secret,
                 settings.oidc_jwks_url) if settings.oidc_issuer and settings.oidc_client_id else None

    def page(request: Request, next_path: str, status: int = 200, error: str | None = None) -> HTMLResponse:
        return render(request, "signin.html", status=status, next=next_path, error=error,
                      oidc_name=issuer_name(oidc.issuer) if oidc else None,
                      oidc_url="/sign-in/oidc?" + urlencode({"next": next_path}))

    @routes.get("/sign-in", response_class=HTMLResponse)
    async def sign_in_page(request: Request) -> HTMLResponse:
        return page(request, local_path(request.query_params.get("next")))

    @routes.post("/sign-in", response_class=HTMLResponse)
    async def sign_in_with_key(request: Request) -> Response:
        form = await request.form()
        check_csrf(request, form.get("csrf"))
        next_path = local_path(_text(form.get("next")))
        key = _text(form.get("api_key")).strip()
        error = None
        if not key:
            error = "Enter an API key."
        elif not key.startswith(API_KEY_PREFIX) or len(key) > _MAX_KEY:
            error = f"This is not an API key: an API key starts with {API_KEY_PREFIX} (ai4kg apikey create)."
        else:
            authenticator: Authenticator = request.app.state.authenticator
            try:  # an API key is a local SQLite lookup, as the API checks it on the event loop
                identity = authenticator.identify(f"Bearer {key}")
            except AuthenticationFailed:
                identity = None
            if identity is None:
                error = "This API key is unknown or was revoked."
            else:
                sign_in(request, identity, api_key=key)
                return RedirectResponse(next_path, status_code=303)
        return page(request, next_path, status=400, error=error)

    @routes.get("/sign-in/oidc")
    async def start_oidc(request: Request) -> Response:
        next_path = local_path(request.query_params.get("next"))
        if oidc is None:
            return _message(request, SignInFailed(404, "Sign-in with an identity provider is not set up",
                                                  "This server has no OIDC issuer and client configured "
                                                  "(AI4KG_OIDC_ISSUER, AI4KG_OIDC_CLIENT_ID): sign in with an API key."),
                            next_path)
        try:
            discovery = await oidc.discovery()
        except SignInFailed as failed:
            return _message(request, failed, next_path)
        state, nonce, verifier = secrets.token_urlsafe(32), secrets.token_urlsafe(32), secrets.token_urlsafe(64)
        flows = {s: f for s, f in dict(request.session.get(FLOWS) or {}).items()
                 if isinstance(f, dict) and f.get("started", 0) > time.time() - FLOW_SECONDS}
        flows[state] = {"nonce": nonce, "verifier": verifier, "next": next_path, "started": time.time()}
        request.session[FLOWS] = dict(sorted(flows.items(), key=lambda e: e[1]["started"])[-MOST_FLOWS:])
        query = urlencode({"response_type": "code", "client_id": oidc.client_id, "redirect_uri": _callback(request),
                           "scope": SCOPE, "state": state, "nonce": nonce, "code_challenge": code_challenge(verifier),
                           "code_challenge_method": "S256"})
        endpoint = discovery["authorization_endpoint"]
        return RedirectResponse(f"{endpoint}{'&' if '?' in endpoint else '?'}{query}", status_code=303)

    @routes.get("/sign-in/callback", name="signin_callback")
    async def callback(request: Request) -> Response:
        params = request.query_params
        state = params.get("state") or ""
        flows = dict(request.session.get(FLOWS) or {})
        flow = flows.pop(state, None) if state else None  # a state is good once
        if flow is not None:
            request.session[FLOWS] = flows
        next_path = local_path(flow["next"]) if flow else "/"
        try:
            if oidc is None:
                raise SignInFailed(404, "Sign-in with an identity provider is not set up",
                                   "This server has no OIDC issuer and client configured.")
            if params.get("error"):
                described = (params.get("error_description") or "")[:_MAX_SHOWN]
                error = params["error"][:100]
                if error == "access_denied":
                    raise SignInFailed(403, "Sign-in cancelled",
                                       f"{issuer_name(oidc.issuer)} did not sign you in (access_denied"
                                       f"{': ' + described if described else ''}). Nothing was changed.")
                raise SignInFailed(400, "Sign-in failed", f"{issuer_name(oidc.issuer)} answered with an error: "
                                   f"{error}{': ' + described if described else ''}.")
            if flow is None or flow.get("started", 0) < time.time() - FLOW_SECONDS:
                raise SignInFailed(400, "Sign-in not accepted",
                                   "This answer from the identity provider does not belong to a sign-in started in "
                                   "this browser, or it was used already or took too long. Start again.")
            if params.get("iss") is not None and params["iss"] != oidc.issuer:  # RFC 9207: the answer's issuer
                raise SignInFailed(400, "Sign-in not accepted", "The answer came from another issuer than this "
                                   "server's.")
            code = params.get("code")
            if not code:
                raise SignInFailed(400, "Sign-in failed", "The identity provider sent no authorization code.")
            tokens = await oidc.exchange(code, flow["verifier"], _callback(request))
            authenticator: Authenticator = request.app.state.authenticator
            identity, expires = await anyio.to_thread.run_sync(oidc.verify, authenticator, tokens, flow["nonce"])
        except SignInFailed as failed:
            return _message(request, failed, next_path)
        sign_in(request, identity, expires=min(expires, time.time() + SESSION_SECONDS))
        return RedirectResponse(next_path, status_code=303)

    @routes.post("/sign-out")
    async def sign_out_route(request: Request) -> Response:
        form = await request.form()
        check_csrf(request, form.get("csrf"))
        sign_out(request)
        return RedirectResponse("/", status_code=303)

    return routes


class _Oidc:
    """The configured issuer, as the dashboard's client sees it."""

    def __init__(self, issuer: str, client_id: str, client_secret: str | None, jwks_url: str | None):
        self.issuer, self.client_id, self._secret, self._jwks_url = issuer, client_id, client_secret, jwks_url
        self._discovered: tuple[float, dict[str, Any]] | None = None
        self._jwks: jwt.PyJWKClient | None = None

    def __repr__(self) -> str:  # never the secret
        return f"_Oidc({self.issuer!r}, {self.client_id!r})"

    async def discovery(self) -> dict[str, Any]:
        """The issuer's discovery document (OpenID Connect Discovery 1.0 §4), checked and cached."""
        if self._discovered and self._discovered[0] > time.monotonic():
            return self._discovered[1]
        url = self.issuer.rstrip("/") + "/.well-known/openid-configuration"
        unreachable = SignInFailed(502, "The identity provider cannot be reached",
                                   f"{issuer_name(self.issuer)} did not answer with its configuration; "
                                   "try again later, or sign in with an API key.")
        try:
            async with httpx.AsyncClient(timeout=HTTP_TIMEOUT) as client:
                response = await client.get(url, headers={"accept": "application/json"})
            response.raise_for_status()
            document = response.json()
        except (httpx.HTTPError, ValueError) as exc:
            log.warning("OIDC discovery at %s failed: %s", url, exc)
            raise unreachable from None
        if not isinstance(document, dict) or document.get("issuer") != self.issuer:
            log.warning("OIDC discovery at %s names issuer %r, not %r", url,
                        document.get("issuer") if isinstance(document, dict) else None, self.issuer)
            raise unreachable
        for name in ("authorization_endpoint", "token_endpoint"):
            if not isinstance(document.get(name), str) or urlsplit(document[name]).scheme not in ("http", "https"):
                log.warning("OIDC discovery at %s has no usable %s", url, name)
                raise unreachable
        methods = document.get("code_challenge_methods_supported")
        if isinstance(methods, list) and "S256" not in methods:
            raise SignInFailed(502, "The identity provider cannot be used",
                               f"{issuer_name(self.issuer)} does not support PKCE with S256 (RFC 7636).")
        self._discovered = (time.monotonic() + DISCOVERY_SECONDS, document)
        return document

    async def exchange(self, code: str, verifier: str, redirect_uri: str) -> dict[str, Any]:
        """The token endpoint's answer to the code (RFC 6749 §4.1.3, RFC 7636 §4.5)."""
        discovery = await self.discovery()
        form = {"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri,
                "client_id": self.client_id, "code_verifier": verifier}
        headers = {"accept": "application/json"}
        if self._secret is not None:
            methods = discovery.get("token_endpoint_auth_methods_supported") or ["client_secret_basic"]
            if "client_secret_basic" in methods or "client_secret_post" not in methods:
                # RFC 6749 §2.3.1: id and secret form-encoded, then Basic
                pair = f"{quote(self.client_id, safe='')}:{quote(self._secret, safe='')}"
                headers["authorization"] = "Basic " + base64.b64encode(pair.encode()).decode("ascii")
            else:
                form["client_secret"] = self._secret
        try:
            async with httpx.AsyncClient(timeout=HTTP_TIMEOUT) as client:
                response = await client.post(discovery["token_endpoint"], data=form, headers=headers)
        except httpx.HTTPError as exc:
            log.warning("OIDC token endpoint of %s failed: %s", self.issuer, exc)
            raise SignInFailed(502, "The identity provider cannot be reached",
                               f"{issuer_name(self.issuer)} did not answer; try again later.") from None
        try:
            answer = response.json()
        except ValueError:
            answer = None
        if response.status_code != 200 or not isinstance(answer, dict):
            error = answer.get("error") if isinstance(answer, dict) else None
            described = answer.get("error_description") if isinstance(answer, dict) else None
            log.warning("OIDC token endpoint of %s refused the code: %s %s", self.issuer, response.status_code, error)
            said = f"{error}: {described}" if error and described else error or f"HTTP {response.status_code}"
            raise SignInFailed(400, "Sign-in failed",
                               f"{issuer_name(self.issuer)} did not accept this sign-in ({str(said)[:_MAX_SHOWN]}). "
                               "Start again.")
        if not isinstance(answer.get("access_token"), str) or str(answer.get("token_type", "")).lower() != "bearer":
            raise SignInFailed(502, "Sign-in failed", f"{issuer_name(self.issuer)} sent no bearer access token.")
        return answer

    def verify(self, authenticator: Authenticator, tokens: dict[str, Any], nonce: str) -> tuple[Identity, float]:
        """Who the tokens say signed in, and until when (a worker thread: keys may be fetched)."""
        access = tokens["access_token"]
        refused = "The identity provider's token was not accepted"
        try:
            identity = authenticator.identify(f"Bearer {access}")
        except AuthenticationFailed as exc:
            log.warning("OIDC sign-in: the access token from %s does not verify: %s", self.issuer, exc)
            raise SignInFailed(401, refused, f"The access token does not verify: {exc}.") from None
        if identity is None or identity.via != "oidc":
            raise SignInFailed(401, refused, "The access token is not one of the issuer's.")
        expires = float(jwt.decode(access, options={"verify_signature": False}).get("exp", 0))  # verified above
        id_token = tokens.get("id_token")
        if id_token is not None:
            try:
                self._check_id_token(id_token, access, nonce, identity.subject)
            except (jwt.InvalidTokenError, jwt.PyJWKClientError, ValueError) as exc:
                log.warning("OIDC sign-in: the ID token from %s does not verify: %s", self.issuer, exc)
                raise SignInFailed(401, refused, f"The ID token does not verify: {exc}.") from None
        return identity, expires

    def _check_id_token(self, id_token: object, access: str, nonce: str, subject: str) -> None:
        """OpenID Connect Core §3.1.3.7 (and §3.1.3.8, at_hash)."""
        if not isinstance(id_token, str):
            raise ValueError("it is not a JWT")
        if self._jwks is None:
            url = self._jwks_url or (self._discovered[1].get("jwks_uri") if self._discovered else None)
            if not isinstance(url, str):
                raise ValueError("the issuer publishes no keys (jwks_uri)")
            self._jwks = jwt.PyJWKClient(url, cache_keys=True, lifespan=300, timeout=int(HTTP_TIMEOUT))
        key = self._jwks.get_signing_key_from_jwt(id_token)
        claims = jwt.decode(id_token, key.key, algorithms=_ALGORITHMS, issuer=self.issuer, audience=self.client_id,
                            leeway=30, options={"require": ["exp", "iat", "iss", "sub", "aud"]})
        if not isinstance(claims.get("nonce"), str) or not secrets.compare_digest(claims["nonce"], nonce):
            raise ValueError("its nonce is not this sign-in's")
        audiences = claims["aud"] if isinstance(claims["aud"], list) else [claims["aud"]]
        if ("azp" in claims or len(audiences) > 1) and claims.get("azp") != self.client_id:
            raise ValueError("it was issued to another client (azp)")
        if str(claims["sub"]) != subject:
            raise ValueError("its subject is not the access token's")
        if "at_hash" in claims:
            algorithm = jwt.get_unverified_header(id_token).get("alg", "")
            digest = {"256": hashlib.sha256, "384": hashlib.sha384, "512": hashlib.sha512}.get(algorithm[-3:])
            if digest is None:
                raise ValueError(f"unknown algorithm {algorithm!r}")
            whole = digest(access.encode("ascii")).digest()
            if not secrets.compare_digest(str(claims["at_hash"]), _b64url(whole[:len(whole) // 2])):
                raise ValueError("its at_hash is not the access token's")


def _callback(request: Request) -> str:
    return str(request.url_for("signin_callback"))


def _text(value: object) -> str:
    return value if isinstance(value, str) else ""


def _message(request: Request, failed: SignInFailed, next_path: str) -> HTMLResponse:
    return render(request, "message.html", status=failed.status, heading=failed.heading, message=failed.message,
                  back="/sign-in?" + urlencode({"next": next_path}))

