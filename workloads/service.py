"""Deployments: create, list, inspect and delete them; the control loop that runs them.

    request -> checked (records.check_request) -> the module from the catalogue, the VO, the name
      -> the record, queued -> RML -> SHACL -> ledger (record + outbox `start`, marked unmapped)
      -> graph (the deployment's named graph) -> mark cleared
    control loop (`Controller`, or a call right after each request):
      dispatch: outbox entries in order; `start` waits while a quota or the room on every healthy
        datacenter says no (the deployment stays `queued` and says why), else the executor runs it
        (`starting`); `stop` stops it (`stopped`) and frees what it held, so the queue moves on
      reconcile: what the executor reports against the ledger: a job gone, a job nobody asked for,
        a status changed; each repair written to the deployment's history and the repairs log
      probe: each datacenter's health; a datacenter down or slow is avoided by placement

Every change of a deployment goes through `_write`: the same crash protocol and the same SHACL
shapes whether a user, the dispatcher or the reconciler made it.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

import pyoxigraph as ox

from ..graph.namespaces import AI4KG, RDF_TYPE, asset_iri
from ..graph.search import PUBLIC
from ..graph.store import AssetWrite, KnowledgeGraph, search_document
from ..graph.validation import validate
from ..metadata.issues import Issue
from ..periodic import Periodic
from .executor import Executor, Job, JobRefused, Observed, Resources
from .ledger import Ledger, Repair
from .records import ACTIVE, FINAL, Deployment, check_request, issue_of, new_deployment, now, to_quads

log = logging.getLogger(__name__)

BATCH_SIZE = 200
"""Deployments mapped and validated together by the reconciler (morph-kgc and pyshacl cost a fixed
amount per call)."""
SLOW_PROBE_S = 2.0
"""A datacenter whose probe takes longer than this is marked slow, and avoided like one down."""


@dataclass(frozen=True)
class Quotas:
    """What one user, and one VO, may hold at once on the datacenters (queued deployments count for
    nothing). Upstream's rule of one GPU per user is the default."""

    user: Resources = Resources(cpu=16, memory_mb=64_000, gpu=1, disk_mb=500_000)
    vo: dict[str, Resources] = field(default_factory=dict)
    """per VO; a VO not listed has no limit of its own"""
    try_me_per_user: int = 3

    @classmethod
    def from_file(cls, path: Path) -> "Quotas":
        """A JSON file: {"user": {...}, "vo": {"NAME": {...}}, "try_me_per_user": N}; figures as in
        a deployment request's resources (cpu, memory_mb, gpu, disk_mb)."""
        data = json.loads(path.read_text("utf-8"))
        default = cls()
        return cls(user=Resources(**{**default.user.__dict__, **data.get("user", {})}),
                   vo={name: Resources(**figures) for name, figures in data.get("vo", {}).items()},
                   try_me_per_user=int(data.get("try_me_per_user", default.try_me_per_user)))


class DeploymentRejected(Exception):
    """A request that cannot be done: the HTTP status it means, and every issue (field, rule, value)."""

    def __init__(self, status: int, title: str, issues: list[Issue]):
        super().__init__("; ".join(str(i) for i in issues))
        self.status, self.title, self.issues = status, title, issues


@dataclass(frozen=True)
class Requester:
    """Who asks: the account (owner of what they create), their VOs, and whether they administer."""

    subject: str
    vos: frozenset[str]
    admin: bool = False

    def may_read(self, deployment: Deployment) -> bool:
        return self.admin or deployment.owner == self.subject or deployment.vo in self.vos

    def may_change(self, deployment: Deployment) -> bool:
        return self.admin or deployment.owner == self.subject


@dataclass
class ReconcileReport:
    checked: int = 0
    observed: int = 0
    changed: int = 0
    gone: int = 0
    unknown: int = 0
    seconds: float = 0.0
    repairs: list[Repair] = field(default_factory=list)


class Deployments:
    """The deployments of one knowledge graph, run by one executor."""

    def __init__(self, graph: KnowledgeGraph, executor: Executor, quotas: Quotas | None = None):
        self.graph, self.executor, self.quotas = graph, executor, quotas or Quotas()
        self.ledger = Ledger(graph.settings.data_dir)
        self._lock = threading.RLock()
        """One change of deployments at a time: a request, the dispatcher or the reconciler."""
        self.recover()

    def close(self) -> None:
        self.ledger.close()

    # -- the write path --------------------------------------------------------------------------
    def recover(self) -> int:
        """Write to the graph what a crash left saved in the ledger but not in the graph."""
        with self._lock:
            unmapped = self.ledger.unmapped()
            for start in range(0, len(unmapped), BATCH_SIZE):
                chunk = unmapped[start:start + BATCH_SIZE]
                by_graph, _ = to_quads(chunk, self.graph.settings.base_url)
                self.graph.write(AssetWrite(d.iri, by_graph[d.iri]) for d in chunk)
                self.ledger.mapped(d.identifier for d in chunk)
            return len(unmapped)

    def _write(self, deployments: list[Deployment], enqueue: Iterable[tuple[str, str, str]] = (),
               done: Iterable[int] = ()) -> None:
        """Map, validate and commit: ledger (marked unmapped, with the outbox changes), graph, mark
        cleared. Raises DeploymentRejected (nothing written) when the shapes find a violation."""
        if not deployments:
            self.ledger.close_actions(done)
            return
        by_graph, records = to_quads(deployments, self.graph.settings.base_url)
        quads = [q for d in deployments for q in by_graph[d.iri]]
        ours = tuple(d.iri for d in deployments)
        violations = [v for v in validate(quads + self._context(deployments))
                      if v.severity == "violation" and v.focus.startswith(ours)]
        if violations:
            raise DeploymentRejected(422, "Invalid deployment", [issue_of(v, records) for v in violations])
        self.ledger.save(deployments, enqueue, done)
        self.graph.write(AssetWrite(d.iri, by_graph[d.iri]) for d in deployments)
        self.ledger.mapped(d.identifier for d in deployments)

    def _context(self, deployments: list[Deployment]) -> list[ox.Quad]:
        """What the shapes need to know of the nodes a deployment names: that its VO is one, and its
        datacenter (violations on these nodes themselves are not the deployment's)."""
        scratch = ox.NamedNode("urn:ai4kg:validation-context")
        base = self.graph.settings.base_url
        typed = {(asset_iri(base, "VirtualOrganisation", d.vo), "VirtualOrganisation") for d in deployments}
        typed |= {(asset_iri(base, "Datacenter", d.placed_on), "Datacenter") for d in deployments if d.placed_on}
        return [ox.Quad(ox.NamedNode(node), ox.NamedNode(RDF_TYPE), ox.NamedNode(AI4KG + kind), scratch)
                for node, kind in sorted(typed)]

    # -- requests ----------------------------------------------------------------------------------
    def create(self, body: Any, requester: Requester, federation: bool = False, secrets_from: str | None = None
               ) -> tuple[Deployment, bool]:
        """Queue a deployment (and try to start it at once): the record, and False when the same
        request with the same `name` was made before (nothing new is done). `federation`: the
        request is a federation's server (federated/service.py), which users do not ask for here;
        `secrets_from`: the folder of files it is given as secrets."""
        issues = check_request(body, federation)
        if issues:
            raise DeploymentRejected(422, "Invalid deployment request", issues)
        module_iri, image, module_vo = self.module_of(body["module"], requester)
        vo = self.vo_of(body, requester, module_vo)
        with self._lock:
            name = body.get("name")
            if name:
                existing = self.ledger.get(name)
                if existing is not None:
                    if existing.owner == requester.subject and _request_of(existing) == _request_of_body(body):
                        return existing, False
                    raise DeploymentRejected(409, "Name taken", [Issue(
                        "name", "unique", "a deployment of that name exists; choose another name", name)])
                if self.graph.contains(asset_iri(self.graph.settings.base_url, "Deployment", name)):
                    raise DeploymentRejected(409, "Name taken", [Issue(  # a job recorded from provenance
                        "name", "unique", "the graph has a deployment of that name; choose another name", name)])
            identifier = name or f"d-{uuid.uuid4().hex[:16]}"
            deployment = new_deployment(body, identifier, self.graph.settings.base_url, requester.subject, vo,
                                        module_iri, image, self.executor.name, secrets_from)
            self._check_feasible(deployment)
            self._write([deployment], enqueue=[(identifier, "start", "created by its owner")])
        self.dispatch()
        return self.ledger.get(identifier) or deployment, True

    def module_of(self, name: str, requester: Requester) -> tuple[str, str, str]:
        """The module (or tool) of the catalogue the request names, if the requester may see it:
        its IRI, image and VO."""
        for kind in ("Module", "Tool"):
            iri = asset_iri(self.graph.settings.base_url, kind, name)
            quads = self.graph.asset_quads(iri)
            document = search_document(iri, quads)
            if document is None:
                continue
            if not (requester.admin or document.visibility == PUBLIC or document.vo in requester.vos):
                break  # another VO's private module: as if it did not exist
            image = next((q.object.value for q in quads if q.subject.value == iri
                          and q.predicate.value == AI4KG + "dockerImage"), None)
            if not image:
                raise DeploymentRejected(422, "Invalid deployment request", [Issue(
                    "module", "deployable", "the module's metadata names no container image to run", name)])
            return iri, image, document.vo
        raise DeploymentRejected(422, "Invalid deployment request", [Issue(
            "module", "exists", "no module or tool of that name in the catalogue", name)])

    @staticmethod
    def vo_of(body: dict[str, Any], requester: Requester, module_vo: str) -> str:
        if "vo" in body:
            if not (requester.admin or body["vo"] in requester.vos):
                raise DeploymentRejected(403, "Forbidden", [Issue(
                    "vo", "membership", "you are not a member of that VO", body["vo"])])
            return body["vo"]
        if len(requester.vos) == 1:
            return next(iter(requester.vos))
        if module_vo in requester.vos or requester.admin:
            return module_vo
        raise DeploymentRejected(422, "Invalid deployment request", [Issue(
            "vo", "required", f"say which VO to deploy in: one of {', '.join(sorted(requester.vos)) or '(none)'}",
            None)])

    def _check_feasible(self, deployment: Deployment) -> None:
        """Refuse what could never start: more than the user's or the VO's quota, or than any datacenter."""
        needs = deployment.needs
        issues = []
        for limit, whose in ((self.quotas.user, "your quota"), (self.quotas.vo.get(deployment.vo), "the VO's quota")):
            if limit is None:
                continue
            for name in ("cpu", "memory_mb", "gpu", "disk_mb"):
                if getattr(needs, name) > getattr(limit, name):
                    issues.append(Issue(f"resources.{name}", "quota", f"more than {whose} allows ({getattr(limit, name)})",
                                        getattr(needs, name)))
        capacity = self.executor.capacity()
        places = {dc: room for dc, room in capacity.items() if deployment.datacenter in (None, dc)}
        if deployment.datacenter is not None and not places:
            issues.append(Issue("datacenter", "exists", f"no such datacenter; there are: {', '.join(sorted(capacity))}",
                                deployment.datacenter))
        elif places and all(room is not None and room.exceeded_by(needs) for room in places.values()):
            biggest = max((room for room in places.values() if room is not None), key=lambda r: (r.gpu, r.cpu))
            for name in biggest.exceeded_by(needs):
                field_name = name.split(" ")[0]
                issues.append(Issue(f"resources.{field_name}", "capacity",
                                    f"more than any datacenter has ({getattr(biggest, field_name)})",
                                    getattr(needs, field_name)))
        if issues:
            raise DeploymentRejected(422, "Deployment cannot run", issues)

    def get(self, identifier: str, requester: Requester | None = None) -> Deployment | None:
        """The deployment, or None when there is none the requester may see."""
        deployment = self.ledger.get(identifier)
        if deployment is None or (requester is not None and not requester.may_read(deployment)):
            return None
        return deployment

    def delete(self, identifier: str, requester: Requester, reason: str = "deleted by its owner"
               ) -> Deployment | None:
        """Stop the deployment and free what it holds (its record stays, `stopped`); None if the
        requester cannot see it. Deleting one already ended changes nothing."""
        with self._lock:
            deployment = self.get(identifier, requester)
            if deployment is None:
                return None
            if not requester.may_change(deployment):
                raise DeploymentRejected(403, "Forbidden", [Issue(
                    "identifier", "owner", "only its owner or an administrator may delete a deployment", identifier)])
            if deployment.status in FINAL:
                return deployment
            if deployment.status == "queued":  # never started: nothing to stop
                starts = [a.seq for a in self.ledger.pending() if a.identifier == identifier]
                deployment.move("stopped", f"{reason} before it started")
                self._write([deployment], done=starts)
            else:
                self.ledger.save([], enqueue=[(identifier, "stop", reason)])
        self.dispatch()
        return self.ledger.get(identifier)

    def find(self, requester: Requester, owner: str | None = None, vo: str | None = None, **filters: Any
             ) -> list[tuple[int, Deployment]]:
        """Deployments the requester may see: their own by default, a VO's (member), anyone's (admin)."""
        if vo is not None:
            if not (requester.admin or vo in requester.vos):
                return []
            return self.ledger.find(owner=owner, vos=[vo], **filters)
        if owner is None and not requester.admin:
            owner = requester.subject
        vos = None if requester.admin or owner == requester.subject else requester.vos
        return self.ledger.find(owner=owner, vos=vos, **filters)

    # -- the control loop --------------------------------------------------------------------------
    def dispatch(self) -> int:
        """Act on the outbox: stops first (they free room), then starts in the order they came; how
        many entries were done."""
        done = 0
        with self._lock:
            for action in sorted(self.ledger.pending(), key=lambda a: (a.action != "stop", a.seq)):
                deployment = self.ledger.get(action.identifier)
                if deployment is None:
                    self.ledger.close_actions([action.seq])
                    continue
                if action.action == "start":
                    done += self._start(deployment, action.seq)
                else:
                    done += self._stop(deployment, action.seq, action.reason)
        return done

    def _start(self, deployment: Deployment, seq: int) -> int:
        if deployment.status != "queued":  # started already (a replay after a crash), or deleted
            self.ledger.close_actions([seq])
            return 1
        place, waiting = self._place(deployment)
        if place is None:
            if deployment.waiting != waiting:
                deployment.waiting = waiting
                self._write([deployment])
            return 0
        try:
            self.executor.start(self._job(deployment, place))
        except JobRefused as exc:
            deployment.move("failed", f"the {self.executor.name} workload manager refused it: {exc}")
            self._write([deployment], done=[seq])
            return 1
        except Exception as exc:  # the workload manager is down or failed: stays queued, tried again
            self.ledger.attempted(seq, str(exc))
            waiting = f"the {self.executor.name} workload manager failed to start it: {exc}"
            if deployment.waiting != waiting:
                deployment.waiting = waiting
                self._write([deployment])
            log.warning("deployment %s: %s", deployment.identifier, waiting)
            return 0
        deployment.placed_on = place
        deployment.move("starting", f"placed on datacenter {place}")
        self._write([deployment], done=[seq])
        return 1

    def _stop(self, deployment: Deployment, seq: int, reason: str) -> int:
        if deployment.status in FINAL:
            self.ledger.close_actions([seq])
            return 1
        try:
            self.executor.stop(deployment.identifier, deployment.vo)
        except Exception as exc:
            self.ledger.attempted(seq, str(exc))
            log.warning("deployment %s: stopping failed: %s", deployment.identifier, exc)
            return 0
        deployment.move("stopped", reason)
        self._write([deployment], done=[seq])
        return 1

    def _place(self, deployment: Deployment) -> tuple[str | None, str]:
        """The datacenter to start on, or None and why it must wait."""
        needs = deployment.needs
        held = self.ledger.usage("owner").get(deployment.owner, Resources())
        over = self.quotas.user.exceeded_by(held + needs)
        if over:
            return None, f"waiting for the owner's quota: {', '.join(over)} with what runs already"
        limit = self.quotas.vo.get(deployment.vo)
        if limit is not None:
            over = limit.exceeded_by(self.ledger.usage("vo").get(deployment.vo, Resources()) + needs)
            if over:
                return None, f"waiting for the VO's quota: {', '.join(over)} with what runs already"
        if deployment.kind == "try-me" and \
                self.ledger.active_count(deployment.owner, "try-me") >= self.quotas.try_me_per_user:
            return None, f"waiting: at most {self.quotas.try_me_per_user} try-me deployments run per user"
        health = self.ledger.health()
        capacity = self.executor.capacity()
        places = sorted(dc for dc in capacity if deployment.datacenter in (None, dc)
                        and health.get(dc, ("healthy",))[0] == "healthy")
        if not places:
            return None, "waiting for a healthy datacenter"
        used = self.ledger.usage("datacenter")
        room = {dc: None if capacity[dc] is None else capacity[dc] - used.get(dc, Resources()) for dc in places}  # type: ignore[operator]
        fitting = [dc for dc in places if room[dc] is None or not room[dc].exceeded_by(needs)]  # type: ignore[union-attr]
        if not fitting:
            return None, "waiting for room on a datacenter: " + "; ".join(
                f"{dc} lacks {', '.join(room[dc].exceeded_by(needs))}" for dc in places)  # type: ignore[union-attr]
        # the most room left (spread), GPUs first, then cores; unknown capacity last
        return max(fitting, key=lambda dc: (room[dc] is not None, (room[dc].gpu, room[dc].cpu, room[dc].memory_mb)
                                            if room[dc] is not None else ())), ""

    @staticmethod
    def _job(deployment: Deployment, datacenter: str) -> Job:
        return Job(identifier=deployment.identifier, kind=deployment.kind, vo=deployment.vo, owner=deployment.owner,
                   image=deployment.image, title=deployment.title, datacenter=datacenter, resources=deployment.needs,
                   gpu_model=deployment.resources.get("gpu_model"), description=deployment.description,
                   command=deployment.command, endpoints=dict(deployment.endpoints), datasets=tuple(deployment.datasets),
                   storage=deployment.storage, notify=deployment.notify, module=deployment.module,
                   secrets_from=deployment.secrets_from)

    def expire(self) -> int:
        """Ask to stop the try-me deployments whose time is up."""
        moment = now()
        expired = [d for status in ACTIVE for _, d in self.ledger.find(kind="try-me", status=status, limit=1_000_000)
                   if d.expires_at and d.expires_at <= moment]
        stopping = {a.identifier for a in self.ledger.pending() if a.action == "stop"}
        fresh = [(d.identifier, "stop", "its try-me time ran out") for d in expired if d.identifier not in stopping]
        if fresh:
            self.ledger.save([], enqueue=fresh)
        return len(fresh)

    def reconcile(self) -> ReconcileReport:
        """Compare what the executor reports with the ledger and repair the difference: a job gone
        (failed), a job the platform does not know or has ended (stopped), a status changed.

        The comparison reads the ledger's status and URL columns only; records are read and
        written only for what differs, BATCH_SIZE at a time, each batch under the lock on its own
        (re-read there: a request in between wins, and the next round looks again), so a round
        with many changes does not hold up requests for its whole length."""
        started = time.perf_counter()
        report = ReconcileReport()
        with self._lock:  # observed under the lock: a start in between would look like a job gone
            observed = self.executor.observe()
            known = self.ledger.unfinished()
            pending = {(a.identifier, a.action) for a in self.ledger.pending()}
        report.observed, report.checked = len(observed), len(known)
        differing = []
        for identifier, (status, urls) in known.items():
            seen = observed.get(identifier)
            if status == "queued":
                if seen is not None and (identifier, "start") in pending:
                    differing.append((identifier, status))  # started before a crash kept the record from saying so
            elif seen is None:
                if (identifier, "stop") not in pending:
                    differing.append((identifier, status))
            elif seen.status != status or (seen.urls != urls and seen.status not in FINAL):
                differing.append((identifier, status))
        repairs: list[tuple[str, str, str]] = []
        for start in range(0, len(differing), BATCH_SIZE):
            with self._lock:
                repairs += self._repair(differing[start:start + BATCH_SIZE], observed, report)
        for identifier, seen in observed.items():
            if identifier in known or seen.status not in ACTIVE:
                continue
            # running, but the ledger has no such deployment or has it ended: stop it
            record = self.ledger.get(identifier)
            if record is not None and record.status not in FINAL:
                continue  # created since the comparison
            try:
                self.executor.stop(identifier, record.vo if record else (seen.vo or ""))
            except Exception as exc:
                log.warning("the reconciler could not stop unknown job %s: %s", identifier, exc)
                continue
            what = "no deployment of that name" if record is None else f"the deployment is {record.status}"
            repairs.append((identifier, "unknown-job", f"stopped a running job: {what}"))
            report.unknown += 1
        self.ledger.record_repairs(repairs)
        report.repairs = self.ledger.repairs(len(repairs)) if repairs else []
        report.seconds = time.perf_counter() - started
        return report

    def _repair(self, differing: list[tuple[str, str]], observed: dict[str, Observed],
                report: ReconcileReport) -> list[tuple[str, str, str]]:
        """Take what the executor reports for these deployments (each as it was compared) and
        write them in one batch; the repairs made."""
        pending = {(a.identifier, a.action): a.seq for a in self.ledger.pending()}
        changed: list[Deployment] = []
        repairs: list[tuple[str, str, str]] = []
        for identifier, compared in differing:
            deployment = self.ledger.get(identifier)
            if deployment is None or deployment.status != compared:
                continue  # changed since the comparison
            seen = observed.get(identifier)
            if compared == "queued":
                if seen is None or (identifier, "start") not in pending:
                    continue
                deployment.placed_on = seen.datacenter
                if self._follow(deployment, seen, "the workload manager runs it"):
                    changed.append(deployment)
                    repairs.append((identifier, "status-changed", f"queued -> {seen.status}"))
                continue
            if seen is None:
                if (identifier, "stop") in pending:
                    continue
                deployment.move("failed", f"the reconciler found no job {identifier} on the "
                                          f"{self.executor.name} workload manager")
                changed.append(deployment)
                repairs.append((identifier, "job-gone", f"was {compared}"))
                report.gone += 1
                continue
            if self._follow(deployment, seen, seen.detail or f"the {self.executor.name} workload manager "
                                                             f"reports it {seen.status}"):
                changed.append(deployment)
                if compared != deployment.status:
                    repairs.append((identifier, "status-changed", f"{compared} -> {deployment.status}"))
        closed = [pending[(d.identifier, "start")] for d in changed
                  if d.status != "queued" and (d.identifier, "start") in pending]
        self._write(changed, done=closed)
        report.changed += len(changed)
        return repairs

    @staticmethod
    def _follow(deployment: Deployment, seen: Observed, reason: str) -> bool:
        """Take the executor's status and endpoints; True when anything changed."""
        changed = False
        if seen.urls != deployment.urls and seen.status not in FINAL:
            deployment.urls = dict(seen.urls)
            changed = True
        if seen.status != deployment.status:
            changed = deployment.move(seen.status, reason) or changed
        return changed

    def probe(self) -> None:
        """Mark each datacenter healthy, slow or down (placement avoids the last two)."""
        try:
            found = self.executor.probe()
        except Exception as exc:
            log.warning("probing the datacenters failed: %s", exc)
            return
        self.ledger.set_health(h if h.status != "healthy" or h.latency_s <= SLOW_PROBE_S else
                               type(h)(h.datacenter, "slow", h.latency_s, f"answered in {h.latency_s:.1f} s")
                               for h in found)

    def tick(self) -> None:
        """One round of the control loop."""
        self.reconcile()
        self.expire()
        self.dispatch()


def _request_of(deployment: Deployment) -> dict[str, Any]:
    """What of a record a repeated request must match to be the same request."""
    return {"kind": deployment.kind, "module": deployment.module, "version": deployment.version}


def _request_of_body(body: dict[str, Any]) -> dict[str, Any]:
    return {"kind": body["kind"], "module": body["module"], "version": body.get("version") or "latest"}


class Controller(Periodic):
    """The control loop in a daemon thread: `tick` every `interval` seconds, and a probe of the
    datacenters first and then every `probe_interval`."""

    def __init__(self, deployments: Deployments, interval: float = 2.0, probe_interval: float = 30.0,
                 also: Iterable[Callable[[], None]] = ()):
        super().__init__("deployments", interval, self.round)
        self.deployments, self.probe_interval = deployments, probe_interval
        self.also = list(also)
        """what else runs after each tick (the federations' own, which follow their servers)"""
        self._last_probe: float | None = None

    def round(self) -> None:
        if self._last_probe is None or time.monotonic() - self._last_probe >= self.probe_interval:
            self.deployments.probe()
            self._last_probe = time.monotonic()
        self.deployments.tick()
        for step in self.also:
            step()


def open_deployments(graph: KnowledgeGraph) -> Deployments:
    """The deployments service the settings ask for: the local executor (state beside the store, or
    in a temporary directory for an in-memory graph) or Nomad."""
    settings = graph.settings
    quotas = Quotas.from_file(settings.quotas_file) if settings.quotas_file else Quotas()
    executor: Executor
    if settings.workloads == "nomad":
        from ..adapters.nomad import NomadExecutor, NomadWorkloads

        executor = NomadExecutor(NomadWorkloads(settings.nomad_address or "", settings.nomad_token),  # Settings checked it
                                 list(settings.nomad_datacenters))
    else:
        from ..adapters.local import LocalExecutor

        capacity = None
        if settings.local_capacity_file:
            figures = json.loads(settings.local_capacity_file.read_text("utf-8"))
            capacity = {name: Resources(**values) for name, values in figures.items()}
        runtimes = json.loads(settings.local_runtimes_file.read_text("utf-8")) if settings.local_runtimes_file else None
        scratch = None
        if settings.data_dir is not None:
            state = settings.data_dir / "local-executor"
        else:  # an in-memory graph: the jobs' directories go when the executor does
            import tempfile

            scratch = tempfile.TemporaryDirectory(prefix="ai4kg-local-executor-")
            state = Path(scratch.name)
        executor = LocalExecutor(state, capacity, runtimes)
        executor.scratch = scratch  # type: ignore[attr-defined]
    return Deployments(graph, executor, quotas)
