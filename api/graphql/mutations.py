"""Mutations: publishing and withdrawing modules (api/publishing.py, as REST's PUT and DELETE
/v1/catalog/modules/{name}/metadata), creating and deleting deployments (the deployments service, as
REST's POST and DELETE /v1/deployments)."""

from __future__ import annotations

from enum import Enum
from typing import Optional

import anyio.to_thread
import strawberry
from strawberry.scalars import JSON

from ...workloads.service import DeploymentRejected
from ..deployments import requester_of
from ..problems import Problem, jsonable
from ..publishing import publish_module, withdraw_module
from .assets import Application, _application
from .context import Info
from .deployments import (CreateDeploymentPayload, DeploymentRecord, _deployment_record, _deployment_request,
                          _deployments_service)
from .errors import _problem_error, _rejected_error


# -- mutations -----------------------------------------------------------------------------------

@strawberry.enum(description="How `metadata` is written.")
class MetadataFormat(Enum):
    YAML = "yaml"
    JSON = "json"


@strawberry.enum(description="Who may read a module: everyone (PUBLIC), or the members of its VO and the "
                             "platform administrators (VIRTUAL_ORGANISATION, PRIVATE).")
class Visibility(Enum):
    PUBLIC = "public"
    VIRTUAL_ORGANISATION = "virtual-organisation"
    PRIVATE = "private"  # catalog.VISIBILITIES, which the import checks



@strawberry.type(description="A remark on a published document that did not stop it (an error would have).")
class MetadataIssue:
    field: str = strawberry.field(description="The field path as written in the document, e.g. links.source_code.")
    rule: str = strawberry.field(description="The rule, short and stable: url, date, required, vocabulary ...")
    message: str
    value: Optional[JSON] = strawberry.field(description="The value at fault, shortened; null when missing.")


@strawberry.type(description="What publishModule wrote.")
class PublishModulePayload:
    module: Optional[Application] = strawberry.field(description=(
        "The module as the store holds it after the write (a Tool when its categories make it one)."))
    created: bool = strawberry.field(description="True for a new module, false when it replaced one.")
    warnings: list[MetadataIssue]


@strawberry.type(description="What withdrawModule removed.")
class WithdrawModulePayload:
    name: str
    iri: str
    withdrawn: bool = strawberry.field(description="True: the module and its graph are gone.")


@strawberry.type(description="Publishing and withdrawing modules, with the rights and checks of REST's PUT and "
                             "DELETE /v1/catalog/modules/{name}/metadata (api/publishing.py); creating and deleting "
                             "deployments, as REST's POST and DELETE /v1/deployments. POST only.")
class Mutation:
    @strawberry.mutation(description=(
        "Publish module `name` from its ai4-metadata document, or replace it. The same checks as `ai4kg import` "
        "(schema, mapping, SHACL): any error writes nothing and names each field in "
        "extensions.invalidParams. Needs credentials; a member of a VO publishes for that VO (`vo` may be left "
        "out by a member of one VO only); a module of another VO cannot be replaced."))
    async def publish_module(self, info: Info, name: str, metadata: str,
                             format: MetadataFormat = MetadataFormat.YAML, vo: Optional[str] = None,
                             visibility: Visibility = Visibility.PUBLIC) -> Optional[PublishModulePayload]:
        context = info.context
        body = metadata.encode("utf-8", "surrogatepass")  # text the loader cannot decode is its error to report
        try:
            published = await anyio.to_thread.run_sync(
                lambda: publish_module(context.graph, context.identity, name, body, format is MetadataFormat.JSON,
                                       vo, visibility.value))
        except Problem as problem:
            raise _problem_error(problem) from None
        context.forget()
        asset = await context.assets.load(published.iri)
        return PublishModulePayload(
            module=_application(asset) if asset is not None else None, created=published.created,
            warnings=[MetadataIssue(field=w["field"], rule=w["rule"], message=w["message"], value=jsonable(w["value"]))
                      for w in published.warnings])

    @strawberry.mutation(description=(
        "Withdraw module `name`: its graph is removed. Needs credentials and membership of the module's VO; "
        "a module you cannot see is NOT_FOUND."))
    async def withdraw_module(self, info: Info, name: str) -> Optional[WithdrawModulePayload]:
        context = info.context
        try:
            iri = await anyio.to_thread.run_sync(withdraw_module, context.graph, context.identity, name)
        except Problem as problem:
            raise _problem_error(problem) from None
        context.forget()
        return WithdrawModulePayload(name=name, iri=iri, withdrawn=True)

    @strawberry.mutation(description=(
        "Deploy a module or tool of the catalog, as REST's POST /v1/deployments: `request` is the same document "
        "(mappings/deployments/deployment.schema.json: kind, module, version, resources, command ...), as an "
        "object or as its JSON text. Errors name each field with its rule and value in extensions.invalidParams, "
        "and nothing is created. A deployment over a quota, or with no room on any healthy datacenter, is "
        "created `queued` and says why in `waiting`. Needs credentials."))
    async def create_deployment(self, info: Info, request: JSON) -> Optional[CreateDeploymentPayload]:
        service, identity = _deployments_service(info, "deploy")
        body = _deployment_request(request)
        try:
            deployment, created = await anyio.to_thread.run_sync(service.create, body, requester_of(identity))
        except DeploymentRejected as rejected:
            raise _rejected_error(rejected, "request") from None
        info.context.forget()
        return CreateDeploymentPayload(deployment=_deployment_record(deployment), created=created)

    @strawberry.mutation(description=(
        "Stop a deployment and free its resources, as REST's DELETE /v1/deployments/{identifier}; answers it "
        "after (stopped). Its record stays, with its history; deleting it again changes nothing. Only its owner "
        "and administrators may; one you cannot see is NOT_FOUND. Needs credentials."))
    async def delete_deployment(self, info: Info, identifier: str) -> Optional[DeploymentRecord]:
        service, identity = _deployments_service(info, "delete deployments")
        try:
            found = await anyio.to_thread.run_sync(service.delete, identifier, requester_of(identity))
        except DeploymentRejected as rejected:
            raise _rejected_error(rejected, "identifier") from None
        info.context.forget()
        if found is None:
            raise _problem_error(Problem(404, "Not found", f"no deployment {identifier!r}", "identifier", identifier))
        return _deployment_record(found)
