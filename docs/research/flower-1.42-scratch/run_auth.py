"""TLS + SuperNode auth on loopback: register 3 keys, run, revoke one mid-run, try to restart it."""
import json, os, shutil, socket, subprocess, time
from pathlib import Path

VENV = Path("/tmp/flwr-venv/bin"); BASE = Path("/tmp/fltest/work-auth"); APP = Path("/tmp/fltest/app")
C = Path("/tmp/fltest/certs"); N = 3; ROUNDS = int(os.environ.get("ROUNDS", "4"))

def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0)); return s.getsockname()[1]

shutil.rmtree(BASE, ignore_errors=True); BASE.mkdir(parents=True)
env = dict(os.environ, FLWR_TELEMETRY_ENABLED="0", FLWR_DISABLE_UPDATE_CHECK="1",
           FLWR_DISABLE_RUNTIME_DEPENDENCY_INSTALLATION="1", PATH=f"{VENV}:{os.environ['PATH']}")
procs = {}
def spawn(name, cmd):
    home = BASE / f"home-{name}"; home.mkdir(exist_ok=True)
    p = subprocess.Popen(cmd, env=dict(env, FLWR_HOME=str(home)), stdout=open(BASE / f"{name}.log", "wb"),
                         stderr=subprocess.STDOUT, start_new_session=True)
    procs[name] = p; return p

cli_home = BASE / "home-cli"; cli_home.mkdir()
def flwr(*args):
    r = subprocess.run(["flwr", *args], env=dict(env, FLWR_HOME=str(cli_home)), capture_output=True, text=True, timeout=60)
    return r.returncode, r.stdout, r.stderr
def js(s): return json.loads(s[s.index("{"):])

try:
    port = free_port(); t0 = time.time()
    spawn("superlink", ["flower-superlink", "--host", "127.0.0.1", "--port", str(port),
                        "--ssl-ca-certfile", str(C / "ca.crt"), "--ssl-certfile", str(C / "server.pem"),
                        "--ssl-keyfile", str(C / "server.key"), "--enable-supernode-auth",
                        "--disable-runtime-dependency-installation"])
    (cli_home / "config.toml").write_text(
        f'[superlink]\ndefault = "loop"\n\n[superlink.loop]\naddress = "127.0.0.1:{port}"\n'
        f'root-certificates = "{C / "ca.crt"}"\n')
    for _ in range(100):
        rc, out, err = flwr("supernode", "list", "loop", "--format", "json")
        if rc == 0: break
        time.sleep(0.5)
    print("superlink up", round(time.time() - t0, 1), "s; list:", out.strip()[:300], flush=True)
    node_ids = {}
    for i in range(N):
        rc, out, err = flwr("supernode", "register", str(C / f"node{i}.pub"), "loop", "--format", "json")
        node_ids[i] = js(out)["node-id"]; print("registered", i, node_ids[i], rc, flush=True)
    rc, out, err = flwr("supernode", "register", str(C / "node0.pub"), "loop", "--format", "json")
    print("re-register same key ->", rc, (out + err).strip()[-200:], flush=True)
    for i in range(N):
        spawn(f"node{i}", ["flower-supernode", "--superlink", f"127.0.0.1:{port}", "--root-certificates",
                           str(C / "ca.crt"), "--auth-supernode-private-key", str(C / f"node{i}"),
                           "--host", "127.0.0.1", "--port", str(free_port()),
                           "--node-config", f"partition-id={i} num-partitions={N}"])
    # an unregistered key must be refused
    spawn("intruder", ["flower-supernode", "--superlink", f"127.0.0.1:{port}", "--root-certificates",
                       str(C / "ca.crt"), "--auth-supernode-private-key", str(C / "node3"),
                       "--host", "127.0.0.1", "--port", str(free_port())])
    records = BASE / "rounds.jsonl"
    rc, out, err = flwr("run", str(APP), "loop", "--format", "json", "--run-config", f"records-path='{records}'",
                        "--run-config", f"num-server-rounds={ROUNDS}", "--run-config", "min-nodes=2",
                        "--run-config", "strategy='fedavg'")
    run_id = js(out)["run-id"]; print("run", run_id, flush=True)
    revoked = False; status = "?"
    deadline = time.time() + 400
    while time.time() < deadline:
        n = len(records.read_text().splitlines()) if records.exists() else 0
        if n >= 1 and not revoked:
            rc, out, err = flwr("supernode", "unregister", str(node_ids[2]), "loop", "--format", "json")
            print(f"[{time.time()-t0:.0f}s] after round 1: unregister node2 ->", rc, out.strip()[-120:], err.strip()[-200:], flush=True)
            revoked = True
        rc, out, err = flwr("list", "loop", "--run-id", run_id, "--format", "json")
        try: status = js(out)["runs"][0]["status"]
        except Exception: pass
        if status.startswith("finished"): break
        time.sleep(2)
    print("status", status, f"{time.time()-t0:.0f}s", flush=True)
    for name, p in procs.items():
        print(name, "exit code:", p.poll())
    for line in records.read_text().splitlines():
        r = json.loads(line)
        if not r.get("final"):
            print("round", r["round"], "sampled", len(r["sampled_nodes"]),
                  "updates", [(str(u["node_id"])[-4:], u["error"]) for u in r["client_updates"]],
                  "train", r["train_metrics"])
    # restart the revoked node with its old key
    p = spawn("node2-again", ["flower-supernode", "--superlink", f"127.0.0.1:{port}", "--root-certificates",
                              str(C / "ca.crt"), "--auth-supernode-private-key", str(C / "node2"),
                              "--host", "127.0.0.1", "--port", str(free_port())])
    try: p.wait(30)
    except subprocess.TimeoutExpired: pass
    print("node2-again exit:", p.poll())
    rc, out, err = flwr("supernode", "register", str(C / "node2.pub"), "loop", "--format", "json")
    print("re-register revoked key ->", rc, (out + err).strip()[-250:])
    rc, out, err = flwr("supernode", "list", "loop", "--format", "json")
    print("list:", out.strip()[:1500])
finally:
    for p in procs.values():
        try: os.killpg(p.pid, 15)
        except ProcessLookupError: pass
    for p in procs.values():
        try: p.wait(10)
        except subprocess.TimeoutExpired: os.killpg(p.pid, 9)
