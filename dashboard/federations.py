"""The federations pages: create a federated-learning session, admit and revoke its clients, follow
its rounds.

    GET  /federations                           the viewer's federations and their VOs'
    GET  /federations/new?module=NAME           the form: module, strategy, rounds, clients, privacy ...
    POST /federations/new                       create -> 303 /federations/{id}; refused: the form
                                                again, each error next to its field
    GET  /federations/{id}                      settings, status, server, clients and their keys (by
                                                fingerprint), rounds: metric plots (inline SVG,
                                                dashboard/plots.py), divergence per round, flagged clients
    GET  /federations/{id}/live?rounds=N        the status section alone (polled while it runs)
    POST /federations/{id}/clients              admit a client: the page again, with its private key
                                                shown this once (the platform keeps its fingerprint)
    POST /federations/{id}/clients/{name}/revoke
    POST /federations/{id}/stop

Everything goes through `federated/service.Federations` (on `app.state.federations`) in a worker
thread, with the viewer as the requester, as REST's /v1/federations does: the same checks and
errors, and another VO's federation is not found.
"""

from __future__ import annotations

import statistics
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from ..api.deployments import requester_of
from ..federated.records import FINAL, STRATEGIES, Federation, defaults
from ..federated.service import Federations
from ..graph.store import KnowledgeGraph
from ..metadata.issues import Issue
from ..workloads.service import DeploymentRejected, Requester
from . import plots
from .deployments import datacenters_of
from .forms import (FormField, create_from_form, field_errors, in_thread, posted_form, refused_page, request_of,
                    sign_in_page, visible)
from .links import page_path
from .session import viewer
from .templating import not_found, render

POLL_SECONDS = 5
FEDERATION_FIELDS = (
    FormField("module"), FormField("title"), FormField("vo"), FormField("rounds", "number"), FormField("strategy"),
    FormField("min_fit_clients", "number"), FormField("min_evaluate_clients", "number"),
    FormField("min_available_clients", "number"), FormField("fraction_fit", "number"),
    FormField("fraction_evaluate", "number"), FormField("metric"), FormField("round_timeout_s", "number"),
    FormField("privacy.differential_privacy", "checkbox"), FormField("privacy.metric_privacy", "checkbox"),
    FormField("privacy.noise_multiplier", "number"), FormField("privacy.clipping_norm", "number"),
    FormField("divergence.threshold", "number"), FormField("divergence.revoke", "checkbox"),
    FormField("training.local_epochs", "number"), FormField("training.learning_rate", "number"),
    FormField("training.seed", "number"), FormField("datacenter"))
CLIENT_FIELDS = (FormField("name"),)
SCOPES = (("server_metrics", "server"), ("evaluate_metrics", "clients' evaluation"),
          ("train_metrics", "clients' training"))
"""A round record's metrics, and how the plots name them."""


def initial_values() -> dict[str, str]:
    """The form's values before anything is typed: the request's defaults (from its schema)."""
    values: dict[str, str] = {}
    for key, value in defaults().items():
        if isinstance(value, dict):
            for inner, setting in value.items():
                values[f"{key}.{inner}"] = ("on" if setting else "") if isinstance(setting, bool) else str(setting)
        else:
            values[key] = str(value)
    return values


def may_change(requester: Requester, federation: Federation) -> bool:
    return requester.admin or federation.owner == requester.subject


def rounds_view(federation: Federation, rounds: list[dict[str, Any]]) -> dict[str, Any]:
    """The rounds as the page shows them: per round its updates (named by client), divergence
    scores and the flagged clients, a bar chart of the scores; over all rounds, a line chart per
    metric (server and clients together where both report it), and every flagged client."""
    names = {c.node_id: c.name for c in federation.clients if c.node_id}
    status = {c.node_id: c for c in federation.clients if c.node_id}
    shown, flagged_clients = [], []
    by_metric: dict[str, dict[str, list[tuple[float, float | None]]]] = {}
    for record in rounds:
        number = record["round"]
        divergence = record.get("divergence") or {}
        scores = divergence.get("scores") or []
        outliers = set(divergence.get("flagged") or [])
        threshold = divergence.get("threshold")
        typical = statistics.median(scores) if scores else None
        limit = threshold * typical if threshold is not None and typical is not None else None
        updates = []
        for index, update in enumerate(record.get("updates", [])):
            node = update["node_id"]
            entry = {"node": node, "client": names.get(node, f"node {node}"), "examples": update.get("num_examples"),
                     "weight": update.get("weight"), "norm": update.get("update_norm"), "clipped": update.get("clipped"),
                     "score": scores[index] if index < len(scores) else None, "flagged": index in outliers}
            updates.append(entry)
            if entry["flagged"]:
                client = status.get(node)
                flagged_clients.append({"round": number, "client": entry["client"], "node": node,
                                        "score": entry["score"], "limit": limit,
                                        "status": client.status if client else "unknown",
                                        "reason": client.reason if client else None})
        chart = plots.bar_chart(
            f"divergence-{number}", f"Round {number}: divergence of each client's update",
            [plots.Bar(u["client"], u["score"], u["flagged"]) for u in updates if u["score"] is not None],
            limit=limit, limit_label=f"flagged above {threshold:g} × median" if threshold is not None else "limit",
            y_label="median distance") if scores else None
        metrics = []
        for key, scope in SCOPES:
            for name, value in sorted((record.get(key) or {}).items()):
                metrics.append({"scope": scope, "name": name, "value": value})
                by_metric.setdefault(name, {}).setdefault(scope, []).append((number, value))
        shown.append({"number": number, "started": record.get("started_at"), "ended": record.get("ended_at"),
                      "updates": updates, "metrics": metrics, "chart": chart, "limit": limit, "threshold": threshold,
                      "failures": len(record.get("failures") or []), "sampled": len(record.get("sampled_nodes") or []),
                      "privacy": record.get("privacy")})
    charts = []
    for name, scopes in sorted(by_metric.items(), key=lambda item: (item[0] != federation.settings.get("metric"),
                                                                    item[0])):
        series = [plots.Series(scope, points) for scope, points in scopes.items()]
        charts.append({"name": name, "series": series, "svg": plots.line_chart(
            f"metric-{len(charts)}", f"{name} by round", series, "Round", name)})
    rounds_numbers = [r["number"] for r in shown]
    return {"rounds": shown, "charts": charts, "flagged": flagged_clients, "round_numbers": rounds_numbers}


def router(graph: KnowledgeGraph) -> APIRouter:
    routes = APIRouter(include_in_schema=False)
    base_url = graph.settings.base_url

    def service(request: Request) -> Federations:
        return request.app.state.federations

    def form_page(request: Request, identity: Any, values: dict[str, str], errors: dict[str, list[str]],
                  general: list[Issue], status: int = 200) -> HTMLResponse:
        vo_options = [("", "The module's, if you are a member")] + [(vo, vo) for vo in sorted(identity.vos)]
        return render(request, "federation_new.html", status=status, values=values, errors=errors, general=general,
                      fields={f.name: f for f in FEDERATION_FIELDS},
                      strategies=[(s, s) for s in STRATEGIES], metrics=[("mse", "mse (mean squared error)"),
                                                                        ("mae", "mae (mean absolute error)")],
                      datacenter_options=[("", "Any: the healthy one with the most room")] + [
                          (d["name"], d["label"]) for d in datacenters_of(service(request).deployments)],
                      vo_options=vo_options if len(identity.vos) > 1 else [])

    def detail_page(request: Request, requester: Requester, federation: Federation, status: int = 200,
                    issued: dict[str, Any] | None = None, client_values: dict[str, str] | None = None,
                    client_errors: dict[str, list[str]] | None = None) -> HTMLResponse:
        """The federation's page (built in a worker thread: it reads the ledgers and the CA file)."""
        federations = service(request)
        server = federations.deployments.get(federation.deployment, requester) if federation.deployment else None
        connection = federations.connection(federation)
        view = rounds_view(federation, federations.rounds(federation))
        return render(request, "federation.html", status=status, f=federation, server=server, connection=connection,
                      module_path=page_path(base_url, federation.module_iri), page=page_path(base_url, federation.iri),
                      may_change=may_change(requester, federation), final=federation.status in FINAL,
                      issued=issued, client_values=client_values or {}, client_errors=client_errors or {},
                      client_fields={f.name: f for f in CLIENT_FIELDS}, poll_seconds=POLL_SECONDS,
                      shown_rounds=len(view["rounds"]), **view)

    @routes.get("/federations", response_class=HTMLResponse)
    async def listing(request: Request) -> HTMLResponse:
        identity = viewer(request)
        if identity is None:
            return sign_in_page(request, "see your federations")
        found = await in_thread(lambda: service(request).find(requester_of(identity)))
        return render(request, "federations.html", federations=[
            {"f": f, "module_path": page_path(base_url, f.module_iri),
             "admitted": sum(1 for c in f.clients if c.status == "admitted"),
             "revoked": sum(1 for c in f.clients if c.status == "revoked")} for f in found])

    @routes.get("/federations/new", response_class=HTMLResponse)
    async def new(request: Request) -> HTMLResponse:
        identity = viewer(request)
        if identity is None:
            return sign_in_page(request, "start a federation")
        values = {**initial_values(), "module": request.query_params.get("module", "")}
        return await in_thread(lambda: form_page(request, identity, values, {}, []))

    @routes.post("/federations/new", response_class=HTMLResponse)
    async def create(request: Request) -> Response:
        return await create_from_form(request, service(request), FEDERATION_FIELDS, form_page, "/federations", "start a federation")

    @routes.get("/federations/{identifier}", response_class=HTMLResponse)
    async def detail(request: Request, identifier: str) -> HTMLResponse:
        found = await visible(request, service(request), identifier, "federation", "see this federation")
        if isinstance(found, HTMLResponse):
            return found
        requester, federation = found
        return await in_thread(lambda: detail_page(request, requester, federation))

    @routes.get("/federations/{identifier}/live", response_class=HTMLResponse)
    async def live(request: Request, identifier: str) -> HTMLResponse:
        """The status section alone (what the page's poller swaps in); `rounds`: how many rounds the
        page shows, so that it can say when more were recorded."""
        found = await visible(request, service(request), identifier, "federation", "see this federation")
        if isinstance(found, HTMLResponse):
            return found
        requester, federation = found
        try:
            shown = int(request.query_params.get("rounds", "0"))
        except ValueError:
            shown = 0

        def work() -> HTMLResponse:
            federations = service(request)
            server = federations.deployments.get(federation.deployment, requester) if federation.deployment else None
            recorded = len(federations.rounds(federation))
            return render(request, "federation_live.html", f=federation, server=server,
                          connection=federations.connection(federation), final=federation.status in FINAL,
                          poll_seconds=POLL_SECONDS, shown_rounds=shown, recorded_rounds=recorded)
        return await in_thread(work)

    @routes.post("/federations/{identifier}/clients", response_class=HTMLResponse)
    async def add_client(request: Request, identifier: str) -> Response:
        form = await posted_form(request)
        found = await visible(request, service(request), identifier, "federation", "admit clients")
        if isinstance(found, HTMLResponse):
            return found
        requester, federation = found
        body, values = request_of(form, CLIENT_FIELDS)
        try:
            federation, client, private_key = await in_thread(
                lambda: service(request).add_client(identifier, body.get("name", ""), requester))
        except DeploymentRejected as exc:
            if exc.status == 404:
                return not_found(request, "federation")
            errors, general = field_errors(exc.issues, CLIENT_FIELDS)
            for issue in general:  # not the owner, the federation ended: said at the form too
                errors.setdefault("name", []).append(issue.message)
            status = exc.status
            current = await in_thread(lambda: service(request).get(identifier, requester)) or federation
            return await in_thread(lambda: detail_page(request, requester, current, status,
                                                       client_values=values, client_errors=errors))

        def work() -> HTMLResponse:
            connection = service(request).connection(federation)
            issued = {"name": client.name, "fingerprint": client.fingerprint, "private_key": private_key,
                      "command": ["flower-supernode", "--superlink",
                                  connection["superlink"] or "<the federation's address, shown once it runs>",
                                  "--root-certificates", "ca.pem", "--auth-supernode-private-key", "client.key"]}
            return detail_page(request, requester, federation, 201, issued=issued)
        return await in_thread(work)

    @routes.post("/federations/{identifier}/clients/{name}/revoke", response_class=HTMLResponse)
    async def revoke_client(request: Request, identifier: str, name: str) -> Response:
        await posted_form(request)
        found = await visible(request, service(request), identifier, "federation", "revoke clients")
        if isinstance(found, HTMLResponse):
            return found
        requester, federation = found
        try:
            await in_thread(lambda: service(request).revoke_client(identifier, name, requester))
        except DeploymentRejected as exc:
            if exc.status == 404:
                return not_found(request, "client")
            return refused_page(request, exc, f"/federations/{identifier}")
        return RedirectResponse(f"/federations/{identifier}#clients", status_code=303)

    @routes.post("/federations/{identifier}/stop", response_class=HTMLResponse)
    async def stop(request: Request, identifier: str) -> Response:
        await posted_form(request)
        found = await visible(request, service(request), identifier, "federation", "stop a federation")
        if isinstance(found, HTMLResponse):
            return found
        requester, federation = found
        try:
            await in_thread(lambda: service(request).delete(identifier, requester))
        except DeploymentRejected as exc:
            return refused_page(request, exc, f"/federations/{identifier}")
        return RedirectResponse(f"/federations/{identifier}", status_code=303)

    return routes
