"""REST for federated learning (/v1/federations): sessions, their clients, their rounds.

Every route hands over to `federated/service.Federations` in a worker thread. A federation's
owner, the members of its VO and administrators read it; its owner and administrators change it
(clients, stop); anyone else gets 404, as if it did not exist.

Two routes are the federation's ServerApp's, not a person's: `GET .../admitted` (the nodes it may
sample) and `POST .../rounds` (a round's record). They take the federation's recorder token in
the `X-Recorder-Token` header (made with the federation, handed to its SuperLink only, kept as a
digest), not a user's credentials.
"""

from __future__ import annotations

from typing import Any

import anyio.to_thread
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from ..federated.records import Federation
from ..federated.service import FederationRejected, Federations
from ..workloads.service import DeploymentRejected
from .auth import identity_of
from .deployments import json_body, problem_of, requester_of
from .problems import Problem
from .publishing import writer

TOKEN_HEADER = "X-Recorder-Token"


def answer(federation: Federation, federations: Federations) -> dict[str, Any]:
    """A federation as the API shows it: its record (client keys by fingerprint only), and how
    clients connect."""
    data = federation.as_json()
    data["clients"] = [{k: v for k, v in c.items() if k != "public_key"} for c in data["clients"]]
    data["connection"] = federations.connection(federation)
    return data


def router(federations: Federations) -> APIRouter:
    routes = APIRouter(prefix="/v1/federations", tags=["federated learning"])

    @routes.post("", status_code=201, responses={
        200: {"description": "The same request (same `name`) was made before: nothing new was done"},
        201: {"description": "Created: the server is queued or starting"},
        409: {"description": "Another federation has that name"},
        503: {"description": "The Flower environment could not be built"}})
    async def create(request: Request) -> JSONResponse:
        """Start a federated-learning session of a module: its server (a Flower SuperLink) becomes a
        deployment, and once it runs the platform submits the run. The body follows
        mappings/federated/federation.schema.json (strategy, rounds, minimum clients, metric,
        privacy, divergence monitoring); errors name the field, the rule and the value, and
        nothing is written. Admit clients with POST /v1/federations/{id}/clients."""
        identity = writer(identity_of(request), "start a federation")
        document = await json_body(request, "a federation request")
        try:
            federation, created = await anyio.to_thread.run_sync(federations.create, document,
                                                                  requester_of(identity))
        except DeploymentRejected as exc:
            raise problem_of(exc) from None
        return JSONResponse(answer(federation, federations), status_code=201 if created else 200,
                            headers={"Location": f"/v1/federations/{federation.identifier}"})

    @routes.get("")
    async def listing(request: Request) -> dict[str, Any]:
        """Your federations and your VOs' (administrators: all), newest first."""
        identity = writer(identity_of(request), "list federations")
        found = await anyio.to_thread.run_sync(federations.find, requester_of(identity))
        return {"federations": [answer(f, federations) for f in found]}

    async def visible(request: Request, identifier: str) -> Federation:
        """The federation, if the signed-in reader may see it; else 404 (as if there were none)."""
        identity = writer(identity_of(request), "see federations")
        found = await anyio.to_thread.run_sync(federations.get, identifier, requester_of(identity))
        if found is None:
            raise Problem(404, "Not found", f"no federation {identifier!r}", "identifier", identifier)
        return found

    @routes.get("/{identifier}", responses={404: {"description": "No such federation (that you may see)"}})
    async def inspect(request: Request, identifier: str) -> dict[str, Any]:
        """One federation: its settings, status, clients (by key fingerprint) and connection."""
        return answer(await visible(request, identifier), federations)

    @routes.delete("/{identifier}", responses={403: {"description": "Not its owner"},
                                               404: {"description": "No such federation (that you may see)"}})
    async def stop(request: Request, identifier: str) -> dict[str, Any]:
        """Stop the run and the server. The session and its rounds stay in the graph (`stopped`)."""
        identity = writer(identity_of(request), "stop federations")
        try:
            found = await anyio.to_thread.run_sync(federations.delete, identifier, requester_of(identity))
        except DeploymentRejected as exc:
            raise problem_of(exc) from None
        return answer(found, federations)

    @routes.post("/{identifier}/clients", status_code=201, responses={
        403: {"description": "Not the federation's owner"}, 409: {"description": "A client of that name exists"}})
    async def add_client(request: Request, identifier: str) -> JSONResponse:
        """Admit a client (body: {"name": ...}). The answer holds its private key, once: the
        platform keeps only the public key's fingerprint. The client runs a Flower SuperNode with
        that key (`flower-supernode --auth-supernode-private-key`), the CA and the address given."""
        identity = writer(identity_of(request), "admit clients")
        document = await json_body(request, "a client request")
        if not isinstance(document, dict) or set(document) - {"name"}:
            raise Problem(422, "Invalid client", "a client request is {\"name\": ...}", "body", document)
        try:
            federation, client, private_key = await anyio.to_thread.run_sync(
                federations.add_client, identifier, document.get("name"), requester_of(identity))
        except DeploymentRejected as exc:
            raise problem_of(exc) from None
        connection = federations.connection(federation)
        return JSONResponse({
            "name": client.name, "fingerprint": client.fingerprint, "node_id": client.node_id, "status": client.status,
            "private_key": private_key, **connection,
            "command": ["flower-supernode", "--superlink", connection["superlink"] or "<the federation's address>",
                        "--root-certificates", "ca.pem", "--auth-supernode-private-key", "client.key",
                        "--node-config", "partition-id=0 num-partitions=1"]},
            status_code=201, headers={"Location": f"/v1/federations/{identifier}/clients/{client.name}",
                                      "Cache-Control": "no-store"})

    @routes.delete("/{identifier}/clients/{name}", responses={
        403: {"description": "Not the federation's owner"}, 404: {"description": "No such client"}})
    async def revoke_client(request: Request, identifier: str, name: str) -> dict[str, Any]:
        """Revoke a client: refused from its next request and never sampled again. Its key cannot
        be admitted again (admit the site anew under another name, with a new key)."""
        identity = writer(identity_of(request), "revoke clients")
        try:
            client = await anyio.to_thread.run_sync(federations.revoke_client, identifier, name,
                                                    requester_of(identity))
        except DeploymentRejected as exc:
            raise problem_of(exc) from None
        return {k: v for k, v in client.__dict__.items() if k != "public_key"}

    @routes.get("/{identifier}/rounds", responses={404: {"description": "No such federation (that you may see)"}})
    async def rounds(request: Request, identifier: str) -> dict[str, Any]:
        """Every round recorded: as the ServerApp posted it, with the divergence found."""
        found = await visible(request, identifier)
        return {"rounds": await anyio.to_thread.run_sync(federations.rounds, found)}

    # -- the ServerApp's routes (the recorder token, not a user) ----------------------------------------
    def recorder(request: Request, identifier: str) -> Federation:
        federation = federations.authorised(identifier, request.headers.get(TOKEN_HEADER))
        if federation is None:
            raise Problem(401, "Unauthorized", f"the federation's recorder token is needed in {TOKEN_HEADER}",
                          TOKEN_HEADER)
        return federation

    @routes.get("/{identifier}/admitted", responses={401: {"description": "Not the federation's recorder token"}})
    async def admitted(request: Request, identifier: str) -> dict[str, Any]:
        """The node ids the ServerApp may sample now (the clients admitted and not revoked)."""
        federation = recorder(request, identifier)
        return await anyio.to_thread.run_sync(federations.admitted, federation)

    @routes.post("/{identifier}/rounds", status_code=201, responses={
        200: {"description": "This very round was recorded before"},
        401: {"description": "Not the federation's recorder token"},
        409: {"description": "The round was recorded with other figures"}})
    async def record_round(request: Request, identifier: str) -> JSONResponse:
        """A round's record (mappings/federated/round.schema.json), written to the graph as the
        round's provenance. The answer: the nodes admitted from now on, and those flagged."""
        federation = recorder(request, identifier)
        document = await json_body(request, "a round record")
        try:
            reply, created = await anyio.to_thread.run_sync(federations.record_round, federation, document)
        except FederationRejected as exc:
            raise problem_of(exc) from None
        return JSONResponse(reply, status_code=201 if created else 200)

    return routes
