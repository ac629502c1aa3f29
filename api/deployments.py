"""REST for deployments: create, list, inspect, delete (/v1/deployments); datacenters and
reconciliation (/v1/workloads).

Every route hands over to `workloads/service.Deployments` in a worker thread (a create maps,
validates and writes, then asks the executor to start it; a delete waits for the process to stop).
Who may see what: a deployment's owner, the members of its VO and administrators read it; only its
owner and administrators delete it; anyone else gets 404, as if it did not exist.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import asdict
from typing import Any, Literal

import anyio.to_thread
from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse

from ..workloads.records import KINDS, STATUSES, Deployment
from ..workloads.service import DeploymentRejected, Deployments, Requester
from .auth import Identity, identity_of
from .limits import loads_json
from .problems import Problem
from .publishing import writer

MAX_REQUEST_BYTES = 256 * 1024


def requester_of(identity: Identity) -> Requester:
    return Requester(identity.subject, identity.vos, identity.admin)


def problem_of(exc: DeploymentRejected) -> Problem:
    """A refused request (deployments, federations) as a problem listing each field at fault."""
    return Problem.of_issues(exc.status, exc.title, exc.issues)


async def json_body(request: Request, what: str) -> Any:
    """The request's JSON body: 413 over MAX_REQUEST_BYTES, 400 when it is not JSON or nests deeper
    than limits.MAX_DOCUMENT_DEPTH (whatever its Content-Type says)."""
    body = await request.body()
    if len(body) > MAX_REQUEST_BYTES:
        raise Problem(413, "Body too large", f"{what} is limited to {MAX_REQUEST_BYTES:,} bytes")
    return loads_json(body)


def answer(deployment: Deployment) -> dict[str, Any]:
    """A deployment as the API shows it (its record; where its secrets are read from stays the
    platform's own business)."""
    return {k: v for k, v in deployment.as_json().items() if k != "secrets_from"}


def cursor_of(seq: int) -> str:
    """The cursor of the page after the deployment with this ledger sequence number (REST and GraphQL)."""
    return base64.urlsafe_b64encode(json.dumps(["deployments", seq]).encode()).decode().rstrip("=")


def cursor_after(cursor: str | None) -> int:
    """The ledger sequence number a cursor of `cursor_of` holds (0: none); 400 when it is not one."""
    if not cursor:
        return 0
    try:
        kind, seq = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        if kind != "deployments" or not isinstance(seq, int):
            raise ValueError
    except (ValueError, TypeError, binascii.Error, UnicodeDecodeError):
        raise Problem(400, "Invalid cursor", "the cursor is not one this API gave out", "cursor", cursor) from None
    return seq


def router(deployments: Deployments) -> APIRouter:
    routes = APIRouter(prefix="/v1/deployments", tags=["deployments"])

    @routes.post("", status_code=201, responses={
        200: {"description": "The same request (same `name`) was made before: nothing new was done"},
        201: {"description": "Created: queued, or already starting when there was room"},
        403: {"description": "Not a member of the VO asked for"},
        409: {"description": "Another deployment has that name"},
        413: {"description": "Body too large"}})
    async def create(request: Request) -> JSONResponse:
        """Deploy a module or tool of the catalogue (kinds: module, tool, try-me, batch). The body
        follows mappings/deployments/deployment.schema.json; errors name the field, the rule and
        the value, and nothing is written. A deployment over a quota, or with no room on any
        healthy datacenter, is created `queued` and says why in `waiting`; it starts when room frees."""
        identity = writer(identity_of(request), "deploy")
        document = await json_body(request, "a deployment request")
        try:
            deployment, created = await anyio.to_thread.run_sync(deployments.create, document,
                                                                  requester_of(identity))
        except DeploymentRejected as exc:
            raise problem_of(exc) from None
        return JSONResponse(answer(deployment), status_code=201 if created else 200,
                            headers={"Location": f"/v1/deployments/{deployment.identifier}"})

    @routes.get("")
    async def listing(request: Request,
                      owner: str | None = Query(None, max_length=300, description="Whose (default: yours; "
                                                "administrators: everyone's)"),
                      vo: str | None = Query(None, max_length=128, description="A VO's deployments (members)"),
                      status: Literal[STATUSES] | None = Query(None),  # type: ignore[valid-type]
                      kind: Literal[KINDS] | None = Query(None),  # type: ignore[valid-type]
                      module: str | None = Query(None, max_length=128),
                      datacenter: str | None = Query(None, max_length=128),
                      limit: int = Query(100, ge=1, le=1000),
                      cursor: str | None = Query(None, max_length=200)) -> dict[str, Any]:
        """Deployments, oldest first, a page at a time (`next` is the cursor of the following page)."""
        identity = writer(identity_of(request), "list deployments")
        after = cursor_after(cursor)
        found = await anyio.to_thread.run_sync(lambda: deployments.find(
            requester_of(identity), owner=owner, vo=vo, status=status, kind=kind, module=module,
            datacenter=datacenter, after=after, limit=limit + 1))
        page = found[:limit]
        return {"deployments": [answer(d) for _, d in page],
                "next": cursor_of(page[-1][0]) if len(found) > limit else None}

    # the control plane's own routes, apart from /v1/deployments/{identifier}
    control = APIRouter(prefix="/v1/workloads", tags=["deployments"])

    @control.get("/datacenters")
    async def datacenters(request: Request) -> dict[str, Any]:
        """Each datacenter: its capacity, what active deployments hold there, its last health."""
        writer(identity_of(request), "see the datacenters")

        def work() -> dict[str, Any]:
            capacity = deployments.executor.capacity()
            used = deployments.ledger.usage("datacenter")
            health = deployments.ledger.health()
            return {"executor": deployments.executor.name, "datacenters": [
                {"name": name, "capacity": asdict(room) if room else None,
                 "used": asdict(used[name]) if name in used else None,
                 "health": dict(zip(("status", "latency_s", "detail", "checked"), health[name]))
                 if name in health else None}
                for name, room in sorted(capacity.items())]}
        return await anyio.to_thread.run_sync(work)

    @control.post("/reconcile", responses={403: {"description": "Not a platform administrator"}})
    async def reconcile(request: Request) -> dict[str, Any]:
        """Compare the workload manager with the graph now and repair the difference (the control
        loop does this every few seconds while the server runs)."""
        identity = writer(identity_of(request), "reconcile")
        if not identity.admin:
            raise Problem(403, "Forbidden", "only a platform administrator may start a reconciliation")
        report = await anyio.to_thread.run_sync(deployments.reconcile)
        return asdict(report)

    @control.get("/repairs", responses={403: {"description": "Not a platform administrator"}})
    async def repairs(request: Request, limit: int = Query(100, ge=1, le=10_000)) -> dict[str, Any]:
        """What the reconciler repaired, newest first."""
        identity = writer(identity_of(request), "see repairs")
        if not identity.admin:
            raise Problem(403, "Forbidden", "only a platform administrator may see the repairs")
        found = await anyio.to_thread.run_sync(deployments.ledger.repairs, limit)
        return {"repairs": [asdict(r) for r in found]}

    @routes.get("/{identifier}", responses={404: {"description": "No such deployment (that you may see)"}})
    async def inspect(request: Request, identifier: str) -> dict[str, Any]:
        """One deployment: what was asked, where it runs, its endpoints and its status history."""
        identity = writer(identity_of(request), "see deployments")
        found = await anyio.to_thread.run_sync(deployments.get, identifier, requester_of(identity))
        if found is None:
            raise Problem(404, "Not found", f"no deployment {identifier!r}", "identifier", identifier)
        return answer(found)

    @routes.delete("/{identifier}", responses={403: {"description": "Not its owner"},
                                               404: {"description": "No such deployment (that you may see)"}})
    async def delete(request: Request, identifier: str) -> dict[str, Any]:
        """Stop the deployment and free its resources. Its record stays, `stopped`, with its history
        (it is an activity of the graph's provenance); deleting it again changes nothing."""
        identity = writer(identity_of(request), "delete deployments")
        try:
            found = await anyio.to_thread.run_sync(deployments.delete, identifier, requester_of(identity))
        except DeploymentRejected as exc:
            raise problem_of(exc) from None
        if found is None:
            raise Problem(404, "Not found", f"no deployment {identifier!r}", "identifier", identifier)
        return answer(found)

    both = APIRouter()
    both.include_router(routes)
    both.include_router(control)
    return both
