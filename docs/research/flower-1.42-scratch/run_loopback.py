"""Start 1 SuperLink + N SuperNodes on loopback, `flwr run` the app, wait, collect round records."""
import json, os, shutil, socket, subprocess, sys, time
from pathlib import Path

VENV = Path(os.environ.get("FLWR_VENV", "/tmp/flwr-venv/bin"))
BASE = Path("/tmp/fltest/work"); APP = Path("/tmp/fltest/app")
N = int(os.environ.get("N", "4")); ROUNDS = int(os.environ.get("ROUNDS", "5"))
STRATEGY = os.environ.get("STRATEGY", "fedavgopt")
DP = os.environ.get("DP", "")  # e.g. "1.0,5.0" => noise,clip


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0)); return s.getsockname()[1]


def wait_http(url: str, timeout: float = 60) -> None:
    import urllib.request
    t0 = time.time()
    while time.time() - t0 < timeout:
        try:
            with urllib.request.urlopen(url, timeout=1) as r:
                if r.status == 200: return
        except Exception:
            time.sleep(0.3)
    raise TimeoutError(url)


shutil.rmtree(BASE, ignore_errors=True); BASE.mkdir(parents=True)
env = dict(os.environ, FLWR_TELEMETRY_ENABLED="0", FLWR_DISABLE_UPDATE_CHECK="1",
           FLWR_DISABLE_RUNTIME_DEPENDENCY_INSTALLATION="1",
           PATH=f"{VENV}:{os.environ['PATH']}")
procs = []
def spawn(name, cmd, home):
    e = dict(env, FLWR_HOME=str(home)); home.mkdir(parents=True, exist_ok=True)
    log = open(BASE / f"{name}.log", "wb")
    p = subprocess.Popen(cmd, env=e, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    procs.append(p); return p

t0 = time.time()
link_port = free_port()
spawn("superlink", ["flower-superlink", "--insecure", "--host", "127.0.0.1", "--port", str(link_port),
                    "--disable-runtime-dependency-installation"], BASE / "home-link")
wait_http(f"http://127.0.0.1:{link_port}/health")
print(f"superlink up on {link_port} after {time.time()-t0:.1f}s", flush=True)
for i in range(N):
    spawn(f"supernode{i}", ["flower-supernode", "--insecure", "--superlink", f"127.0.0.1:{link_port}",
                            "--host", "127.0.0.1", "--port", str(free_port()),
                            "--node-config", f"partition-id={i} num-partitions={N}"], BASE / f"home-node{i}")
# CLI config: a named SuperLink connection (NOT in pyproject.toml)
cli_home = BASE / "home-cli"; cli_home.mkdir()
(cli_home / "config.toml").write_text(
    f'[superlink]\ndefault = "loop"\n\n[superlink.loop]\naddress = "127.0.0.1:{link_port}"\ninsecure = true\n')
records = BASE / "rounds.jsonl"
overrides = [f"records-path='{records}'", f"num-server-rounds={ROUNDS}", f"min-nodes={N}", f"strategy='{STRATEGY}'"]
if DP:
    nm, clip = DP.split(","); overrides += [f"dp-noise-multiplier={nm}", f"dp-clipping-norm={clip}"]
cmd = ["flwr", "run", str(APP), "loop", "--format", "json"]
for o in overrides: cmd += ["--run-config", o]
out = subprocess.run(cmd, env=dict(env, FLWR_HOME=str(cli_home)), capture_output=True, text=True, timeout=120)
print("flwr run rc", out.returncode, out.stdout.strip()[-500:], out.stderr.strip()[-1500:], flush=True)
run_id = json.loads(out.stdout[out.stdout.index("{"):])["run-id"]
status = "?"
try:
    deadline = time.time() + float(os.environ.get("TIMEOUT", "300"))
    while time.time() < deadline:
        ls = subprocess.run(["flwr", "list", "loop", "--run-id", run_id, "--format", "json"],
                            env=dict(env, FLWR_HOME=str(cli_home)), capture_output=True, text=True)
        try:
            status = json.loads(ls.stdout[ls.stdout.index("{"):])["runs"][0]["status"]
        except Exception:
            status = "?" + ls.stdout[-200:] + ls.stderr[-200:]
        if status.startswith("finished"): break
        time.sleep(2)
    print("run", run_id, "status", status, f"elapsed {time.time()-t0:.1f}s", flush=True)
    if records.exists():
        for line in records.read_text().splitlines():
            r = json.loads(line)
            if r.get("final"):
                print("FINAL server_eval", r["server_eval"], "model", [round(v, 3) for v in r["model"][0]])
            else:
                print("round", r["round"], "sampled", len(r["sampled_nodes"]), "train", r["train_metrics"],
                      "eval", r["evaluate_metrics"], "weights", r.get("client_weights"))
finally:
    if os.environ.get("KEEP") != "1":
        for p in reversed(procs):
            try: os.killpg(p.pid, 15)
            except ProcessLookupError: pass
        for p in procs:
            try: p.wait(10)
            except subprocess.TimeoutExpired: os.killpg(p.pid, 9)
