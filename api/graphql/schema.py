"""The schema: Query (the catalog and the activities around it), Mutation, and the limits every
request is held to (depth, tokens, aliases), with the parse and validation caches."""

from __future__ import annotations

from typing import Annotated, Any, Optional

import strawberry
from graphql import GraphQLError
from strawberry.extensions import (AddValidationRules, MaskErrors, MaxAliasesLimiter, MaxTokensLimiter, ParserCache,
                                   QueryDepthLimiter, ValidationCache)

from ...assistant import MAX_QUESTION_CHARACTERS
from .assets import Module, Tool, _application_named, _listing, _module, _tool
from .assistant import AssistantAnswer, _ask
from .connections import Connection
from .context import Info
from .deployments import (DEPLOYMENTS_FIRST, MAX_DEPLOYMENTS_FIRST, Deployment, DeploymentRecord, _deployment_listing,
                          _deployment_named)
from .errors import _unexpected
from .execution import _ExecutionContext
from .federations import FederatedRound, FederatedSession
from .filters import ApplicationFilter, Sort
from .limits import DEFAULT_FIRST, MAX_ALIASES, MAX_DEPTH, MAX_TOKENS
from .mutations import Mutation
from .provenance import Dataset, Lineage, LineageDirection, TrainingRun, _lineage
from .records import _identified



@strawberry.type(description="The catalog and the activities around it.")
class Query:
    @strawberry.field(description="Modules of the catalog (not tools), filtered, sorted, one keyset page at a time.")
    async def modules(self, info: Info, filter: Optional[ApplicationFilter] = None, sort: Optional[Sort] = None,
                      first: int = DEFAULT_FIRST, after: Optional[str] = None) -> Connection[Module]:
        return await _listing(info, False, filter, sort, first, after, _module)

    @strawberry.field(description="Tools of the catalog (the \"AI4 tools\" category), as `modules`.")
    async def tools(self, info: Info, filter: Optional[ApplicationFilter] = None, sort: Optional[Sort] = None,
                    first: int = DEFAULT_FIRST, after: Optional[str] = None) -> Connection[Tool]:
        return await _listing(info, True, filter, sort, first, after, _tool)

    @strawberry.field(description="One module by name, or null.")
    async def module(self, info: Info, name: str) -> Optional[Module]:
        asset = await _application_named(info, name, tools=False)
        return _module(asset) if asset else None

    @strawberry.field(description="One tool by name, or null.")
    async def tool(self, info: Info, name: str) -> Optional[Tool]:
        asset = await _application_named(info, name, tools=True)
        return _tool(asset) if asset else None

    @strawberry.field(description="One deployment by identifier, as the knowledge graph records it, or null. "
                                  "`deploymentRecord` is the deployments service's record of one it runs.")
    async def deployment(self, info: Info, identifier: str) -> Optional[Deployment]:
        asset = await _identified(info, identifier, "Deployment")
        return Deployment(asset=asset) if asset else None

    @strawberry.field(description=(
        "Deployments the platform runs (REST's GET /v1/deployments), oldest first, one keyset page at a time: "
        "your own by default, a VO's with `vo` (its members), anyone's with `owner` (administrators; others see "
        "only what their VOs hold). Filters: status (queued, starting, running, completed, failed, stopped), "
        "kind (module, tool, try-me, batch), module name and datacenter placed on. Needs credentials."))
    async def deployments(
            self, info: Info, owner: Optional[str] = None, vo: Optional[str] = None, status: Optional[str] = None,
            kind: Optional[str] = None, module: Optional[str] = None, datacenter: Optional[str] = None,
            first: Annotated[int, strawberry.argument(
                description=f"Page size, 1 to {MAX_DEPLOYMENTS_FIRST}.")] = DEPLOYMENTS_FIRST,
            after: Annotated[Optional[str], strawberry.argument(
                description="The endCursor of the previous page (REST's `next` cursors are the same).")] = None,
    ) -> Connection[DeploymentRecord]:
        return await _deployment_listing(info, first, after, owner=owner, vo=vo, status=status, kind=kind,
                                         module=module, datacenter=datacenter)

    @strawberry.field(description=(
        "One deployment the platform runs, by identifier (REST's GET /v1/deployments/{identifier}), or null when "
        "there is none you may see: its owner, the members of its VO and administrators may. Needs credentials."))
    async def deployment_record(self, info: Info, identifier: str) -> Optional[DeploymentRecord]:
        return await _deployment_named(info, identifier)

    @strawberry.field(description="One training run by identifier, or null.")
    async def training_run(self, info: Info, identifier: str) -> Optional[TrainingRun]:
        asset = await _identified(info, identifier, "TrainingRun")
        return TrainingRun(asset=asset) if asset else None

    @strawberry.field(description="One dataset by identifier, or null.")
    async def dataset(self, info: Info, identifier: str) -> Optional[Dataset]:
        asset = await _identified(info, identifier, "Dataset")
        return Dataset(asset=asset) if asset else None

    @strawberry.field(description="The lineage of a node (an asset, a commit, an image, weights ...): what it came "
                      "from (UPSTREAM) or what came from it (DOWNSTREAM), `depth` steps at most; null for an asset "
                      "the reader may not see.")
    async def lineage(self, info: Info, iri: str, direction: LineageDirection = LineageDirection.UPSTREAM,
                      depth: int = 5) -> Optional[Lineage]:
        return await _lineage(info, iri, direction, depth)

    @strawberry.field(description="One federated-learning session by identifier, or null.")
    async def federated_session(self, info: Info, identifier: str) -> Optional[FederatedSession]:
        asset = await _identified(info, identifier, "FederatedSession")
        return FederatedSession(asset=asset) if asset else None

    @strawberry.field(description=(
        "A question in English, answered from the graph with the SPARQL it ran (the assistant, as REST's POST "
        "/v1/assistant/ask): over what the reader may see, never writing. A question that is empty, longer than "
        f"{MAX_QUESTION_CHARACTERS} characters or holds control characters is an error naming the argument "
        "`question`."))
    async def ask(self, info: Info, question: str) -> AssistantAnswer:
        return await _ask(info, question)


class _Schema(strawberry.Schema):
    def process_errors(self, errors: list[GraphQLError], execution_context: Any = None) -> None:
        """Log what went wrong on our side; the client's mistakes are answered, not logged."""
        super().process_errors([error for error in errors if _unexpected(error)], execution_context)


_LIMIT_RULES = [*QueryDepthLimiter(max_depth=MAX_DEPTH).validation_rules,
                *MaxAliasesLimiter(max_alias_count=MAX_ALIASES).validation_rules]
"""The depth and alias rules, built once: the validation cache is keyed by the rule classes, and
strawberry's limiters build new ones for every instance."""
CACHED_DOCUMENTS = 256
"""Query texts whose parse and validation results are kept (least recently used go first)."""

schema = _Schema(
    query=Query,
    mutation=Mutation,
    types=[Module, Tool, Deployment, TrainingRun, FederatedSession, FederatedRound, Dataset],
    execution_context_class=_ExecutionContext,
    extensions=[
        lambda: MaxTokensLimiter(max_token_count=MAX_TOKENS),
        lambda: AddValidationRules(_LIMIT_RULES),
        lambda: ParserCache(maxsize=CACHED_DOCUMENTS),
        lambda: ValidationCache(maxsize=CACHED_DOCUMENTS),
        lambda: MaskErrors(should_mask_error=_unexpected),
    ],
)
