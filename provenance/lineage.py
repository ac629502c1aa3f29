"""Lineage: what a thing came from (upstream) or what came from it (downstream), a bounded number
of steps away, over every provenance graph the reader may see.

Each step is one parameterised SPARQL query per node reached (graph/queries/lineage-*.rq, the
node bound, never pasted): the PROV-O statements about the node in any graph, and the node at
their other end. A statement counts only if the reader may see the graph it is in, so another
VO's private builds and runs are never reached, and a write is visible to the next query at once
(it reads the store, not a copy). The walk stops at `depth` steps or `limit` nodes, and says so.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Literal

import pyoxigraph as ox

from ..graph.namespaces import AI4KG
from ..graph.search import Readers
from ..graph.search import PUBLIC
from ..graph.store import KnowledgeGraph, search_document

Direction = Literal["upstream", "downstream"]
PROV = "http://www.w3.org/ns/prov#"
MAX_DEPTH = 10
DEFAULT_DEPTH = 5
MAX_NODES = 1000
"""A walk stops after this many nodes (a module trained 10,000 times has 10,000 runs downstream)."""


@dataclass(frozen=True)
class Edge:
    """One PROV statement on the way: `subject relation object` (relation a PROV-O term, e.g.
    prov:wasGeneratedBy), whichever way the walk crossed it."""

    subject: str
    relation: str
    object: str

    def as_dict(self) -> dict[str, str]:
        return {"source": self.subject, "relation": self.relation.removeprefix(PROV), "target": self.object}


@dataclass
class Node:
    iri: str
    depth: int
    types: list[str] = field(default_factory=list)
    """PROV-O and ai4kg classes of the node, short (prov:Activity -> Activity, ai4kg:Build -> Build)."""
    label: str | None = None

    @property
    def kind(self) -> str:
        """Entity, Activity or Agent (PROV-O's three), or Entity when the graph does not say."""
        for kind in ("Activity", "Agent", "Entity"):
            if kind in self.types:
                return kind
        return "Activity" if any(t in _ACTIVITY_CLASSES for t in self.types) else "Entity"

    def as_dict(self) -> dict[str, Any]:
        return {"iri": self.iri, "kind": self.kind, "types": self.types, "label": self.label, "depth": self.depth}


_ACTIVITY_CLASSES = {"Build", "BuildStage", "TrainingRun", "Deployment", "ModuleDeployment", "BatchTrainingDeployment",
                     "TryMeDeployment", "ToolDeployment", "FederatedSession", "FederatedRound"}


@dataclass
class Lineage:
    root: str
    direction: Direction
    depth: int
    nodes: list[Node]
    edges: list[Edge]
    truncated: bool
    """True when the walk stopped at the node limit with nodes left to visit."""

    def as_dict(self) -> dict[str, Any]:
        return {"root": self.root, "direction": self.direction, "depth": self.depth, "truncated": self.truncated,
                "nodes": [n.as_dict() for n in self.nodes], "edges": [e.as_dict() for e in self.edges]}


def may_start_from(graph: KnowledgeGraph, iri: str, readers: Readers) -> bool:
    """Whether the reader may start a walk from `iri`: an asset they may see, or a node that is no
    asset (a commit, an image, weights), since the walk then reads only graphs they may see."""
    document = search_document(iri, graph.asset_quads(iri))
    return document is None or readers is None or document.visibility == PUBLIC or document.vo in readers


_IRI_CHARACTER = r"(?:[A-Za-z0-9._~:/?#@!$&'()*+,;=-]|%[0-9A-Fa-f]{2})"
IRI_PATTERN = (rf"^(?:https?://[A-Za-z0-9.-]+(?::[0-9]{{1,5}})?(?:/{_IRI_CHARACTER}*)?"
               rf"|urn:[A-Za-z0-9][A-Za-z0-9-]{{0,31}}:{_IRI_CHARACTER}+)$")
"""What a walk may start from: an http(s) IRI with a host name, or a URN, in ASCII (the platform
mints no other kind), percent-encoding well formed: so every IRI it admits is one Oxigraph takes."""


def check_iri(iri: str) -> None:
    """An absolute IRI (what a walk may start from), else ValueError."""
    if not re.match(IRI_PATTERN, iri):
        raise ValueError(f"not an absolute http(s) IRI or URN: {iri!r}")


def lineage(graph: KnowledgeGraph, iri: str, direction: Direction = "upstream", depth: int = DEFAULT_DEPTH,
            readers: Readers = None, limit: int = MAX_NODES) -> Lineage:
    """Walk the lineage of `iri` breadth first, `depth` steps at most (1..MAX_DEPTH). Raises
    ValueError for a bad argument.

    An asset the reader may not see is walked like any other node: its own graph and every graph
    the reader may not see are skipped, so the answer is the one an IRI that names no asset gets
    (the root alone, or what visible graphs say about it). Refusing it instead (404 where an
    unknown IRI gets 200) would tell that a private asset exists."""
    check_iri(iri)
    if direction not in ("upstream", "downstream"):
        raise ValueError(f"direction must be upstream or downstream, not {direction!r}")
    if not 1 <= depth <= MAX_DEPTH:
        raise ValueError(f"depth must be between 1 and {MAX_DEPTH}, not {depth}")
    query = f"lineage-{direction}"
    nodes: dict[str, Node] = {iri: Node(iri, 0)}
    edges: dict[Edge, None] = {}
    frontier, truncated = [iri], False
    for step in range(1, depth + 1):
        reached: list[str] = []
        for node in frontier:
            rows = [(r["subject"].value, r["relation"].value, r["object"].value, r["next"].value, r["graph"].value)
                    for r in graph.named_query(query, node=ox.NamedNode(node))]
            hidden = graph.index.hidden_among((g for *_, g in rows), readers)
            for subject, relation, obj, following, graph_iri in rows:
                if graph_iri in hidden:
                    continue
                edges[Edge(subject, relation, obj)] = None
                if following not in nodes:
                    if len(nodes) >= limit:
                        truncated = True
                        continue
                    nodes[following] = Node(following, step)
                    reached.append(following)
        frontier = reached
        if not frontier:
            break
    _describe(graph, nodes, readers)
    kept = set(nodes)
    return Lineage(iri, direction, depth, list(nodes.values()),
                   [e for e in edges if e.subject in kept and e.object in kept], truncated)


def _describe(graph: KnowledgeGraph, nodes: dict[str, Node], readers: Readers) -> None:
    """Types and label of each node, from the graphs the reader may see."""
    for node in nodes.values():
        rows = [(r["type"], r["label"], r["graph"].value) for r in graph.named_query("lineage-nodes", node=ox.NamedNode(node.iri))]
        hidden = graph.index.hidden_among((g for *_, g in rows), readers)
        types, labels = set(), []
        for kind, label, graph_iri in rows:
            if graph_iri in hidden:
                continue
            if kind is not None and kind.value.startswith((PROV, AI4KG)):
                types.add(kind.value.removeprefix(PROV).removeprefix(AI4KG))
            if label is not None:
                labels.append(label.value)
        node.types = sorted(types)
        node.label = min(labels, key=lambda text: (len(text), text)) if labels else None
