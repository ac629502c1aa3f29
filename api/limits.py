"""How much a request may send: every body is limited by configuration, and JSON bodies in depth.

    AI4KG_MAX_BODY_BYTES    any request body (default 1 MiB)
    AI4KG_MAX_UPDATE_BYTES  a SPARQL Update the platform administrator POSTs to /sparql (default 64 MiB)
    MAX_JSON_DEPTH          arrays and objects nested in any JSON body (512)
    MAX_DOCUMENT_DEPTH      ... in the JSON documents of the REST routes (64): deployment and
                            federation requests, provenance events

A larger body gets 413 and a deeper one 400, as problem+json naming the limit and its setting.

The limit is applied where the application reads the body, not when the request arrives: a route
checks who is asking before it reads (an anonymous write gets its 401 before a byte of its body is
read), and a body is refused by its Content-Length before it is read, or, sent chunked without
one, as soon as the bytes read pass the limit. The bytes never read stay in the server's socket
buffer, which uvicorn stops filling (flow control), so no body costs the server more memory than
its limit.

Nesting is checked before any parser sees the body: Python's JSON parser recurses once per level
and fails with a RecursionError (a 500) about a thousand levels down. The middleware's bound stops
well short of that; the REST routes' documents get the tighter MAX_DOCUMENT_DEPTH, since
the validators that walk them (jsonschema) recurse several frames per level. GraphQL requests are
held to the middleware's bound only: graphql-core bounds the nesting of variables itself and
answers in GraphQL's own error format, which a client of /graphql reads.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..config import Settings
from ..metadata.loader import ParseError, json_depth, parse_json
from .problems import MEDIA_TYPE, Problem

MAX_JSON_DEPTH = 512
"""Arrays and objects nested in any JSON body, at most: Python's parser takes that much from any
point of a request's stack (its recursion limit is 1,000 frames)."""
MAX_DOCUMENT_DEPTH = 64
"""... in a JSON document of a REST route (`loads_json`): a deployment or federation request or a CI
build event nests under 10 levels; 64 keeps the schema validators that walk it (several frames per
level) far from the recursion limit."""

SPARQL_PATH = "/sparql"
_UPDATE_MEDIA = ("application/sparql-update", "application/x-www-form-urlencoded")
"""What may carry a SPARQL Update (a form may hold update=): an administrator's may be larger."""


def too_deep(depth: int, limit: int) -> Problem:
    return Problem(400, "Nested too deeply", f"this JSON body may nest arrays and objects {limit} levels deep at most; "
                   f"it nests {depth:,} levels", "body", depth)


def loads_json(body: bytes | str, field: str = "body") -> Any:
    """A JSON document of a REST route (or one given as a GraphQL argument), parsed under the
    loader's rules whatever the Content-Type says: 400 when it is not JSON, nests deeper than
    MAX_DOCUMENT_DEPTH, holds a number of over 100 digits or a key twice."""
    try:  # parse_json measures the nesting before its parser could recurse into it
        return parse_json(body.decode("utf-8") if isinstance(body, bytes) else body, MAX_DOCUMENT_DEPTH)
    except UnicodeDecodeError as exc:
        raise Problem(400, "Not JSON", f"the {field} is not UTF-8: {exc}", field) from None
    except ParseError as exc:
        if exc.rule == "nesting":
            raise Problem(400, "Nested too deeply", f"this JSON {field} may nest arrays and objects "
                          f"{MAX_DOCUMENT_DEPTH} levels deep at most ({exc})", field) from None
        raise Problem(400, "Not JSON", f"the {field} is not JSON the platform takes: {exc} [{exc.rule}]",
                      field) from None


def is_json(content_type: str) -> bool:
    media = content_type.split(";")[0].strip().lower()
    return media == "application/json" or media.endswith("+json")


@dataclass
class _Body:
    """What one request has sent, and the problem it ends with if it sends too much."""

    limit: int
    setting: str
    declared: int | None
    """Content-Length, if the request has one."""
    is_json: bool
    received: int = 0
    chunks: list[bytes] = field(default_factory=list)
    """A JSON body's bytes so far (at most `limit`), for the depth check once it is complete."""
    problem: Problem | None = None

    def too_large(self) -> Problem:
        said = f"{self.declared:,} bytes" if self.declared is not None else f"more than {self.limit:,} bytes"
        return Problem(413, "Body too large", f"the body has {said}; request bodies here are limited to "
                       f"{self.limit:,} bytes (setting {self.setting})", "body", self.declared)


class BodyLimits:
    """ASGI middleware: each request reads at most its limit of body bytes, JSON bodies at most
    MAX_JSON_DEPTH levels deep; otherwise the request is answered 413 / 400 by this middleware.

    It sits inside api/auth.py's Authentication, whose identity picks the limit (the platform
    administrator's SPARQL Updates may be larger). A plain ASGI callable (as Authentication), not
    Starlette's BaseHTTPMiddleware.

    The refusal is raised from the application's `receive`, so nothing reads past the limit. The
    application may turn that exception into an answer of its own (FastAPI answers a body it could
    not parse with 400, GraphQL with its own error): whatever it sends is dropped and the refusal
    goes out in its place, so a client always learns the limit and its setting.
    """

    def __init__(self, app: ASGIApp, settings: Settings):
        self.app, self.settings = app, settings

    def _limit(self, scope: Scope, content_type: str) -> tuple[int, str]:
        identity = scope.get("state", {}).get("identity")
        media = content_type.split(";")[0].strip().lower()
        if (scope["path"] == SPARQL_PATH and scope["method"] == "POST" and media in _UPDATE_MEDIA
                and identity is not None and identity.admin):
            return self.settings.max_update_bytes, "AI4KG_MAX_UPDATE_BYTES"
        return self.settings.max_body_bytes, "AI4KG_MAX_BODY_BYTES"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {name: value.decode("latin-1") for name, value in scope["headers"]
                   if name in (b"content-length", b"content-type")}
        content_type = headers.get(b"content-type", "")
        try:  # uvicorn refuses a malformed Content-Length before the app sees the request
            declared: int | None = int(headers[b"content-length"])
        except (KeyError, ValueError):
            declared = None
        limit, setting = self._limit(scope, content_type)
        body = _Body(limit, setting, declared, is_json(content_type))
        started = False

        def refuse(problem: Problem) -> Problem:
            if not started:  # a response under way cannot be replaced: the app just gets the exception
                body.problem = problem
            return problem

        async def limited_receive() -> Message:
            if body.declared is not None and body.declared > body.limit:
                raise refuse(body.too_large())  # before a single byte of it is read
            message = await receive()
            if message["type"] != "http.request":
                return message
            chunk = message.get("body", b"")
            body.received += len(chunk)
            if body.received > body.limit:
                raise refuse(body.too_large())
            if body.is_json:
                body.chunks.append(chunk)
                if not message.get("more_body", False):
                    depth = json_depth(b"".join(body.chunks))
                    body.chunks.clear()
                    if depth > MAX_JSON_DEPTH:
                        raise refuse(too_deep(depth, MAX_JSON_DEPTH))
            return message

        async def checked_send(message: Message) -> None:
            nonlocal started
            if body.problem is not None:  # the app's own answer to a body it could not read: ours goes instead
                return
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, checked_send)
        except Exception:
            if body.problem is None:
                raise
        if body.problem is not None:
            response = JSONResponse(body.problem.body(scope["path"]), status_code=body.problem.status,
                                    media_type=MEDIA_TYPE)
            await response(scope, receive, send)
