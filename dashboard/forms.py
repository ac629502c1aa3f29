"""Forms of the dashboard's writing pages (deployments, federations): the values as typed become a
service request; the service's issues become errors on the fields; CSRF, sign-in and refusals.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Protocol, TypeVar

import anyio.to_thread
from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse

from ..api.deployments import requester_of
from ..metadata.issues import Issue
from ..workloads.service import DeploymentRejected, Requester
from .session import check_csrf, viewer
from .templating import not_found, render

T = TypeVar("T", covariant=True)


@dataclass(frozen=True)
class FormField:
    name: str
    """The request's field path (also the form field's name): resources.cpu, privacy.metric_privacy."""
    type: str = "text"
    """text, number (sent as a JSON number when it reads as one), lines (one list item per line),
    checkbox (true when present)"""

    @property
    def id(self) -> str:
        return "f-" + self.name.replace(".", "-").replace("_", "-")


def number_or_text(text: str) -> Any:
    """A form's number as JSON would hold it: an integer, else a finite float, else the text itself
    (for the request schema to refuse with its own message)."""
    try:
        return int(text)
    except ValueError:
        pass
    try:
        value = float(text)
    except ValueError:
        return text
    return value if math.isfinite(value) else text


def request_of(form: Any, fields: Iterable[FormField]) -> tuple[dict[str, Any], dict[str, str]]:
    """The request document the form's values make (empty fields left out: the service's defaults
    apply), and the values to show again in the form."""
    body: dict[str, Any] = {}
    shown: dict[str, str] = {}
    for field in fields:
        raw = form.get(field.name)
        text = raw.strip() if isinstance(raw, str) else ""
        if field.type == "checkbox":
            value: Any = raw is not None
            shown[field.name] = "on" if value else ""
        else:
            shown[field.name] = raw if isinstance(raw, str) else ""
            if not text:
                continue
            if field.type == "number":
                value = number_or_text(text)
            elif field.type == "lines":
                value = [line.strip() for line in text.splitlines() if line.strip()]
            else:
                value = text
        *groups, last = field.name.split(".")
        target = body
        for group in groups:
            target = target.setdefault(group, {})
        target[last] = value
    return body, shown


def field_errors(issues: Iterable[Issue], fields: Iterable[FormField]) -> tuple[dict[str, list[str]], list[Issue]]:
    """The issues' messages by the form field they belong to, and the issues no field of the form
    shows (said above the form). `command[2]` belongs to `command`; a field's sub-field
    (`resources.cpu` of `resources`) to the field."""
    names = {f.name for f in fields}
    by_field: dict[str, list[str]] = {}
    elsewhere: list[Issue] = []
    for issue in issues:
        path = issue.field.split("[", 1)[0]
        owner = next((n for n in sorted(names, key=len, reverse=True) if path == n or path.startswith(n + ".")), None)
        if owner is None:
            elsewhere.append(issue)
        else:
            by_field.setdefault(owner, []).append(issue.message)
    return by_field, elsewhere


def sign_in_page(request: Request, action: str) -> HTMLResponse:
    """The page an anonymous visitor gets where signing in is needed (401)."""
    response = render(request, "deployments_sign_in.html", status=401, action=action)
    response.headers["WWW-Authenticate"] = "Bearer"
    return response


def refused_page(request: Request, exc: DeploymentRejected, back: str) -> HTMLResponse:
    """A refused change that belongs to no form field (not the owner, the federation ended)."""
    return render(request, "message.html", status=exc.status, heading=exc.title,
                  message="; ".join(i.message for i in exc.issues), back=back)


async def posted_form(request: Request) -> Any:
    """The form of a POST, once its CSRF token is checked (CsrfFailed otherwise: a 403 page)."""
    form = await request.form()
    check_csrf(request, form.get("csrf"))
    return form


async def in_thread(work: Callable[[], Any]) -> Any:
    return await anyio.to_thread.run_sync(work)


class Finder(Protocol[T]):
    def get(self, identifier: str, requester: Requester) -> T | None: ...


async def visible(request: Request, service: Finder[T], identifier: str, what: str,
                  action: str) -> tuple[Requester, T] | HTMLResponse:
    """The signed-in viewer as a requester and the service's `what` of that id; or the page that
    says why not: sign in first (to `action`), or not found (also what they may not see)."""
    identity = viewer(request)
    if identity is None:
        return sign_in_page(request, action)
    requester = requester_of(identity)
    found = await in_thread(lambda: service.get(identifier, requester))
    if found is None:
        return not_found(request, what)
    return requester, found


async def create_from_form(request: Request, service: Any, fields: Iterable[FormField], form_page: Callable[..., Any],
                           pages: str, action: str) -> Any:
    """A creation form posted: CSRF, sign-in (to `action`), the service's `create` with the form's
    request; refused, the form again with each issue on its field and the values kept; created,
    303 to its page under `pages`."""
    form = await posted_form(request)
    identity = viewer(request)
    if identity is None:
        return sign_in_page(request, action)
    body, values = request_of(form, fields)
    try:
        created, _ = await in_thread(lambda: service.create(body, requester_of(identity)))
    except DeploymentRejected as exc:  # a federation's FederationRejected too, or its server's refusal
        errors, general, status = *field_errors(exc.issues, fields), exc.status
        return await in_thread(lambda: form_page(request, identity, values, errors, general, status))
    return RedirectResponse(f"{pages}/{created.identifier}", status_code=303)
