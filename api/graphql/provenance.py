"""Provenance: training runs and the datasets they used, and the lineage of a node (what it came
from, or what came from it) over the provenance graphs the reader may see."""

from __future__ import annotations

import datetime
from enum import Enum
from typing import Optional

import strawberry

from .. import access
from .context import Info
from .errors import InputError
from .records import Activity, Record
from .values import _date


@strawberry.type(description="One execution of a module's training, as an experiment tracker recorded it.")
class TrainingRun(Activity):
    @strawberry.field
    def mlflow_run(self) -> Optional[str]:
        return self.asset.text("mlflowRun")

    @strawberry.field(description="The module trained (ai4kg:trainedModule); null if the reader may not see it.")
    async def module(self, info: Info) -> Optional[Application]:
        found = await info.context.linked(self.asset.iris("trainedModule"), "Application")
        return _application(found[0]) if found else None


@strawberry.type(description="A dataset registered with the platform.")
class Dataset(Record):
    @strawberry.field
    def summary(self) -> Optional[str]:
        return self.asset.text("summary")

    @strawberry.field
    def description(self) -> Optional[str]:
        return self.asset.text("description")

    @strawberry.field
    def doi(self) -> Optional[str]:
        return self.asset.text("doi")

    @strawberry.field
    def created(self) -> Optional[datetime.date]:
        return _date(self.asset.text("created"))

    @strawberry.field
    def updated(self) -> Optional[datetime.date]:
        return _date(self.asset.text("updated"))

    @strawberry.field
    def vo(self) -> str:
        return self.asset.vo

    @strawberry.field
    def visibility(self) -> str:
        return self.asset.visibility

    @strawberry.field(description="Training runs that used this dataset (ai4kg:usedDataset), by IRI.")
    async def training_runs(self, info: Info) -> list[TrainingRun]:
        runs = await info.context.pointing_at("usedDataset", self.asset.iri, "TrainingRun")
        return [TrainingRun(asset=a) for a in runs]

    @strawberry.field(description="Deployments that used this dataset (ai4kg:usedDataset), by IRI.")
    async def deployments(self, info: Info) -> list[Deployment]:
        deployments = await info.context.pointing_at("usedDataset", self.asset.iri, "Deployment")
        return [Deployment(asset=a) for a in deployments]

    @strawberry.field(description="Federated sessions that used this dataset (ai4kg:usedDataset), by IRI.")
    async def federated_sessions(self, info: Info) -> list[FederatedSession]:
        return [FederatedSession(asset=a)
                for a in await info.context.pointing_at("usedDataset", self.asset.iri, "FederatedSession")]


@strawberry.enum(description="Which way a lineage walk goes.")
class LineageDirection(Enum):
    UPSTREAM = "upstream"
    """What the node came from: what generated it, what it derives from, what it used."""
    DOWNSTREAM = "downstream"
    """What came from the node."""


@strawberry.type(description="A node a lineage walk reached: an entity, an activity or an agent.")
class LineageNode:
    iri: str
    kind: str = strawberry.field(description="Entity, Activity or Agent (PROV-O)")
    types: list[str] = strawberry.field(description="Its PROV-O and ai4kg classes, e.g. Build, ContainerImage")
    label: Optional[str]
    depth: int = strawberry.field(description="Steps from the node the walk started from")


@strawberry.type(description="A PROV statement the walk crossed: source relation target.")
class LineageEdge:
    source: str
    relation: str = strawberry.field(description="The PROV-O relation, e.g. wasGeneratedBy, used, wasDerivedFrom")
    target: str


@strawberry.type(description="The lineage of a node, over the provenance graphs the reader may see.")
class Lineage:
    root: str
    direction: LineageDirection
    depth: int
    truncated: bool = strawberry.field(description="True when the walk stopped at its node limit")
    nodes: list[LineageNode]
    edges: list[LineageEdge]


async def _lineage(info: Info, iri: str, direction: LineageDirection, depth: int) -> Optional[Lineage]:
    from ...provenance.lineage import MAX_DEPTH, lineage

    if not 1 <= depth <= MAX_DEPTH:
        raise InputError(f"depth must be between 1 and {MAX_DEPTH}", "depth", depth)
    context = info.context
    try:
        walk = await access.read(context.graph, lineage, context.graph, iri, direction.value, depth, context.readers)
    except ValueError as exc:
        raise InputError(str(exc), "iri", iri) from None
    return Lineage(root=walk.root, direction=direction, depth=walk.depth, truncated=walk.truncated,
                   nodes=[LineageNode(iri=n.iri, kind=n.kind, types=n.types, label=n.label, depth=n.depth)
                          for n in walk.nodes],
                   edges=[LineageEdge(**e.as_dict()) for e in walk.edges])


# At the end, as the types link both ways: the resolvers above name these, and strawberry reads
# their annotations only when the schema is built. The type modules import one another only here,
# or records.py (the base interfaces, which imports none), so any import order works.
from .assets import Application, _application  # noqa: E402
from .deployments import Deployment  # noqa: E402
from .federations import FederatedSession  # noqa: E402
