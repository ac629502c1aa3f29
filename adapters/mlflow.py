"""Training runs from an MLflow tracking server, into the provenance graph.

The adapter speaks the tracking server's documented REST API (`experiments/search`,
`runs/search`) with httpx rather than through the `mlflow` package: the JSON the server sends
is then the fragment, kept verbatim in its native form (the one the provenance schema describes
and the AI4EOSC provenance service passes on), where the client's entities would have to be
turned back into JSON; and reading two endpoints does not cost an import of several seconds
(mlflow is only a test dependency). A fragment is one run: its experiment's fields at top
level, the run under `run`, and `"origin": "MLflow"`; provenance/ingest.py maps it (a run of a
module the catalogue lacks is skipped).

`sync` is idempotent: the fragments are keyed by run, so a run seen again with the same content
writes nothing, and one that changed (it finished, got a tag) replaces its activity's graph.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Iterator

import httpx

from ..graph.store import KnowledgeGraph
from ..periodic import Periodic
from ..provenance.ingest import BATCH_SIZE, Outcome, Provenance

log = logging.getLogger(__name__)

PAGE_SIZE = 1000
"""Experiments or runs per request (the REST API's default and a safe maximum for both)."""
EXPERIMENTS_PER_SEARCH = 100
"""Experiments whose runs one runs/search asks for (its request names them all)."""


class MlflowUnavailable(Exception):
    """The tracking server cannot be reached or answered with an error."""


class MlflowTracking:
    """A client of the documented REST API of one MLflow tracking server (read only)."""

    def __init__(self, url: str, token: str | None = None, timeout: float = 30.0,
                 client: httpx.Client | None = None):
        self.url = url.rstrip("/")
        headers = {"authorization": f"Bearer {token}"} if token else {}
        self._own = client is None
        self._http = client or httpx.Client(timeout=timeout)
        self._headers = headers

    def close(self) -> None:
        if self._own:
            self._http.close()

    def __enter__(self) -> "MlflowTracking":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _post(self, endpoint: str, body: dict[str, Any]) -> dict[str, Any]:
        address = f"{self.url}/api/2.0/mlflow/{endpoint}"
        try:
            response = self._http.post(address, json=body, headers=self._headers)
        except httpx.HTTPError as exc:
            raise MlflowUnavailable(f"the MLflow tracking server at {self.url} does not answer: "
                                    f"{type(exc).__name__}: {exc}") from None
        if response.is_error:
            raise MlflowUnavailable(f"the MLflow tracking server at {self.url} answered {endpoint} with "
                                    f"HTTP {response.status_code}: {_message(response)}")
        try:
            answer = response.json()
        except ValueError:
            answer = None
        if not isinstance(answer, dict):
            raise MlflowUnavailable(f"the MLflow tracking server at {self.url} answered {endpoint} with no "
                                    f"JSON object: is {self.url} a tracking server?")
        return answer

    def _pages(self, endpoint: str, body: dict[str, Any], items: str) -> Iterator[dict[str, Any]]:
        token: str | None = None
        while True:
            answer = self._post(endpoint, {**body, "page_token": token} if token else body)
            yield from answer.get(items) or []
            token = answer.get("next_page_token")
            if not token:
                return

    def experiments(self) -> Iterator[dict[str, Any]]:
        """The active experiments, as the server sends them."""
        return self._pages("experiments/search", {"max_results": PAGE_SIZE, "view_type": "ACTIVE_ONLY"},
                           "experiments")

    def runs(self, experiment_ids: list[str]) -> Iterator[dict[str, Any]]:
        """The active runs of these experiments (info, data, inputs), as the server sends them."""
        if not experiment_ids:
            return iter(())
        return self._pages("runs/search", {"experiment_ids": list(experiment_ids), "max_results": PAGE_SIZE,
                                           "run_view_type": "ACTIVE_ONLY"}, "runs")

    def fragments(self) -> Iterator[dict[str, Any]]:
        """One provenance fragment per run of every active experiment."""
        experiments = {e["experiment_id"]: e for e in self.experiments() if isinstance(e.get("experiment_id"), str)}
        ids = list(experiments)
        for start in range(0, len(ids), EXPERIMENTS_PER_SEARCH):
            for run in self.runs(ids[start:start + EXPERIMENTS_PER_SEARCH]):
                experiment = experiments.get((run.get("info") or {}).get("experiment_id"), {})
                yield {**experiment, "run": run, "origin": "MLflow"}


def _message(response: httpx.Response) -> str:
    """An MLflow error's code and message, else the start of the body."""
    try:
        error = response.json()
    except ValueError:
        return response.text[:200] or response.reason_phrase
    if isinstance(error, dict) and "message" in error:
        return f"{error.get('error_code', 'error')}: {error['message']}"
    return response.text[:200]


@dataclass
class SyncReport:
    """What one sync did: a count per outcome, and the outcomes (one per run, in the server's order)."""

    created: int = 0
    updated: int = 0
    unchanged: int = 0
    skipped: int = 0
    """runs of a module the catalogue lacks (an unknown-module error): nothing written"""
    invalid: int = 0
    outcomes: list[Outcome] = field(default_factory=list)

    @classmethod
    def of(cls, outcomes: list[Outcome]) -> "SyncReport":
        report = cls(outcomes=outcomes)
        for outcome in outcomes:
            if any(issue.rule == "unknown-module" for issue in outcome.errors):
                report.skipped += 1
            elif outcome.status in ("created", "updated", "unchanged"):
                setattr(report, outcome.status, getattr(report, outcome.status) + 1)
            else:
                report.invalid += 1
        return report

    def as_dict(self) -> dict[str, Any]:
        return {"created": self.created, "updated": self.updated, "unchanged": self.unchanged,
                "skipped": self.skipped, "invalid": self.invalid, "outcomes": [o.as_dict() for o in self.outcomes]}


def sync(graph: KnowledgeGraph, url: str, token: str | None = None,
         on_progress: Callable[[int], None] | None = None) -> SyncReport:
    """Read every run of the tracking server at `url` into the graph's provenance; `on_progress`
    hears how many runs have been handled so far, after each batch."""
    provenance = Provenance(graph)
    outcomes: list[Outcome] = []
    with MlflowTracking(url, token) as tracking:
        for batch in _batches(tracking.fragments(), BATCH_SIZE):
            outcomes += provenance.ingest([(fragment, tracking.url) for fragment in batch])
            if on_progress:
                on_progress(len(outcomes))
    return SyncReport.of(outcomes)


def _batches(items: Iterable[dict[str, Any]], size: int) -> Iterator[list[dict[str, Any]]]:
    batch: list[dict[str, Any]] = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


class PeriodicSync(Periodic):
    """`sync` every `interval` seconds in a daemon thread, from `start()` until `stop()`; a failed
    sync (the server down) is logged and tried again at the next interval."""

    def __init__(self, graph: KnowledgeGraph, url: str, interval: float, token: str | None = None):
        super().__init__(f"mlflow-sync {url}", interval, self.run_once)
        self.graph, self.url, self._token = graph, url, token
        self.last_report: SyncReport | None = None
        self.last_error: Exception | None = None

    def run_once(self) -> SyncReport | None:
        """One sync: its report (also `last_report`), or None when it failed (`last_error`)."""
        try:
            report = sync(self.graph, self.url, self._token)
        except Exception as exc:  # the thread must outlive any failure: it tries again next time
            self.last_error = exc
            log.warning("MLflow sync from %s failed: %s", self.url, exc,
                        exc_info=not isinstance(exc, MlflowUnavailable))
            return None
        self.last_report, self.last_error = report, None
        log.info("MLflow sync from %s: %d created, %d updated, %d unchanged, %d skipped, %d invalid", self.url,
                 report.created, report.updated, report.unchanged, report.skipped, report.invalid)
        return report

