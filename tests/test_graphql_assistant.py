"""GraphQL's `ask` field: the assistant (ai4kg.assistant, issue 15) at /graphql, with the caller's
rights as REST's /v1/assistant/ask runs it; its answer is `ask()`'s, field for field, and a question
that is not one is an error naming the argument `question` and the rule it broke."""

from __future__ import annotations

import json
from typing import Any, Iterator

import pytest
import yaml
from fastapi.testclient import TestClient

from ai4kg.api.access import ANONYMOUS
from ai4kg.api.app import create_app
from ai4kg.assistant import ask
from ai4kg.catalog import ImportOptions, InlineFile, import_files
from ai4kg.config import Settings
from ai4kg.credentials import KeyStore
from ai4kg.graph.store import KnowledgeGraph

SECRET_VO = "vo.secret.eu"
MODULE = "https://w3id.org/ai4kg/id/module/"
FIELDS = ("status", "text", "sparql", "interpretation", "columns", "rows", "values", "candidates", "reason",
          "generator")
ASK = """query Ask($question: String!) {
  ask(question: $question) {
    status text sparql interpretation columns rows values candidates { title iris kind } reason generator
  }
}"""


def _module(name: str, title: str, libraries: list[str]) -> bytes:
    """An ai4-metadata document (as tests/test_assistant.py writes them, with its libraries given)."""
    return yaml.safe_dump({
        "metadata_version": "2.0.0", "title": title, "summary": f"{title}, a module for tests of the assistant.",
        "description": "A module.", "dates": {"created": "2024-01-02", "updated": "2024-02-03"},
        "links": {"source_code": f"https://github.com/example/{name}", "docker_image": f"example/{name}"},
        "tags": ["deep learning"], "tasks": ["Computer Vision"], "categories": ["AI4 pre trained"],
        "libraries": libraries, "data-type": ["Image"]}).encode()


@pytest.fixture(scope="module")
def graph() -> Iterator[KnowledgeGraph]:
    """Two public modules (one with PyTorch, one without) and a PyTorch module only its VO may read."""
    with KnowledgeGraph(Settings.in_memory()) as kg:
        for name, title, libraries, vo, visibility in [
                ("open-flood", "Open flood mapper", ["PyTorch"], "default", "public"),
                ("flood-tabular", "Flood mapper tabular", ["scikit-learn"], "default", "public"),
                ("secret-coral", "Secret coral counter", ["PyTorch"], SECRET_VO, "virtual-organisation")]:
            [report] = import_files(kg, [InlineFile(f"{name}.yml", _module(name, title, libraries))],
                                    ImportOptions(identifier=name, vo=vo, visibility=visibility))
            assert report.status == "imported", report
        yield kg


@pytest.fixture(scope="module")
def keys() -> KeyStore:
    return KeyStore(None)


@pytest.fixture(scope="module")
def client(graph: KnowledgeGraph, keys: KeyStore) -> TestClient:
    return TestClient(create_app(graph, keys))


@pytest.fixture(scope="module")
def member(keys: KeyStore) -> str:
    return f"Bearer {keys.create('coral member', frozenset({SECRET_VO}))[1]}"


def _post(client: TestClient, question: str, authorization: str | None = None) -> dict[str, Any]:
    headers = {"authorization": authorization} if authorization else {}
    response = client.post("/graphql", json={"query": ASK, "variables": {"question": question}}, headers=headers)
    assert response.status_code == 200, response.text
    return response.json()


def _asked(client: TestClient, question: str, authorization: str | None = None) -> dict[str, Any]:
    result = _post(client, question, authorization)
    assert "errors" not in result, result
    return result["data"]["ask"]


def _expected(graph: KnowledgeGraph, question: str, readers: Any) -> dict[str, Any]:
    """`ask()` called directly, its fields as JSON carries them."""
    answer = json.loads(json.dumps(ask(graph, question, readers).as_dict()))
    return {name: answer[name] for name in FIELDS}


@pytest.mark.parametrize("question", ["how many modules use pytorch?", "how many modules per library?",
                                      "What is the docker image of the flood mapper?"])
def test_the_field_answers_what_ask_answers(client: TestClient, graph: KnowledgeGraph, member: str,
                                            question: str) -> None:
    assert _asked(client, question) == _expected(graph, question, ANONYMOUS)
    assert _asked(client, question, member) == _expected(graph, question, frozenset({SECRET_VO}))


def test_a_count_a_group_by_and_candidates_come_through(client: TestClient) -> None:
    counted = _asked(client, "how many modules use pytorch?")
    assert counted["status"] == "answered" and counted["values"] == 1 and counted["generator"] == "embedded"
    assert counted["sparql"] and "COUNT" in counted["sparql"] and counted["columns"] == ["count"]
    assert counted["rows"][0]["count"]["value"] == "1"
    grouped = _asked(client, "how many modules per library?")
    library = "https://w3id.org/ai4kg/vocab/library/"
    assert sorted(map(tuple, grouped["values"])) == [(library + "pytorch", 1), (library + "scikit-learn", 1)]
    ambiguous = _asked(client, "What is the docker image of the flood mapper?")
    assert ambiguous["status"] == "ambiguous" and ambiguous["sparql"] is None
    assert {(c["title"], tuple(c["iris"]), c["kind"]) for c in ambiguous["candidates"]} == {
        ("Open flood mapper", (MODULE + "open-flood",), "Module"),
        ("Flood mapper tabular", (MODULE + "flood-tabular",), "Module")}


def test_another_vos_private_module_is_not_counted_for_anonymous_callers(client: TestClient, member: str) -> None:
    assert _asked(client, "how many modules use pytorch?")["values"] == 1
    assert _asked(client, "how many modules use pytorch?", member)["values"] == 2
    assert _asked(client, "list pytorch modules")["values"] == [MODULE + "open-flood"]
    hidden = _post(client, "What is the docker image of the Secret coral counter?")
    assert "secret-coral" not in json.dumps(hidden)
    seen = _asked(client, "What is the docker image of the Secret coral counter?", member)
    assert seen["values"] == ["example/secret-coral"]


@pytest.mark.parametrize("question, rule", [("", "must not be empty"), ("a" * 501, "at most 500 characters"),
                                            ("bell\x07", "control character U+0007")])
def test_a_rejected_question_is_an_error_naming_the_argument_and_rule(client: TestClient, question: str,
                                                                      rule: str) -> None:
    result = _post(client, question)
    assert result["data"] is None
    [error] = result["errors"]
    assert error["message"].startswith("question: ") and rule in error["message"], error
    assert error["path"] == ["ask"]
    assert error["extensions"]["code"] == "BAD_USER_INPUT" and error["extensions"]["argument"] == "question"
