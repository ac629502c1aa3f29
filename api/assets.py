"""Asset IRIs dereference: GET /id/{kind}/{name} returns the asset in the format the client accepts,
and GET /id/catalog the platform's catalogue.

An asset's IRI is {base URL}{kind}/{name} and the catalogue's {base URL}catalog; with the default
base https://w3id.org/ai4kg/id/ the w3id redirect sends https://w3id.org/ai4kg/id/* here.

The view (graph/views.py) is chosen by the `profile` parameter (a view's name or profile IRI),
else by an Accept-Profile header (W3C content negotiation by profile), else the default: the
asset's own graph (`ai4kg`), or DCAT-AP for the catalogue. The answer names its view in
Content-Profile and a Link rel="profile". Plain JSON (application/json) of a module or tool in the
`ai4kg` view is its ai4-metadata document; of any other view, or of a dataset, it is JSON-LD:
compact JSON-LD in the view's context where the view has one (FAIR4ML, Croissant, PROV-O), else
expanded. A `profile` parameter naming a view that does not describe the asset's kind (Croissant
of a module) is a 400 naming `profile`; Accept-Profile states preferences, so such views are
passed over there.
"""

import json
from typing import Literal

import pyoxigraph as ox
from fastapi import APIRouter, Query, Request, Response

from ..catalog import document_of
from ..graph.namespaces import asset_iri
from ..graph.search import Readers
from ..graph.store import KnowledgeGraph
from ..graph.views import NATIVE, VIEWS, UnknownView, View, serialize, view_of
from ..metadata.records import is_valid_identifier
from .access import read, read_asset, readers_of, visible_quads
from .problems import Problem
from .negotiation import negotiate

KINDS = {kind.lower(): kind for kind in ("Module", "Tool", "Dataset", "TrainingRun", "Deployment", "ModuleDeployment",
                                         "TryMeDeployment", "ToolDeployment", "BatchTrainingDeployment", "Build")}
"""Asset kinds by the name in their IRI (and in /id/{kind}/{name}, /v1/provenance/{kind}/{name})."""
_DOCUMENT_KINDS = {"Module", "Tool"}
"""Kinds whose plain JSON in the `ai4kg` view is their ai4-metadata document."""
RDF_FORMATS = [
    ("text/turtle", ox.RdfFormat.TURTLE),
    ("application/ld+json", ox.RdfFormat.JSON_LD),
    ("application/rdf+xml", ox.RdfFormat.RDF_XML),
    ("application/n-triples", ox.RdfFormat.N_TRIPLES),
]
JSON = "application/json"
HTML = "text/html"
FORMATS = {"turtle": "text/turtle", "jsonld": "application/ld+json", "rdfxml": "application/rdf+xml",
           "ntriples": "application/n-triples", "json": JSON}
"""?format=NAME: the media type it stands for, in place of Accept (a link a browser follows sends
Accept text/html, so the dashboard's links to a view's Turtle or JSON-LD name the format)."""
_PROFILE_HELP = f"the view: {', '.join(VIEWS)}, or a view's profile IRI (also read from Accept-Profile)"


def _profile_tokens(views: list[View]) -> dict[str, list[str]]:
    """The values `profile` accepts, for the OpenAPI document (the handler checks them itself)."""
    return {"enum": [token for v in views for token in dict.fromkeys((v.name, v.profile, *v.aliases))]}


def router(graph: KnowledgeGraph) -> APIRouter:
    routes = APIRouter(tags=["assets"])

    @routes.get("/id/catalog", summary="The platform's catalogue (DCAT-AP by default)",
                responses={200: {"content": {media: {} for media, _ in RDF_FORMATS}}})
    async def catalog(request: Request, profile: str | None = Query(
            None, description=_PROFILE_HELP,
            json_schema_extra=_profile_tokens([v for v in VIEWS.values() if v.catalog_queries]))) -> Response:
        view = _chosen_view(profile, request.headers.get("accept-profile"), VIEWS["dcat-ap"])
        if not view.catalog_queries:
            raise Problem(400, "No catalogue form", f"the {view.name} view describes single assets; the catalogue "
                          f"has: {', '.join(v.name for v in VIEWS.values() if v.catalog_queries)}", "profile", profile)
        media, rdf_format = negotiate(request.headers.get("accept", ""), [*RDF_FORMATS, (JSON, ox.RdfFormat.JSON_LD)],
                                      "catalogue")
        readers = readers_of(request)

        def answer() -> bytes:
            triples = view.catalog(graph, readers)
            return _body(view, triples, rdf_format)

        body = await read(graph, answer)
        return Response(body, media_type=media, headers=_headers(view, _catalog_iri(graph)))

    @routes.get("/id/{kind}/{name}", summary="An asset, in the format of the Accept header",
                responses={200: {"content": {media: {} for media, _ in RDF_FORMATS}}})
    async def asset(request: Request, kind: str, name: str,
                    profile: str | None = Query(None, description=_PROFILE_HELP,
                                                json_schema_extra=_profile_tokens(list(VIEWS.values()))),
                    format: Literal["turtle", "jsonld", "rdfxml", "ntriples", "json"] | None = Query(
                        None, description="Overrides Accept: turtle, jsonld, rdfxml, ntriples, json")) -> Response:
        readers = readers_of(request)
        accept = FORMATS[format] if format else request.headers.get("accept", "")
        accept_profile = request.headers.get("accept-profile")
        html_page = getattr(request.app.state, "asset_page", None)
        if html_page is not None and profile is None and _prefers_html(accept):
            page = await html_page(request, kind, name)  # a browser: the dashboard's page (dashboard/assets.py)
            page.headers["Vary"] = "Accept, Accept-Profile"
            return page

        def work() -> Response:
            return _asset(graph, kind, name, profile, accept_profile, readers, accept)

        try:
            native = _chosen_view(profile, accept_profile, VIEWS[NATIVE], KINDS.get(kind)).name == NATIVE
        except Problem:
            native = True  # the error is raised by `work`, after the checks that come first
        if native:
            return await read_asset(graph, work)
        # a standard view is a CONSTRUCT and maybe JSON-LD processing: milliseconds, off the loop
        return await read(graph, work)

    return routes


def _prefers_html(accept: str) -> bool:
    """Whether the Accept header prefers HTML to every RDF and JSON form (a browser's does; `*/*`
    alone does not: HTML is offered last)."""
    if "html" not in accept.lower():
        return False
    return negotiate(accept, [*RDF_FORMATS, (JSON, None), (HTML, None)], "asset")[0] == HTML


def _catalog_iri(graph: KnowledgeGraph) -> str:
    return f"{graph.settings.base_url}catalog"


def _chosen_view(profile: str | None, accept_profile: str | None, default: View, kind: str | None = None) -> View:
    """The `profile` parameter's view, else the first known one of Accept-Profile (that describes
    `kind`, if given: the header states preferences, the parameter a demand), else `default`."""
    if profile is not None:
        try:
            return view_of(profile)
        except UnknownView as exc:
            raise Problem(400, "Unknown profile", str(exc), "profile", profile) from None
    for token in (accept_profile or "").split(","):
        try:
            view = view_of(token.split(";")[0])
        except UnknownView:
            continue
        if kind is None or view.describes(kind):
            return view
    return default


def _headers(view: View, iri: str) -> dict[str, str]:
    return {"Vary": "Accept, Accept-Profile", "Content-Profile": f"<{view.profile}>",
            "Link": f'<{iri}>; rel="canonical", <{view.profile}>; rel="profile"'}


def _json(document: dict) -> bytes:
    return json.dumps(document, ensure_ascii=False, indent=2).encode("utf-8")


def _body(view: View, triples: list[ox.Triple], rdf_format: ox.RdfFormat, root: str | None = None) -> bytes:
    """The view's triples in the negotiated format; JSON-LD compacted in the view's context if it has one."""
    if rdf_format == ox.RdfFormat.JSON_LD and view.context is not None:
        return _json(view.to_jsonld(triples, root))
    return serialize(triples, rdf_format)


def _asset(graph: KnowledgeGraph, kind: str, name: str, profile: str | None, accept_profile: str | None,
           readers: Readers, accept: str) -> Response:
    if kind not in KINDS:
        raise Problem(404, "Not found", f"no asset kind {kind!r}; kinds: {', '.join(KINDS)}", "kind", kind)
    iri = asset_iri(graph.settings.base_url, KINDS[kind], name) if is_valid_identifier(name) else ""
    quads = visible_quads(graph, iri, readers) if iri else []
    if not quads:
        raise Problem(404, "Not found", f"no {kind} named {name!r}", "name", name)
    view = _chosen_view(profile, accept_profile, VIEWS[NATIVE], KINDS[kind])
    if not view.describes(KINDS[kind]):
        raise Problem(400, "Profile not available", f"the {view.name} view does not describe a {kind}; views of a "
                      f"{kind}: {', '.join(v.name for v in VIEWS.values() if v.describes(KINDS[kind]))}",
                      "profile", profile)
    native = view.name == NATIVE
    native_json = native and KINDS[kind] in _DOCUMENT_KINDS
    offers = [(JSON, None), *RDF_FORMATS] if native_json else [*RDF_FORMATS, (JSON, ox.RdfFormat.JSON_LD)]
    media, rdf_format = negotiate(accept, offers, "asset")
    headers = _headers(view, iri)
    if rdf_format is None:
        return Response(_json(document_of(quads)), media_type=JSON, headers=headers)
    if native:
        return Response(serialize([ox.Triple(q.subject, q.predicate, q.object) for q in quads], rdf_format),
                        media_type=media, headers=headers)
    return Response(_body(view, view.describe(graph, iri, readers), rdf_format, root=iri),
                    media_type=media, headers=headers)
