"""Who is looking at a page, and the token that protects its forms.

A browser carries no Authorization header: after sign-in (dashboard/signin.py) the session cookie
(Starlette's SessionMiddleware: signed with a key kept in the data directory, HttpOnly, SameSite=Lax)
holds who signed in: for an API key, the key's id (never its secret), looked up again on every page,
so a revoked key ends the session at once; for OIDC, the identity the issuer's token proved, until
that token expires.
A request that does carry an Authorization header (a script fetching a page) is who the header says.

The session cookie is honoured by the dashboard's pages only: the REST, SPARQL and GraphQL routes
read the Authorization header alone, so no cross-site form can act through them with the cookie.
Every form that writes carries `csrf_token`, checked by `check_csrf`.
"""

from __future__ import annotations

import hmac
import os
import secrets
import time
from pathlib import Path

from fastapi import Request

from ..api.auth import Authenticator, Identity, identity_of, key_identity
from ..credentials import PREFIX as API_KEY_PREFIX
from ..graph.search import Readers

COOKIE = "ai4kg_session"
SESSION_SECONDS = 8 * 3600
KEY_FILE = "dashboard-session.key"


class CsrfFailed(Exception):
    """A write form came without the session's token: the page says so and nothing is done."""


def session_key(data_dir: Path | None) -> str:
    """The key that signs session cookies: kept (mode 0600) in the data directory, so sessions
    survive a restart; a store in memory gets a new one per process."""
    if data_dir is None:
        return secrets.token_urlsafe(32)
    path = Path(data_dir) / KEY_FILE
    try:
        return path.read_text("ascii").strip()
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(32)
    try:  # O_EXCL: two processes starting at once keep the first key written
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text("ascii").strip()
    with os.fdopen(descriptor, "w") as file:
        file.write(key)
    return key


def sign_in(request: Request, identity: Identity, api_key: str | None = None, expires: float | None = None) -> None:
    """Remember `identity` in the session (a new session: the old one's tokens are dropped)."""
    request.session.clear()
    if api_key is not None:  # the id only: the cookie is signed, not encrypted
        request.session["api_key_id"] = api_key[len(API_KEY_PREFIX):].split("_", 1)[0]
    else:
        request.session["identity"] = {"subject": identity.subject, "vos": sorted(identity.vos), "admin": identity.admin,
                                       "via": identity.via, "expires": expires or time.time() + SESSION_SECONDS}


def sign_out(request: Request) -> None:
    request.session.clear()


def viewer(request: Request) -> Identity | None:
    """Who is looking: the Authorization header's agent, else the session's; None: anonymous."""
    cached = request.state.__dict__.get("viewer", False)
    if cached is not False:
        return cached
    found = identity_of(request) or _from_session(request)
    request.state.viewer = found
    return found


def _from_session(request: Request) -> Identity | None:
    if "session" not in request.scope:
        return None
    session = request.session
    authenticator: Authenticator = request.app.state.authenticator
    if "api_key_id" in session:
        key = authenticator.keys.active(session["api_key_id"])
        if key is None:  # revoked since: the session ends
            session.clear()
            return None
        return key_identity(key)
    stored = session.get("identity")
    if not stored:
        return None
    if stored.get("expires", 0) < time.time():
        session.clear()
        return None
    return Identity(stored["subject"], frozenset(stored["vos"]), bool(stored["admin"]), stored["via"])


def readers(request: Request) -> Readers:
    """The VOs whose non-public assets the viewer may see (None: all), as `api.access.readers_of`."""
    identity = viewer(request)
    if identity is None:
        return frozenset()
    return None if identity.admin else identity.vos


def csrf_token(request: Request) -> str:
    """The session's form token (made on first use)."""
    if "session" not in request.scope:
        return ""
    token = request.session.get("csrf")
    if not token:
        token = request.session["csrf"] = secrets.token_urlsafe(32)
    return token


def check_csrf(request: Request, submitted: object) -> None:
    """Raise CsrfFailed unless `submitted` is the session's form token."""
    expected = request.session.get("csrf") if "session" in request.scope else None
    if not expected or not isinstance(submitted, str) or not hmac.compare_digest(expected, submitted):
        raise CsrfFailed("the form's token is missing or not this session's: reload the page and submit it again")
