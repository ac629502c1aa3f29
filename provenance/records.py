"""Provenance fragments to the flat records that mappings/provenance/provenance.rml.ttl reads.

A fragment is a JSON document another component produced: a Jenkins build, a GitHub Actions
`workflow_run` webhook, an MLflow run (with its experiment's fields), a Nomad job summary. Each
origin has a JSON Schema in mappings/provenance/ for the fields the mapping reads; anything else
is kept verbatim but not mapped. This module only flattens: arrays become one record per item
in a source of their own (RML engines make no triples for JSONPath references into arrays),
times become xsd:dateTime text, and the platform mints the IRIs that the mapping cannot (one per
commit, image digest, set of weights, dataset and person: never one IRI shared by every
application). What each field means in PROV-O is said in the RML file, not here.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from functools import cache
from importlib import resources
from typing import Any, Callable, Literal

from ..graph.namespaces import AI4KG, asset_iri
from ..metadata.issues import Issue
from ..metadata.records import Records
from ..metadata.schema import schema_issues, validator_of
from ..metadata.values import with_value_issues

Origin = Literal["jenkins", "github-actions", "mlflow", "nomad"]
ORIGINS: tuple[Origin, ...] = ("jenkins", "github-actions", "mlflow", "nomad")

ENGINES = {"jenkins": "Jenkins", "github-actions": "GitHub Actions", "mlflow": "MLflow", "nomad": "Nomad"}
"""What each origin's fragments are called in messages. The software agent behind each origin,
{base}agent/ORIGIN, is described in mappings/platform-agents.ttl."""

MAX_FRAGMENT_DEPTH = 64
"""How deeply a fragment's JSON may nest: CI and workload-manager records nest more than metadata
files (a Nomad job spec, a workflow run), but a fragment nested deeper is no real record."""

MODULE_TAG = "ai4kg.module"
"""An MLflow run tag naming the module the run trains (else the experiment's name does)."""
JOB_TAG = "ai4kg.nomad_job"
"""An MLflow run tag naming the workload-manager job the run ran in."""

_IDENTIFIER_CHARS = re.compile(r"[^A-Za-z0-9._:-]+")


class FragmentError(ValueError):
    """A fragment that cannot be mapped: every issue names the field, the rule and the value."""

    def __init__(self, issues: list[Issue]):
        self.issues = issues
        super().__init__("; ".join(str(i) for i in issues))


@dataclass(frozen=True)
class Application:
    """What the catalogue says of the module a fragment is about: the fragment's activity
    inherits its VO and visibility, and its metadata names the run and job it was published from."""

    iri: str
    identifier: str
    vo: str
    visibility: str
    docker_image: str | None = None
    source_code: str | None = None
    mlflow_runs: frozenset[str] = frozenset()
    nomad_jobs: frozenset[str] = frozenset()


@dataclass
class Mapped:
    """A fragment read for the mapping: its idempotency key, the activity (asset) it describes,
    the records, and warnings (fields left out)."""

    origin: Origin
    key: str
    activity: str
    records: Records
    warnings: list[Issue] = field(default_factory=list)


def origin_of(fragment: Any) -> Origin:
    """Which component a fragment comes from, by its `origin` field or its shape."""
    if not isinstance(fragment, dict):
        raise FragmentError([Issue("", "type", "a fragment is a JSON object", type(fragment).__name__)])
    origin = fragment.get("origin")
    named = {"Jenkins": "jenkins", "MLflow": "mlflow", "Nomad": "nomad", "GitHub Actions": "github-actions"}
    if isinstance(origin, str) and origin in named:
        return named[origin]  # type: ignore[return-value]
    if "workflow_run" in fragment:
        return "github-actions"
    if "trace" in fragment and "uniqueId" in fragment:
        return "jenkins"
    if "run" in fragment:
        return "mlflow"
    if "job_ID" in fragment:
        return "nomad"
    raise FragmentError([Issue("origin", "allowed-values",
                               "cannot tell where the fragment comes from: give origin (Jenkins, MLflow, Nomad) or "
                               "post a GitHub Actions workflow_run payload", origin)])


@cache
def _validator(origin: Origin) -> Any:
    text = resources.files("ai4kg").joinpath(f"mappings/provenance/{origin}.schema.json").read_text("utf-8")
    return validator_of(json.loads(text))


def check(origin: Origin, fragment: dict[str, Any]) -> None:
    """Raise FragmentError unless the fragment meets its origin's schema and every value of it the
    rules of metadata.values (the fields the mapping does not read too: the fragment is stored as
    it came, and served back)."""
    errors = with_value_issues([i for i in schema_issues(_validator(origin), fragment, f"a {ENGINES[origin]} fragment")
                                if i.severity == "error"], fragment)
    if errors:
        raise FragmentError(sorted(errors, key=lambda i: i.field))


def application_name(origin: Origin, fragment: dict[str, Any]) -> str | None:
    """The module identifier the fragment names (GitHub payloads name a repository instead: None)."""
    if origin == "jenkins":
        return fragment.get("applicationId") or (fragment.get("id") or {}).get("jobName")
    if origin == "mlflow":
        tags = _tags(fragment)
        return tags.get(MODULE_TAG) or fragment.get("applicationId") or fragment.get("name")
    if origin == "nomad":
        return fragment.get("applicationId")
    return None


def application_field(origin: Origin, fragment: dict[str, Any]) -> str:
    """The field an unknown application is reported against."""
    if origin == "mlflow":
        if MODULE_TAG in _tags(fragment):
            return f"run.data.tags[{MODULE_TAG}]"
        return "applicationId" if fragment.get("applicationId") else "name"
    if origin == "jenkins":
        return "applicationId" if fragment.get("applicationId") else "id.jobName"
    return "repository.full_name" if origin == "github-actions" else "applicationId"


def fragment_key(origin: Origin, fragment: dict[str, Any]) -> str:
    """What makes two fragments the same event (a build posted twice, a run synced again)."""
    if origin == "jenkins":
        return f"jenkins:{fragment['uniqueId']}"
    if origin == "github-actions":
        run = fragment["workflow_run"]
        return f"github-actions:{fragment['repository']['full_name']}:{run['id']}:{run.get('run_attempt', 1)}"
    if origin == "mlflow":
        return f"mlflow:{fragment['run']['info']['run_id']}"
    return f"nomad:{fragment['job_ID']}"


# -- times -------------------------------------------------------------------------------------
def from_millis(value: Any) -> str | None:
    """Milliseconds since the epoch (Jenkins, MLflow) as an xsd:dateTime in UTC."""
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        return None
    moment = datetime.fromtimestamp(value / 1000, tz=timezone.utc)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


_ISO = re.compile(r"^(\d{4}-\d{2}-\d{2})[T ](\d{2}:\d{2}:\d{2})(\.\d+)?(Z|[+-]\d{2}:?\d{2})?$")


def from_text(value: Any) -> str | None:
    """An RFC 3339 / ISO 8601 date-time (GitHub, Nomad: nanoseconds are cut to microseconds; no
    zone means UTC) as an xsd:dateTime in UTC; None when it is none."""
    match = _ISO.match(value.strip()) if isinstance(value, str) else None
    if not match:
        return None
    day, time, fraction, zone = match.groups()
    fraction = (fraction or "")[:7]
    zone = "+00:00" if zone in (None, "Z") else zone if ":" in zone else f"{zone[:3]}:{zone[3:]}"
    try:
        moment = datetime.fromisoformat(f"{day}T{time}{fraction}{zone}")
    except ValueError:
        return None
    return moment.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


# -- IRIs ---------------------------------------------------------------------------------------
class Iris:
    """The IRIs the platform mints for what fragments name, under the base URL."""

    def __init__(self, base_url: str):
        self.base = base_url

    def entity(self, kind: str, name: str) -> str:
        return f"{self.base}entity/{kind}/{name}"

    def agent(self, name: str) -> str:
        return f"{self.base}agent/{name}"

    def person(self, account: str) -> str:
        """A person by e-mail address or account name: one IRI wherever they appear (a commit's
        author, a run's user), without the address itself in the graph."""
        digest = hashlib.sha256(account.strip().lower().encode("utf-8")).hexdigest()[:20]
        return self.agent(f"person-{digest}")

    def vo(self, name: str) -> str:
        return asset_iri(self.base, "VirtualOrganisation", name)


def identifier_of(text: str) -> str:
    """An asset identifier (1-128 of letters, digits, '.', '_', ':', '-') made from free text."""
    cleaned = _IDENTIFIER_CHARS.sub("-", text.replace("/", ".")).strip("-.:_")
    return cleaned[:128] or "fragment"


def _tags(fragment: dict[str, Any]) -> dict[str, str]:
    tags = ((fragment.get("run") or {}).get("data") or {}).get("tags") or []
    return {t["key"]: t.get("value", "") for t in tags if isinstance(t, dict) and isinstance(t.get("key"), str)}


# -- records per origin ---------------------------------------------------------------------------
def _activity(iris: Iris, application: Application, origin: Origin, iri: str, identifier: str,
              **values: Any) -> dict[str, Any]:
    # The software agent is named only: it and the platform are described in mappings/platform-agents.ttl.
    record = {"activity@iri": iri, "identifier": identifier, "vo@iri": iris.vo(application.vo),
              "visibility": application.visibility, "engine@iri": iris.agent(origin)}
    record.update({k: v for k, v in values.items() if v not in (None, "")})
    return record


def _time(value: Any, path: str, warnings: list[Issue], parse: Callable[[Any], str | None]) -> str | None:
    """The time at `path` as xsd:dateTime text; one that does not parse is left out with a warning."""
    if value is None:
        return None
    moment = parse(value)
    if moment is None:
        what = "milliseconds since 1970-01-01" if parse is from_millis else "an RFC 3339 date and time"
        warnings.append(Issue(path, "format", f"not {what}: left out of the provenance graph", value, "warning"))
    return moment


def jenkins_records(fragment: dict[str, Any], application: Application, iris: Iris) -> Mapped:
    trace = fragment["trace"]
    warnings: list[Issue] = []
    identifier = identifier_of(f"jenkins.{fragment['uniqueId']}")
    build = asset_iri(iris.base, "Build", identifier)
    stages, starts, ends = [], [], []
    for number, stage in enumerate(trace.get("stages") or []):
        start = _time(stage.get("startTime"), f"trace.stages[{number}].startTime", warnings, from_millis)
        end = _time(stage.get("endTime"), f"trace.stages[{number}].endTime", warnings, from_millis)
        stages.append({"stage@iri": f"{build}#stage-{stage['id']}", "activity@iri": build, "name": stage["name"],
                       "started": start, "ended": end, "engine@iri": iris.agent("jenkins"),
                       **_fields(started=f"trace.stages[{number}].startTime", ended=f"trace.stages[{number}].endTime"),
                       "_start": stage.get("startTime")})
        starts += [stage["startTime"]] if start else []
        ends += [stage["endTime"]] if end else []
    # Jenkins stamps the trace when the run is queued; the stages say when the work ran.
    starts += [trace["startTime"]] if _time(trace.get("startTime"), "trace.startTime", warnings, from_millis) else []
    ends += [trace["endTime"]] if _time(trace.get("endTime"), "trace.endTime", warnings, from_millis) else []
    # A stage was informed by the last stage that had ended when it started (stages run in parallel).
    for stage in stages:
        before = [s for s in stages if s is not stage and s["ended"] and stage["started"] and s["ended"] <= stage["started"]]
        if before:
            stage["informant@iri"] = max(before, key=lambda s: (s["ended"], s["_start"] or 0))["stage@iri"]
    for stage in stages:
        del stage["_start"]
    started, ended = (from_millis(min(starts)) if starts else None), (from_millis(max(ends)) if ends else None)

    commits, people = [], []
    for number, change in enumerate(trace.get("changesets") or []):
        author = change.get("authorEmail") or change.get("authorName")
        person = iris.person(author) if author else None
        if person:
            people.append({"person@iri": person, "name": change.get("authorName")})
        # The change set names the repository (group, repo) but not its host: the module's source does.
        named = f"/{change.get('group')}/{change.get('repo')}".lower()
        repository = application.source_code if application.source_code and \
            application.source_code.lower().removesuffix(".git").rstrip("/").endswith(named) else None
        commits.append({"commit@iri": iris.entity("commit", change["commit"]), "activity@iri": build,
                        "commit": change["commit"], "comment": (change.get("comment") or "").strip().split("\n")[0] or None,
                        "time": _time(change.get("timeStamp"), f"trace.changesets[{number}].timeStamp", warnings,
                                      from_millis),
                        "person@iri": person, "repository@iri": repository})
    images = []
    for stage in trace.get("stages") or []:
        digest = (stage.get("properties") or {}).get("appDockerDeliveryHash")
        if digest:
            reference = f"{application.docker_image}@{digest}" if application.docker_image else digest
            image = {"image@iri": iris.entity("image", digest), "activity@iri": build, "digest": digest,
                     "reference": reference, "time": from_millis(stage.get("endTime"))}
            images += [{**image, "commit@iri": c["commit@iri"]} for c in commits] or [image]
    activity = _activity(iris, application, "jenkins", build, identifier,
                         **{"class@iri": AI4KG + "Build", "title": fragment.get("fullLabel") or fragment["uniqueId"],
                            "status": trace["status"], "started": started, "ended": ended,
                            "builtFrom@iri": application.iri,
                            **_fields(started="trace.startTime", ended="trace.endTime")})
    return Mapped("jenkins", fragment_key("jenkins", fragment), build,
                  _clean({"activities": [activity], "stages": stages, "commits": commits, "images": images,
                          "people": people}, build), warnings)


def github_records(fragment: dict[str, Any], application: Application, iris: Iris) -> Mapped:
    run = fragment["workflow_run"]
    warnings: list[Issue] = []
    repository = fragment["repository"]["full_name"]
    identifier = identifier_of(f"github.{repository}.{run['id']}.{run.get('run_attempt', 1)}")
    build = asset_iri(iris.base, "Build", identifier)
    actor = (run.get("actor") or {}).get("login")
    people = [{"person@iri": iris.person(f"github:{actor}"), "name": actor}] if actor else []
    head = run.get("head_commit") or {}
    author = head.get("author") or {}
    person = iris.person(author["email"]) if author.get("email") else None
    if person:
        people.append({"person@iri": person, "name": author.get("name")})
    commits = [{"commit@iri": iris.entity("commit", run["head_sha"]), "activity@iri": build, "commit": run["head_sha"],
                "comment": (head.get("message") or "").strip().split("\n")[0] or None,
                "time": _time(head.get("timestamp"), "workflow_run.head_commit.timestamp", warnings, from_text),
                "person@iri": person, "repository@iri": f"https://github.com/{repository}"}]
    finished = run["status"] == "completed"
    activity = _activity(iris, application, "github-actions", build, identifier,
                         **{"class@iri": AI4KG + "Build",
                            "title": f"{run.get('name') or 'workflow'} #{run['id']} of {repository}",
                            "status": (run.get("conclusion") or run["status"]) if finished else run["status"],
                            "started": _time(run.get("run_started_at"), "workflow_run.run_started_at", warnings, from_text),
                            "ended": _time(run.get("updated_at"), "workflow_run.updated_at", warnings, from_text)
                            if finished else None,
                            "builtFrom@iri": application.iri,
                            "user@iri": people[0]["person@iri"] if actor else None,
                            **_fields(started="workflow_run.run_started_at", ended="workflow_run.updated_at")})
    return Mapped("github-actions", fragment_key("github-actions", fragment), build,
                  _clean({"activities": [activity], "commits": commits, "people": people}, build), warnings)


def mlflow_records(fragment: dict[str, Any], application: Application, iris: Iris) -> Mapped:
    run = fragment["run"]
    info = run["info"]
    warnings: list[Issue] = []
    run_id = info["run_id"]
    identifier = f"mlflow-{run_id}"
    activity_iri = asset_iri(iris.base, "TrainingRun", identifier)
    tags = _tags(fragment)
    user = info.get("user_id") or tags.get("mlflow.user")
    people = [{"person@iri": iris.person(user)}] if user else []
    # The job the run ran in: its own tag, else the module's metadata naming both run and job.
    job = tags.get(JOB_TAG) or (next(iter(sorted(application.nomad_jobs)), None)
                                if run_id in application.mlflow_runs else None)
    ended = _time(info.get("end_time"), "run.info.end_time", warnings, from_millis)
    datasets = []
    for number, entry in enumerate((run.get("inputs") or {}).get("dataset_inputs") or []):
        dataset = entry["dataset"]
        datasets.append({"dataset@iri": iris.entity("dataset", f"mlflow-{_name_of(dataset['digest'])}"),
                         "activity@iri": activity_iri, "dataset.name": dataset["name"],
                         "dataset.digest": dataset["digest"]})
    weights = []
    if info["status"] == "FINISHED":  # only a finished run leaves weights behind
        base = {"weights@iri": iris.entity("weights", f"mlflow-{run_id}"), "activity@iri": activity_iri,
                "label": f"weights of {info.get('run_name') or run_id}", "time": ended,
                "run.info.artifact_uri": _absolute(info.get("artifact_uri")),
                "module@iri": application.iri if run_id in application.mlflow_runs else None}
        weights = [{**base, "dataset@iri": d["dataset@iri"]} for d in datasets] or [base]
    activity = _activity(iris, application, "mlflow", activity_iri, identifier,
                         **{"class@iri": AI4KG + "TrainingRun", "title": info.get("run_name") or run_id,
                            "status": info["status"].lower(),
                            "started": _time(info.get("start_time"), "run.info.start_time", warnings, from_millis),
                            "ended": ended, "trainedModule@iri": application.iri, "run.info.run_id": run_id,
                            "user@iri": people[0]["person@iri"] if people else None,
                            "informant@iri": asset_iri(iris.base, "Deployment", job) if job else None,
                            **_fields(started="run.info.start_time", ended="run.info.end_time")})
    return Mapped("mlflow", fragment_key("mlflow", fragment), activity_iri,
                  _clean({"activities": [activity], "weights": weights, "datasets": datasets, "people": people},
                         activity_iri),
                  warnings)


def nomad_records(fragment: dict[str, Any], application: Application, iris: Iris) -> Mapped:
    warnings: list[Issue] = []
    job = fragment["job_ID"]
    deployment = asset_iri(iris.base, "Deployment", job)
    # A job with endpoints serves the module (an API, an IDE); one without runs it to completion.
    endpoints = {key: url for key, url in (fragment.get("endpoints") or {}).items() if isinstance(url, str) and url}
    owner = fragment.get("owner")
    people = [{"person@iri": iris.person(owner)}] if owner else []
    image = fragment.get("docker_image")
    # An image pinned by digest is the very entity a CI build delivered; a tag is only a name.
    pinned = re.search(r"@(sha256:[0-9a-f]{64})$", image or "")
    references = [{"image@iri": iris.entity("image", pinned.group(1) if pinned else image), "activity@iri": deployment,
                   "docker_image": image}] if image else []
    activity = _activity(iris, application, "nomad", deployment, identifier_of(job),
                         **{"class@iri": AI4KG + ("ModuleDeployment" if endpoints else "BatchTrainingDeployment"),
                            "title": fragment.get("title") or job,
                            "status": fragment["status"], "job_ID": job, "docker_image": image,
                            "started": _time(fragment.get("alloc_start"), "alloc_start", warnings, from_text),
                            "ended": _time(fragment.get("alloc_end"), "alloc_end", warnings, from_text),
                            "deploys@iri": application.iri, "application@iri": application.iri,
                            "user@iri": people[0]["person@iri"] if people else None,
                            **_fields(started="alloc_start", ended="alloc_end")})
    links = [{"endpoint@iri": f"{deployment}#endpoint-{slug}", "key": key, "url": url}
             for slug, (key, url) in zip(_slugs(endpoints), sorted(endpoints.items()))]
    return Mapped("nomad", fragment_key("nomad", fragment), deployment,
                  _clean({"activities": [activity], "image_references": references, "endpoints": links,
                          "people": people}, deployment), warnings)


def _slugs(endpoints: dict[str, str]) -> list[str]:
    """Fragment-safe names of the endpoint keys, in key order, unique."""
    slugs: list[str] = []
    for key in sorted(endpoints):
        slug = re.sub(r"[^A-Za-z0-9._-]+", "-", key).strip("-") or "endpoint"
        while slug in slugs:
            slug += "-"
        slugs.append(slug)
    return slugs


BUILDERS: dict[Origin, Callable[[dict[str, Any], Application, Iris], Mapped]] = {
    "jenkins": jenkins_records, "github-actions": github_records, "mlflow": mlflow_records, "nomad": nomad_records}


FIELD = "@field."
"""Record keys `@field.KEY` hold the fragment field that record key KEY was made from, so that a
SHACL violation on its triple names the field as the sender wrote it (the mapping never reads them)."""


def _fields(**paths: str) -> dict[str, str]:
    return {FIELD + key: path for key, path in paths.items()}


def value_at(fragment: Any, path: str) -> Any:
    """The value at a field path (`trace.stages[2].startTime`) of a fragment; None if there is none."""
    value = fragment
    for name, index in re.findall(r"([^.\[\]]+)|\[(\d+)\]", path):
        if index:
            value = value[int(index)] if isinstance(value, list) and int(index) < len(value) else None
        else:
            value = value.get(name) if isinstance(value, dict) else None
    return value


def _name_of(digest: str) -> str:
    """A digest as the last segment of an IRI: as it is when it is letters and digits (MLflow's own
    are 8 hex digits), else a SHA-256 of it (MLflow accepts any text)."""
    return digest if re.fullmatch(r"[A-Za-z0-9]{1,64}", digest) else hashlib.sha256(digest.encode("utf-8")).hexdigest()[:32]


def _absolute(uri: Any) -> str | None:
    """An artifact location usable as an IRI (mlflow-artifacts:/..., s3://..., file:///...)."""
    return uri if isinstance(uri, str) and re.match(r"^[A-Za-z][A-Za-z0-9+.-]*:[^\s<>\"{}|\\^`]*$", uri) else None


def _clean(records: Records, activity: str) -> Records:
    """Records without empty values (a missing value makes no triple, as in the catalogue's
    mapping), each naming the activity whose graph its triples go into."""
    return {source: [{"activity@iri": activity, **{k: v for k, v in record.items() if v is not None}} for record in rows]
            for source, rows in records.items()}
