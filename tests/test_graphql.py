"""GraphQL at /graphql: modules and tools with AND / OR / NOT filters and keyset pages, the links
between modules, deployments, runs and datasets, VO isolation, limits, GraphQL-over-HTTP, the
publishModule and withdrawModule mutations, and injection attempts, through a real client (gql over
HTTP to uvicorn on loopback)."""

from __future__ import annotations

import base64
import contextlib
import json
import math
import random
import re
import threading
from collections.abc import Iterator
from typing import Any, Optional

import pyoxigraph as ox
import pytest
import strawberry
from fastapi import FastAPI
from fastapi.testclient import TestClient
from gql import Client, GraphQLRequest
from gql.transport.exceptions import TransportQueryError
from gql.transport.httpx import HTTPXTransport

from ai4kg.api import graphql
from ai4kg.api.app import create_app
from ai4kg.catalog import VISIBILITIES, ImportOptions, import_files
from ai4kg.config import Settings
from ai4kg.credentials import KeyStore
from ai4kg.demo import demo_files, load_demo_catalog
from ai4kg.graph.store import AssetWrite, KnowledgeGraph, search_document

from conftest import serving as serving_app
from conftest import INVALID_MODULE_FILES
from conftest import MODULES as MODULE_FILES

ID = "https://w3id.org/ai4kg/id/"
MODULES = ["birdsong-audio-classifier", "clinical-text-ner", "crop-yield-xgboost", "federated-anomaly-detector",
           "flood-segmentation-s2", "plankton-image-classifier", "sst-forecaster"]
SECRET_VO = "vo.secret.eu"
SECRET_MODULE = "secret-forecaster"
PLANKTON = ID + "module/plankton-image-classifier"
PREFIXES = """@prefix ai4kg: <https://w3id.org/ai4kg/ns#> . @prefix xsd: <http://www.w3.org/2001/XMLSchema#> .
@base <https://w3id.org/ai4kg/id/> ."""
HIDDEN = (f"ai4kg:belongsToVO <{ID}virtualorganisation/{SECRET_VO}> ; "
          "ai4kg:visibility <https://w3id.org/ai4kg/vocab/visibility/virtual-organisation> ;")


def write_asset(graph: KnowledgeGraph, iri: str, turtle: str) -> None:
    """One hand-written asset graph, written as every asset is: one atomic graph write."""
    name = ox.NamedNode(iri)
    triples = ox.parse(input=(PREFIXES + turtle).encode(), format=ox.RdfFormat.TURTLE)
    graph.write([AssetWrite(iri, [ox.Quad(t.subject, t.predicate, t.object, name) for t in triples])])


ASSETS = {
    "dataset/plankton-images": """<{iri}> a ai4kg:Dataset ; ai4kg:identifier "plankton-images" ;
        ai4kg:title "Annotated plankton images" ; ai4kg:doi "10.5281/zenodo.7314001" .""",
    "dataset/secret-images": """<{iri}> a ai4kg:Dataset ; ai4kg:identifier "secret-images" ; {hidden}
        ai4kg:title "Images of the secret VO" .""",
    "trainingrun/run-1": """<{iri}> a ai4kg:TrainingRun ; ai4kg:identifier "run-1" ; ai4kg:status "finished" ;
        ai4kg:startedAt "2024-09-01T10:00:00Z"^^xsd:dateTime ; ai4kg:endedAt "2024-09-01T12:30:00Z"^^xsd:dateTime ;
        ai4kg:mlflowRun "4f1c2a" ; ai4kg:trainedModule <module/plankton-image-classifier> ;
        ai4kg:usedDataset <dataset/plankton-images>, <dataset/secret-images> .""",
    "trainingrun/run-secret": """<{iri}> a ai4kg:TrainingRun ; ai4kg:identifier "run-secret" ; {hidden}
        ai4kg:trainedModule <module/plankton-image-classifier> .""",
    "deployment/dep-1": """<{iri}> a ai4kg:ModuleDeployment ; ai4kg:identifier "dep-1" ; ai4kg:status "running" ;
        ai4kg:deploys <module/plankton-image-classifier> ; ai4kg:usedDataset <dataset/plankton-images> ;
        ai4kg:runsOn <datacenter/ifca> ; ai4kg:nomadJob "job-1" .""",
    "deployment/dep-secret": """<{iri}> a ai4kg:ModuleDeployment ; ai4kg:identifier "dep-secret" ; {hidden}
        ai4kg:deploys <module/plankton-image-classifier> .""",
    "deployment/dep-of-secret-module": """<{iri}> a ai4kg:ModuleDeployment ; ai4kg:identifier "dep-of-secret-module" ;
        ai4kg:deploys <module/secret-forecaster> .""",
    "deployment/dep-tool": """<{iri}> a ai4kg:ToolDeployment ; ai4kg:identifier "dep-tool" ;
        ai4kg:deploys <module/ai4kg-dev-env> .""",
    "federatedsession/fl-1": """<{iri}> a ai4kg:FederatedSession ; ai4kg:identifier "fl-1" ; ai4kg:strategy "FedAvg" ;
        ai4kg:numRounds 3 ; ai4kg:minFitClients 2 ; ai4kg:minAvailableClients 3 ;
        ai4kg:differentialPrivacy true ; ai4kg:usedDataset <dataset/plankton-images> .""",
}


@pytest.fixture(scope="module")
def graph() -> Iterator[KnowledgeGraph]:
    with KnowledgeGraph(Settings.in_memory()) as kg:
        load_demo_catalog(kg)
        sst = [p for p in demo_files() if p.name == "sst-forecaster.yml"]
        [report] = import_files(kg, sst, ImportOptions(identifier=SECRET_MODULE, vo=SECRET_VO,
                                                       visibility="virtual-organisation", license="CC-BY-4.0"))
        assert report.status == "imported", report.as_dict()
        for path, turtle in ASSETS.items():
            write_asset(kg, ID + path, turtle.format(iri=ID + path, hidden=HIDDEN))
        yield kg


@pytest.fixture(scope="module")
def keys() -> KeyStore:
    return KeyStore(None)


@pytest.fixture(scope="module")
def app(graph: KnowledgeGraph, keys: KeyStore) -> FastAPI:
    return create_app(graph, keys)


@pytest.fixture(scope="module")
def client(app: FastAPI) -> TestClient:
    return TestClient(app)


@contextlib.contextmanager
def serving(app: Any) -> Iterator[str]:
    """The app under uvicorn on a free loopback port: the URL of its /graphql."""
    with serving_app(app) as base:
        yield base + "/graphql"


@pytest.fixture(scope="module")
def url(app: FastAPI) -> Iterator[str]:
    with serving(app) as address:
        yield address


def gql_client(url: str, authorization: str | None = None) -> Client:
    headers = {"authorization": authorization} if authorization else {}
    return Client(transport=HTTPXTransport(url=url, headers=headers, timeout=10), fetch_schema_from_transport=True)


@pytest.fixture(scope="module")
def anonymous(url: str) -> Iterator[Any]:
    client = gql_client(url)
    with client as session:
        yield session


def run(session: Any, query: str, **variables: Any) -> dict[str, Any]:
    return session.execute(GraphQLRequest(query, variable_values=variables or None))


LIST = """query($filter: ApplicationFilter, $sort: Sort, $first: Int = 100, $after: String) {
  modules(filter: $filter, sort: $sort, first: $first, after: $after) {
    edges { cursor node { name } } pageInfo { hasNextPage endCursor } } }"""


def names(session: Any, **variables: Any) -> list[str]:
    page = run(session, LIST, **variables)["modules"]
    assert not page["pageInfo"]["hasNextPage"]
    return [edge["node"]["name"] for edge in page["edges"]]


def rest(client: TestClient, **params: Any) -> list[str]:
    response = client.get("/v1/catalog/modules", params=params)
    assert response.status_code == 200, response.text
    return response.json()


# -- listings ------------------------------------------------------------------------------------

def test_listing_matches_the_rest_catalog(anonymous: Any, client: TestClient) -> None:
    assert names(anonymous) == MODULES == rest(client)
    tools = run(anonymous, "{ tools { edges { node { __typename name categories } } } }")["tools"]["edges"]
    assert [e["node"]["name"] for e in tools] == ["ai4kg-dev-env"] and tools[0]["node"]["__typename"] == "Tool"
    assert names(anonymous, filter={"tags": {"in": ["Plankton", "floods"]}}) == rest(client, tags_any="plankton,floods")
    assert names(anonymous, filter={"tags": {"all": ["plankton", "DEEP LEARNING"]}}) == ["plankton-image-classifier"]
    assert names(anonymous, filter={"libraries": {"in": ["xgboost", "Keras"]}}) == \
        rest(client, libraries=["XGBoost", "Keras"])
    assert names(anonymous, filter={"tasks": {"in": ["Regression"]}, "dataTypes": {"in": ["Time Series"]}}) == \
        ["sst-forecaster"]
    assert names(anonymous, filter={"text": "sea surface temperature"}) == ["sst-forecaster"]


def test_detail_fields_are_the_rest_documents(anonymous: Any, client: TestClient) -> None:
    module = run(anonymous, """{ module(name: "plankton-image-classifier") { name iri title summary doi tags tasks
        categories libraries dataTypes created updated vo visibility metadata
        links { sourceCode dockerImage documentation dataset weights citation baseModel } } }""")["module"]
    [detail] = client.get("/v1/catalog/modules/detail", params={"tags": "plankton"}).json()
    assert module["metadata"] == client.get("/v1/catalog/modules/plankton-image-classifier/metadata").json()
    assert module["iri"] == detail["iri"] == PLANKTON and module["title"] == detail["title"]
    assert sorted(module["libraries"]) == sorted(detail["libraries"]) and module["dataTypes"] == detail["data-type"]
    assert (module["created"], module["updated"]) == (detail["dates"]["created"], detail["dates"]["updated"])
    assert module["links"]["sourceCode"] == "https://github.com/ai4kg-demo/plankton-image-classifier"
    assert module["links"]["dockerImage"] == "ai4kg-demo/plankton-image-classifier"
    assert module["links"]["baseModel"] is None and (module["vo"], module["visibility"]) == ("default", "public")
    assert run(anonymous, '{ tool(name: "ai4kg-dev-env") { name } }')["tool"]["name"] == "ai4kg-dev-env"
    assert run(anonymous, '{ tool(name: "plankton-image-classifier") { name } }')["tool"] is None
    assert run(anonymous, '{ module(name: "ai4kg-dev-env") { name } }')["module"] is None


def test_or_across_fields_and_not(anonymous: Any, client: TestClient) -> None:
    union = set(rest(client, tags_any="plankton")) | set(rest(client, libraries="XGBoost")) | set(rest(client, q="sea"))
    either = {"or": [{"tags": {"in": ["plankton"]}}, {"libraries": {"in": ["XGBoost"]}}, {"text": "sea"}]}
    assert names(anonymous, filter=either) == sorted(union)
    assert names(anonymous, filter={"not": {"tags": {"in": ["plankton", "floods"]}}}) == \
        rest(client, not_tags_any="plankton,floods")
    assert names(anonymous, filter={"not": {"tags": {"all": ["plankton", "deep learning"]}}}) == \
        rest(client, not_tags="plankton,deep learning")
    # De Morgan: not (a or b) == (not a) and (not b)
    neither = {"not": {"or": [{"tags": {"in": ["plankton"]}}, {"libraries": {"in": ["XGBoost"]}}]}}
    assert names(anonymous, filter=neither) == \
        [m for m in MODULES if m not in ("plankton-image-classifier", "crop-yield-xgboost")]
    # AND of ORs: (plankton or xgboost) and (keras or tensorflow)
    both = {"and": [either, {"libraries": {"in": ["Keras", "TensorFlow"]}}]}
    assert names(anonymous, filter=both) == sorted(union & set(rest(client, libraries="Keras,TensorFlow")))
    assert names(anonymous, filter={"tags": {"in": []}}) == [] and names(anonymous, filter={"or": []}) == []
    assert names(anonymous, filter={"not": {"tags": {"in": []}}}) == MODULES


def _dates(client: TestClient) -> dict[str, tuple[str, str]]:
    details = client.get("/v1/catalog/modules/detail").json()
    return {d["name"]: (d["dates"]["created"], d["dates"]["updated"]) for d in details}


def test_date_ranges(anonymous: Any, client: TestClient) -> None:
    dates = _dates(client)
    created_2023 = [m for m, (c, _) in sorted(dates.items()) if "2023-01-01" <= c <= "2023-12-31"]
    assert created_2023 and len(created_2023) < len(MODULES)
    assert names(anonymous, filter={"created": {"from": "2023-01-01", "to": "2023-12-31"}}) == created_2023
    assert names(anonymous, filter={"not": {"created": {"from": "2023-01-01", "to": "2023-12-31"}}}) == \
        [m for m in MODULES if m not in created_2023]
    recent = [m for m, (_, u) in sorted(dates.items()) if u >= "2025-01-01"]
    assert names(anonymous, filter={"updated": {"from": "2025-01-01"}}) == recent
    mixed = {"or": [{"updated": {"from": "2025-01-01"}}, {"tags": {"in": ["plankton"]}}]}
    assert names(anonymous, filter=mixed, sort={"field": "UPDATED", "direction": "DESC"}) == \
        sorted(set(recent) | {"plankton-image-classifier"}, key=lambda m: (dates[m][1], m), reverse=True)


def test_random_filters_agree_with_a_plain_evaluation(client: TestClient) -> None:
    """Random and / or / not trees over facets and dates, sorted and paged, against Python's own reading
    of the REST details."""
    details = client.get("/v1/catalog/modules/detail").json()
    pool = {field: sorted({v for d in details for v in d.get(key, [])}) for field, key in
            (("tags", "tags"), ("tasks", "tasks"), ("libraries", "libraries"), ("dataTypes", "data-type"))}
    days = sorted({d["dates"][k] for d in details for k in ("created", "updated")})
    rng = random.Random(20251125)

    def atom() -> tuple[dict, Any]:
        field = rng.choice([*pool, "created", "updated"])
        if field in ("created", "updated"):
            start, end = sorted(rng.sample(days, 2))
            return {field: {"from": start, "to": end}}, lambda d: start <= d["dates"][field] <= end
        key = {"dataTypes": "data-type"}.get(field, field)
        chosen = {v.lower() for v in rng.sample(pool[field], rng.randint(1, 2))}
        if rng.random() < 0.5:
            return {field: {"in": sorted(chosen)}}, lambda d: bool(chosen & {v.lower() for v in d.get(key, [])})
        return {field: {"all": sorted(chosen)}}, lambda d: chosen <= {v.lower() for v in d.get(key, [])}

    def tree(depth: int) -> tuple[dict, Any]:
        if depth == 0 or rng.random() < 0.3:
            return atom()
        operator = rng.choice(["and", "or", "not"])
        if operator == "not":
            inner, holds = tree(depth - 1)
            return {"not": inner}, lambda d: not holds(d)
        parts = [tree(depth - 1) for _ in range(rng.randint(1, 3))]
        combine = all if operator == "and" else any
        return {operator: [p for p, _ in parts]}, lambda d: combine(h(d) for _, h in parts)

    checked = 0
    for _ in range(60):
        spec, holds = tree(3)
        field = rng.choice(["IDENTIFIER", "TITLE", "CREATED", "UPDATED"])
        descending = rng.random() < 0.5
        value = {"IDENTIFIER": lambda d: d["name"], "TITLE": lambda d: d["title"],
                 "CREATED": lambda d: d["dates"]["created"], "UPDATED": lambda d: d["dates"]["updated"]}[field]
        expected = [d["name"] for d in sorted((d for d in details if holds(d)), key=lambda d: (value(d), d["iri"]),
                                               reverse=descending)]
        sort = {"field": field, "direction": "DESC" if descending else "ASC"}
        seen, after = [], None
        while True:
            body = client.post("/graphql", json={"query": LIST, "variables": {
                "filter": spec, "sort": sort, "first": 3, "after": after}}).json()
            if "errors" in body:
                assert "alternatives" in body["errors"][0]["message"], (spec, body)
                break
            page = body["data"]["modules"]
            seen += [e["node"]["name"] for e in page["edges"]]
            if not page["pageInfo"]["hasNextPage"]:
                assert seen == expected, (spec, sort)
                checked += 1
                break
            after = page["pageInfo"]["endCursor"]
    assert checked >= 40


@pytest.mark.parametrize("variables", [
    {},
    {"sort": {"field": "CREATED"}, "filter": {"created": {"from": "2022-06-01", "to": "2024-12-31"}}},
    {"sort": {"field": "CREATED", "direction": "DESC"},
     "filter": {"created": {"from": "2022-06-01", "to": "2024-12-31"}}},
    {"sort": {"field": "UPDATED", "direction": "DESC"},
     "filter": {"updated": {"to": "2024-12-31"}, "tags": {"in": ["deep learning", "nlp", "xgboost"]}}},
    {"sort": {"field": "TITLE"}},
    {"sort": {"field": "UPDATED", "direction": "DESC"}},
    {"sort": {"field": "CREATED", "direction": "DESC"},
     "filter": {"or": [{"tags": {"in": ["plankton"]}}, {"libraries": {"in": ["PyTorch"]}}, {"text": "sea"}]}},
    {"filter": {"or": [{"created": {"to": "2023-06-30"}}, {"dataTypes": {"in": ["Image"]}}]}},
])
def test_pages_walk_every_match_once_in_order(anonymous: Any, variables: dict[str, Any]) -> None:
    everything = names(anonymous, **variables)
    seen, after, pages = [], None, 0
    while True:
        page = run(anonymous, LIST, **variables, first=2, after=after)["modules"]
        seen += [e["node"]["name"] for e in page["edges"]]
        pages += 1
        assert page["edges"] and page["pageInfo"]["endCursor"] == page["edges"][-1]["cursor"]
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    assert seen == everything and pages == math.ceil(len(everything) / 2)


def test_cursors_are_the_rest_catalogs(anonymous: Any, client: TestClient) -> None:
    page = run(anonymous, LIST, first=3, sort={"field": "UPDATED", "direction": "DESC"})["modules"]
    response = client.get("/v1/catalog/modules", params={"sort": "-updated", "cursor": page["pageInfo"]["endCursor"]})
    assert [e["node"]["name"] for e in page["edges"]] + response.json() == rest(client, sort="-updated")


# -- links ---------------------------------------------------------------------------------------

LINKS = """{ module(name: "plankton-image-classifier") {
  deployments { identifier kind status nomadJob datacenter module { name } datasets { identifier } }
  trainingRuns { identifier status startedAt endedAt mlflowRun module { name } datasets { identifier title doi
                 trainingRuns { identifier } deployments { identifier }
                 federatedSessions { identifier strategy } } } } }"""


def test_links_both_ways(anonymous: Any) -> None:
    module = run(anonymous, LINKS)["module"]
    [deployment] = module["deployments"]
    assert deployment == {"identifier": "dep-1", "kind": "ModuleDeployment", "status": "running", "nomadJob": "job-1",
                          "datacenter": ID + "datacenter/ifca", "module": {"name": "plankton-image-classifier"},
                          "datasets": [{"identifier": "plankton-images"}]}
    [training] = module["trainingRuns"]
    assert training["identifier"] == "run-1" and training["module"] == {"name": "plankton-image-classifier"}
    assert training["startedAt"].startswith("2024-09-01T10:00:00") and training["mlflowRun"] == "4f1c2a"
    [dataset] = training["datasets"]  # the secret VO's dataset is left out
    assert dataset["identifier"] == "plankton-images" and dataset["trainingRuns"] == [{"identifier": "run-1"}]
    assert dataset["deployments"] == [{"identifier": "dep-1"}]
    assert dataset["federatedSessions"] == [{"identifier": "fl-1", "strategy": "FedAvg"}]
    tool = run(anonymous, '{ deployment(identifier: "dep-tool") { kind module { __typename name } } }')["deployment"]
    assert tool == {"kind": "ToolDeployment", "module": {"__typename": "Tool", "name": "ai4kg-dev-env"}}
    session = run(anonymous, """{ federatedSession(identifier: "fl-1") { strategy numRounds minFitClients
        minAvailableClients differentialPrivacy metricPrivacy datasets { identifier } } }""")["federatedSession"]
    assert session == {"strategy": "FedAvg", "numRounds": 3, "minFitClients": 2, "minAvailableClients": 3,
                       "differentialPrivacy": True, "metricPrivacy": None,
                       "datasets": [{"identifier": "plankton-images"}]}
    assert run(anonymous, '{ trainingRun(identifier: "dep-1") { identifier } }')["trainingRun"] is None  # wrong kind


# -- VO isolation --------------------------------------------------------------------------------

def test_other_vos_assets_never_appear(url: str, anonymous: Any, keys: KeyStore) -> None:
    _, member = keys.create("member", frozenset({SECRET_VO}))
    _, outsider = keys.create("outsider", frozenset({"vo.other.eu"}))
    query = """{ modules(first: 100) { edges { node { name } } }
      module(name: "secret-forecaster") { name vo visibility }
      plankton: module(name: "plankton-image-classifier") {
        deployments { identifier } trainingRuns { identifier datasets { identifier } } }
      hidden: deployment(identifier: "dep-secret") { identifier }
      orphan: deployment(identifier: "dep-of-secret-module") { identifier module { name } }
      dataset(identifier: "secret-images") { identifier } }"""
    seen = {}
    for who, authorization in (("anonymous", None), ("outsider", f"Bearer {outsider}"), ("member", f"Bearer {member}")):
        with gql_client(url, authorization) as session:
            seen[who] = run(session, query)
    for who in ("anonymous", "outsider"):
        result = seen[who]
        assert SECRET_MODULE not in [e["node"]["name"] for e in result["modules"]["edges"]]
        assert result["module"] is None and result["hidden"] is None and result["dataset"] is None
        assert result["plankton"]["deployments"] == [{"identifier": "dep-1"}]
        assert result["plankton"]["trainingRuns"] == [
            {"identifier": "run-1", "datasets": [{"identifier": "plankton-images"}]}]
        assert result["orphan"] == {"identifier": "dep-of-secret-module", "module": None}
        assert SECRET_MODULE not in json.dumps(result) and "secret-images" not in json.dumps(result)
    member_view = seen["member"]
    assert SECRET_MODULE in [e["node"]["name"] for e in member_view["modules"]["edges"]]
    assert member_view["module"] == {"name": SECRET_MODULE, "vo": SECRET_VO, "visibility": "virtual-organisation"}
    assert member_view["plankton"]["deployments"] == [{"identifier": "dep-1"}, {"identifier": "dep-secret"}]
    assert {"identifier": "secret-images"} in member_view["plankton"]["trainingRuns"][0]["datasets"]
    assert member_view["orphan"]["module"] == {"name": SECRET_MODULE}
    # the secret module's text is not searchable by others either
    assert names(anonymous, filter={"text": "sea surface temperature"}) == ["sst-forecaster"]


def test_concurrent_readers_each_see_their_own(url: str, keys: KeyStore) -> None:
    _, member = keys.create("concurrent member", frozenset({SECRET_VO}))
    failures: list[str] = []

    def reader(authorization: str | None, expected: bool) -> None:
        with gql_client(url, authorization) as session:
            for _ in range(10):
                result = run(session, '{ module(name: "secret-forecaster") { name } '
                                      'modules(first: 100) { edges { node { name } } } }')
                listed = SECRET_MODULE in [e["node"]["name"] for e in result["modules"]["edges"]]
                if (result["module"] is not None) != expected or listed != expected:
                    failures.append(f"{authorization and 'member'} saw {result}")

    threads = [threading.Thread(target=reader, args=(f"Bearer {member}", True) if i % 2 else (None, False))
               for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert not failures, failures[:2]


# -- batching ------------------------------------------------------------------------------------

class _Counting:
    """A stand-in for the store or index that counts the calls that reach it."""

    def __init__(self, target: Any, calls: list[str]):
        self._target, self._calls = target, calls

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._target, name)
        if callable(attribute):
            def counted(*args: Any, **kwargs: Any) -> Any:
                self._calls.append(name)
                return attribute(*args, **kwargs)
            return counted
        return attribute


def _clone(kg: KnowledgeGraph, template: list[ox.Quad], name: str) -> str:
    """A copy of the plankton module under another name (a quick way to a larger catalog)."""
    iri = f"{ID}module/{name}"

    def renamed(term: Any) -> Any:
        if isinstance(term, ox.NamedNode) and term.value.startswith(PLANKTON):
            return ox.NamedNode(iri + term.value[len(PLANKTON):])
        if isinstance(term, ox.Literal) and term.value == "plankton-image-classifier":
            return ox.Literal(name)
        return term

    kg.write([AssetWrite(iri, [ox.Quad(renamed(q.subject), q.predicate, renamed(q.object), ox.NamedNode(iri))
                               for q in template])])
    return iri


def test_a_page_of_50_modules_with_deployments_reads_each_graph_once(store_url: str | None) -> None:
    """Each asset graph is read once per request, together with the others of its level (the
    deployments' `module` is the page's module, not read again); links take one SPARQL query per 20
    assets. The embedded store reads graphs one by one (point reads, no query planning), a store
    server gets one query per level (one round trip)."""
    with KnowledgeGraph(Settings(data_dir=None, sparql_store_url=store_url)) as kg:
        load_demo_catalog(kg)
        template = kg.asset_quads(PLANKTON)
        for i in range(60):
            iri = _clone(kg, template, f"clone-{i:02d}")
            for d in range(2):
                deployment = f"{ID}deployment/clone-{i:02d}-{d}"
                write_asset(kg, deployment, f"""<{deployment}> a ai4kg:ModuleDeployment ;
                    ai4kg:identifier "clone-{i:02d}-{d}" ; ai4kg:deploys <{iri}> .""")
        client = TestClient(create_app(kg, KeyStore(None)))
        query = """query($first: Int!) { modules(first: $first, filter: {tags: {in: ["plankton"]}}) {
            edges { node { name title tags deployments { identifier status module { name title } } } } } }"""
        calls: list[str] = []
        store, index = kg.store, kg.index
        kg.store, kg.index = _Counting(store, calls), _Counting(index, calls)
        try:
            counts = {}
            for first in (5, 50):
                calls.clear()
                response = client.post("/graphql", json={"query": query, "variables": {"first": first}})
                edges = response.json()["data"]["modules"]["edges"]
                assert len(edges) == first and all(len(e["node"]["deployments"]) == 2 for e in edges)
                assert all(d["module"]["name"] == e["node"]["name"] for e in edges for d in e["node"]["deployments"])
                counts[first] = (calls.count("filter"), calls.count("query"), calls.count("quads_for_pattern"))
        finally:
            kg.store, kg.index = store, index
    links = {first: math.ceil(first / graphql.LINK_BATCH) for first in (5, 50)}
    if store_url is None:  # index page; link queries; the modules' and the deployments' graphs, one read each
        assert counts == {first: (1, links[first], first + 2 * first) for first in (5, 50)}, counts
    else:  # index page; one query for the modules' graphs, the link queries, one for the deployments' graphs
        assert counts == {first: (1, 2 + links[first], 0) for first in (5, 50)}, counts


def test_both_ways_of_reading_graphs_keep_the_same_statements(graph: KnowledgeGraph) -> None:
    """The embedded store's point reads keep what a store server's CONSTRUCT keeps: what each graph
    says about its own asset and the asset's #fragment nodes, not what it says about others."""
    names = ["module/plankton-image-classifier", "module/sst-forecaster", "deployment/dep-1", "module/none"]
    wanted = {ID + name: ox.NamedNode(ID + name) for name in names}
    stray = ox.Quad(ox.NamedNode(PLANKTON), ox.NamedNode("https://w3id.org/ai4kg/ns#title"), ox.Literal("forged"),
                    ox.NamedNode(ID + "module/sst-forecaster"))  # one asset's graph speaking about another
    graph.store.add(stray)
    try:
        def statements(found: dict[str, list[Any]]) -> dict[str, set[tuple[str, str, str]]]:
            return {iri: {(t.subject.value, t.predicate.value, t.object.value) for t in found.get(iri, [])}
                    for iri in wanted}

        read, constructed = graphql._read_graphs(graph, wanted), graphql._construct_graphs(graph, wanted)
        for part in (0, 1):  # the statements, and those the index entry is read from
            assert statements({k: v[part] for k, v in read.items()}) == \
                statements({k: v[part] for k, v in constructed.items()})
        own = statements({k: v[0] for k, v in read.items()})
        assert all(own[iri] for iri in list(wanted)[:3]) and not own[ID + "module/none"]
        assert any("#" in s for s, _, _ in own[PLANKTON])  # fragment nodes come along
        assert "forged" not in json.dumps(sorted(own[PLANKTON] | own[ID + names[1]]))
        # who may see an asset, read from those statements, is what the search index holds (VO, visibility;
        # None for a graph that is no asset), on both ways of reading
        every = {iri: ox.NamedNode(iri) for iri in [*graph.index.iris(), ID + "module/none"]}
        for found in (graphql._read_graphs(graph, every), graphql._construct_graphs(graph, every)):
            for iri in every:
                quads, entry = found.get(iri, ([], []))
                full, owner = search_document(iri, quads), graphql._owner(entry)
                assert (full is None) == (owner is None) == (iri == ID + "module/none"), iri
                if full is not None:
                    assert owner == (full.vo, full.visibility), iri
                    assert {(t.predicate.value, t.object.value) for t in entry} == \
                        {(t.predicate.value, t.object.value) for t in quads if t.subject.value == iri
                         and t.predicate.value in graphql._ENTRY_PREDICATES}, iri
    finally:
        graph.store.remove(stray)


# -- limits and errors ---------------------------------------------------------------------------

def _error(session: Any, query: str, **variables: Any) -> dict[str, Any]:
    with pytest.raises(TransportQueryError) as raised:
        run(session, query, **variables)
    [error] = raised.value.errors
    return error


def test_argument_errors_name_the_argument(anonymous: Any) -> None:
    error = _error(anonymous, LIST, filter={"tasks": {"in": ["Telepathy"]}})
    assert "Telepathy" in error["message"] and "Computer Vision" in error["message"]
    assert error["extensions"] == {"code": "BAD_USER_INPUT", "argument": "filter.tasks.in", "value": "Telepathy"}
    assert _error(anonymous, LIST, first=101)["extensions"]["argument"] == "first"
    assert _error(anonymous, LIST, first=0)["extensions"]["argument"] == "first"
    assert _error(anonymous, LIST, after="bm90IGEgY3Vyc29y")["extensions"]["argument"] == "after"
    cursor = run(anonymous, LIST, first=1)["modules"]["pageInfo"]["endCursor"]
    assert "another sort" in _error(anonymous, LIST, after=cursor, sort={"field": "TITLE"})["message"]
    error = _error(anonymous, LIST, filter={"not": {"text": "sea"}})
    assert "negated" in error["message"] and error["extensions"]["argument"] == "filter.not.text"
    error = _error(anonymous, LIST, filter={"text": "sea", "and": [{"text": "ocean"}]})
    assert error["extensions"]["argument"] == "filter.and[0].text"
    wide = {"and": [{"or": [{"tags": {"in": [f"t{i}{j}"]}} for j in range(3)]} for i in range(4)]}  # 3^4 branches
    assert str(graphql.MAX_BRANCHES) in _error(anonymous, LIST, filter=wide)["message"]
    deep: dict[str, Any] = {"tags": {"in": ["plankton"]}}
    for levels in range(1, 301):  # variables are not bound by the token limit
        deep = {"not": deep}
        if levels in (graphql.MAX_FILTER_DEPTH, graphql.MAX_FILTER_DEPTH + 1, 300):
            if levels <= graphql.MAX_FILTER_DEPTH:
                run(anonymous, LIST, filter=deep)
            else:  # ours, or graphql-core's own limit on variables
                assert re.search("levels deep|nested too deeply", _error(anonymous, LIST, filter=deep)["message"])
    many = [str(i) for i in range(graphql.MAX_VALUES + 1)]
    assert _error(anonymous, LIST, filter={"tags": {"in": many}})["extensions"]["argument"] == "filter.tags.in"
    crowded = {"and": [{"tags": {"in": [str(i)]}, "text": "x"} for i in range(graphql.MAX_CONDITIONS)]}
    assert "conditions" in _error(anonymous, LIST, filter=crowded)["message"]


def test_depth_token_and_alias_limits(client: TestClient) -> None:
    levels = ["modules", "edges", "node", "deployments", "module", "trainingRuns", "datasets", "trainingRuns", "module",
              "deployments", "module"]  # MAX_DEPTH + 1 fields with selections
    assert len(levels) == graphql.MAX_DEPTH + 1
    deep = "{ " + " { ".join(levels) + " { name" + " }" * (len(levels) + 1)
    allowed = "{ " + " { ".join(levels[:-1]) + " { identifier" + " }" * len(levels)
    tokens = "{ " + " ".join(f"a{i}: __typename" for i in range(graphql.MAX_TOKENS)) + " }"
    aliases = "{ " + " ".join(f"m{i}: module(name: \"x\") {{ name }}" for i in range(graphql.MAX_ALIASES + 1)) + " }"
    fine = "{ " + " ".join(f"m{i}: module(name: \"x\") {{ name }}" for i in range(graphql.MAX_ALIASES)) + " }"
    for query, says in ((deep, "exceeds maximum operation depth"), (tokens, "tokens"), (aliases, "aliases")):
        for accept, status in ((graphql.GRAPHQL_RESPONSE, 400), ("application/json", 200)):
            response = client.post("/graphql", json={"query": query}, headers={"accept": accept})
            assert response.status_code == status, response.text
            body = response.json()
            assert "data" not in body and says in body["errors"][0]["message"], body
    assert client.post("/graphql", json={"query": fine}).json() == \
        {"data": {f"m{i}": None for i in range(graphql.MAX_ALIASES)}}
    assert "errors" not in client.post("/graphql", json={"query": allowed}).json()


def test_unexpected_errors_are_masked(client: TestClient, graph: KnowledgeGraph,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("internal detail /var/lib/secret")

    monkeypatch.setattr(graph.index, "filter", broken)
    response = client.post("/graphql", json={"query": "{ modules { edges { node { name } } } }"})
    assert response.status_code == 200
    assert response.json()["errors"][0]["message"] == "Unexpected error." and "secret" not in response.text


# -- GraphQL over HTTP ---------------------------------------------------------------------------

@pytest.mark.parametrize("accept, media", [
    (graphql.GRAPHQL_RESPONSE, graphql.GRAPHQL_RESPONSE),
    (f"{graphql.GRAPHQL_RESPONSE}, application/json;q=0.9", graphql.GRAPHQL_RESPONSE),
    ("application/json", "application/json"),
    ("*/*", "application/json"),
    ("", "application/json"),
])
def test_media_type_follows_accept(client: TestClient, accept: str, media: str) -> None:
    headers = {"accept": accept} if accept else {}
    for response in (client.post("/graphql", json={"query": "{ __typename }"}, headers=headers),
                     client.get("/graphql", params={"query": "{ __typename }"}, headers=headers)):
        assert response.status_code == 200
        assert response.headers["content-type"] == f"{media}; charset=utf-8"
        assert response.json() == {"data": {"__typename": "Query"}}


@pytest.mark.parametrize("accept, status", [(graphql.GRAPHQL_RESPONSE, 400), ("application/json", 200)])
def test_status_codes(client: TestClient, accept: str, status: int) -> None:
    headers = {"accept": accept}
    # a parse error, a validation error, an operation the schema lacks, a missing variable
    for query in ("{ modules { edges ", "{ nothing }", "mutation { x }",
                  "query($n: Int!) { module(name: $n) { name } }"):
        response = client.post("/graphql", json={"query": query}, headers=headers)
        assert response.status_code == status, (query, response.text)
        assert "data" not in response.json() and response.json()["errors"][0]["message"]
    # executed, with a field error: 200 and data in both media types
    response = client.post("/graphql", json={"query": "{ modules(first: 0) { edges { cursor } } }"}, headers=headers)
    assert response.status_code == 200 and "data" in response.json() and response.json()["errors"]
    bad = [client.post("/graphql", content=b'{"query": "{ __typename',
                       headers={**headers, "content-type": "application/json"}),
           client.post("/graphql", json={"query": 42}, headers=headers),
           client.post("/graphql", json={"variables": {}}, headers=headers)]
    for response in bad:
        assert response.status_code == 400 and "data" not in response.json() and response.json()["errors"]
    response = client.post("/graphql", content="{ __typename }", headers={**headers, "content-type": "text/plain"})
    assert response.status_code == 415 and response.json()["errors"]
    response = client.put("/graphql", json={"query": "{ __typename }"}, headers=headers)
    assert response.status_code == 405 and "POST" in response.headers["allow"]


def test_unacceptable_accept_gets_406(client: TestClient) -> None:
    response = client.post("/graphql", json={"query": "{ __typename }"}, headers={"accept": "text/csv"})
    assert response.status_code == 406 and response.headers["content-type"] == "application/problem+json"


def test_browsers_get_graphiql_and_websockets_are_refused(client: TestClient) -> None:
    page = client.get("/graphql", headers={"accept": "text/html"})
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    with client.websocket_connect("/graphql", subprotocols=["graphql-transport-ws"]) as websocket:
        assert websocket.receive()["code"] == 4406  # no subscriptions to serve


def test_schema_has_the_mutations_rest_has(anonymous: Any) -> None:
    schema = run(anonymous, "{ __schema { mutationType { name fields { name } } } }")["__schema"]
    assert schema["mutationType"]["name"] == "Mutation"
    assert {f["name"] for f in schema["mutationType"]["fields"]} == {"publishModule", "withdrawModule",
                                                                  "createDeployment", "deleteDeployment"}
    assert {v.value for v in graphql.Visibility} == set(VISIBILITIES)  # every visibility the import accepts


# -- injection -----------------------------------------------------------------------------------

EVIL = ['plankton" OR 1=1 --', "') OR ('1'='1", "} ; DROP ALL #", "<http://x> .", "plankton\\u0022",
        "x> } ; DROP ALL ; INSERT DATA { <a> <b> <c> } #", '"""} }', "\u0000\u202e\uffff", "${injection}"]


def _snapshot(graph: KnowledgeGraph) -> tuple[int, bytes, list[str]]:
    return len(graph.store), graph.export(ox.RdfFormat.N_QUADS), graph.index.iris()


def test_injection_attempts_only_match_literally(anonymous: Any, client: TestClient, graph: KnowledgeGraph) -> None:
    before = _snapshot(graph)
    for evil in EVIL:
        words = " ".join(re.findall(r"\w+", evil))
        for field in ("tags",):
            assert names(anonymous, filter={field: {"in": [evil]}}) == []
            assert names(anonymous, filter={field: {"all": [evil]}}) == []
            assert names(anonymous, filter={"not": {field: {"in": [evil]}}}) == MODULES
        for field in ("tasks", "libraries", "categories", "dataTypes"):
            assert _error(anonymous, LIST, filter={field: {"in": [evil]}})["extensions"]["value"] == evil
        assert names(anonymous, filter={"text": evil}) == (names(anonymous, filter={"text": words}) if words else [])
        assert names(anonymous, filter={"or": [{"text": evil}, {"tags": {"in": [evil]}}]}) == \
            (names(anonymous, filter={"text": words}) if words else [])
        assert _error(anonymous, LIST, after=evil)["extensions"]["argument"] == "after"
        forged = base64.urlsafe_b64encode(json.dumps(["identifier", evil, evil]).encode()).decode()
        run(anonymous, LIST, after=forged)  # a forged keyset position is only a position
        for name in ("module", "tool"):
            assert run(anonymous, f"query($n: String!) {{ {name}(name: $n) {{ name }} }}", n=evil)[name] is None
        for name in ("deployment", "trainingRun", "dataset", "federatedSession"):
            assert run(anonymous, f"query($i: String!) {{ {name}(identifier: $i) {{ iri }} }}", i=evil)[name] is None
        for variables in ({"filter": {"created": {"from": evil}}}, {"sort": {"field": evil}}, {"first": evil}):
            with pytest.raises(TransportQueryError):  # dates are dates, sort keys an enum, first a number
                run(anonymous, LIST, **variables)
        # the same strings inline in the query text, as a client that escapes them would send them
        inline = json.dumps(evil)
        query = (f"{{ module(name: {inline}) {{ name }} "
                 f"modules(filter: {{tags: {{in: [{inline}]}}}}) {{ edges {{ cursor }} }} }}")
        response = client.post("/graphql", json={"query": query})
        assert response.json() == {"data": {"module": None, "modules": {"edges": []}}}, response.text
    assert _snapshot(graph) == before


# -- mutations -----------------------------------------------------------------------------------

PUBLISH = """mutation($name: String!, $metadata: String!, $format: MetadataFormat, $vo: String,
                       $visibility: Visibility) {
  publishModule(name: $name, metadata: $metadata, format: $format, vo: $vo, visibility: $visibility) {
    created warnings { field rule message value }
    module { __typename name iri title summary vo visibility metadata } } }"""
WITHDRAW = "mutation($name: String!) { withdrawModule(name: $name) { name iri withdrawn } }"
PUBLISHER_VO = "vo.publisher.eu"
PLANTS = MODULE_FILES / "plants-classification__ai4-metadata.yml"


def _document(path: Any, **changes: Any) -> str:
    import yaml

    document = yaml.safe_load(path.read_text())
    document.update(changes)
    return yaml.safe_dump(document)


@pytest.fixture(scope="module")
def writable() -> Iterator[dict[str, Any]]:
    """A store of its own for the mutations (the demo catalog), served over HTTP, with API keys of a
    member of PUBLISHER_VO, of another VO and of the platform administrator."""
    with KnowledgeGraph(Settings.in_memory()) as kg:
        load_demo_catalog(kg)
        keys = KeyStore(None)
        app = create_app(kg, keys)
        secrets = {who: f"Bearer {keys.create(who, vos, admin=who == 'admin')[1]}" for who, vos in
                   (("member", frozenset({PUBLISHER_VO})), ("outsider", frozenset({"vo.other.eu"})),
                    ("admin", frozenset()))}
        with serving(app) as address:
            yield {"graph": kg, "client": TestClient(app), "url": address, **secrets}


@contextlib.contextmanager
def session_of(writable: dict[str, Any], who: str | None) -> Iterator[Any]:
    with gql_client(writable["url"], writable[who] if who else None) as session:
        yield session


def _mutation_error(session: Any, query: str, **variables: Any) -> dict[str, Any]:
    with pytest.raises(TransportQueryError) as raised:
        run(session, query, **variables)
    assert raised.value.data == {query.split("{", 2)[1].split("(")[0].strip(): None}  # nothing answered
    [error] = raised.value.errors
    return error


def _rest_metadata(writable: dict[str, Any], name: str, who: str | None = None) -> Any:
    headers = {"authorization": writable[who]} if who else {}
    return writable["client"].get(f"/v1/catalog/modules/{name}/metadata", headers=headers)


def test_a_member_publishes_and_replaces_a_module(writable: dict[str, Any]) -> None:
    metadata = _document(PLANTS, title="Plants, published over GraphQL")
    with session_of(writable, "member") as member, session_of(writable, None) as anonymous:
        published = run(member, PUBLISH, name="plants-gql", metadata=metadata,
                        visibility="VIRTUAL_ORGANISATION")["publishModule"]
        module = published["module"]
        assert published["created"] is True
        assert module["__typename"] == "Module" and module["name"] == "plants-gql"
        assert module["iri"] == ID + "module/plants-gql" and module["title"] == "Plants, published over GraphQL"
        assert (module["vo"], module["visibility"]) == (PUBLISHER_VO, "virtual-organisation")  # the member's only VO
        assert all(set(w) == {"field", "rule", "message", "value"} for w in published["warnings"])
        # what the mutation answers is what the store now serves
        assert module["metadata"] == _rest_metadata(writable, "plants-gql", "member").json()
        assert run(anonymous, '{ module(name: "plants-gql") { name } }')["module"] is None  # VO only
        assert _rest_metadata(writable, "plants-gql").status_code == 404
        # re-published: replaced, not created; now public
        again = run(member, PUBLISH, name="plants-gql", metadata=_document(PLANTS, title="Plants, replaced"),
                    visibility="PUBLIC")["publishModule"]
        assert again["created"] is False and again["module"]["title"] == "Plants, replaced"
        assert again["module"]["visibility"] == "public"
        assert run(anonymous, '{ module(name: "plants-gql") { title } }')["module"] == {"title": "Plants, replaced"}
        assert "plants-gql" in names(anonymous, filter={"text": "replaced"})
        # JSON (here a legacy V1 metadata.json), and a tool: the answer is a Tool
        legacy = run(member, PUBLISH, name="plants-json", format="JSON",
                     metadata=(MODULE_FILES / "plants-classification__metadata.json").read_text())["publishModule"]
        assert legacy["created"] and "legacy-format" in [w["rule"] for w in legacy["warnings"]]
        tool = run(member, PUBLISH, name="llm-gql", metadata=(MODULE_FILES / "ai4os-llm__ai4-metadata.yml").read_text())
        assert tool["publishModule"]["module"]["__typename"] == "Tool"
        for name in ("plants-gql", "plants-json", "llm-gql"):
            assert run(member, WITHDRAW, name=name)["withdrawModule"]["withdrawn"] is True


def test_anonymous_agents_cannot_publish_or_withdraw(writable: dict[str, Any]) -> None:
    before = _snapshot(writable["graph"])
    with session_of(writable, None) as anonymous:
        for query, variables in ((PUBLISH, {"name": "plants-anon", "metadata": PLANTS.read_text()}),
                                 (WITHDRAW, {"name": "plankton-image-classifier"})):
            error = _mutation_error(anonymous, query, **variables)
            assert error["extensions"]["code"] == "UNAUTHENTICATED" and error["extensions"]["status"] == 401
            assert "sign in" in error["message"]
    response = writable["client"].post("/graphql", json={"query": WITHDRAW, "variables": {"name": "sst-forecaster"}},
                                       headers={"accept": graphql.GRAPHQL_RESPONSE})
    assert response.status_code == 200 and response.json()["data"] == {"withdrawModule": None}  # a field error
    assert _snapshot(writable["graph"]) == before


def test_another_vos_module_can_be_neither_replaced_nor_withdrawn(writable: dict[str, Any]) -> None:
    with session_of(writable, "member") as member, session_of(writable, "outsider") as outsider:
        run(member, PUBLISH, name="plants-owned", metadata=PLANTS.read_text(), visibility="VIRTUAL_ORGANISATION")
        before = _snapshot(writable["graph"])
        error = _mutation_error(outsider, PUBLISH, name="plants-owned", metadata=_document(PLANTS, title="Taken"))
        assert error["extensions"] == {"code": "FORBIDDEN", "status": 403, "argument": "name", "value": "plants-owned"}
        # a module the outsider cannot see is not there for it (as in REST)
        error = _mutation_error(outsider, WITHDRAW, name="plants-owned")
        assert error["extensions"]["code"] == "NOT_FOUND" and error["extensions"]["status"] == 404
        # publishing for a VO one is not a member of
        error = _mutation_error(outsider, PUBLISH, name="plants-elsewhere", metadata=PLANTS.read_text(),
                                vo=PUBLISHER_VO)
        assert error["extensions"] == {"code": "FORBIDDEN", "status": 403, "argument": "vo", "value": PUBLISHER_VO}
        assert _snapshot(writable["graph"]) == before
        # made public, it is seen, and still not the outsider's to withdraw
        run(member, PUBLISH, name="plants-owned", metadata=PLANTS.read_text())
        error = _mutation_error(outsider, WITHDRAW, name="plants-owned")
        assert error["extensions"]["code"] == "FORBIDDEN" and "another VO" in error["message"]
        assert run(outsider, '{ module(name: "plants-owned") { vo } }')["module"] == {"vo": PUBLISHER_VO}
        run(member, WITHDRAW, name="plants-owned")


def test_invalid_metadata_names_each_field_and_writes_nothing(writable: dict[str, Any]) -> None:
    with session_of(writable, "member") as member:
        run(member, PUBLISH, name="plants-valid", metadata=_document(PLANTS, title="The valid one"))
        before = _snapshot(writable["graph"])
        bad = _document(PLANTS, title="Changed", dates={"created": "2024-13-01", "updated": "2024-01-01"},
                        links={"source_code": "not a url"})
        for name in ("plants-valid", "plants-new"):  # replacing or creating: nothing is written either way
            error = _mutation_error(member, PUBLISH, name=name, metadata=bad)
            extensions = error["extensions"]
            assert (extensions["code"], extensions["status"], extensions["argument"]) == \
                ("BAD_USER_INPUT", 422, "metadata")
            assert "nothing was written" in error["message"]
            params = {p["name"]: p for p in extensions["invalidParams"]}
            assert set(params) == {"dates.created", "links.source_code"}, params
            assert params["dates.created"]["value"] == "2024-13-01" and params["dates.created"]["rule"] == "format"
            assert params["links.source_code"]["value"] == "not a url"
            assert all(p["rule"] and p["reason"] and "[" not in p["reason"] for p in params.values()), params
        # the real files that are invalid (each names its field), sent as written
        for file, field in INVALID_MODULE_FILES.items():
            error = _mutation_error(member, PUBLISH, name="plants-valid", metadata=(MODULE_FILES / file).read_text(),
                                    format="JSON" if file.endswith(".json") else "YAML")
            assert field in [p["name"] for p in error["extensions"]["invalidParams"]], (file, error)
        # a visibility outside the enum never reaches the store; nor does a document over 1 MiB
        with pytest.raises(TransportQueryError):
            run(member, PUBLISH, name="plants-valid", metadata=PLANTS.read_text(), visibility="secret")
        response = writable["client"].post("/graphql", headers={"authorization": writable["member"]}, json={
            "query": PUBLISH, "variables": {"name": "plants-valid", "metadata": "a" * (1024 * 1024 + 1)}})
        assert response.status_code == 413, response.text  # the body limit refuses it before GraphQL reads it
        assert "AI4KG_MAX_BODY_BYTES" in response.json()["detail"]
        assert _snapshot(writable["graph"]) == before
        assert run(member, '{ module(name: "plants-valid") { title } }')["module"] == {"title": "The valid one"}
        run(member, WITHDRAW, name="plants-valid")


def test_withdrawing_removes_the_module(writable: dict[str, Any]) -> None:
    with session_of(writable, "member") as member:
        run(member, PUBLISH, name="plants-gone", metadata=PLANTS.read_text())
        assert _rest_metadata(writable, "plants-gone").status_code == 200
        assert run(member, WITHDRAW, name="plants-gone")["withdrawModule"] == {
            "name": "plants-gone", "iri": ID + "module/plants-gone", "withdrawn": True}
        assert _rest_metadata(writable, "plants-gone").status_code == 404
        assert _rest_metadata(writable, "plants-gone", "member").status_code == 404
        assert run(member, '{ module(name: "plants-gone") { name } }')["module"] is None
        assert "plants-gone" not in names(member, filter={"text": "plants"})
        assert ID + "module/plants-gone" not in writable["graph"].index.iris()
        error = _mutation_error(member, WITHDRAW, name="plants-gone")
        assert error["extensions"]["code"] == "NOT_FOUND"


def test_the_administrator_publishes_for_any_vo(writable: dict[str, Any]) -> None:
    with session_of(writable, "admin") as admin, session_of(writable, "member") as member:
        published = run(admin, PUBLISH, name="plants-admin", metadata=PLANTS.read_text(), vo=PUBLISHER_VO,
                        visibility="PRIVATE")["publishModule"]
        assert (published["module"]["vo"], published["module"]["visibility"]) == (PUBLISHER_VO, "private")
        error = _mutation_error(admin, PUBLISH, name="plants-admin-2", metadata=PLANTS.read_text())
        assert error["extensions"] == {"code": "BAD_USER_INPUT", "status": 400, "argument": "vo", "value": None}
        assert run(member, WITHDRAW, name="plants-admin")["withdrawModule"]["withdrawn"] is True


def test_mutations_only_over_post(writable: dict[str, Any]) -> None:
    client, before = writable["client"], _snapshot(writable["graph"])
    for accept in (graphql.GRAPHQL_RESPONSE, "application/json"):
        for query, variables in ((WITHDRAW, {"name": "sst-forecaster"}),
                                 (PUBLISH, {"name": "plants-get", "metadata": PLANTS.read_text()})):
            response = client.get("/graphql", params={"query": query, "variables": json.dumps(variables)},
                                  headers={"accept": accept, "authorization": writable["admin"]})
            assert response.status_code == 405, response.text
            assert response.headers["allow"] == "POST" and response.headers["content-type"].startswith(accept)
            assert "data" not in response.json() and "POST" in response.json()["errors"][0]["message"]
        # a query still goes over GET
        assert client.get("/graphql", params={"query": "{ __typename }"}, headers={"accept": accept}).status_code == 200
    assert _snapshot(writable["graph"]) == before


def test_injection_attempts_in_mutation_arguments_change_nothing(writable: dict[str, Any]) -> None:
    before = _snapshot(writable["graph"])
    with session_of(writable, "member") as member, session_of(writable, "admin") as admin:
        for evil in EVIL:
            error = _mutation_error(member, PUBLISH, name=evil, metadata=PLANTS.read_text())
            assert error["extensions"]["argument"] == "name" and error["extensions"]["value"] == evil
            assert error["extensions"]["code"] == "BAD_USER_INPUT"
            assert _mutation_error(member, WITHDRAW, name=evil)["extensions"]["code"] == "NOT_FOUND"
            error = _mutation_error(member, PUBLISH, name="plants-evil", metadata=PLANTS.read_text(), vo=evil)
            assert error["extensions"] == {"code": "FORBIDDEN", "status": 403, "argument": "vo", "value": evil}
            error = _mutation_error(admin, PUBLISH, name="plants-evil", metadata=PLANTS.read_text(), vo=evil)
            assert [p["name"] for p in error["extensions"]["invalidParams"]] == ["vo"]
            # inline in the query text, as a client that escapes them would send them
            inline = json.dumps(evil)
            response = writable["client"].post("/graphql", headers={"authorization": writable["admin"]}, json={
                "query": f"mutation {{ withdrawModule(name: {inline}) {{ iri }} }}"})
            assert response.json()["data"] == {"withdrawModule": None}, response.text
        # metadata that is no ai4-metadata document at all
        for text in EVIL:
            error = _mutation_error(member, PUBLISH, name="plants-evil", metadata=text)
            assert error["extensions"]["status"] == 422 and error["extensions"]["invalidParams"], error
    # a lone surrogate (JSON allows the escape; no UTF-8 encodes it) is the loader's to report
    body = json.dumps({"query": PUBLISH, "variables": {"name": "plants-evil", "metadata": "?"}}).replace(
        '"metadata": "?"', '"metadata": "\\udc80 title: x"')
    response = writable["client"].post("/graphql", content=body, headers={
        "authorization": writable["member"], "content-type": "application/json"})
    [error] = response.json()["errors"]
    assert error["extensions"]["invalidParams"][0]["rule"] == "encoding", error
    assert _snapshot(writable["graph"]) == before



# -- the short way for plain fields --------------------------------------------------------------

@strawberry.type
class ShortLeaf:
    name: str
    score: Optional[float]
    tags: list[str]

    @strawberry.field
    def shout(self) -> str:
        return self.name.upper()


class _ShortLeaf(ShortLeaf):  # properties, as the Application fields are
    def __init__(self, name: Any, fail: bool = False) -> None:
        self._name, self._fail = name, fail
        self.score, self.tags = None, ["a", "b"]

    @property
    def name(self) -> Any:  # type: ignore[override]
        if self._fail:
            raise ValueError("broken property")
        return self._name


@strawberry.type
class ShortHolder:
    leaves: list[ShortLeaf]
    first: Optional[ShortLeaf]
    count: int


@strawberry.type
class ShortRoot:
    @strawberry.field
    def holder(self) -> ShortHolder:
        return ShortHolder(leaves=[_ShortLeaf("x"), _ShortLeaf("y")], first=_ShortLeaf("z"), count=2)

    @strawberry.field
    def broken(self) -> Optional[ShortHolder]:
        return ShortHolder(leaves=[_ShortLeaf("x"), _ShortLeaf(None)], first=_ShortLeaf("q", fail=True), count=1)

    @strawberry.field
    def odd(self) -> ShortHolder:
        return ShortHolder(leaves=[_ShortLeaf(3)], first=None, count="many")  # type: ignore[arg-type]


def test_plain_fields_short_way_answers_as_graphql_core() -> None:
    """_ExecutionContext completes plain fields (attributes, properties) past graphql-core's per-field
    steps; every answer, error and error path is the one graphql-core's usual execution gives."""
    from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext

    queries = [
        "{ holder { count leaves { name score tags __typename } first { name } } }",
        "{ holder { a: count b: count leaves { ...L shout } } } fragment L on ShortLeaf { name tags }",
        "{ holder { leaves { ... on ShortLeaf { name } } first { name shout } } }",
        "{ broken { count leaves { name } } }",
        "{ broken { first { name } count } }",
        "{ odd { count leaves { name } first { name } } }",
        "{ odd { leaves { name } } }",
    ]
    fast = strawberry.Schema(query=ShortRoot, execution_context_class=graphql._ExecutionContext)
    usual = strawberry.Schema(query=ShortRoot, execution_context_class=StrawberryGraphQLCoreExecutionContext)
    for query in queries:
        got, wanted = fast.execute_sync(query), usual.execute_sync(query)
        assert got.data == wanted.data, query
        assert [(e.message, e.path) for e in got.errors or []] == \
            [(e.message, e.path) for e in wanted.errors or []], query
    assert all(fast.execute_sync(q).errors for q in queries[3:6])  # the error cases were errors indeed
    assert fast.execute_sync(queries[6]).data == {"odd": {"leaves": [{"name": "3"}]}}  # coerced as String does
