"""`ai4kg serve --demo` as a user starts it, queried by real SPARQL clients over HTTP."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
import rdflib
from rdflib.plugins.stores.sparqlstore import SPARQLStore
from SPARQLWrapper import JSON, TURTLE, SPARQLWrapper

COUNT = "PREFIX ai4kg: <https://w3id.org/ai4kg/ns#> SELECT (COUNT(?m) AS ?n) WHERE { ?m a ai4kg:Module }"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def server(tmp_path: Path):  # type: ignore[no-untyped-def]
    port = _free_port()
    log = (tmp_path / "serve.log").open("w")
    process = subprocess.Popen([sys.executable, "-c", "from ai4kg.cli import main; main()", "--data",
                                str(tmp_path / "data"), "serve", "--demo", "--port", str(port)],
                               stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(f"{url}/stats", timeout=1)
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError((tmp_path / "serve.log").read_text()) from None
                time.sleep(0.2)
        yield url, tmp_path
    finally:
        process.terminate()
        process.wait(timeout=20)
        log.close()


def test_demo_catalog_served_to_sparql_clients(server) -> None:  # type: ignore[no-untyped-def]
    url, tmp_path = server
    # uvicorn's fast HTTP parser and event loop (ai4kg depends on both), not its pure-Python fallbacks
    assert "(uvicorn with httptools and uvloop)" in (tmp_path / "serve.log").read_text()
    client = SPARQLWrapper(f"{url}/sparql")
    client.setQuery(COUNT)
    client.setReturnFormat(JSON)
    modules = int(client.query().convert()["results"]["bindings"][0]["n"]["value"])
    demo_files = list((Path(__file__).resolve().parents[1] / "demo").glob("*.yml"))
    assert modules == len(demo_files) >= 8

    store = rdflib.Graph(SPARQLStore(f"{url}/sparql", returnFormat="json"))
    titles = {str(row.title) for row in store.query(
        "PREFIX ai4kg: <https://w3id.org/ai4kg/ns#> SELECT ?title WHERE { ?m a ai4kg:Module ; ai4kg:title ?title }")}
    assert len(titles) == modules
    # the demo's provenance: one module's CI build, its training job and the run it logged
    activities = {str(row.kind).rsplit("#", 1)[-1] for row in store.query(
        "PREFIX ai4kg: <https://w3id.org/ai4kg/ns#> PREFIX prov: <http://www.w3.org/ns/prov#> "
        "SELECT ?kind WHERE { ?a a prov:Activity, ?kind ; ai4kg:identifier ?id . FILTER(STRSTARTS(STR(?kind), STR(ai4kg:))) }")}
    assert activities == {"Build", "TrainingRun", "BatchTrainingDeployment"}

    client.setQuery("PREFIX ai4kg: <https://w3id.org/ai4kg/ns#> "
                    "CONSTRUCT { ?m ai4kg:title ?title } WHERE { ?m a ai4kg:Module ; ai4kg:title ?title }")
    client.setReturnFormat(TURTLE)
    response = client.query()
    assert response.response.headers["content-type"].startswith("text/turtle")
    constructed = rdflib.Graph().parse(data=response.convert(), format="turtle")
    assert {str(o) for o in constructed.objects()} == titles

    described = rdflib.Graph().parse(f"{url}/sparql")  # rdflib asks for RDF: the service description
    sd = rdflib.Namespace("http://www.w3.org/ns/sparql-service-description#")
    assert (None, sd.endpoint, rdflib.URIRef(f"{url}/sparql")) in described

    # the server owns the store: a second process gets the lock message, not a traceback
    stats = subprocess.run([sys.executable, "-c", "from ai4kg.cli import main; main()", "--data",
                            str(tmp_path / "data"), "stats"], capture_output=True, text=True)
    assert stats.returncode == 2 and "ai4kg serve" in stats.stderr and "Traceback" not in stats.stderr


def test_serve_freezes_the_long_lived_objects_before_serving(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """What is built before serving (the app, the store, the schema) is moved out of the collected
    generations (gc.freeze) before uvicorn starts: full collections no longer walk it."""
    import gc

    import uvicorn
    from click.testing import CliRunner

    from ai4kg.cli import main

    seen: dict[str, object] = {}
    monkeypatch.setattr(uvicorn, "run", lambda app, **options: seen.update(options, app=app,
                                                                           frozen=gc.get_freeze_count()))
    try:
        result = CliRunner().invoke(main, ["--data", str(tmp_path / "data"), "serve", "--port", "8123"])
    finally:
        gc.unfreeze()
    assert result.exit_code == 0, result.output
    assert seen["port"] == 8123 and seen["app"] is not None and seen["frozen"] > 10_000
