"""The dashboard's catalogue page (`/`): search, facets with counts, sort, pages, rights, escaping;
and the same in a real browser (Chromium), with an accessibility check and a screenshot."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

import browser
from conftest import module_yaml
from ai4kg.api.app import create_app
from ai4kg.catalog import ImportOptions, InlineFile, import_files
from ai4kg.config import Settings
from ai4kg.credentials import KeyStore
from ai4kg.demo import load_demo_catalog
from ai4kg.graph.store import KnowledgeGraph

CARD_TITLE = re.compile(r'<li class="card">\s*<h3><a href="([^"]+)">([^<]+)</a>')


def _cards(html: str) -> list[tuple[str, str]]:
    return CARD_TITLE.findall(html)


def _total(html: str) -> int:
    return int(re.search(r'id="results-heading"[^>]*>(\d+) module', html).group(1))


def _facet_count(html: str, parameter: str, value: str) -> int | None:
    found = re.search(rf'name="{parameter}" value="{re.escape(value)}"[^>]*>\s*<label[^>]*>[^<]*'
                      r'<span class="count">\((\d+)\)</span>', html)
    return int(found.group(1)) if found else None


@pytest.fixture(scope="module")
def real_client(real: KnowledgeGraph) -> Iterator[TestClient]:
    with TestClient(create_app(real)) as client:
        yield client


def test_the_catalogue_lists_every_real_module_in_pages(real_client: TestClient, real: KnowledgeGraph) -> None:
    modules = real.index.count_by_kind(None)["Module"]
    first = real_client.get("/")
    assert first.status_code == 200 and first.headers["content-type"].startswith("text/html")
    assert _total(first.text) == modules > 20  # more than one page
    seen, page, pages = [], first, 0
    while True:
        cards = _cards(page.text)
        assert 0 < len(cards) <= 20
        seen += cards
        pages += 1
        following = re.search(r'<a href="([^"]+)" rel="next">', page.text)
        if not following:
            break
        page = real_client.get(following.group(1).replace("&amp;", "&"))
    assert pages == -(-modules // 20) and len(set(seen)) == modules  # every module once, in pages of 20
    titles = [title for _, title in seen]
    assert titles == sorted(titles)  # sorted by title, the default


def test_facets_count_and_filter_and_combine(real_client: TestClient, real: KnowledgeGraph) -> None:
    page = real_client.get("/").text
    pytorch = _facet_count(page, "library", "pytorch")
    tensorflow = _facet_count(page, "library", "tensorflow")
    assert pytorch and tensorflow
    filtered = real_client.get("/", params={"library": "pytorch"}).text
    assert _total(filtered) == pytorch
    # the chosen facet still counts its other values, so a second library can be added (any of them)
    assert _facet_count(filtered, "library", "tensorflow") == tensorflow
    both = real_client.get("/", params=[("library", "pytorch"), ("library", "tensorflow")]).text
    assert max(pytorch, tensorflow) <= _total(both) <= pytorch + tensorflow
    # facets combine: PyTorch and a task is no more than either
    task = re.search(r'name="task" value="([^"]+)"', filtered).group(1)
    combined = real_client.get("/", params={"library": "pytorch", "task": task}).text
    assert _total(combined) == _facet_count(filtered, "task", task) <= pytorch


def test_search_and_sort(real_client: TestClient) -> None:
    found = real_client.get("/", params={"q": "segmentation"}).text
    assert 0 < _total(found) < 40
    assert _total(real_client.get("/", params={"q": "segmentation", "library": "scikit-learn"}).text) < _total(found)
    newest = real_client.get("/", params={"sort": "-updated"}).text
    dates = re.findall(r"Updated (\d{4}-\d{2}-\d{2})", newest)
    assert len(dates) >= 10 and dates == sorted(dates, reverse=True)


def test_bad_parameters_are_said_and_the_page_still_answers(real_client: TestClient) -> None:
    page = real_client.get("/", params={"sort": "size", "after": "not-a-cursor"})
    assert page.status_code == 200
    assert "sort is one of" in page.text and "&#39;size&#39;" in page.text
    assert "the cursor is not one this API gave out" in page.text


@pytest.fixture()
def private_catalogue(tmp_path) -> Iterator[tuple[TestClient, str]]:
    """A public module whose title holds a script, and a VO-private module; an API key of that VO."""
    keys = KeyStore(None)
    _, secret = keys.create("member", frozenset({"vo.secret.eu"}))
    with KnowledgeGraph(Settings.in_memory()) as graph:
        for name, title, vo, visibility in [("open-flood", "Open flood <script>alert(1)</script>", "default", "public"),
                                            ("secret-coral", "Secret coral counter", "vo.secret.eu",
                                             "virtual-organisation")]:
            [report] = import_files(graph, [InlineFile(f"{name}.yml", module_yaml(name, title, "<b>bold</b>"))],
                                    ImportOptions(identifier=name, vo=vo, visibility=visibility))
            assert report.status == "imported", report
        with TestClient(create_app(graph, keys=keys)) as client:
            yield client, secret


def test_a_vos_private_module_is_listed_only_for_its_members(private_catalogue: tuple[TestClient, str]) -> None:
    client, secret = private_catalogue
    anonymous = client.get("/").text
    assert "Secret coral" not in anonymous and "vo.secret.eu" not in anonymous and _total(anonymous) == 1
    member = client.get("/", headers={"Authorization": f"Bearer {secret}"}).text
    assert "Secret coral counter" in member and _total(member) == 2
    assert 'value="vo.secret.eu"' in member  # the VO facet


def test_user_text_is_escaped(private_catalogue: tuple[TestClient, str]) -> None:
    client, _ = private_catalogue
    page = client.get("/", params={"q": '"><script>alert(2)</script>'})
    assert "<script>alert" not in page.text
    listed = client.get("/").text
    assert "<script>alert(1)" not in listed and "&lt;script&gt;alert(1)&lt;/script&gt;" in listed
    assert "script-src 'self'" in client.get("/").headers["content-security-policy"]


def test_in_a_browser_search_and_filter_the_demo_catalogue(chromium) -> None:
    with KnowledgeGraph(Settings.in_memory()) as graph:
        load_demo_catalog(graph)
        with browser.dashboard_server(create_app(graph)) as url:
            context = chromium.new_context(bypass_csp=True)
            page = context.new_page()
            page.goto(url + "/")
            assert page.title().startswith("Catalogue")
            everything = int(page.locator("#results-heading").inner_text().split()[0])
            page.get_by_label("Search modules").fill("flood")
            page.get_by_label("Search modules").press("Enter")
            page.wait_for_url(re.compile(r"q=flood"))
            assert page.locator(".card h3 a").first.inner_text() == "Satellite Flood Segmentation"
            page.goto(url + "/")
            page.get_by_label(re.compile(r"^PyTorch")).check()  # a facet submits the form when it changes
            page.wait_for_url(re.compile(r"library=pytorch"))
            filtered = int(page.locator("#results-heading").inner_text().split()[0])
            assert 0 < filtered < everything
            assert page.get_by_label(re.compile(r"^PyTorch")).is_checked()
            problems = browser.accessibility_problems(page)
            assert not problems, browser.describe(problems)
            page.set_viewport_size({"width": 1280, "height": 900})
            browser.screenshot(page, "catalogue")
            page.set_viewport_size({"width": 390, "height": 844})  # a phone
            assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")
            page.keyboard.press("Tab")  # the first stop is the skip link
            assert page.evaluate("document.activeElement.className") == "skip"
            missing = page.goto(url + "/id/module/no-such-module")
            assert missing.status == 404 and page.locator("h1").inner_text() == "Not found"
            problems = browser.accessibility_problems(page)
            assert not problems, browser.describe(problems)
            context.close()
