"""The CLI commands end to end on an on-disk store, and the SPARQL 1.1 query endpoint."""

from __future__ import annotations

import json
from pathlib import Path

import pyoxigraph as ox
import yaml
from click.testing import CliRunner
from fastapi.testclient import TestClient

from ai4kg.api.app import create_app
from ai4kg.cli import main
from ai4kg.config import Settings
from ai4kg.demo import load_demo_catalog
from ai4kg.graph.store import KnowledgeGraph

from conftest import MODULES

YOLO = MODULES / "ai4os-yolo-torch__ai4-metadata.yml"
COUNT = "SELECT (COUNT(?m) AS ?n) WHERE { ?m a <https://w3id.org/ai4kg/ns#Module> }"


def run(*args: str) -> "object":
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def test_validate_exit_codes(tmp_path: Path) -> None:
    assert run("validate", str(YOLO)).exit_code == 0
    assert run("validate", str(MODULES / "socib-rip-currents-detection__ai4-metadata.yml")).exit_code == 1
    assert run("validate", str(tmp_path / "missing.yml")).exit_code == 2
    report = json.loads(run("validate", "--json", str(MODULES / "socib-rip-currents-detection__ai4-metadata.yml")).stdout)
    [error] = report[0]["errors"]
    assert (error["field"], error["rule"], error["value"]) == ("metadata_version", "allowed-values", "1.0.1")


def test_the_console_script_ignores_modules_beside_it(tmp_path: Path) -> None:
    """A console script's directory comes first on sys.path; a package's bin/jsonpath.py there (as
    jsonpath-rw installs one) must not hide the jsonpath module that morph-kgc imports."""
    import subprocess
    import sys

    (tmp_path / "jsonpath.py").write_text("raise ImportError('the shadowing script was imported')\n")
    script = tmp_path / "ai4kg"
    script.write_text("import sys\nfrom ai4kg.__main__ import run\nsys.exit(run())\n")
    result = subprocess.run([sys.executable, str(script), "validate", str(MODULES / "ai4os-yolo-torch__ai4-metadata.yml")],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "valid: " in result.stderr


def test_import_query_export_stats_search(tmp_path: Path) -> None:
    data = str(tmp_path / "store")
    result = run("--data", data, "import", str(YOLO), str(MODULES / "ai4os-demo-app__ai4-metadata.yml"))
    assert result.exit_code == 0, result.output
    assert "2 imported" in result.stderr
    csv_out = run("--data", data, "query", COUNT, "--format", "csv").stdout
    assert csv_out.splitlines() == ["n", "2"]
    from_one = COUNT.replace("WHERE", "FROM <https://w3id.org/ai4kg/id/module/ai4os-yolo-torch> WHERE")
    assert run("--data", data, "query", from_one, "--format", "csv").stdout.splitlines() == ["n", "1"]  # FROM honoured
    rq = tmp_path / "count.rq"
    rq.write_text(COUNT)
    assert json.loads(run("--data", data, "query", f"@{rq}", "--format", "json").stdout)["results"]["bindings"][0]["n"]["value"] == "2"
    assert run("--data", data, "query", "SELECT nonsense").exit_code == 1
    stats = json.loads(run("--data", data, "stats", "--json").stdout)
    assert stats["assets_by_kind"] == {"Module": 2} and stats["search_entries"] == 2
    hits = run("--data", data, "search", "yolo").stdout
    assert "module/ai4os-yolo-torch" in hits
    exported = run("--data", data, "export", "--format", "nq", "--assets-only").stdout_bytes
    quads = list(ox.parse(input=exported, format=ox.RdfFormat.N_QUADS))
    assert {q.graph_name.value for q in quads} == {"https://w3id.org/ai4kg/id/module/ai4os-yolo-torch",
                                                    "https://w3id.org/ai4kg/id/module/ai4os-demo-app"}
    jsonld = run("--data", data, "export", "--format", "jsonld").stdout
    assert json.loads(jsonld)
    turtle = run("--data", data, "export", "--format", "ttl", "--assets-only").stdout_bytes
    triples = {(t.subject, t.predicate, t.object) for t in ox.parse(input=turtle, format=ox.RdfFormat.TURTLE)}
    assert triples == {(q.subject, q.predicate, q.object) for q in quads}


def test_migrate_writes_valid_v2(tmp_path: Path) -> None:
    target = tmp_path / "ai4-metadata.yml"
    result = run("migrate", str(MODULES / "DEEP-OC-mods__metadata.json"), "-o", str(target))
    assert result.exit_code == 0, result.output
    migrated = yaml.safe_load(target.read_text())
    assert migrated["metadata_version"] == "2.3.0"
    assert migrated["links"]["source_code"] == "https://github.com/deephdc/mods"
    assert migrated["links"]["docker_image"] == "deephdc/deep-oc-mods"
    assert migrated["dates"] == {"created": "2019-02-19", "updated": "2019-02-19"}
    assert "tensorflow" in migrated["tags"]
    assert "tosca" in result.stderr  # named as a field with no 2.x place
    assert run("validate", str(target)).exit_code == 0


def test_sparql_endpoint_protocol() -> None:
    with KnowledgeGraph(Settings.in_memory()) as graph:
        reports = load_demo_catalog(graph)
        assert all(r.status == "imported" for r in reports), [str(i) for r in reports for i in r.errors]
        client = TestClient(create_app(graph))
        response = client.get("/sparql", params={"query": COUNT})
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("application/sparql-results+json")
        assert response.json()["results"]["bindings"][0]["n"]["value"] == str(len(reports))
        response = client.post("/sparql", content=COUNT, headers={"content-type": "application/sparql-query",
                                                                     "accept": "text/csv"})
        assert response.status_code == 200 and response.text.splitlines()[1] == str(len(reports))
        response = client.post("/sparql", data={"query": COUNT}, headers={"accept": "application/sparql-results+xml"})
        assert response.status_code == 200 and "<sparql" in response.text
        construct = "CONSTRUCT { ?m a ?c } WHERE { ?m a ?c } LIMIT 3"
        response = client.get("/sparql", params={"query": construct}, headers={"accept": "application/n-triples"})
        assert response.status_code == 200 and response.headers["content-type"].startswith("application/n-triples")
        one = "https://w3id.org/ai4kg/id/module/sst-forecaster"
        response = client.get("/sparql", params={"query": COUNT, "default-graph-uri": one})
        assert response.json()["results"]["bindings"][0]["n"]["value"] == "1"
        assert client.get("/sparql", params={"query": COUNT, "default-graph-uri": "not an iri"}).status_code == 400
        assert client.get("/sparql", params={"query": "SELEKT"}).status_code == 400
        assert client.get("/sparql", params={"default-graph-uri": one}).status_code == 400  # no query
        assert client.get("/sparql").headers["content-type"].startswith("text/turtle")  # service description
        assert client.get("/sparql", params={"query": COUNT}, headers={"accept": "image/png"}).status_code == 406
        assert client.post("/sparql", content=COUNT, headers={"content-type": "text/plain"}).status_code == 415
        hits = client.get("/search", params={"q": "plankton"}).json()
        assert hits and hits[0]["iri"].endswith("/module/plankton-image-classifier")
