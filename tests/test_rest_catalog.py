"""The REST catalog: names, details and metadata of modules and tools, filters that filter,
keyset pages through the Link header, and RFC 9457 errors naming the parameter."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from ai4kg.api.app import create_app
from ai4kg.config import Settings
from ai4kg.demo import load_demo_catalog
from ai4kg.graph.store import KnowledgeGraph

MODULES = ["birdsong-audio-classifier", "clinical-text-ner", "crop-yield-xgboost", "federated-anomaly-detector",
           "flood-segmentation-s2", "plankton-image-classifier", "sst-forecaster"]


@pytest.fixture(scope="module")
def client(store_url: str | None) -> TestClient:
    with KnowledgeGraph(Settings(data_dir=None, sparql_store_url=store_url)) as graph:
        load_demo_catalog(graph)
        yield TestClient(create_app(graph))


def names(client: TestClient, kind: str = "modules", **params: object) -> list[str]:
    response = client.get(f"/v1/catalog/{kind}", params=params)
    assert response.status_code == 200, response.text
    return response.json()


def test_modules_and_tools_are_separated(client: TestClient) -> None:
    assert names(client) == MODULES
    assert names(client, "tools") == ["ai4kg-dev-env"]


def test_tag_filters_really_filter(client: TestClient) -> None:
    assert names(client, tags=["plankton"]) == ["plankton-image-classifier"]
    assert names(client, tags=["Plankton", "deep learning"]) == ["plankton-image-classifier"]  # all, any case
    assert names(client, tags=["plankton", "floods"]) == []
    assert names(client, tags_any=["plankton", "floods"]) == ["flood-segmentation-s2", "plankton-image-classifier"]
    assert names(client, tags_any="plankton,floods") == ["flood-segmentation-s2", "plankton-image-classifier"]
    assert "plankton-image-classifier" not in names(client, not_tags_any=["plankton", "floods"])
    assert "plankton-image-classifier" in names(client, not_tags=["plankton", "floods"])
    assert "plankton-image-classifier" not in names(client, not_tags=["plankton", "deep learning"])


def test_vocabulary_filters_accept_any_label_and_are_or_within_and_across(client: TestClient) -> None:
    assert names(client, libraries=["XGBoost"]) == ["crop-yield-xgboost"]
    assert names(client, libraries=["xgboost", "Keras"]) == ["crop-yield-xgboost", "plankton-image-classifier"]
    assert names(client, tasks=["NLP"]) == ["clinical-text-ner"]
    assert names(client, tasks=["Regression"], data_types=["Time Series"]) == ["sst-forecaster"]
    assert names(client, categories=["AI4 pre trained"], libraries=["PyTorch"]) == [
        "birdsong-audio-classifier", "clinical-text-ner"]


def test_free_text_and_sort(client: TestClient) -> None:
    assert names(client, q="sea surface temperature") == ["sst-forecaster"]
    assert names(client, sort="-created")[:2] == ["federated-anomaly-detector", "clinical-text-ner"]
    assert names(client, sort="updated")[0] == "crop-yield-xgboost"


def test_keyset_pages_follow_the_link_header(client: TestClient) -> None:
    seen, url = [], "/v1/catalog/modules?limit=3&sort=-updated"
    while url:
        response = client.get(url)
        seen += response.json()
        link = response.headers.get("link")
        url = link[1:link.index(">")] if link else None
    assert seen == names(client, sort="-updated") and len(seen) == len(MODULES)


def test_detail_and_metadata(client: TestClient) -> None:
    [detail] = client.get("/v1/catalog/modules/detail", params={"tags": "plankton"}).json()
    assert detail["name"] == "plankton-image-classifier"
    assert detail["iri"] == "https://w3id.org/ai4kg/id/module/plankton-image-classifier"
    assert sorted(detail["libraries"]) == ["Keras", "TensorFlow"] and "Image" in detail["data-type"]
    metadata = client.get("/v1/catalog/modules/plankton-image-classifier/metadata").json()
    assert metadata["metadata_version"] == "2.3.0"
    assert metadata["links"]["source_code"] == "https://github.com/ai4kg-demo/plankton-image-classifier"
    assert client.get("/v1/catalog/tools/ai4kg-dev-env/metadata").status_code == 200


@pytest.mark.parametrize("url, parameter, status", [
    ("/v1/catalog/modules?tasks=Telepathy", "tasks", 400),
    ("/v1/catalog/modules?sort=colour", "sort", 400),
    ("/v1/catalog/modules?limit=0", "limit", 422),
    ("/v1/catalog/modules?limit=many", "limit", 422),
    ("/v1/catalog/modules?cursor=bm90IGEgY3Vyc29y", "cursor", 400),
    ("/v1/catalog/modules/no-such-module/metadata", "name", 404),
    ("/v1/catalog/tools/plankton-image-classifier/metadata", "name", 404),
])
def test_errors_are_problem_details_naming_the_parameter(client: TestClient, url: str, parameter: str,
                                                          status: int) -> None:
    response = client.get(url)
    assert response.status_code == status
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["status"] == status and body["title"] and body["detail"]
    assert parameter in [p["name"] for p in body["invalid-params"]]


def test_injection_attempts_only_match_literally(client: TestClient) -> None:
    import re

    for evil in ['plankton" OR 1=1 --', "') OR ('1'='1", "} ; DROP ALL #", "<http://x> .", "plankton\\u0022"]:
        assert names(client, tags=[evil]) == []
        # free text: the words of the input, as plain words, nothing more
        assert names(client, q=evil) == names(client, q=" ".join(re.findall(r"\w+", evil)))
    assert len(names(client)) == len(MODULES)


def test_service_endpoints(client: TestClient) -> None:
    assert client.get("/health").json() == {"status": "ok"}
    assert "version" in client.get("/version").json()
    paths = client.get("/openapi.json").json()["paths"]
    assert set(paths["/v1/catalog/modules/{name}/metadata"]) == {"get", "put", "delete"}
    assert "get" in paths["/v1/catalog/tools/detail"]
    unknown = client.get("/v1/catalog/widgets")
    assert unknown.status_code == 404 and unknown.headers["content-type"] == "application/problem+json"


def test_read_paths_take_a_worker_thread_only_for_index_or_store_server_work(client: TestClient, store_url: str | None,
                                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """Each worker-thread hop costs a tenth of a millisecond or more: reading one asset from the
    embedded store takes none, a listing one (its SQLite query), a store server one (the round trip)."""
    import anyio.to_thread

    run_sync = anyio.to_thread.run_sync
    hops: list[object] = []

    async def counting(function, *args, **kwargs):  # type: ignore[no-untyped-def]
        hops.append(function)
        return await run_sync(function, *args, **kwargs)

    monkeypatch.setattr(anyio.to_thread, "run_sync", counting)

    def hops_of(url: str, **params: object) -> int:
        hops.clear()
        assert client.get(url, params=params).status_code == 200
        return len(hops)

    one_asset = 1 if store_url else 0
    assert hops_of("/v1/catalog/modules/sst-forecaster/metadata") == one_asset
    assert hops_of("/id/module/sst-forecaster") == one_asset
    assert hops_of("/v1/catalog/modules", tags="deep learning", libraries="pytorch", limit=2) == 1
    assert hops_of("/v1/catalog/modules", q="forecast") == 1
    assert hops_of("/v1/catalog/modules/detail", limit=3) == 1
    assert hops_of("/search", q="plankton") == 1
    assert hops_of("/version") == 0


@pytest.mark.parametrize("accept, media", [
    ("application/json", "application/json"), ("text/turtle", "text/turtle"),
    ("application/ld+json", "application/ld+json"), ("application/rdf+xml", "application/rdf+xml"),
    ("application/n-triples", "application/n-triples"), ("text/html;q=0.5, text/turtle;q=0.9", "text/turtle"),
    ("text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8", "text/html"),  # a browser: the page
    ("", "application/json"),
])
def test_asset_iri_dereferences_by_content_negotiation(client: TestClient, accept: str, media: str) -> None:
    import pyoxigraph as ox

    response = client.get("/id/module/sst-forecaster", headers={"accept": accept} if accept else {})
    assert response.status_code == 200 and response.headers["content-type"].startswith(media)
    assert "Accept" in response.headers["vary"]
    iri = "https://w3id.org/ai4kg/id/module/sst-forecaster"
    if media == "application/json":
        assert response.json()["title"]
    elif media == "text/html":
        assert "<h1>" in response.text and "Sea-Surface Temperature Forecaster" in response.text
    else:
        formats = {"text/turtle": ox.RdfFormat.TURTLE, "application/ld+json": ox.RdfFormat.JSON_LD,
                   "application/rdf+xml": ox.RdfFormat.RDF_XML, "application/n-triples": ox.RdfFormat.N_TRIPLES}
        triples = list(ox.parse(input=response.content, format=formats[media]))
        assert any(t.subject.value == iri and t.predicate.value.endswith("#title") for t in triples)


def test_asset_errors(client: TestClient) -> None:
    assert client.get("/id/module/nothing-here").status_code == 404
    assert client.get("/id/widget/sst-forecaster").status_code == 404
    response = client.get("/id/module/sst-forecaster", params={"profile": "no-such-view"})
    assert response.status_code == 400 and response.json()["invalid-params"][0]["name"] == "profile"
    assert client.get("/id/module/sst-forecaster", headers={"accept": "image/png"}).status_code == 406


@pytest.mark.parametrize("method, url, allow", [
    ("PUT", "/v1/catalog/modules", "GET"),
    ("POST", "/v1/catalog/modules/x/metadata", "DELETE, GET, PUT"),
    ("PATCH", "/id/module/x", "GET"),
])
def test_405_names_every_method_of_the_path(client: TestClient, method: str, url: str, allow: str) -> None:
    response = client.request(method, url)
    assert response.status_code == 405 and response.headers["allow"] == allow
    assert response.headers["content-type"] == "application/problem+json"


def test_invalid_metadata_params_name_their_rule() -> None:
    """A rejected document's 422 gives each field's rule apart (GraphQL's invalidParams reads it), the
    reason still ends with it in brackets, and the body stays a valid problem+json."""
    from ai4kg.api.problems import ProblemDetail
    from ai4kg.credentials import KeyStore

    keys = KeyStore(None)
    _, secret = keys.create("publisher", frozenset({"vo.any.eu"}))
    body = b"metadata_version: 2.0.0\ntitle: x\nsummary: y\ndates:\n  created: 2024-13-01\n"
    with KnowledgeGraph(Settings(data_dir=None)) as graph:
        response = TestClient(create_app(graph, keys)).put(
            "/v1/catalog/modules/rule-check/metadata", content=body,
            headers={"content-type": "application/yaml", "authorization": f"Bearer {secret}"})
        assert response.status_code == 422, response.text
        assert graph.index.count() == 0  # nothing written
    payload = response.json()
    ProblemDetail.model_validate(payload)
    params = payload["invalid-params"]
    assert params and all(p["rule"] and p["reason"].endswith(f" [{p['rule']}]") for p in params), params
    assert "dates.created" in {p["name"] for p in params}
