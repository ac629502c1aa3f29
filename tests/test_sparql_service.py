"""SPARQL SERVICE: off by default (no request leaves the server on a caller's behalf); where an
administrator allows endpoints, only to those, each call with its own timeout (issue 14, item 2)."""

from __future__ import annotations

import urllib.request

import pytest
from fastapi.testclient import TestClient

from ai4kg.api.app import create_app
from ai4kg.config import Settings
from ai4kg.graph.datasets import service_calls
from ai4kg.graph.store import KnowledgeGraph
from loopback_endpoint import LoopbackEndpoint


@pytest.fixture
def listener() -> LoopbackEndpoint:
    server = LoopbackEndpoint()
    yield server
    server.close()


def test_service_is_found_as_a_keyword_only() -> None:
    assert [c.endpoint for c in service_calls("SELECT * { SERVICE <http://a/s> { ?s ?p ?o } }")] == ["<http://a/s>"]
    assert [c.endpoint for c in service_calls("select * { service silent ?ep {} Service ex:e {} }")] == ["?ep", "ex:e"]
    assert [c.endpoint for c in service_calls("SELECT * { { SELECT * { SERVICE <http://a/s> {} } } }")] == ["<http://a/s>"]
    for not_one in ('SELECT ?service { ?service ex:SERVICE "SERVICE <http://a/s>" } # SERVICE <http://b>',
                    "PREFIX service: <http://x/> SELECT * { ?s service:p <http://x/SERVICE> }"):
        assert service_calls(not_one) == []


@pytest.mark.parametrize("query", [
    "SELECT * WHERE {{ SERVICE <{url}> {{ ?s ?p ?o }} }}",
    "select * where {{ service silent <{url}> {{ ?s ?p ?o }} }}",
    "SELECT * WHERE {{ {{ SELECT * {{ SERVICE <{url}> {{ ?s ?p ?o }} }} }} }}",
    "ASK {{ SERVICE <{url}> {{ SERVICE <{url}> {{ ?s ?p ?o }} }} }}",
])
def test_federated_queries_are_off_by_default_and_send_nothing(listener: LoopbackEndpoint, query: str) -> None:
    """An anonymous query with SERVICE made the server call any address; now it gets 400 naming the
    setting, and the address is never contacted."""
    with KnowledgeGraph(Settings.in_memory()) as graph:
        response = TestClient(create_app(graph)).get("/sparql", params={"query": query.format(url=listener.url)})
    assert response.status_code == 400, response.text
    problem = response.json()
    assert problem["title"] == "Federated queries are off" and "AI4KG_SPARQL_SERVICES" in problem["detail"]
    assert problem["invalid-params"][0]["name"] == "query"
    assert listener.requests == []


def test_nested_calls_to_the_server_itself_are_refused() -> None:
    """50 nested SERVICE calls to the server's own endpoint stalled it: refused before anything runs."""
    with KnowledgeGraph(Settings.in_memory()) as graph:
        client = TestClient(create_app(graph))
        inner = "?s ?p ?o"
        for _ in range(50):
            inner = f"SERVICE <http://testserver/sparql> {{ {inner} }}"
        response = client.get("/sparql", params={"query": f"SELECT * WHERE {{ {inner} }}"})
        assert response.status_code == 400
        assert client.get("/health").json() == {"status": "ok"}


def test_allowed_endpoints_only_and_each_call_within_its_own_timeout(oxigraph_server: str, listener: LoopbackEndpoint) -> None:
    """With an allow-list: a query joins the store with an allowed endpoint (a real Oxigraph server);
    an endpoint not on the list, or not written as an IRI, is refused without a call; an allowed
    endpoint that does not answer in time fails the query with 502 at the service timeout."""
    remote = f"{oxigraph_server}/query"
    urllib.request.urlopen(urllib.request.Request(
        f"{oxigraph_server}/update", data=b"INSERT DATA { <http://x/m> <http://x/label> 'remote label' }",
        headers={"content-type": "application/sparql-update"}))
    held = LoopbackEndpoint(held=True)  # answers only when the test ends: past any timeout
    settings = Settings(data_dir=None, sparql_services=(remote, held.url), sparql_service_timeout=60)
    try:
        with KnowledgeGraph(settings) as graph:
            client = TestClient(create_app(graph))
            joined = client.get("/sparql", params={"query": f"""
                SELECT ?label WHERE {{ SERVICE <{remote}> {{ <http://x/m> <http://x/label> ?label }} }}"""},
                headers={"accept": "application/sparql-results+json"})
            assert joined.status_code == 200, joined.text
            assert [b["label"]["value"] for b in joined.json()["results"]["bindings"]] == ["remote label"]

            for endpoint in (f"<{listener.url}>", "?endpoint", "<sparql>"):
                refused = client.get("/sparql", params={"query": f"SELECT * {{ SERVICE {endpoint} {{ ?s ?p ?o }} }}"})
                assert refused.status_code == 400 and refused.json()["title"] == "SERVICE endpoint not allowed"
                assert refused.json()["invalid-params"][0]["value"] == endpoint
            assert listener.requests == []

        impatient = Settings(data_dir=None, sparql_services=(remote, held.url), sparql_service_timeout=0.5)
        with KnowledgeGraph(impatient) as graph:
            client = TestClient(create_app(graph))
            failed = client.get("/sparql", params={"query": f"SELECT * {{ SERVICE <{held.url}> {{ ?s ?p ?o }} }}"})
            assert failed.status_code == 502, failed.text
            assert "did not answer within 0.5 s" in failed.json()["detail"]
            assert "AI4KG_SPARQL_SERVICE_TIMEOUT" in failed.json()["detail"]
            assert client.get("/health").json() == {"status": "ok"}
    finally:
        held.close()


def test_the_allow_list_from_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    assert Settings.from_env(tmp_path).sparql_services == ()
    monkeypatch.setenv("AI4KG_SPARQL_SERVICES", "https://a.example/sparql, https://b.example/query")
    monkeypatch.setenv("AI4KG_SPARQL_SERVICE_TIMEOUT", "3")
    settings = Settings.from_env(tmp_path)
    assert settings.sparql_services == ("https://a.example/sparql", "https://b.example/query")
    assert settings.sparql_service_timeout == 3.0
    monkeypatch.setenv("AI4KG_SPARQL_SERVICE_TIMEOUT", "0")
    with pytest.raises(ValueError, match="AI4KG_SPARQL_SERVICE_TIMEOUT"):
        Settings.from_env(tmp_path)

