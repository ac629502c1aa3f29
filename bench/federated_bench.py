"""Federated learning benchmark (issue 7): the same federation through the platform and on plain
Flower, in the same run (the seed paper's Table 3 reports the platform within 5%).

    uv run python bench/federated_bench.py            # 3 rounds, 4 clients, ABBA (about 20 minutes on 2 cores)
    uv run python bench/federated_bench.py --quick    # 2 rounds, AB (a smoke run, about 6 minutes)

Both sides run the same Flower App (federated/flower-app), the same settings (the platform's
defaults for a request of FedAvg with min 4 clients), the same SuperLink (TLS and node
authentication: `adapters/flower.superlink_command`) and four real SuperNodes on loopback, one per
synthetic radar quadrant:

- plain Flower: the SuperLink started directly, the four keys registered with `flwr supernode
  register`, the App submitted with `flwr run`, its round records written to a JSON-lines file;
- the platform: `ai4kg`'s API served by uvicorn with its control loop (every 0.5 s), a federation
  created with POST /v1/federations, four clients admitted with POST .../clients; the control loop
  registers the keys, submits the run, and the ServerApp asks for the admitted nodes before each
  round and posts each round, which the platform checks and writes to the graph.

Measured on each side from the round records (second resolution): the run's own time, first round
started → last round ended, and per round; the platform's figures as ratios of plain Flower's in
the same process. Runs alternate (ABBA) so that drift of the shared machine falls on both.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))
from run import Report, free_port, log, now, publish, serving, version  # noqa: E402  (bench/run.py helpers)

import httpx  # noqa: E402

from ai4kg.adapters.flower import FlowerControl, make_tls, new_client_key, superlink_command  # noqa: E402
from ai4kg.api.app import create_app  # noqa: E402
from ai4kg.catalog import ImportOptions, import_files  # noqa: E402
from ai4kg.config import Settings  # noqa: E402
from ai4kg.credentials import KeyStore  # noqa: E402
from ai4kg.federated import environment  # noqa: E402
from ai4kg.federated.environment import process_environment  # noqa: E402
from ai4kg.federated.records import new_federation, run_config  # noqa: E402
from ai4kg.graph.store import KnowledgeGraph  # noqa: E402

MODULE = "flood-segmentation-s2"
CLIENTS = 4


def request(rounds: int) -> dict[str, Any]:
    return {"module": MODULE, "rounds": rounds, "strategy": "FedAvg", "min_fit_clients": CLIENTS,
            "min_evaluate_clients": CLIENTS, "min_available_clients": CLIENTS, "training": {"seed": 1}}


def start(command: list[str], env: dict[str, str], log_file: Path) -> subprocess.Popen:
    with open(log_file, "wb") as output:
        return subprocess.Popen(command, env=env, stdout=output, stderr=subprocess.STDOUT, start_new_session=True)


def stop(processes: list[subprocess.Popen]) -> None:
    for process in processes:
        try:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(10)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            try:
                os.killpg(process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


def supernodes(bin_directory: Path, folder: Path, address: str, ca: str, private_keys: list[str]) -> list[subprocess.Popen]:
    started = []
    for i, private_key in enumerate(private_keys):
        site = folder / f"site-{i}"
        site.mkdir(parents=True, exist_ok=True)
        (site / "client.key").write_text(private_key)
        (site / "client.key").chmod(0o600)
        (site / "ca.pem").write_text(ca)
        started.append(start([str(bin_directory / "flower-supernode"), "--superlink", address,
                              "--root-certificates", str(site / "ca.pem"),
                              "--auth-supernode-private-key", str(site / "client.key"), "--host", "127.0.0.1",
                              "--port", str(free_port()), "--node-config",
                              f"partition-id={i} num-partitions={CLIENTS}"],
                             process_environment(site / "home", bin_directory), site / "supernode.log"))
    return started


def timings(records: list[dict[str, Any]]) -> dict[str, Any]:
    def at(text: str) -> float:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    rounds = [at(r["ended_at"]) - at(r["started_at"]) for r in records]
    return {"run_s": at(records[-1]["ended_at"]) - at(records[0]["started_at"]), "rounds_s": rounds,
            "final_mse": records[-1]["server_metrics"]["mse"]}


def plain_flower(bin_directory: Path, work: Path, rounds: int) -> dict[str, Any]:
    state = work / f"plain-{time.monotonic_ns()}"
    make_tls(state / "tls", ["127.0.0.1"])
    port = free_port()
    processes = [start(superlink_command(str(bin_directory / "flower-superlink"), str(state / "tls"), "127.0.0.1", port,
                                         str(state / "superlink.db")),
                       process_environment(state / "home", bin_directory), state / "superlink.log")]
    try:
        control = FlowerControl(bin_directory, state / "cli", f"127.0.0.1:{port}", state / "tls" / "ca.pem")
        deadline = time.monotonic() + 60
        while True:
            try:
                control.nodes()
                break
            except Exception:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)
        keys = [new_client_key(f"site-{i}") for i in range(CLIENTS)]
        for i, key in enumerate(keys):
            control.register(key.public_key, f"site-{i}")
        processes += supernodes(bin_directory, state, f"127.0.0.1:{port}", (state / "tls" / "ca.pem").read_text(),
                                [k.private_key for k in keys])
        records_path = state / "rounds.jsonl"
        federation = new_federation(request(rounds), "plain", "https://w3id.org/ai4kg/id/", "bench", "default",
                                    "https://w3id.org/ai4kg/id/module/" + MODULE)
        config = {**run_config(federation, "", ""), "records-path": str(records_path)}
        submitted = now()
        run_id = control.submit(environment.app_directory(), config)
        while True:
            status = str(control.run(run_id).get("status", ""))
            if status.startswith("finished"):
                break
            time.sleep(1)
        wall = now() - submitted
        records = [json.loads(line) for line in records_path.read_text().splitlines()]
        return {"status": status, "wall_s": wall, **timings(records)}
    finally:
        stop(processes)


def platform(bin_directory: Path, work: Path, rounds: int) -> dict[str, Any]:
    root = work / f"platform-{time.monotonic_ns()}"
    graph = KnowledgeGraph(Settings(data_dir=root / "data", control_interval=0.5))
    [imported] = import_files(graph, [REPO / "demo" / f"{MODULE}.yml"], ImportOptions())
    assert imported.status == "imported", imported.issues
    keys = KeyStore(root / "data")
    headers = {"Authorization": f"Bearer {keys.create('bench', frozenset({'default'}))[1]}"}
    app = create_app(graph, keys)
    app.state.federations.flower_location = bin_directory.parent
    processes: list[subprocess.Popen] = []
    try:
        with serving(app) as url:
            app.state.federations.platform_url = url
            client = httpx.Client(base_url=url, headers=headers, timeout=120)
            submitted = now()
            created = client.post("/v1/federations", json={**request(rounds), "name": "bench"})
            created.raise_for_status()
            private_keys = [client.post("/v1/federations/bench/clients", json={"name": f"site-{i}"}).json()["private_key"]
                            for i in range(CLIENTS)]
            while not (found := client.get("/v1/federations/bench").json())["connection"]["superlink"]:
                time.sleep(0.5)  # given once the keys are registered and the run submitted
            processes += supernodes(bin_directory, root, found["connection"]["superlink"],
                                    found["connection"]["root_certificates"], private_keys)
            while (found := client.get("/v1/federations/bench").json())["rounds_done"] < rounds:
                time.sleep(1)
            wall = now() - submitted
            records = client.get("/v1/federations/bench/rounds").json()["rounds"]
            client.delete("/v1/federations/bench")
            return {"status": found["status"], "wall_s": wall, **timings(records)}
    finally:
        stop(processes)
        for runner in (root / "data" / "local-executor" / "jobs").glob("*/runner.json"):
            try:
                os.killpg(json.loads(runner.read_text())["pid"], signal.SIGKILL)
            except (ProcessLookupError, PermissionError, ValueError, KeyError):
                pass
        app.state.federations.close()
        app.state.deployments.close()
        graph.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2 rounds, one run each (a smoke run)")
    parser.add_argument("--rounds", type=int, help="rounds per run (default 3; --quick 2)")
    parser.add_argument("--work", type=Path, help="keep work files in this folder")
    parser.add_argument("--out", type=Path, help="also write the Markdown report to this file")
    args = parser.parse_args()
    rounds = args.rounds or (2 if args.quick else 3)
    order = ["plain", "platform"] if args.quick else ["plain", "platform", "platform", "plain"]
    work = args.work or Path(tempfile.mkdtemp(prefix="ai4kg-federated-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    report = Report()
    started = now()
    runs: dict[str, list[dict[str, Any]]] = {"plain": [], "platform": []}
    sequence: list[tuple[str, dict[str, Any]]] = []
    try:
        with report.phase("the Flower environment"):
            bin_directory = environment.ensure()
        for side in order:
            with report.phase(f"{side} ({rounds} rounds, {CLIENTS} clients)"):
                result = (plain_flower if side == "plain" else platform)(bin_directory, work, rounds)
                log(f"{side}: {result}")
                runs[side].append(result)
                sequence.append((side, result))
    finally:
        if args.work is None:
            shutil.rmtree(work, ignore_errors=True)
    bench = "federation"
    for measure, key in (("run: first round started → last round ended", "run_s"),
                         ("submitted → last round recorded", "wall_s")):
        plain_mean = sum(r[key] for r in runs["plain"]) / len(runs["plain"])
        platform_mean = sum(r[key] for r in runs["platform"]) / len(runs["platform"])
        report.row(bench, f"{measure}, plain Flower", f"{plain_mean:.1f} s", f"mean of {len(runs['plain'])}",
                   "1.00x (baseline)")
        report.row(bench, f"{measure}, through the platform", f"{platform_mean:.1f} s",
                   f"mean of {len(runs['platform'])}", f"{platform_mean / plain_mean:.3f}x")
    # Round 1 includes the wait for the clients to connect: on plain Flower they are up before the
    # run is submitted; through the platform a client learns the address once the run is submitted.
    # The rounds after the first are the same work on both sides.
    for label, first in (("round 1 (includes the clients connecting)", True), ("one round after the first", False)):
        plain_rounds = [s for r in runs["plain"] for s in (r["rounds_s"][:1] if first else r["rounds_s"][1:])]
        platform_rounds = [s for r in runs["platform"] for s in (r["rounds_s"][:1] if first else r["rounds_s"][1:])]
        plain_mean, platform_mean = sum(plain_rounds) / len(plain_rounds), sum(platform_rounds) / len(platform_rounds)
        report.row(bench, f"{label}, plain Flower", f"{plain_mean:.1f} s", f"{len(plain_rounds)} rounds",
                   "1.00x (baseline)")
        report.row(bench, f"{label}, through the platform", f"{platform_mean:.1f} s", f"{len(platform_rounds)} rounds",
                   f"{platform_mean / plain_mean:.3f}x")
    report.row(bench, "final server MSE (same seed)",
               f"plain {runs['plain'][0]['final_mse']:.3e}, platform {runs['platform'][0]['final_mse']:.3e}", "")
    report.sections.append("Runs, in order (run time, and each round's): " + "; ".join(
        f"{side} {r['run_s']:.0f} s ({', '.join(f'{s:.0f}' for s in r['rounds_s'])})" for side, r in sequence))
    publish(f"ai4kg federated-learning benchmark ({rounds} rounds, {CLIENTS} clients)", "federated_bench.py", report,
            started, args.out, f"- flwr 1.42.0 (its own environment), uvicorn {version('uvicorn')}, "
                               f"httpx {version('httpx')}")


if __name__ == "__main__":
    main()
