"""FAIR reports: which findable / accessible / interoperable / reusable checks a module passes.

The checks are SHACL shapes (shapes/fair/checks.ttl), each annotated with its id, FAIR principle,
level (must / should), title and advice naming the ai4-metadata field to add. They run on the
module's MLDCAT-AP 3.1.0 view (graph/views.py, mappings/views/mldcat-ap.rq) together with the
official MLDCAT-AP shapes (shapes/standards/), in one pyshacl run with inference off, so the
report also says whether the view conforms to MLDCAT-AP and which official results lie behind
each failed must-check. Views never invent values: a mandatory property the metadata lacks
(version, training data, model file, ...) fails its check, and the advice says what to add.

The catalogue report validates every module the reader may see in one run over the union of
their views (about half the time of one run per module), gives each result to the modules whose
own view describes the node at fault, so that a module's entry equals its own report, and checks
the DCAT-AP 3.0.1 view of the catalogue against the official DCAT-AP shapes.
"""

from __future__ import annotations

import threading
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from importlib import resources
from typing import Any, Iterable

import pyoxigraph as ox
import rdflib
from pyshacl import Validator
from pyshacl.graph_abstraction import DataGraph
from pyshacl.shapes_graph import ShapesGraph
from rdflib.collection import Collection
from rdflib.namespace import RDF, SH
from rdflib.term import Node, URIRef

from .search import FacetQuery, Readers
from .store import KnowledgeGraph
from .views import PREFIXES, VIEWS
from ..threads import once

AI4KG = rdflib.Namespace("https://w3id.org/ai4kg/ns#")
DCT = rdflib.Namespace("http://purl.org/dc/terms/")
_RDF_TYPE = ox.NamedNode(str(RDF.type))
_MODEL = ox.NamedNode("http://data.europa.eu/it6/MachineLearningModel")

FAIR_CHECKS = "shapes/fair/checks.ttl"
MLDCAT_AP = ("shapes/standards/mldcat-ap/3.1.0/shacl/mldcat-ap-SHACL.ttl",)
DCAT_AP = tuple(f"shapes/standards/dcat-ap/3.0.1/html-shacl/{name}.ttl"
                for name in ("shapes", "range", "shapes_recommended", "deprecateduris"))
"""The official shape files, vendored unchanged (shapes/standards/README.md); DCAT-AP as its
release merges them."""

PRINCIPLES = {"F": "findable", "A": "accessible", "I": "interoperable", "R": "reusable"}
PASS, FAIL, NOT_APPLICABLE = "pass", "fail", "not applicable"
_COMPACT = {**PREFIXES, "it6": "http://data.europa.eu/it6/", "lpwcc": "https://linkedpaperswithcode.com/class/",
            "sh": str(SH), "mldcat": "https://semiceu.github.io/MLDCAT-AP/releases/3.1.0#",
            "fair": "https://w3id.org/ai4kg/shapes/fair#"}


def compact(iri: str) -> str:
    """prefix:name for the usual namespaces, else the IRI."""
    for prefix, namespace in _COMPACT.items():
        if iri.startswith(namespace) and len(iri) > len(namespace):
            return f"{prefix}:{iri[len(namespace):]}"
    return iri


# -- shapes ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Check:
    """One FAIR check as shapes/fair/checks.ttl declares it."""

    id: str
    principle: str
    """The FAIR principle, e.g. F1, A1.2, R1.1."""
    level: str
    """must (a mandatory property of MLDCAT-AP) or should (good practice)."""
    title: str
    advice: str
    field: str | None
    """The ai4-metadata 2.x field that feeds the checked property, when there is one."""
    shape: str
    target_property: str | None
    """sh:targetObjectsOf: the check applies only to modules that have this property."""
    standard_shape: str | None
    """The official MLDCAT-AP node shape whose mandatory properties a must-check mirrors."""
    paths: frozenset[str]
    """The properties its (property) shapes check, for matching official results."""

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.id, "principle": self.principle, "level": self.level, "title": self.title,
                "advice": self.advice, "field": self.field}


class _Shapes:
    """A shapes graph parsed and prepared for pyshacl once, then used for every validation."""

    def __init__(self, files: Iterable[str]):
        self.graph = rdflib.Graph()
        for name in files:
            self.graph.parse(data=resources.files("ai4kg").joinpath(name).read_text("utf-8"), format="turtle")
        # pyshacl builds its Shape objects from the shapes graph on every run, which is about half
        # of a one-module run; prepared here once and reused under a lock (pyshacl is pure
        # Python, holding the GIL, so the lock costs no parallelism). This sets pyshacl's
        # Validator.shacl_graph after construction, an internal pinned by uv.lock;
        # tests/test_fair.py compares the results with a plain pyshacl.validate.
        self._prepared = ShapesGraph(self.graph)
        # Only shapes with a target declaration find focus nodes of their own (the others run
        # from the shapes that refer to them), so only they are handed to pyshacl as the shapes
        # to run: the same results, without computing the (empty) targets of 700 property shapes.
        targeted = [shape.node for shape in self._prepared.shapes if any(map(any, shape.target()))]
        self._use_shapes = [str(n) for n in targeted] if all(isinstance(n, URIRef) for n in targeted) else None
        self._lock = threading.Lock()

    def validate(self, data: rdflib.Graph) -> rdflib.Graph:
        """The SHACL validation report of `data` (inference off)."""
        options = {"inference": "none", "inplace": True, "allow_warnings": True, "allow_infos": True,
                   "use_shapes": self._use_shapes}
        with self._lock:
            validator = Validator(DataGraph.from_rdflib(data), shacl_graph=rdflib.Graph(), options=options)
            validator.shacl_graph = self._prepared
            _, report, _ = validator.run()
        return report


@once
def model_shapes() -> _Shapes:
    """The FAIR checks and the official MLDCAT-AP 3.1.0 shapes, one shapes graph."""
    return _Shapes((FAIR_CHECKS, *MLDCAT_AP))


@once
def catalog_shapes() -> _Shapes:
    """The official DCAT-AP 3.0.1 shapes, merged."""
    return _Shapes(DCAT_AP)


@dataclass(frozen=True)
class _Catalogue:
    """The checks, and how to trace a SHACL result back to one."""

    checks: tuple[Check, ...]
    check_of_shape: dict[str, str]
    """A check's shape or one of its property shapes -> the check's id."""
    check_of_standard: dict[tuple[str, str], str]
    """(official node shape, path) -> the must-check that mirrors it."""
    standard_parent: dict[str, str]
    """An official property shape -> its node shape."""


@once
def _catalogue() -> _Catalogue:
    graph = model_shapes().graph
    text = lambda node, p: str(graph.value(node, p)) if graph.value(node, p) is not None else None  # noqa: E731
    checks, check_of_shape = [], {}
    for shape in sorted(set(graph.subjects(AI4KG.fairPrinciple, None)),
                        key=lambda s: (int(graph.value(s, SH.order) or 0), str(s))):
        check_id = str(shape).rsplit("#", 1)[-1]
        property_shapes = [shape, *graph.objects(shape, SH.property)]
        paths = frozenset(str(p) for s in property_shapes for p in graph.objects(s, SH.path) if isinstance(p, URIRef))
        target = graph.value(shape, SH.targetObjectsOf)
        standard = graph.value(shape, AI4KG.standardShape)
        checks.append(Check(check_id, text(shape, AI4KG.fairPrinciple) or "", text(shape, AI4KG.fairLevel) or "",
                            text(shape, DCT.title) or check_id, text(shape, AI4KG.fairAdvice) or "",
                            text(shape, AI4KG.fairField), str(shape), str(target) if target else None,
                            str(standard) if standard else None, paths))
        for s in property_shapes:
            check_of_shape[str(s)] = check_id
    check_of_standard = {(c.standard_shape, path): c.id for c in checks if c.standard_shape for path in c.paths}
    standard_parent = {str(ps): str(ns) for ns, ps in graph.subject_objects(SH.property)
                       if str(ps) not in check_of_shape}
    return _Catalogue(tuple(checks), check_of_shape, check_of_standard, standard_parent)


def checks() -> tuple[Check, ...]:
    """Every FAIR check, in display order."""
    return _catalogue().checks


# -- results --------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Finding:
    """One SHACL result, as the report shows it."""

    focus: str
    """The node that failed: the model, or a node it links (its file, its training dataset)."""
    via: str | None
    """The property of the model that links the focus node, when it is not the model."""
    path: str | None
    value: str | None
    message: str
    component: str
    """The SHACL constraint component, e.g. MinCount, Class, Not."""
    severity: str
    """Violation, Warning or Info."""
    shape: str

    def as_dict(self) -> dict[str, Any]:
        return {"focus": self.focus, "via": self.via, "path": self.path, "value": self.value,
                "message": self.message, "component": self.component, "severity": self.severity}


@dataclass
class CheckOutcome:
    check: Check
    status: str
    """pass, fail, or not applicable (a check on a linked node when the model links none)."""
    findings: list[Finding] = field(default_factory=list)
    """The results of the check's own shapes."""
    standard: list[Finding] = field(default_factory=list)
    """The official MLDCAT-AP results behind a failed must-check."""

    @property
    def passed(self) -> bool:
        return self.status != FAIL

    def as_dict(self) -> dict[str, Any]:
        return {**self.check.as_dict(), "status": self.status, "passed": self.passed,
                "findings": [f.as_dict() for f in self.findings], "standard": [f.as_dict() for f in self.standard]}


@dataclass(frozen=True)
class Score:
    passed: int
    applicable: int

    @property
    def ratio(self) -> float | None:
        return round(self.passed / self.applicable, 3) if self.applicable else None

    def as_dict(self) -> dict[str, Any]:
        return {"passed": self.passed, "applicable": self.applicable, "score": self.ratio}


def _scores(outcomes: list[CheckOutcome]) -> dict[str, Score]:
    scores = {}
    for letter in PRINCIPLES:
        applicable = [o for o in outcomes if o.check.principle.startswith(letter) and o.status != NOT_APPLICABLE]
        scores[letter] = Score(sum(o.status == PASS for o in applicable), len(applicable))
    return scores


@dataclass
class FairReport:
    """The FAIR report of one module."""

    iri: str
    checks: list[CheckOutcome]
    mldcat_ap_violations: list[Finding]
    """Every official MLDCAT-AP 3.1.0 result on the module's view."""

    @property
    def name(self) -> str:
        return self.iri.rsplit("/", 1)[-1]

    @property
    def conforms_to_mldcat_ap(self) -> bool:
        return not any(f.severity == "Violation" for f in self.mldcat_ap_violations)

    @property
    def must_passed(self) -> bool:
        return all(o.passed for o in self.checks if o.check.level == "must")

    @property
    def scores(self) -> dict[str, Score]:
        return _scores(self.checks)

    def failed(self, level: str | None = None) -> list[str]:
        return [o.check.id for o in self.checks if not o.passed and level in (None, o.check.level)]

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "iri": self.iri, "must_passed": self.must_passed,
                "scores": {k: s.as_dict() for k, s in self.scores.items()},
                "conforms_to_mldcat_ap": self.conforms_to_mldcat_ap,
                "mldcat_ap_violations": [f.as_dict() for f in self.mldcat_ap_violations],
                "checks": [o.as_dict() for o in self.checks]}


class UnknownModule(LookupError):
    pass


def _to_rdflib(triples: list[ox.Triple]) -> rdflib.Graph:
    graph = rdflib.Graph()
    data = ox.serialize(triples, format=ox.RdfFormat.N_TRIPLES)
    if data:
        graph.parse(data=data.decode("utf-8"), format="nt")
    return graph


def _path_text(report: rdflib.Graph, path: Node | None) -> str | None:
    """A SHACL property path as text: prefix:name, a|b for alternatives, a/b for sequences, ^a."""
    if path is None:
        return None
    if isinstance(path, URIRef):
        return compact(str(path))
    alternatives = report.value(path, SH.alternativePath)
    if alternatives is not None:
        return "|".join(_path_text(report, p) or "?" for p in Collection(report, alternatives))
    inverse = report.value(path, SH.inversePath)
    if inverse is not None:
        return "^" + (_path_text(report, inverse) or "?")
    if report.value(path, RDF.first) is not None:
        return "/".join(_path_text(report, p) or "?" for p in Collection(report, path))
    return str(path)


class _Attribution:
    """Which modules a SHACL result concerns: those whose own view describes the focus node (has
    triples about it). A node several views describe (a shared training dataset, a licence, a
    concept) concerns each of them; a node a view only links to (dct:relation) does not concern it."""

    def __init__(self, views: dict[str, list[ox.Triple]]):
        self.models = {iri for iri, triples in views.items()
                       if any(t.subject.value == iri and t.predicate == _RDF_TYPE and t.object == _MODEL for t in triples)}
        self.describers: dict[str, dict[str, str | None]] = defaultdict(dict)
        self.properties: set[tuple[str, str]] = set()
        for model in self.models:
            links: dict[str, str] = {}
            for t in views[model]:
                if t.subject.value == model:
                    self.properties.add((model, t.predicate.value))
                    if not isinstance(t.object, ox.Literal):
                        links.setdefault(t.object.value, compact(t.predicate.value))
            for t in views[model]:
                subject = t.subject.value
                self.describers[subject].setdefault(model, None if subject == model else links.get(subject))

    def modules_of(self, focus: str) -> dict[str, str | None]:
        """The modules a result on `focus` concerns, each with the property by which the model
        links the focus node (None: the model itself, or a node it reaches through another)."""
        return self.describers.get(focus, {})


@dataclass(frozen=True)
class _Result:
    focus: str
    path: str | None
    """The result path as text (prefix:name, a|b, ...)."""
    path_iri: str | None
    """The result path when it is one property."""
    value: str | None
    message: str
    component: str
    severity: str
    shape: str

    def finding(self, via: str | None) -> Finding:
        return Finding(self.focus, via, self.path, self.value, self.message, self.component, self.severity, self.shape)


def _results(report: rdflib.Graph) -> list[_Result]:
    """The results of a pyshacl report, in a stable order."""
    results = []
    # Top-level results only: pyshacl also types the nested results of sh:node (its sh:detail)
    # as sh:ValidationResult.
    for result in report.objects(None, SH.result):
        severity = str(report.value(result, SH.resultSeverity) or SH.Violation).rsplit("#", 1)[-1]
        component = str(report.value(result, SH.sourceConstraintComponent) or "").rsplit("#", 1)[-1]
        component = component.removesuffix("ConstraintComponent")
        path, value = report.value(result, SH.resultPath), report.value(result, SH.value)
        results.append(_Result(str(report.value(result, SH.focusNode)), _path_text(report, path),
                               str(path) if isinstance(path, URIRef) else None, None if value is None else str(value),
                               str(report.value(result, SH.resultMessage) or component), component, severity,
                               str(report.value(result, SH.sourceShape))))
    return sorted(results, key=lambda r: (r.focus, r.path or "", r.value or "", r.message, r.shape))


@dataclass
class _ModuleResults:
    fair: dict[str, list[Finding]] = field(default_factory=lambda: defaultdict(list))
    official: list[Finding] = field(default_factory=list)
    standard: dict[str, list[Finding]] = field(default_factory=lambda: defaultdict(list))
    """Official results by the must-check that mirrors them."""


def _evaluate(views: dict[str, list[ox.Triple]]) -> dict[str, FairReport]:
    """The FAIR reports of modules, from their MLDCAT-AP views, in one pyshacl run over the union."""
    attribution = _Attribution(views)
    report = model_shapes().validate(_to_rdflib(list(dict.fromkeys(t for v in views.values() for t in v))))
    catalogue = _catalogue()
    by_module: dict[str, _ModuleResults] = {m: _ModuleResults() for m in attribution.models}
    for result in _results(report):
        check_id = catalogue.check_of_shape.get(result.shape)
        for module, via in attribution.modules_of(result.focus).items():
            if check_id is not None:
                by_module[module].fair[check_id].append(result.finding(via))
                continue
            by_module[module].official.append(result.finding(via))
            parent = catalogue.standard_parent.get(result.shape)
            mirrored = catalogue.check_of_standard.get((parent, result.path_iri)) if parent else None
            if mirrored is not None:
                by_module[module].standard[mirrored].append(result.finding(via))
    reports = {}
    for module, results in sorted(by_module.items()):
        outcomes = []
        for check in catalogue.checks:
            if check.target_property is not None and (module, check.target_property) not in attribution.properties:
                outcomes.append(CheckOutcome(check, NOT_APPLICABLE))
                continue
            findings = results.fair.get(check.id, [])
            outcomes.append(CheckOutcome(check, FAIL if findings else PASS, findings, results.standard.get(check.id, [])))
        reports[module] = FairReport(module, outcomes, results.official)
    return reports


def fair_report(graph: KnowledgeGraph, iri: str, readers: Readers = None) -> FairReport:
    """The FAIR report of the module `iri`; the caller has checked that `readers` may see it."""
    try:
        return report_of_view(iri, VIEWS["mldcat-ap"].describe(graph, iri, readers))
    except UnknownModule:
        raise UnknownModule(f"no module {iri}") from None


def report_of_view(iri: str, triples: list[ox.Triple]) -> FairReport:
    """The FAIR report of the model `iri` from its MLDCAT-AP description, however it was made."""
    reports = _evaluate({iri: triples})
    if iri not in reports:
        raise UnknownModule(f"no it6:MachineLearningModel {iri} in the triples")
    return reports[iri]


def module_iris(graph: KnowledgeGraph, readers: Readers = None) -> list[str]:
    """Every module `readers` may see (None: all), from the search index."""
    iris: list[str] = []
    after = None
    while True:
        page = graph.index.filter(FacetQuery("Module", readers, limit=1000, after=after))
        iris += page.iris
        if page.next_after is None:
            return iris
        after = page.next_after


# -- the catalogue --------------------------------------------------------------------------------

@dataclass
class CheckSummary:
    check: Check
    passed: int
    failed: int
    not_applicable: int
    failing: list[str]
    """Names of the modules that fail it."""

    def as_dict(self) -> dict[str, Any]:
        return {**self.check.as_dict(), "passed": self.passed, "failed": self.failed,
                "not_applicable": self.not_applicable, "failing": self.failing}


@dataclass
class CatalogFairReport:
    modules: list[FairReport]
    checks: list[CheckSummary]
    conforms_to_dcat_ap: bool
    dcat_ap_violations: list[Finding]
    dcat_ap_warnings: list[dict[str, Any]]
    """DCAT-AP warnings (recommended properties the view lacks), counted by class, path and
    constraint component."""

    @property
    def must_passed(self) -> bool:
        return all(m.must_passed for m in self.modules)

    def as_dict(self) -> dict[str, Any]:
        return {
            "modules_count": len(self.modules),
            "must_passed": self.must_passed,
            "conforms_to_dcat_ap": self.conforms_to_dcat_ap,
            "dcat_ap_violations": [f.as_dict() for f in self.dcat_ap_violations],
            "dcat_ap_warnings": self.dcat_ap_warnings,
            "modules_conforming_to_mldcat_ap": sum(m.conforms_to_mldcat_ap for m in self.modules),
            "checks": [c.as_dict() for c in self.checks],
            "modules": [{"name": m.name, "iri": m.iri, "must_passed": m.must_passed,
                         "conforms_to_mldcat_ap": m.conforms_to_mldcat_ap,
                         "scores": {k: s.as_dict() for k, s in m.scores.items()},
                         "failed": m.failed()} for m in self.modules],
        }


def catalog_fair_report(graph: KnowledgeGraph, readers: Readers = None) -> CatalogFairReport:
    """The FAIR report of every module `readers` may see (None: all), with the catalogue's
    DCAT-AP 3.0.1 conformance."""
    view = VIEWS["mldcat-ap"]
    reports = _evaluate({iri: view.describe(graph, iri, readers) for iri in module_iris(graph, readers)})
    modules = list(reports.values())
    summaries = []
    for i, check in enumerate(checks()):
        statuses = Counter(m.checks[i].status for m in modules)
        summaries.append(CheckSummary(check, statuses[PASS], statuses[FAIL], statuses[NOT_APPLICABLE],
                                      [m.name for m in modules if m.checks[i].status == FAIL]))
    violations, warnings = _dcat_ap(VIEWS["dcat-ap"].catalog(graph, readers))
    return CatalogFairReport(modules, summaries, not violations, violations, warnings)


def _dcat_ap(triples: list[ox.Triple]) -> tuple[list[Finding], list[dict[str, Any]]]:
    data = _to_rdflib(triples)
    report = catalog_shapes().validate(data)
    violations, warnings = [], Counter()
    for result in _results(report):
        if result.severity == "Violation":
            violations.append(result.finding(None))
        else:
            kinds = sorted(compact(str(t)) for t in data.objects(URIRef(result.focus), RDF.type))
            warnings[(", ".join(kinds), result.path or "", result.component)] += 1
    return violations, [{"class": kind, "path": path, "component": component, "count": count}
                        for (kind, path, component), count in sorted(warnings.items(), key=lambda w: (-w[1], w[0]))]
