"""The platform's own agents (the platform, and the CI servers, tracking server and workload managers
acting for it) are system facts: described once, in a system graph of their own, never repeated in
the graph of each build, run or deployment. The union of all graphs (the default graph of queries)
keeps a triple once per graph that holds it, so a description copied into every activity's graph
answered "what is the platform called?" once per activity (issue 15)."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pyoxigraph as ox
import pytest

from ai4kg.config import Settings
from ai4kg.graph.store import SYSTEM_GRAPHS, AssetWrite, KnowledgeGraph, content_digest
from ai4kg.provenance.documents import provenance_triples
from ai4kg.provenance.ingest import Provenance

from conftest import SHARED
from test_provenance import BUILD, JOB, MODULE, RUN, publish_details

BASE = "https://w3id.org/ai4kg/id/"
PROV = "http://www.w3.org/ns/prov#"
RDFS_LABEL = "http://www.w3.org/2000/01/rdf-schema#label"
PLATFORM = BASE + "agent/platform"
SOFTWARE_AGENTS = {name: BASE + f"agent/{name}" for name in ("jenkins", "github-actions", "mlflow", "nomad", "local")}
PLATFORM_AGENTS = {PLATFORM, *SOFTWARE_AGENTS.values()}
PLATFORM_AGENTS_GRAPH = "urn:ai4kg:platform-agents"
"""The system graph describing them (graph/namespaces.py), spelled out so these tests run on any tree."""
FRAGMENTS = json.loads((SHARED / "ai4eosc/provenance/fragments-demo-app.json").read_text())


def ingest_demo_app(graph: KnowledgeGraph) -> None:
    """The demo app's metadata, then its Jenkins build, MLflow run and Nomad job (the real fragments)."""
    publish_details(graph, FRAGMENTS["details"])
    outcomes = Provenance(graph).ingest([(copy.deepcopy(FRAGMENTS[part]), "test") for part in ("jenkins", "mlflow", "nomad")])
    assert [o.status for o in outcomes] == ["created"] * 3, [o.as_dict() for o in outcomes]


@pytest.fixture(scope="module")
def recorded() -> KnowledgeGraph:
    with KnowledgeGraph(Settings.in_memory()) as graph:
        ingest_demo_app(graph)
        yield graph


def labels(graph: KnowledgeGraph, iri: str) -> list[str]:
    """The labels of `iri` over the union of all graphs, one row per graph holding each (as SPARQL users see it)."""
    return [row["l"].value for row in graph.query(f"SELECT ?l WHERE {{ <{iri}> <{RDFS_LABEL}> ?l }}")]


def platform_agent_quads_outside_their_graph(graph: KnowledgeGraph) -> list[tuple[str, str, str, str]]:
    """(graph, subject, predicate, object) of every triple about a platform agent outside its system graph."""
    agents = " ".join(f"<{agent}>" for agent in sorted(PLATFORM_AGENTS))
    return [(row["g"].value, row["s"].value, row["p"].value, row["o"].value) for row in graph.query(
        f"SELECT ?g ?s ?p ?o WHERE {{ VALUES ?s {{ {agents} }} GRAPH ?g {{ ?s ?p ?o }} FILTER(?g != <{PLATFORM_AGENTS_GRAPH}>) }}")]


def test_the_platform_agent_has_one_label_over_the_union(recorded: KnowledgeGraph) -> None:
    assert labels(recorded, PLATFORM) == ["ai4kg platform"]
    for name, label in (("jenkins", "Jenkins"), ("mlflow", "MLflow"), ("nomad", "HashiCorp Nomad")):
        assert labels(recorded, SOFTWARE_AGENTS[name]) == [label], name


def test_no_activity_graph_describes_a_platform_agent(recorded: KnowledgeGraph) -> None:
    assert platform_agent_quads_outside_their_graph(recorded) == []
    # ... while each activity still says which agent it was associated with
    for activity, agent in ((BUILD, "jenkins"), (RUN, "mlflow"), (JOB, "nomad")):
        assert any(recorded.store.quads_for_pattern(ox.NamedNode(activity), ox.NamedNode(PROV + "wasAssociatedWith"),
                                                     ox.NamedNode(SOFTWARE_AGENTS[agent]), ox.NamedNode(activity)))


def test_people_stay_in_the_graphs_of_their_activities(recorded: KnowledgeGraph) -> None:
    """A commit's author is no system fact: their name stays with the build that names them."""
    [graph] = {q.graph_name.value for q in recorded.store.quads_for_pattern(
        None, ox.NamedNode(RDFS_LABEL), ox.Literal("Ignacio Heredia"), None)}
    assert graph == BUILD


def test_the_agents_graph_is_a_system_graph_read_by_everyone() -> None:
    """System graphs are in every reader's dataset (api/sparql.py `_confined`, the views), and are no asset."""
    assert PLATFORM_AGENTS_GRAPH in SYSTEM_GRAPHS
    with KnowledgeGraph(Settings.in_memory()) as graph:
        assert labels(graph, PLATFORM) == ["ai4kg platform"]  # there before any activity
        assert graph.index.count() == 0 and PLATFORM_AGENTS_GRAPH not in graph._asset_graphs()


def test_the_prov_document_names_the_agents_and_whom_they_act_for(recorded: KnowledgeGraph) -> None:
    triples = set(provenance_triples(recorded, MODULE, readers=frozenset({"another-vo"}))[0])
    mlflow = ox.NamedNode(SOFTWARE_AGENTS["mlflow"])
    for triple in ((mlflow, ox.NamedNode(RDFS_LABEL), ox.Literal("MLflow")),
                   (mlflow, ox.NamedNode(PROV + "actedOnBehalfOf"), ox.NamedNode(PLATFORM)),
                   (ox.NamedNode(PLATFORM), ox.NamedNode(RDFS_LABEL), ox.Literal("ai4kg platform"))):
        assert ox.Triple(*triple) in triples, triple


def test_a_deployment_graph_names_its_workload_manager_only() -> None:
    from ai4kg.workloads.records import new_deployment, to_quads

    deployment = new_deployment({"kind": "batch", "module": "ai4os-demo-app"}, "batch-1", BASE, "alice@example.org",
                                "default", MODULE, "ai4oshub/ai4os-demo-app", "local")
    [quads] = to_quads([deployment], BASE)[0].values()
    assert ox.Quad(ox.NamedNode(deployment.iri), ox.NamedNode(PROV + "wasAssociatedWith"),
                   ox.NamedNode(SOFTWARE_AGENTS["local"]), ox.NamedNode(deployment.iri)) in quads
    assert [q for q in quads if q.subject.value in PLATFORM_AGENTS] == []


def test_a_store_written_by_the_old_mapping_keeps_the_agents_in_their_graph_only(tmp_path: Path,
                                                                                 store_url: str | None) -> None:
    """Before, every activity's graph described the platform and its software agent: on open, those
    copies go (the activity's own triples stay) and the search index follows."""
    settings = Settings(data_dir=tmp_path / "data", sparql_store_url=store_url)
    with KnowledgeGraph(settings) as graph:
        ingest_demo_app(graph)
        build = graph.asset_quads(BUILD)
        platform, jenkins, label = ox.NamedNode(PLATFORM), ox.NamedNode(SOFTWARE_AGENTS["jenkins"]), ox.NamedNode(RDFS_LABEL)
        old = [ox.Quad(platform, label, ox.Literal("ai4kg platform"), ox.NamedNode(BUILD)),
               ox.Quad(jenkins, label, ox.Literal("Jenkins"), ox.NamedNode(BUILD)),
               ox.Quad(jenkins, ox.NamedNode(PROV + "actedOnBehalfOf"), platform, ox.NamedNode(BUILD))]
        graph.write([AssetWrite(BUILD, build + old)])
        assert labels(graph, PLATFORM) == ["ai4kg platform"] * 2
    with KnowledgeGraph(settings) as graph:
        assert labels(graph, PLATFORM) == ["ai4kg platform"]
        assert platform_agent_quads_outside_their_graph(graph) == []
        assert set(graph.asset_quads(BUILD)) == set(build)
        assert graph.index.pending() == [] and {hit.iri for hit in graph.search("AI4OS Hub Building")} == {BUILD}
        # the record log (OAI-PMH) holds the digest of what the graph holds now
        assert graph.index._rows("SELECT digest FROM record_log WHERE iri = ?", [BUILD]) == [(content_digest(build),)]
