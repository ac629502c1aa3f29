"""The dashboard's Deployments and Federations pages (issue 16).

HTTP-level tests with TestClient, on a store with the demo's flood module (and the federated anomaly
detector) and the local executor whose one datacenter is marked down, so that nothing starts:
create, list, detail and delete; errors next to their field with the values kept; CSRF; anonymous
visitors asked to sign in; another VO's deployment and federation not found; a federation's
clients (the key shown once), rounds posted by its recorder (plots, flagged clients), revocation.
One test in real Chromium on the whole demo catalogue, with the control loop running: deploy a
module from its form and watch it become running, see the list's statuses follow, start a
federation, admit clients, see its rounds, revoke a client, stop it, delete the deployment;
axe-core on each page; screenshots docs/screenshots/deployments.png, deployment.png,
deployment-new.png, federations.png and federation.png.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Iterator

import lxml.html
import pytest
from fastapi.testclient import TestClient

from ai4kg.api.app import create_app
from ai4kg.catalog import ImportOptions, import_files
from ai4kg.credentials import KeyStore
from ai4kg.dashboard import plots
from ai4kg.federated.superlink import TOKEN_VARIABLE, read_env
from ai4kg.workloads.executor import Health, Resources
from ai4kg.workloads.service import Quotas, Requester
from test_deployments import DEMO, MODULE, Platform, stop_everything
from test_federated import round_record

FEDERATED_MODULE = "federated-anomaly-detector"


class Site:
    """The platform (datacenter `local` marked down: deployments stay queued), its app and API keys
    for alice and carol (VO default) and bob (VO other)."""

    def __init__(self, root: Path):
        self.platform = Platform(root, capacity={"local": Resources(4, 16000, 1, 100000)})
        graph = self.platform.graph
        if not graph.contains(f"https://w3id.org/ai4kg/id/module/{FEDERATED_MODULE}"):
            [report] = import_files(graph, [DEMO / f"{FEDERATED_MODULE}.yml"], ImportOptions())
            assert report.status == "imported", report.issues
        self.deployments = self.platform.deployments
        self.deployments.ledger.set_health([Health("local", "down", 0.0, "marked down by the test")])
        keys = KeyStore(root / "data")
        self.subjects: dict[str, str] = {}
        self.headers: dict[str, dict[str, str]] = {}
        for name, vo in (("alice", "default"), ("carol", "default"), ("bob", "other")):
            key, secret = keys.create(name, frozenset({vo}))
            self.subjects[name] = f"api-key:{key.id}"
            self.headers[name] = {"Authorization": f"Bearer {secret}"}
        self.app = create_app(graph, keys, self.deployments)
        self.federations = self.app.state.federations
        self.client = TestClient(self.app)  # no lifespan: no control loop

    def requester(self, name: str) -> Requester:
        return Requester(self.subjects[name], frozenset({"other" if name == "bob" else "default"}))

    def get(self, path: str, who: str | None = "alice", **kwargs: Any) -> Any:
        return self.client.get(path, headers=self.headers[who] if who else {}, **kwargs)

    def post(self, path: str, data: dict[str, Any], who: str | None = "alice", csrf: bool = True) -> Any:
        body = {**data, "csrf": self.csrf()} if csrf else data
        return self.client.post(path, data=body, headers=self.headers[who] if who else {}, follow_redirects=False)

    def csrf(self) -> str:
        """This client's session's form token (read from a form, as a browser would)."""
        page = self.client.get("/deployments/new", headers=self.headers["alice"])
        return page_of(page).xpath("//input[@name='csrf']/@value")[0]

    def close(self) -> None:
        stop_everything(self.platform.root / "local")
        self.federations.close()
        self.platform.close()


@pytest.fixture
def site(tmp_path: Path, flower_bin: Path) -> Iterator[Site]:
    made = Site(tmp_path)
    made.federations.flower_location = flower_bin.parent
    try:
        yield made
    finally:
        made.close()


def page_of(response: Any) -> Any:
    return lxml.html.fromstring(response.text)


def text_of(element: Any) -> str:
    return " ".join(element.text_content().split())


def field(page: Any, name: str) -> tuple[Any, str | None]:
    """A form control by name, and the text of the error it points at with aria-describedby (if any)."""
    [control] = page.xpath(f"//*[@name='{name}']")
    described = (control.get("aria-describedby") or "").split()
    errors = [text_of(page.get_element_by_id(i)) for i in described if i.endswith("-error")]
    return control, errors[0] if errors else None


def deploy_form(**values: str) -> dict[str, str]:
    return {"module": MODULE, "kind": "module", **values}


# -- deployments ------------------------------------------------------------------------------------------
def test_a_deployment_is_created_listed_followed_and_deleted(site: Site) -> None:
    form = page_of(site.get(f"/deployments/new?module={MODULE}"))
    assert field(form, "module")[0].get("value") == MODULE
    assert [o.get("value") for o in form.xpath("//select[@name='datacenter']/option")] == ["", "local"]
    assert "federated" not in form.xpath("//select[@name='kind']/option/@value")

    created = site.post("/deployments/new", deploy_form(title="My flood <API>", **{"resources.cpu": "2"}))
    assert created.status_code == 303, created.text
    location = created.headers["location"]
    assert re.fullmatch(r"/deployments/d-[0-9a-f]{16}", location)
    identifier = location.rsplit("/", 1)[1]
    record = site.deployments.get(identifier)
    assert record.owner == site.subjects["alice"] and record.resources["cpu"] == 2 and record.title == "My flood <API>"

    detail = site.get(location)
    assert detail.status_code == 200
    page = page_of(detail)
    assert text_of(page.get_element_by_id("deployment-status")) == "queued"
    assert "waiting for a healthy datacenter" in text_of(page.get_element_by_id("live"))
    assert page.get_element_by_id("live").get("hx-get") == f"{location}/live"  # polled while not over
    assert "My flood <API>" in text_of(page.xpath("//h1")[0]) and "<API>" not in detail.text  # escaped
    history = page.xpath("//table[contains(@class, 'history')]/tbody/tr")
    assert [text_of(td) for td in history[0].xpath("td")][1:] == ["queued", "created by its owner"]
    assert page.xpath("//form[@action=$a]", a=f"{location}/delete")

    listing = page_of(site.get("/deployments"))
    assert listing.xpath("//a[@href=$h]", h=location)
    assert text_of(listing.get_element_by_id(f"status-{identifier}")).startswith("queued")
    poller = listing.get_element_by_id("status-poller")
    assert poller.get("hx-get") == f"/deployments/statuses?id={identifier}" and "every" in poller.get("hx-trigger")
    statuses = page_of(site.get(f"/deployments/statuses?id={identifier}&id=no-such-thing"))
    [cell] = statuses.xpath("//*[@hx-swap-oob]")[:-1]
    assert cell.get("id") == f"status-{identifier}"

    deleted = site.post(f"{location}/delete", {})
    assert deleted.status_code == 303 and deleted.headers["location"] == location
    assert site.deployments.get(identifier).status == "stopped"
    page = page_of(site.get(location))
    assert text_of(page.get_element_by_id("deployment-status")) == "stopped"
    assert page.get_element_by_id("live").get("hx-get") is None  # over: no more polling
    assert not page.xpath("//form[@action=$a]", a=f"{location}/delete")
    statuses = page_of(site.get(f"/deployments/statuses?id={identifier}"))
    assert text_of(statuses.get_element_by_id(f"status-{identifier}")).startswith("stopped")
    assert statuses.get_element_by_id("status-poller").get("hx-trigger") is None  # nothing left to poll

    missing = site.get("/deployments/d-0000000000000000")
    assert missing.status_code == 404 and "Not found" in missing.text
    assert site.post("/deployments/d-0000000000000000/delete", {}).status_code == 404


def test_errors_are_shown_next_to_their_field_and_the_values_are_kept(site: Site) -> None:
    answer = site.post("/deployments/new", deploy_form(**{"resources.cpu": "0", "resources.memory_mb": "lots",
                                                           "title": "keep <me>"}))
    assert answer.status_code == 422
    page = page_of(answer)
    cpu, error = field(page, "resources.cpu")
    assert cpu.get("value") == "0" and cpu.get("aria-invalid") == "true" and error == "must be at least 1"
    assert cpu.getnext().get("id") == cpu.get("id") + "-error"  # right after the field
    memory, error = field(page, "resources.memory_mb")
    assert memory.get("value") == "lots" and error and "integer" in error
    title, error = field(page, "title")
    assert title.get("value") == "keep <me>" and error is None and title.get("aria-invalid") is None
    assert field(page, "module")[0].get("value") == MODULE
    summary = page.xpath("//div[contains(@class, 'error-summary')]//a/@href")
    assert summary == ["#f-resources-cpu", "#f-resources-memory-mb"]

    # the service's own checks, beyond the schema: the catalogue, the datacenters, the kind's needs
    page = page_of(site.post("/deployments/new", deploy_form(module="no-such-module")))
    assert "no module or tool of that name" in field(page, "module")[1]
    page = page_of(site.post("/deployments/new", deploy_form(datacenter="mars")))
    assert "no such datacenter" in field(page, "datacenter")[1]
    assert [o.get("value") for o in page.xpath("//select[@name='datacenter']/option[@selected]")] == ["mars"]
    page = page_of(site.post("/deployments/new", deploy_form(kind="batch")))
    assert field(page, "command")[1] == "this field is required"
    assert page.xpath("//select[@name='kind']/option[@selected]/@value") == ["batch"]
    page = page_of(site.post("/deployments/new", deploy_form(**{"resources.gpu": "9"})))
    assert "more than your quota allows" in field(page, "resources.gpu")[1]
    assert site.deployments.find(site.requester("alice")) == []


def test_a_form_without_the_session_token_is_refused_and_changes_nothing(site: Site) -> None:
    for data in (deploy_form(), deploy_form(csrf="forged")):
        answer = site.post("/deployments/new", data, csrf=False)
        assert answer.status_code == 403 and "Form not accepted" in answer.text
    assert site.deployments.find(site.requester("alice")) == []

    location = site.post("/deployments/new", deploy_form()).headers["location"]
    identifier = location.rsplit("/", 1)[1]
    assert site.post(f"{location}/delete", {}, csrf=False).status_code == 403
    assert site.deployments.get(identifier).status == "queued"
    assert site.post("/federations/new", {"module": FEDERATED_MODULE}, csrf=False).status_code == 403
    assert site.federations.ledger.find() == []


def test_anonymous_visitors_are_asked_to_sign_in(site: Site) -> None:
    for path in ("/deployments", "/deployments/new?module=x", "/deployments/d-1", "/federations", "/federations/new",
                 "/federations/f-1"):
        answer = site.get(path, who=None)
        assert answer.status_code == 401, path
        page = page_of(answer)
        assert "Sign in to" in text_of(page.xpath("//h1")[0])
        assert page.xpath("//main//a[starts-with(@href, '/sign-in?next=')]/@href")[0] == \
            "/sign-in?next=" + path.split("?")[0]
    answer = site.post("/deployments/new", deploy_form(), who=None)  # the session's token, but nobody signed in
    assert answer.status_code == 401 and "Sign in to deploy" in answer.text
    assert site.deployments.ledger.count() == 0


def test_another_vo_sees_nothing_and_only_the_owner_deletes(site: Site) -> None:
    location = site.post("/deployments/new", deploy_form()).headers["location"]
    identifier = location.rsplit("/", 1)[1]
    for path in (location, f"{location}/live"):
        answer = site.get(path, who="bob")
        assert answer.status_code == 404 and "There is no deployment here that you may see" in answer.text
    assert site.post(f"{location}/delete", {}, who="bob").status_code == 404
    assert not page_of(site.get("/deployments", who="bob")).xpath("//a[@href=$h]", h=location)
    assert not page_of(site.get(f"/deployments/statuses?id={identifier}", who="bob")).xpath("//*[@id=$i]",
                                                                                              i=f"status-{identifier}")
    assert site.get("/deployments?vo=default", who="bob").status_code == 200
    assert not page_of(site.get("/deployments?vo=default", who="bob")).xpath("//a[@href=$h]", h=location)

    # carol, of alice's VO: sees it among the VO's, may not delete it
    assert site.get(location, who="carol").status_code == 200
    assert not page_of(site.get(location, who="carol")).xpath("//form[@action=$a]", a=f"{location}/delete")
    assert page_of(site.get("/deployments?vo=default", who="carol")).xpath("//a[@href=$h]", h=location)
    assert not page_of(site.get("/deployments", who="carol")).xpath("//a[@href=$h]", h=location)  # not hers
    refused = site.post(f"{location}/delete", {}, who="carol")
    assert refused.status_code == 403 and "only its owner" in refused.text
    assert site.deployments.get(identifier).status == "queued"


# -- federations ----------------------------------------------------------------------------------------------
def federation_form(page: Any, **values: str) -> dict[str, str]:
    """The create form's values as a browser sends them (checkboxes only when checked), with changes."""
    data = {e.get("name"): e.get("value") or "" for e in page.xpath("//form//input[@type='text']")}
    data.update({e.get("name"): "on" for e in page.xpath("//form//input[@type='checkbox'][@checked]")})
    data.update({e.get("name"): (e.xpath("option[@selected]/@value") or [""])[0] for e in page.xpath("//form//select")})
    data.update(values)
    return data


def test_federation_pages_create_admit_record_revoke_and_stop(site: Site) -> None:
    page = page_of(site.get(f"/federations/new?module={FEDERATED_MODULE}"))
    assert field(page, "rounds")[0].get("value") == "5" and field(page, "module")[0].get("value") == FEDERATED_MODULE
    refused = site.post("/federations/new", federation_form(page, min_fit_clients="3", rounds="4",
                                                            **{"privacy.metric_privacy": "on"}))
    assert refused.status_code == 422
    errors = page_of(refused)
    control, error = field(errors, "min_fit_clients")
    assert control.get("value") == "3" and "cannot exceed min_available_clients" in error
    control, error = field(errors, "privacy.metric_privacy")
    assert control.get("checked") is not None and "differential_privacy" in error
    assert field(errors, "rounds")[0].get("value") == "4"
    assert site.federations.ledger.find() == []

    created = site.post("/federations/new", federation_form(page, rounds="3", title="Anomalies <across> sites"))
    assert created.status_code == 303, created.text
    location = created.headers["location"]
    identifier = location.rsplit("/", 1)[1]
    assert site.federations.get(identifier).settings["rounds"] == 3
    listing = page_of(site.get("/federations"))
    assert listing.xpath("//a[@href=$h]", h=location)

    # a client: its private key on the answer to the form, never again
    admitted = site.post(f"{location}/clients", {"name": "site-a"})
    assert admitted.status_code == 201
    key = page_of(admitted).get_element_by_id("issued-key").text_content()
    assert "PRIVATE KEY" in key
    later = site.get(location)
    assert key.strip() not in later.text and "PRIVATE KEY" not in later.text
    fingerprint = site.federations.get(identifier).client("site-a").fingerprint
    assert fingerprint in later.text
    bad = site.post(f"{location}/clients", {"name": "site a!"})
    assert bad.status_code == 422
    control, error = field(page_of(bad), "name")
    assert control.get("value") == "site a!" and "a client's name is" in error
    again = site.post(f"{location}/clients", {"name": "site-a"})
    assert again.status_code == 409 and "has a client of that name" in field(page_of(again), "name")[1]
    for name in ("site-b", "site-c", "site-d"):
        assert site.post(f"{location}/clients", {"name": name}).status_code == 201

    # the SuperLink would register the keys once it runs; here the test gives them node ids
    federation = site.federations.get(identifier)
    for number, client in enumerate(federation.clients, start=11):
        client.node_id = str(number)
    site.federations._write_session(federation)
    nodes = site.federations.get(identifier).admitted_nodes()
    token = {"X-Recorder-Token": read_env(site.federations.root / identifier / "secrets" / "superlink.env")[TOKEN_VARIABLE]}
    far = [[0.0 if i == j else (10.0 if 3 in (i, j) else 1.0) for j in range(4)] for i in range(4)]
    for number, distances in ((1, None), (2, far)):
        record = round_record(identifier, number, nodes, distances, server_metrics={"mse": 0.5 / number},
                              evaluate_metrics={"mse": 0.6 / number})
        assert site.client.post(f"/v1/federations/{identifier}/rounds", json=record, headers=token).status_code == 201

    page = page_of(site.get(location))
    charts = page.xpath("//section[@id='rounds']//*[local-name()='svg'][@role='img']")
    assert len(charts) == 2 + 2  # mse and train-loss by round; a divergence chart per round
    assert text_of(charts[0].xpath("*[local-name()='title']")[0]) == "mse by round"
    assert len(charts[0].xpath(".//*[local-name()='circle' or local-name()='rect']/*[local-name()='title']")) >= 4
    flagged = page.xpath("//table[contains(@class, 'flagged')]/tbody/tr")
    assert [[text_of(c) for c in row.xpath("td|th")][:2] for row in flagged] == [["2", "site-d"]]
    assert "flagged: site-d" in text_of(page.get_element_by_id("divergence-2-desc"))
    assert "Anomalies <across> sites" in text_of(page.xpath("//h1")[0]) and "<across>" not in site.get(location).text

    # another VO: not found; the owner's VO: sees, may not change
    assert site.get(location, who="bob").status_code == 404
    assert site.post(f"{location}/clients", {"name": "x"}, who="bob").status_code == 404
    assert site.get(location, who="carol").status_code == 200
    assert site.post(f"{location}/clients/site-a/revoke", {}, who="carol").status_code == 403
    assert not page_of(site.get("/federations", who="bob")).xpath("//a[@href=$h]", h=location)

    revoked = site.post(f"{location}/clients/site-d/revoke", {})
    assert revoked.status_code == 303
    assert site.federations.get(identifier).client("site-d").status == "revoked"
    row = page_of(site.get(location)).xpath("//table[contains(@class, 'clients')]/tbody/tr[th='site-d']")[0]
    assert "revoked" in text_of(row) and not row.xpath(".//form")
    assert site.post(f"{location}/clients/nobody/revoke", {}).status_code == 404

    assert site.post(f"{location}/stop", {}, csrf=False).status_code == 403
    assert site.post(f"{location}/stop", {}).status_code == 303
    assert site.federations.get(identifier).status == "stopped"
    page = page_of(site.get(location))
    assert text_of(page.get_element_by_id("federation-status")) == "stopped"
    assert not page.xpath("//form[contains(@action, '/clients')]")


# -- plots ------------------------------------------------------------------------------------------------
def test_plots_escape_their_text_and_mark_what_is_flagged() -> None:
    line = str(plots.line_chart("m", "loss <by> round", [plots.Series("<script>x</script>", [(1, 0.5), (2, None), (3, 0.1)])]))
    assert "<script>" not in line and "&lt;script&gt;" in line and "loss &lt;by&gt; round" in line
    tree = lxml.html.fromstring(line)
    assert len(tree.xpath("//circle")) == 2 + 1  # two points and the legend's marker
    assert plots.nice_ticks(0.23, 0.91) == [0.2, 0.4, 0.6, 0.8, 1.0]
    bars = lxml.html.fromstring(str(plots.bar_chart("d", "divergence", [plots.Bar("a", 1.0), plots.Bar("b", 9.0, True)],
                                                    limit=3.0, limit_label="limit")))
    assert [r.get("fill").startswith("url(") for r in bars.xpath("//rect[title]")] == [False, True]
    assert "flagged: b" in bars.xpath("//desc")[0].text
    assert "No values yet" in str(plots.line_chart("e", "empty", [plots.Series("s", [(1, None)])]))


# -- in a real browser ------------------------------------------------------------------------------------------
def test_deploy_follow_and_delete_and_a_federation_in_chromium(chromium: Any, tmp_path: Path, flower_bin: Path) -> None:
    from playwright.sync_api import expect

    import browser
    from ai4kg.config import Settings
    from ai4kg.demo import load_demo_catalog
    from ai4kg.graph.store import KnowledgeGraph
    from ai4kg.adapters.local import LocalExecutor
    from ai4kg.workloads.service import Deployments

    graph = KnowledgeGraph(Settings(data_dir=tmp_path / "data", control_interval=0.5))
    load_demo_catalog(graph)
    # one core per user: the module runs; a second deployment, and the federation's server, wait for it
    deployments = Deployments(graph, LocalExecutor(tmp_path / "local", {"local": Resources(4, 16000, 0, 100000)}),
                              Quotas(user=Resources(cpu=1, memory_mb=4000, gpu=0, disk_mb=500000)))
    keys = KeyStore(tmp_path / "data")
    key, secret = keys.create("alice", frozenset({"default"}))
    app = create_app(graph, keys, deployments)
    federations = app.state.federations
    federations.flower_location = flower_bin.parent
    context = None
    try:
        with browser.dashboard_server(app) as url:
            context = chromium.new_context(bypass_csp=True, extra_http_headers={"Authorization": f"Bearer {secret}"},
                                           viewport={"width": 1280, "height": 900})
            page = context.new_page()
            dialogs: list[str] = []

            def accept(dialog: Any) -> None:
                dialogs.append(dialog.message)
                dialog.accept()
            page.on("dialog", accept)
            console: list[str] = []
            # the refused form answers 422, which Chromium logs; any other error is the pages'
            page.on("console", lambda m: console.append(m.text) if m.type == "error" and "status of 422" not in m.text
                    else None)

            def accessible(name: str) -> None:
                problems = browser.accessibility_problems(page)
                assert problems == [], f"{name}: {browser.describe(problems)}"

            # the module's deploy form; a bad figure is refused next to its field, the rest kept
            page.goto(f"{url}/deployments/new?module={MODULE}")
            expect(page.get_by_label("Module")).to_have_value(MODULE)
            accessible("the deploy form")
            page.get_by_label("Title").fill("Flood segmentation API")
            page.get_by_label("CPU cores").fill("0")
            page.get_by_role("button", name="Deploy").click()
            cpu = page.get_by_label("CPU cores")
            expect(cpu).to_have_attribute("aria-invalid", "true")
            expect(page.locator("#f-resources-cpu-error")).to_have_text("must be at least 1")
            expect(cpu).to_have_accessible_description(re.compile("must be at least 1"))
            expect(page.get_by_label("Title")).to_have_value("Flood segmentation API")
            expect(page.locator(".error-summary")).to_be_focused()
            accessible("the deploy form with an error")
            browser.screenshot(page, "deployment-new")

            # deploy: the detail page follows it until it runs (its status section polled)
            cpu.fill("1")
            with page.expect_request(re.compile(r"/deployments/d-[0-9a-f]+/live$"), timeout=60_000):
                page.get_by_role("button", name="Deploy").click()
                page.wait_for_url(re.compile(r"/deployments/d-[0-9a-f]+$"))
            identifier = page.url.rsplit("/", 1)[1]
            expect(page.locator("#deployment-status")).to_have_text("running", timeout=90_000)
            expect(page.locator("#live a[href^='http://127.0.0.1:']")).to_have_count(1, timeout=30_000)
            expect(page.locator("table.history tbody tr")).to_have_count(3)  # queued, starting, running
            accessible("a deployment")
            browser.screenshot(page, "deployment")

            # the list: a second deployment waits for the quota; deleted meanwhile, its cell follows
            second, _ = deployments.create({"kind": "module", "module": "sst-forecaster", "title": "SST forecaster"},
                                           Requester(f"api-key:{key.id}", frozenset({"default"})))
            assert second.status == "queued"
            page.goto(f"{url}/deployments")
            expect(page.locator(f"#status-{identifier}")).to_have_text("running")
            expect(page.locator(f"#status-{second.identifier}")).to_contain_text("waiting for the owner's quota")
            deployments.delete(second.identifier, Requester(f"api-key:{key.id}", frozenset({"default"})))
            expect(page.locator(f"#status-{second.identifier}")).to_have_text("stopped", timeout=30_000)
            accessible("the deployments")
            browser.screenshot(page, "deployments")

            # a federation: created from its form, four clients admitted (a key shown for each)
            page.goto(f"{url}/federations/new?module={FEDERATED_MODULE}")
            accessible("the federation form")
            page.get_by_label("Title").fill("Anomalies across four sites")
            page.get_by_label("Rounds", exact=True).fill("3")
            page.get_by_role("button", name="Start federation").click()
            page.wait_for_url(re.compile(r"/federations/f-[0-9a-f]+$"))
            federation = page.url.rsplit("/", 1)[1]
            for name in ("site-a", "site-b", "site-c", "site-d"):
                page.get_by_label("New client's name").fill(name)
                page.get_by_role("button", name="Add client").click()
                expect(page.locator("#issued-heading")).to_contain_text(f"Client {name} admitted")
                expect(page.locator("#issued-key")).to_contain_text("PRIVATE KEY")
            accessible("a federation with a key shown")

            # two rounds posted by the federation's recorder (the keys given node ids, as the SuperLink would)
            session = federations.get(federation)
            for number, client in enumerate(session.clients, start=21):
                client.node_id = str(number)
            federations._write_session(session)
            nodes = federations.get(federation).admitted_nodes()
            far = [[0.0 if i == j else (10.0 if 3 in (i, j) else 1.0) for j in range(4)] for i in range(4)]
            for number, distances in ((1, None), (2, far), (3, None)):
                record = round_record(federation, number, nodes, distances,
                                      server_metrics={"mse": round(0.5 / number, 3)},
                                      evaluate_metrics={"mse": round(0.6 / number + 0.02, 3)},
                                      train_metrics={"train-loss": round(0.7 / number, 3)})
                federations.record_round(federations.get(federation), record)
            expect(page.locator("#live .notice")).to_contain_text("3 more rounds recorded", timeout=30_000)
            page.goto(f"{url}/federations/{federation}")
            expect(page.locator("#rounds svg[role='img']")).to_have_count(2 + 3)
            expect(page.locator("table.flagged tbody tr")).to_have_count(1)
            expect(page.locator("table.flagged tbody tr th")).to_have_text("site-d")
            expect(page.locator("#issued-key")).to_have_count(0)  # shown once
            accessible("a federation")
            browser.screenshot(page, "federation")

            page.get_by_role("button", name="Revoke site-d").click()
            expect(page.locator("table.clients tr", has_text="site-d")).to_contain_text("revoked")
            assert dialogs[-1].startswith("Revoke client site-d?")

            page.goto(f"{url}/federations")
            expect(page.get_by_role("link", name="Anomalies across four sites")).to_be_visible()
            accessible("the federations")
            browser.screenshot(page, "federations")

            page.goto(f"{url}/federations/{federation}")
            page.get_by_role("button", name="Stop federation").click()
            expect(page.locator("#federation-status")).to_have_text("stopped", timeout=30_000)

            # delete the deployment: asked first, then stopped
            page.goto(f"{url}/deployments/{identifier}")
            page.get_by_role("button", name="Delete deployment").click()
            expect(page.locator("#deployment-status")).to_have_text("stopped", timeout=60_000)
            assert dialogs[-1].startswith("Delete deployment Flood segmentation API?")
            assert deployments.get(identifier).status == "stopped"
            assert federations.get(federation).status == "stopped"
            assert console == [], console
    finally:
        if context is not None:
            context.close()
        stop_everything(tmp_path / "local")
        federations.close()
        deployments.close()
        graph.close()
