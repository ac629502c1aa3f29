"""Where ai4kg keeps its data and how it names things, from the environment or the command line."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

DEFAULT_BASE_URL = "https://w3id.org/ai4kg/id/"
"""Asset IRIs are minted under this base unless AI4KG_BASE_URL or --base-url says otherwise."""
DEFAULT_VO = "default"
"""The VO that owns imported assets unless the import names one (ai4kg import --vo)."""
VISIBILITIES = ("public", "virtual-organisation", "private")
"""Slugs of the concepts of https://w3id.org/ai4kg/vocab/visibility (ai4kg import --visibility)."""

DEFAULT_ADMIN_ROLE = "access:platform:admin"
"""Roles read `access:<vo>:<level>`; this one makes a platform administrator."""
DEFAULT_SPARQL_TIMEOUT = 30.0
"""Seconds a query at /sparql may take before the client gets 503 (AI4KG_SPARQL_TIMEOUT)."""
DEFAULT_SPARQL_RESULT_LIMIT = 10_000
"""Solutions or triples one query at /sparql may return (AI4KG_SPARQL_RESULT_LIMIT)."""
DEFAULT_CONTROL_INTERVAL = 2.0
"""Seconds between two rounds of the deployments' control loop while `ai4kg serve` runs (AI4KG_CONTROL_INTERVAL)."""
DEFAULT_MLFLOW_SYNC_INTERVAL = 300.0
"""Seconds between two pulls from the MLflow tracking server while `ai4kg serve` runs (AI4KG_MLFLOW_SYNC_INTERVAL)."""
DEFAULT_MAX_BODY_BYTES = 1024 * 1024
"""Bytes a request body may have (AI4KG_MAX_BODY_BYTES): a metadata document, a SPARQL query, a
GraphQL request, a provenance event or a deployment request is far smaller."""
DEFAULT_MAX_UPDATE_BYTES = 64 * 1024 * 1024
"""Bytes a SPARQL Update by the platform administrator may have (AI4KG_MAX_UPDATE_BYTES)."""
DEFAULT_SPARQL_HEAVY_PER_CALLER = 2
"""Heavy queries one caller may have running before its next query gets 429
(AI4KG_SPARQL_HEAVY_PER_CALLER). Heavy: one Oxigraph computes whole (a sort, a group, an aggregate,
an ASK; run in a process of its own), or one past its timeout that still runs."""
DEFAULT_SPARQL_HEAVY_LIMIT = 8
"""Heavy queries of all callers running before any new query gets 503 (AI4KG_SPARQL_HEAVY_LIMIT)."""
DEFAULT_SPARQL_QUERY_MEMORY = 1024 * 1024 * 1024
"""Bytes of memory a SPARQL query computed in a process of its own (a sort, a group, an aggregate)
may take beyond the server's own (AI4KG_SPARQL_QUERY_MEMORY)."""
READ_THREADS_PER_CPU = 1
"""Worker threads that build answers from the embedded store, per CPU the process may use
(AI4KG_READ_THREADS overrides the total). That work holds the GIL; more threads than cores add no
throughput, and every extra runnable thread delays the event loop's next turn: on 2 cores, /health
p99 under load was 73-93 ms with 2 threads, 93-98 with 5, 100-120 with anyio's 40
(bench/hardening_bench.py, issue 14)."""
DEFAULT_ASSISTANT_TIMEOUT = 20.0
"""Seconds a language model may take to write the assistant's query (AI4KG_ASSISTANT_TIMEOUT)."""
DEFAULT_SPARQL_SERVICE_TIMEOUT = 10.0
"""Seconds one remote endpoint may take to answer a SPARQL SERVICE call (AI4KG_SPARQL_SERVICE_TIMEOUT)."""


def _user_data_dir() -> str:
    import platformdirs  # only when no directory is given

    return platformdirs.user_data_dir("ai4kg")


@dataclass(frozen=True)
class Settings:
    data_dir: Path | None
    """Directory of the on-disk store; None keeps everything in memory (tests, dry runs)."""
    base_url: str = DEFAULT_BASE_URL
    sparql_timeout: float = DEFAULT_SPARQL_TIMEOUT
    sparql_result_limit: int = DEFAULT_SPARQL_RESULT_LIMIT
    oidc_issuer: str | None = None
    """Bearer tokens are accepted from this OIDC issuer (AI4KG_OIDC_ISSUER); None: no OIDC sign-in."""
    oidc_audience: str | None = None
    """The audience tokens must name (AI4KG_OIDC_AUDIENCE); None: not checked."""
    oidc_jwks_url: str | None = None
    """Where the issuer's signing keys are (AI4KG_OIDC_JWKS_URL); None: from its discovery document."""
    oidc_client_id: str | None = None
    """The dashboard's client at the issuer (AI4KG_OIDC_CLIENT_ID): with oidc_issuer, the sign-in page
    offers the issuer's sign-in (authorization code with PKCE); None: API keys only."""
    oidc_client_secret: str | None = field(default=None, repr=False)
    """That client's secret (AI4KG_OIDC_CLIENT_SECRET), for a confidential client; None: a public
    client (PKCE alone). Sent to the issuer's token endpoint only, never logged or shown."""
    sparql_store_url: str | None = None
    """A SPARQL 1.1 server (Oxigraph's) that holds the graph instead of the embedded store
    (AI4KG_SPARQL_STORE); the search index stays in data_dir."""
    admin_role: str = DEFAULT_ADMIN_ROLE
    """The role that makes a signed-in agent a platform administrator (AI4KG_ADMIN_ROLE)."""
    catalog_file: Path | None = None
    """Turtle describing this platform's catalogue (title, publisher, homepage...) for the
    DCAT-AP and MLDCAT-AP views (AI4KG_CATALOG_FILE); None: the packaged
    mappings/views/platform-catalog.ttl. Relative IRIs resolve against base_url."""
    mlflow_url: str | None = None
    """An MLflow tracking server whose runs are pulled as provenance (AI4KG_MLFLOW_URL); None: no sync."""
    mlflow_token: str | None = None
    """A bearer token for that server (AI4KG_MLFLOW_TOKEN)."""
    mlflow_sync_interval: float = DEFAULT_MLFLOW_SYNC_INTERVAL
    workloads: str = "local"
    """Who runs deployments (AI4KG_WORKLOADS): `local` (processes on this machine) or `nomad`."""
    nomad_address: str | None = None
    """The Nomad server's HTTP API (AI4KG_NOMAD_ADDR, e.g. http://127.0.0.1:4646) for `nomad`."""
    nomad_token: str | None = None
    """Nomad's ACL token (AI4KG_NOMAD_TOKEN)."""
    nomad_datacenters: tuple[str, ...] = ("dc1",)
    """The Nomad datacenters deployments are placed on (AI4KG_NOMAD_DATACENTERS, comma-separated)."""
    local_capacity_file: Path | None = None
    """JSON: datacenter -> {cpu, memory_mb, gpu, disk_mb} the local executor may use
    (AI4KG_LOCAL_CAPACITY); None: one datacenter `local` with this machine's cores, memory and disk."""
    local_runtimes_file: Path | None = None
    """JSON: image repository (or `*`) -> the command the local executor runs for it (AI4KG_LOCAL_RUNTIMES)."""
    quotas_file: Path | None = None
    """JSON: {"user": {...}, "vo": {"NAME": {...}}, "try_me_per_user": N} (AI4KG_QUOTAS); None: the defaults."""
    control_interval: float = DEFAULT_CONTROL_INTERVAL
    platform_url: str | None = None
    """Where workloads reach this platform's API, e.g. a federation's server posting its rounds
    (AI4KG_PLATFORM_URL); None: the address `ai4kg serve` listens on."""
    federation_hosts: tuple[str, ...] = ()
    """DNS names or addresses clients reach federations' SuperLinks by, besides loopback: their TLS
    certificates name them (AI4KG_FEDERATION_HOSTS, comma-separated; e.g. *.cloud.example.eu for Nomad)."""
    flower_env: Path | None = None
    """Where the Flower environment is built (AI4KG_FLOWER_ENV); None: the user's cache directory,
    one folder per lock file of federated/flower-app."""
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    """The largest request body any route takes (AI4KG_MAX_BODY_BYTES); larger ones get 413."""
    max_update_bytes: int = DEFAULT_MAX_UPDATE_BYTES
    """The largest SPARQL Update the platform administrator may POST (AI4KG_MAX_UPDATE_BYTES)."""
    sparql_heavy_per_caller: int = DEFAULT_SPARQL_HEAVY_PER_CALLER
    """Heavy queries per caller (AI4KG_SPARQL_HEAVY_PER_CALLER); see the default's note."""
    sparql_heavy_limit: int = DEFAULT_SPARQL_HEAVY_LIMIT
    """Heavy queries of all callers (AI4KG_SPARQL_HEAVY_LIMIT)."""
    sparql_query_memory: int = DEFAULT_SPARQL_QUERY_MEMORY
    sparql_services: tuple[str, ...] = ()
    """Remote SPARQL endpoints a query may call with SERVICE (AI4KG_SPARQL_SERVICES, comma-separated
    endpoint URLs). Empty, the default: federated queries are off and a query with SERVICE gets 400,
    so the server never sends a request on an anonymous caller's behalf."""
    sparql_service_timeout: float = DEFAULT_SPARQL_SERVICE_TIMEOUT
    """Seconds one allowed endpoint may take to answer a SERVICE call (AI4KG_SPARQL_SERVICE_TIMEOUT)."""
    assistant_url: str | None = None
    """An OpenAI-compatible API (vLLM, Ollama, llama.cpp's server, LiteLLM) that writes the assistant's
    SPARQL (AI4KG_ASSISTANT_URL, e.g. http://127.0.0.1:8000/v1); None: the embedded parser alone."""
    assistant_model: str | None = None
    """The model to ask (AI4KG_ASSISTANT_MODEL)."""
    assistant_key: str | None = field(default=None, repr=False)
    """Its API key (AI4KG_ASSISTANT_KEY): sent as a bearer token, never logged or stored."""
    assistant_timeout: float = DEFAULT_ASSISTANT_TIMEOUT
    """Seconds the model may take before the embedded parser answers instead (AI4KG_ASSISTANT_TIMEOUT)."""
    read_threads: int = 0
    """Worker threads that answer reads (AI4KG_READ_THREADS); 0, the default: one per CPU the process
    may use (READ_THREADS_PER_CPU). Writes, sign-in and calls to other services have threads of
    their own, so a slow one never holds a reader back."""

    def __post_init__(self) -> None:
        if not self.sparql_timeout > 0:
            raise ValueError(f"the SPARQL timeout must be a positive number of seconds, not {self.sparql_timeout!r}")
        if self.workloads == "nomad" and not self.nomad_address:
            raise ValueError("AI4KG_WORKLOADS=nomad needs AI4KG_NOMAD_ADDR (the Nomad server's HTTP API, "
                             "e.g. http://127.0.0.1:4646)")
        for name in ("max_body_bytes", "max_update_bytes", "sparql_service_timeout", "sparql_heavy_per_caller",
                     "sparql_heavy_limit", "sparql_query_memory"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be a positive number, not {getattr(self, name)!r}")
        if self.assistant_url and not self.assistant_model:
            raise ValueError("AI4KG_ASSISTANT_URL needs AI4KG_ASSISTANT_MODEL (the model to ask)")
        if self.read_threads < 0:
            raise ValueError(f"read_threads must be 0 (one per CPU) or a positive number, not {self.read_threads!r}")
        if self.sparql_result_limit < 1:
            raise ValueError(f"the SPARQL result limit must be a positive number of rows, not {self.sparql_result_limit!r}")

    @classmethod
    def from_env(cls, data: str | os.PathLike[str] | None = None, base_url: str | None = None) -> "Settings":
        chosen = data or os.environ.get("AI4KG_DATA") or _user_data_dir()
        base = base_url or os.environ.get("AI4KG_BASE_URL") or DEFAULT_BASE_URL
        if not base.endswith(("/", "#")):
            base += "/"
        return cls(data_dir=Path(chosen), base_url=base,
                   sparql_timeout=positive_number("AI4KG_SPARQL_TIMEOUT", float, DEFAULT_SPARQL_TIMEOUT),
                   sparql_result_limit=positive_number("AI4KG_SPARQL_RESULT_LIMIT", int, DEFAULT_SPARQL_RESULT_LIMIT),
                   oidc_issuer=os.environ.get("AI4KG_OIDC_ISSUER") or None,
                   oidc_audience=os.environ.get("AI4KG_OIDC_AUDIENCE") or None,
                   oidc_jwks_url=os.environ.get("AI4KG_OIDC_JWKS_URL") or None,
                   oidc_client_id=os.environ.get("AI4KG_OIDC_CLIENT_ID") or None,
                   oidc_client_secret=os.environ.get("AI4KG_OIDC_CLIENT_SECRET") or None,
                   sparql_store_url=os.environ.get("AI4KG_SPARQL_STORE") or None,
                   admin_role=os.environ.get("AI4KG_ADMIN_ROLE") or DEFAULT_ADMIN_ROLE,
                   catalog_file=_path("AI4KG_CATALOG_FILE"),
                   mlflow_url=os.environ.get("AI4KG_MLFLOW_URL") or None,
                   mlflow_token=os.environ.get("AI4KG_MLFLOW_TOKEN") or None,
                   mlflow_sync_interval=positive_number("AI4KG_MLFLOW_SYNC_INTERVAL", float, DEFAULT_MLFLOW_SYNC_INTERVAL),
                   workloads=_choice("AI4KG_WORKLOADS", ("local", "nomad"), "local"),
                   nomad_address=os.environ.get("AI4KG_NOMAD_ADDR") or None,
                   nomad_token=os.environ.get("AI4KG_NOMAD_TOKEN") or None,
                   nomad_datacenters=tuple(d.strip() for d in os.environ.get("AI4KG_NOMAD_DATACENTERS", "dc1").split(",")
                                           if d.strip()) or ("dc1",),
                   local_capacity_file=_path("AI4KG_LOCAL_CAPACITY"), local_runtimes_file=_path("AI4KG_LOCAL_RUNTIMES"),
                   quotas_file=_path("AI4KG_QUOTAS"),
                   control_interval=positive_number("AI4KG_CONTROL_INTERVAL", float, DEFAULT_CONTROL_INTERVAL),
                   platform_url=(os.environ.get("AI4KG_PLATFORM_URL") or "").rstrip("/") or None,
                   federation_hosts=tuple(h.strip() for h in os.environ.get("AI4KG_FEDERATION_HOSTS", "").split(",")
                                          if h.strip()),
                   flower_env=_path("AI4KG_FLOWER_ENV"),
                   max_body_bytes=positive_number("AI4KG_MAX_BODY_BYTES", int, DEFAULT_MAX_BODY_BYTES),
                   max_update_bytes=positive_number("AI4KG_MAX_UPDATE_BYTES", int, DEFAULT_MAX_UPDATE_BYTES),
                   sparql_heavy_per_caller=positive_number("AI4KG_SPARQL_HEAVY_PER_CALLER", int,
                                                           DEFAULT_SPARQL_HEAVY_PER_CALLER),
                   sparql_heavy_limit=positive_number("AI4KG_SPARQL_HEAVY_LIMIT", int, DEFAULT_SPARQL_HEAVY_LIMIT),
                   sparql_query_memory=positive_number("AI4KG_SPARQL_QUERY_MEMORY", int, DEFAULT_SPARQL_QUERY_MEMORY),
                   sparql_services=tuple(u.strip() for u in os.environ.get("AI4KG_SPARQL_SERVICES", "").split(",")
                                         if u.strip()),
                   sparql_service_timeout=positive_number("AI4KG_SPARQL_SERVICE_TIMEOUT", float,
                                                          DEFAULT_SPARQL_SERVICE_TIMEOUT),
                   assistant_url=(os.environ.get("AI4KG_ASSISTANT_URL") or "").rstrip("/") or None,
                   assistant_model=os.environ.get("AI4KG_ASSISTANT_MODEL") or None,
                   assistant_key=os.environ.get("AI4KG_ASSISTANT_KEY") or None,
                   assistant_timeout=positive_number("AI4KG_ASSISTANT_TIMEOUT", float, DEFAULT_ASSISTANT_TIMEOUT),
                   read_threads=positive_number("AI4KG_READ_THREADS", int, 0))

    @property
    def reader_threads(self) -> int:
        """How many threads answer reads: read_threads, or one per CPU this process may use."""
        if self.read_threads:
            return self.read_threads
        cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
        return max(2, cpus * READ_THREADS_PER_CPU)

    @classmethod
    def in_memory(cls, base_url: str = DEFAULT_BASE_URL) -> "Settings":
        return cls(data_dir=None, base_url=base_url)


def private_directory(path: Path) -> Path:
    """`path`, created if need be, readable by this user only (0700), with the files directly in it
    (SQLite databases: the search index with the OAI-PMH token key, the API keys' digests, the
    ledgers) 0600: a data directory made by an earlier release, or copied, is tightened on open."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    if path.stat().st_mode & 0o077:
        path.chmod(0o700)
    for entry in path.iterdir():
        if entry.is_file() and not entry.is_symlink() and entry.stat().st_mode & 0o077:
            entry.chmod(0o600)
    return path


def _path(variable: str) -> Path | None:
    return Path(os.environ[variable]) if os.environ.get(variable) else None


def _choice(variable: str, allowed: tuple[str, ...], default: str) -> str:
    value = os.environ.get(variable, "").strip() or default
    if value not in allowed:
        raise ValueError(f"{variable}={value!r} is not valid: use one of {', '.join(allowed)}")
    return value


def positive_number(variable: str, kind: type[int] | type[float], default: int | float) -> int | float:
    """A positive number from the environment, or the default when the variable is unset or empty."""
    text = os.environ.get(variable, "").strip()
    if not text:
        return default
    try:
        value = kind(text)
    except ValueError:
        value = None
    if value is None or not value > 0:
        unit = "seconds" if kind is float else "a whole number"
        raise ValueError(f"{variable}={text!r} is not valid: use a positive number ({unit})")
    return value
