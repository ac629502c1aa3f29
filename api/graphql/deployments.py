"""Deployments, two ways: `Deployment`, the knowledge graph's record of one (whatever ran it), and
`DeploymentRecord`, the deployments service's (workloads/service.Deployments, REST's /v1/deployments),
with the service's listing, lookup and the request document createDeployment sends it."""

from __future__ import annotations

import datetime
import json
from typing import Any, Optional

import anyio.to_thread
import strawberry
from graphql import GraphQLError

from ...workloads import records as deployment_records
from ...workloads.service import Deployments
from ..auth import Identity
from ..deployments import MAX_REQUEST_BYTES, cursor_after, cursor_of, requester_of
from ..limits import loads_json
from ..problems import Problem
from ..publishing import writer
from .connections import Connection, Edge, PageInfo
from .context import Info, _subclasses
from .errors import InputError, _problem_error
from .records import Activity
from .values import _datetime


@strawberry.type(description="A workload run for a user on a datacenter (a Nomad job).")
class Deployment(Activity):
    @strawberry.field(description="The most specific class: ModuleDeployment, BatchTrainingDeployment, "
                                  "TryMeDeployment, ToolDeployment or Deployment.")
    def kind(self) -> str:
        specific = sorted(self.asset.classes & _subclasses()["Deployment"] - {"Deployment"})
        return specific[0] if specific else "Deployment"

    @strawberry.field
    def docker_image(self) -> Optional[str]:
        return self.asset.text("dockerImage")

    @strawberry.field
    def nomad_job(self) -> Optional[str]:
        return self.asset.text("nomadJob")

    @strawberry.field(description="The module or tool deployed (ai4kg:deploys); null if the reader may not see it.")
    async def module(self, info: Info) -> Optional[Application]:
        found = await info.context.linked(self.asset.iris("deploys"), "Application")
        return _application(found[0]) if found else None


# -- deployments, as the deployments service keeps them -------------------------------------------

DEPLOYMENTS_FIRST = 100
MAX_DEPLOYMENTS_FIRST = 1000
"""Page size of `deployments`, as REST's GET /v1/deployments `limit`."""
_DEPLOYMENT_FILTER_LENGTHS = {"owner": 300, "vo": 128, "module": 128, "datacenter": 128}
"""The longest value of each text filter, as REST allows."""


@strawberry.type(description="The resources a deployment holds while it runs (units of a deployment request).")
class DeploymentResources:
    cpu: int = strawberry.field(description="Cores.")
    memory_mb: int = strawberry.field(description="Memory, MiB (also a hard limit of the job).")
    gpu: int = strawberry.field(description="GPUs.")
    gpu_model: Optional[str] = strawberry.field(description="The GPU model asked for; null: any.")
    disk_mb: int = strawberry.field(description="Disk, MiB.")


@strawberry.type(description="Where a deployment listens: a label of the request's endpoints, the port inside "
                             "its task, and the URL it answers on.")
class DeploymentEndpoint:
    label: str
    port: Optional[int] = strawberry.field(description="The port inside the task (the request's `endpoints`).")
    url: Optional[str] = strawberry.field(description="The URL it answers on (REST's `urls`); null until it runs, "
                                                      "and again once it ended.")


@strawberry.type(description="A status a deployment entered: when, and why.")
class DeploymentChange:
    status: str
    at: datetime.datetime
    reason: str


@strawberry.type(description=(
    "A deployment as the platform's deployments service keeps it: what was asked, where it runs, its endpoints "
    "and its status history; the same record as REST's GET /v1/deployments/{identifier}. Its owner, the members "
    "of its VO and administrators see it. (`Deployment` is a deployment as the knowledge graph records it, "
    "whatever ran it.)"))
class DeploymentRecord:
    module_iri: str = strawberry.field(description="The IRI of the module or tool deployed.")
    identifier: str
    iri: str = strawberry.field(description="The deployment's IRI, also the name of its graph.")
    kind: str = strawberry.field(description="module, tool, try-me or batch.")
    owner: str = strawberry.field(description="The account that created it.")
    vo: str = strawberry.field(description="The VO whose namespace and quotas it uses.")
    module: str = strawberry.field(description="The name of the module or tool deployed.")
    version: str = strawberry.field(description="The tag of the module's image it runs.")
    image: str = strawberry.field(description="The image reference it runs.")
    title: str
    description: str
    status: str = strawberry.field(description="queued, starting, running, completed, failed or stopped.")
    waiting: Optional[str] = strawberry.field(description="Why a queued deployment waits (a quota, no room).")
    datacenter: Optional[str] = strawberry.field(description="The datacenter asked for; null: any.")
    placed_on: Optional[str] = strawberry.field(description="The datacenter it was placed on, once placed.")
    executor: str = strawberry.field(description="The workload manager that runs it (local, nomad).")
    resources: DeploymentResources
    endpoints: list[DeploymentEndpoint]
    datasets: list[str] = strawberry.field(description="The DOIs of the datasets it reads.")
    storage: Optional[str] = strawberry.field(description="The storage it mounts.")
    notify: Optional[str] = strawberry.field(description="Who is mailed when it ends (not in the graph).")
    command: Optional[list[str]] = strawberry.field(description="The command of a batch job.")
    expires_at: Optional[datetime.datetime] = strawberry.field(description="When a try-me deployment is stopped.")
    created_at: datetime.datetime
    started_at: Optional[datetime.datetime]
    ended_at: Optional[datetime.datetime]
    history: list[DeploymentChange] = strawberry.field(description="Every status it entered, oldest first.")

    @strawberry.field(description="The module or tool deployed, from the catalog; null if the reader may not see "
                                  "it (or it was withdrawn since).")
    async def deploys(self, info: Info) -> Optional[Application]:
        found = await info.context.linked([self.module_iri], "Application")
        return _application(found[0]) if found else None


def _deployment_record(deployment: deployment_records.Deployment) -> DeploymentRecord:
    """The GraphQL view of a record of the service (what REST answers as JSON)."""
    r = deployment.resources
    labels = list(dict.fromkeys([*deployment.endpoints, *deployment.urls]))
    return DeploymentRecord(
        module_iri=deployment.module_iri, identifier=deployment.identifier, iri=deployment.iri, kind=deployment.kind,
        owner=deployment.owner, vo=deployment.vo, module=deployment.module, version=deployment.version,
        image=deployment.image, title=deployment.title, description=deployment.description,
        status=deployment.status, waiting=deployment.waiting, datacenter=deployment.datacenter,
        placed_on=deployment.placed_on, executor=deployment.executor,
        resources=DeploymentResources(cpu=r["cpu"], memory_mb=r["memory_mb"], gpu=r["gpu"],
                                      gpu_model=r.get("gpu_model"), disk_mb=r["disk_mb"]),
        endpoints=[DeploymentEndpoint(label=label, port=deployment.endpoints.get(label), url=deployment.urls.get(label))
                   for label in labels],
        datasets=list(deployment.datasets), storage=deployment.storage, notify=deployment.notify,
        command=list(deployment.command) if deployment.command is not None else None,
        expires_at=_datetime(deployment.expires_at),
        created_at=_datetime(deployment.created_at),  # type: ignore[arg-type]  # the record's own times: valid
        started_at=_datetime(deployment.started_at), ended_at=_datetime(deployment.ended_at),
        history=[DeploymentChange(status=c.status, at=_datetime(c.at), reason=c.reason)  # type: ignore[arg-type]
                 for c in deployment.history])


def _deployments_service(info: Info, action: str) -> tuple[Deployments, Identity]:
    """The service and the signed-in requester, or the GraphQL error REST's 401 is (or: not served here)."""
    context = info.context
    if context.deployments is None:
        raise GraphQLError("deployments are not served here", extensions={"code": "NOT_IMPLEMENTED", "status": 501})
    try:
        return context.deployments, writer(context.identity, action)
    except Problem as problem:
        raise _problem_error(problem) from None


async def _deployment_listing(info: Info, first: int, after: Optional[str], **filters: Optional[str]
                              ) -> Connection[DeploymentRecord]:
    service, identity = _deployments_service(info, "list deployments")
    if not 1 <= first <= MAX_DEPLOYMENTS_FIRST:
        raise InputError(f"first must be between 1 and {MAX_DEPLOYMENTS_FIRST}", "first", first)
    for name, value in filters.items():
        longest = _DEPLOYMENT_FILTER_LENGTHS.get(name)
        if value is not None and longest is not None and len(value) > longest:
            raise InputError(f"{name} is at most {longest} characters", name, value[:longest] + "...")
    for name, allowed in (("status", deployment_records.STATUSES), ("kind", deployment_records.KINDS)):
        if filters[name] is not None and filters[name] not in allowed:
            raise InputError(f"{filters[name]!r} is not a {name} of deployments; allowed: {', '.join(allowed)}",
                             name, filters[name])
    try:
        position = cursor_after(after)
    except Problem as problem:
        raise InputError(problem.detail, "after", after) from None
    requester = requester_of(identity)
    found = await anyio.to_thread.run_sync(lambda: service.find(requester, **filters, after=position, limit=first + 1))
    edges = [Edge(cursor=cursor_of(seq), node=_deployment_record(deployment))
             for seq, deployment in found[:first]]
    return Connection(edges=edges, page_info=PageInfo(
        has_next_page=len(found) > first, has_previous_page=bool(after),
        start_cursor=edges[0].cursor if edges else None, end_cursor=edges[-1].cursor if edges else None))


async def _deployment_named(info: Info, identifier: str) -> Optional[DeploymentRecord]:
    service, identity = _deployments_service(info, "see deployments")
    found = await anyio.to_thread.run_sync(service.get, identifier, requester_of(identity))
    return _deployment_record(found) if found is not None else None


def _deployment_request(request: Any) -> Any:
    """The request as REST's POST /v1/deployments body reads it: given as an object, or as its JSON text."""
    if isinstance(request, str):
        text = request
        if len(text.encode("utf-8", "surrogatepass")) > MAX_REQUEST_BYTES:
            raise _problem_error(Problem(413, "Body too large",
                                         f"a deployment request is limited to {MAX_REQUEST_BYTES:,} bytes"), "request")
        try:
            return loads_json(text, "request")
        except Problem as problem:
            raise _problem_error(problem, "request") from None
    if len(json.dumps(request, ensure_ascii=False).encode("utf-8", "surrogatepass")) > MAX_REQUEST_BYTES:
        raise _problem_error(Problem(413, "Body too large",
                                     f"a deployment request is limited to {MAX_REQUEST_BYTES:,} bytes"), "request")
    return request


@strawberry.type(description="What createDeployment did.")
class CreateDeploymentPayload:
    deployment: DeploymentRecord
    created: bool = strawberry.field(description=(
        "True: queued now (and started when there was room); false: the same request (same `name`) was made "
        "before and nothing new was done."))


# At the end, as the types link both ways: the resolvers above name these, and strawberry reads
# their annotations only when the schema is built. The type modules import one another only here,
# or records.py (the base interfaces, which imports none), so any import order works.
from .assets import Application, _application  # noqa: E402
