"""Federations: a federated-learning session, its server, its clients and its rounds.

    create  -> check the request -> TLS files and a recorder token in the federation's folder ->
               the server's deployment (kind `federated`: the SuperLink, run by the executor) ->
               the session's graph
    tick    -> (the control loop) once the SuperLink answers: register the admitted clients' keys,
               submit the Flower App as a run (`flwr run`); then follow the run until it ends, and
               stop the server
    clients -> a key pair per client: the private key handed over once, the public key registered
               with the SuperLink (only registered keys may connect: Flower checks every request's
               signature), the fingerprint in the graph; revoking unregisters it
    rounds  -> the ServerApp posts each round (with the recorder token): checked, divergence
               scored and flagged (a policy may revoke the client), written as the round's graph

The ServerApp asks, before each round, which nodes the platform admits (`admitted`), and samples
only those: a client revoked during a round is refused from the next one even before Flower
drops its connection, and a key registered behind the platform's back is never sampled.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import re
import secrets
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import pyoxigraph as ox

from ..adapters.flower import FlowerControl, FlowerError, make_tls, new_client_key, superlink_command
from ..graph.namespaces import AI4KG, RDF_TYPE, asset_iri
from ..graph.store import AssetWrite, KnowledgeGraph
from ..graph.validation import validate
from ..metadata.issues import Issue
from ..workloads.records import FINAL as DEPLOYMENT_FINAL
from ..workloads.records import now
from ..workloads.service import DeploymentRejected, Deployments, Requester
from . import environment
from .ledger import FederationLedger
from .superlink import TOKEN_VARIABLE
from .records import (FINAL, Client, Federation, check_request, check_round, client_iri, divergence_scores,
                      federated_mapping, flagged, new_federation, round_records, run_config, session_records,
                      to_quads)

log = logging.getLogger(__name__)

POLL_INTERVAL_S = 10.0
"""How often a running federation's run is looked up on its SuperLink (one `flwr list`, ~3 s)."""
CLIENT_NAME = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"
PLATFORM = Requester("platform", frozenset(), admin=True)
"""Who stops a federation's server when the federation ends."""


class FederationRejected(DeploymentRejected):
    """A federation request that cannot be done (the HTTP status, every issue)."""


class Federations:
    def __init__(self, graph: KnowledgeGraph, deployments: Deployments, flower_location: Path | None = None):
        self.graph, self.deployments = graph, deployments
        self.ledger = FederationLedger(graph.settings.data_dir)
        self._scratch = None
        if graph.settings.data_dir is not None:
            self.root = graph.settings.data_dir / "federated"
        else:  # an in-memory graph: the federations' files go with the service
            self._scratch = tempfile.TemporaryDirectory(prefix="ai4kg-federated-")
            self.root = Path(self._scratch.name)
        self.flower_location = flower_location
        self.platform_url = "http://127.0.0.1:8000"
        """Where a ServerApp reaches this platform's API (`serve` sets it to where it listens)."""
        self.listen_host = getattr(deployments.executor, "host", "127.0.0.1")
        self.hosts = list(graph.settings.federation_hosts)
        """the names clients reach SuperLinks by (their certificates name them), beyond loopback"""
        self._lock = threading.RLock()
        self._polled: dict[str, float] = {}
        self.recover()

    def close(self) -> None:
        self.ledger.close()

    def flower_bin(self) -> Path:
        try:
            return environment.ensure(self.flower_location)
        except environment.FlowerUnavailable as exc:
            raise FederationRejected(503, "Flower unavailable", [Issue("", "flower", str(exc), None)]) from exc

    # -- the write path ------------------------------------------------------------------------------
    def recover(self) -> None:
        """Write to the graph what a crash left saved in the ledger but not in the graph."""
        federations, rounds = self.ledger.unmapped()
        for federation in federations:
            self._write_session(federation, saved=True)
        for identifier, record, divergence in rounds:
            federation = self.ledger.get(identifier)
            if federation is not None:
                self._write_round(federation, record, divergence, saved=True)

    def _session_quads(self, federation: Federation) -> list[ox.Quad]:
        base = self.graph.settings.base_url
        records = session_records(federation, base)
        quads = to_quads(records).get(federation.iri, [])
        ours = [federation.iri] + [client_iri(base, federation.identifier, c.identifier) for c in federation.clients]
        self._check(quads, ours, records, [(federation.module_iri, "Module")] + (
            [(asset_iri(base, "Deployment", federation.deployment), "FederatedServerDeployment")]
            if federation.deployment else []), federation)
        return quads

    def _write_session(self, federation: Federation, token_digest: str | None = None, saved: bool = False) -> None:
        quads = self._session_quads(federation)
        if not saved:
            self.ledger.save(federation, token_digest)
        self.graph.write([AssetWrite(federation.iri, quads)])
        self.ledger.mapped(federation.identifier)

    def _write_round(self, federation: Federation, record: dict[str, Any], divergence: dict[str, Any],
                     saved: bool = False) -> None:
        base = self.graph.settings.base_url
        records = round_records(federation, record, base, divergence["scores"], divergence["flagged"])
        by_graph = to_quads(records)
        iri = records["rounds"][0]["round@iri"]
        quads = by_graph.get(iri, [])
        context = [(federation.iri, "FederatedSession")] + [
            (client_iri(base, federation.identifier, c.identifier), "FederatedClient") for c in federation.clients]
        self._check(quads, [iri], records, context, federation)
        if not saved:
            self.ledger.save_round(federation.identifier, record, divergence, now())
        self.graph.write([AssetWrite(iri, quads)])
        self.ledger.mapped(federation.identifier, record["round"])

    def _check(self, quads: list[ox.Quad], ours: list[str], records: dict[str, Any],
               typed: list[tuple[str, str]], federation: Federation) -> None:
        scratch = ox.NamedNode("urn:ai4kg:validation-context")
        base = self.graph.settings.base_url
        typed = typed + [(asset_iri(base, "VirtualOrganisation", federation.vo), "VirtualOrganisation")]
        context = [ox.Quad(ox.NamedNode(node), ox.NamedNode(RDF_TYPE), ox.NamedNode(AI4KG + kind), scratch)
                   for node, kind in typed]
        violations = [v for v in validate(quads + context) if v.severity == "violation"
                      and any(v.focus == iri or v.focus.startswith(iri + "#") for iri in ours)]
        if violations:
            issues = []
            for v in violations:
                found = federated_mapping().field_of(records, v.focus, v.path or "") if v.path else None
                name = found[0] if found else (v.path or v.focus)
                issues.append(Issue(name.removesuffix("@iri"), v.rule, v.message,
                                    found[1].get(found[0]) if found else v.value))
            raise FederationRejected(422, "Invalid federation", issues)

    # -- requests --------------------------------------------------------------------------------------
    def create(self, body: Any, requester: Requester) -> tuple[Federation, bool]:
        """Create the session and queue its server: the record, and False when the same request with
        the same `name` was made before (nothing new is done)."""
        issues = check_request(body)
        if issues:
            raise FederationRejected(422, "Invalid federation request", issues)
        module_iri, _, module_vo = self.deployments.module_of(body["module"], requester)
        vo = self.deployments.vo_of(body, requester, module_vo)
        with self._lock:
            name = body.get("name")
            if name and (existing := self.ledger.get(name)) is not None:
                if existing.owner == requester.subject and existing.module == body["module"]:
                    return existing, False
                raise FederationRejected(409, "Name taken", [Issue(
                    "name", "unique", "a federation of that name exists; choose another name", name)])
            identifier = name or f"f-{uuid.uuid4().hex[:16]}"
            bin_directory = self.flower_bin()
            federation = new_federation(body, identifier, self.graph.settings.base_url, requester.subject, vo,
                                        module_iri)
            self._session_quads(federation)  # the session must be valid before its server starts
            state = self.root / identifier
            token = self._prepare(state, bin_directory)
            server = {"name": f"{identifier}-server", "kind": "federated", "module": body["module"], "vo": vo,
                      "title": f"Server of {federation.title}"[:200], "command": self._server_command(state),
                      **{k: body[k] for k in ("resources", "datacenter") if k in body}}
            deployment, _ = self.deployments.create(server, requester, federation=True,
                                                    secrets_from=str(state / "secrets"))
            federation.deployment = deployment.identifier
            self._write_session(federation, token_digest=_digest(token))
        return federation, True

    def _prepare(self, state: Path, bin_directory: Path) -> str:
        """The federation's folder: the SuperLink's settings; secrets/ (0700): its TLS files and
        superlink.env, the recorder token its ServerApp posts rounds with."""
        make_tls(state / "secrets", [*self.hosts, "127.0.0.1", "localhost"])
        (state / "secrets").chmod(0o700)
        (state / "superlink.json").write_text(json.dumps({"bin": str(bin_directory), "host": self.listen_host}),
                                              "utf-8")
        token = secrets.token_urlsafe(32)
        env_file = state / "secrets" / "superlink.env"
        env_file.touch(mode=0o600)
        env_file.write_text(f"{TOKEN_VARIABLE}={token}\n", "utf-8")
        return token

    def _server_command(self, state: Path) -> list[str]:
        """What the server deployment runs: on the local executor, the launcher (which reads the
        folder); on Nomad, Flower's SuperLink image with the secrets Nomad renders into the task's
        secrets directory, its state in the allocation's data directory."""
        if self.deployments.executor.name == "local":
            return [sys.executable, "-m", "ai4kg.federated.superlink", str(state)]
        return superlink_command("flower-superlink", "${NOMAD_SECRETS_DIR}", "0.0.0.0", "${NOMAD_PORT_superlink}",
                                 "${NOMAD_ALLOC_DIR}/data/superlink.db", install_dependencies=True)

    def get(self, identifier: str, requester: Requester | None = None) -> Federation | None:
        federation = self.ledger.get(identifier)
        if federation is None or (requester is not None and not _may_read(requester, federation)):
            return None
        return federation

    def find(self, requester: Requester) -> list[Federation]:
        if requester.admin:
            return self.ledger.find()
        return self.ledger.find(owner=requester.subject, vos=requester.vos)

    def _changeable(self, identifier: str, requester: Requester) -> Federation:
        federation = self.get(identifier, requester)
        if federation is None:
            raise FederationRejected(404, "Not found", [Issue("identifier", "exists", "no such federation", identifier)])
        if not (requester.admin or federation.owner == requester.subject):
            raise FederationRejected(403, "Forbidden", [Issue(
                "identifier", "owner", "only the federation's owner or an administrator may change it", identifier)])
        return federation

    def delete(self, identifier: str, requester: Requester) -> Federation:
        """Stop the run and the server; the session stays in the graph, `stopped`."""
        with self._lock:
            federation = self._changeable(identifier, requester)
            if federation.status in FINAL:
                return federation
            control = self._control(federation)
            if control is not None and federation.run_id:
                try:
                    control.stop(federation.run_id)
                except FlowerError as exc:
                    log.warning("stopping run %s of %s: %s", federation.run_id, identifier, exc)
            self._end(federation, "stopped", "stopped by its owner")
            return federation

    def _end(self, federation: Federation, status: str, detail: str) -> None:
        federation.status, federation.detail = status, detail
        federation.ended_at = now()
        if federation.started_at is None:
            federation.started_at = federation.ended_at
        self._write_session(federation)
        if federation.deployment:
            self.deployments.delete(federation.deployment, PLATFORM, reason=f"its federation ended ({status})")

    # -- clients --------------------------------------------------------------------------------------
    def add_client(self, identifier: str, name: Any, requester: Requester) -> tuple[Federation, Client, str]:
        """Admit a client: its record, and its private key (shown once, kept nowhere)."""
        if not isinstance(name, str) or not re.match(CLIENT_NAME, name):
            raise FederationRejected(422, "Invalid client", [Issue(
                "name", "pattern", "a client's name is 1-64 letters, digits, '.', '_' or '-'", name)])
        with self._lock:
            federation = self._changeable(identifier, requester)
            if federation.status in FINAL:
                raise FederationRejected(409, "Federation ended", [Issue(
                    "identifier", "status", f"the federation has ended ({federation.status})", identifier)])
            if federation.client(name) is not None:
                raise FederationRejected(409, "Name taken", [Issue(
                    "name", "unique", "the federation has a client of that name", name)])
            key = new_client_key(f"{identifier}/{name}")
            client = Client(identifier=name, name=name, fingerprint=key.fingerprint, public_key=key.public_key,
                            created_at=now(), created_by=requester.subject)
            control = self._control(federation)
            if control is not None:  # the SuperLink runs: admit the key now (else when it starts)
                try:
                    client.node_id = self._register(control, client)
                except FlowerError as exc:  # the control loop registers it at its next round
                    log.warning("registering %s of %s: %s", name, identifier, exc)
            federation.clients.append(client)
            self._write_session(federation)
            return federation, client, key.private_key

    def revoke_client(self, identifier: str, name: str, requester: Requester | None,
                      reason: str = "revoked by the federation's owner") -> Client:
        """Refuse the client from now on: its key is unregistered from the SuperLink (Flower refuses
        its next request) and it is no longer among the nodes the ServerApp may sample."""
        with self._lock:
            federation = (self._changeable(identifier, requester) if requester is not None
                          else self.ledger.get(identifier))
            client = federation.client(name) if federation else None
            if federation is None or client is None:
                raise FederationRejected(404, "Not found", [Issue("client", "exists", "no such client", name)])
            if client.status == "revoked":
                return client
            client.status, client.revoked_at, client.reason = "revoked", now(), reason
            control = self._control(federation)
            if control is not None and client.node_id:
                try:
                    control.unregister(client.node_id)
                except FlowerError as exc:  # the ServerApp still excludes it: it samples admitted nodes only
                    log.warning("unregistering %s of %s: %s", name, identifier, exc)
            self._write_session(federation)
            return client

    def connection(self, federation: Federation) -> dict[str, Any]:
        """What a client needs to connect: the SuperLink's address and its CA. The address is given
        once the run is submitted, which the control loop does right after registering the keys
        admitted so far: a SuperNode that connects before its key is registered is refused, and
        exits. (A client admitted later is registered before its admission is answered.)"""
        state = self.root / federation.identifier
        ca = (state / "secrets" / "ca.pem").read_text("utf-8") if (state / "secrets" / "ca.pem").exists() else None
        ready = federation.run_id is not None and federation.status not in FINAL
        return {"superlink": self._address(federation) if ready else None, "root_certificates": ca}

    # -- rounds ---------------------------------------------------------------------------------------
    def authorised(self, identifier: str, token: str | None) -> Federation | None:
        """The federation, if `token` is its recorder token (the ServerApp's)."""
        digest = self.ledger.token_digest(identifier)
        if digest is None or not token or not hmac.compare_digest(digest, _digest(token)):
            return None
        return self.ledger.get(identifier)

    def admitted(self, federation: Federation) -> dict[str, Any]:
        current = self.ledger.get(federation.identifier) or federation
        return {"admitted_nodes": current.admitted_nodes(),
                "revoked_nodes": sorted(c.node_id for c in current.clients if c.status == "revoked" and c.node_id)}

    def record_round(self, federation: Federation, record: Any) -> tuple[dict[str, Any], bool]:
        """Take a round the ServerApp posted: the answer (the nodes admitted from now on), and False
        when the very same round was recorded before."""
        issues = check_round(record)
        if not issues and record["federation"] != federation.identifier:
            issues = [Issue("federation", "match", "the round names another federation", record["federation"])]
        if issues:
            raise FederationRejected(422, "Invalid round record", issues)
        with self._lock:
            federation = self.ledger.get(federation.identifier) or federation
            known = self.ledger.round(federation.identifier, record["round"])
            if known is not None:
                if known[0] != record:
                    raise FederationRejected(409, "Round recorded", [Issue(
                        "round", "unique", "this round was recorded with other figures", record["round"])])
                return {**self.admitted(federation), "flagged_nodes": known[1]["flagged_nodes"]}, False
            threshold = federation.settings["divergence"]["threshold"]
            scores = divergence_scores(record["distances"])
            outliers = flagged(scores, threshold)
            flagged_nodes = [record["updates"][i]["node_id"] for i in outliers]
            divergence = {"scores": scores, "flagged": outliers, "flagged_nodes": flagged_nodes, "threshold": threshold}
            self._write_round(federation, record, divergence)
            federation.rounds_done = max(federation.rounds_done, record["round"])
            if federation.status == "waiting":
                federation.status = "running"
            self._write_session(federation)
            if federation.settings["divergence"]["revoke"]:
                by_node = {c.node_id: c for c in federation.clients}
                for node, index in zip(flagged_nodes, outliers):
                    client = by_node.get(node)
                    if client is not None and client.status == "admitted":
                        self.revoke_client(federation.identifier, client.identifier, None, reason=(
                            f"divergent in round {record['round']}: median distance {scores[index]:.4g}, "
                            f"over {threshold:g} times the round's median"))
            return {**self.admitted(federation), "flagged_nodes": flagged_nodes}, True

    def rounds(self, federation: Federation) -> list[dict[str, Any]]:
        return [{**record, "divergence": divergence, "received_at": received}
                for record, divergence, received in self.ledger.rounds(federation.identifier)]

    # -- the control loop -------------------------------------------------------------------------------
    def tick(self) -> None:
        for federation in self.ledger.active():
            try:
                self._advance(federation)
            except (FlowerError, FederationRejected, OSError) as exc:
                log.warning("federation %s: %s", federation.identifier, exc)

    def _advance(self, federation: Federation) -> None:
        with self._lock:
            federation = self.ledger.get(federation.identifier) or federation
            if federation.status in FINAL:
                return
            server = self.deployments.get(federation.deployment) if federation.deployment else None
            if server is None:
                return
            if server.status in DEPLOYMENT_FINAL:
                reason = server.history[-1].reason if server.history else server.status
                self._end(federation, "failed", f"its server ended ({server.status}: {reason})")
                return
            control = self._control(federation)
            if control is None:
                return
            pending = [c for c in federation.clients if c.status == "admitted" and not c.node_id]
            for client in pending:
                client.node_id = self._register(control, client)
            if federation.run_id is None:
                state = self.root / federation.identifier
                federation.run_id = control.submit(environment.app_directory(), run_config(
                    federation, self.platform_url, str(state / "model.npz")))
                federation.started_at = now()
                self._write_session(federation)
                return
            if pending:
                self._write_session(federation)
            if time.monotonic() - self._polled.get(federation.identifier, 0.0) < POLL_INTERVAL_S:
                return
            self._polled[federation.identifier] = time.monotonic()
            status = str(control.run(federation.run_id).get("status", ""))
            if status.startswith("finished:"):
                outcome = status.split(":", 1)[1]
                self._end(federation, {"completed": "completed", "stopped": "stopped"}.get(outcome, "failed"),
                          f"the Flower run {federation.run_id} finished: {outcome}")

    def _register(self, control: FlowerControl, client: Client) -> str:
        return control.register(client.public_key, client.name)

    def _address(self, federation: Federation) -> str | None:
        server = self.deployments.get(federation.deployment) if federation.deployment else None
        url = server.urls.get("superlink") if server is not None and server.status == "running" else None
        return url.split("://", 1)[-1].rstrip("/") if url else None

    def _control(self, federation: Federation) -> FlowerControl | None:
        """The CLI against the federation's SuperLink, or None while it does not run."""
        address = self._address(federation)
        if address is None:
            return None
        state = self.root / federation.identifier
        return FlowerControl(self.flower_bin(), state / "cli", address, state / "secrets" / "ca.pem")


def _may_read(requester: Requester, federation: Federation) -> bool:
    return requester.admin or federation.owner == requester.subject or federation.vo in requester.vos


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()
