"""/sparql against the W3C SPARQL 1.1 Protocol and Service Description tests, read from their manifests
in ../shared/standards/sparql/, and the endpoint's own rules: datasets, base IRI, errors, limits."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse
from urllib.request import url2pathname

import pyoxigraph as ox
import pytest
import rdflib
from fastapi.testclient import TestClient
from rdflib import RDF, RDFS, Namespace, URIRef
from rdflib.collection import Collection

from ai4kg.api.app import create_app
from ai4kg.api.sparql import serialize_solutions
from ai4kg.config import Settings
from ai4kg.credentials import KeyStore
from ai4kg.graph.datasets import has_dataset_clause
from ai4kg.graph.store import KnowledgeGraph

from conftest import SHARED

SPARQL_TESTS = SHARED / "standards" / "sparql"
PROTOCOL_MANIFEST = SPARQL_TESTS / "sparql11-protocol" / "manifest.ttl"
SERVICE_DESCRIPTION_MANIFEST = SPARQL_TESTS / "service-description-manifest.ttl"
SD_VOCABULARY = SHARED / "standards" / "vocab" / "sparql-service-description.ttl"

MF = Namespace("http://www.w3.org/2001/sw/DataAccess/tests/test-manifest#")
HT = Namespace("http://www.w3.org/2011/http#")
CNT = Namespace("http://www.w3.org/2011/content#")
UT = Namespace("http://www.w3.org/2009/sparql/tests/test-update#")
HTS = Namespace("http://www.w3.org/2011/http-statusCodes#")
SD = Namespace("http://www.w3.org/ns/sparql-service-description#")
FORMATS = Namespace("http://www.w3.org/ns/formats/")

# What the manifest's mf:expectedFormat values admit, by response media type.
TABULAR = {"application/sparql-results+json": ox.QueryResultsFormat.JSON,
           "application/sparql-results+xml": ox.QueryResultsFormat.XML,
           "text/csv": ox.QueryResultsFormat.CSV, "text/tab-separated-values": ox.QueryResultsFormat.TSV}
BOOLEAN = {k: v for k, v in TABULAR.items() if k.startswith("application/sparql-results")}
RDF_MEDIA = {"text/turtle", "application/n-triples", "application/rdf+xml", "application/ld+json",
             "application/trig", "application/n-quads"}


A, B, C = (f"http://kasei.us/2009/09/sparql/data/data{i}.rdf" for i in (1, 2, 3))


# -- the W3C protocol manifest -------------------------------------------------------------------
@dataclass
class HttpExchange:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes | None
    status_classes: set[int]
    expected_format: str | None
    expected_boolean: bool | None


@dataclass
class ProtocolTest:
    name: str
    title: str
    authority: str
    graph_data: list[tuple[Path, str]] = field(default_factory=list)
    exchanges: list[HttpExchange] = field(default_factory=list)


def _local(node: rdflib.term.Node) -> str:
    return str(node).rsplit("#", 1)[-1]


def _exchange(manifest: rdflib.Graph, request: rdflib.term.Node) -> HttpExchange:
    headers = {}
    if (header_list := manifest.value(request, HT.headers)) is not None:
        for header in Collection(manifest, header_list):
            headers[str(manifest.value(header, HT.fieldName))] = str(manifest.value(header, HT.fieldValue))
    body = None
    if (content := manifest.value(request, HT.body)) is not None:
        encoding = str(manifest.value(content, CNT.characterEncoding) or "UTF-8")
        body = str(manifest.value(content, CNT.chars)).encode(encoding)  # UTF-16 gets its byte order mark
    response = manifest.value(request, HT.resp)
    statuses = {int(_local(s)[len("StatusCode")]) for s in manifest.objects(response, MF.expectedStatus)}
    expected_format = manifest.value(response, MF.expectedFormat)
    expected_boolean = manifest.value(response, MF.expectedBoolean)
    # The manifest's paths start with /sparql/ "to be replaced with the endpoint's path".
    path = str(manifest.value(request, HT.absolutePath))
    assert path.startswith("/sparql/"), path
    return HttpExchange(str(manifest.value(request, HT.methodName)), "/sparql" + path[len("/sparql/"):], headers,
                        body, statuses, None if expected_format is None else str(expected_format),
                        None if expected_boolean is None else bool(expected_boolean.toPython()))


def protocol_tests() -> list[ProtocolTest]:
    manifest = rdflib.Graph().parse(PROTOCOL_MANIFEST, format="turtle")
    root = manifest.value(None, RDF.type, MF.Manifest)
    tests = []
    for entry in Collection(manifest, manifest.value(root, MF.entries)):
        action = manifest.value(entry, MF.action)
        test = ProtocolTest(_local(entry), str(manifest.value(entry, MF.name)),
                            str(manifest.value(action, HT.connectionAuthority)))
        for data in manifest.objects(entry, UT.graphData):
            file = Path(url2pathname(urlparse(str(manifest.value(data, UT.graph))).path))
            test.graph_data.append((file, str(manifest.value(data, RDFS.label))))
        test.exchanges = [_exchange(manifest, r) for r in Collection(manifest, manifest.value(action, HT.requests))]
        tests.append(test)
    return tests


PROTOCOL_TESTS = protocol_tests()


def test_manifest_read_whole() -> None:
    names = {t.name for t in PROTOCOL_TESTS}
    assert len(PROTOCOL_TESTS) == 34 and {"query_post_form", "bad_query_non_utf8", "update_base_uri"} <= names
    assert sum("update" not in n for n in names) == 20


def _load(graph: KnowledgeGraph, file: Path, name: str) -> None:
    """Test data only: the W3C files go straight into the store, as named graphs."""
    graph.store.extend(ox.Quad(q.subject, q.predicate, q.object, ox.NamedNode(name))
                       for q in ox.parse(path=str(file), format=ox.RdfFormat.N_TRIPLES))


@pytest.mark.parametrize("test", PROTOCOL_TESTS, ids=[t.name for t in PROTOCOL_TESTS])
def test_w3c_protocol(test: ProtocolTest, store_url: str | None) -> None:
    """Every request as the platform administrator, whom SPARQL Update needs."""
    if store_url:  # each test starts from an empty server
        import urllib.request

        urllib.request.urlopen(urllib.request.Request(f"{store_url}/update", data=b"DROP ALL",
                                                      headers={"content-type": "application/sparql-update"}))
    with KnowledgeGraph(Settings(data_dir=None, sparql_store_url=store_url)) as graph:
        for file, name in test.graph_data:
            _load(graph, file, name)
        keys = KeyStore(None)
        _, secret = keys.create("w3c tests", frozenset(), admin=True)
        client = TestClient(create_app(graph, keys), base_url=f"http://{test.authority}",
                            headers={"authorization": f"Bearer {secret}"})
        for exchange in test.exchanges:
            response = client.request(exchange.method, exchange.path, headers=exchange.headers, content=exchange.body)
            assert response.status_code // 100 in exchange.status_classes, (response.status_code, response.text)
            media = response.headers.get("content-type", "").split(";")[0].strip()
            results = None
            if exchange.expected_format == "tabular":
                assert media in TABULAR, media
                results = ox.parse_query_results(response.content, format=TABULAR[media])
                assert isinstance(results, ox.QuerySolutions)
            elif exchange.expected_format == "boolean":
                assert media in BOOLEAN, media
                results = ox.parse_query_results(response.content, format=BOOLEAN[media])
                assert isinstance(results, ox.QueryBoolean)
            elif exchange.expected_format == "RDF":
                assert media in RDF_MEDIA, media
                list(ox.parse(response.content, format=ox.RdfFormat.from_media_type(media)))
            else:
                assert exchange.expected_format is None, exchange.expected_format
            if exchange.expected_boolean is not None:
                assert bool(results) is exchange.expected_boolean


# -- the W3C service description manifest ---------------------------------------------------------
def _description(client: TestClient, accept: str | None = None) -> rdflib.Graph:
    response = client.get("/sparql", headers={"accept": accept} if accept else {})
    assert response.status_code == 200, response.text
    media = response.headers["content-type"].split(";")[0]
    assert media == (accept or "text/turtle")
    return rdflib.Graph().parse(data=response.content, format={
        "text/turtle": "turtle", "application/n-triples": "nt", "application/rdf+xml": "xml",
        "application/ld+json": "json-ld"}[media])


def _returns_rdf(client: TestClient) -> None:
    for accept in (None, "text/turtle", "application/n-triples", "application/rdf+xml", "application/ld+json"):
        assert len(_description(client, accept)) > 5


def _has_endpoint_triple(client: TestClient) -> None:
    for accept in (None, "application/rdf+xml", "application/ld+json"):
        described = _description(client, accept)
        assert list(described.subjects(SD.endpoint, URIRef("http://www.example/sparql"))), accept


def _conforms_to_schema(client: TestClient) -> None:
    """Every sd: term is one the vocabulary defines, and rdfs:domain / rdfs:range hold for sd: values."""
    vocabulary = rdflib.Graph().parse(SD_VOCABULARY, format="turtle")
    described = _description(client)
    both = vocabulary + described

    def is_a(node: rdflib.term.Node, cls: rdflib.term.Node) -> bool:
        return any(cls in both.transitive_objects(t, RDFS.subClassOf) for t in both.objects(node, RDF.type))

    assert list(described.subjects(RDF.type, SD.Service)) and list(described.subjects(RDF.type, SD.Dataset))
    for s, p, o in described:
        for term in (p, o):
            if isinstance(term, URIRef) and term.startswith(SD):
                assert (term, None, None) in vocabulary, f"{term} is not in the sd: vocabulary"
        if p.startswith(SD):
            for domain in vocabulary.objects(p, RDFS.domain):
                assert is_a(s, domain), f"{s} {p}: the subject is no {domain}"
            for range_ in vocabulary.objects(p, RDFS.range):
                if range_.startswith(SD) and (not isinstance(o, URIRef) or o.startswith(SD)):
                    assert is_a(o, range_), f"{p} {o}: the object is no {range_}"


SERVICE_DESCRIPTION_CHECKS = {"returns-rdf": _returns_rdf, "has-endpoint-triple": _has_endpoint_triple,
                              "conforms-to-schema": _conforms_to_schema}


def service_description_tests() -> list[str]:
    manifest = rdflib.Graph().parse(SERVICE_DESCRIPTION_MANIFEST, format="turtle")
    root = manifest.value(None, RDF.type, MF.Manifest)
    return [_local(entry) for entry in Collection(manifest, manifest.value(root, MF.entries))]


@pytest.mark.parametrize("name", service_description_tests())
def test_w3c_service_description(name: str, graph: KnowledgeGraph) -> None:
    assert name in SERVICE_DESCRIPTION_CHECKS, f"no check written for the W3C test {name}"
    SERVICE_DESCRIPTION_CHECKS[name](TestClient(create_app(graph), base_url="http://www.example"))


def test_service_description_lists_what_the_endpoint_serves(graph: KnowledgeGraph) -> None:
    described = _description(TestClient(create_app(graph), base_url="http://www.example"))
    [service] = described.subjects(RDF.type, SD.Service)
    assert (service, SD.supportedLanguage, SD.SPARQL11Query) in described
    assert (service, SD.feature, SD.UnionDefaultGraph) in described
    formats = set(described.objects(service, SD.resultFormat))
    assert {FORMATS.SPARQL_Results_JSON, FORMATS.SPARQL_Results_XML, FORMATS.SPARQL_Results_CSV,
            FORMATS.SPARQL_Results_TSV, FORMATS.Turtle, FORMATS["N-Triples"], FORMATS.RDF_XML,
            FORMATS["JSON-LD"]} <= formats
    [dataset] = described.objects(service, SD.defaultDataset)
    assert (dataset, RDF.type, SD.Dataset) in described
    # negotiated like CONSTRUCT results
    client = TestClient(create_app(KnowledgeGraph(Settings.in_memory())))
    assert client.get("/sparql", headers={"accept": "application/sparql-results+json"}).status_code == 406


# -- the endpoint's own rules -------------------------------------------------------------------
@pytest.fixture
def kasei(graph: KnowledgeGraph) -> TestClient:
    """The W3C data: three graphs, each holding one triple about itself."""
    for i, name in enumerate((A, B, C), start=1):
        _load(graph, SPARQL_TESTS / "sparql11-protocol" / f"data{i}.nt", name)
    return TestClient(create_app(graph), base_url="http://www.example")


def _values(response, variable: str) -> set[str]:  # type: ignore[no-untyped-def]
    assert response.status_code == 200, response.text
    return {b[variable]["value"] for b in response.json()["results"]["bindings"] if variable in b}


DOCS = "SELECT ?s WHERE { ?s a <http://xmlns.com/foaf/0.1/Document> }"


def test_dataset_from_protocol_wins_over_from_in_the_query(kasei: TestClient) -> None:
    from_c = f"SELECT ?s FROM <{C}> WHERE {{ ?s ?p ?o }}"
    # the union of all graphs: the W3C data, and the platform's homepage from its catalogue graph
    assert _values(kasei.get("/sparql", params={"query": DOCS}), "s") == {A, B, C, "https://w3id.org/ai4kg/"}
    assert _values(kasei.get("/sparql", params={"query": from_c}), "s") == {C}  # FROM honoured
    assert _values(kasei.get("/sparql", params={"query": from_c, "default-graph-uri": A}), "s") == {A}
    # named-graph-uri alone is a whole dataset too: its default graph is empty
    assert _values(kasei.get("/sparql", params={"query": from_c, "named-graph-uri": A}), "s") == set()
    named = f"SELECT ?g FROM NAMED <{C}> WHERE {{ GRAPH ?g {{ ?s ?p ?o }} }}"
    assert _values(kasei.get("/sparql", params={"query": named}), "g") == {C}
    assert _values(kasei.get("/sparql", params={"query": named, "named-graph-uri": [A, B]}), "g") == {A, B}
    # default-graph-uri alone: no named graphs
    assert _values(kasei.get("/sparql", params={"query": named, "default-graph-uri": A}), "g") == set()
    response = kasei.post("/sparql", params={"default-graph-uri": [A, B]}, content=from_c,
                          headers={"content-type": "application/sparql-query"})
    assert _values(response, "s") == {A, B}
    response = kasei.post("/sparql", data={"query": from_c, "default-graph-uri": B})
    assert _values(response, "s") == {B}


def test_dataset_clause_detection() -> None:
    assert has_dataset_clause("SELECT * FROM <g> WHERE { ?s ?p ?o }")
    assert has_dataset_clause("select*from<g>{}") and has_dataset_clause("ASK FROM NAMED ex:g { }")
    assert has_dataset_clause("CONSTRUCT { ?s ?p ?o } from <g> WHERE { ?s ?p ?o }")
    for query in ['SELECT ?from WHERE { ?from ?p $from }', 'SELECT * { ?s <http://x/FROM> "FROM <g>" } # FROM <g>',
                  'PREFIX from: <http://x/> SELECT * { ?s from:x ?o ; ex:from ?o ; ex:a.from "x"@from ; ?p _:from }',
                  "SELECT * { ?s ?p '''it's FROM <g>''' , \"\"\"FROM\n<g>\"\"\" , 'a\\' FROM <g>' }",
                  "SELECT * { ?s ?p ?o FILTER(?o<?x&&?s>?o) }", "ASK {}"]:
        assert not has_dataset_clause(query), query


def test_relative_iris_resolve_against_the_endpoint(kasei: TestClient) -> None:
    response = kasei.post("/sparql", content="CONSTRUCT { <s> <p> 1 } WHERE {}",
                          headers={"content-type": "application/sparql-query", "accept": "application/n-triples"})
    assert response.status_code == 200, response.text
    assert response.text.strip() == '<http://www.example/s> <http://www.example/p> "1"^^<http://www.w3.org/2001/XMLSchema#integer> .'
    response = kasei.get("/sparql", params={"query": "BASE <http://other.example/x/> SELECT ?v { BIND(<y> AS ?v) }"})
    assert _values(response, "v") == {"http://other.example/x/y"}  # the query's own BASE wins


@pytest.mark.parametrize("method", ["PUT", "DELETE", "PATCH", "OPTIONS", "HEAD"])
def test_other_methods_get_405_with_allow(kasei: TestClient, method: str) -> None:
    response = kasei.request(method, "/sparql", params={"query": "ASK {}"})
    assert response.status_code == 405 and response.headers["allow"] == "GET, POST"
    assert response.headers["content-type"] == "application/problem+json"


def test_requests_must_be_utf8(kasei: TestClient) -> None:
    direct = kasei.post("/sparql", content="ASK { <é> ?p ?o }".encode("latin-1"),
                        headers={"content-type": "application/sparql-query"})
    assert direct.status_code == 400 and "not valid UTF-8" in direct.json()["detail"]
    utf16 = kasei.post("/sparql", content="ASK {}".encode("utf-16"),
                       headers={"content-type": "application/sparql-query; charset=UTF-16"})
    assert utf16.status_code == 400 and "must be sent as UTF-8" in utf16.json()["detail"]
    form = kasei.post("/sparql", content=b"query=ASK%20%7B%3C%E9%3E%20?p%20?o%7D",
                      headers={"content-type": "application/x-www-form-urlencoded"})
    assert form.status_code == 400 and "not valid UTF-8" in form.json()["detail"]
    assert kasei.get("/sparql?query=ASK%20%7B%3C%E9%3E%20?p%20?o%7D").status_code == 400
    # the same in UTF-8 is fine
    assert kasei.get("/sparql", params={"query": "ASK { <é> ?p ?o }"}).json() == {"head": {}, "boolean": False}


def test_media_types_and_query_count(kasei: TestClient) -> None:
    for content_type in ("text/plain", "application/sparql-results+json", None):
        response = kasei.post("/sparql", content=b"ASK {}", headers={"content-type": content_type} if content_type else {})
        assert response.status_code == 415, content_type
        assert "application/sparql-query" in response.json()["detail"]
    assert kasei.post("/sparql", params={"query": "ASK {}"}, content="ASK {}",
                      headers={"content-type": "application/sparql-query"}).status_code == 400
    assert kasei.post("/sparql", params={"query": "ASK {}"}, data={"query": "ASK {}"}).status_code == 400
    assert kasei.get("/sparql", params={"query": ["ASK {}", "ASK {}"]}).json()["invalid-params"][0]["name"] == "query"
    assert kasei.get("/sparql", params={"query": " "}).status_code == 400
    assert kasei.get("/sparql", params={"update": "CLEAR ALL"}).status_code == 400
    syntax = kasei.get("/sparql", params={"query": "SELECT ?x WHERE { ?x"})
    assert syntax.status_code == 400 and syntax.json()["invalid-params"][0]["name"] == "query"
    bad_graph = kasei.get("/sparql", params={"query": "ASK {}", "named-graph-uri": "no iri"})
    assert bad_graph.status_code == 400 and bad_graph.json()["invalid-params"][0]["name"] == "named-graph-uri"


def test_result_formats_by_accept(kasei: TestClient) -> None:
    def media(query: str, accept: str) -> str | int:
        response = kasei.get("/sparql", params={"query": query}, headers={"accept": accept})
        return response.headers["content-type"].split(";")[0] if response.status_code == 200 else response.status_code

    assert media("ASK {}", "application/sparql-results+xml") == "application/sparql-results+xml"
    assert media("ASK {}", "*/*") == "application/sparql-results+json"
    assert media("ASK {}", "text/csv") == 406  # CSV and TSV have no boolean results
    assert media("ASK {}", "text/csv, application/sparql-results+xml;q=0.1") == "application/sparql-results+xml"
    assert media(DOCS, "text/csv;q=0.5, text/tab-separated-values") == "text/tab-separated-values"
    assert media(DOCS, "text/*, text/csv;q=0") == "text/tab-separated-values"
    assert media(DOCS, "*/*;q=0.1, application/sparql-results+json;q=0") == "application/sparql-results+xml"
    assert media(DOCS, "application/json") == "application/json"
    assert media(DOCS, "text/turtle") == 406
    construct = "CONSTRUCT WHERE { ?s ?p ?o }"
    for rdf in RDF_MEDIA:
        assert media(construct, rdf) == rdf
    assert media(construct, "") == "text/turtle"
    assert media(f"DESCRIBE <{A}>", "application/sparql-results+json, application/n-triples;q=0.5") == \
        "application/n-triples"


def test_solutions_serialised_as_oxigraph_does() -> None:
    query = r'''SELECT ?iri ?bnode ?lang ?int ?str ?dir ?triple ?undef WHERE {
        VALUES ?undef { 1 UNDEF } BIND(<http://x/a> AS ?iri) BIND(BNODE("k") AS ?bnode)
        BIND("line\n\"quoted\", tab\t"@en AS ?lang) BIND(1 AS ?int) BIND("s" AS ?str)
        BIND(STRLANGDIR("t", "ar", "rtl") AS ?dir) BIND(<<( <http://x/s> <http://x/p> "o"@en-GB )>> AS ?triple) }'''
    store = ox.Store()
    for format in TABULAR.values():
        solutions = store.query(query)
        rows = list(solutions)
        assert serialize_solutions(solutions.variables, rows, format) == store.query(query).serialize(format=format)
    empty = store.query("SELECT ?x WHERE { FILTER(false) }")
    assert serialize_solutions(empty.variables, [], ox.QueryResultsFormat.JSON) == \
        b'{"head":{"vars":["x"]},"results":{"bindings":[]}}'


# -- limits ---------------------------------------------------------------------------------------
def _limited(timeout: float = 30.0, rows: int = 10_000) -> KnowledgeGraph:
    return KnowledgeGraph(Settings(data_dir=None, sparql_timeout=timeout, sparql_result_limit=rows))


def test_result_limit_is_an_error_not_a_truncated_result() -> None:
    with _limited(rows=3) as graph:
        for name in (A, B, C):
            graph.store.add(ox.Quad(ox.NamedNode(name), ox.NamedNode("http://x/p"), ox.Literal(1), ox.NamedNode(name)))
        client = TestClient(create_app(graph))
        select = "SELECT ?s ?o WHERE { ?s <http://x/p> ?o }"
        assert len(client.get("/sparql", params={"query": select}).json()["results"]["bindings"]) == 3
        four = "SELECT ?n WHERE { VALUES ?n { 1 2 3 4 } }"
        for accept in ("application/sparql-results+json", "text/csv"):
            response = client.get("/sparql", params={"query": four}, headers={"accept": accept})
            assert response.status_code == 422 and response.headers["content-type"] == "application/problem+json"
            assert "result limit of 3" in response.json()["detail"] and "AI4KG_SPARQL_RESULT_LIMIT" in response.json()["detail"]
        assert client.get("/sparql", params={"query": four + " LIMIT 3"}).status_code == 200
        construct = "CONSTRUCT { ?s <http://x/q> ?n } WHERE { ?s <http://x/p> ?o VALUES ?n { 1 2 } }"
        assert client.get("/sparql", params={"query": construct}).status_code == 422
        assert client.get("/sparql", params={"query": "ASK { ?s ?p ?o }"}).status_code == 200


def _cross_product(graph: KnowledgeGraph, n: int) -> None:
    graph.store.extend(ox.Quad(ox.NamedNode(f"http://x/s{i}"), ox.NamedNode("http://x/p"), ox.Literal(i),
                               ox.NamedNode("http://x/g")) for i in range(n))


def test_timeout_is_an_error_while_results_stream() -> None:
    with _limited(timeout=0.3, rows=10**9) as graph:
        _cross_product(graph, 2000)  # 4 million solutions, one at a time
        client = TestClient(create_app(graph))
        started = time.monotonic()
        response = client.get("/sparql", params={"query": "SELECT * WHERE { ?a ?p ?x . ?b ?p ?y }"})
        assert time.monotonic() - started < 2
        assert response.status_code == 503 and response.headers["content-type"] == "application/problem+json"
        assert "timeout of 0.3 s" in response.json()["detail"] and "AI4KG_SPARQL_TIMEOUT" in response.json()["detail"]


def test_timeout_answers_at_the_deadline_even_inside_one_step() -> None:
    """ORDER BY is computed whole before the first solution, inside one call pyoxigraph cannot
    interrupt: such a query runs in a process of its own (api/query_process.py), killed at the
    deadline, so the client gets 503 then and nothing of the query runs on."""
    import os
    import threading

    def children() -> set[str]:
        return {child for task in os.listdir(f"/proc/{os.getpid()}/task")
                for child in open(f"/proc/{os.getpid()}/task/{task}/children").read().split()}

    with _limited(timeout=0.2, rows=10**9) as graph:
        _cross_product(graph, 900)  # sorting 810,000 solutions: over a second
        client = TestClient(create_app(graph))
        before = children()
        started = time.monotonic()
        response = client.get("/sparql", params={"query": "SELECT * WHERE { ?a ?p ?x . ?b ?p ?y } ORDER BY ?y ?x"})
        assert response.status_code == 503 and time.monotonic() - started < 0.8
        assert children() == before  # the query's process is gone: killed and reaped before the answer
        assert graph.query("ASK { }")
        for thread in threading.enumerate():
            if thread.name == "sparql-query":
                thread.join(30)
                assert not thread.is_alive()


def test_limits_from_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    settings = Settings.from_env(tmp_path)
    assert (settings.sparql_timeout, settings.sparql_result_limit) == (30.0, 10_000)
    monkeypatch.setenv("AI4KG_SPARQL_TIMEOUT", "2.5")
    monkeypatch.setenv("AI4KG_SPARQL_RESULT_LIMIT", "500")
    settings = Settings.from_env(tmp_path)
    assert (settings.sparql_timeout, settings.sparql_result_limit) == (2.5, 500)
    for variable, value in (("AI4KG_SPARQL_TIMEOUT", "0"), ("AI4KG_SPARQL_RESULT_LIMIT", "1.5"),
                            ("AI4KG_SPARQL_RESULT_LIMIT", "many")):
        monkeypatch.setenv(variable, value)
        with pytest.raises(ValueError, match=variable):
            Settings.from_env(tmp_path)
        monkeypatch.delenv(variable)
