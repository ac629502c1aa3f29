"""`ai4kg deploy ...`: deployments through a running server's REST API.

Deployments need a server: it owns the store and its control loop supervises what runs. So this
command speaks HTTP to `ai4kg serve` (AI4KG_SERVER, default http://127.0.0.1:8000) with an API key
or token (AI4KG_TOKEN or --token-file, never --token), like `nomad job run` speaks to its agent.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from ..cli_tokens import token_options
from .records import FINAL, KINDS, STATUSES

err = Console(stderr=True, highlight=False, soft_wrap=True)
out = Console(highlight=False)
EXIT_OK, EXIT_REJECTED, EXIT_UNREACHABLE = 0, 1, 2


class Server:
    def __init__(self, url: str, token: str | None):
        import httpx  # not at import: the command line's start stays light

        self.url = url.rstrip("/")
        self._client = httpx.Client(base_url=self.url, timeout=120,
                                    headers={"Authorization": f"Bearer {token}"} if token else {})

    def call(self, method: str, path: str, **options: Any) -> Any:
        """The JSON answer; a problem (4xx/5xx) printed with each field at fault, then exit 1;
        no server, exit 2."""
        import httpx

        try:
            response = self._client.request(method, path, **options)
        except httpx.HTTPError as exc:
            err.print(f"[red]error:[/red] no ai4kg server answers at {self.url} ({exc}); start one with "
                      "`ai4kg serve`, or point AI4KG_SERVER / --server at it")
            sys.exit(EXIT_UNREACHABLE)
        if response.status_code >= 400:
            try:
                problem = response.json()
            except ValueError:
                problem = {"title": response.reason_phrase, "detail": response.text}
            err.print(f"[red]error {response.status_code}:[/red] {problem.get('title')}: {problem.get('detail')}",
                      markup=True)
            for param in problem.get("invalid-params") or []:
                value = "" if param.get("value") is None else f" (value: {param['value']!r})"
                err.print(f"  {param.get('name')}: {param.get('reason')}{value}", markup=False)
            sys.exit(EXIT_REJECTED)
        return response.json()


def server_options(group: Any) -> Any:
    """--server and --token-file, for the commands that speak to a running `ai4kg serve`."""
    group = token_options("AI4KG_TOKEN", "an API key or bearer token")(group)
    return click.option("--server", envvar="AI4KG_SERVER", default="http://127.0.0.1:8000", show_default=True,
                        help="The ai4kg server [env AI4KG_SERVER].")(group)


@click.group()
@server_options
@click.pass_context
def deploy(ctx: click.Context, server: str, token: str | None) -> None:
    """Deployments: create, list, show, delete (through a running `ai4kg serve`)."""
    ctx.obj = Server(server, token)


def _split(values: tuple[str, ...], option: str) -> dict[str, int]:
    found = {}
    for value in values:
        label, _, port = value.partition("=")
        if not port.isdigit():
            raise click.BadParameter(f"{value!r}: write LABEL=PORT, e.g. api=5000", param_hint=option)
        found[label] = int(port)
    return found


@deploy.command("create")
@click.argument("module")
@click.argument("command", nargs=-1)
@click.option("--kind", type=click.Choice(KINDS), default="module", show_default=True)
@click.option("--name", help="Choose the identifier (then creating it again is idempotent).")
@click.option("--version", help="The image tag to run [default: latest].")
@click.option("--vo", help="The VO to deploy in [default: yours, if you have one].")
@click.option("--title")
@click.option("--description")
@click.option("--cpu", type=int, help="Cores.")
@click.option("--memory-mb", type=int)
@click.option("--gpu", type=int)
@click.option("--gpu-model")
@click.option("--disk-mb", type=int)
@click.option("--datacenter")
@click.option("--endpoint", "endpoints", multiple=True, help="LABEL=PORT the workload listens on (repeatable).")
@click.option("--dataset", "datasets", multiple=True, help="A dataset DOI to download into it (repeatable).")
@click.option("--storage", help="An rclone remote:path to mount.")
@click.option("--notify", help="An e-mail address told when it ends (Nomad).")
@click.option("--duration-minutes", type=int, help="How long a try-me runs.")
@click.option("--file", "request_file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="A JSON deployment request; the options above override its fields.")
@click.option("--wait/--no-wait", default=False, help="Wait until it runs or ends.")
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
def create(server: Server, module: str, command: tuple[str, ...], request_file: Path | None, wait: bool,
           as_json: bool, endpoints: tuple[str, ...], datasets: tuple[str, ...], **options: Any) -> None:
    """Deploy MODULE (a catalogue name); a batch job's COMMAND follows `--`."""
    body: dict[str, Any] = json.loads(request_file.read_text("utf-8")) if request_file else {}
    body["module"] = module
    body.setdefault("kind", options.pop("kind"))
    resources = {key: options.pop(key) for key in ("cpu", "memory_mb", "gpu", "gpu_model", "disk_mb")}
    if any(v is not None for v in resources.values()):
        body["resources"] = {**body.get("resources", {}), **{k: v for k, v in resources.items() if v is not None}}
    body.update({k: v for k, v in options.items() if v is not None})
    if command:
        body["command"] = list(command)
    if endpoints:
        body["endpoints"] = _split(endpoints, "--endpoint")
    if datasets:
        body["datasets"] = [{"doi": doi} for doi in datasets]
    deployment = server.call("POST", "/v1/deployments", json=body)
    if wait:
        deployment = _wait(server, deployment)
    _show(deployment, as_json)


def _wait(server: Server, deployment: dict[str, Any], timeout_s: float = 600) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    with err.status(f"{deployment['identifier']}: {deployment['status']}") as status:
        while deployment["status"] not in (*FINAL, "running") and time.monotonic() < deadline:
            time.sleep(1)
            deployment = server.call("GET", f"/v1/deployments/{deployment['identifier']}")
            waiting = f" ({deployment['waiting']})" if deployment.get("waiting") else ""
            status.update(f"{deployment['identifier']}: {deployment['status']}{waiting}")
    return deployment


def _show(deployment: dict[str, Any], as_json: bool) -> None:
    if as_json:
        out.print_json(json.dumps(deployment))
        return
    d = deployment
    out.print(f"[bold]{d['identifier']}[/bold]  {d['status']}  {d['kind']} of {d['module']}:{d['version']}")
    out.print(f"  owner {d['owner']}, VO {d['vo']}, datacenter {d['placed_on'] or '(not placed)'}", markup=False)
    r = d["resources"]
    out.print(f"  asked {r['cpu']} cpu, {r['memory_mb']} MiB, {r['gpu']} gpu, {r['disk_mb']} MiB disk", markup=False)
    if d.get("waiting"):
        out.print(f"  waiting: {d['waiting']}", markup=False)
    for label, url in sorted((d.get("urls") or {}).items()):
        out.print(f"  {label}: {url}", markup=False)
    for change in d.get("history") or []:
        out.print(f"  {change['at']}  {change['status']:<9} {change['reason']}", markup=False)


@deploy.command("list")
@click.option("--status", type=click.Choice(STATUSES))
@click.option("--kind", type=click.Choice(KINDS))
@click.option("--vo", help="A VO's deployments.")
@click.option("--owner", help="Someone's deployments (administrators).")
@click.option("--limit", type=int, default=1000, show_default=True)
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
def list_(server: Server, as_json: bool, limit: int, **filters: Any) -> None:
    """Your deployments (or a VO's), oldest first."""
    params = {k: v for k, v in filters.items() if v is not None}
    found: list[dict[str, Any]] = []
    cursor = None
    while len(found) < limit:
        page = server.call("GET", "/v1/deployments", params={**params, "limit": min(1000, limit - len(found)),
                                                             **({"cursor": cursor} if cursor else {})})
        found += page["deployments"]
        cursor = page["next"]
        if not cursor:
            break
    if as_json:
        out.print_json(json.dumps(found))
        return
    table = Table("identifier", "status", "kind", "module", "datacenter", "endpoints", "created")
    for d in found:
        table.add_row(d["identifier"], d["status"], d["kind"], d["module"], d["placed_on"] or "",
                      " ".join(sorted((d.get("urls") or {}).values())), d["created_at"])
    out.print(table)


@deploy.command("show")
@click.argument("identifier")
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
def show(server: Server, identifier: str, as_json: bool) -> None:
    """One deployment with its status history."""
    _show(server.call("GET", f"/v1/deployments/{identifier}"), as_json)


@deploy.command("delete")
@click.argument("identifier")
@click.pass_obj
def delete(server: Server, identifier: str) -> None:
    """Stop a deployment and free its resources."""
    deployment = server.call("DELETE", f"/v1/deployments/{identifier}")
    out.print(f"{deployment['identifier']}: {deployment['status']}", markup=False)


@deploy.command("datacenters")
@click.pass_obj
def datacenters(server: Server) -> None:
    """Capacity, use and health of each datacenter."""
    found = server.call("GET", "/v1/workloads/datacenters")
    table = Table("datacenter", "health", "cpu used/all", "memory MiB used/all", "gpu used/all")
    for dc in found["datacenters"]:
        room, used = dc["capacity"] or {}, dc["used"] or {}
        health = dc["health"] or {}
        table.add_row(dc["name"], health.get("status", "?"),
                      *(f"{used.get(k, 0)}/{room.get(k, '?')}" for k in ("cpu", "memory_mb", "gpu")))
    out.print(f"executor: {found['executor']}")
    out.print(table)


@deploy.command("reconcile")
@click.pass_obj
def reconcile(server: Server) -> None:
    """Compare the workload manager with the graph now and repair the difference (administrators)."""
    report = server.call("POST", "/v1/workloads/reconcile")
    out.print(f"checked {report['checked']}, observed {report['observed']}: {report['changed']} changed, "
              f"{report['gone']} gone, {report['unknown']} unknown stopped in {report['seconds']:.2f} s", markup=False)
    for repair in report["repairs"]:
        out.print(f"  {repair['identifier']}: {repair['repair']} ({repair['detail']})", markup=False)
