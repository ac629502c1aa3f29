"""Asset IRIs dereference: GET /id/{kind}/{name} returns the asset in the format the client accepts.

An asset's IRI is {base URL}{kind}/{name}; with the default base https://w3id.org/ai4kg/id/ the
w3id redirect sends https://w3id.org/ai4kg/id/* here. The `profile` parameter selects a view of the
asset; `ai4kg` (the asset's own graph) is the only one until the standard views plug in through
PROFILES.
"""

import json
from collections.abc import Callable

import pyoxigraph as ox
from fastapi import APIRouter, Query, Request, Response

from ..catalog import document_of
from ..graph.namespaces import asset_iri
from ..graph.search import Readers
from ..graph.store import KnowledgeGraph
from ..metadata.records import is_valid_identifier
from .access import read_asset, readers_of, visible_quads
from .problems import Problem
from .negotiation import negotiate

_KINDS = {"module": "Module"}
RDF_FORMATS = [
    ("text/turtle", ox.RdfFormat.TURTLE),
    ("application/ld+json", ox.RdfFormat.JSON_LD),
    ("application/rdf+xml", ox.RdfFormat.RDF_XML),
    ("application/n-triples", ox.RdfFormat.N_TRIPLES),
]
JSON = "application/json"

Profile = Callable[[KnowledgeGraph, str, list[ox.Quad]], list[ox.Triple]]
PROFILES: dict[str, Profile] = {
    "ai4kg": lambda graph, iri, quads: [ox.Triple(q.subject, q.predicate, q.object) for q in quads],
}
"""Views of an asset by profile name: a view gets the asset's quads and returns the triples to serve."""


def router(graph: KnowledgeGraph) -> APIRouter:
    routes = APIRouter(tags=["assets"])

    @routes.get("/id/{kind}/{name}", summary="An asset, in the format of the Accept header",
                responses={200: {"content": {media: {} for media, _ in RDF_FORMATS}}})
    async def asset(request: Request, kind: str, name: str,
                    profile: str = Query("ai4kg", description=f"view of the asset: {', '.join(PROFILES)}")) -> Response:
        readers, accept = readers_of(request), request.headers.get("accept", "")
        return await read_asset(graph, lambda: _asset(graph, kind, name, profile, readers, accept))

    return routes


def _json(document: dict) -> bytes:
    return json.dumps(document, ensure_ascii=False, indent=2).encode("utf-8")


def _asset(graph: KnowledgeGraph, kind: str, name: str, profile: str, readers: Readers, accept: str) -> Response:
    if kind not in _KINDS:
        raise Problem(404, "Not found", f"no asset kind {kind!r}; kinds: {', '.join(_KINDS)}", "kind", kind)
    iri = asset_iri(graph.settings.base_url, _KINDS[kind], name) if is_valid_identifier(name) else ""
    quads = visible_quads(graph, iri, readers) if iri else []
    if not quads:
        raise Problem(404, "Not found", f"no {kind} named {name!r}", "name", name)
    if profile not in PROFILES:
        raise Problem(400, "Unknown profile", f"profiles: {', '.join(PROFILES)}", "profile", profile)
    media, rdf_format = negotiate(accept, [(JSON, None), *RDF_FORMATS], "asset")
    headers = {"Vary": "Accept", "Link": f'<{iri}>; rel="canonical"'}
    if rdf_format is None:
        return Response(_json(document_of(quads)), media_type=JSON, headers=headers)
    triples = PROFILES[profile](graph, iri, quads)
    return Response(ox.serialize(triples, format=rdf_format), media_type=media, headers=headers)
