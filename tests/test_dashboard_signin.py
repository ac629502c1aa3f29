"""The dashboard's sign-in: API keys, and the authorization code flow with PKCE against a test
identity provider (tests/oidc_provider.py); a VO's private module shows only to its members, forms
need the session's token, and `next` never leads off this server."""

from __future__ import annotations

import base64
import hashlib
import re
from typing import Any, Iterator
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
import yaml
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi import FastAPI
from fastapi.testclient import TestClient

from ai4kg.api.app import create_app
from ai4kg.catalog import ImportOptions, InlineFile, import_files
from ai4kg.config import Settings
from ai4kg.credentials import KeyStore
from ai4kg.dashboard.signin import local_path
from ai4kg.graph.store import KnowledgeGraph

from conftest import _free_port
from oidc_provider import IdentityProvider

CLIENT_ID = "ai4kg-dashboard"
CLIENT_SECRET = "the-dashboard's-secret:&="  # characters that Basic authentication must form-encode
AUDIENCE = "ai4kg"
SECRET_TITLE = "Secret coral counter"
OPEN_TITLE = "Open flood mapper"
CALLBACK = "http://testserver/sign-in/callback"


def _module(name: str, title: str) -> bytes:
    return yaml.safe_dump({
        "metadata_version": "2.0.0", "title": title, "summary": f"{title}, a module for tests of sign-in.",
        "description": "A module.", "dates": {"created": "2024-01-02", "updated": "2024-02-03"},
        "links": {"source_code": f"https://github.com/example/{name}", "docker_image": f"example/{name}"},
        "tags": ["deep learning"], "tasks": ["Computer Vision"], "categories": ["AI4 pre trained"],
        "libraries": ["PyTorch"], "data-type": ["Image"]}).encode()


def _import_two_vos(graph: KnowledgeGraph) -> None:
    for name, title, vo, visibility in [("open-flood", OPEN_TITLE, "default", "public"),
                                        ("secret-coral", SECRET_TITLE, "vo.secret.eu", "virtual-organisation")]:
        [report] = import_files(graph, [InlineFile(f"{name}.yml", _module(name, title))],
                                ImportOptions(identifier=name, vo=vo, visibility=visibility))
        assert report.status == "imported", report


@pytest.fixture(scope="module")
def provider() -> Iterator[IdentityProvider]:
    server = IdentityProvider(client_id=CLIENT_ID, client_secret=CLIENT_SECRET, audience=AUDIENCE)
    server.users.update({"alice": ["access:vo.secret.eu:member"], "bob": ["access:vo.other.eu:member"]})
    server.redirect_uris.add(CALLBACK)
    yield server
    server.close()


@pytest.fixture(autouse=True)
def _fresh_provider(request: pytest.FixtureRequest) -> None:
    if "provider" in request.fixturenames:
        provider: IdentityProvider = request.getfixturevalue("provider")
        provider.user, provider.deny, provider.sign_with = "alice", False, None
        provider.access_claims, provider.id_claims = {}, {}


def _settings(issuer: str | None, client_id: str | None = CLIENT_ID, secret: str | None = CLIENT_SECRET) -> Settings:
    return Settings(data_dir=None, oidc_issuer=issuer, oidc_audience=AUDIENCE, oidc_client_id=client_id,
                    oidc_client_secret=secret)


@pytest.fixture(scope="module")
def served(provider: IdentityProvider) -> Iterator[tuple[FastAPI, KeyStore]]:
    keys = KeyStore(None)
    with KnowledgeGraph(_settings(provider.url)) as graph:
        _import_two_vos(graph)
        yield create_app(graph, keys), keys


@pytest.fixture()
def client(served: tuple[FastAPI, KeyStore]) -> TestClient:
    return TestClient(served[0])  # a browser of its own: a cookie jar per test


def _sees_secret(client: TestClient) -> bool:
    page = client.get("/")
    assert page.status_code == 200 and OPEN_TITLE in page.text
    return SECRET_TITLE in page.text


def _signed_in_as(client: TestClient) -> str | None:
    found = re.search(r"Signed in as <strong>([^<]*)</strong>", client.get("/").text)
    return found[1] if found else None


def _csrf(client: TestClient, path: str = "/sign-in") -> str:
    return re.search(r'name="csrf" value="([^"]+)"', client.get(path).text)[1]  # type: ignore[index]


def _key_sign_in(client: TestClient, key: str, next_path: str = "/", csrf: str | None = None) -> httpx.Response:
    return client.post("/sign-in", data={"csrf": csrf or _csrf(client), "api_key": key, "next": next_path},
                       follow_redirects=False)


def _sign_out(client: TestClient) -> httpx.Response:
    return client.post("/sign-out", data={"csrf": _csrf(client, "/")}, follow_redirects=False)


# API keys


def test_an_api_key_shows_its_vos_module_until_sign_out(client: TestClient, served: tuple[FastAPI, KeyStore]) -> None:
    keys = served[1]
    assert not _sees_secret(client) and _signed_in_as(client) is None
    key, secret = keys.create("member", frozenset({"vo.secret.eu"}))
    signed = _key_sign_in(client, secret, next_path="/?sort=title")
    assert signed.status_code == 303 and signed.headers["location"] == "/?sort=title"
    assert _sees_secret(client)
    assert _signed_in_as(client) == f"api-key:{key.id}"
    signed_out = _sign_out(client)
    assert signed_out.status_code == 303 and signed_out.headers["location"] == "/"
    assert not _sees_secret(client) and _signed_in_as(client) is None

    _, other = keys.create("other", frozenset({"vo.other.eu"}))
    assert _key_sign_in(client, other).status_code == 303
    assert not _sees_secret(client) and _signed_in_as(client) is not None  # signed in, another VO

    revoked, secret = keys.create("member", frozenset({"vo.secret.eu"}))
    assert _key_sign_in(client, secret).status_code == 303 and _sees_secret(client)
    keys.revoke(revoked.id)
    assert not _sees_secret(client) and _signed_in_as(client) is None  # the session ends with the key


@pytest.mark.parametrize("key, says", [
    ("", "Enter an API key"),
    ("not-a-key", "not an API key"),
    ("ai4kg_000000000000_wrong", "unknown or was revoked"),
    ("revoked", "unknown or was revoked"),
])
def test_a_bad_key_gets_its_error_on_the_field(client: TestClient, served: tuple[FastAPI, KeyStore], key: str,
                                               says: str) -> None:
    if key == "revoked":
        found, key = served[1].create("gone", frozenset({"vo.secret.eu"}))
        served[1].revoke(found.id)
    answer = _key_sign_in(client, key, next_path="/?q=coral")
    assert answer.status_code == 400
    field = re.search(r'<input type="password" id="api_key"[^>]*>', answer.text)[0]  # type: ignore[index]
    assert 'aria-invalid="true"' in field and "api_key-error" in field
    error = re.search(r'<p class="error" id="api_key-error" role="alert">([^<]*)</p>', answer.text)
    assert error and says in error[1]
    assert 'name="next" value="/?q=coral"' in answer.text  # the form keeps where to go
    if key:
        assert key not in answer.text  # the key is not written back into the page
    assert _signed_in_as(client) is None and not _sees_secret(client)


def test_forms_without_the_sessions_token_are_refused(client: TestClient, served: tuple[FastAPI, KeyStore]) -> None:
    _, secret = served[1].create("member", frozenset({"vo.secret.eu"}))
    client.get("/sign-in")  # the session has a token; the forms below do not carry it
    for data in ({"api_key": secret}, {"api_key": secret, "csrf": "forged"}):
        refused = client.post("/sign-in", data=data, follow_redirects=False)
        assert refused.status_code == 403 and "Form not accepted" in refused.text
        assert _signed_in_as(client) is None
    stranger = TestClient(served[0])  # another browser's token is not this session's
    assert _key_sign_in(client, secret, csrf=_csrf(stranger)).status_code == 403
    assert _signed_in_as(client) is None

    assert _key_sign_in(client, secret).status_code == 303
    for data in ({}, {"csrf": "forged"}):
        refused = client.post("/sign-out", data=data, follow_redirects=False)
        assert refused.status_code == 403
        assert _signed_in_as(client) is not None and _sees_secret(client)  # still signed in


BAD_NEXT = ["//evil.example/x", "https://evil.example/", "http:/evil.example", "/\\evil.example", "\\\\evil.example",
            "/\t/evil.example", "/\n/evil.example", "javascript:alert(1)", "evil.example", "", "/sign-out"]


@pytest.mark.parametrize("bad", BAD_NEXT)
def test_next_leads_nowhere_but_this_server(client: TestClient, served: tuple[FastAPI, KeyStore], bad: str) -> None:
    assert local_path(bad) == "/"
    _, secret = served[1].create("member", frozenset({"vo.secret.eu"}))
    page = client.get("/sign-in", params={"next": bad})
    assert 'name="next" value="/"' in page.text and "evil" not in page.text
    signed = _key_sign_in(client, secret, next_path=bad)
    assert signed.status_code == 303 and signed.headers["location"] == "/"


def test_next_keeps_a_local_path() -> None:
    for good in ("/", "/id/module/secret-coral", "/?q=coral&library=pytorch", "/deployments/abc#status"):
        assert local_path(good) == good


# OIDC, authorization code with PKCE


def _start(client: TestClient, provider: IdentityProvider, next_path: str = "/") -> dict[str, str]:
    """The authorization request the dashboard sends the browser to."""
    started = client.get("/sign-in/oidc", params={"next": next_path}, follow_redirects=False)
    assert started.status_code == 303, started.text
    location = started.headers["location"]
    assert location.startswith(provider.authorization_endpoint + "?")
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()} | {"url": location}


def _authorize(request: dict[str, str]) -> dict[str, str]:
    """The provider's answer (the user signs in at once): the callback's parameters."""
    answer = httpx.get(request["url"], follow_redirects=False)
    assert answer.status_code == 302, answer.text
    back = answer.headers["location"]
    assert back.startswith(CALLBACK + "?")
    return {k: v[0] for k, v in parse_qs(urlsplit(back).query).items()}


def _callback(client: TestClient, params: dict[str, str]) -> httpx.Response:
    return client.get("/sign-in/callback", params=params, follow_redirects=False)


def test_oidc_sign_in_with_pkce(client: TestClient, provider: IdentityProvider) -> None:
    page = client.get("/sign-in", params={"next": "/?q=coral"})
    host = urlsplit(provider.url).netloc
    assert f"Sign in with {host}" in page.text and 'href="/sign-in/oidc?next=%2F%3Fq%3Dcoral"' in page.text
    assert not _sees_secret(client)

    request = _start(client, provider, "/?q=coral")
    assert request["response_type"] == "code" and request["client_id"] == CLIENT_ID
    assert request["redirect_uri"] == CALLBACK and request["scope"] == "openid profile email"
    assert request["code_challenge_method"] == "S256" and len(request["code_challenge"]) == 43
    assert len(request["state"]) >= 32 and len(request["nonce"]) >= 32
    assert CLIENT_SECRET not in request["url"]
    back = _authorize(request)
    signed = _callback(client, back)
    assert signed.status_code == 303 and signed.headers["location"] == "/?q=coral"

    exchanged = provider.token_requests[-1]
    assert exchanged["code"] == back["code"] and exchanged["redirect_uri"] == CALLBACK
    verifier = exchanged["code_verifier"]
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    assert challenge == request["code_challenge"]
    assert _sees_secret(client) and _signed_in_as(client) == "sub-alice"

    replayed = _callback(client, back)  # a state is good once; the session stays as it is
    assert replayed.status_code == 400 and "does not belong" in replayed.text
    assert _signed_in_as(client) == "sub-alice"

    assert _sign_out(client).status_code == 303
    assert not _sees_secret(client) and _signed_in_as(client) is None


def test_another_vos_member_signs_in_without_seeing_it(client: TestClient, provider: IdentityProvider) -> None:
    provider.user = "bob"
    assert _callback(client, _authorize(_start(client, provider))).status_code == 303
    assert _signed_in_as(client) == "sub-bob" and not _sees_secret(client)


def test_a_state_that_is_not_the_sessions_is_refused(client: TestClient, provider: IdentityProvider,
                                                    served: tuple[FastAPI, KeyStore]) -> None:
    back = _authorize(_start(client, provider))
    exchanges = len(provider.token_requests)
    for params in ({**back, "state": back["state"][:-2] + "xx"}, {"code": back["code"]}):
        refused = _callback(client, params)
        assert refused.status_code == 400 and "does not belong" in refused.text
    stranger = TestClient(served[0])  # the same answer in a browser that did not start it
    assert _callback(stranger, back).status_code == 400
    assert len(provider.token_requests) == exchanges  # the code was never exchanged
    assert _signed_in_as(client) is None and _signed_in_as(stranger) is None
    assert not _sees_secret(client)


def test_a_code_taken_into_another_session_fails_pkce(client: TestClient, provider: IdentityProvider,
                                                     served: tuple[FastAPI, KeyStore]) -> None:
    victim = TestClient(served[0])
    stolen = _authorize(_start(victim, provider))  # the victim's code, taken before it reached the dashboard
    mine = _authorize(_start(client, provider))
    refused = _callback(client, {**mine, "code": stolen["code"]})  # my state, the victim's code
    assert refused.status_code == 400
    assert "PKCE verification failed" in refused.text
    assert provider.token_requests[-1]["code"] == stolen["code"]
    assert _signed_in_as(client) is None and not _sees_secret(client)


def test_the_provider_refuses_a_wrong_verifier(provider: IdentityProvider) -> None:
    verifier = "v" * 43
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()

    def code() -> str:
        answer = httpx.get(provider.authorization_endpoint, follow_redirects=False, params={
            "response_type": "code", "client_id": CLIENT_ID, "redirect_uri": CALLBACK, "scope": "openid",
            "state": "s", "nonce": "n", "code_challenge": challenge, "code_challenge_method": "S256"})
        return parse_qs(urlsplit(answer.headers["location"]).query)["code"][0]

    def exchange(the_code: str, **extra: str) -> httpx.Response:
        return httpx.post(provider.token_endpoint, auth=(CLIENT_ID, CLIENT_SECRET), data={
            "grant_type": "authorization_code", "code": the_code, "redirect_uri": CALLBACK, **extra})

    assert exchange(code(), code_verifier="w" * 43).json()["error"] == "invalid_grant"
    assert exchange(code()).json()["error"] == "invalid_grant"  # no verifier at all
    first = code()
    assert exchange(first, code_verifier="w" * 43).status_code == 400
    assert exchange(first, code_verifier=verifier).status_code == 400  # a code is good once, whatever happened
    tokens = exchange(code(), code_verifier=verifier)
    assert tokens.status_code == 200 and tokens.json()["token_type"] == "Bearer"
    plain = httpx.get(provider.authorization_endpoint, follow_redirects=False, params={
        "response_type": "code", "client_id": CLIENT_ID, "redirect_uri": CALLBACK, "scope": "openid", "state": "s",
        "code_challenge": verifier, "code_challenge_method": "plain"})
    assert "error=invalid_request" in plain.headers["location"]


def test_access_denied_at_the_provider_is_shown(client: TestClient, provider: IdentityProvider) -> None:
    provider.deny = True
    back = _authorize(_start(client, provider, "/?q=coral"))
    assert back["error"] == "access_denied"
    shown = _callback(client, back)
    assert shown.status_code == 403
    assert "Sign-in cancelled" in shown.text and "did not sign you in (access_denied" in shown.text
    assert 'href="/sign-in?next=%2F%3Fq%3Dcoral"' in shown.text  # back to where the visitor was going
    assert _signed_in_as(client) is None


@pytest.mark.parametrize("tamper, says", [
    ({"sign_with": rsa.generate_private_key(public_exponent=65537, key_size=2048)}, "access token does not verify"),
    ({"access_claims": {"iss": "https://evil.example/realms/test"}}, "access token does not verify"),
    ({"access_claims": {"aud": "someone-else"}}, "access token does not verify"),
    ({"id_claims": {"nonce": "another-sign-in"}}, "nonce"),
    ({"id_claims": {"aud": "another-client"}}, "ID token does not verify"),
    ({"id_claims": {"sub": "sub-mallory"}}, "subject"),
    ({"id_claims": {"at_hash": "AAAAAAAAAAAAAAAAAAAAAA"}}, "at_hash"),
])
def test_a_token_that_does_not_verify_signs_nobody_in(client: TestClient, provider: IdentityProvider,
                                                      tamper: dict[str, Any], says: str) -> None:
    for name, value in tamper.items():
        setattr(provider, name, value)
    refused = _callback(client, _authorize(_start(client, provider)))
    assert refused.status_code == 401 and "token was not accepted" in refused.text
    assert says in refused.text
    assert _signed_in_as(client) is None and not _sees_secret(client)


def test_a_wrong_client_secret_is_refused_by_the_provider(provider: IdentityProvider) -> None:
    with KnowledgeGraph(_settings(provider.url, secret="not-the-secret")) as graph:
        _import_two_vos(graph)
        client = TestClient(create_app(graph, KeyStore(None)))
        refused = _callback(client, _authorize(_start(client, provider)))
        assert refused.status_code == 400 and "invalid_client" in refused.text
        assert "not-the-secret" not in refused.text
        assert _signed_in_as(client) is None


def test_an_unreachable_issuer_is_a_clear_page() -> None:
    issuer = f"http://127.0.0.1:{_free_port()}/realms/gone"  # nothing listens there
    with KnowledgeGraph(_settings(issuer)) as graph:
        client = TestClient(create_app(graph, KeyStore(None)))
        assert "Sign in with 127.0.0.1" in client.get("/sign-in").text
        shown = client.get("/sign-in/oidc", params={"next": "/"}, follow_redirects=False)
        assert shown.status_code == 502 and "cannot be reached" in shown.text
        assert _signed_in_as(client) is None


def test_without_an_issuer_only_api_keys_are_offered() -> None:
    for settings in (_settings(None), _settings("https://issuer.example/realms/x", client_id=None)):
        with KnowledgeGraph(settings) as graph:
            client = TestClient(create_app(graph, KeyStore(None)))
            page = client.get("/sign-in")
            assert page.status_code == 200 and "Sign in with the key" in page.text and "/sign-in/oidc" not in page.text
            assert client.get("/sign-in/oidc", follow_redirects=False).status_code == 404
            assert client.get("/sign-in/callback", params={"code": "c", "state": "s"}).status_code == 404


def test_the_client_settings_come_from_the_environment_and_the_secret_is_never_shown(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    monkeypatch.setenv("AI4KG_OIDC_CLIENT_ID", CLIENT_ID)
    monkeypatch.setenv("AI4KG_OIDC_CLIENT_SECRET", CLIENT_SECRET)
    settings = Settings.from_env(tmp_path)
    assert settings.oidc_client_id == CLIENT_ID and settings.oidc_client_secret == CLIENT_SECRET
    assert CLIENT_SECRET not in repr(settings) and CLIENT_SECRET not in str(settings)


def test_a_public_client_signs_in_with_pkce_alone() -> None:
    public = IdentityProvider(client_id="public-dashboard", client_secret=None, audience=AUDIENCE)
    try:
        public.users["alice"], public.user = ["access:vo.secret.eu:member"], "alice"
        public.redirect_uris.add(CALLBACK)
        with KnowledgeGraph(_settings(public.url, client_id="public-dashboard", secret=None)) as graph:
            _import_two_vos(graph)
            client = TestClient(create_app(graph, KeyStore(None)))
            assert _callback(client, _authorize(_start(client, public))).status_code == 303
            assert _sees_secret(client)
            assert public.token_requests[-1]["client_id"] == "public-dashboard"
    finally:
        public.close()


# in a real browser


def test_sign_in_through_the_identity_provider_in_a_browser(chromium: Any, provider: IdentityProvider,
                                                            served: tuple[FastAPI, KeyStore]) -> None:
    import browser

    provider.user = None  # the provider shows its login form
    with browser.dashboard_server(served[0]) as url:
        provider.redirect_uris.add(url + "/sign-in/callback")
        context = chromium.new_context(bypass_csp=True)
        try:
            page = context.new_page()
            errors: list[str] = []
            page.on("pageerror", lambda error: errors.append(str(error)))  # a script that failed
            page.on("console", lambda message: errors.append(message.text) if message.type == "error"
                    and not message.text.startswith("Failed to load resource") else None)  # those: below
            page.on("response", lambda response: errors.append(f"{response.status} {response.url}")
                    if response.status >= 400 and "api_key" not in (response.request.post_data or "") else None)
            page.goto(url + "/")
            assert page.get_by_role("link", name=OPEN_TITLE).is_visible()
            assert page.get_by_text(SECRET_TITLE).count() == 0  # anonymous: not there

            page.get_by_role("link", name="Sign in", exact=True).click()
            page.wait_for_url(re.compile(re.escape(url) + r"/sign-in\?next=(/|%2F)$"))
            problems = browser.accessibility_problems(page)
            assert not problems, browser.describe(problems)
            browser.screenshot(page, "sign-in")

            page.get_by_label("API key", exact=True).fill("ai4kg_000000000000_wrong")  # a bad key: the error on the field
            page.get_by_role("button", name="Sign in with the key").click()
            assert page.get_by_role("alert").inner_text() == "This API key is unknown or was revoked."
            assert page.get_by_label("API key", exact=True).get_attribute("aria-invalid") == "true"
            problems = browser.accessibility_problems(page)
            assert not problems, browser.describe(problems)
            browser.screenshot(page, "sign-in-error")

            page.get_by_role("link", name=f"Sign in with {urlsplit(provider.url).netloc}").click()
            page.wait_for_url(provider.authorization_endpoint + "?*")
            page.get_by_label("Username").fill("alice")
            page.get_by_role("button", name="Sign in").click()
            page.wait_for_url(url + "/")
            assert page.get_by_role("link", name=SECRET_TITLE).is_visible()
            assert "Signed in as sub-alice" in page.locator("header .who").inner_text()

            page.get_by_role("button", name="Sign out").click()
            page.wait_for_url(url + "/")
            page.get_by_role("link", name="Sign in", exact=True).wait_for()
            assert page.get_by_text(SECRET_TITLE).count() == 0
            assert not errors, errors
        finally:
            context.close()
