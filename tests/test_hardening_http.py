"""Issue 14, the HTTP layer: who owns a module name is decided atomically, bodies are bounded (and
read only for callers who may send them), nothing tells a private asset's existence, untrusted
text never reaches a header, and every write leaves a log line. Over a real uvicorn (serving)."""

from __future__ import annotations

import http.client
import json
import logging
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Iterator
from urllib.parse import urlsplit

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from ai4kg.api.app import create_app
from ai4kg.api.publishing import NAMES
from ai4kg.catalog import ImportOptions, import_files
from ai4kg.config import Settings
from ai4kg.credentials import KeyStore
from ai4kg.graph.namespaces import asset_iri
from ai4kg.graph.store import KnowledgeGraph, search_document

from conftest import MODULES, serving

BODY_LIMIT = 64 * 1024
UPDATE_LIMIT = 256 * 1024
BASE = "https://w3id.org/ai4kg/id/"
HIDDEN = "ai4os-demo-app"  # vo.secret.eu, not public
PUBLIC = "ai4os-yolo-torch"  # vo.open.eu, public
YOLO = (MODULES / "ai4os-yolo-torch__ai4-metadata.yml").read_bytes()
INVALID = b"metadata_version: 2.0.0\ntitle: 5\n"


def document(title: str) -> bytes:
    """A valid ai4-metadata document whose title tells who sent it."""
    return YOLO.replace(b"title: YOLO models", b"title: " + title.encode(), 1)


class _Jwks:
    """A loopback JWKS, as an OIDC issuer publishes its signing keys."""

    def __init__(self) -> None:
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(self.key.public_key()))
        keys = json.dumps({"keys": [{**jwk, "kid": "test-key", "use": "sig", "alg": "RS256"}]}).encode()

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.end_headers()
                self.wfile.write(keys)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.issuer = f"http://127.0.0.1:{self.server.server_port}/realms/test"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def token(self, kid: str) -> str:
        now = int(time.time())
        return jwt.encode({"iss": self.issuer, "sub": "user-1", "iat": now, "exp": now + 300}, self.key,
                          algorithm="RS256", headers={"kid": kid})


class Platform:
    def __init__(self, graph: KnowledgeGraph, url: str, keys: dict[str, str], issuer: _Jwks):
        self.graph, self.url, self.keys, self.issuer = graph, url, keys, issuer

    def auth(self, who: str | None) -> dict[str, str]:
        return {"authorization": f"Bearer {self.keys[who]}"} if who else {}

    def put(self, name: str, body: bytes, who: str | None, **params: str) -> httpx.Response:
        return httpx.put(f"{self.url}/v1/catalog/modules/{name}/metadata", content=body, params=params,
                         headers={"content-type": "application/yaml", **self.auth(who)}, timeout=60)

    def owner_and_title(self, name: str) -> tuple[str, str] | None:
        found = search_document(asset_iri(BASE, "Module", name), self.graph.asset_quads(asset_iri(BASE, "Module", name)))
        return (found.vo, found.title) if found is not None else None


@pytest.fixture(scope="module")
def platform() -> Iterator[Platform]:
    issuer = _Jwks()
    settings = Settings(data_dir=None, max_body_bytes=BODY_LIMIT, max_update_bytes=UPDATE_LIMIT,
                        oidc_issuer=issuer.issuer, oidc_jwks_url=issuer.issuer + "/certs")
    store = KeyStore(None)
    keys = {name: store.create(name, frozenset(vos), admin=name == "admin")[1] for name, vos in {
        "a": {"vo.a"}, "a2": {"vo.a"}, "b": {"vo.b"}, "secret": {"vo.secret.eu"}, "admin": set()}.items()}
    with KnowledgeGraph(settings) as graph:
        import_files(graph, [MODULES / "ai4os-yolo-torch__ai4-metadata.yml"], ImportOptions(vo="vo.open.eu"))
        import_files(graph, [MODULES / "ai4os-demo-app__ai4-metadata.yml"],
                     ImportOptions(vo="vo.secret.eu", visibility="virtual-organisation"))
        with serving(create_app(graph, store)) as url:
            yield Platform(graph, url, keys, issuer)
    issuer.server.shutdown()


def raw(url: str, head: str, body: Iterator[bytes] | tuple[bytes, ...] = (), timeout: float = 20) -> tuple[int, dict, bytes]:
    """One request written by hand (a Content-Length with no body behind it, chunks one by one):
    its status, headers and body. Sending stops early when the server has answered and gone."""
    address = urlsplit(url)
    with socket.create_connection((address.hostname, address.port), timeout=timeout) as sock:
        sock.sendall(head.encode("latin-1"))
        for part in body:
            try:
                sock.sendall(part)
            except (BrokenPipeError, ConnectionResetError):
                break
        response = http.client.HTTPResponse(sock)
        response.begin()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()


def head(method: str, path: str, headers: dict[str, str]) -> str:
    lines = [f"{method} {path} HTTP/1.1", "host: test", *(f"{k}: {v}" for k, v in headers.items())]
    return "\r\n".join(lines) + "\r\n\r\n"


# -- 1. a name's owner is decided atomically ---------------------------------------------------------

def _race(*requests: Callable[[], Any]) -> list[Any]:
    """Run the requests at once (released together by a barrier); their results in order."""
    barrier = threading.Barrier(len(requests))
    results: list[Any] = [None] * len(requests)

    def run(i: int) -> None:
        barrier.wait()
        results[i] = requests[i]()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(requests))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    return results


def _graphql_publish(platform: Platform, who: str, name: str, body: bytes) -> int:
    """publishModule over GraphQL: the status REST would answer (201/200, or the error's status)."""
    query = ("mutation($n: String!, $m: String!) { publishModule(name: $n, metadata: $m) { created } }")
    answer = httpx.post(f"{platform.url}/graphql", json={"query": query, "variables": {"n": name, "m": body.decode()}},
                        headers=platform.auth(who), timeout=60).json()
    if answer.get("errors"):
        return answer["errors"][0]["extensions"]["status"]
    return 201 if answer["data"]["publishModule"]["created"] else 200


@pytest.mark.parametrize("trial", range(12))
def test_two_vos_creating_one_name_at_once_one_wins_and_keeps_it(platform: Platform, trial: int) -> None:
    name = f"race-{trial}"
    via_graphql = trial % 2 == 1  # GraphQL's publishModule shares the lock with REST's PUT
    first, second = _race(
        lambda: platform.put(name, document("by vo.a"), "a").status_code,
        lambda: (_graphql_publish(platform, "b", name, document("by vo.b")) if via_graphql
                 else platform.put(name, document("by vo.b"), "b").status_code))
    assert [first, second].count(201) == 1, (first, second)  # never two acknowledged creations of one name
    winner = "vo.a" if first == 201 else "vo.b"
    assert platform.owner_and_title(name) == (winner, f"by {winner}")
    assert sorted([first, second]) == [201, 403]


@pytest.mark.parametrize("trial", range(8))
def test_a_withdrawal_never_removes_a_module_published_after_its_check(platform: Platform, trial: int) -> None:
    name = f"withdrawn-{trial}"
    assert platform.put(name, document("by vo.a"), "a").status_code == 201
    withdraw = f"{platform.url}/v1/catalog/modules/{name}/metadata"
    one, two, published = _race(
        lambda: httpx.delete(withdraw, headers=platform.auth("a"), timeout=60).status_code,
        lambda: httpx.delete(withdraw, headers=platform.auth("a2"), timeout=60).status_code,
        lambda: platform.put(name, document("by vo.b"), "b").status_code)
    assert published in (201, 403) and {one, two} <= {204, 404, 403} and 204 in (one, two)
    # vo.b's acknowledged module stays; a refused one leaves nothing (both withdrawals ran)
    assert platform.owner_and_title(name) == (("vo.b", "by vo.b") if published == 201 else None), (one, two, published)


# -- 2. bodies: the caller first, then a bounded read ------------------------------------------------

@pytest.mark.parametrize("method, path", [("PUT", "/v1/catalog/modules/huge/metadata"), ("POST", "/v1/deployments"),
                                          ("POST", "/v1/provenance/events")])
def test_an_anonymous_write_gets_401_before_its_body_is_read(platform: Platform, method: str, path: str) -> None:
    # 300 MiB announced, none sent: only an answer that reads no byte of the body comes back
    status, headers, body = raw(platform.url, head(method, path, {"content-type": "application/json",
                                                                  "content-length": str(300 * 1024 * 1024)}))
    assert status == 401 and headers["content-type"] == "application/problem+json"


@pytest.mark.parametrize("method, path, who, media", [
    ("PUT", "/v1/catalog/modules/huge/metadata", "a", "application/yaml"),
    ("POST", "/v1/deployments", "a", "application/json"),
    ("POST", "/sparql", None, "application/sparql-query"),
    ("POST", "/sparql", None, "application/x-www-form-urlencoded"),
    ("POST", "/graphql", None, "application/json"),
])
def test_a_body_over_the_limit_gets_413_by_its_content_length(platform: Platform, method: str, path: str,
                                                              who: str | None, media: str) -> None:
    status, headers, body = raw(platform.url, head(method, path, {
        "content-type": media, "content-length": str(200 * 1024 * 1024), **platform.auth(who)}))
    problem = json.loads(body)
    assert status == 413 and headers["content-type"] == "application/problem+json", body
    assert f"{BODY_LIMIT:,} bytes" in problem["detail"] and "AI4KG_MAX_BODY_BYTES" in problem["detail"]
    assert problem["invalid-params"][0] == {"name": "body", "reason": problem["detail"], "value": 200 * 1024 * 1024}


def _chunked(parts: list[bytes]) -> Iterator[bytes]:
    for part in parts:
        yield f"{len(part):x}\r\n".encode() + part + b"\r\n"
    yield b"0\r\n\r\n"


def test_a_chunked_body_is_counted_as_it_is_read(platform: Platform) -> None:
    path = "/v1/catalog/modules/chunked/metadata"
    headers = {"content-type": "application/yaml", "transfer-encoding": "chunked", **platform.auth("a")}
    status, _, body = raw(platform.url, head("PUT", path, headers), _chunked([b"# " + b"x" * 8190 + b"\n"] * 24))
    assert status == 413 and f"more than {BODY_LIMIT:,} bytes" in json.loads(body)["detail"]
    assert platform.owner_and_title("chunked") is None
    # under the limit, a chunked body is read whole
    status, _, body = raw(platform.url, head("PUT", path, headers), _chunked([YOLO[:1000], YOLO[1000:]]))
    assert status == 201, body
    assert platform.owner_and_title("chunked") == ("vo.a", "YOLO models")


def test_the_administrators_sparql_updates_have_their_own_limit(platform: Platform) -> None:
    def update(size: int, who: str) -> httpx.Response:
        text = 'DELETE DATA { GRAPH <urn:x:none> { <urn:x:s> <urn:x:p> "%s" } }' % ("x" * size)
        return httpx.post(f"{platform.url}/sparql", content=text, timeout=60,
                          headers={"content-type": "application/sparql-update", **platform.auth(who)})

    assert update(2 * BODY_LIMIT, "admin").status_code == 204
    too_large = update(2 * UPDATE_LIMIT, "admin")
    assert too_large.status_code == 413 and "AI4KG_MAX_UPDATE_BYTES" in too_large.json()["detail"]
    member = update(2 * BODY_LIMIT, "a")  # not the administrator: refused before its body is read
    assert member.status_code == 403 and "administrator" in member.json()["detail"]


DEEP = b"[" * 20_000 + b"]" * 20_000  # far past any parser's recursion limit, under the body limit


@pytest.mark.parametrize("path, media, body", [
    ("/v1/deployments", "application/json", DEEP),
    ("/v1/deployments", "text/plain", DEEP),  # parsed as JSON whatever its type says
    ("/v1/deployments", "application/json", b"[" * 100 + b"]" * 100),  # a REST document's own, tighter bound
    ("/v1/federations", "application/json", b'{"module": ' + DEEP + b"}"),
    ("/v1/provenance/events", "application/json", b'{"uniqueId": ' + DEEP + b"}"),
    ("/v1/provenance/events", "application/octet-stream", DEEP),
    ("/graphql", "application/json", b'{"query": "{ __typename }", "variables": {"v": ' + DEEP + b"}}"),
])
def test_json_nested_too_deep_is_a_client_error(platform: Platform, path: str, media: str, body: bytes) -> None:
    response = httpx.post(f"{platform.url}{path}", content=body, headers={"content-type": media, **platform.auth("a")},
                          timeout=60)
    assert response.status_code == 400, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert "levels deep at most" in response.json()["detail"]


@pytest.mark.parametrize("path, body, rule", [
    ("/v1/deployments", b'{"module": ' + b"9" * 5_000 + b"}", "number-size"),  # int() refuses 4,300+ digits
    ("/v1/provenance/events", b'{"uniqueId": "x", "uniqueId": "y"}', "duplicate-key"),
    ("/v1/federations", b'{"module": "m", "rounds": 1e400}', "finite-number"),
])
def test_json_documents_of_rest_routes_are_read_under_the_loaders_rules(platform: Platform, path: str, body: bytes,
                                                                         rule: str) -> None:
    """A 5,000-digit number made json.loads raise a ValueError that no route caught (a 500)."""
    response = httpx.post(f"{platform.url}{path}", content=body,
                          headers={"content-type": "application/json", **platform.auth("a")}, timeout=60)
    assert response.status_code in (400, 422), response.text
    assert rule in response.text


def test_json_nested_too_deep_in_a_graphql_query_string_is_a_client_error(platform: Platform) -> None:
    deep = "[" * 3000 + "]" * 3000  # as deep as a request line takes
    response = httpx.get(f"{platform.url}/graphql", params={"query": "{ __typename }", "variables": f'{{"v": {deep}}}'},
                         timeout=60)
    assert response.status_code == 400, response.text


def test_deep_json_metadata_is_refused_and_writes_nothing(platform: Platform) -> None:
    response = httpx.put(f"{platform.url}/v1/catalog/modules/deep/metadata", content=b'{"title": ' + DEEP + b"}",
                         headers={"content-type": "application/json", **platform.auth("a")}, timeout=60)
    assert response.status_code == 400 and platform.owner_and_title("deep") is None


# -- 3. nothing tells that a private asset exists ----------------------------------------------------

def _without(text: str, *names: str) -> str:
    for name in names:
        text = text.replace(name, "NAME")
    return text


def test_a_write_under_another_vos_name_answers_alike_whether_it_is_hidden_or_not(platform: Platform) -> None:
    # an invalid document: the same 422 under a hidden name, a public one and a free one
    invalid = {name: platform.put(name, INVALID, "b") for name in (HIDDEN, PUBLIC, "free-name")}
    assert {r.status_code for r in invalid.values()} == {422}
    assert len({_without(r.text, HIDDEN, PUBLIC, "free-name") for r in invalid.values()}) == 1
    # a valid one: 403 under either VO's module, word for word, and neither module changes
    taken = {name: platform.put(name, document("taken"), "b") for name in (HIDDEN, PUBLIC)}
    assert {r.status_code for r in taken.values()} == {403}
    assert len({_without(r.text, HIDDEN, PUBLIC) for r in taken.values()}) == 1
    assert platform.owner_and_title(HIDDEN)[0] == "vo.secret.eu" and platform.owner_and_title(PUBLIC)[0] == "vo.open.eu"


def test_lineage_of_a_hidden_asset_is_that_of_an_unknown_iri(platform: Platform) -> None:
    hidden, unknown = asset_iri(BASE, "Module", HIDDEN), asset_iri(BASE, "Module", "no-such-module")

    def walk(iri: str, who: str | None = None) -> httpx.Response:
        return httpx.get(f"{platform.url}/v1/provenance/lineage", params={"iri": iri}, headers=platform.auth(who))

    assert walk(hidden).status_code == walk(unknown).status_code == 200
    assert _without(walk(hidden).text, hidden) == _without(walk(unknown).text, unknown)
    assert walk(hidden, "secret").json()["nodes"][0]["types"]  # its members see what it is
    query = '{ lineage(iri: "%s") { root nodes { iri kind types label depth } edges { source } } }'
    graphql = [httpx.post(f"{platform.url}/graphql", json={"query": query % iri}).json()["data"]["lineage"]
               for iri in (hidden, unknown)]
    assert graphql[0] is not None
    assert _without(json.dumps(graphql[0]), hidden) == _without(json.dumps(graphql[1]), unknown)


def test_stats_count_what_the_caller_may_see(platform: Platform) -> None:
    def stats(who: str | None) -> dict[str, Any]:
        return httpx.get(f"{platform.url}/stats", headers=platform.auth(who)).json()

    anonymous, member, admin = stats(None), stats("secret"), stats("admin")
    assert member["assets_by_kind"]["Module"] == anonymous["assets_by_kind"]["Module"] + 1  # the hidden module
    assert admin["assets_by_kind"]["Module"] == member["assets_by_kind"]["Module"]
    assert anonymous["assets"] == sum(anonymous["assets_by_kind"].values())
    assert "data_dir" not in anonymous and "data_dir" not in member and "data_dir" in admin


# -- 4. untrusted text never reaches a header as it is -----------------------------------------------

@pytest.mark.parametrize("kid", ["evil\r\nX-Injected: yes", "nul\x00byte", "del\x7f and \"quotes\" \\ é"])
def test_a_tokens_kid_is_never_echoed_raw_into_www_authenticate(platform: Platform, kid: str) -> None:
    response = httpx.get(f"{platform.url}/v1/catalog/modules",
                         headers={"authorization": "Bearer " + platform.issuer.token(kid)})
    assert response.status_code == 401 and "x-injected" not in response.headers
    challenge = response.headers["www-authenticate"]
    assert challenge.startswith('Bearer error="invalid_token", error_description="') and challenge.endswith('"')
    assert all(" " <= c <= "~" for c in challenge) and challenge.count('"') == 4 and "\\" not in challenge
    assert kid in response.json()["detail"]  # the body (JSON) says it as it was


# -- 5. every write is logged, whether or not its client waited --------------------------------------

class _Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def request_log() -> Iterator[_Lines]:
    lines, logger = _Lines(), logging.getLogger("ai4kg.requests")
    level = logger.level
    logger.addHandler(lines)
    logger.setLevel(logging.INFO)
    yield lines
    logger.removeHandler(lines)
    logger.setLevel(level)


def _wait_for(condition: Callable[[], Any], what: str, seconds: float = 60) -> Any:
    deadline = time.monotonic() + seconds
    while not (found := condition()):
        assert time.monotonic() < deadline, what
        time.sleep(0.01)
    return found


def test_a_write_whose_client_left_is_still_logged(platform: Platform, request_log: _Lines) -> None:
    name, path = "left-early", "/v1/catalog/modules/left-early/metadata"
    iri = asset_iri(BASE, "Module", name)
    body = document("left early")
    with NAMES.hold(iri):  # the write waits here, its body read, until the client has gone
        address = urlsplit(platform.url)
        sock = socket.create_connection((address.hostname, address.port), timeout=20)
        sock.sendall(head("PUT", path, {"content-type": "application/yaml", "content-length": str(len(body)),
                                        **platform.auth("a")}).encode() + body)
        _wait_for(lambda: NAMES.users(iri) == 2, "the PUT never reached its write")
        sock.close()
    _wait_for(lambda: platform.owner_and_title(name), "the write was not committed")
    [line] = _wait_for(lambda: [r for r in request_log.records if getattr(r, "path", None) == path],
                       "no log line for the PUT")
    assert (line.method, line.status, line.caller) == ("PUT", 201, "api-key:" + platform.keys["a"].split("_")[1])
    assert line.duration_ms >= 0 and path in line.getMessage()


def test_refused_writes_are_logged_too(platform: Platform, request_log: _Lines) -> None:
    httpx.put(f"{platform.url}/v1/catalog/modules/nobody/metadata", content=b"x")
    httpx.get(f"{platform.url}/v1/catalog/modules")  # reads are the access log's
    [line] = _wait_for(lambda: request_log.records, "no log line")
    assert (line.method, line.path, line.status, line.caller) == ("PUT", "/v1/catalog/modules/nobody/metadata", 401,
                                                                 "anonymous")
