"""The platform's records, each with its own IRI and graph: the Record and Activity interfaces
(Deployment, TrainingRun, FederatedSession, FederatedRound and Dataset implement them), and the
lookup of one by identifier."""

from __future__ import annotations

import datetime
from typing import TYPE_CHECKING, Annotated, Optional

import pyoxigraph as ox
import strawberry

from .. import access
from .context import Asset, Info
from .values import _date, _datetime

if TYPE_CHECKING:  # for type checkers; strawberry finds it through strawberry.lazy (Activity.datasets)
    from .provenance import Dataset


@strawberry.interface(description="A record of the platform with its own IRI and graph.")
class Record:
    asset: strawberry.Private[Asset]

    @strawberry.field
    def iri(self) -> str:
        return self.asset.iri

    @strawberry.field
    def identifier(self) -> Optional[str]:
        return self.asset.text("identifier")

    @strawberry.field
    def title(self) -> Optional[str]:
        return self.asset.text("title")


@strawberry.interface(description="Something that happened on the platform over a period of time.")
class Activity(Record):
    @strawberry.field(description="The last observed state (queued, running, finished, failed ...).")
    def status(self) -> Optional[str]:
        return self.asset.text("status")

    @strawberry.field
    def started_at(self) -> Optional[datetime.datetime]:
        return _datetime(self.asset.text("startedAt"))

    @strawberry.field
    def ended_at(self) -> Optional[datetime.datetime]:
        return _datetime(self.asset.text("endedAt"))

    @strawberry.field
    def created(self) -> Optional[datetime.date]:
        return _date(self.asset.text("created"))

    @strawberry.field(description="The IRI of the datacenter the activity ran on (ai4kg:runsOn).")
    def datacenter(self) -> Optional[str]:
        iris = self.asset.iris("runsOn")
        return iris[0] if iris else None

    @strawberry.field
    def vo(self) -> str:
        return self.asset.vo

    @strawberry.field
    def visibility(self) -> str:
        return self.asset.visibility

    @strawberry.field(description="Datasets the activity read (ai4kg:usedDataset), by IRI.")
    async def datasets(self, info: Info) -> list[Annotated["Dataset", strawberry.lazy(".provenance")]]:
        from .provenance import Dataset  # here, not above: records.py, the base interfaces, imports no type module

        return [Dataset(asset=a) for a in await info.context.linked(self.asset.iris("usedDataset"), "Dataset")]


_IDENTIFIED = "SELECT ?a ?id WHERE { GRAPH ?a { ?a <https://w3id.org/ai4kg/ns#identifier> ?id } }"


async def _identified(info: Info, identifier: str, wanted: str) -> Asset | None:
    """The visible asset of class `wanted` with this identifier (the first by IRI if several)."""
    context = info.context

    def lookup() -> list[str]:
        return sorted(row["a"].value for row in context.graph.query(_IDENTIFIED, {"id": ox.Literal(identifier)}))

    found = await context.linked(await access.read(context.graph, lookup), wanted)
    return found[0] if found else None
