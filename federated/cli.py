"""`ai4kg federation ...`: federated learning through a running server's REST API.

Like `ai4kg deploy`, it speaks HTTP to `ai4kg serve` (AI4KG_SERVER) with an API key or token
(AI4KG_TOKEN): the server owns the store, runs the federations' servers and takes their rounds.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import click
from rich.table import Table

from ..workloads.cli import Server, err, out, server_options
from .records import FINAL, STRATEGIES


@click.group()
@server_options
@click.pass_context
def federation(ctx: click.Context, server: str, token: str | None) -> None:
    """Federated learning: sessions, their clients and rounds (through a running `ai4kg serve`)."""
    ctx.obj = Server(server, token)


@federation.command("create")
@click.argument("module")
@click.option("--name", help="Choose the identifier (then creating it again is idempotent).")
@click.option("--strategy", type=click.Choice(STRATEGIES))
@click.option("--rounds", type=int)
@click.option("--min-fit-clients", type=int)
@click.option("--min-available-clients", type=int)
@click.option("--min-evaluate-clients", type=int)
@click.option("--metric", type=click.Choice(["mse", "mae"]))
@click.option("--vo")
@click.option("--title")
@click.option("--file", "request_file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="A JSON federation request (privacy, divergence, strategy options...); the options "
                   "above override its fields.")
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
def create(server: Server, module: str, request_file: Path | None, as_json: bool, **options: Any) -> None:
    """Start a federated-learning session of MODULE; admit clients with `federation client add`."""
    body: dict[str, Any] = json.loads(request_file.read_text("utf-8")) if request_file else {}
    body["module"] = module
    body.update({k: v for k, v in options.items() if v is not None})
    _show(server.call("POST", "/v1/federations", json=body), as_json)


def _show(f: dict[str, Any], as_json: bool) -> None:
    if as_json:
        out.print_json(json.dumps(f))
        return
    s = f["settings"]
    privacy = s["privacy"]
    out.print(f"[bold]{f['identifier']}[/bold]  {f['status']}  {s['strategy']} on {f['module']}, "
              f"{f['rounds_done']}/{s['rounds']} rounds")
    out.print(f"  owner {f['owner']}, VO {f['vo']}, server {f['deployment']}, Flower run {f['run_id'] or '-'}",
              markup=False)
    out.print(f"  clients: at least {s['min_fit_clients']} train of {s['min_available_clients']} connected; "
              f"differential privacy {'on' if privacy['differential_privacy'] else 'off'}"
              f"{' (metric privacy)' if privacy['metric_privacy'] else ''}", markup=False)
    out.print(f"  SuperLink: {f['connection']['superlink'] or '(starting)'}", markup=False)
    if f.get("detail"):
        out.print(f"  {f['detail']}", markup=False)
    for c in f["clients"]:
        out.print(f"  client {c['name']:<20} {c['status']:<8} node {c['node_id'] or '-'}  {c['fingerprint']}"
                  f"{'  (' + c['reason'] + ')' if c.get('reason') else ''}", markup=False)


@federation.command("list")
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
def list_(server: Server, as_json: bool) -> None:
    """Your federations and your VOs', newest first."""
    found = server.call("GET", "/v1/federations")["federations"]
    if as_json:
        out.print_json(json.dumps(found))
        return
    table = Table("identifier", "status", "strategy", "module", "rounds", "clients", "created")
    for f in found:
        table.add_row(f["identifier"], f["status"], f["settings"]["strategy"], f["module"],
                      f"{f['rounds_done']}/{f['settings']['rounds']}",
                      str(sum(c["status"] == "admitted" for c in f["clients"])), f["created_at"])
    out.print(table)


@federation.command("show")
@click.argument("identifier")
@click.option("--wait", is_flag=True, help="Follow it until it ends.")
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
def show(server: Server, identifier: str, wait: bool, as_json: bool) -> None:
    """One federation: settings, clients, connection (with --wait, until it ends)."""
    found = server.call("GET", f"/v1/federations/{identifier}")
    if wait:
        with err.status("") as status:
            while found["status"] not in FINAL:
                status.update(f"{identifier}: {found['status']}, round {found['rounds_done']} of "
                              f"{found['settings']['rounds']}")
                time.sleep(2)
                found = server.call("GET", f"/v1/federations/{identifier}")
    _show(found, as_json)


@federation.command("stop")
@click.argument("identifier")
@click.pass_obj
def stop(server: Server, identifier: str) -> None:
    """Stop the run and its server (the session stays in the graph)."""
    found = server.call("DELETE", f"/v1/federations/{identifier}")
    out.print(f"{found['identifier']}: {found['status']}", markup=False)


@federation.command("rounds")
@click.argument("identifier")
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
def rounds(server: Server, identifier: str, as_json: bool) -> None:
    """The rounds recorded: clients, metrics, noise, divergence."""
    found = server.call("GET", f"/v1/federations/{identifier}/rounds")["rounds"]
    if as_json:
        out.print_json(json.dumps(found))
        return
    table = Table("round", "ended", "updates", "failures", "server metrics", "noise σ", "flagged")
    for r in found:
        metrics = ", ".join(f"{k} {v:.4g}" for k, v in sorted((r.get("server_metrics") or {}).items()))
        table.add_row(str(r["round"]), r["ended_at"], str(len(r["updates"])), str(len(r["failures"])), metrics,
                      f"{r['privacy']['sigma']:.3g}" if r.get("privacy") else "-",
                      " ".join(r["divergence"]["flagged_nodes"]))
    out.print(table)


@federation.group("client")
def client() -> None:
    """Admit and revoke clients."""


@client.command("add")
@click.argument("identifier")
@click.argument("name")
@click.option("--out", "folder", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="Where to write the client's key (client.key, 0600) and the SuperLink's CA (ca.pem).")
@click.pass_obj
def add(server: Server, identifier: str, name: str, folder: Path) -> None:
    """Admit NAME to the federation: its private key is written once to --out and kept nowhere else."""
    answer = server.call("POST", f"/v1/federations/{identifier}/clients", json={"name": name})
    folder.mkdir(parents=True, exist_ok=True)
    key = folder / "client.key"
    key.touch(mode=0o600)
    key.write_text(answer["private_key"], "utf-8")
    if answer.get("root_certificates"):
        (folder / "ca.pem").write_text(answer["root_certificates"], "utf-8")
    out.print(f"{name}: admitted ({answer['fingerprint']}); key in {key}", markup=False)
    command = [*answer["command"]]
    command[command.index("client.key")] = str(key)
    command[command.index("ca.pem")] = str(folder / "ca.pem")
    out.print("run the client with: " + " ".join(command), markup=False)


@client.command("revoke")
@click.argument("identifier")
@click.argument("name")
@click.pass_obj
def revoke(server: Server, identifier: str, name: str) -> None:
    """Revoke NAME: refused from its next request, never sampled again."""
    found = server.call("DELETE", f"/v1/federations/{identifier}/clients/{name}")
    out.print(f"{found['name']}: {found['status']}", markup=False)
