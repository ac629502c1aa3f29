"""GraphQL over HTTP at /graphql: media types and status codes (GraphQL-over-HTTP), and `router`."""

from __future__ import annotations

import json
from typing import Any

from cross_web import HTTPException
from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.requests import HTTPConnection
from strawberry.fastapi import GraphQLRouter
from strawberry.schema.exceptions import InvalidOperationTypeError
from strawberry.types.execution import PreExecutionError
from strawberry.types.unset import UNSET

from ...graph.store import KnowledgeGraph
from ...workloads.service import Deployments
from .. import access
from ..auth import identity_of
from ..negotiation import negotiate
from .context import Context
from .schema import schema

PATH = "/graphql"
GRAPHQL_RESPONSE = "application/graphql-response+json"
JSON_MEDIA = "application/json"


# -- HTTP ----------------------------------------------------------------------------------------

def _is_request_error(result: Any) -> bool:
    """Whether the request failed before execution (parse, validation, variables): no `data` then."""
    if isinstance(result, PreExecutionError):
        return True
    return result.data is None and bool(result.errors) and all(error.path is None for error in result.errors)


class _Router(GraphQLRouter):
    """strawberry's router, with GraphQL-over-HTTP media types and status codes."""

    async def run(  # type: ignore[override]
            self, request: Request, context: Any = UNSET, root_value: Any = UNSET) -> Response:
        if self.is_websocket_request(request) or self.should_render_graphql_ide(self.request_adapter_class(request)):
            return await super().run(request, context, root_value)
        media, _ = negotiate(request.headers.get("accept", ""), [(JSON_MEDIA, None), (GRAPHQL_RESPONSE, None)],
                             "GraphQL response")
        try:
            response = await super().run(request, context, root_value)
        except HTTPException as exc:
            status = 415 if exc.reason == "Unsupported content type" else exc.status_code
            allow = "GET, POST"
            message = exc.reason if status != 415 else \
                "send the request as application/json (POST) or as query parameters (GET)"
            if isinstance(exc.__cause__, InvalidOperationTypeError):  # a mutation sent with GET
                status, allow, message = 405, "POST", f"{exc.reason}: send mutations with POST"
            headers = {"Allow": allow} if status == 405 else {}
            body = {"errors": [{"message": message}]}
            return Response(json.dumps(body), status_code=status, media_type=f"{media}; charset=utf-8", headers=headers)
        response.headers["content-type"] = f"{media}; charset=utf-8"
        if media == GRAPHQL_RESPONSE and getattr(request.state, "graphql_request_error", False):
            response.status_code = 400
        return response

    async def process_result(self, request: Request, result: Any) -> Any:  # type: ignore[override]
        response = await super().process_result(request, result)
        if _is_request_error(result):
            request.state.graphql_request_error = True
            response.pop("data", None)
        return response


def router(graph: KnowledgeGraph, deployments: Deployments | None = None) -> APIRouter:
    """The GraphQL endpoint at /graphql over `graph` (GET and POST; GraphiQL for browsers), and over
    `deployments`, the service REST's /v1/deployments uses (None: the deployment fields answer an
    error, deployments are not served here)."""

    async def context(connection: HTTPConnection) -> Context:  # a Request, or a WebSocket to be refused
        return Context(graph, access.readers_of(connection), identity_of(connection),  # type: ignore[arg-type]
                       deployments)

    # No subscriptions: WebSocket upgrades are refused rather than offered protocols that serve nothing.
    # Left out of the OpenAPI document: GraphQL describes itself (introspection), over GraphQL-over-HTTP.
    routes = _Router(schema, path=PATH, context_getter=context, tags=["graphql"], subscription_protocols=(),
                     include_in_schema=False)

    @routes.api_route(PATH, methods=["PUT", "PATCH", "DELETE"], include_in_schema=False)
    async def other_methods() -> Response:
        body = {"errors": [{"message": "GraphQL is served by GET (queries) and POST"}]}
        return Response(json.dumps(body), status_code=405, media_type=f"{JSON_MEDIA}; charset=utf-8",
                        headers={"Allow": "GET, POST"})

    return routes
