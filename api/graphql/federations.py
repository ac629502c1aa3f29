"""Federated learning: a session (a server's strategy over rounds of clients), its rounds, the client
updates each round used and the round's metrics."""

from __future__ import annotations

import datetime
from typing import Any, Optional

import pyoxigraph as ox
import strawberry

from ...graph.namespaces import AI4KG, MLS, PROV, RDF_TYPE, RDFS_LABEL
from .context import Info
from .records import Activity, Record
from .values import _bool, _datetime, _float, _int


@strawberry.type(description="A federated-learning training: a server's strategy over rounds of clients.")
class FederatedSession(Activity):
    @strawberry.field
    def strategy(self) -> Optional[str]:
        return self.asset.text("strategy")

    @strawberry.field
    def num_rounds(self) -> Optional[int]:
        return _int(self.asset.text("numRounds"))

    @strawberry.field
    def min_fit_clients(self) -> Optional[int]:
        return _int(self.asset.text("minFitClients"))

    @strawberry.field
    def min_available_clients(self) -> Optional[int]:
        return _int(self.asset.text("minAvailableClients"))

    @strawberry.field
    def differential_privacy(self) -> Optional[bool]:
        return _bool(self.asset.text("differentialPrivacy"))

    @strawberry.field
    def metric_privacy(self) -> Optional[bool]:
        return _bool(self.asset.text("metricPrivacy"))

    @strawberry.field(description="The Flower run that carried the session out.")
    def flower_run(self) -> Optional[str]:
        return self.asset.text("flowerRun")

    @strawberry.field(description="The module trained (ai4kg:federatedModule); null if the reader may not see it.")
    async def module(self, info: Info) -> Optional[Application]:
        found = await info.context.linked(self.asset.iris("federatedModule"), "Application")
        return _application(found[0]) if found else None

    @strawberry.field(description="The rounds recorded so far, in order (each its own graph: ai4kg:session).")
    async def rounds(self, info: Info) -> list["FederatedRound"]:
        found = await info.context.pointing_at("session", self.asset.iri, "FederatedRound")
        return [FederatedRound(asset=a) for a in sorted(found, key=lambda a: _int(a.text("roundNumber")) or 0)]


@strawberry.type(description="A client's update as one round used it.")
class ClientUpdate:
    iri: str
    client: Optional[str] = strawberry.field(description="The IRI of the client agent (prov:wasAttributedTo).")
    num_examples: Optional[int]
    aggregation_weight: Optional[float] = strawberry.field(description="Its weight in the round's aggregate.")
    divergence_score: Optional[float] = strawberry.field(description="Its median distance to the other updates.")
    divergent: bool = strawberry.field(description="Flagged by divergence monitoring.")


@strawberry.type(description="A metric of a round: the server's evaluation (`server`), the clients' (`client`), "
                             "or training (`training`).")
class RoundMetric:
    name: str
    scope: Optional[str]
    value: float


@strawberry.type(description="One round of a federated-learning session: the updates it used, the model it made.")
class FederatedRound(Record):
    @strawberry.field
    def number(self) -> Optional[int]:
        return _int(self.asset.text("roundNumber"))

    @strawberry.field
    def started_at(self) -> Optional[datetime.datetime]:
        values = self.asset.objects(PROV + "startedAtTime")
        return _datetime(values[0].value) if values else None

    @strawberry.field
    def ended_at(self) -> Optional[datetime.datetime]:
        values = self.asset.objects(PROV + "endedAtTime")
        return _datetime(values[0].value) if values else None

    @strawberry.field(description="The standard deviation of the noise differential privacy added, if any.")
    def noise_scale(self) -> Optional[float]:
        return _float(self.asset.text("noiseScale"))

    @strawberry.field(description="The IRI of the global model the round generated.")
    def model(self) -> Optional[str]:
        iris = self.asset.iris("produced")
        return iris[0] if iris else None

    @strawberry.field(description="The IRI of the session (ai4kg:session).")
    def session(self) -> Optional[str]:
        iris = self.asset.iris("session")
        return iris[0] if iris else None

    @strawberry.field(description="The client updates the round used.")
    def updates(self) -> list[ClientUpdate]:
        nodes = self._fragments(AI4KG + "ClientUpdate")
        return [ClientUpdate(iri=iri, client=_first_iri(values, PROV + "wasAttributedTo"),
                             num_examples=_int(_first(values, AI4KG + "numExamples")),
                             aggregation_weight=_float(_first(values, AI4KG + "aggregationWeight")),
                             divergence_score=_float(_first(values, AI4KG + "divergenceScore")),
                             divergent=_bool(_first(values, AI4KG + "divergent")) or False)
                for iri, values in nodes]

    @strawberry.field(description="The round's metrics.")
    def metrics(self) -> list[RoundMetric]:
        return [RoundMetric(name=_first(values, RDFS_LABEL) or "", scope=_first(values, AI4KG + "metricScope"),
                            value=_float(_first(values, MLS + "hasValue")) or 0.0)
                for _, values in self._fragments(MLS + "ModelEvaluation")]

    def _fragments(self, cls: str) -> list[tuple[str, dict[str, list[Any]]]]:
        """The round's #fragment nodes of class `cls`, each with its values by predicate."""
        by_node: dict[str, dict[str, list[Any]]] = {}
        for t in self.asset.triples:
            if t.subject.value.startswith(self.asset.iri + "#"):
                by_node.setdefault(t.subject.value, {}).setdefault(t.predicate.value, []).append(t.object)
        return sorted((iri, values) for iri, values in by_node.items()
                      if any(o.value == cls for o in values.get(RDF_TYPE, [])))


def _first(values: dict[str, list[Any]], predicate: str) -> str | None:
    found = values.get(predicate)
    return found[0].value if found else None


def _first_iri(values: dict[str, list[Any]], predicate: str) -> str | None:
    found = [o for o in values.get(predicate, []) if isinstance(o, ox.NamedNode)]
    return found[0].value if found else None


# At the end, as the types link both ways: the resolvers above name these, and strawberry reads
# their annotations only when the schema is built. The type modules import one another only here,
# or records.py (the base interfaces, which imports none), so any import order works.
from .assets import Application, _application  # noqa: E402
