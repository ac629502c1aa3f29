"""The README's dashboard section: every page it shows answers on the demo catalogue."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient

from ai4kg.api.app import create_app
from ai4kg.config import Settings
from ai4kg.credentials import KeyStore
from ai4kg.demo import load_demo_catalog
from ai4kg.graph.store import KnowledgeGraph
from conftest import REPO

BROWSER = {"accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}


def test_every_page_the_readme_shows_answers_on_the_demo() -> None:
    readme = (REPO / "README.md").read_text("utf-8")
    section = readme.split("## The dashboard", 1)[1].split("\n## ", 1)[0]
    paths = re.findall(r"`(/[^`\s]*)`", section)
    assert len(paths) >= 9
    keys = KeyStore(None)
    _, secret = keys.create("admin", frozenset(), admin=True)
    with KnowledgeGraph(Settings.in_memory()) as graph:
        load_demo_catalog(graph)
        with TestClient(create_app(graph, keys=keys)) as client:
            for path in paths:
                response = client.get(path, headers={**BROWSER, "authorization": f"Bearer {secret}"})
                assert response.status_code == 200, (path, response.status_code, response.text[:300])
                assert response.headers["content-type"].startswith("text/html"), path
                assert "<h1" in response.text, path
            # the same IRI, asked by a program, is the module's document
            assert client.get("/id/module/flood-segmentation-s2").json()["title"] == "Satellite Flood Segmentation"
