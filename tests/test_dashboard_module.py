"""The module page and the linked-data pages of other assets (`/id/{kind}/{name}` in a browser):
content, FAIR report, provenance graph and its links, views one click away, escaping, 404, rights;
programs still get RDF or JSON from the same URL. Then the same in a real browser (Chromium), with
an accessibility check and screenshots."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator

import pytest
import yaml
from fastapi.testclient import TestClient

import browser
from ai4kg.api.app import create_app
from ai4kg.catalog import ImportOptions, InlineFile, import_files
from ai4kg.config import Settings
from ai4kg.credentials import KeyStore
from ai4kg.dashboard import assets as asset_pages
from ai4kg.demo import load_demo_catalog
from ai4kg.graph.store import KnowledgeGraph

BROWSER = {"accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}
"""What Chromium sends for a page it navigates to."""
BASE = "https://w3id.org/ai4kg/id/"
FLOOD = "/id/module/flood-segmentation-s2"
BUILD = "/id/build/jenkins.ai4kg-demo.main.flood-segmentation-s2.14"
RUN = "/id/trainingrun/mlflow-8d2f41c07a9e4b6c9b1e35d0f6a27c13"
DEPLOYMENT = "/id/deployment/flood-s2-train-2025-03-10"
SECRET_VO = "vo.secret.eu"


def _module(name: str, title: str, description: str = "A module.", **links: str) -> bytes:
    return yaml.safe_dump({
        "metadata_version": "2.0.0", "title": title, "summary": f"{title}, a module for tests of the module page.",
        "description": description, "dates": {"created": "2024-01-02", "updated": "2024-02-03"},
        "links": {"source_code": f"https://github.com/example/{name}", "docker_image": f"example/{name}", **links},
        "tags": ["deep learning"], "tasks": ["Computer Vision"], "categories": ["AI4 pre trained"],
        "libraries": ["PyTorch"], "data-type": ["Image"]}).encode()


def _import(graph: KnowledgeGraph, name: str, title: str, description: str = "A module.", vo: str = "default",
            visibility: str = "public", **links: str) -> None:
    [report] = import_files(graph, [InlineFile(f"{name}.yml", _module(name, title, description, **links))],
                            ImportOptions(identifier=name, vo=vo, visibility=visibility))
    assert report.status == "imported", report


@pytest.fixture(scope="module")
def demo() -> Iterator[tuple[KnowledgeGraph, str, KeyStore]]:
    """The demo catalogue, a hostile module, a VO-private module and a VO-private build of the demo's
    flood module; and a member's API key."""
    with KnowledgeGraph(Settings.in_memory()) as graph:
        load_demo_catalog(graph)
        _import(graph, "evil-notes", "Evil notes",
                "Hello <script>alert(1)</script> and [x](javascript:alert(1)) and <img src=x onerror=alert(2)>\n\n"
                "**bold** text")
        _import(graph, "secret-coral", "Secret coral counter", vo=SECRET_VO, visibility="virtual-organisation")
        graph.update(f"""PREFIX ai4kg: <https://w3id.org/ai4kg/ns#> PREFIX prov: <http://www.w3.org/ns/prov#>
            PREFIX rdfs: <http://www.w3.org/2000/01/rdf-schema#>
            INSERT DATA {{ GRAPH <{BASE}build/secret-build> {{
              <{BASE}build/secret-build> a ai4kg:Build, prov:Activity ; rdfs:label "Secret rebuild" ;
                ai4kg:title "Secret rebuild" ; ai4kg:identifier "secret-build" ;
                ai4kg:belongsToVO <{BASE}virtualorganisation/{SECRET_VO}> ;
                ai4kg:visibility <https://w3id.org/ai4kg/vocab/visibility/virtual-organisation> ;
                prov:used <{BASE}module/flood-segmentation-s2> ; ai4kg:builtFrom <{BASE}module/flood-segmentation-s2> .
            }} }}""")
        keys = KeyStore(None)
        _, secret = keys.create("member", frozenset({SECRET_VO}))
        yield graph, secret, keys


@pytest.fixture(scope="module")
def client(demo: tuple[KnowledgeGraph, str, KeyStore]) -> Iterator[TestClient]:
    graph, _, keys = demo
    with TestClient(create_app(graph, keys=keys)) as client:
        yield client


def _page(client: TestClient, path: str, **headers: str) -> str:
    response = client.get(path, headers={**BROWSER, **headers})
    assert response.status_code == 200, (path, response.status_code, response.text[:500])
    assert response.headers["content-type"].startswith("text/html")
    return response.text


def _hrefs(page: str) -> list[str]:
    """The targets of the page's links (<a>, in HTML and SVG)."""
    return [html.unescape(h) for h in re.findall(r'<a\s[^>]*?href="([^"]*)"', page)]


def _section(page: str, ident: str) -> str:
    start = page.index(f'id="{ident}"')
    end = page.find("<section id=", start + 1)
    return page[start:end if end > 0 else len(page)]


def test_the_module_page_shows_title_summary_description_links_and_facts(client: TestClient) -> None:
    page = _page(client, FLOOD)
    assert "<h1>Satellite Flood Segmentation</h1>" in page
    assert "Segments flooded areas in Sentinel-1 and Sentinel-2" in page
    assert "<p>This module produces flood-extent masks" in page  # the description, as Markdown paragraphs
    links = _hrefs(page)
    for target in ("https://github.com/ai4kg-demo/flood-segmentation-s2", "https://zenodo.org/records/9127700",
                   "https://doi.org/10.5281/zenodo.9127745", "https://ai4kg-demo.github.io/flood-segmentation-s2/",
                   "https://hub.docker.com/r/ai4kg-demo/flood-segmentation-s2"):
        assert target in links, target
    for label in ("Source code", "Docker image", "Training dataset", "Citation", "Documentation"):
        assert f"<dt>{label}</dt>" in page
    # facts link to the catalogue filtered by them
    assert "/?task=computer-vision" in links and "/?library=pytorch" in links and "/?tag=floods" in links
    assert "/deployments/new?module=flood-segmentation-s2" in links  # Deploy


def test_the_fair_report_says_what_to_add_and_why(client: TestClient, demo: tuple[KnowledgeGraph, str, KeyStore]) -> None:
    graph, _, _ = demo
    from ai4kg.graph.fair import fair_report

    report = fair_report(graph, BASE + "module/flood-segmentation-s2")
    failed = [o for o in report.checks if not o.passed]
    assert failed  # the demo module lacks weights and a version
    fair = _fair(client, "flood-segmentation-s2")
    todo = re.findall(r'data-check="([^"]+)"', fair)
    levels = {o.check.id: o.check.level for o in failed}
    assert set(todo) == set(levels)
    assert [levels[i] for i in todo] == sorted(levels[i] for i in todo)  # what is required first
    weights = next(o for o in failed if o.check.id == "A-file")
    assert html.escape(weights.check.title, quote=False) in fair
    assert "<code>links.weights</code>" in fair  # the advice names the field to add
    assert "FAIR principle A1:" in fair and "MLDCAT-AP 3.1.0 requires it" in fair  # and why
    passed = sum(o.status == "pass" for o in report.checks)
    applicable = sum(o.status != "not applicable" for o in report.checks)
    assert f"{passed} of {applicable} checks that apply pass" in fair
    assert "/v1/catalog/modules/flood-segmentation-s2/fair" in _hrefs(fair)


def _fair(client: TestClient, name: str) -> str:
    """The module's FAIR section: on its page if computed already, else (the page loads it with
    htmx) from /fair/module/NAME, after which the page shows it itself."""
    page = _page(client, f"/id/module/{name}")
    section = _section(page, "fair")
    if "data-check=" in section or "Nothing to add" in section:
        return section
    assert f'hx-get="/fair/module/{name}"' in section and f'href="/fair/module/{name}"' in section
    fragment = _page(client, f"/fair/module/{name}", **{"HX-Request": "true"})
    assert "<html" not in fragment  # the section alone, swapped into the page
    assert _section(_page(client, f"/id/module/{name}"), "fair").strip() == _section(fragment, "fair").strip()  # now on the page
    assert "<h1" in _page(client, f"/fair/module/{name}")  # followed as a link: a page of its own
    return _section(fragment, "fair")


def test_a_changed_module_gets_a_new_fair_report_and_an_unchanged_one_is_not_validated_again(
        monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []
    real = asset_pages.fair_report
    monkeypatch.setattr(asset_pages, "fair_report", lambda *a: calls.append(a) or real(*a))
    with KnowledgeGraph(Settings.in_memory()) as graph, TestClient(create_app(graph)) as client:
        _import(graph, "weightless", "Weightless model")
        first = _fair(client, "weightless")
        assert 'data-check="A-file"' in first
        _fair(client, "weightless")
        assert len(calls) == 1  # the same content: the report kept
        _import(graph, "weightless", "Weightless model", weights="https://example.org/files/weights.zip")
        assert 'hx-get="/fair/module/weightless"' in _page(client, "/id/module/weightless")  # to be computed again
        second = _fair(client, "weightless")
        assert len(calls) == 2 and 'data-check="A-file"' not in second


def test_the_provenance_graph_links_every_node_to_its_page(client: TestClient) -> None:
    page = _page(client, FLOOD)
    provenance = _section(page, "provenance")
    svg = provenance[provenance.index("<svg"):provenance.index("</figure>")]
    nodes = re.findall(r'<a href="([^"]+)" class="prov-node[^"]*" data-iri="([^"]+)"', svg)
    hrefs = {html.unescape(h) for h, _ in nodes}
    assert {BUILD, RUN, DEPLOYMENT} <= hrefs  # builds, runs, deployments
    assert "https://zenodo.org/records/9127700" in hrefs  # the training dataset, someone else's
    iris = {html.unescape(i): html.unescape(h) for h, i in nodes}
    image = next(i for i in iris if "/entity/image/" in i)
    weights = next(i for i in iris if "/entity/weights/" in i)
    commit = next(i for i in iris if "/entity/commit/" in i)
    assert iris[image].startswith(BUILD + "#node-") and iris[commit].startswith(BUILD + "#node-")
    assert iris[weights].startswith(RUN + "#node-")
    assert svg.count('class="prov-arrow"') >= 8
    assert "prov-root" in svg and 'data-iri="' + BASE + 'module/flood-segmentation-s2"' in svg
    # every link leads somewhere: local pages answer 200, and anchored ones find their entry there
    for href in hrefs:
        if href.startswith("/"):
            path, _, fragment = href.partition("#")
            target = _page(client, path)
            assert not fragment or f'id="{fragment}"' in target, href
    # lineage both ways, as lists
    upstream = provenance[provenance.index('id="upstream-heading"'):provenance.index('id="downstream-heading"')]
    downstream = provenance[provenance.index('id="downstream-heading"'):]
    assert "Add Sentinel-1 VH band to the encoder input" in upstream and "weights of unet" in upstream
    assert "ai4kg-demo » flood-segmentation-s2 » main #14" in downstream
    assert "Add Sentinel-1 VH band" not in downstream  # the commit is upstream only


def test_the_standard_views_are_one_click_away_in_the_right_formats(client: TestClient) -> None:
    views = _section(_page(client, FLOOD), "views")
    links = [h for h in _hrefs(views) if h.startswith(FLOOD + "?")]
    profiles = {re.search(r"profile=([^&]+)", h).group(1) for h in links}
    assert profiles == {"ai4kg", "mldcat-ap", "dcat-ap", "fair4ml", "prov"}
    for href in links:  # followed by a browser, which sends Accept text/html
        response = client.get(href, headers=BROWSER)
        assert response.status_code == 200, href
        expected = "text/turtle" if "format=turtle" in href else "application/ld+json"
        assert response.headers["content-type"].startswith(expected), (href, response.headers["content-type"])
        if "mldcat-ap" in href:
            assert response.headers["content-profile"] == "<https://semiceu.github.io/MLDCAT-AP/releases/3.1.0/>"
    for api in ("/v1/provenance/module/flood-segmentation-s2?format=turtle", "/v1/provenance/lineage?iri="):
        assert any(h.startswith(api) for h in _hrefs(views)), api
    turtle = client.get(FLOOD + "?profile=mldcat-ap&format=turtle", headers=BROWSER).text
    assert "MachineLearningModel" in turtle


def test_programs_still_get_rdf_or_json_from_the_same_url(client: TestClient) -> None:
    turtle = client.get(FLOOD, headers={"accept": "text/turtle"})
    assert turtle.headers["content-type"].startswith("text/turtle") and "ai4kg:Module" in turtle.text
    document = client.get(FLOOD, headers={"accept": "application/json"})
    assert document.headers["content-type"].startswith("application/json")
    assert document.json()["title"] == "Satellite Flood Segmentation"
    assert not client.get(FLOOD).headers["content-type"].startswith("text/html")  # */* is no browser
    jsonld = client.get(FLOOD, params={"format": "jsonld"}, headers=BROWSER)
    assert jsonld.headers["content-type"].startswith("application/ld+json")
    assert client.get(FLOOD, params={"format": "yaml"}).status_code == 422  # named formats only
    build = client.get(BUILD, headers={"accept": "application/n-triples"})
    assert build.headers["content-type"].startswith("application/n-triples")


def test_a_description_with_a_script_is_shown_as_text(client: TestClient) -> None:
    page = _page(client, "/id/module/evil-notes")
    description = _section(page, "description")
    assert "<script>alert" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in description
    assert "<img" not in description and "&lt;img src=x onerror=alert(2)&gt;" in description
    assert "javascript:" not in " ".join(_hrefs(page))  # the Markdown link is not made
    assert "[x](javascript:alert(1))" in description
    assert "<strong>bold</strong>" in description  # Markdown still renders
    assert "script-src 'self'" in client.get("/id/module/evil-notes", headers=BROWSER).headers["content-security-policy"]


def test_an_iri_that_is_no_web_link_is_never_a_link() -> None:
    with KnowledgeGraph(Settings.in_memory()) as graph, TestClient(create_app(graph)) as client:
        _import(graph, "odd-links", "Odd links")
        graph.update(f"""PREFIX ai4kg: <https://w3id.org/ai4kg/ns#>
            INSERT DATA {{ GRAPH <{BASE}module/odd-links> {{
              <{BASE}module/odd-links> ai4kg:documentation <javascript:alert(1)> ; ai4kg:citation <data:text/html,hi> .
            }} }}""")
        page = _page(client, "/id/module/odd-links")
        assert "javascript:alert(1)" in page and "data:text/html,hi" in page  # shown as text
        assert not [h for h in _hrefs(page) if h.startswith(("javascript:", "data:"))]
    assert asset_pages.safe_href("javascript:alert(1)") is None
    assert asset_pages.safe_href("//evil.example/x") is None
    assert asset_pages.safe_href("/id/module/x") == "/id/module/x"
    assert asset_pages.safe_href("https://example.org/a b") is None


def test_a_missing_module_is_a_404_page(client: TestClient) -> None:
    for path in ("/id/module/no-such-module", "/id/module/Bad%20Name", "/id/nothing/x", "/id/build/no-such-build"):
        response = client.get(path, headers=BROWSER)
        assert response.status_code == 404, path
        assert response.headers["content-type"].startswith("text/html")
        assert "<h1>Not found</h1>" in response.text and "Traceback" not in response.text


def test_a_vo_private_module_and_build_are_hidden_from_others(client: TestClient,
                                                              demo: tuple[KnowledgeGraph, str, KeyStore]) -> None:
    _, secret, _ = demo
    member = {"authorization": f"Bearer {secret}"}
    anonymous = client.get("/id/module/secret-coral", headers=BROWSER)
    missing = client.get("/id/module/no-such-module", headers=BROWSER)
    assert anonymous.status_code == missing.status_code == 404
    assert anonymous.text.replace("secret-coral", "X") == missing.text.replace("no-such-module", "X")  # the same page
    assert "<h1>Secret coral counter</h1>" in _page(client, "/id/module/secret-coral", **member)
    assert client.get("/id/build/secret-build", headers=BROWSER).status_code == 404
    assert "Secret rebuild" in _page(client, "/id/build/secret-build", **member)
    # the public module's provenance shows the private build to members only
    assert "Secret rebuild" not in _page(client, FLOOD) and "secret-build" not in _page(client, FLOOD)
    assert "/id/build/secret-build" in _hrefs(_section(_page(client, FLOOD, **member), "provenance"))


def test_the_generic_page_has_human_labels_related_assets_and_provenance_neighbours(client: TestClient) -> None:
    page = _page(client, BUILD)
    assert '<p class="kind">CI build</p>' in page
    assert "<h1>ai4kg-demo » flood-segmentation-s2 » main #14</h1>" in page
    assert re.search(r'<span title="ai4kg:builtFrom">built from</span></th><td>\s*<a href="/id/module/flood-segmentation-s2">'
                     r'Satellite Flood Segmentation</a>', page)
    # the platform's agent, named; it has no page, so no link to a page that is not there
    assert re.search(r'<span title="prov:wasAssociatedWith">associated with</span></th><td>\s*Jenkins\s*</td>', page)
    assert not [h for h in _hrefs(page) if h.startswith(BASE)]
    others = _section(page, "others-heading")
    for stage in ("Checkout", "Unit tests", "Docker image build", "Docker delivery to registry"):
        assert stage in others
    assert "source commit" in others.lower() and "container image" in others.lower()
    provenance = _section(page, "provenance")
    assert FLOOD in _hrefs(provenance)  # the module it used, a neighbour
    assert "Add Sentinel-1 VH band to the encoder input" in provenance
    # a training run: the module it trained, its weights (described in its own record), its deployment
    run = _page(client, RUN)
    assert '<p class="kind">training run</p>' in run and "trained module" in run
    run_links = _hrefs(_section(run, "provenance"))
    assert FLOOD in run_links and DEPLOYMENT in run_links and any(h.startswith(RUN + "#node-") for h in run_links)
    views = _hrefs(_section(run, "views"))
    assert RUN + "?profile=mldcat-ap&format=turtle" in views
    response = client.get(RUN + "?profile=mldcat-ap&format=jsonld", headers=BROWSER)
    assert response.status_code == 200 and response.headers["content-type"].startswith("application/ld+json")


# -- in a real browser ----------------------------------------------------------------------------------

def test_open_a_module_from_the_catalogue_read_its_report_and_follow_its_provenance(chromium: object) -> None:
    with KnowledgeGraph(Settings.in_memory()) as graph:
        load_demo_catalog(graph)
        with browser.dashboard_server(create_app(graph)) as url:
            context = chromium.new_context(bypass_csp=True, viewport={"width": 1280, "height": 900})  # type: ignore[attr-defined]
            try:
                page = context.new_page()
                errors: list[str] = []
                page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
                page.goto(url + "/")
                page.get_by_role("link", name="Satellite Flood Segmentation").click()
                page.wait_for_url("**" + FLOOD)
                assert page.locator("h1").inner_text() == "Satellite Flood Segmentation"
                fair = page.locator("#fair")
                fair.locator("[data-check=A-file]").wait_for()  # the report comes in a request of its own (htmx)
                assert fair.get_by_text("What to add").is_visible()
                assert fair.locator("[data-check=A-file]").is_visible()
                fair.locator("[data-check=A-file] summary").click()
                assert fair.locator("[data-check=A-file]").get_by_text("FAIR principle A1:").is_visible()
                graph_nodes = page.locator("#provenance svg.prov-drawing a.prov-node")
                assert graph_nodes.count() >= 7
                assert page.locator("#provenance svg.prov-drawing").bounding_box()["width"] > 600
                problems = browser.accessibility_problems(page)
                assert not problems, browser.describe(problems)
                browser.screenshot(page, "module")
                page.locator(f'#provenance svg a.prov-node[href="{BUILD}"]').click()
                page.wait_for_url("**" + BUILD)
                assert page.locator("h1").inner_text() == "ai4kg-demo » flood-segmentation-s2 » main #14"
                assert page.locator("#provenance svg.prov-drawing a.prov-node").count() >= 2
                problems = browser.accessibility_problems(page)
                assert not problems, browser.describe(problems)
                browser.screenshot(page, "asset")
                # a node without a page of its own opens its entry on its record's page
                page.go_back()
                page.wait_for_url("**" + FLOOD)
                page.locator('#provenance svg a.prov-node[data-iri*="/entity/image/"]').click()
                page.wait_for_url("**" + BUILD + "#node-*")
                fragment = page.url.split("#", 1)[1]
                assert page.locator(f"#{fragment}").get_by_text("container image").first.is_visible()
                assert not errors, errors
            finally:
                context.close()
