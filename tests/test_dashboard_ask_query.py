"""The dashboard's Ask page (/ask) and SPARQL page (/query), issue 16.

HTTP-level tests with TestClient on the demo catalogue (answers, the SPARQL under them and its link
to /query, ambiguous and refused questions, bad questions shown next to the field; SELECT, ASK,
CONSTRUCT, a syntax error, an update refused with nothing changed, downloads), VO isolation with API
keys, user text escaped; and one test in real Chromium (ask, follow "Run at /query", see the table;
axe-core on both pages; screenshots docs/screenshots/ask.png and query.png).
"""

from __future__ import annotations

import html
import re
from html.parser import HTMLParser
from typing import Any, Iterator
from urllib.parse import parse_qs, urlsplit

import pytest
from fastapi.testclient import TestClient

from ai4kg.api.app import create_app
from ai4kg.assistant import ask
from ai4kg.catalog import ImportOptions, InlineFile, import_files
from ai4kg.config import Settings
from ai4kg.credentials import KeyStore
from ai4kg.demo import load_demo_catalog
from ai4kg.graph.store import KnowledgeGraph
from conftest import module_yaml

MODULE = "https://w3id.org/ai4kg/id/module/"
PREFIX = "PREFIX ai4kg: <https://w3id.org/ai4kg/ns#>\n"
TITLES = PREFIX + "SELECT ?m ?title WHERE { ?m a ai4kg:Module ; ai4kg:title ?title } ORDER BY ?title"
SCRIPT = "<script>alert('x')</script>"


class Page(HTMLParser):
    """What the tests read of a page: its links, its tables' cells, and the text of elements by id or class."""

    def __init__(self, text: str):
        super().__init__(convert_charrefs=True)
        self.links: list[tuple[str, str]] = []
        self.tables: list[list[list[str]]] = []
        self.by_id: dict[str, str] = {}
        self.by_class: dict[str, list[str]] = {}
        self.attributes: dict[str, dict[str, str]] = {}
        self._open: list[tuple[str, dict[str, str], list[str]]] = []
        self.feed(text)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = {name: value or "" for name, value in attrs}
        if "id" in found:
            self.attributes[found["id"]] = found
        if tag == "table":
            self.tables.append([])
        elif tag == "tr" and self.tables:
            self.tables[-1].append([])
        if tag in ("input", "meta", "link", "br", "img"):
            return
        self._open.append((tag, found, []))

    def handle_endtag(self, tag: str) -> None:
        while self._open:
            name, attrs, parts = self._open.pop()
            text = " ".join("".join(parts).split())
            if self._open:
                self._open[-1][2].append("".join(parts))
            if name == "a" and "href" in attrs:
                self.links.append((attrs["href"], text))
            if name in ("td", "th") and self.tables and self.tables[-1]:
                self.tables[-1][-1].append(text)
            if "id" in attrs:
                self.by_id[attrs["id"]] = "".join(parts) if name in ("pre", "textarea", "code") else text
            for cls in attrs.get("class", "").split():
                self.by_class.setdefault(cls, []).append("".join(parts) if name == "pre" else text)
            if name == tag:
                break

    def handle_data(self, data: str) -> None:
        if self._open:
            self._open[-1][2].append(data)

    def link(self, text: str) -> str:
        return next(href for href, shown in self.links if shown == text)


@pytest.fixture(scope="module")
def demo() -> Iterator[KnowledgeGraph]:
    with KnowledgeGraph(Settings.in_memory()) as graph:
        load_demo_catalog(graph)
        yield graph


@pytest.fixture(scope="module")
def client(demo: KnowledgeGraph) -> TestClient:
    return TestClient(create_app(demo, KeyStore(None)))


@pytest.fixture(scope="module")
def two_vos() -> Iterator[tuple[TestClient, KnowledgeGraph, dict[str, str]]]:
    """A public module, one private to vo.secret.eu, and one whose title and description hold a script;
    a client, and the Authorization headers of a member of the VO and of someone outside it."""
    keys = KeyStore(None)
    with KnowledgeGraph(Settings.in_memory()) as graph:
        for name, title, vo, visibility, description in [
                ("open-flood", "Open flood mapper", "default", "public", "A module."),
                ("secret-coral", "Secret coral counter", "vo.secret.eu", "virtual-organisation", "A module."),
                ("evil-title", f"Evil {SCRIPT} title", "default", "public", f"Look: {SCRIPT} <img src=x onerror=alert(1)>")]:
            [report] = import_files(graph, [InlineFile(f"{name}.yml", module_yaml(name, title, description))],
                                    ImportOptions(identifier=name, vo=vo, visibility=visibility))
            assert report.status == "imported", report
        member = "Bearer " + keys.create("coral counter", frozenset({"vo.secret.eu"}))[1]
        outsider = "Bearer " + keys.create("someone else", frozenset({"vo.other.eu"}))[1]
        yield TestClient(create_app(graph, keys)), graph, {"member": member, "outsider": outsider}


def _ask(client: TestClient, question: str, **headers: str) -> tuple[int, Page, str]:
    response = client.get("/ask", params={"q": question}, headers=headers)
    assert response.headers["content-type"].startswith("text/html")
    return response.status_code, Page(response.text), response.text


def _query(client: TestClient, query: str, **headers: str) -> tuple[int, Page, str]:
    response = client.get("/query", params={"query": query}, headers=headers)
    assert response.headers["content-type"].startswith("text/html")
    return response.status_code, Page(response.text), response.text


def _first_column(page: Page) -> list[str]:
    [table] = page.tables
    return [row[0] for row in table[1:]]


# -- Ask ------------------------------------------------------------------------------------------------
def test_the_ask_page_offers_a_question_box_and_examples(client: TestClient) -> None:
    response = client.get("/ask")
    page = Page(response.text)
    assert response.status_code == 200 and page.attributes["q"]["name"] == "q"
    assert '<label for="q">' in response.text
    examples = [href for href, _ in page.links if href.startswith("/ask?q=")]
    assert len(examples) >= 4
    status, answered, _ = _ask(client, parse_qs(urlsplit(examples[0]).query)["q"][0])
    assert status == 200 and answered.by_class["answer-text"]


def test_a_question_is_answered_with_its_rows_its_sparql_and_a_link_that_runs_it(
        client: TestClient, demo: KnowledgeGraph) -> None:
    question = "Which modules use PyTorch?"
    status, page, text = _ask(client, question)
    expected = ask(demo, question)
    assert status == 200 and expected.status == "answered" and len(expected.values) == 5
    assert page.by_class["answer-text"] == [expected.text]
    assert page.attributes["q"]["value"] == question  # the question stays in the box
    assert "library PyTorch" in page.by_class["meta"][0]  # the interpretation
    # the rows: each module linked to its page, named by its title
    assert sorted(_first_column(page)) == sorted(demo.index.cards(expected.values)[iri]["title"] for iri in expected.values)
    for iri in expected.values:
        assert ("/id/module/" + iri.removeprefix(MODULE), demo.index.cards([iri])[iri]["title"]) in page.links
    # the SPARQL it ran, and a link that opens the SPARQL page with it, which gives the same rows
    [shown] = page.by_class["sparql"]
    assert html.unescape(shown) == expected.sparql
    run = page.link("Run at /query")
    assert urlsplit(run).path == "/query" and parse_qs(urlsplit(run).query)["query"] == [expected.sparql]
    again = client.get(run)
    assert again.status_code == 200
    rerun = Page(again.text)
    assert html.unescape(rerun.by_id["query"]) == expected.sparql  # filled into the editor
    links = {href for href, _ in rerun.links}
    assert sorted(_first_column(rerun)) == sorted(expected.values)
    assert all("/id/module/" + iri.removeprefix(MODULE) in links for iri in expected.values)


def test_a_count_and_a_group_are_answered_in_words(client: TestClient) -> None:
    _, count, _ = _ask(client, "How many modules use PyTorch?")
    assert count.by_class["answer-text"] == ["5 modules."]
    _, group, _ = _ask(client, "How many modules per library?")
    [table] = group.tables
    assert table[0] == ["value", "count"] and ["PyTorch", "5"] in table  # concepts named by their labels


def test_an_ambiguous_name_offers_its_candidates_each_asking_again(client: TestClient) -> None:
    status, page, _ = _ask(client, "What dataset was the flood module trained on?")
    assert status == 200 and page.by_id["answer-heading"] == "Which one do you mean?"
    assert page.by_class["answer-text"] == ["'flood' fits 3 assets. Which one do you mean?"]
    candidates = [(href, shown) for href, shown in page.links if shown.startswith("Ask about ")]
    assert ("/id/module/flood-segmentation-s2", "its page") in page.links
    assert len(candidates) == 3
    module = next(href for href, shown in candidates if shown == "Ask about Satellite Flood Segmentation")
    assert parse_qs(urlsplit(module).query)["q"] == ["What dataset was the Satellite Flood Segmentation module trained on?"]
    _, chosen, _ = _ask(client, parse_qs(urlsplit(module).query)["q"][0])
    assert chosen.by_id["answer-heading"] == "Answer"
    assert "https://zenodo.org/records/9127700" in chosen.by_class["answer-text"][0]


def test_a_refused_question_says_why_and_runs_nothing(client: TestClient) -> None:
    status, page, text = _ask(client, "What is the price of a module?")
    assert status == 200 and page.by_id["answer-heading"] == "Not answered"
    assert "does not hold" in page.by_class["answer-text"][0]
    assert any(m.startswith("Why: the catalogue records no 'price'") for m in page.by_class["meta"])
    assert "sparql" not in page.by_class and "Run at /query" not in text


@pytest.mark.parametrize("question, message", [("", "question: must not be empty"), ("   ", "question: must not be empty"),
                                               ("a " * 300, "question: at most 500 characters"),
                                               ("bell\x07", "control character U+0007")])
def test_a_bad_question_is_shown_next_to_the_field(client: TestClient, question: str, message: str) -> None:
    status, page, _ = _ask(client, question)
    assert status == 422
    assert message in page.by_id["q-error"]
    assert page.attributes["q"]["aria-invalid"] == "true" and "q-error" in page.attributes["q"]["aria-describedby"]
    assert "answer-heading" not in page.by_id


# -- SPARQL -----------------------------------------------------------------------------------------------
def test_the_editor_comes_with_the_usual_prefixes(client: TestClient) -> None:
    response = client.get("/query")
    page = Page(response.text)
    assert response.status_code == 200 and '<label for="query">' in response.text
    editor = html.unescape(page.by_id["query"])
    for name in ("ai4kg", "prov", "rdfs", "rdf", "xsd", "dcterms", "skos", "dcat"):
        assert re.search(rf"^PREFIX {name}: <[^>]+>$", editor, re.M), name
    assert "results-heading" not in page.by_id  # nothing runs until asked
    assert "updates are refused" in page.by_id["query-hint"]
    # the editor's own text runs as it is, and so does each example
    status, ran, _ = _query(client, editor)
    assert status == 200 and len(ran.tables[0]) == 1 + 8  # the demo's 8 modules
    examples = [href for href, shown in page.links if href.startswith("/query?query=")]
    assert len(examples) >= 4
    assert all(client.get(href).status_code == 200 for href in examples)


def test_a_select_is_a_table_with_iris_linked(client: TestClient, demo: KnowledgeGraph) -> None:
    status, page, _ = _query(client, TITLES)
    assert status == 200 and page.by_id["results-heading"] == "8 rows"
    [table] = page.tables
    titles = [row[1] for row in table[1:]]
    assert table[0] == ["m", "title"] and titles == sorted(titles) and "Satellite Flood Segmentation" in titles
    assert ("/id/module/flood-segmentation-s2", MODULE + "flood-segmentation-s2") in page.links
    typed = _query(client, "SELECT (1 AS ?n) (\"hi\"@en AS ?s) WHERE {}")[1]
    assert typed.tables[0][1] == ["1 xsd:integer", "hi @en"]


def test_an_ask_is_yes_or_no(client: TestClient) -> None:
    yes = _query(client, PREFIX + "ASK { ?m ai4kg:title \"Satellite Flood Segmentation\" }")[1]
    no = _query(client, PREFIX + "ASK { ?m ai4kg:title \"No such module\" }")[1]
    assert yes.by_class["boolean"] == ["Yes (true)"] and no.by_class["boolean"] == ["No (false)"]


def test_a_construct_is_turtle(client: TestClient) -> None:
    query = PREFIX + "CONSTRUCT { ?m ai4kg:title ?t } WHERE { ?m a ai4kg:Module ; ai4kg:title ?t }"
    status, page, _ = _query(client, query)
    assert status == 200 and page.by_id["results-heading"] == "8 triples"
    [turtle] = page.by_class["turtle"]
    assert "ai4kg:title \"Satellite Flood Segmentation\"" in html.unescape(turtle)
    import pyoxigraph as ox

    assert len(list(ox.parse(html.unescape(turtle).encode(), format=ox.RdfFormat.TURTLE))) == 8
    download = client.get(page.link("Turtle"))
    assert download.status_code == 200 and download.headers["content-type"].startswith("text/turtle")
    assert "attachment" in download.headers["content-disposition"]
    assert len(list(ox.parse(download.content, format=ox.RdfFormat.TURTLE))) == 8


def test_results_download_in_each_format_and_open_at_the_endpoint(client: TestClient) -> None:
    page = _query(client, TITLES)[1]
    csv = client.get(page.link("CSV"))
    assert csv.status_code == 200 and csv.headers["content-type"].startswith("text/csv")
    assert csv.text.splitlines()[0] == "m,title" and len(csv.text.splitlines()) == 9
    assert client.get(page.link("SPARQL JSON")).json()["head"]["vars"] == ["m", "title"]
    endpoint = client.get(page.link("Open at /sparql"), headers={"accept": "application/sparql-results+json"})
    assert len(endpoint.json()["results"]["bindings"]) == 8
    wrong = client.get("/query/download", params={"query": TITLES, "format": "exe"})
    assert wrong.status_code == 400 and "format is one of" in wrong.text


def test_a_syntax_error_is_shown_next_to_the_editor_with_the_engines_message(client: TestClient, demo: KnowledgeGraph) -> None:
    bad = "SELECT ?m WHERE { ?m a <https://w3id.org/ai4kg/ns#Module> "
    status, page, _ = _query(client, bad)
    try:
        demo.query(bad)
    except SyntaxError as exc:
        engine = str(exc)
    assert status == 400
    assert page.by_id["query-error"] == f"Invalid SPARQL query: {engine}"
    assert page.attributes["query"]["aria-invalid"] == "true"
    assert html.unescape(page.by_id["query"]) == bad  # the text stays in the editor, to be fixed
    assert "results-heading" not in page.by_id
    empty = _query(client, "  ")
    assert empty[0] == 400 and "No query given" in empty[1].by_id["query-error"]


def test_the_endpoints_limits_apply() -> None:
    from dataclasses import replace

    with KnowledgeGraph(replace(Settings.in_memory(), sparql_result_limit=3)) as small:
        import_files(small, [InlineFile(f"m{i}.yml", module_yaml(f"m{i}", f"Module {i}")) for i in range(4)],
                     ImportOptions())
        client = TestClient(create_app(small, KeyStore(None)))
        status, page, _ = _query(client, TITLES)
        assert status == 422 and "result limit of 3 rows" in page.by_id["query-error"]
        status, page, _ = _query(client, "SELECT * WHERE { SERVICE <http://example.org/sparql> { ?s ?p ?o } }")
        assert status == 400 and "Federated queries are off" in page.by_id["query-error"]


UPDATES = ["INSERT DATA { GRAPH <urn:x> { <urn:a> <urn:b> <urn:c> } }",
           "# an update\nPREFIX ai4kg: <https://w3id.org/ai4kg/ns#>\nDELETE WHERE { GRAPH ?g { ?s ai4kg:title ?t } }",
           "CLEAR ALL", "DROP GRAPH <https://w3id.org/ai4kg/id/module/flood-segmentation-s2>",
           "WITH <urn:x> DELETE { ?s ?p ?o } WHERE { ?s ?p ?o }"]


@pytest.mark.parametrize("update", UPDATES)
def test_an_update_is_refused_and_changes_nothing(demo: KnowledgeGraph, update: str) -> None:
    keys = KeyStore(None)
    admin = "Bearer " + keys.create("admin", frozenset(), admin=True)[1]
    client = TestClient(create_app(demo, keys))
    before = len(demo.store)
    for headers in ({}, {"authorization": admin}):  # not even the administrator's: this page reads
        status, page, _ = _query(client, update, **headers)
        assert status == 400 and "only reads" in page.by_id["query-error"] and "nothing was changed" in page.by_id["query-error"]
        download = client.get("/query/download", params={"query": update, "format": "json"}, headers=headers)
        assert download.status_code == 400
    assert len(demo.store) == before
    assert _query(client, PREFIX + "ASK { ?m ai4kg:title \"Satellite Flood Segmentation\" }")[1].by_class["boolean"] == ["Yes (true)"]


# -- rights and escaping -----------------------------------------------------------------------------------------
def test_a_vo_private_module_appears_only_for_its_members(two_vos: tuple[TestClient, KnowledgeGraph, dict[str, str]]) -> None:
    client, _, keys = two_vos
    private = MODULE + "secret-coral"
    for who, sees in [(None, False), ("outsider", False), ("member", True)]:
        headers = {"authorization": keys[who]} if who else {}
        _, counted, _ = _ask(client, "How many modules are there?", **headers)
        assert counted.by_class["answer-text"] == ["3 modules." if sees else "2 modules."], who
        _, listed, text = _ask(client, "Which modules use PyTorch?", **headers)
        assert ("Secret coral counter" in _first_column(listed)) is sees and ("secret-coral" in text) is sees, who
        _, looked_up, text = _ask(client, "What is the docker image of the Secret coral counter?", **headers)
        assert ("example/secret-coral" in text) is sees, who
        _, titles, text = _query(client, TITLES, **headers)
        assert ("Secret coral counter" in [row[1] for row in titles.tables[0][1:]]) is sees, who
        _, named, _ = _query(client, f"SELECT ?p ?o WHERE {{ GRAPH <{private}> {{ <{private}> ?p ?o }} }}", **headers)
        assert (named.by_id["results-heading"] != "0 rows") is sees, who
        download = client.get("/query/download", params={"query": TITLES, "format": "csv"}, headers=headers)
        assert ("Secret coral counter" in download.text) is sees, who
        assert ("secret" in client.get("/query", params={"query": "SELECT ?g WHERE { GRAPH ?g {} }"},
                                       headers=headers).text) is sees, who


def test_user_text_is_escaped_everywhere(two_vos: tuple[TestClient, KnowledgeGraph, dict[str, str]]) -> None:
    client, _, _ = two_vos
    pages = [client.get("/ask", params={"q": f"Which modules use {SCRIPT}?"}),
             client.get("/ask", params={"q": SCRIPT}),
             client.get("/ask", params={"q": "Which modules use PyTorch?"}),  # a title with a script, in the answer
             client.get("/ask", params={"q": "What is the description of the evil-title module?"}),
             client.get("/query", params={"query": SCRIPT}),  # a syntax error that quotes the text
             client.get("/query", params={"query": f"SELECT (\"{SCRIPT}\" AS ?x) (<javascript:alert(1)> AS ?y) WHERE {{}}"}),
             client.get("/query", params={"query": TITLES}),
             client.get("/query", params={"query": PREFIX + "CONSTRUCT { ?m ai4kg:description ?d } WHERE { ?m ai4kg:description ?d }"})]
    for response in pages:
        assert "<script>alert" not in response.text and "<img src=x" not in response.text, response.url
        assert 'href="javascript:' not in response.text.lower(), response.url
    assert "&lt;script&gt;alert(" in pages[0].text and "Evil &lt;script&gt;" in pages[2].text
    assert "&lt;img src=x onerror=alert(1)&gt;" in pages[3].text
    assert "&lt;script&gt;alert(" in pages[5].text and "javascript:alert(1)" in pages[5].text  # shown, as text
    assert "Evil &lt;script&gt;" in pages[6].text and "&lt;script&gt;" in pages[7].text
    assert all(r.headers["content-security-policy"].startswith("default-src 'self'") for r in pages)


# -- in a real browser ------------------------------------------------------------------------------------------
def test_ask_then_run_its_query_in_chromium(chromium: Any, demo: KnowledgeGraph) -> None:
    import browser

    with browser.dashboard_server(create_app(demo, KeyStore(None))) as url:
        context = chromium.new_context(bypass_csp=True, viewport={"width": 1280, "height": 900})
        page = context.new_page()
        errors: list[str] = []
        page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
        page.on("pageerror", lambda error: errors.append(str(error)))
        try:
            page.goto(f"{url}/ask")
            page.get_by_label("Your question").fill("Which modules use PyTorch?")
            page.get_by_role("button", name="Ask").click()
            page.wait_for_url("**/ask?q=Which+modules+use+PyTorch%3F")
            answer = page.locator("table.answer-rows tbody tr")
            assert answer.count() == 5
            assert page.get_by_role("link", name="Satellite Flood Segmentation").get_attribute("href") == \
                "/id/module/flood-segmentation-s2"
            problems = browser.accessibility_problems(page)
            assert not problems, browser.describe(problems)
            browser.screenshot(page, "ask")
            sparql = page.locator("pre.sparql").inner_text()

            page.get_by_role("link", name="Run at /query").click()
            page.wait_for_url("**/query?query=*")
            assert page.get_by_label("SPARQL query").input_value() == sparql
            rows = page.locator("table.sparql-results tbody tr")
            assert rows.count() == 5 and page.locator("#results-heading").inner_text() == "5 rows"
            assert page.locator("table.sparql-results a[href='/id/module/flood-segmentation-s2']").count() == 1
            # the editor as it opens (the prefixes filled in), run with the keyboard: Ctrl+Enter
            page.get_by_role("link", name="SPARQL", exact=True).click()
            page.wait_for_url(f"{url}/query")
            editor = page.get_by_label("SPARQL query")
            assert editor.input_value().startswith("PREFIX ai4kg: <https://w3id.org/ai4kg/ns#>\nPREFIX prov:")
            editor.press("Control+End")
            editor.press("Control+Enter")
            page.wait_for_url("**/query?query=PREFIX*")
            assert page.locator("#results-heading").inner_text() == "8 rows"
            assert page.locator("table.sparql-results tbody tr").first.inner_text().endswith("AI Development Environment")
            problems = browser.accessibility_problems(page)
            assert not problems, browser.describe(problems)
            browser.screenshot(page, "query")
            assert not errors, errors
        finally:
            context.close()
