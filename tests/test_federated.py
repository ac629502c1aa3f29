"""Federated learning through the platform (issue 7): federations as deployments of a real Flower
SuperLink, client keys admitted and revoked, rounds posted by the ServerApp and written to the
graph as provenance, divergence flagged, VO isolation. The strategies themselves (DP noise,
FedAvgOpt, each switch) are checked in test_federated_strategies.py."""

from __future__ import annotations

import copy
import json
import os
import signal
import socket
import subprocess
from pathlib import Path
from typing import Any, Iterator

import pytest
from fastapi.testclient import TestClient

from ai4kg.api.app import create_app
from ai4kg.credentials import KeyStore
from ai4kg.federated.environment import process_environment
from ai4kg.workloads.service import Requester
from ai4kg.federated.records import (check_request, check_round, divergence_scores, flagged, new_federation,
                                     run_config)
from conftest import serving
from test_deployments import MODULE, Platform, stop_everything, wait_for

AI4KG = "https://w3id.org/ai4kg/ns#"


# -- the request and the run config: typed, validated -------------------------------------------------
def test_a_privacy_switch_given_as_a_string_is_an_error_not_a_switch_that_is_on() -> None:
    issues = check_request({"module": MODULE, "privacy": {"differential_privacy": "true"}})
    assert [(i.field, i.rule, i.value) for i in issues] == [("privacy.differential_privacy", "type", "true")]
    issues = check_request({"module": MODULE, "rounds": "5", "divergence": {"revoke": 1}})
    assert {(i.field, i.rule) for i in issues} == {("rounds", "type"), ("divergence.revoke", "type")}


def test_rules_the_schema_cannot_say_name_their_field() -> None:
    issues = check_request({"module": MODULE, "strategy": "FedAvg", "min_fit_clients": 3, "min_available_clients": 2,
                            "strategy_options": {"proximal_mu": 0.5}, "privacy": {"metric_privacy": True}})
    assert {(i.field, i.rule) for i in issues} == {
        ("min_fit_clients", "min-available"), ("strategy_options.proximal_mu", "strategy"),
        ("privacy.metric_privacy", "differential-privacy")}
    assert check_request({"module": MODULE, "strategy": "FedProx", "strategy_options": {"proximal_mu": 0.5}}) == []
    assert [i.field for i in check_request({"module": MODULE, "unknown": 1})] == ["unknown"]


def test_the_run_config_keeps_types_and_each_minimum_in_its_own_setting() -> None:
    body = {"module": MODULE, "strategy": "FedAvgM", "min_fit_clients": 2, "min_available_clients": 5,
            "min_evaluate_clients": 1, "privacy": {"differential_privacy": True, "metric_privacy": True}}
    assert check_request(body) == []
    config = run_config(new_federation(body, "f", "https://x.org/", "alice", "default", "https://x.org/m"), "", "")
    assert config["min-fit-clients"] == 2 and config["min-available-clients"] == 5 and config["min-evaluate-clients"] == 1
    assert config["dp"] is True and config["metric-privacy"] is True and config["strategy"] == "fedavgm"
    assert config["server-learning-rate"] == 1.0 and "proximal-mu" not in config
    off = run_config(new_federation({"module": MODULE}, "g", "https://x.org/", "a", "default", "https://x.org/m"), "", "")
    assert off["dp"] is False and off["metric-privacy"] is False


def test_divergence_flags_the_update_far_from_all_others() -> None:
    honest = [[0.0, 1.0, 1.2, 0.9], [1.0, 0.0, 1.1, 1.0], [1.2, 1.1, 0.0, 1.3], [0.9, 1.0, 1.3, 0.0]]
    assert flagged(divergence_scores(honest), 3.0) == []
    poisoned = copy.deepcopy(honest)
    for other in range(3):
        poisoned[3][other] = poisoned[other][3] = 10.0
    scores = divergence_scores(poisoned)
    assert flagged(scores, 3.0) == [3] and scores[3] == 10.0
    assert flagged(divergence_scores([row[:3] for row in poisoned[:3]]), 3.0) == []  # three: nothing stands out


def round_record(federation: str, number: int, nodes: list[str], distances: list[list[float]] | None = None,
                 **extra: Any) -> dict[str, Any]:
    n = len(nodes)
    return {"federation": federation, "run_id": "42", "round": number, "started_at": "2026-12-03T10:00:00Z",
            "ended_at": "2026-12-03T10:00:09Z", "strategy": "fedavg", "sampled_nodes": nodes,
            "updates": [{"node_id": node, "num_examples": 100, "metrics": {"train-loss": 0.5}, "weight": 1 / n,
                         "update_norm": 1.0, "clipped": False} for node in nodes],
            "failures": [], "distances": distances or [[0.0 if i == j else 1.0 for j in range(n)] for i in range(n)],
            "model": {"sha256": f"{number:064x}", "parameters": 10}, "previous_model": {"sha256": f"{number - 1:064x}"},
            "train_metrics": {"train-loss": 0.5}, "evaluate_metrics": {"mse": 0.3}, "server_metrics": {"mse": 0.25},
            "privacy": None, **extra}


def test_every_predicate_object_map_of_the_federated_mapping_produces_a_triple() -> None:
    """morph-kgc drops what it cannot resolve silently: a session and a round that fill every field."""
    from ai4kg.federated.records import Client, federated_mapping, round_records, session_records, to_quads

    base = "https://w3id.org/ai4kg/id/"
    federation = new_federation({"module": MODULE, "description": "d", "privacy": {"differential_privacy": True}},
                                "full", base, "alice", "default", base + "module/" + MODULE)
    federation.deployment, federation.run_id = "full-server", "42"
    federation.started_at, federation.ended_at = "2026-12-03T10:00:00Z", "2026-12-03T11:00:00Z"
    federation.clients = [Client("a", "a", "SHA256:" + "A" * 43, "ecdsa-sha2-nistp384 AAAA a", "2026-12-03T09:00:00Z",
                                 "alice", node_id="1")]
    record = round_record("full", 1, ["1"], privacy={"mechanism": "fixed-clipping", "noise_multiplier": 1.0,
                                                     "clipping_norm": 1.0, "sampled_clients": 1, "max_distance": None,
                                                     "sigma": 1.0})
    records = session_records(federation, base)
    for source, rows in round_records(federation, record, base, [0.0], []).items():
        records[source] = rows
    quads = [q for found in to_quads(records).values() for q in found]
    produced = {q.predicate.value for q in quads}
    expected = {obj.predicate for rule in federated_mapping().rules for obj in rule.objects}
    assert expected - produced == set(), f"mapped but never produced by morph-kgc: {expected - produced}"
    assert {q.graph_name.value for q in quads} == {federation.iri, base + "federatedround/full-1"}


def test_a_round_record_is_checked_before_anything_is_written() -> None:
    record = round_record("f", 1, ["1", "2"])
    assert check_round(record) == []
    fallback = {"mechanism": "metric-privacy", "noise_multiplier": 1.0, "clipping_norm": 1.0, "sampled_clients": 1,
                "max_distance": 0.0, "sigma": 1.0, "note": "max pairwise distance is 0: sigma falls back to z*C/m"}
    assert check_round({**record, "server_metrics": {"mse": None}, "privacy": fallback}) == []  # what the App may send
    bad = {**record, "distances": [[0.0]], "ended_at": "2026-12-03T09:00:00Z"}
    assert {(i.field, i.rule) for i in check_round(bad)} == {("distances", "shape"), ("ended_at", "order")}
    assert [i.field for i in check_round({**record, "updates": [{"node_id": "x", "num_examples": -1}]})] \
        == ["updates[0].node_id", "updates[0].num_examples"]


# -- through the platform --------------------------------------------------------------------------
class Served:
    """The platform served over HTTP (the ServerApp posts to it), its control loop in a thread."""

    def __init__(self, root: Path):
        self.platform = Platform(root)
        keys = KeyStore(root / "data")
        self.alice = {"Authorization": f"Bearer {keys.create('alice', frozenset({'default'}))[1]}"}
        self.bob = {"Authorization": f"Bearer {keys.create('bob', frozenset({'other'}))[1]}"}
        self.carol = {"Authorization": f"Bearer {keys.create('carol', frozenset({'default'}))[1]}"}
        self.app = create_app(self.platform.graph, keys, self.platform.deployments)
        self.federations = self.app.state.federations
        self.client = TestClient(self.app)


@pytest.fixture
def served(tmp_path: Path, flower_bin: Path) -> Iterator[tuple[Served, str]]:
    made = Served(tmp_path)
    made.federations.flower_location = flower_bin.parent
    try:
        with serving(made.app) as url:
            made.federations.platform_url = url
            yield made, url
    finally:
        stop_everything(tmp_path / "local")
        made.federations.close()
        made.platform.close()


def tick(made: Served) -> None:
    made.platform.deployments.tick()
    made.federations.tick()


def token_of(made: Served, federation: str) -> dict[str, str]:
    from ai4kg.federated.superlink import TOKEN_VARIABLE, read_env

    return {"X-Recorder-Token": read_env(made.federations.root / federation / "secrets" / "superlink.env")[TOKEN_VARIABLE]}


def test_rounds_need_the_recorder_token_are_checked_and_are_written_once(served: tuple[Served, str]) -> None:
    made, _ = served
    client = made.client
    created = client.post("/v1/federations", json={"module": MODULE, "name": "rounds", "rounds": 3},
                          headers=made.alice)
    assert created.status_code == 201, created.text
    assert created.json()["deployment"] == "rounds-server"
    for name in ("site-a", "site-b", "site-c", "site-d"):
        assert client.post("/v1/federations/rounds/clients", json={"name": name}, headers=made.alice).status_code == 201
    federation = made.federations.get("rounds")
    assert all(c.node_id is None for c in federation.clients)  # registered once the SuperLink runs
    wait_for(lambda: (tick(made), all(c.node_id for c in made.federations.get("rounds").clients))[1], 60,
             "the clients' keys to be registered with the SuperLink")
    nodes = made.federations.get("rounds").admitted_nodes()

    record = round_record("rounds", 1, nodes)
    assert client.post("/v1/federations/rounds/rounds", json=record).status_code == 401
    assert client.post("/v1/federations/rounds/rounds", json=record, headers={"X-Recorder-Token": "guess"}
                       ).status_code == 401
    assert client.get("/v1/federations/rounds/admitted", headers=made.alice).status_code == 401
    token = token_of(made, "rounds")
    bad = client.post("/v1/federations/rounds/rounds", json={**record, "distances": [[0.0]]}, headers=token)
    assert bad.status_code == 422 and bad.json()["invalid-params"][0]["name"] == "distances"
    assert client.get("/v1/federations/rounds/rounds", headers=made.alice).json()["rounds"] == []

    posted = client.post("/v1/federations/rounds/rounds", json=record, headers=token)
    assert posted.status_code == 201, posted.text
    assert posted.json()["admitted_nodes"] == nodes and posted.json()["flagged_nodes"] == []
    again = client.post("/v1/federations/rounds/rounds", json=record, headers=token)
    assert again.status_code == 200
    other = client.post("/v1/federations/rounds/rounds", json={**record, "server_metrics": {"mse": 9.0}}, headers=token)
    assert other.status_code == 409

    # the round in the graph: its session, the updates it used and the model it made
    rows = made.platform.graph.query(
        "PREFIX ai4kg: <https://w3id.org/ai4kg/ns#> PREFIX prov: <http://www.w3.org/ns/prov#> "
        "SELECT ?round ?n (COUNT(?update) AS ?updates) WHERE { GRAPH ?round { ?round ai4kg:session ?s ; "
        "ai4kg:roundNumber ?n ; prov:used ?update . ?update a ai4kg:ClientUpdate } ?s ai4kg:identifier \"rounds\" } "
        "GROUP BY ?round ?n")
    assert [(r["n"].value, r["updates"].value) for r in rows] == [("1", "4")]

    # another VO sees none of it, in any interface
    assert client.get("/v1/federations/rounds", headers=made.bob).status_code == 404
    assert client.get("/v1/federations/rounds/rounds", headers=made.bob).status_code == 404
    assert client.get("/v1/federations/rounds", headers=made.carol).status_code == 200
    assert client.post("/v1/federations/rounds/clients", json={"name": "x"}, headers=made.carol).status_code == 403
    query = "SELECT (COUNT(*) AS ?n) WHERE { ?r a <https://w3id.org/ai4kg/ns#FederatedRound> }"
    for headers, expected in ((made.bob, "0"), ({}, "0"), (made.carol, "1")):
        answer = client.get("/sparql", params={"query": query}, headers={**headers, "Accept": "application/sparql-results+json"})
        assert answer.json()["results"]["bindings"][0]["n"]["value"] == expected, headers
    graphql = '{ federatedSession(identifier: "rounds") { strategy rounds { number updates { numExamples } } } }'
    assert client.post("/graphql", json={"query": graphql}, headers=made.bob).json()["data"]["federatedSession"] is None
    seen = client.post("/graphql", json={"query": graphql}, headers=made.carol).json()["data"]["federatedSession"]
    assert seen == {"strategy": "FedAvg", "rounds": [{"number": 1, "updates": [{"numExamples": 100}] * 4}]}

    # a poisoned update is flagged in the graph; revoking its client takes it out of the admitted nodes
    far = [[0.0 if i == j else (10.0 if 3 in (i, j) else 1.0) for j in range(4)] for i in range(4)]
    flagged_round = client.post("/v1/federations/rounds/rounds", json=round_record("rounds", 2, nodes, far),
                                headers=token).json()
    assert flagged_round["flagged_nodes"] == [nodes[3]] and nodes[3] in flagged_round["admitted_nodes"]
    divergent = made.platform.graph.query(
        "PREFIX ai4kg: <https://w3id.org/ai4kg/ns#> PREFIX prov: <http://www.w3.org/ns/prov#> "
        "SELECT ?client WHERE { GRAPH ?g { ?u ai4kg:divergent true ; prov:wasAttributedTo ?client } }")
    by_node = {c.node_id: c.name for c in made.federations.get("rounds").clients}
    assert [r["client"].value.rsplit("-client-", 1)[1] for r in divergent] == [by_node[nodes[3]]]
    revoked = client.delete(f"/v1/federations/rounds/clients/{by_node[nodes[3]]}", headers=made.alice)
    assert revoked.status_code == 200 and revoked.json()["status"] == "revoked"
    admitted = client.get("/v1/federations/rounds/admitted", headers=token).json()
    assert admitted["admitted_nodes"] == nodes[:3] and admitted["revoked_nodes"] == [nodes[3]]
    statuses = {r["status"]["value"] for r in client.get("/sparql", params={"query": (
        "SELECT ?status WHERE { ?c a <https://w3id.org/ai4kg/ns#FederatedClient> ; "
        "<https://w3id.org/ai4kg/ns#status> ?status }")}, headers={**made.carol, "Accept": "application/sparql-results+json"}
    ).json()["results"]["bindings"]}
    assert statuses == {"admitted", "revoked"}

    stopped = client.delete("/v1/federations/rounds", headers=made.alice)
    assert stopped.status_code == 200 and stopped.json()["status"] == "stopped"
    wait_for(lambda: (tick(made), made.platform.deployments.get("rounds-server").status == "stopped")[1], 30,
             "the server to stop")


def test_automatic_revocation_by_policy(served: tuple[Served, str]) -> None:
    made, _ = served
    client = made.client
    assert client.post("/v1/federations", json={"module": MODULE, "name": "policy", "divergence": {"revoke": True}},
                       headers=made.alice).status_code == 201
    for name in ("a", "b", "c", "d"):
        client.post("/v1/federations/policy/clients", json={"name": name}, headers=made.alice)
    wait_for(lambda: (tick(made), all(c.node_id for c in made.federations.get("policy").clients))[1], 60,
             "the clients' keys to be registered")
    nodes = made.federations.get("policy").admitted_nodes()
    far = [[0.0 if i == j else (10.0 if 0 in (i, j) else 1.0) for j in range(4)] for i in range(4)]
    answer = client.post("/v1/federations/policy/rounds", json=round_record("policy", 1, nodes, far),
                         headers=token_of(made, "policy")).json()
    assert answer["flagged_nodes"] == [nodes[0]] and nodes[0] not in answer["admitted_nodes"]
    [revoked] = [c for c in made.federations.get("policy").clients if c.status == "revoked"]
    assert revoked.node_id == nodes[0] and "divergent in round 1" in revoked.reason
    control = made.federations._control(made.federations.get("policy"))
    assert {n["node-id"]: n["status"] for n in control.nodes()}[nodes[0]] == "unregistered"


def test_a_federation_request_is_refused_whole(served: tuple[Served, str]) -> None:
    made, _ = served
    answer = made.client.post("/v1/federations", json={"module": MODULE, "strategy": "FedMagic",
                                                       "privacy": {"differential_privacy": "yes"}}, headers=made.alice)
    assert answer.status_code == 422
    assert {e["name"] for e in answer.json()["invalid-params"]} == {"strategy", "privacy.differential_privacy"}
    assert made.client.post("/v1/federations", json={"module": "no-such-module"}, headers=made.alice).status_code == 422
    assert made.client.post("/v1/federations", json={"module": MODULE}).status_code == 401
    assert made.client.post("/v1/deployments", json={"kind": "federated", "module": MODULE},
                            headers=made.alice).json()["invalid-params"][0]["rule"] == "federation"
    assert made.federations.ledger.find() == []
    assert made.platform.deployments.find(Requester("alice", frozenset({"default"}))) == []


# -- acceptance: a real SuperLink and SuperNodes on loopback, five rounds through the platform ---------
def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class SuperNode:
    """A client site: a Flower SuperNode with the key the platform handed over, on loopback."""

    def __init__(self, bin_directory: Path, folder: Path, admitted: dict[str, Any], node_config: str):
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "client.key").write_text(admitted["private_key"])
        (folder / "client.key").chmod(0o600)
        (folder / "ca.pem").write_text(admitted["root_certificates"])
        self.log = folder / "supernode.log"
        command = [str(bin_directory / "flower-supernode"), "--superlink", admitted["superlink"],
                   "--root-certificates", str(folder / "ca.pem"),
                   "--auth-supernode-private-key", str(folder / "client.key"),
                   "--host", "127.0.0.1", "--port", str(_free_port()), "--node-config", node_config]
        with open(self.log, "wb") as output:
            self.process = subprocess.Popen(command, env=process_environment(folder / "home", bin_directory),
                                            stdout=output, stderr=subprocess.STDOUT, start_new_session=True)

    def stop(self) -> None:
        for number in (signal.SIGTERM, signal.SIGKILL):
            try:
                os.killpg(self.process.pid, number)  # the group: the ClientApp processes it started too
                self.process.wait(10)
                return
            except ProcessLookupError:
                return
            except subprocess.TimeoutExpired:
                continue


def test_five_rounds_of_four_quadrants_through_the_platform(served: tuple[Served, str], flower_bin: Path,
                                                            tmp_path: Path) -> None:
    """Four clients with differently distributed data (the paper's four radar quadrants), a fifth
    that scales its update by 10 (poisoned) and is revoked by the divergence policy in the first
    round it takes part in, and an intruder whose key was revoked before it ever connected."""
    made, _ = served
    client = made.client
    # the server evaluates each new model on every quadrant; the clients only train (which halves
    # the ClientApp processes Flower starts: one per message)
    created = client.post("/v1/federations", headers=made.alice, json={
        "module": MODULE, "name": "nowcast", "rounds": 5, "strategy": "FedAvgOpt", "min_fit_clients": 4,
        "min_evaluate_clients": 0, "fraction_evaluate": 0.0, "min_available_clients": 4, "round_timeout_s": 300,
        "divergence": {"threshold": 3.0, "revoke": True}, "training": {"local_epochs": 5, "seed": 7}})
    assert created.status_code == 201, created.text
    names = ["quadrant-0", "quadrant-1", "quadrant-2", "quadrant-3", "poisoned", "intruder"]
    handed = {}
    for name in names:
        answer = client.post("/v1/federations/nowcast/clients", json={"name": name}, headers=made.alice)
        assert answer.status_code == 201, answer.text
        handed[name] = answer.json()
    assert client.delete("/v1/federations/nowcast/clients/intruder", headers=made.alice).status_code == 200
    wait_for(lambda: (tick(made), client.get("/v1/federations/nowcast", headers=made.alice).json()["connection"]
                      ["superlink"])[1], 60, "the SuperLink to run")
    wait_for(lambda: (tick(made), all(c.node_id for c in made.federations.get("nowcast").clients
                                      if c.status == "admitted"))[1], 60, "the keys to be registered")
    connection = client.get("/v1/federations/nowcast", headers=made.alice).json()["connection"]
    configs = {f"quadrant-{i}": f"partition-id={i} num-partitions=4" for i in range(4)}
    configs["poisoned"] = "partition-id=0 num-partitions=4 poison-scale=10.0"
    configs["intruder"] = "partition-id=1 num-partitions=4"
    nodes = {name: SuperNode(flower_bin, tmp_path / name, {**handed[name], **connection}, configs[name])
             for name in names}
    try:
        def finished() -> bool:
            tick(made)
            return made.federations.get("nowcast").status in ("completed", "failed", "stopped")
        wait_for(finished, 900, "the federation to finish")
        federation = made.federations.get("nowcast")
        assert federation.status == "completed", (federation.detail, (tmp_path / "poisoned" / "supernode.log").read_text()[-3000:])
        by_name = {c.name: c for c in federation.clients}
        honest = sorted(by_name[f"quadrant-{i}"].node_id for i in range(4))

        rounds = client.get("/v1/federations/nowcast/rounds", headers=made.alice).json()["rounds"]
        assert [r["round"] for r in rounds] == [1, 2, 3, 4, 5]
        poisoned = by_name["poisoned"].node_id
        updates = [sorted(u["node_id"] for u in r["updates"]) for r in rounds]
        assert all(len(nodes_of_round) >= 4 for nodes_of_round in updates)
        # the poisoned client is flagged in the first round it took part in (round 1, or 2 when it
        # connected after round 1 had sampled the four quadrants), revoked, and never sampled again
        first = next(i for i, nodes_of_round in enumerate(updates) if poisoned in nodes_of_round)
        assert first <= 1 and rounds[first]["divergence"]["flagged_nodes"] == [poisoned]
        for later in range(first + 1, 5):
            assert updates[later] == honest and rounds[later]["divergence"]["flagged_nodes"] == [], later + 1
        assert by_name["poisoned"].status == "revoked" and f"divergent in round {first + 1}" in by_name["poisoned"].reason
        # each round used the model the one before made
        assert all(r["previous_model"]["sha256"] == p["model"]["sha256"] for p, r in zip(rounds, rounds[1:]))
        assert rounds[-1]["server_metrics"]["mse"] < rounds[0]["server_metrics"]["mse"]

        # the revoked keys are refused by the SuperLink itself: the intruder never got in, and the
        # poisoned client's SuperNode was turned away at its next request and shut down
        # (gracefully: exit 0), while the honest ones run on
        assert nodes["intruder"].process.wait(60) != 0 and by_name["intruder"].node_id is None  # never registered
        assert "Failed to activate SuperNode" in nodes["intruder"].log.read_text()
        assert all(nodes[f"quadrant-{i}"].process.poll() is None for i in range(4))
        nodes["poisoned"].process.wait(60)
        assert "SuperNode terminated gracefully" in nodes["poisoned"].log.read_text()

        # the rounds are provenance in the graph: SPARQL and GraphQL
        models = list(made.platform.graph.query(
            "PREFIX ai4kg: <https://w3id.org/ai4kg/ns#> PREFIX prov: <http://www.w3.org/ns/prov#> "
            "SELECT ?n ?model ?used WHERE { GRAPH ?g { ?round ai4kg:roundNumber ?n ; ai4kg:produced ?model ; "
            "prov:used ?used . FILTER NOT EXISTS { ?used a ai4kg:ClientUpdate } } } ORDER BY ?n"))
        produced = [r["model"].value for r in models]
        used = [r["used"].value for r in models]
        assert len(produced) == 5 and used[1:] == produced[:-1]
        seen = client.post("/graphql", headers=made.carol, json={"query": (
            '{ federatedSession(identifier: "nowcast") { strategy numRounds status '
            'rounds { number model updates { divergent } metrics { name scope value } } } }')}).json()
        session = seen["data"]["federatedSession"]
        assert session["strategy"] == "FedAvgOpt" and session["numRounds"] == 5 and session["status"] == "completed"
        assert [r["number"] for r in session["rounds"]] == [1, 2, 3, 4, 5]
        assert [u["divergent"] for u in session["rounds"][first]["updates"]].count(True) == 1
        scopes = {(m["name"], m["scope"]) for m in session["rounds"][4]["metrics"]}
        assert ("mse", "server") in scopes and any(scope == "training" for _, scope in scopes)
        assert made.platform.deployments.get("nowcast-server").status == "stopped"
        assert (made.federations.root / "nowcast" / "model.npz").exists()
    finally:
        for node in nodes.values():
            node.stop()


# -- on Nomad: Flower's SuperLink image, the secrets as a Nomad Variable ----------------------------------
def test_a_federation_server_on_nomad_gets_its_secrets_from_a_variable_not_its_job(tmp_path: Path,
                                                                                  flower_bin: Path) -> None:
    from ai4kg.adapters.nomad import NomadExecutor, NomadWorkloads
    from ai4kg.federated.service import Federations
    from nomad_api import NomadApi

    with NomadApi() as api:
        api.add_node("dc1")
        executor = NomadExecutor(NomadWorkloads(api.address, timeout=5), ["dc1"], capacity_ttl_s=0)
        platform = Platform(tmp_path, executor=executor)
        federations = Federations(platform.graph, platform.deployments, flower_bin.parent)
        try:
            federation, _ = federations.create({"module": MODULE, "name": "onnomad"}, Requester("alice", frozenset({"default"})))
            job = api.jobs[("default", "onnomad-server")]
            [main] = [t for t in job["TaskGroups"][0]["Tasks"] if t["Name"] == "main"]
            assert main["Config"]["image"] == "flwr/superlink:1.42.0" and main["Config"]["command"] == "flower-superlink"
            arguments = main["Config"]["args"]
            assert arguments[arguments.index("--port") + 1] == "${NOMAD_PORT_superlink}"
            assert "--enable-supernode-auth" in arguments and "--ssl-keyfile" in arguments
            assert job["Meta"]["ai4kg.kind"] == "federated"
            secrets = api.variables[("default", "nomad/jobs/onnomad-server")]["Items"]
            assert set(secrets) == {"ca_pem", "server_pem", "server_key", "superlink_env"}
            token = secrets["superlink_env"].split("=", 1)[1].strip()
            assert federations.authorised("onnomad", token) is not None
            templates = {t["DestPath"]: t for t in main["Templates"]}
            assert set(templates) == {"secrets/ca.pem", "secrets/server.pem", "secrets/server.key",
                                      "secrets/superlink.env"} and templates["secrets/superlink.env"]["Envvars"]
            # the job (which anyone reading the namespace sees) and the graph hold neither the key nor the token
            everything = json.dumps(job) + "".join(str(q) for q in platform.graph.asset_quads(
                "https://w3id.org/ai4kg/id/deployment/onnomad-server"))
            assert token not in everything and "PRIVATE KEY" not in everything
            deployment = platform.deployments.get("onnomad-server")
            assert deployment.image == "flwr/superlink:1.42.0"
            federations.delete("onnomad", Requester("alice", frozenset({"default"})))
            assert ("default", "nomad/jobs/onnomad-server") not in api.variables
            assert api.jobs[("default", "onnomad-server")]["Stop"] is True
        finally:
            federations.close()
            platform.close()


def test_the_federation_command_speaks_to_the_server(served: tuple[Served, str], tmp_path: Path) -> None:
    from click.testing import CliRunner

    from ai4kg.cli import main

    made, url = served
    token = made.alice["Authorization"].split(" ", 1)[1]
    runner = CliRunner(env={"AI4KG_TOKEN": token})

    def run(*arguments: str) -> Any:
        return runner.invoke(main, ["federation", "--server", url, *arguments])

    created = run("create", MODULE, "--name", "bycli", "--strategy", "FedProx", "--rounds", "2", "--json")
    assert created.exit_code == 0, created.output
    assert json.loads(created.output)["settings"]["strategy_options"] == {"proximal_mu": 0.1}
    refused = run("create", MODULE, "--min-fit-clients", "3", "--min-available-clients", "2")
    assert refused.exit_code == 1 and "min_fit_clients" in refused.output
    added = run("client", "add", "bycli", "site-a", "--out", str(tmp_path / "site-a"))
    assert added.exit_code == 0, added.output
    key = tmp_path / "site-a" / "client.key"
    assert key.read_text().startswith("-----BEGIN OPENSSH PRIVATE KEY-----") and oct(key.stat().st_mode)[-3:] == "600"
    shown = run("show", "bycli")
    assert shown.exit_code == 0 and "site-a" in shown.output and "admitted" in shown.output
    assert run("client", "revoke", "bycli", "site-a").output.strip() == "site-a: revoked"
    assert run("rounds", "bycli", "--json").output.strip() == "[]"
    assert run("stop", "bycli").output.strip() == "bycli: stopped"
    unreachable = runner.invoke(main, ["federation", "--server", "http://127.0.0.1:9", "list"])
    assert unreachable.exit_code == 2
