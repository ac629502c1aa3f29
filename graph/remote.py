"""The graph on a SPARQL 1.1 server instead of an embedded store (AI4KG_SPARQL_STORE).

`RemoteStore` offers the part of pyoxigraph.Store that KnowledgeGraph uses, over HTTP: queries
through the SPARQL 1.1 Protocol, updates through SPARQL 1.1 Update, and bulk writes and dumps
through the server's Graph Store endpoint. It is written against Oxigraph's server (`oxigraph
serve`: /query, /update, /store, and its `union-default-graph` option); another server needs
the same three endpoints.

Bound values travel as a trailing VALUES block (SPARQL's own inline data), each term written by
Oxigraph's serialiser, so a value can never change the query around it. Results come back as the
same pyoxigraph types the embedded store returns, so every caller works with either.
"""

from __future__ import annotations

from typing import Any, Iterable, Iterator, Mapping
from urllib.parse import urlencode

import httpx
import pyoxigraph as ox

_RESULTS = "application/sparql-results+json"
_TRIPLES = "application/n-triples"


def values_clause(substitutions: Mapping[ox.Variable, ox.NamedNode | ox.Literal | ox.BlankNode] | None) -> str:
    """`VALUES (?a ?b) { (<x> "y") }` for bound variables; empty when there are none."""
    if not substitutions:
        return ""
    names = " ".join(str(variable) for variable in substitutions)
    terms = " ".join(str(term) for term in substitutions.values())
    return f"\nVALUES ({names}) {{ ({terms}) }}"


class RemoteStore:
    def __init__(self, url: str, timeout: float = 60.0):
        self.url = url.rstrip("/")
        self._http = httpx.Client(timeout=timeout)
        try:
            self._http.get(f"{self.url}/query", params={"query": "ASK {}"}).raise_for_status()
        except httpx.HTTPError as exc:
            raise OSError(f"the SPARQL store at {self.url} does not answer: {exc}") from None

    # -- SPARQL ---------------------------------------------------------------------------------
    def query(self, sparql: str, use_default_graph_as_union: bool = False,
              substitutions: Mapping[ox.Variable, Any] | None = None, base_iri: str | None = None,
              default_graph: list[ox.NamedNode] | None = None, named_graphs: list[ox.NamedNode] | None = None,
              ) -> ox.QuerySolutions | ox.QueryBoolean | ox.QueryTriples:
        text = (f"BASE {ox.NamedNode(base_iri)}\n" if base_iri else "") + sparql + values_clause(substitutions)
        form: list[tuple[str, str]] = [("query", text)]
        form += [("default-graph-uri", g.value) for g in default_graph or []]
        form += [("named-graph-uri", g.value) for g in named_graphs or []]
        if default_graph is not None and not default_graph:
            form.append(("default-graph-uri", "urn:ai4kg:empty"))  # the protocol has no "no graph"
        if use_default_graph_as_union:
            form.append(("union-default-graph", ""))
        response = self._http.post(f"{self.url}/query", content=urlencode(form).encode("ascii"),
                                   headers={"accept": f"{_RESULTS}, {_TRIPLES};q=0.9",
                                            "content-type": "application/x-www-form-urlencoded"})
        if response.status_code == 400:
            raise SyntaxError(response.text)
        response.raise_for_status()
        if response.headers.get("content-type", "").startswith(_TRIPLES):
            return _as_query_triples(response.content)
        return ox.parse_query_results(response.content, format=ox.QueryResultsFormat.JSON)

    def update(self, sparql: str, base_iri: str | None = None) -> None:
        text = (f"BASE {ox.NamedNode(base_iri)}\n" if base_iri else "") + sparql
        response = self._http.post(f"{self.url}/update", content=text.encode("utf-8"),
                                   headers={"content-type": "application/sparql-update"})
        if response.status_code == 400:
            raise SyntaxError(response.text)
        if response.is_error:  # as the embedded store raises it (a LOAD that fails, say)
            raise OSError(f"the SPARQL store at {self.url} answered {response.status_code}: {response.text}")

    # -- the store API KnowledgeGraph uses --------------------------------------------------------
    def extend(self, quads: Iterable[ox.Quad]) -> None:
        """Add quads in one request (the server adds a request's data in one transaction)."""
        body = ox.serialize(list(quads), format=ox.RdfFormat.N_QUADS)
        response = self._http.post(f"{self.url}/store", content=body, headers={"content-type": "application/n-quads"})
        response.raise_for_status()

    def quads_for_pattern(self, subject: ox.NamedNode | None, predicate: ox.NamedNode | None, obj: None,
                          graph: ox.NamedNode) -> list[ox.Quad]:
        bound = {ox.Variable(name): term for name, term in (("s", subject), ("p", predicate)) if term is not None}
        result = self.query("SELECT ?s ?p ?o WHERE { GRAPH ?g { ?s ?p ?o } }",
                            substitutions={ox.Variable("g"): graph, **bound})
        return [ox.Quad(row["s"], row["p"], row["o"], graph) for row in result]

    def named_graphs(self) -> list[ox.NamedNode]:
        return [row["g"] for row in self.query("SELECT DISTINCT ?g WHERE { GRAPH ?g { ?s ?p ?o } }")]

    def contains_named_graph(self, graph: ox.NamedNode) -> bool:
        return bool(self.query("ASK { GRAPH ?g { ?s ?p ?o } }", substitutions={ox.Variable("g"): graph}))

    def remove_graph(self, graph: ox.NamedNode) -> None:
        self.update(f"DROP SILENT GRAPH {graph}")  # an IRI checked by ox.NamedNode

    def flush(self) -> None:
        """The server persists its own writes."""

    def __len__(self) -> int:
        [row] = self.query("SELECT (COUNT(*) AS ?n) WHERE { { ?s ?p ?o } UNION { GRAPH ?g { ?s ?p ?o } } }")
        return int(row["n"].value)

    def __iter__(self) -> Iterator[ox.Quad]:
        response = self._http.get(f"{self.url}/store", headers={"accept": "application/n-quads"})
        response.raise_for_status()
        return iter(ox.parse(input=response.content, format=ox.RdfFormat.N_QUADS))


def _as_query_triples(data: bytes) -> ox.QueryTriples:
    """N-Triples from the server as the QueryTriples an embedded CONSTRUCT returns."""
    scratch = ox.Store()
    scratch.extend(ox.Quad(t.subject, t.predicate, t.object, ox.DefaultGraph())
                   for t in ox.parse(input=data, format=ox.RdfFormat.N_TRIPLES))
    return scratch.query("CONSTRUCT { ?s ?p ?o } WHERE { ?s ?p ?o }")
