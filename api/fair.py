"""FAIR reports over HTTP, for what the reader may see (graph/fair.py does the work).

    GET /v1/catalog/{modules|tools}/{name}/fair   one module: its checks, scores, MLDCAT-AP conformance
    GET /v1/catalog/fair                          every visible module, per check, and DCAT-AP conformance

A module the reader may not see is 404, as everywhere in the catalog. pyshacl runs in a worker
thread (tens of milliseconds per module: it must not hold up the event loop).
"""

from __future__ import annotations

import inspect
from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from ..graph.fair import UnknownModule, catalog_fair_report, fair_report
from ..graph.namespaces import asset_iri
from ..graph.store import KnowledgeGraph
from ..metadata.records import is_valid_identifier
from .access import read, readers_of, visible_quads
from .problems import Problem

_TOOLS_CATEGORY = "/category/ai4-tools"


class Finding(BaseModel):
    """A SHACL result behind a failed check."""

    focus: str = Field(description="The node that failed: the model, or a node it links (its file, its training dataset)")
    via: str | None = Field(description="The model's property that links the focus node, when it is not the model")
    path: str | None = Field(description="The property (path) at fault, as prefix:name")
    value: str | None = Field(description="The value at fault, if any")
    message: str
    component: str = Field(description="The SHACL constraint component, e.g. MinCount, Class, Not")
    severity: str = Field(description="Violation, Warning or Info")


class Score(BaseModel):
    passed: int
    applicable: int
    score: float | None = Field(description="passed / applicable; null when no check applies")


class CheckResult(BaseModel):
    id: str
    principle: str = Field(description="The FAIR principle, e.g. F1, A1.2, R1.1")
    level: str = Field(description="must (mandatory in MLDCAT-AP 3.1.0) or should (good practice)")
    title: str
    advice: str = Field(description="What the author can do, naming the ai4-metadata field to add")
    field: str | None = Field(description="The ai4-metadata 2.x field that feeds the checked property")
    status: str = Field(description="pass, fail or not applicable", json_schema_extra={"enum": ["pass", "fail", "not applicable"]})
    passed: bool
    findings: list[Finding] = Field(description="The results of the check's own shapes")
    standard: list[Finding] = Field(description="The official MLDCAT-AP results behind a failed must-check")


class ModuleFairReport(BaseModel):
    name: str
    iri: str
    must_passed: bool = Field(description="Every must-check passes")
    scores: dict[str, Score] = Field(description="Per FAIR letter (F, A, I, R): applicable checks passed")
    conforms_to_mldcat_ap: bool = Field(description="The module's MLDCAT-AP view conforms to the official 3.1.0 shapes")
    mldcat_ap_violations: list[Finding]
    checks: list[CheckResult]


class CheckSummary(BaseModel):
    id: str
    principle: str
    level: str
    title: str
    advice: str
    field: str | None
    passed: int
    failed: int
    not_applicable: int
    failing: list[str] = Field(description="Names of the modules that fail the check")


class ModuleSummary(BaseModel):
    name: str
    iri: str
    must_passed: bool
    conforms_to_mldcat_ap: bool
    scores: dict[str, Score]
    failed: list[str] = Field(description="Ids of the checks the module fails")


class WarningCount(BaseModel):
    class_: str = Field(alias="class", description="The focus node's classes")
    path: str
    component: str
    count: int


class CatalogFairReport(BaseModel):
    modules_count: int
    must_passed: bool = Field(description="Every visible module passes every must-check")
    conforms_to_dcat_ap: bool = Field(description="The catalogue's DCAT-AP view has no DCAT-AP 3.0.1 violation")
    dcat_ap_violations: list[Finding]
    dcat_ap_warnings: list[WarningCount] = Field(description="Recommended DCAT-AP properties the view lacks, counted")
    modules_conforming_to_mldcat_ap: int
    checks: list[CheckSummary]
    modules: list[ModuleSummary]


def router(graph: KnowledgeGraph) -> APIRouter:
    routes = APIRouter(prefix="/v1/catalog", tags=["fair"])

    for kind in ("modules", "tools"):
        def module_report(request: Request, name: str, kind: str = kind) -> dict[str, Any]:
            readers = readers_of(request)
            iri = asset_iri(graph.settings.base_url, "Module", name) if is_valid_identifier(name) else None
            quads = visible_quads(graph, iri, readers) if iri else []
            is_tool = any(q.object.value.endswith(_TOOLS_CATEGORY) for q in quads)
            if not quads or is_tool != (kind == "tools"):
                raise Problem(404, "Not found", f"no {kind[:-1]} named {name!r}", "name", name)
            try:
                return fair_report(graph, iri, readers).as_dict()
            except UnknownModule:
                raise Problem(404, "Not found", f"no {kind[:-1]} named {name!r}", "name", name) from None

        async def module_fair(request: Request, name: str, kind: str = kind) -> dict[str, Any]:
            """Which FAIR checks the module passes, from SHACL over its MLDCAT-AP 3.1.0 view, with
            advice naming the metadata field to add, scores per FAIR letter and the module's
            conformance to the official MLDCAT-AP shapes."""
            return await read(graph, module_report, request, name, kind)

        module_fair.__signature__ = _without_kind(module_fair)  # type: ignore[attr-defined]
        routes.get(f"/{kind}/{{name}}/fair", response_model=ModuleFairReport, response_model_by_alias=True,
                   summary=f"The FAIR report of one of the {kind}", operation_id=f"{kind}_fair")(module_fair)

    @routes.get("/fair", response_model=CatalogFairReport, response_model_by_alias=True,
                summary="The FAIR report of the catalogue", operation_id="catalog_fair")
    async def catalog_fair(request: Request) -> dict[str, Any]:
        """Per check, how many of the modules the reader may see pass it; per module, its scores
        and failed checks; and whether the catalogue's DCAT-AP view conforms to DCAT-AP 3.0.1."""
        readers = readers_of(request)
        return await read(graph, lambda: catalog_fair_report(graph, readers).as_dict())

    return routes


def _without_kind(function: Any) -> inspect.Signature:
    signature = inspect.signature(function)
    return signature.replace(parameters=[p for p in signature.parameters.values() if p.name != "kind"])
