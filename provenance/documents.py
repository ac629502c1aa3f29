"""An asset's provenance as documents: PROV-O (Turtle, JSON-LD in the PROV-O context), PROV-JSON,
and a node/edge JSON for viewers.

The PROV-O document of an asset is its PROV-O view (mappings/views/prov.rq: what its own metadata
says it derives from) together with the PROV-O statements about everything its upstream lineage
reaches (provenance/lineage.py) and about the agents associated with those activities and
entities, each read only from graphs the reader may see. PROV-JSON is written by the `prov`
package from the same triples (its RDF reader, then its JSON writer), so both say the same.
"""

from __future__ import annotations

import json
from typing import Any

import pyoxigraph as ox

from ..graph.search import Readers
from ..graph.store import KnowledgeGraph
from ..graph.views import VIEWS, serialize
from .lineage import MAX_DEPTH, PROV, Lineage, lineage

_AGENT_LINKS = {PROV + "wasAssociatedWith", PROV + "wasAttributedTo", PROV + "actedOnBehalfOf"}


def provenance_triples(graph: KnowledgeGraph, iri: str, readers: Readers = None,
                       depth: int = MAX_DEPTH) -> tuple[list[ox.Triple], Lineage]:
    """The PROV-O triples of the asset's provenance (the caller has checked the reader may see it)."""
    walk = lineage(graph, iri, "upstream", depth, readers)
    triples: dict[ox.Triple, None] = dict.fromkeys(VIEWS["prov"].describe(graph, iri, readers))
    described: set[str] = set()
    pending = [node.iri for node in walk.nodes]
    while pending:  # the lineage's nodes, then the agents they name (and those the agents act for)
        node = pending.pop()
        if node in described:
            continue
        described.add(node)
        rows = list(graph.named_query("provenance-statements", node=ox.NamedNode(node)))
        hidden = graph.index.hidden_among((r["graph"].value for r in rows), readers)
        for row in rows:
            if row["graph"].value in hidden:
                continue
            triples[ox.Triple(ox.NamedNode(node), row["predicate"], row["object"])] = None
            if row["predicate"].value in _AGENT_LINKS and isinstance(row["object"], ox.NamedNode):
                pending.append(row["object"].value)
    return list(triples), walk


def to_prov_json(triples: list[ox.Triple]) -> dict[str, Any]:
    """PROV-JSON (W3C member submission) of the triples, written by the `prov` package; only the
    prefixes in use are declared (rdflib's graph brings dozens of well-known ones)."""
    from prov.model import ProvDocument

    turtle = serialize(triples, ox.RdfFormat.TURTLE).decode("utf-8")  # with prefixes, so prov names them
    document = json.loads(ProvDocument.deserialize(content=turtle, format="rdf", rdf_format="turtle").serialize(format="json"))
    body = json.dumps({key: value for key, value in document.items() if key != "prefix"})
    document["prefix"] = {prefix: namespace for prefix, namespace in document.get("prefix", {}).items()
                          if f'"{prefix}:' in body}
    return document


def to_jsonld(triples: list[ox.Triple], root: str) -> dict[str, Any]:
    """Compact JSON-LD in the PROV-O context (the prov view's)."""
    return VIEWS["prov"].to_jsonld(triples, root)


def viewer_json(walk: Lineage) -> dict[str, Any]:
    """Nodes (with PROV kind, types, label, distance) and edges (source, relation, target)."""
    return walk.as_dict()

