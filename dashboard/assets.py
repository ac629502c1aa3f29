"""An asset's page: what `/id/{kind}/{name}` shows a browser (programs keep RDF or JSON).

api/assets.py hands a request whose Accept header prefers text/html to `page`; the asset is read
as the viewer may see it, so another VO's private asset is the same 404 page as a missing one.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pyoxigraph as ox
from fastapi import Request
from fastapi.responses import HTMLResponse

from ..api.access import read_asset, visible_quads
from ..graph.namespaces import RDF_TYPE, RDFS_LABEL, asset_iri
from ..graph.store import KnowledgeGraph
from ..metadata.records import is_valid_identifier
from .links import href
from .session import readers
from .templating import not_found, render

AI4KG = "https://w3id.org/ai4kg/ns#"
PREFIXES = {"ai4kg:": AI4KG, "prov:": "http://www.w3.org/ns/prov#", "rdfs:": "http://www.w3.org/2000/01/rdf-schema#",
            "dcterms:": "http://purl.org/dc/terms/", "rdf:": "http://www.w3.org/1999/02/22-rdf-syntax-ns#",
            "xsd:": "http://www.w3.org/2001/XMLSchema#"}


def curie(iri: str) -> str:
    for prefix, namespace in PREFIXES.items():
        if iri.startswith(namespace):
            return prefix + iri[len(namespace):]
    return iri


def page(graph: KnowledgeGraph) -> Callable[[Request, str, str], Awaitable[HTMLResponse]]:
    from ..api.assets import KINDS

    async def asset_page(request: Request, kind: str, name: str) -> HTMLResponse:
        if kind not in KINDS or not is_valid_identifier(name):
            return not_found(request, f"{kind} {name}")
        iri = asset_iri(graph.settings.base_url, KINDS[kind], name)
        quads = await read_asset(graph, lambda: visible_quads(graph, iri, readers(request)))
        if not quads:
            return not_found(request, f"{kind} {name}")
        return render(request, "asset.html", **describe(graph, iri, kind, quads))

    return asset_page


def describe(graph: KnowledgeGraph, iri: str, kind: str, quads: list[ox.Quad]) -> dict[str, Any]:
    """The asset's own statements, grouped by property, for the generic page."""
    base = graph.settings.base_url
    title, types, properties = None, [], {}
    for quad in quads:
        if quad.subject.value != iri:
            continue
        predicate, obj = quad.predicate.value, quad.object
        if predicate == RDF_TYPE:
            types.append(curie(obj.value))
            continue
        if predicate in (AI4KG + "title", RDFS_LABEL) and title is None:
            title = obj.value
        value = {"text": obj.value, "href": href(base, obj.value) if isinstance(obj, ox.NamedNode) else None}
        properties.setdefault(curie(predicate), []).append(value)
    return {"iri": iri, "kind": kind, "title": title or iri.rsplit("/", 1)[-1], "types": types,
            "properties": sorted(properties.items())}
