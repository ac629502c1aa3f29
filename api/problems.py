"""Errors as RFC 9457 problem details (application/problem+json), naming the parameter at fault."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException
from starlette.routing import Match

MEDIA_TYPE = "application/problem+json"
_log = logging.getLogger(__name__)


class InvalidParam(BaseModel):
    name: str
    reason: str
    value: Any = None


class ProblemDetail(BaseModel):
    """RFC 9457 problem details, with the parameters at fault in invalid-params."""

    type: str = "about:blank"
    title: str
    status: int
    detail: str
    instance: str | None = None
    invalid_params: list[InvalidParam] | None = Field(default=None, alias="invalid-params")


_DOCUMENTED = {400: "Bad request: a parameter names its problem", 401: "Credentials missing or not valid",
               404: "No such resource",
               406: "No acceptable format", 415: "Unsupported media type", 422: "A parameter has the wrong type"}
RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"description": description, "content": {MEDIA_TYPE: {"schema": ProblemDetail.model_json_schema(by_alias=True)}}}
    for status, description in _DOCUMENTED.items()
}
"""The error responses every operation may give, for the OpenAPI document."""


class Problem(Exception):
    """An error the client can act on. `parameter` and `value` say what to change."""

    def __init__(self, status: int, title: str, detail: str, parameter: str | None = None, value: Any = None,
                 headers: dict[str, str] | None = None):
        super().__init__(detail)
        self.status, self.title, self.detail = status, title, detail
        self.parameter, self.value, self.headers = parameter, value, headers
        self.invalid_params: list[dict[str, Any]] | None = None
        """Several parameters at fault (e.g. each field of a rejected document); overrides `parameter`."""

    @classmethod
    def of_issues(cls, status: int, title: str, issues: list[Any]) -> "Problem":
        """A problem listing every issue (metadata.issues.Issue: field, rule, message, value) as an
        invalid parameter; `rule` apart as well (the reason keeps it in brackets for readers of the
        problem+json; the InvalidParam schema allows more keys, as the "in" of request validation
        errors)."""
        problem = cls(status, title, f"{len(issues)} error(s); nothing was written")
        problem.invalid_params = [{"name": issue.field, "reason": f"{issue.message} [{issue.rule}]",
                                   "rule": issue.rule, "value": issue.value} for issue in issues]
        return problem

    def body(self, instance: str) -> dict[str, Any]:
        body: dict[str, Any] = {"type": "about:blank", "title": self.title, "status": self.status,
                                "detail": self.detail, "instance": instance}
        if self.invalid_params is not None:
            body["invalid-params"] = self.invalid_params
        elif self.parameter is not None:
            body["invalid-params"] = [{"name": self.parameter, "reason": self.detail, "value": self.value}]
        return body


def _response(problem: Problem, request: Request) -> JSONResponse:
    return JSONResponse(problem.body(request.url.path), status_code=problem.status, media_type=MEDIA_TYPE,
                        headers=problem.headers)


def install(app: FastAPI) -> None:
    """Every error of the app, ours or the framework's, leaves as problem+json."""

    @app.exception_handler(Problem)
    async def on_problem(request: Request, problem: Problem) -> JSONResponse:
        return _response(problem, request)

    @app.exception_handler(RequestValidationError)
    async def on_invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        params = [{"name": str(error["loc"][-1]), "in": str(error["loc"][0]), "reason": error["msg"],
                   "value": error.get("input")} for error in exc.errors()]
        names = ", ".join(p["name"] for p in params)
        body = {"type": "about:blank", "title": "Invalid request parameter", "status": 422,
                "detail": f"invalid value for {names}", "instance": request.url.path, "invalid-params": params}
        return JSONResponse(jsonable(body), status_code=422, media_type=MEDIA_TYPE)

    @app.exception_handler(RecursionError)
    async def on_too_deep(request: Request, exc: RecursionError) -> JSONResponse:
        # A parser or validator recursing once per level of nested input (JSON in a query string,
        # say: bodies are bounded by api/limits.py first) ran out of stack: the input is at fault.
        _log.warning("RecursionError answered as 400 at %s", request.url.path, exc_info=exc)
        return _response(Problem(400, "Nested too deeply", "the request nests values too deeply to be read"), request)

    @app.exception_handler(HTTPException)
    async def on_http(request: Request, exc: HTTPException) -> JSONResponse:
        title = {404: "Not found", 405: "Method not allowed"}.get(exc.status_code, "HTTP error")
        headers = getattr(exc, "headers", None)
        if exc.status_code == 405:  # Starlette names the methods of the first matching route only
            headers = {**(headers or {}), "Allow": ", ".join(_allowed_methods(request))}
        return _response(Problem(exc.status_code, title, str(exc.detail), headers=headers), request)


def _allowed_methods(request: Request) -> list[str]:
    """Every method some route serves at this path (looking inside included routers)."""
    scope = {**request.scope, "method": "GET"}

    def collect(routes: list[Any]) -> set[str]:
        methods: set[str] = set()
        for route in routes:
            inner = getattr(route, "original_router", None) or getattr(route, "router", None)
            if inner is not None and hasattr(inner, "routes"):
                methods |= collect(inner.routes)
            elif route.matches(scope)[0] != Match.NONE:
                methods |= set(getattr(route, "methods", None) or ())
        return methods

    return sorted(collect(request.app.router.routes) - {"HEAD"})


def jsonable(value: Any) -> Any:
    """Request inputs echoed back in an error may be any type: keep them JSON-safe."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return str(value)
