"""A federation as the platform keeps it: the request checked, its clients, its rounds, and their
RML records.

    request (JSON) -> check_request (mappings/federated/federation.schema.json + the rules a schema
    cannot say) -> Federation (defaults filled in) -> run_config (what the Flower App reads)
    round record (posted by the ServerApp) -> check_round (mappings/federated/round.schema.json)
    Federation, clients, rounds -> to_records -> RML (mappings/federated/federated.rml.ttl) -> quads

The session (with its clients) is one asset graph, each round another: a round is written once,
when it ends, and never rewritten.
"""

from __future__ import annotations

import json
import statistics
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from typing import TYPE_CHECKING, Any

import pyoxigraph as ox

from ..graph.namespaces import asset_iri
from ..metadata.issues import Issue
from ..metadata.schema import schema_issues, validator_of
from ..metadata.values import with_value_issues
from ..provenance.records import Iris
from ..workloads.records import now, record_json, record_of

if TYPE_CHECKING:
    from ..metadata.rml import RmlMapping

STRATEGIES = ("FedAvg", "FedAvgM", "FedMedian", "FedProx", "FedOpt", "FedAdam", "FedYogi", "FedAvgOpt")
STRATEGY_OPTIONS = {
    "proximal_mu": ("FedProx",),
    "server_learning_rate": ("FedAvgM",), "server_momentum": ("FedAvgM",),
    "eta": ("FedOpt", "FedAdam", "FedYogi"), "beta_1": ("FedOpt", "FedAdam", "FedYogi"),
    "eta_l": ("FedAdam", "FedYogi"), "tau": ("FedAdam", "FedYogi"), "beta_2": ("FedAdam", "FedYogi"),
}
"""Each strategy setting and the strategies that have it (another strategy would ignore it silently)."""
OPTION_DEFAULTS = {"proximal_mu": 0.1, "server_learning_rate": 1.0, "server_momentum": 0.9, "eta": 0.1,
                   "eta_l": 0.1, "tau": 0.001, "beta_1": 0.9, "beta_2": 0.99}
STATUSES = ("waiting", "running", "completed", "failed", "stopped")
"""waiting: the server is starting or its run waits for clients; then running until the run ends."""
FINAL = ("completed", "failed", "stopped")
VISIBILITY = "private"
"""Federations are seen by their owner, their VO's members and administrators."""


def _schema(name: str) -> Any:
    return json.loads(resources.files("ai4kg").joinpath(f"mappings/federated/{name}.schema.json").read_text("utf-8"))


@cache
def request_validator() -> Any:
    return validator_of(_schema("federation"))


@cache
def round_validator() -> Any:
    return validator_of(_schema("round"))


def defaults() -> dict[str, Any]:
    """The request's defaults, read from its schema (one place says them)."""
    properties = _schema("federation")["properties"]
    found = {k: v["default"] for k, v in properties.items() if "default" in v}
    for group in ("privacy", "divergence", "training"):
        found[group] = {k: v["default"] for k, v in properties[group]["properties"].items() if "default" in v}
    return found


def check_request(body: Any) -> list[Issue]:
    """Every problem of a federation request, each naming the field, the rule and the value."""
    if not isinstance(body, dict):
        return [Issue("", "type", "a federation request is a JSON object", body)]
    issues = with_value_issues([Issue(i.field, i.rule, i.message, i.value)  # unknown keys too: all are errors here
                                for i in schema_issues(request_validator(), body, "a federation request")], body)
    if issues:
        return issues
    settings = settings_of(body)
    strategy = settings["strategy"]
    for option, value in body.get("strategy_options", {}).items():
        if strategy not in STRATEGY_OPTIONS[option]:
            issues.append(Issue(f"strategy_options.{option}", "strategy",
                                f"{strategy} has no such setting (only {', '.join(STRATEGY_OPTIONS[option])})", value))
    for name in ("min_fit_clients", "min_evaluate_clients"):
        if settings[name] > settings["min_available_clients"]:
            issues.append(Issue(name, "min-available",
                                f"cannot exceed min_available_clients ({settings['min_available_clients']})",
                                settings[name]))
    privacy = settings["privacy"]
    if privacy["metric_privacy"] and not privacy["differential_privacy"]:
        issues.append(Issue("privacy.metric_privacy", "differential-privacy",
                            "metric privacy scales the noise of differential privacy: set "
                            "privacy.differential_privacy to true as well", True))
    return issues


def settings_of(body: dict[str, Any]) -> dict[str, Any]:
    """The request with every default filled in (a checked request)."""
    base = defaults()
    settings = {**base, **{k: v for k, v in body.items() if k not in ("privacy", "divergence", "training")}}
    for group in ("privacy", "divergence", "training"):
        settings[group] = {**base[group], **body.get(group, {})}
    settings["strategy_options"] = {option: body.get("strategy_options", {}).get(option, OPTION_DEFAULTS[option])
                                    for option, strategies in STRATEGY_OPTIONS.items()
                                    if settings["strategy"] in strategies}
    return settings


@dataclass
class Client:
    """A client admitted to a federation: the key it signs with (by fingerprint) and its node id."""

    identifier: str
    name: str
    fingerprint: str
    public_key: str
    created_at: str
    created_by: str
    node_id: str | None = None
    """the SuperLink's id for the key, once registered there"""
    status: str = "admitted"
    """admitted, or revoked (for good: a revoked key is never admitted again)"""
    revoked_at: str | None = None
    reason: str | None = None


@dataclass
class Federation:
    identifier: str
    iri: str
    owner: str
    vo: str
    module: str
    module_iri: str
    settings: dict[str, Any]
    created_at: str
    title: str
    description: str = ""
    deployment: str | None = None
    """the identifier of the server's deployment"""
    run_id: str | None = None
    status: str = "waiting"
    detail: str = ""
    started_at: str | None = None
    ended_at: str | None = None
    clients: list[Client] = field(default_factory=list)
    rounds_done: int = 0

    def as_json(self) -> dict[str, Any]:
        return record_json(self, "clients")

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "Federation":
        return record_of(cls, data, "clients", Client)

    def client(self, identifier: str) -> Client | None:
        return next((c for c in self.clients if c.identifier == identifier), None)

    def admitted_nodes(self) -> list[str]:
        return sorted(c.node_id for c in self.clients if c.status == "admitted" and c.node_id)


def new_federation(body: dict[str, Any], identifier: str, base_url: str, owner: str, vo: str,
                   module_iri: str) -> Federation:
    settings = settings_of(body)
    return Federation(identifier=identifier, iri=asset_iri(base_url, "FederatedSession", identifier), owner=owner,
                      vo=vo, module=body["module"], module_iri=module_iri, settings=settings, created_at=now(),
                      title=body.get("title") or f"{body['module']} (federated, {settings['strategy']})",
                      description=body.get("description", ""))


def run_config(federation: Federation, platform_url: str, model_path: str) -> dict[str, Any]:
    """The run config the Flower App reads (federated/flower-app/ai4kg_flower/config.py), typed:
    booleans as booleans, numbers as numbers."""
    s = federation.settings
    options = {name.replace("_", "-"): float(value) for name, value in s["strategy_options"].items()}
    return {
        "federation": federation.identifier, "platform-url": platform_url, "recorder-token": "",
        "records-path": "", "model-path": model_path,
        "num-rounds": s["rounds"], "strategy": s["strategy"].lower(),
        "min-fit-clients": s["min_fit_clients"], "min-evaluate-clients": s["min_evaluate_clients"],
        "min-available-clients": s["min_available_clients"], "fraction-fit": float(s["fraction_fit"]),
        "fraction-evaluate": float(s["fraction_evaluate"]), "metric": s["metric"], **options,
        "dp": s["privacy"]["differential_privacy"], "metric-privacy": s["privacy"]["metric_privacy"],
        "dp-noise-multiplier": float(s["privacy"]["noise_multiplier"]),
        "dp-clipping-norm": float(s["privacy"]["clipping_norm"]), "seed": s["training"]["seed"],
        "local-epochs": s["training"]["local_epochs"], "learning-rate": float(s["training"]["learning_rate"]),
        "round-timeout": float(s["round_timeout_s"]),
    }


# -- rounds ------------------------------------------------------------------------------------------

def check_round(record: Any) -> list[Issue]:
    if not isinstance(record, dict):
        return [Issue("", "type", "a round record is a JSON object", record)]
    issues = with_value_issues([Issue(i.field, i.rule, i.message, i.value)
                                for i in schema_issues(round_validator(), record, "a round record")], record)
    if issues:
        return issues
    n = len(record["updates"])
    if len(record["distances"]) != n or any(len(row) != n for row in record["distances"]):
        issues.append(Issue("distances", "shape", f"must be a {n} x {n} matrix (one row and column per update)",
                            record["distances"]))
    if record["ended_at"] < record["started_at"]:
        issues.append(Issue("ended_at", "order", "a round cannot end before it starts", record["ended_at"]))
    return issues


def divergence_scores(distances: list[list[float]]) -> list[float]:
    """Each update's median distance to the others: one poisoned update is far from all the rest,
    which stay near each other, so its median is large and theirs are not."""
    scores = []
    for i, row in enumerate(distances):
        others = [d for j, d in enumerate(row) if j != i]
        scores.append(statistics.median(others) if others else 0.0)
    return scores


def flagged(scores: list[float], threshold: float) -> list[int]:
    """The updates whose score exceeds `threshold` times the median score. None with fewer than
    four updates: with two, each is as far from the other; with three, the median of an honest
    update's two distances is half its distance to the outlier, so no outlier stands out."""
    if len(scores) < 4:
        return []
    typical = statistics.median(scores)
    if typical <= 0:
        return [i for i, s in enumerate(scores) if s > 0]
    return [i for i, s in enumerate(scores) if s > threshold * typical]


def round_iri(base_url: str, federation: str, number: int) -> str:
    return asset_iri(base_url, "FederatedRound", f"{federation}-{number}")


def client_iri(base_url: str, federation: str, client: str) -> str:
    return Iris(base_url).agent(f"federation-{federation}-client-{client}")


def weights_iri(base_url: str, sha256: str) -> str:
    return Iris(base_url).entity("weights", f"sha256-{sha256}")


# -- RML records ---------------------------------------------------------------------------------------

def session_records(federation: Federation, base_url: str) -> dict[str, list[dict[str, Any]]]:
    iris = Iris(base_url)
    s = federation.settings
    session: dict[str, Any] = {
        "session@iri": federation.iri, "identifier": federation.identifier, "title": federation.title,
        "description": federation.description or None, "status": federation.status, "vo@iri": iris.vo(federation.vo),
        "visibility": VISIBILITY, "module@iri": federation.module_iri, "strategy": s["strategy"],
        "rounds": s["rounds"], "min_fit_clients": s["min_fit_clients"],
        "min_available_clients": s["min_available_clients"],
        "privacy.differential_privacy": _boolean(s["privacy"]["differential_privacy"]),
        "privacy.metric_privacy": _boolean(s["privacy"]["metric_privacy"]), "owner@iri": iris.person(federation.owner),
        "server@iri": asset_iri(base_url, "Deployment", federation.deployment) if federation.deployment else None,
        "run": federation.run_id, "started": federation.started_at, "ended": federation.ended_at,
    }
    return {
        "sessions": [{k: v for k, v in session.items() if v is not None}],
        "clients": [{k: v for k, v in {
            "client@iri": client_iri(base_url, federation.identifier, c.identifier), "session@iri": federation.iri,
            "identifier": f"{federation.identifier}.{c.identifier}", "name": c.name, "status": c.status,
            "fingerprint": c.fingerprint, "node": c.node_id, "owner@iri": iris.person(c.created_by),
            "vo@iri": iris.vo(federation.vo)}.items() if v is not None} for c in federation.clients],
    }


def round_records(federation: Federation, record: dict[str, Any], base_url: str,
                  scores: list[float], outliers: list[int]) -> dict[str, list[dict[str, Any]]]:
    iris = Iris(base_url)
    number = record["round"]
    iri = round_iri(base_url, federation.identifier, number)
    by_node = {c.node_id: c for c in federation.clients if c.node_id}
    model = record.get("model")
    produced = weights_iri(base_url, model["sha256"]) if model else None
    updates, evaluations = [], []
    for index, update in enumerate(record["updates"]):
        client = by_node.get(update["node_id"])
        updates.append({k: v for k, v in {
            "update@iri": f"{iri}#update-{update['node_id']}", "round@iri": iri, "produced@iri": produced,
            "client@iri": client_iri(base_url, federation.identifier, client.identifier) if client else None,
            "updates[*].num_examples": update["num_examples"], "updates[*].weight": update.get("weight"),
            "score": scores[index], "divergent": _boolean(index in outliers)}.items() if v is not None})
    for scope, key in (("server", "server_metrics"), ("client", "evaluate_metrics"), ("training", "train_metrics")):
        for name, value in sorted((record.get(key) or {}).items()):
            if value is None:  # not a finite number (the ServerApp sends null): nothing to state
                continue
            evaluations.append({"evaluation@iri": f"{iri}#{scope}-{name}", "round@iri": iri, "scope": scope,
                                "name": name, "value": float(value),
                                "measure@iri": f"{base_url}measure/{name}"})
    privacy = record.get("privacy") or {}
    round_record: dict[str, Any] = {
        "round@iri": iri, "identifier": f"{federation.identifier}-{number}", "session@iri": federation.iri,
        "round": number, "started_at": record["started_at"], "ended_at": record["ended_at"],
        "vo@iri": iris.vo(federation.vo), "visibility": VISIBILITY,
        "previous@iri": weights_iri(base_url, record["previous_model"]["sha256"]), "produced@iri": produced,
        "sigma": privacy.get("sigma"), "run": record["run_id"],
    }
    return {
        "rounds": [{k: v for k, v in round_record.items() if v is not None}],
        "updates": updates,
        "evaluations": evaluations,
        "models": [{"weights@iri": produced, "round@iri": iri, "sha256": model["sha256"],
                    "previous@iri": round_record["previous@iri"]}] if produced else [],
    }


@cache
def federated_mapping() -> RmlMapping:
    from ..metadata.rml import RmlMapping, mapping_path  # not at import: the command line's start stays light

    return RmlMapping(mapping_path("federated/federated"))


def to_quads(records: dict[str, list[dict[str, Any]]]) -> dict[str, list[ox.Quad]]:
    """The quads of the records, by graph (each subject map names its asset's graph)."""
    by_graph: dict[str, list[ox.Quad]] = {}
    for quad in federated_mapping().materialize(records):
        by_graph.setdefault(quad.graph_name.value, []).append(quad)  # type: ignore[union-attr]
    return by_graph


def _boolean(value: bool) -> str:
    """xsd:boolean's lexical form (the JSON reader would otherwise write Python's `True`)."""
    return "true" if value else "false"
