"""OIDC bearer tokens (verified against a JWKS served on loopback, as Keycloak publishes it),
API keys, and anonymous reads: each sees exactly the assets its VOs allow, through every API."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import jwt
import pytest
from click.testing import CliRunner
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi.testclient import TestClient

from ai4kg.api.app import create_app
from ai4kg.catalog import ImportOptions, import_files
from ai4kg.cli import main
from ai4kg.config import Settings
from ai4kg.credentials import KeyStore
from ai4kg.graph.store import KnowledgeGraph

from conftest import MODULES

PRIVATE = "ai4os-demo-app"  # a module (ai4os-llm is in "AI4 tools")
AUDIENCE = "ai4kg"


class _Issuer:
    """A loopback OIDC issuer: discovery document and JWKS, per the OIDC Discovery spec."""

    def __init__(self) -> None:
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(self.key.public_key()))
        jwks = json.dumps({"keys": [{**jwk, "kid": "test-key", "use": "sig", "alg": "RS256"}]}).encode()
        issuer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                body = {"/realms/test/.well-known/openid-configuration":
                        json.dumps({"issuer": issuer.url, "jwks_uri": issuer.url + "/protocol/openid-connect/certs"}).encode(),
                        "/realms/test/protocol/openid-connect/certs": jwks}.get(self.path)
                self.send_response(200 if body else 404)
                self.send_header("content-type", "application/json")
                self.end_headers()
                self.wfile.write(body or b"{}")

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/realms/test"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def token(self, roles: list[str] = (), key=None, **claims: object) -> str:  # type: ignore[assignment]
        now = int(time.time())
        payload = {"iss": self.url, "sub": "user-1", "aud": AUDIENCE, "iat": now, "exp": now + 300,
                   "realm_access": {"roles": list(roles)}, **claims}
        return jwt.encode(payload, key or self.key, algorithm="RS256", headers={"kid": "test-key"})


@pytest.fixture(scope="module")
def issuer() -> _Issuer:
    server = _Issuer()
    yield server
    server.server.shutdown()


@pytest.fixture(scope="module")
def setup(issuer: _Issuer, store_url: str | None):  # type: ignore[no-untyped-def]
    settings = Settings(data_dir=None, oidc_issuer=issuer.url, oidc_audience=AUDIENCE, sparql_store_url=store_url)
    keys = KeyStore(None)
    with KnowledgeGraph(settings) as graph:
        import_files(graph, [MODULES / "ai4os-yolo-torch__ai4-metadata.yml"])
        import_files(graph, [MODULES / "ai4os-demo-app__ai4-metadata.yml"],
                     ImportOptions(vo="vo.secret.eu", visibility="virtual-organisation"))
        yield TestClient(create_app(graph, keys)), keys


def _sees_private(client: TestClient, authorization: str | None) -> bool:
    headers = {"authorization": authorization} if authorization else {}
    listed = PRIVATE in client.get("/v1/catalog/modules", headers=headers).json()
    metadata = client.get(f"/v1/catalog/modules/{PRIVATE}/metadata", headers=headers).status_code == 200
    sparql = client.get("/sparql", headers={**headers, "accept": "application/sparql-results+json"},
                        params={"query": "SELECT ?m WHERE { ?m a <https://w3id.org/ai4kg/ns#Module> }"}).json()
    in_sparql = any(b["m"]["value"].endswith("/" + PRIVATE) for b in sparql["results"]["bindings"])
    assert listed == metadata == in_sparql, (listed, metadata, in_sparql)  # every interface agrees
    return listed


def test_who_sees_a_vo_only_asset(issuer: _Issuer, setup) -> None:  # type: ignore[no-untyped-def]
    client, keys = setup
    assert not _sees_private(client, None)
    assert _sees_private(client, "Bearer " + issuer.token(["access:vo.secret.eu:member"]))
    assert not _sees_private(client, "Bearer " + issuer.token(["access:vo.other.eu:member"]))
    assert _sees_private(client, "Bearer " + issuer.token(["access:platform:admin"]))
    egi = issuer.token([], eduperson_entitlement=["urn:mace:egi.eu:group:vo.secret.eu:role=member#aai.egi.eu"])
    assert _sees_private(client, "Bearer " + egi)
    _, member_key = keys.create("ci", frozenset({"vo.secret.eu"}))
    _, other_key = keys.create("other", frozenset({"vo.other.eu"}))
    assert _sees_private(client, "Bearer " + member_key)
    assert not _sees_private(client, "Bearer " + other_key)


@pytest.mark.parametrize("make_header, says", [
    (lambda i: "Bearer " + i.token(["access:vo.secret.eu:member"], exp=int(time.time()) - 10), "expired"),
    (lambda i: "Bearer " + i.token(["access:vo.secret.eu:member"], iss="https://evil.example/realms/x"), "issuer"),
    (lambda i: "Bearer " + i.token(["access:vo.secret.eu:member"], aud="someone-else"), "audience"),
    (lambda i: "Bearer " + i.token(["access:vo.secret.eu:member"],
                                   key=rsa.generate_private_key(public_exponent=65537, key_size=2048)), "signature"),
    (lambda i: "Bearer not-a-token", "invalid token"),
    (lambda i: "Bearer ai4kg_0000_secret", "API key"),
    (lambda i: "Basic dXNlcjpwYXNz", "Bearer"),
])
def test_bad_credentials_get_401_never_anonymous_access(issuer: _Issuer, setup, make_header, says: str) -> None:  # type: ignore[no-untyped-def]
    client, _ = setup
    response = client.get("/v1/catalog/modules", headers={"authorization": make_header(issuer)})
    assert response.status_code == 401
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert says.lower() in response.json()["detail"].lower()


def test_revoked_api_key_stops_working(setup) -> None:  # type: ignore[no-untyped-def]
    client, keys = setup
    key, secret = keys.create("temporary", frozenset({"vo.secret.eu"}))
    assert client.get("/v1/catalog/modules", headers={"authorization": f"Bearer {secret}"}).status_code == 200
    assert keys.revoke(key.id) and not keys.revoke(key.id)
    assert client.get("/v1/catalog/modules", headers={"authorization": f"Bearer {secret}"}).status_code == 401


def test_apikey_commands_keep_only_a_digest(tmp_path: Path) -> None:
    runner = CliRunner()
    created = runner.invoke(main, ["--data", str(tmp_path), "apikey", "create", "--label", "ci", "--vo", "vo.x.eu"])
    assert created.exit_code == 0, created.output
    secret = created.stdout.strip()
    assert secret.startswith("ai4kg_")
    assert secret.split("_", 2)[2].encode() not in (tmp_path / "credentials.sqlite").read_bytes()
    assert KeyStore(tmp_path).verify(secret).vos == frozenset({"vo.x.eu"})
    listing = runner.invoke(main, ["--data", str(tmp_path), "apikey", "list"])
    assert "ci" in listing.stdout and secret not in listing.stdout
    key_id = secret.split("_")[1]
    assert runner.invoke(main, ["--data", str(tmp_path), "apikey", "revoke", key_id]).exit_code == 0
    assert KeyStore(tmp_path).verify(secret) is None
    assert runner.invoke(main, ["--data", str(tmp_path), "apikey", "revoke", key_id]).exit_code == 1


def _yaml(path: Path, **changes: object) -> bytes:
    import yaml

    document = yaml.safe_load(path.read_text())
    document.update(changes)
    return yaml.safe_dump(document).encode()


def test_publishing_through_the_api(issuer: _Issuer, setup) -> None:  # type: ignore[no-untyped-def]
    client, _ = setup
    member = {"authorization": "Bearer " + issuer.token(["access:vo.secret.eu:member"]),
              "content-type": "application/yaml"}
    other = {"authorization": "Bearer " + issuer.token(["access:vo.other.eu:member"]),
             "content-type": "application/yaml"}
    body = _yaml(MODULES / "plants-classification__ai4-metadata.yml", title="Plants, published over HTTP")
    url = "/v1/catalog/modules/plants-http/metadata"
    assert client.put(url, content=body, headers={"content-type": "application/yaml"}).status_code == 401
    assert client.put(url + "?vo=vo.secret.eu", content=body, headers=other).status_code == 403
    created = client.put(url + "?visibility=virtual-organisation", content=body, headers=member)
    assert created.status_code == 201, created.text
    assert created.json()["vo"] == "vo.secret.eu"
    assert client.get("/v1/catalog/modules/plants-http/metadata").status_code == 404  # anonymous: VO-only
    fetched = client.get("/v1/catalog/modules/plants-http/metadata", headers={"authorization": member["authorization"]})
    assert fetched.json()["title"] == "Plants, published over HTTP"
    # another VO cannot take it over, nor see that it exists
    assert client.put(url, content=body, headers=other).status_code == 403
    assert client.delete("/v1/catalog/modules/plants-http/metadata", headers=other).status_code == 404
    # invalid metadata: 422 naming every field, nothing written
    bad = _yaml(MODULES / "plants-classification__ai4-metadata.yml", title="Changed", tasks=["Telepathy"],
                dates={"created": "2024-13-01", "updated": "2024-01-01"})
    rejected = client.put(url, content=bad, headers=member)
    assert rejected.status_code == 422 and rejected.headers["content-type"] == "application/problem+json"
    assert {p["name"] for p in rejected.json()["invalid-params"]} >= {"dates.created"}
    assert client.get("/v1/catalog/modules/plants-http/metadata",
                      headers={"authorization": member["authorization"]}).json()["title"] == "Plants, published over HTTP"
    replaced = client.put(url + "?visibility=public", content=body, headers=member)
    assert replaced.status_code == 200
    assert client.get("/v1/catalog/modules/plants-http/metadata").status_code == 200  # now public
    assert client.delete("/v1/catalog/modules/plants-http/metadata", headers=other).status_code == 403
    assert client.delete("/v1/catalog/modules/plants-http/metadata", headers=member).status_code == 204
    assert client.get("/v1/catalog/modules/plants-http/metadata").status_code == 404
