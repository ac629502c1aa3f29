"""A small OpenID Connect provider on loopback, for tests only, written from the specs:
OpenID Connect Core 1.0 (§3.1: the authorization code flow), OpenID Connect Discovery 1.0,
RFC 6749 (OAuth 2.0: §4.1 the code grant, §2.3.1 client authentication, §5.2 errors) and RFC 7636
(PKCE: S256 challenges only, as a strict provider may insist).

    provider = IdentityProvider(client_id="ai4kg-dashboard", client_secret="s3cret", audience="ai4kg")
    provider.users["alice"] = ["access:vo.secret.eu:member"]
    provider.redirect_uris.add("http://testserver/sign-in/callback")
    provider.user = "alice"       # the authorization endpoint signs alice in at once; None: a login form
    provider.url                  # the issuer (Keycloak-style: .../realms/test)

Knobs for the tests of what a client must refuse: `deny` (the user says no: error=access_denied),
`sign_with` (a key that is not in the JWKS), `access_claims` / `id_claims` (claims put over the
tokens' own: another nonce, issuer, audience...). `authorizations` and `token_requests` record what
clients sent.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import re
import secrets
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlencode, urlsplit

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa

CODE_SECONDS = 60
TOKEN_SECONDS = 300
_VERIFIER = re.compile(r"^[A-Za-z0-9\-._~]{43,128}$")  # RFC 7636 §4.1


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


@dataclass
class _Grant:
    client_id: str
    redirect_uri: str
    challenge: str
    nonce: str | None
    user: str
    scope: str
    issued: float = field(default_factory=time.time)
    used: bool = False


class IdentityProvider:
    def __init__(self, client_id: str = "ai4kg-dashboard", client_secret: str | None = None,
                 audience: str = "ai4kg") -> None:
        self.client_id, self.client_secret, self.audience = client_id, client_secret, audience
        self.users: dict[str, list[str]] = {}
        self.redirect_uris: set[str] = set()
        self.user: str | None = None
        self.deny = False
        self.sign_with: Any = None
        self.access_claims: dict[str, Any] = {}
        self.id_claims: dict[str, Any] = {}
        self.authorizations: list[dict[str, str]] = []
        self.token_requests: list[dict[str, str]] = []
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(self.key.public_key()))
        self._jwks = {"keys": [{**jwk, "kid": "provider-key", "use": "sig", "alg": "RS256"}]}
        self._grants: dict[str, _Grant] = {}
        self._lock = threading.Lock()
        provider = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                provider._get(self)

            def do_POST(self) -> None:  # noqa: N802
                provider._post(self)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.origin = f"http://127.0.0.1:{self.server.server_port}"
        self.url = self.origin + "/realms/test"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    # endpoints

    @property
    def authorization_endpoint(self) -> str:
        return self.url + "/protocol/openid-connect/auth"

    @property
    def token_endpoint(self) -> str:
        return self.url + "/protocol/openid-connect/token"

    def discovery(self) -> dict[str, Any]:
        return {"issuer": self.url, "authorization_endpoint": self.authorization_endpoint,
                "token_endpoint": self.token_endpoint, "jwks_uri": self.url + "/protocol/openid-connect/certs",
                "response_types_supported": ["code"], "subject_types_supported": ["public"],
                "id_token_signing_alg_values_supported": ["RS256"], "scopes_supported": ["openid", "profile", "email"],
                "grant_types_supported": ["authorization_code"], "code_challenge_methods_supported": ["S256"],
                "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"]}

    def _get(self, handler: BaseHTTPRequestHandler) -> None:
        parts = urlsplit(handler.path)
        if parts.path == "/realms/test/.well-known/openid-configuration":
            _json(handler, 200, self.discovery())
        elif parts.path == "/realms/test/protocol/openid-connect/certs":
            _json(handler, 200, self._jwks)
        elif parts.path == "/realms/test/protocol/openid-connect/auth":
            self._authorize(handler, _single(parse_qs(parts.query)), submitted=False)
        else:
            _json(handler, 404, {"error": "not_found"})

    def _post(self, handler: BaseHTTPRequestHandler) -> None:
        parts = urlsplit(handler.path)
        length = int(handler.headers.get("content-length") or 0)
        body = handler.rfile.read(length).decode("utf-8") if length else ""
        form = _single(parse_qs(body, keep_blank_values=True))
        if parts.path == "/realms/test/protocol/openid-connect/auth":
            self._authorize(handler, form, submitted=True)
        elif parts.path == "/realms/test/protocol/openid-connect/token":
            self._token(handler, form)
        else:
            _json(handler, 404, {"error": "not_found"})

    def _authorize(self, handler: BaseHTTPRequestHandler, request: dict[str, str], submitted: bool) -> None:
        """OIDC Core §3.1.2: the authorization endpoint (the login form posts back to it)."""
        if not submitted:
            self.authorizations.append(dict(request))
        redirect_uri, state = request.get("redirect_uri", ""), request.get("state")
        if request.get("client_id") != self.client_id or redirect_uri not in self.redirect_uris:
            # RFC 6749 §4.1.2.1: never redirect to a URI not registered for the client
            _page(handler, 400, "<h1>Unknown client or redirect URI</h1>")
            return

        def back(**values: str) -> None:
            query = urlencode({**values, **({"state": state} if state is not None else {}), "iss": self.url})
            handler.send_response(302)
            handler.send_header("location", f"{redirect_uri}{'&' if '?' in redirect_uri else '?'}{query}")
            handler.send_header("content-length", "0")
            handler.end_headers()

        if request.get("response_type") != "code":
            back(error="unsupported_response_type")
            return
        if "openid" not in request.get("scope", "").split():
            back(error="invalid_scope", error_description="scope must include openid")
            return
        if not request.get("code_challenge") or request.get("code_challenge_method") != "S256":
            back(error="invalid_request", error_description="PKCE with code_challenge_method=S256 is required")
            return
        if self.deny or request.get("decision") == "cancel":
            back(error="access_denied", error_description="The user did not sign in.")
            return
        user = request.get("username") if submitted else self.user
        if user is None:  # the login form
            hidden = "".join(f'<input type="hidden" name="{html.escape(k)}" value="{html.escape(v)}">'
                             for k, v in request.items() if k not in ("username", "decision"))
            _page(handler, 200, f"""<h1>Test identity provider</h1>
<form method="post" action="{self.authorization_endpoint}">{hidden}
<p><label for="username">Username</label> <input id="username" name="username" autocomplete="username"></p>
<p><button type="submit" name="decision" value="sign-in">Sign in</button>
<button type="submit" name="decision" value="cancel">Cancel</button></p></form>""")
            return
        if user not in self.users:
            _page(handler, 401, "<h1>Unknown user</h1>")
            return
        code = secrets.token_urlsafe(32)
        with self._lock:
            self._grants[code] = _Grant(self.client_id, redirect_uri, request["code_challenge"], request.get("nonce"),
                                        user, request.get("scope", ""))
        back(code=code)

    def _token(self, handler: BaseHTTPRequestHandler, form: dict[str, str]) -> None:
        """RFC 6749 §4.1.3 with RFC 7636 §4.6: the code, its client, its redirect URI and the verifier."""
        self.token_requests.append({k: v for k, v in form.items() if k != "client_secret"})
        client_id = form.get("client_id")
        authorization = handler.headers.get("authorization") or ""
        secret = form.get("client_secret")
        if authorization.lower().startswith("basic "):
            try:
                pair = base64.b64decode(authorization[6:].strip(), validate=True).decode("utf-8")
            except ValueError:
                _json(handler, 401, {"error": "invalid_client"}, challenge=True)
                return
            basic_id, _, secret = (unquote(p) for p in pair.partition(":"))  # type: ignore[misc]
            if client_id is not None and client_id != basic_id:
                _json(handler, 400, {"error": "invalid_request", "error_description": "two client ids"})
                return
            client_id = basic_id
            if "client_secret" in form:
                _json(handler, 400, {"error": "invalid_request", "error_description": "two client authentications"})
                return
        if client_id != self.client_id or (self.client_secret is not None and (
                secret is None or not secrets.compare_digest(secret, self.client_secret))):
            _json(handler, 401, {"error": "invalid_client"}, challenge=True)
            return
        if form.get("grant_type") != "authorization_code":
            _json(handler, 400, {"error": "unsupported_grant_type"})
            return
        with self._lock:
            grant = self._grants.get(form.get("code", ""))
            fresh = grant is not None and not grant.used and grant.issued > time.time() - CODE_SECONDS
            if grant is not None:
                grant.used = True  # one use, whatever follows
        if grant is None or not fresh:
            _json(handler, 400, {"error": "invalid_grant", "error_description": "unknown, used or expired code"})
            return
        if grant.client_id != client_id or grant.redirect_uri != form.get("redirect_uri"):
            _json(handler, 400, {"error": "invalid_grant", "error_description": "redirect_uri or client differs"})
            return
        verifier = form.get("code_verifier", "")
        if not _VERIFIER.match(verifier):
            _json(handler, 400, {"error": "invalid_grant", "error_description": "code_verifier missing or malformed"})
            return
        challenge = _b64url(hashlib.sha256(verifier.encode("ascii")).digest())
        if not secrets.compare_digest(challenge, grant.challenge):
            _json(handler, 400, {"error": "invalid_grant", "error_description": "PKCE verification failed"})
            return
        access, id_token = self.tokens(grant.user, grant.nonce, grant.scope)
        _json(handler, 200, {"access_token": access, "token_type": "Bearer", "expires_in": TOKEN_SECONDS,
                             "id_token": id_token, "scope": grant.scope})

    def tokens(self, user: str, nonce: str | None, scope: str = "openid") -> tuple[str, str]:
        """An access token (Keycloak-style, roles in realm_access) and an ID token for `user`."""
        now = int(time.time())
        key = self.sign_with or self.key
        headers = {"kid": "provider-key"}
        access = jwt.encode({"iss": self.url, "sub": f"sub-{user}", "aud": self.audience, "azp": self.client_id,
                             "iat": now, "exp": now + TOKEN_SECONDS, "scope": scope, "preferred_username": user,
                             "realm_access": {"roles": list(self.users[user])}, **self.access_claims},
                            key, algorithm="RS256", headers=headers)
        at_hash = _b64url(hashlib.sha256(access.encode("ascii")).digest()[:16])
        claims = {"iss": self.url, "sub": f"sub-{user}", "aud": self.client_id, "azp": self.client_id, "iat": now,
                  "exp": now + TOKEN_SECONDS, "auth_time": now, "at_hash": at_hash, "preferred_username": user,
                  "email": f"{user}@example.org", **({"nonce": nonce} if nonce is not None else {}), **self.id_claims}
        return access, jwt.encode(claims, key, algorithm="RS256", headers=headers)


def _single(values: dict[str, list[str]]) -> dict[str, str]:
    return {k: v[0] for k, v in values.items()}


def _json(handler: BaseHTTPRequestHandler, status: int, body: dict[str, Any], challenge: bool = False) -> None:
    data = json.dumps(body).encode()
    handler.send_response(status)
    handler.send_header("content-type", "application/json")
    handler.send_header("cache-control", "no-store")
    if challenge:
        handler.send_header("www-authenticate", 'Basic realm="test"')
    handler.send_header("content-length", str(len(data)))
    handler.end_headers()
    handler.wfile.write(data)


def _page(handler: BaseHTTPRequestHandler, status: int, body: str) -> None:
    data = (f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Test identity provider</title>'
            f"</head><body><main>{body}</main></body></html>").encode()
    handler.send_response(status)
    handler.send_header("content-type", "text/html; charset=utf-8")
    handler.send_header("content-length", str(len(data)))
    handler.end_headers()
    handler.wfile.write(data)
