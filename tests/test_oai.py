"""OAI-PMH 2.0 at /oai (issue 4): every verb and error by GET and POST, every response checked against
the official XSDs in ../shared/standards/oai-pmh/, real harvesters (Sickle, oaipmh-scythe) against
uvicorn on loopback, tombstones, from/until, sets, resumption tokens across a restart and while
records are added, VO isolation, and injection strings in every argument."""

from __future__ import annotations

import base64
import contextlib
import json
import os
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any, Iterator
from urllib.parse import urlencode

import pyoxigraph as ox
import pytest
from fastapi.testclient import TestClient
from lxml import etree

from ai4kg.api import oai
from ai4kg.api.app import create_app
from ai4kg.catalog import ImportOptions, import_files
from ai4kg.config import Settings
from ai4kg.credentials import KeyStore
from ai4kg.graph import search as search_module
from ai4kg.graph.store import AssetWrite, KnowledgeGraph
from ai4kg.graph.views import VIEWS

from conftest import serving as serving_app
from conftest import MODULES, SHARED, valid_module_files

STANDARDS = SHARED / "standards" / "oai-pmh"
NS = {"o": "http://www.openarchives.org/OAI/2.0/", "dc": "http://purl.org/dc/elements/1.1/",
      "oai_dc": "http://www.openarchives.org/OAI/2.0/oai_dc/", "rdf": "http://www.w3.org/1999/02/22-rdf-syntax-ns#"}
BASE = "https://w3id.org/ai4kg/id/"
PRIVATE_FILE = MODULES / "ai4os-demo-app__ai4-metadata.yml"
PRIVATE = "oai:w3id.org:module/ai4os-demo-app"
SECRET_VO = "vo.secret.eu"
YOLO = "oai:w3id.org:module/ai4os-yolo-torch"
PAGE = 7


def v2_files() -> list[Path]:
    """The valid ai4-metadata 2.x files (one per module), the private one left out."""
    return [p for p in valid_module_files() if p.name.endswith("__ai4-metadata.yml") and p != PRIVATE_FILE]
VERBS = ["Identify", "ListMetadataFormats", "ListSets", "GetRecord", "ListIdentifiers", "ListRecords"]


# -- helpers -----------------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def schema() -> etree.XMLSchema:
    """The official OAI-PMH, oai_dc and oai-identifier XSDs (and rdf-lax for RDF payloads), offline."""
    os.environ["XML_CATALOG_FILES"] = str(STANDARDS / "catalog.xml")
    return etree.XMLSchema(etree.parse(str(STANDARDS / "oai-pmh-with-oai_dc.xsd")))


class Harvester:
    """Requests to /oai through a TestClient; every response must be valid against the XSDs."""

    def __init__(self, client: TestClient, schema: etree.XMLSchema):
        self.client, self.schema = client, schema

    def __call__(self, method: str = "GET", params: list[tuple[str, str]] | dict[str, str] | None = None,
                 **kwargs: str) -> etree._Element:
        items = list(params.items()) if isinstance(params, dict) else list(params or [])
        items += list(kwargs.items())
        if method == "GET":
            response = self.client.get("/oai", params=items)
        else:
            response = self.client.post("/oai", content=urlencode(items),
                                        headers={"content-type": "application/x-www-form-urlencoded"})
        assert response.status_code == 200, response.text
        assert response.headers["content-type"] == "text/xml; charset=utf-8"
        root = etree.fromstring(response.content)
        assert self.schema.validate(root), (self.schema.error_log, response.text[:3000])
        return root


def error(root: etree._Element) -> str | None:
    found = root.find("o:error", NS)
    return None if found is None else found.get("code")


def request_attributes(root: etree._Element) -> dict[str, str]:
    return dict(root.find("o:request", NS).attrib)


def identifiers(root: etree._Element) -> list[str]:
    return [e.text for e in root.iterfind(".//o:header/o:identifier", NS)]


def harvest(call: Harvester, verb: str, method: str = "GET", **params: str) -> tuple[list[etree._Element], list[etree._Element]]:
    """Every header of a list (following resumption tokens) and each response's token element."""
    headers, tokens = [], []
    root = call(method, verb=verb, **params)
    while True:
        if error(root) == "noRecordsMatch" and not headers:
            return [], []
        assert error(root) is None, etree.tostring(root)
        headers += root.findall(f"o:{verb}//o:header", NS)
        token = root.find(f"o:{verb}/o:resumptionToken", NS)
        if token is None:
            return headers, tokens
        tokens.append(token)
        if not token.text:
            return headers, tokens
        root = call(method, verb=verb, resumptionToken=token.text)


def all_records(call: Harvester, **params: str) -> list[bytes]:
    """Every record element of a ListRecords (following resumption tokens), serialised."""
    records: list[bytes] = []
    root = call(verb="ListRecords", **params)
    while True:
        assert error(root) is None, etree.tostring(root)
        records += [etree.tostring(r) for r in root.iterfind("o:ListRecords/o:record", NS)]
        token = root.find("o:ListRecords/o:resumptionToken", NS)
        if token is None or not token.text:
            return records
        root = call(verb="ListRecords", resumptionToken=token.text)


def replicated(template: list[ox.Quad], iri: str, name: str, title: str) -> AssetWrite:
    """A copy of a module's quads as another module (identifier, title and IRIs replaced)."""
    old_iri = next(q.graph_name.value for q in template)
    old_name = old_iri.rsplit("/", 1)[-1]
    graph = ox.NamedNode(iri)

    def term(t):  # type: ignore[no-untyped-def]
        if isinstance(t, ox.NamedNode) and t.value.startswith(old_iri):
            return ox.NamedNode(iri + t.value[len(old_iri):])
        if isinstance(t, ox.Literal) and t.value == old_name:
            return ox.Literal(name)
        return t

    quads = [ox.Quad(term(q.subject), q.predicate, term(q.object), graph) for q in template
             if q.predicate.value != "https://w3id.org/ai4kg/ns#title"]
    quads.append(ox.Quad(graph, ox.NamedNode("https://w3id.org/ai4kg/ns#title"), ox.Literal(title), graph))
    return AssetWrite(iri, quads)


@contextlib.contextmanager
def serving(app: Any) -> Iterator[str]:
    """The app under uvicorn on a free loopback port: the URL of its /oai."""
    with serving_app(app) as base:
        yield base + "/oai"


# -- a catalogue of the real modules (one private to a VO), on disk ----------------------------------------
@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("oai") / "data"


@pytest.fixture(scope="module")
def graph(data_dir: Path) -> Iterator[KnowledgeGraph]:
    with KnowledgeGraph(Settings(data_dir=data_dir)) as kg:
        reports = import_files(kg, v2_files())
        assert all(r.status == "imported" for r in reports)
        [report] = import_files(kg, [PRIVATE_FILE], ImportOptions(vo=SECRET_VO, visibility="virtual-organisation"))
        assert report.status == "imported"
        yield kg


@pytest.fixture(scope="module")
def keys() -> tuple[KeyStore, str, str, str]:
    store = KeyStore(None)
    member = store.create("member", frozenset({SECRET_VO}))[1]
    other = store.create("other", frozenset({"vo.other.eu"}))[1]
    admin = store.create("admin", frozenset(), admin=True)[1]
    return store, member, other, admin


@pytest.fixture
def app(graph: KnowledgeGraph, keys, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("AI4KG_OAI_PAGE_SIZE", str(PAGE))
    return create_app(graph, keys[0])


@pytest.fixture
def call(app, schema: etree.XMLSchema) -> Harvester:  # type: ignore[no-untyped-def]
    return Harvester(TestClient(app), schema)


# -- verbs ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("method", ["GET", "POST"])
def test_identify(call: Harvester, graph: KnowledgeGraph, method: str) -> None:
    root = call(method, verb="Identify")
    identify = root.find("o:Identify", NS)
    assert identify.findtext("o:baseURL", namespaces=NS) == "http://testserver/oai"
    assert root.findtext("o:request", namespaces=NS) == "http://testserver/oai"
    assert request_attributes(root) == {"verb": "Identify"}
    assert identify.findtext("o:protocolVersion", namespaces=NS) == "2.0"
    assert identify.findtext("o:deletedRecord", namespaces=NS) == "persistent"
    assert identify.findtext("o:granularity", namespaces=NS) == "YYYY-MM-DDThh:mm:ssZ"
    assert identify.findtext("o:repositoryName", namespaces=NS) == "ai4kg catalogue of AI modules"
    assert "@" in identify.findtext("o:adminEmail", namespaces=NS)
    assert identify.findtext("o:earliestDatestamp", namespaces=NS) == oai.datestamp(graph.index.log_earliest())
    description = identify.find("o:description/{http://www.openarchives.org/OAI/2.0/oai-identifier}oai-identifier",
                                NS)
    assert description.findtext("{http://www.openarchives.org/OAI/2.0/oai-identifier}repositoryIdentifier") == "w3id.org"


def test_identify_settings_from_the_environment(graph: KnowledgeGraph, schema, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("AI4KG_OAI_ADMIN_EMAIL", "harvest@example.eu")
    monkeypatch.setenv("AI4KG_OAI_REPOSITORY_NAME", "Test repository")
    monkeypatch.setenv("AI4KG_OAI_REPOSITORY_ID", "repo.example.eu")
    call = Harvester(TestClient(create_app(graph)), schema)
    identify = call(verb="Identify").find("o:Identify", NS)
    assert identify.findtext("o:adminEmail", namespaces=NS) == "harvest@example.eu"
    assert identify.findtext("o:repositoryName", namespaces=NS) == "Test repository"
    headers, _ = harvest(call, "ListIdentifiers", metadataPrefix="oai_dc")
    assert headers and all(h.findtext("o:identifier", namespaces=NS).startswith("oai:repo.example.eu:module/")
                           for h in headers)
    monkeypatch.setenv("AI4KG_OAI_PAGE_SIZE", "0")
    with pytest.raises(ValueError, match="AI4KG_OAI_PAGE_SIZE"):
        create_app(graph)


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_list_metadata_formats(call: Harvester, graph: KnowledgeGraph, method: str) -> None:
    root = call(method, verb="ListMetadataFormats")
    prefixes = [e.text for e in root.iterfind(".//o:metadataPrefix", NS)]
    assert prefixes == ["oai_dc", "dcat", "mldcat_ap"]
    assert root.findtext(".//o:metadataFormat[o:metadataPrefix='oai_dc']/o:metadataNamespace", namespaces=NS) == NS["oai_dc"]
    root = call(method, verb="ListMetadataFormats", identifier=YOLO)
    assert [e.text for e in root.iterfind(".//o:metadataPrefix", NS)] == ["oai_dc", "dcat", "mldcat_ap"]
    assert request_attributes(root) == {"verb": "ListMetadataFormats", "identifier": YOLO}
    assert error(call(method, verb="ListMetadataFormats", identifier="oai:w3id.org:module/nothing")) == "idDoesNotExist"
    assert error(call(method, verb="ListMetadataFormats", identifier="oai:elsewhere.org:module/ai4os-yolo-torch")) \
        == "idDoesNotExist"


def test_formats_follow_the_kind_and_no_metadata_formats(call: Harvester, graph: KnowledgeGraph,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    iri = BASE + "datacenter/oai-test-dc"
    g = ox.NamedNode(iri)
    ai4kg = "https://w3id.org/ai4kg/ns#"
    graph.write([AssetWrite(iri, [
        ox.Quad(g, ox.NamedNode("http://www.w3.org/1999/02/22-rdf-syntax-ns#type"), ox.NamedNode(ai4kg + "Datacenter"), g),
        ox.Quad(g, ox.NamedNode(ai4kg + "title"), ox.Literal("A datacenter"), g),
        ox.Quad(g, ox.NamedNode(ai4kg + "visibility"), ox.NamedNode("https://w3id.org/ai4kg/vocab/visibility/public"), g)])])
    try:
        identifier = "oai:w3id.org:datacenter/oai-test-dc"
        root = call(verb="ListMetadataFormats", identifier=identifier)
        assert [e.text for e in root.iterfind(".//o:metadataPrefix", NS)] == ["oai_dc"]
        assert error(call(verb="GetRecord", identifier=identifier, metadataPrefix="dcat")) == "cannotDisseminateFormat"
        record = call(verb="GetRecord", identifier=identifier, metadataPrefix="oai_dc")
        assert record.findtext(".//dc:type", namespaces=NS) == "Service"
        # a dcat list has modules only
        headers, _ = harvest(call, "ListIdentifiers", metadataPrefix="dcat")
        assert identifier not in [h.findtext("o:identifier", namespaces=NS) for h in headers] and headers
        monkeypatch.setattr(oai, "FORMATS", {"dcat": oai.FORMATS["dcat"]})
        assert error(call(verb="ListMetadataFormats", identifier=identifier)) == "noMetadataFormats"
    finally:
        graph.delete(iri)


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_list_sets(call: Harvester, method: str) -> None:
    root = call(method, verb="ListSets")
    sets = {e.findtext("o:setSpec", namespaces=NS): e.findtext("o:setName", namespaces=NS)
            for e in root.iterfind(".//o:set", NS)}
    for parent in ("vo", "kind", "category", "task", "library", "dataType"):
        assert parent in sets
    assert sets["task:computer-vision"] == "Computer Vision (ai4kg machine-learning tasks)"
    assert sets["kind:Module"].startswith("AI module")
    assert "vo:default" in sets and f"vo:{SECRET_VO}" not in sets  # the private VO's set is not shown
    assert "library:pytorch" in sets and "dataType:image" in sets and "category:ai4-trainable" in sets
    assert error(call(method, verb="ListSets", resumptionToken="anything")) == "badResumptionToken"


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_get_record_oai_dc(call: Harvester, method: str) -> None:
    root = call(method, verb="GetRecord", identifier="oai:w3id.org:module/zooprocess-multiple-classifier",
                metadataPrefix="oai_dc")
    assert request_attributes(root) == {"verb": "GetRecord", "identifier": "oai:w3id.org:module/zooprocess-multiple-classifier",
                                        "metadataPrefix": "oai_dc"}
    record = root.find("o:GetRecord/o:record", NS)
    header = record.find("o:header", NS)
    assert header.get("status") is None
    specs = [e.text for e in header.iterfind("o:setSpec", NS)]
    assert "kind:Module" in specs and "vo:default" in specs and "task:computer-vision" in specs
    dc = record.find("o:metadata/oai_dc:dc", NS)
    values: dict[str, list[str]] = {}
    for child in dc:
        values.setdefault(etree.QName(child).localname, []).append(child.text)
    assert values["title"] == ["ZooProcess Multiple Classifier"]
    assert BASE + "module/zooprocess-multiple-classifier" in values["identifier"]
    assert "https://doi.org/10.5281/zenodo.18241878" in values["identifier"]
    assert "Computer Vision" in values["subject"] and "Software" in values["type"]
    assert "https://github.com/ai4os-hub/zooprocess-multiple-classifier" in values["relation"]
    assert values["publisher"] == ["ai4kg platform operator"]
    assert any(d.startswith("20") for d in values["date"]) and values["description"]


@pytest.mark.parametrize("prefix,view", [("dcat", "dcat-ap"), ("mldcat_ap", "mldcat-ap")])
def test_get_record_rdf_views(call: Harvester, graph: KnowledgeGraph, prefix: str, view: str) -> None:
    root = call(verb="GetRecord", identifier=YOLO, metadataPrefix=prefix)
    rdf = root.find("o:GetRecord/o:record/o:metadata/rdf:RDF", NS)
    assert rdf is not None
    parsed = set(ox.parse(input=etree.tostring(rdf), format=ox.RdfFormat.RDF_XML))
    expected = set(VIEWS[view].describe(graph, BASE + "module/ai4os-yolo-torch"))

    def canonical(triples):  # type: ignore[no-untyped-def]
        return {tuple("_" if isinstance(t, ox.BlankNode) else t for t in (x.subject, x.predicate, x.object))
                for x in triples}

    assert canonical(parsed) == canonical(expected) and len(parsed) == len(expected) > 20


def test_get_record_errors(call: Harvester) -> None:
    assert error(call(verb="GetRecord", identifier=YOLO, metadataPrefix="marc21")) == "cannotDisseminateFormat"
    assert error(call(verb="GetRecord", identifier="oai:w3id.org:module/none", metadataPrefix="oai_dc")) == "idDoesNotExist"
    assert error(call(verb="GetRecord", identifier=YOLO)) == "badArgument"
    assert error(call(verb="GetRecord", metadataPrefix="oai_dc")) == "badArgument"


# -- lists ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("method", ["GET", "POST"])
@pytest.mark.parametrize("verb", ["ListIdentifiers", "ListRecords"])
def test_list_in_pages(call: Harvester, graph: KnowledgeGraph, verb: str, method: str) -> None:
    headers, tokens = harvest(call, verb, method, metadataPrefix="oai_dc")
    found = [h.findtext("o:identifier", namespaces=NS) for h in headers]
    expected = graph.index.log_count(frozenset())
    assert len(found) == len(set(found)) == expected > 2 * PAGE
    assert PRIVATE not in found
    assert [int(t.get("cursor")) for t in tokens] == list(range(0, expected, PAGE))[:len(tokens)]
    assert all(int(t.get("completeListSize")) == expected for t in tokens)
    assert all(t.get("expirationDate") for t in tokens[:-1]) and tokens[-1].text is None
    if verb == "ListRecords":
        root = call(method, verb=verb, metadataPrefix="oai_dc")
        assert len(root.findall(".//oai_dc:dc", NS)) == PAGE


def test_list_records_in_rdf_views(call: Harvester) -> None:
    root = call(verb="ListRecords", metadataPrefix="mldcat_ap")
    records = root.findall("o:ListRecords/o:record", NS)
    assert len(records) == PAGE and all(r.find("o:metadata/rdf:RDF", NS) is not None for r in records)


def test_sets_select_records(call: Harvester, graph: KnowledgeGraph) -> None:
    headers, _ = harvest(call, "ListIdentifiers", metadataPrefix="oai_dc")
    every = {h.findtext("o:identifier", namespaces=NS) for h in headers}
    in_default = {h.findtext("o:identifier", namespaces=NS) for h in headers
                  if "vo:default" in [s.text for s in h.iterfind("o:setSpec", NS)]}
    vision, _ = harvest(call, "ListIdentifiers", metadataPrefix="oai_dc", set="task:computer-vision")
    assert vision and all("task:computer-vision" in [s.text for s in h.iterfind("o:setSpec", NS)] for h in vision)
    tasks, _ = harvest(call, "ListIdentifiers", metadataPrefix="oai_dc", set="task")  # the parent set: any task
    assert {h.findtext("o:identifier", namespaces=NS) for h in vision} < {h.findtext("o:identifier", namespaces=NS)
                                                                         for h in tasks} <= every
    default, _ = harvest(call, "ListIdentifiers", metadataPrefix="oai_dc", set="vo:default")
    assert {h.findtext("o:identifier", namespaces=NS) for h in default} == in_default and len(in_default) > 20
    assert error(call(verb="ListRecords", metadataPrefix="oai_dc", set="task:no-such-task")) == "noRecordsMatch"
    assert error(call(verb="ListRecords", metadataPrefix="oai_dc", set=f"vo:{SECRET_VO}")) == "noRecordsMatch"


def test_from_until(tmp_path: Path, schema, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    day = 1_700_006_400  # 2023-11-15T00:00:00Z
    now = [day + 3600]
    monkeypatch.setattr(search_module, "_clock", lambda: now[0])
    with KnowledgeGraph(Settings(data_dir=tmp_path / "d")) as graph:
        [report] = import_files(graph, [MODULES / "ai4os-yolo-torch__ai4-metadata.yml"])  # 2023-11-15T01:00:00Z
        template = graph.asset_quads(report.iri)

        def write(*names: str) -> None:
            graph.write([replicated(template, f"{BASE}module/{n}", n, n.title()) for n in names])

        write("one")
        now[0] = day + 7200
        write("two", "three")                                  # 2023-11-15T02:00:00Z
        now[0] = day + 2 * 86_400
        write("four", "five")                                  # 2023-11-17T00:00:00Z
        now[0] = day - 86_400  # the clock goes back: datestamps do not
        write("six")
        call = Harvester(TestClient(create_app(graph)), schema)

        def listed(**params: str) -> list[str]:
            return [h.findtext("o:datestamp", namespaces=NS)
                    for h in harvest(call, "ListIdentifiers", metadataPrefix="oai_dc", **params)[0]]

        assert listed() == ["2023-11-15T01:00:00Z"] * 2 + ["2023-11-15T02:00:00Z"] * 2 + ["2023-11-17T00:00:00Z"] * 3
        assert listed(**{"from": "2023-11-15T02:00:00Z"}) == ["2023-11-15T02:00:00Z"] * 2 + ["2023-11-17T00:00:00Z"] * 3
        assert listed(until="2023-11-15T01:59:59Z") == ["2023-11-15T01:00:00Z"] * 2
        assert listed(until="2023-11-15") == ["2023-11-15T01:00:00Z"] * 2 + ["2023-11-15T02:00:00Z"] * 2
        assert listed(**{"from": "2023-11-16", "until": "2023-11-17"}) == ["2023-11-17T00:00:00Z"] * 3
        assert listed(**{"from": "2023-11-15T01:00:00Z", "until": "2023-11-15T01:00:00Z"}) == ["2023-11-15T01:00:00Z"] * 2
        assert error(call(verb="ListRecords", metadataPrefix="oai_dc", **{"from": "2023-11-18"})) == "noRecordsMatch"
        assert error(call(verb="ListRecords", metadataPrefix="oai_dc", until="2023-11-14T23:59:59Z")) == "noRecordsMatch"
        identify = call(verb="Identify")
        assert identify.findtext(".//o:earliestDatestamp", namespaces=NS) == "2023-11-15T01:00:00Z"
        root = call(verb="ListIdentifiers", metadataPrefix="oai_dc", **{"from": "2023-11-15"})
        assert request_attributes(root) == {"verb": "ListIdentifiers", "metadataPrefix": "oai_dc", "from": "2023-11-15"}


@pytest.mark.parametrize("value,other", [("2023-11-15", "2023-11-15T00:00:00Z"), ("2023-11-16", "2023-11-15")])
def test_from_until_errors(call: Harvester, value: str, other: str) -> None:
    assert error(call(verb="ListRecords", metadataPrefix="oai_dc", **{"from": value, "until": other})) == "badArgument"


@pytest.mark.parametrize("value", ["2023-11-15T00:00Z", "2023-11-15T00:00:00", "2023-11-15T00:00:00.5Z", "2023-13-01",
                                   "2023-02-30", "15/11/2023", "0000-01-01", "2023-11-15T24:00:00Z", "2023-11-15 ", "now"])
def test_bad_datestamps(call: Harvester, value: str) -> None:
    for name in ("from", "until"):
        root = call(verb="ListIdentifiers", metadataPrefix="oai_dc", **{name: value})
        assert error(root) == "badArgument" and request_attributes(root) == {}


# -- errors, each by GET and POST ------------------------------------------------------------------------
ERRORS = [
    ("badVerb", []),
    ("badVerb", [("verb", "Frobnicate")]),
    ("badVerb", [("verb", "")]),
    ("badVerb", [("verb", "Identify"), ("verb", "Identify")]),
    ("badVerb", [("verb", "identify")]),
    ("badArgument", [("verb", "Identify"), ("metadataPrefix", "oai_dc")]),
    ("badArgument", [("verb", "Identify"), ("x", "1")]),
    ("badArgument", [("verb", "ListRecords")]),
    ("badArgument", [("verb", "ListRecords"), ("metadataPrefix", "oai_dc"), ("metadataPrefix", "oai_dc")]),
    ("badArgument", [("verb", "ListRecords"), ("metadataPrefix", "oai_dc"), ("resumptionToken", "x")]),
    ("badArgument", [("verb", "ListRecords"), ("metadataPrefix", "")]),
    ("badArgument", [("verb", "ListRecords"), ("metadataPrefix", "oai dc")]),
    ("badArgument", [("verb", "ListRecords"), ("metadataPrefix", "oai_dc"), ("set", "task:")]),
    ("badArgument", [("verb", "ListRecords"), ("metadataPrefix", "oai_dc"), ("set", "a b")]),
    ("badArgument", [("verb", "GetRecord"), ("metadataPrefix", "oai_dc"), ("identifier", "not a uri")]),
    ("badArgument", [("verb", "GetRecord"), ("metadataPrefix", "oai_dc"), ("identifier", YOLO), ("set", "vo")]),
    ("badArgument", [("verb", "ListSets"), ("set", "vo")]),
    ("badArgument", [("verb", "ListMetadataFormats"), ("metadataPrefix", "oai_dc")]),
    ("badArgument", [("verb", "ListIdentifiers"), ("metadataPrefix", "oai_dc"), ("identifier", YOLO)]),
    ("badArgument", [("verb", "Identify"), ("x", "\x01")]),
    ("badResumptionToken", [("verb", "ListRecords"), ("resumptionToken", "garbage")]),
    ("badResumptionToken", [("verb", "ListIdentifiers"), ("resumptionToken", "e30.AAAA")]),
    ("cannotDisseminateFormat", [("verb", "ListRecords"), ("metadataPrefix", "marc21")]),
    ("cannotDisseminateFormat", [("verb", "GetRecord"), ("metadataPrefix", "marc21"), ("identifier", YOLO)]),
    ("idDoesNotExist", [("verb", "GetRecord"), ("metadataPrefix", "oai_dc"), ("identifier", "oai:w3id.org:module/x")]),
    ("idDoesNotExist", [("verb", "GetRecord"), ("metadataPrefix", "oai_dc"), ("identifier", "urn:x:y")]),
    ("noRecordsMatch", [("verb", "ListIdentifiers"), ("metadataPrefix", "oai_dc"), ("set", "library:none")]),
    ("noRecordsMatch", [("verb", "ListRecords"), ("metadataPrefix", "oai_dc"), ("from", "2999-01-01")]),
]


@pytest.mark.parametrize("method", ["GET", "POST"])
@pytest.mark.parametrize("code,params", ERRORS)
def test_every_error(call: Harvester, code: str, params: list[tuple[str, str]], method: str) -> None:
    root = call(method, params)
    assert error(root) == code
    assert root.find("o:error", NS).text  # says what is wrong
    echoed = request_attributes(root)
    if code in ("badVerb", "badArgument"):
        assert echoed == {}  # the protocol: no attributes for these
    else:
        assert echoed == dict(params)


def test_post_needs_a_form(call: Harvester, schema: etree.XMLSchema) -> None:
    response = call.client.post("/oai", content=b'{"verb": "Identify"}', headers={"content-type": "application/json"})
    root = etree.fromstring(response.content)
    assert schema.validate(root) and error(root) == "badArgument"
    response = call.client.post("/oai", content=b"verb=Identify&x=" + b"a" * 70_000,
                                headers={"content-type": "application/x-www-form-urlencoded"})
    assert error(etree.fromstring(response.content)) == "badArgument"
    response = call.client.post("/oai", content=b"verb=Identify", headers={"content-type": "application/x-www-form-urlencoded"})
    assert error(etree.fromstring(response.content)) is None
    assert call.client.put("/oai").status_code == 405


def test_tampered_expired_and_foreign_tokens(call: Harvester, graph: KnowledgeGraph, app) -> None:  # type: ignore[no-untyped-def]
    root = call(verb="ListRecords", metadataPrefix="oai_dc")
    token = root.find(".//o:resumptionToken", NS).text
    data, tag = token.split(".")
    payload = json.loads(base64.urlsafe_b64decode(data + "=" * (-len(data) % 4)))
    payload[5] = 0  # start over from the beginning
    forged = base64.urlsafe_b64encode(json.dumps(payload, separators=(",", ":")).encode()).decode().rstrip("=")
    assert error(call(verb="ListRecords", resumptionToken=f"{forged}.{tag}")) == "badResumptionToken"
    assert error(call(verb="ListIdentifiers", resumptionToken=token)) == "badResumptionToken"  # another verb's
    assert error(call(verb="ListRecords", resumptionToken=token[:-2])) == "badResumptionToken"
    assert error(call(verb="ListRecords", resumptionToken=token + "x")) == "badResumptionToken"
    assert error(call(verb="ListRecords", resumptionToken=token)) is None
    tokens = oai.Tokens(graph.index.log_secret(), 10)
    state = tokens.read(token, "ListRecords", time.time())
    expired, _ = tokens.issue(state, time.time() - 3600)
    root = call(verb="ListRecords", resumptionToken=expired)
    assert error(root) == "badResumptionToken" and "expired" in root.findtext("o:error", namespaces=NS)
    assert request_attributes(root) == {"verb": "ListRecords", "resumptionToken": expired}
    other_key = oai.Tokens(b"another repository's key", 3600).issue(state, time.time())[0]
    assert error(call(verb="ListRecords", resumptionToken=other_key)) == "badResumptionToken"


# -- injection --------------------------------------------------------------------------------------------
EVIL = ['plankton" OR 1=1 --', "') OR ('1'='1", "} ; DROP ALL #", "<http://x> .", "x> } ; DROP ALL ; INSERT DATA { <a> <b> <c> } #",
        "plankton\\u0022", '"""} }', "\u0000\u202e\uffff", "${injection}", "%7D%3B DROP ALL", "*", "task:*",
        "1; DELETE FROM record_log", "' UNION SELECT iri FROM record_log --", "<![CDATA[x]]>", "&amp;&#0;",
        "oai:w3id.org:module/ai4os-yolo-torch' OR '1'='1", "oai:w3id.org:module/../ai4os-demo-app",
        "oai:w3id.org:module%2Fai4os-demo-app", "oai:w3id.org:https://w3id.org/ai4kg/id/module/ai4os-demo-app",
        "vo:vo.secret.eu", "vo:%", "é" * 5000]


def test_injection_strings_in_every_argument(call: Harvester, graph: KnowledgeGraph) -> None:
    def state() -> tuple:  # type: ignore[type-arg]
        return (graph.export(ox.RdfFormat.N_QUADS), graph.index.iris(), graph.index.pending(),
                graph.index.log_page(None, 0, 10**6))

    before = state()
    for verb in VERBS:
        for name in oai.ARGUMENTS:
            for value in EVIL:
                params = {"verb": verb, "metadataPrefix": "oai_dc", "identifier": YOLO} if name != "verb" else {}
                params[name] = value
                for method in ("GET", "POST"):
                    root = call(method, params)  # 200 and valid against the XSDs, whatever came in
                    assert PRIVATE not in etree.tostring(root).decode() or error(root) is not None
                    assert "demo-app" not in "".join(identifiers(root))
    # bytes that are not UTF-8, by GET and POST
    for query in ("verb=%FF", "verb=GetRecord&metadataPrefix=oai_dc&identifier=%FF%FE", "verb=Identify&%C3=1"):
        response = call.client.get(f"/oai?{query}")
        assert call.schema.validate(etree.fromstring(response.content))
        assert error(etree.fromstring(response.content)) in ("badVerb", "badArgument")
        response = call.client.post("/oai", content=query.encode() + b"&x=\xff",
                                    headers={"content-type": "application/x-www-form-urlencoded"})
        assert error(etree.fromstring(response.content)) in ("badVerb", "badArgument")
    assert state() == before


# -- VO isolation ------------------------------------------------------------------------------------------
def test_private_records_only_for_their_vo(app, schema, keys) -> None:  # type: ignore[no-untyped-def]
    _, member, other, admin = keys
    clients = {name: Harvester(TestClient(app, headers={"authorization": f"Bearer {key}"} if key else {}), schema)
               for name, key in (("anonymous", None), ("member", member), ("other", other), ("admin", admin))}
    for name, call in clients.items():
        sees = name in ("member", "admin")
        found = identifiers(call(verb="ListIdentifiers", metadataPrefix="oai_dc", set=f"vo:{SECRET_VO}"))
        assert found == ([PRIVATE] if sees else []), name
        every = [h.findtext("o:identifier", namespaces=NS) for h in harvest(call, "ListIdentifiers", metadataPrefix="oai_dc")[0]]
        assert (PRIVATE in every) == sees
        assert (error(call(verb="GetRecord", identifier=PRIVATE, metadataPrefix="oai_dc")) is None) == sees
        assert (error(call(verb="ListMetadataFormats", identifier=PRIVATE)) is None) == sees
        sets = [e.text for e in call(verb="ListSets").iterfind(".//o:setSpec", NS)]
        assert (f"vo:{SECRET_VO}" in sets) == sees
    record = clients["member"](verb="GetRecord", identifier=PRIVATE, metadataPrefix="oai_dc")
    assert record.findtext(".//dc:title", namespaces=NS)


# -- tombstones, changes, restarts --------------------------------------------------------------------------
def test_tombstones(tmp_path: Path, schema, keys) -> None:  # type: ignore[no-untyped-def]
    store, member, _, admin = keys
    settings = Settings(data_dir=tmp_path / "d")
    files = v2_files()[:5]
    with KnowledgeGraph(settings) as graph:
        import_files(graph, files)
        import_files(graph, [PRIVATE_FILE], ImportOptions(vo=SECRET_VO, visibility="virtual-organisation"))
        client = TestClient(create_app(graph, store), headers={"authorization": f"Bearer {admin}"})
        name = graph.index.iris()[0].rsplit("/", 1)[-1]
        assert client.delete(f"/v1/catalog/modules/{name}/metadata").status_code in (200, 204)
        assert client.delete("/v1/catalog/modules/ai4os-demo-app/metadata").status_code in (200, 204)
    with KnowledgeGraph(settings) as graph:  # tombstones are persistent
        anonymous = Harvester(TestClient(create_app(graph, store)), schema)
        vo_member = Harvester(TestClient(create_app(graph, store), headers={"authorization": f"Bearer {member}"}), schema)
        identifier = f"oai:w3id.org:module/{name}"
        for verb in ("ListIdentifiers", "ListRecords"):
            headers, _ = harvest(anonymous, verb, metadataPrefix="oai_dc")
            deleted = [h.findtext("o:identifier", namespaces=NS) for h in headers if h.get("status") == "deleted"]
            assert deleted == [identifier]  # the private module's tombstone is not shown to anonymous harvesters
            assert headers[-1].findtext("o:identifier", namespaces=NS) in (identifier, PRIVATE)
        record = anonymous(verb="GetRecord", identifier=identifier, metadataPrefix="dcat").find(".//o:record", NS)
        assert record.find("o:header", NS).get("status") == "deleted" and record.find("o:metadata", NS) is None
        assert [s.text for s in record.iterfind("o:header/o:setSpec", NS)]  # keeps its sets
        assert error(anonymous(verb="GetRecord", identifier=PRIVATE, metadataPrefix="oai_dc")) == "idDoesNotExist"
        member_view = vo_member(verb="GetRecord", identifier=PRIVATE, metadataPrefix="oai_dc")
        assert member_view.find(".//o:header", NS).get("status") == "deleted"
        deleted_set = identifiers(anonymous(verb="ListIdentifiers", metadataPrefix="oai_dc", set="kind:Module"))
        assert identifier in deleted_set


def test_only_real_changes_move_a_record(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    settings = Settings(data_dir=tmp_path / "d")
    files = v2_files()[:4]
    clock = [1_700_000_000]
    monkeypatch.setattr(search_module, "_clock", lambda: clock[0])
    with KnowledgeGraph(settings) as graph:
        import_files(graph, files)
        before = graph.index.log_page(None, 0, 100)
        clock[0] += 100
        import_files(graph, files)  # the same content again
        graph.reindex()
        assert graph.index.log_page(None, 0, 100) == before
        first = before[0]
        quads = graph.asset_quads(first.iri)
        changed = [q for q in quads if q.predicate.value != "https://w3id.org/ai4kg/ns#title"] + [
            ox.Quad(ox.NamedNode(first.iri), ox.NamedNode("https://w3id.org/ai4kg/ns#title"), ox.Literal("New title"),
                    ox.NamedNode(first.iri))]
        graph.write([AssetWrite(first.iri, changed)])
        after = graph.index.log_page(None, 0, 100)
        assert [r.iri for r in after] == [r.iri for r in before[1:]] + [first.iri]
        assert after[-1].seq > before[-1].seq and after[-1].datestamp == clock[0]
        position = graph.index.log_position()
    # an index rebuild (another SCHEMA_VERSION) keeps the log: no record looks new
    with sqlite3.connect(tmp_path / "d" / "search.sqlite") as db:
        db.execute("PRAGMA user_version = 0")
    clock[0] += 100
    with KnowledgeGraph(settings) as graph:
        assert graph.index.log_page(None, 0, 100) == after and graph.index.log_position() == position
        assert graph.index.count() == len(after)
    # an index from before the log: the log is filled from the store on open
    with sqlite3.connect(tmp_path / "d" / "search.sqlite") as db:
        db.executescript("DROP TABLE record_sets; DROP TABLE record_log; DROP TABLE record_log_meta;")
    with KnowledgeGraph(settings) as graph:
        assert {r.iri for r in graph.index.log_page(None, 0, 100)} == {r.iri for r in after}


def test_a_crash_before_the_index_commit_is_recovered_into_the_log(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The log follows the crash protocol: the store committed, the index (and log) not; on open the
    pending asset is re-indexed and its log entry moves; the others stay where they were."""
    settings = Settings(data_dir=tmp_path / "d")
    with KnowledgeGraph(settings) as graph:
        import_files(graph, v2_files()[:3])
        before = graph.index.log_page(None, 0, 100)
        first = before[0]
        changed = [q for q in graph.asset_quads(first.iri) if q.predicate.value != "https://w3id.org/ai4kg/ns#title"]
        changed.append(ox.Quad(ox.NamedNode(first.iri), ox.NamedNode("https://w3id.org/ai4kg/ns#title"),
                               ox.Literal("Changed before the crash"), ox.NamedNode(first.iri)))

        def crash(*args: object, **kwargs: object) -> None:
            raise RuntimeError("killed between the store commit and the index commit")

        monkeypatch.setattr(graph.index, "apply", crash)
        with pytest.raises(RuntimeError):
            graph.write([AssetWrite(first.iri, changed)])
        monkeypatch.undo()
        assert graph.index.log_page(None, 0, 100) == before and graph.index.pending() == [first.iri]
    with KnowledgeGraph(settings) as graph:  # recovery on open
        after = graph.index.log_page(None, 0, 100)
        assert after[:-1] == before[1:] and after[-1].iri == first.iri and after[-1].seq > before[-1].seq
        assert graph.index.pending() == []


def test_oai_dc_records_come_from_the_log_alone(call: Harvester, graph: KnowledgeGraph,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """GetRecord and ListRecords in oai_dc read SQLite only (the record log's Dublin Core fields): with
    every store read refused, a whole harvest still comes out, the same as before."""
    before = call(verb="GetRecord", identifier=YOLO, metadataPrefix="oai_dc")  # labels and publisher: read once
    records_before = all_records(call, metadataPrefix="oai_dc")

    class NoStore:
        def __getattr__(self, name: str) -> Any:
            raise AssertionError(f"an oai_dc record read the store ({name})")

    monkeypatch.setattr(graph, "store", NoStore())
    after = call(verb="GetRecord", identifier=YOLO, metadataPrefix="oai_dc")
    assert etree.tostring(after.find(".//o:record", NS)) == etree.tostring(before.find(".//o:record", NS))
    assert all_records(call, metadataPrefix="oai_dc") == records_before and len(records_before) > 2 * PAGE
    root = call(verb="ListRecords", metadataPrefix="oai_dc")
    assert len(root.findall(".//oai_dc:dc", NS)) == PAGE and all(d.findtext("dc:title", namespaces=NS)
                                                                 for d in root.iterfind(".//oai_dc:dc", NS))
    with pytest.raises(AssertionError, match="read the store"):  # the RDF views do read it
        call(verb="GetRecord", identifier=YOLO, metadataPrefix="dcat")


def test_creators_are_named_from_their_own_log_entries(tmp_path: Path, schema) -> None:  # type: ignore[no-untyped-def]
    ai4kg, rdf_type = "https://w3id.org/ai4kg/ns#", ox.NamedNode("http://www.w3.org/1999/02/22-rdf-syntax-ns#type")
    public = ox.NamedNode("https://w3id.org/ai4kg/vocab/visibility/public")

    def asset(iri: str, kind: str, *statements: tuple[str, ox.NamedNode | ox.Literal]) -> AssetWrite:
        g = ox.NamedNode(iri)
        quads = [ox.Quad(g, rdf_type, ox.NamedNode(ai4kg + kind), g),
                 ox.Quad(g, ox.NamedNode(ai4kg + "visibility"), public, g)]
        return AssetWrite(iri, quads + [ox.Quad(g, ox.NamedNode(p if ":" in p else ai4kg + p), o, g)
                                        for p, o in statements])

    person, team, gone = BASE + "person/jane", BASE + "person/team", BASE + "person/gone"
    module = BASE + "module/made-by-jane"
    with KnowledgeGraph(Settings(data_dir=tmp_path / "d")) as graph:
        graph.write([asset(person, "Person", ("title", ox.Literal("Jane Doe"))),
                     asset(team, "Person", ("http://xmlns.com/foaf/0.1/name", ox.Literal("The team"))),
                     asset(gone, "Person", ("title", ox.Literal("Gone"))),
                     asset(module, "Module", ("title", ox.Literal("Made by Jane")), ("creator", ox.NamedNode(person)),
                           ("creator", ox.NamedNode(team)), ("creator", ox.NamedNode(gone)),
                           ("creator", ox.NamedNode(BASE + "person/unknown")))])
        graph.delete(gone)
        call = Harvester(TestClient(create_app(graph)), schema)

        def creators() -> list[str]:
            root = call(verb="GetRecord", identifier="oai:w3id.org:module/made-by-jane", metadataPrefix="oai_dc")
            return sorted(e.text for e in root.iterfind(".//dc:creator", NS))

        assert creators() == sorted(["Jane Doe", "The team", gone, BASE + "person/unknown"])
        seq = graph.index.log_record(module).seq
        graph.write([asset(person, "Person", ("title", ox.Literal("Jane Roe")))])
        assert "Jane Roe" in creators() and graph.index.log_record(module).seq == seq  # the module did not change
        listed = call(verb="ListRecords", metadataPrefix="oai_dc", set="kind:Module")
        assert "Jane Roe" in [e.text for e in listed.iterfind(".//dc:creator", NS)]


def test_a_log_of_version_1_is_upgraded_in_place(tmp_path: Path, schema, keys) -> None:  # type: ignore[no-untyped-def]
    """A record log without the Dublin Core fields (version 1) keeps every sequence number, datestamp
    and tombstone; the fields of live records are filled from the store on open, also after a crash
    half-way (the pending mark is committed with the upgrade)."""
    settings = Settings(data_dir=tmp_path / "d")
    database = tmp_path / "d" / "search.sqlite"
    with KnowledgeGraph(settings) as graph:
        import_files(graph, v2_files()[:5])
        graph.delete(graph.index.iris()[0])
        log = graph.index.log_page(None, 0, 100)
        assert sum(r.deleted for r in log) == 1
        call = Harvester(TestClient(create_app(graph, keys[0])), schema)
        before = all_records(call, metadataPrefix="oai_dc")
        assert b"<dc:title>" in before[0] and b'status="deleted"' in before[-1]
    with sqlite3.connect(database) as db:  # what version 1 had
        db.executescript("DROP TABLE record_metadata; UPDATE record_log_meta SET value = '1' WHERE key = 'version';")
    # the upgrade commits, then the process dies before the store re-indexes
    index = search_module.SearchIndex(database)
    assert index.pending() == [search_module.EVERY_ASSET] and index.log_page(None, 0, 100) == log
    index.close()
    with KnowledgeGraph(settings) as graph:
        assert graph.index.log_page(None, 0, 100) == log and graph.index.pending() == []
        assert all(r.dublin_core for r in graph.index.log_page(None, 0, 100, metadata=True) if not r.deleted)
        call = Harvester(TestClient(create_app(graph, keys[0])), schema)
        assert all_records(call, metadataPrefix="oai_dc") == before


def test_tokens_survive_a_restart(tmp_path: Path, schema, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("AI4KG_OAI_PAGE_SIZE", "4")
    settings = Settings(data_dir=tmp_path / "d")
    with KnowledgeGraph(settings) as graph:
        import_files(graph, v2_files()[:10])
        call = Harvester(TestClient(create_app(graph)), schema)
        first = call(verb="ListRecords", metadataPrefix="oai_dc")
        token = first.find(".//o:resumptionToken", NS).text
        seen = identifiers(first)
    with KnowledgeGraph(settings) as graph:  # a new process over the same data directory
        call = Harvester(TestClient(create_app(graph)), schema)
        root = call(verb="ListRecords", resumptionToken=token)
        while True:
            assert error(root) is None
            seen += identifiers(root)
            token = root.find(".//o:resumptionToken", NS).text
            if not token:
                break
            root = call(verb="ListRecords", resumptionToken=token)
        assert len(seen) == len(set(seen)) == graph.index.count()


# -- real harvesters over HTTP, while records are added --------------------------------------------------------
def test_real_harvesters(graph: KnowledgeGraph, keys, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    from oaipmh_scythe import Scythe
    from oaipmh_scythe.config import HTTPConfig
    from sickle import Sickle

    monkeypatch.setenv("AI4KG_OAI_PAGE_SIZE", "5")
    expected = {f"oai:w3id.org:{r.iri[len(BASE):]}" for r in graph.index.log_page(frozenset(), 0, 10**6)}
    with serving(create_app(graph, keys[0])) as url:
        for method in ("GET", "POST"):
            sickle = Sickle(url, http_method=method)
            assert sickle.Identify().repositoryName == "ai4kg catalogue of AI modules"
            records = list(sickle.ListRecords(metadataPrefix="oai_dc"))
            assert [r.header.identifier for r in records if not r.header.deleted] and \
                {r.header.identifier for r in records} == expected and len(records) == len(expected)
            assert all(r.metadata.get("title") for r in records if not r.header.deleted)
            assert {s.setSpec for s in sickle.ListSets()} >= {"vo:default", "task"}
            assert [f.metadataPrefix for f in sickle.ListMetadataFormats()] == ["oai_dc", "dcat", "mldcat_ap"]
            record = sickle.GetRecord(identifier=YOLO, metadataPrefix="oai_dc")
            assert record.metadata["title"] == ["YOLO models"]
            headers = list(sickle.ListIdentifiers(metadataPrefix="oai_dc", set="task:computer-vision"))
            assert headers and all("task:computer-vision" in h.setSpecs for h in headers)
            with Scythe(url, http_config=HTTPConfig(http_method=method)) as scythe:
                harvested = [h.identifier for h in scythe.list_identifiers(metadata_prefix="oai_dc")]
                assert sorted(harvested) == sorted(expected)
                records = list(scythe.list_records(metadata_prefix="mldcat_ap"))
                assert len(records) == len([i for i in expected if ":module/" in i])
                assert scythe.identify().repositoryName == "ai4kg catalogue of AI modules"
                assert scythe.get_record(identifier=YOLO, metadata_prefix="oai_dc").metadata["title"] == ["YOLO models"]
        # the member of the VO harvests the private module too (the API key travels with every request)
        member = Sickle(url, headers={"authorization": f"Bearer {keys[1]}"})
        assert PRIVATE in {r.identifier for r in member.ListIdentifiers(metadataPrefix="oai_dc")}


def test_harvest_while_records_are_added(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Sickle harvests 1,500 records page by page while 400 more are written: every record exactly once."""
    from sickle import Sickle

    monkeypatch.setenv("AI4KG_OAI_PAGE_SIZE", "50")
    with KnowledgeGraph(Settings(data_dir=tmp_path / "d")) as graph:
        [report] = import_files(graph, [MODULES / "ai4os-yolo-torch__ai4-metadata.yml"])
        template = graph.asset_quads(report.iri)

        def write(numbers: range) -> None:
            graph.write([replicated(template, f"{BASE}module/copy-{n:05d}", f"copy-{n:05d}", f"Copy {n}") for n in numbers])

        for at in range(0, 1_499, 250):
            write(range(at, min(1_499, at + 250)))
        initial = graph.index.count()
        added = threading.Event()

        def writer() -> None:
            for at in range(10_000, 10_400, 20):
                write(range(at, at + 20))
                time.sleep(0.01)
            added.set()

        with serving(create_app(graph)) as url:
            seen: list[str] = []
            thread = threading.Thread(target=writer)
            for header in Sickle(url, max_retries=0).ListIdentifiers(metadataPrefix="oai_dc"):
                seen.append(header.identifier)
                if len(seen) == 100:
                    thread.start()
                if len(seen) == 1_000:
                    assert added.wait(60)  # every addition is in before the harvest reaches its end
            thread.join()
        assert len(seen) == len(set(seen)) == initial + 400 == graph.index.count() == 1_900
