"""GraphQL at /graphql (strawberry): the catalog and the activities around it; publishing modules.

    modules(filter, sort, first, after) / tools(...)   Relay connections, keyset cursors
    module(name) / tool(name)                          one application, or null
    deployment / trainingRun / dataset / federatedSession(identifier)
    lineage(iri, direction, depth)                     provenance: what a node came from, or what came from it
    mutation publishModule(name, metadata, format, vo, visibility) / withdrawModule(name)
    deployments(owner, vo, status, kind, module, datacenter, first, after)   what the platform runs:
    deploymentRecord(identifier)                                             the deployments service
    mutation createDeployment(request) / deleteDeployment(identifier)        (REST's /v1/deployments)
    ask(question)                       the assistant: a question in English, answered with its SPARQL

Types: Module and Tool (both `Application`), Deployment, TrainingRun, Dataset and FederatedSession,
with their links both ways: Module.deployments and Module.trainingRuns, TrainingRun.module and
TrainingRun.datasets, Deployment.module, Dataset.trainingRuns ... Tools are the modules in the
"AI4 tools" category, as in the REST catalog.

Reads go the same ways as REST: listings through `SearchIndex.filter` (facets, keyset pages,
VO visibility), an application's fields through `catalog.document_of`, and links through
parameterised SPARQL over the ontology terms (ai4kg:deploys, ai4kg:trainedModule,
ai4kg:usedDataset): values are bound as variables, never pasted into query text. Every request's
reader comes from `access.readers_of`, and every asset it reaches, listed or linked, passes the same
visibility rule, so other VOs' non-public assets never appear (links to them are left out, or null).

Lookups are batched per request with DataLoaders: the graphs of all the assets a level of the answer
needs are read together, and the links pointing at them with one SELECT per 20 assets (Oxigraph's
planning time grows with the square of a UNION's branches; 20 keeps each query under a
millisecond). From the embedded store each graph is a point read (no query to plan: twice as fast
as one CONSTRUCT over the same graphs); from a SPARQL server (AI4KG_SPARQL_STORE) the graphs come
in one CONSTRUCT, one round trip, named by the protocol dataset. A page of 50 modules with their
deployments takes one index page, the 50 module graphs, 3 link queries and the deployments'
graphs; the deployments' `module` links are the page's modules, not read again. A listing reads its
index page in one worker-thread hop: the index rows (`SearchIndex.filter`) carry each asset's sort
value, VO and visibility, enough for the cursors, the order of merged branches and the vo /
visibility fields, and the index query has already left out what the reader may not see. Only when
the query asks for fields of the ai4-metadata document are the page's graphs read (in the same hop,
documents included), and then the visibility their statements give is checked once more on the way.
An application's fields are plain attributes to strawberry, computed from the asset when read, and
such plain fields (most of a page) are completed by a short way past graphql-core's per-field
machinery (`_ExecutionContext`), with graphql-core's usual way for anything out of the ordinary.

Filters compose with and / or / not over tags, tasks, libraries, categories and data types
(`in`: at least one of, `all`: every one of), created / updated date ranges and free text. The
filter is brought into disjunctive normal form; each AND branch becomes one `FacetQuery`
(negation maps onto none_of / not_all_of), each branch is read up to first + 1 rows after the
cursor, and the branches are merged by (sort value, IRI), so an OR across fields keeps the sort
order and the keyset cursors. Date ranges are not in the search index: the IRIs whose date falls in
a range come from one SPARQL query, and a branch with a date condition reads the index page by page
until it has first + 1 matches (exact pages, at a cost that grows with the rows it skips; a range
on the sort key itself becomes a keyset window, so only rows inside it are read).

Limits: query depth, tokens and aliases (strawberry's validators; the parse and validation of the
last 256 query texts are kept, so a repeated query is neither parsed nor walked again); `first` at
most 100; a filter nests at most 8 levels, holds at most 64 conditions of at most 100 values each,
and expands to at most 16 branches. Linked lists (Module.deployments ...) are not paged: each lists
every visible link.

GraphQL-over-HTTP: responses are application/graphql-response+json when the client accepts it
(requests that fail before execution then get 400 and no `data`), otherwise application/json with
200; bad JSON or parameters get 400, other request bodies 415, other methods 405 (and a mutation
sent with GET 405, Allow: POST), an Accept that allows neither JSON type 406.

Mutations go through api/publishing.py, as REST's PUT and DELETE /v1/catalog/modules/{name}/metadata
do: the same rights (credentials from the request; a member of a VO publishes for that VO; another
VO's module can be neither replaced nor withdrawn, nor seen to exist if it is not public) and the
same validated import (schema, mapping, SHACL; any error writes nothing). A refusal is a GraphQL
error with the problem's detail as message and, in extensions, `code` (UNAUTHENTICATED, FORBIDDEN,
NOT_FOUND, BAD_USER_INPUT), `status` (REST's HTTP status) and the `argument` at fault, or for
invalid metadata `invalidParams`: each field with its rule, reason and value. publishModule answers
the module as re-read from the store after the write.

Deployments the platform runs come from the deployments service (workloads/service.Deployments),
the one REST's /v1/deployments uses, handed to `router`: `deployments`, `deploymentRecord`,
createDeployment and deleteDeployment call its find / get / create / delete in a worker thread, with
REST's rights (credentials needed, else UNAUTHENTICATED; the owner, the VO's members and
administrators read; the owner and administrators delete; what one may not see is null, or
NOT_FOUND), REST's request document (createDeployment's `request`, an object or its JSON text), REST's
cursors, and REST's refusals (each field, rule and value in invalidParams, argument `request`).
DeploymentRecord is the service's record (REST's JSON, in GraphQL's names); `Deployment` stays the
knowledge graph's record of a deployment, whatever ran it, read under the graph's visibility rule.
Without a service (`router(graph)`), the deployment fields answer "deployments are not served here".

`ask(question)` is the assistant (ai4kg.assistant, REST's POST /v1/assistant/ask): it runs with the
reader's rights (`access.readers_of`) in the threads that answer reads, and a question that is not
one (empty, too long, control characters) is a BAD_USER_INPUT error naming the argument `question`.

The package, by type: context.py (Context, its DataLoaders, `Asset` and the store reads), assets.py
(Application, Module, Tool and their listings), filters.py (ApplicationFilter, Sort and their reading
into index queries), connections.py, records.py (the Record and Activity interfaces), deployments.py
(Deployment, DeploymentRecord and the deployments service), provenance.py (TrainingRun, Dataset,
Lineage), federations.py (FederatedSession, FederatedRound), assistant.py (AssistantAnswer),
mutations.py (Mutation and its payloads), errors.py, values.py, limits.py, execution.py (the short way
for plain fields), schema.py (Query, the strawberry Schema and its limits) and http.py (`router`).
"""

from __future__ import annotations

# What other modules and the tests reach as ai4kg.api.graphql.NAME.
from .assets import Application, Links, Module, Tool
from .assistant import AssistantAnswer, AssistantCandidate
from .connections import Connection, Edge, PageInfo
from .context import (_ENTRY_PREDICATES, Asset, Context, Info, _construct_graphs, _load_assets, _load_inverse,
                      _owner, _read_graphs)
from .deployments import (DEPLOYMENTS_FIRST, MAX_DEPLOYMENTS_FIRST, CreateDeploymentPayload, Deployment,
                          DeploymentRecord)
from .errors import InputError
from .execution import _ExecutionContext
from .federations import ClientUpdate, FederatedRound, FederatedSession, RoundMetric
from .filters import TOOLS_CATEGORY, ApplicationFilter, DateRange, Sort, SortDirection, SortField, ValuesFilter
from .http import GRAPHQL_RESPONSE, JSON_MEDIA, PATH, router
from .limits import (DEFAULT_FIRST, LINK_BATCH, MAX_ALIASES, MAX_BRANCHES, MAX_CONDITIONS, MAX_DEPTH,
                     MAX_FILTER_DEPTH, MAX_FIRST, MAX_TOKENS, MAX_VALUES, SCAN_PAGE)
from .mutations import MetadataFormat, Mutation, Visibility
from .provenance import Dataset, Lineage, LineageDirection, TrainingRun
from .records import Activity, Record
from .schema import CACHED_DOCUMENTS, Query, schema

__all__ = [
    "CACHED_DOCUMENTS", "DEFAULT_FIRST", "DEPLOYMENTS_FIRST", "GRAPHQL_RESPONSE", "JSON_MEDIA", "LINK_BATCH",
    "MAX_ALIASES", "MAX_BRANCHES", "MAX_CONDITIONS", "MAX_DEPLOYMENTS_FIRST", "MAX_DEPTH", "MAX_FILTER_DEPTH",
    "MAX_FIRST", "MAX_TOKENS", "MAX_VALUES", "PATH", "SCAN_PAGE", "TOOLS_CATEGORY",
    "Activity", "Application", "ApplicationFilter", "Asset", "AssistantAnswer", "AssistantCandidate", "ClientUpdate",
    "Connection", "Context", "CreateDeploymentPayload", "Dataset", "DateRange", "Deployment", "DeploymentRecord",
    "Edge", "FederatedRound", "FederatedSession", "Info", "InputError", "Lineage", "LineageDirection", "Links",
    "MetadataFormat", "Module", "Mutation", "PageInfo", "Query", "Record", "RoundMetric", "Sort", "SortDirection",
    "SortField", "Tool", "TrainingRun", "ValuesFilter", "Visibility",
    "_ENTRY_PREDICATES", "_ExecutionContext", "_construct_graphs", "_load_assets", "_load_inverse", "_owner",
    "_read_graphs", "router", "schema",
]
