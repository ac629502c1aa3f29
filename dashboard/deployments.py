"""The deployments pages: create, list with live status, follow, delete.

    GET  /deployments                   the viewer's deployments (?vo=NAME: a VO's), status cells kept
                                        fresh by htmx polling GET /deployments/statuses
    GET  /deployments/new?module=NAME   the form: module, kind, resources, datacenter (...)
    POST /deployments/new               create -> 303 /deployments/{id}; refused: the form again, each
                                        error next to its field, the values kept
    GET  /deployments/{id}              what was asked, where it runs, its status history (polled
                                        GET /deployments/{id}/live while it is not over)
    POST /deployments/{id}/delete       stop it -> 303 /deployments/{id}

Everything goes through `workloads/service.Deployments` (on `app.state.deployments`), in a worker
thread, with the viewer as the requester, as REST's /v1/deployments does: the same checks (the
request schema, the catalogue, quotas, capacity), the same errors (each names its field), the same
isolation (another VO's deployment is not found). The form's values become a deployment request as
typed: a number field that holds no number is sent as text, so the schema's own error is shown.

The form helpers (`FormField`, `request_of`, `field_errors`, ...) are dashboard/forms.py's, which
the federations' pages share.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from ..api.deployments import cursor_after, cursor_of, requester_of
from ..api.problems import Problem
from ..graph.store import KnowledgeGraph
from ..metadata.issues import Issue
from ..workloads.records import FINAL, KINDS, Deployment
from ..workloads.service import DeploymentRejected, Deployments
from .forms import (FormField, create_from_form, in_thread, posted_form, refused_page, sign_in_page,
                    visible)
from .links import page_path
from .session import viewer
from .templating import not_found, render

PAGE_SIZE = 50
POLL_SECONDS = 3
"""How often an open page asks for the statuses of deployments that are not over."""
MAX_POLLED = 200
"""The most deployments one status request reports on."""
KIND_LABELS = {"module": "Module API (inference)", "tool": "Development tool (IDE)",
               "try-me": "Try-me (stops after a time limit)", "batch": "Batch job (training)"}
FORM_KINDS = tuple(k for k in KINDS if k != "federated")  # a federation's server starts with its federation


# -- the deployment form ---------------------------------------------------------------------------

DEPLOYMENT_FIELDS = (FormField("module"), FormField("kind"), FormField("title"), FormField("vo"),
                     FormField("resources.cpu", "number"), FormField("resources.memory_mb", "number"),
                     FormField("resources.gpu", "number"), FormField("datacenter"), FormField("command", "lines"),
                     FormField("duration_minutes", "number"))


def datacenters_of(deployments: Deployments) -> list[dict[str, Any]]:
    """The datacenters a deployment may ask for: name, what it has, its last health."""
    capacity = deployments.executor.capacity()
    health = deployments.ledger.health()
    found = []
    for name, room in sorted(capacity.items()):
        has = (f"{room.cpu} cores, {room.memory_mb:,} MiB, {room.gpu} GPU{'s' if room.gpu != 1 else ''}"
               if room is not None else "capacity unknown")
        state = health.get(name, ("unchecked",))[0]
        found.append({"name": name, "label": f"{name} ({has}; {state})"})
    return found


# -- the router -----------------------------------------------------------------------------------------

def router(graph: KnowledgeGraph) -> APIRouter:
    routes = APIRouter(include_in_schema=False)
    base_url = graph.settings.base_url

    def service(request: Request) -> Deployments:
        return request.app.state.deployments

    def row(deployment: Deployment) -> dict[str, Any]:
        return {"d": deployment, "module_path": page_path(base_url, deployment.module_iri),
                "final": deployment.status in FINAL}

    def form_page(request: Request, identity: Any, values: dict[str, str], errors: dict[str, list[str]],
                  general: list[Issue], status: int = 200) -> HTMLResponse:
        vo_options = [("", "The module's, if you are a member")] + [(vo, vo) for vo in sorted(identity.vos)]
        return render(request, "deployment_new.html", status=status, values=values, errors=errors, general=general,
                      fields={f.name: f for f in DEPLOYMENT_FIELDS}, kinds=[(k, KIND_LABELS[k]) for k in FORM_KINDS],
                      datacenter_options=[("", "Any: the healthy one with the most room")] + [
                          (d["name"], d["label"]) for d in datacenters_of(service(request))],
                      vo_options=vo_options if len(identity.vos) > 1 else [])

    @routes.get("/deployments", response_class=HTMLResponse)
    async def listing(request: Request) -> HTMLResponse:
        identity = viewer(request)
        if identity is None:
            return sign_in_page(request, "see your deployments")
        requester = requester_of(identity)
        params = request.query_params
        vo = params.get("vo") or None
        problems = []
        if vo is not None and not (identity.admin or vo in identity.vos):
            problems.append(f"you are not a member of the VO {vo!r}: showing your own deployments")
            vo = None
        try:
            after = cursor_after(params.get("after"))
        except Problem as problem:
            problems.append(f"{problem.detail}: showing the first page")
            after = 0
        found = await in_thread(lambda: service(request).find(requester, vo=vo, after=after, limit=PAGE_SIZE + 1))
        page = found[:PAGE_SIZE]
        rows = [row(d) for _, d in page]
        next_url = (str(request.url.include_query_params(after=cursor_of(page[-1][0])))
                    if len(found) > PAGE_SIZE else None)
        return render(request, "deployments.html", rows=rows, vo=vo, vos=sorted(identity.vos), problems=problems,
                      next_url=next_url, first_url=str(request.url.remove_query_params("after")) if after else None,
                      polled=[r["d"].identifier for r in rows if not r["final"]], poll_seconds=POLL_SECONDS)

    @routes.get("/deployments/statuses", response_class=HTMLResponse)
    async def statuses(request: Request) -> HTMLResponse:
        """The status cells of the deployments asked for (htmx swaps them in by id), and the
        poller again, asking only for those not over (none: polling stops)."""
        identity = viewer(request)
        if identity is None:
            return sign_in_page(request, "see your deployments")
        requester = requester_of(identity)
        asked = list(dict.fromkeys(request.query_params.getlist("id")))[:MAX_POLLED]

        def work() -> list[Deployment]:
            return [d for d in (service(request).get(i, requester) for i in asked) if d is not None]
        found = await in_thread(work)
        return render(request, "deployment_statuses.html", rows=[row(d) for d in found],
                      polled=[d.identifier for d in found if d.status not in FINAL], poll_seconds=POLL_SECONDS)

    @routes.get("/deployments/new", response_class=HTMLResponse)
    async def new(request: Request) -> HTMLResponse:
        identity = viewer(request)
        if identity is None:
            return sign_in_page(request, "deploy a module")
        values = {"module": request.query_params.get("module", ""), "kind": request.query_params.get("kind", "module")}
        return await in_thread(lambda: form_page(request, identity, values, {}, []))

    @routes.post("/deployments/new", response_class=HTMLResponse)
    async def create(request: Request) -> Response:
        return await create_from_form(request, service(request), DEPLOYMENT_FIELDS, form_page, "/deployments", "deploy a module")

    @routes.get("/deployments/{identifier}", response_class=HTMLResponse)
    async def detail(request: Request, identifier: str) -> HTMLResponse:
        found = await visible(request, service(request), identifier, "deployment", "see this deployment")
        if isinstance(found, HTMLResponse):
            return found
        requester, deployment = found
        return render(request, "deployment.html", **row(deployment), may_change=requester.may_change(deployment),
                      page=page_path(base_url, deployment.iri), poll_seconds=POLL_SECONDS)

    @routes.get("/deployments/{identifier}/live", response_class=HTMLResponse)
    async def live(request: Request, identifier: str) -> HTMLResponse:
        """The detail page's status section alone (what its poller swaps in)."""
        found = await visible(request, service(request), identifier, "deployment", "see this deployment")
        if isinstance(found, HTMLResponse):
            return found
        _, deployment = found
        return render(request, "deployment_live.html", **row(deployment), poll_seconds=POLL_SECONDS)

    @routes.post("/deployments/{identifier}/delete", response_class=HTMLResponse)
    async def delete(request: Request, identifier: str) -> Response:
        await posted_form(request)
        identity = viewer(request)
        if identity is None:
            return sign_in_page(request, "delete a deployment")
        try:
            found = await in_thread(lambda: service(request).delete(identifier, requester_of(identity)))
        except DeploymentRejected as exc:
            return refused_page(request, exc, f"/deployments/{identifier}")
        if found is None:
            return not_found(request, "deployment")
        return RedirectResponse(f"/deployments/{identifier}", status_code=303)

    return routes
